//! The demo's keys, steps 2 and 3: services' keys issued across environments (secrets shown once, only hashes
//! kept; a decommissioned one revoked), and billing-api rotated with a 10-minute overlap window.

use super::{io, step};
use crate::event::{KeyConfig, RotationPolicy};
use crate::keys::{CreateKey, IssuedKey, Requester, RevokeKey, RotateKey};
use crate::ledger::Ledger;
use crate::time::LedgerTime;
use crate::LedgerError;
use std::collections::BTreeMap;
use std::io::Write;

/// What steps 2-3 issued: the keys by name, billing-api's new key, and its old secret (good during the overlap).
pub(super) struct Issued {
    pub(super) keys: BTreeMap<String, IssuedKey>,
    pub(super) rotated: IssuedKey,
    pub(super) billing_old: String,
}

/// A demo key's configuration: `allow` its IP allowlist, `rotate_days` its rotation policy.
pub(super) fn key(
    name: &str,
    env: &str,
    owner: &str,
    scopes: &[&str],
    allow: &[&str],
    rotate_days: Option<u32>,
) -> KeyConfig {
    KeyConfig {
        name: name.into(),
        description: format!("{name} ({env})"),
        owner: owner.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        environment: env.into(),
        ip_allowlist: allow.iter().map(|s| s.to_string()).collect(),
        rate_limit_per_minute: Some(600_000),
        rotation_policy: rotate_days.map(|every_days| RotationPolicy {
            every_days,
            notify_days_before: 14,
        }),
        ..Default::default()
    }
}

/// Runs steps 2-3 as `admin`.
pub(super) fn run(
    out: &mut dyn Write,
    ledger: &Ledger,
    admin: &Requester,
) -> Result<Issued, LedgerError> {
    let started = step(
        out,
        2,
        "Issue keys for services across environments (secrets shown once, only hashes kept)",
    )
    .map_err(io)?;
    let configs = [
        key(
            "billing-api",
            "production",
            "team-billing",
            &["payments:read", "payments:write"],
            &["10.20.0.0/16"],
            Some(90),
        ),
        key(
            "search-indexer",
            "production",
            "team-search",
            &["catalog:read"],
            &["10.30.0.0/16"],
            Some(90),
        ),
        key(
            "partner-acme",
            "production",
            "partner-acme",
            &["orders:read"],
            &["198.18.0.0/15"],
            Some(180),
        ),
        key(
            "ci-deploy",
            "staging",
            "team-platform",
            &["deploy:*"],
            &[],
            Some(30),
        ),
        key(
            "analytics-etl",
            "development",
            "team-data",
            &["events:read"],
            &[],
            None,
        ),
        key(
            "legacy-reporting",
            "production",
            "team-finance",
            &["reports:read"],
            &[],
            None,
        ),
    ];
    let mut issued: BTreeMap<String, IssuedKey> = BTreeMap::new();
    for config in &configs {
        let key = ledger.submit_blocking(CreateKey::new(admin.clone(), config)?)?;
        writeln!(
            out,
            "   {:<17} {:<12} {:<14} {}…",
            config.name, config.environment, config.owner, key.key.prefix
        )
        .map_err(io)?;
        issued.insert(config.name.clone(), key);
    }
    let legacy = &issued["legacy-reporting"];
    ledger.submit_blocking(RevokeKey {
        who: admin.clone(),
        key_id: legacy.key.key_id,
        reason: Some("service decommissioned".into()),
    })?;
    writeln!(
        out,
        "   legacy-reporting revoked (decommissioned) ({:.0?})",
        started.elapsed()
    )
    .map_err(io)?;

    let started = step(out, 3, "Rotate billing-api with a 10-minute overlap window").map_err(io)?;
    let billing_old = issued["billing-api"].secret.expose().to_string();
    let rotated = ledger.submit_blocking(RotateKey {
        who: admin.clone(),
        key_id: issued["billing-api"].key.key_id,
        overlap_seconds: 600,
    })?;
    writeln!(
        out,
        "   {} → {} (old key works until {}) ({:.0?})",
        issued["billing-api"].key.key_id,
        rotated.key.key_id,
        LedgerTime::now().plus_secs(600),
        started.elapsed()
    )
    .map_err(io)?;
    Ok(Issued {
        keys: issued,
        rotated,
        billing_old,
    })
}
