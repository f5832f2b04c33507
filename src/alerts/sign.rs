//! Webhook signatures, as Stripe signs its webhooks: `Keyledger-Signature: t=<unix seconds>,v1=<hex>` where the
//! hex is HMAC-SHA256 with the sink's secret over `<t>.<body>` (docs/API.md has a verification recipe).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "keyledger-signature";
pub const ALERT_ID_HEADER: &str = "keyledger-alert-id";

/// The `Keyledger-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = keyed(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// HMAC-SHA256 keyed with `secret`, fed `<timestamp>.<body>`.
fn keyed(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so new_from_slice cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks a `Keyledger-Signature` value against `body` (what a receiver does), refusing a timestamp more than
/// `tolerance_secs` away from `now` (replays). Constant-time comparison.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    (now - timestamp).abs() <= tolerance_secs
        && signatures
            .iter()
            .any(|s| keyed(secret, timestamp, body).verify_slice(s).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_body_or_stale_timestamp_does_not() {
        let secret = b"whsec_0123456789abcdef";
        let header = signature_header(secret, 1_700_000_000, b"{\"id\":\"alr_1\"}");
        let checks = |key: &[u8], body: &[u8], now: i64| verify(key, &header, body, now, 300);
        assert!(checks(secret, b"{\"id\":\"alr_1\"}", 1_700_000_010));
        assert!(!checks(secret, b"{\"id\":\"alr_2\"}", 1_700_000_010));
        assert!(!checks(
            b"another-secret-0000",
            b"{\"id\":\"alr_1\"}",
            1_700_000_010
        ));
        assert!(!checks(secret, b"{\"id\":\"alr_1\"}", 1_700_001_000));
    }
}
