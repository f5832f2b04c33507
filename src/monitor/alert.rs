//! A finding as an alert: the ledger's alert document (`alerts::Alert`, kinds `monitor.fork`, `monitor.cut`,
//! `monitor.bad_signature`, severity critical), POSTed to a webhook signed as the ledger's own sinks sign theirs
//! (`alerts::sign`), so the receivers of the ledger's alerts can take the monitor's too.

use super::Finding;
use crate::alerts::sign::{signature_header, ALERT_ID_HEADER, SIGNATURE_HEADER};
use crate::alerts::Alert;
use crate::time::LedgerTime;
use std::time::Duration;
use zeroize::Zeroizing;

/// Attempts at delivering one alert, a second apart, doubling.
const ATTEMPTS: u32 = 3;

/// The alert for `finding` about the ledger `origin` at `url`. Its id is stable for the same finding (origin,
/// kind, size and detail), so a receiver deduplicates a finding reported again by a restarted monitor.
pub fn alert_for(finding: &Finding, origin: &str, url: &str, now: LedgerTime) -> Alert {
    let size = finding.size().map(|s| s.to_string()).unwrap_or_default();
    let detail = match finding {
        Finding::Fork { detail, .. } | Finding::BadSignature { detail } => detail.clone(),
        Finding::Cut { verified, .. } => format!("verified size {verified}"),
    };
    let details = match finding {
        Finding::Fork { size, detail } => {
            serde_json::json!({ "url": url, "size": size, "reason": detail })
        }
        Finding::Cut { verified, size } => {
            serde_json::json!({ "url": url, "size": size, "verified_size": verified })
        }
        Finding::BadSignature { detail } => serde_json::json!({ "url": url, "reason": detail }),
    };
    Alert {
        id: crate::alerts::alert_id(&[origin, finding.kind(), &size, &detail]),
        kind: finding.kind().to_string(),
        time: now,
        ledger: origin.to_string(),
        key: None,
        seqs: Vec::new(),
        severity: "critical".into(),
        summary: finding.to_string(),
        details,
    }
}

/// A webhook the monitor sends its findings to.
pub struct Webhook {
    pub url: String,
    secret: Zeroizing<Vec<u8>>,
    client: reqwest::blocking::Client,
}

impl Webhook {
    /// `secret` is the signing secret (as `alerts.sinks` read it: at least 16 bytes).
    pub fn new(url: &str, secret: Zeroizing<Vec<u8>>) -> Result<Webhook, String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("keyledger-monitor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Webhook {
            url: url.to_string(),
            secret,
            client,
        })
    }

    /// POSTs `alert` signed, retrying a failed attempt; `Err` says why the last attempt failed.
    pub fn send(&self, alert: &Alert) -> Result<(), String> {
        let body = serde_json::to_vec(alert).map_err(|e| e.to_string())?;
        let mut wait = Duration::from_secs(1);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let timestamp = chrono::Utc::now().timestamp();
            let sent = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header(
                    SIGNATURE_HEADER,
                    signature_header(&self.secret, timestamp, &body),
                )
                .header(ALERT_ID_HEADER, &alert.id)
                .body(body.clone())
                .send();
            match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => last = format!("answered {}", response.status()),
                Err(error) => last = error.without_url().to_string(),
            }
            if attempt < ATTEMPTS {
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
        Err(format!("{} after {ATTEMPTS} attempts: {last}", self.url))
    }
}
