//! The demo's step 7: a secret scanner reports ci-deploy's secret in a public repository; the ledger finds its key
//! by the secret's hash and revokes it, and the very next use of that secret is refused.

use super::{io, step, DemoSummary};
use crate::keys::{hash_of_leak, Requester, RevokeKey, VerifyKey};
use crate::ledger::Ledger;
use crate::LedgerError;
use std::io::Write;
use uuid::Uuid;

/// Runs step 7 as `admin` on `leaked_secret`; returns the leaked key's id.
pub(super) fn run(
    out: &mut dyn Write,
    ledger: &Ledger,
    admin: &Requester,
    leaked_secret: &str,
    summary: &mut DemoSummary,
) -> Result<Uuid, LedgerError> {
    let started = step(out, 7, "A secret scanner reports ci-deploy's secret in a public repository: find its key and revoke it").map_err(io)?;
    let hash = hash_of_leak(leaked_secret)?;
    let leaked_id = ledger
        .projections()
        .keys
        .by_secret_hash(&hash)
        .map(|k| k.key_id)
        .ok_or_else(|| LedgerError::not_found("leaked key"))?;
    let revoked = ledger.submit_blocking(RevokeKey {
        who: admin.clone(),
        key_id: leaked_id,
        reason: Some("secret found in a public repository".into()),
    })?;
    let after = ledger.submit_blocking(VerifyKey::new(
        leaked_secret,
        "203.0.113.50".parse().ok(),
        Some("deploy:prod".into()),
        None,
    ))?;
    writeln!(
        out,
        "   found key {} ({}, owner {}); revoked at {}",
        leaked_id,
        revoked.config.name,
        revoked.config.owner,
        revoked
            .revoked_at
            .map(|t| t.to_string())
            .unwrap_or_default()
    )
    .map_err(io)?;
    writeln!(
        out,
        "   the very next use of that secret: {} ({:.0?})",
        after.code.as_str(),
        started.elapsed()
    )
    .map_err(io)?;
    summary.leaked_key = Some(leaked_id);
    summary.leaked_key_revoked = true;
    summary.leaked_after_revoke = Some(after.code);
    Ok(leaked_id)
}
