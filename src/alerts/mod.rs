//! Alerts that leave keyledger on their own (issue 15): what an alert is, which events and deadlines raise one,
//! and its stable id. Delivery (an outbox per sink, at least once) lives in `outbox`, signing in `sign`, the
//! time-ordered index of deadlines in `deadlines` and the task that sweeps it in `watcher`.

pub mod config;
pub mod deadlines;
pub mod deliveries;
pub mod outbox;
pub mod sign;
mod watcher;

pub use config::{AlertsConfig, SinkConfig, SinkFormat, KINDS};

use crate::event::{Actor, Event, EventData};
use crate::projection::{KeyRecord, KeyStatus, Projections};
use crate::time::LedgerTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const DAY: i64 = 86_400;

/// The key an alert is about: identification only, never a secret or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertKey {
    pub key_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub owner: String,
    pub environment: String,
}

/// One alert, as delivered (the JSON sinks receive).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable across redeliveries and restarts: receivers deduplicate on it.
    pub id: String,
    pub kind: String,
    /// When it happened: the event's time, or the deadline a time-based alert is about.
    pub time: LedgerTime,
    /// The ledger's origin (its name in checkpoints).
    pub ledger: String,
    pub key: Option<AlertKey>,
    /// The events that raised it (the anomaly's evidence included).
    pub seqs: Vec<u64>,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: String,
    pub summary: String,
    /// Kind-specific facts (rule, action, reason, deadline…).
    pub details: serde_json::Value,
}

/// A stable id from the facts that make an alert unique.
/// An alert's id: stable for the same parts, so that receivers deduplicate an alert raised again.
pub fn alert_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    format!("alr_{}", hex::encode(&hasher.finalize()[..12]))
}

fn alert_key(key: &KeyRecord) -> AlertKey {
    AlertKey {
        key_id: key.key_id,
        name: key.config.name.clone(),
        prefix: key.prefix.clone(),
        owner: key.config.owner.clone(),
        environment: key.config.environment.clone(),
    }
}

fn describe(key: Option<&AlertKey>, key_id: Option<Uuid>) -> String {
    match (key, key_id) {
        (Some(k), _) => format!(
            "{} ({}, owner {}, {})",
            k.name, k.prefix, k.owner, k.environment
        ),
        (None, Some(id)) => format!("key {id}"),
        (None, None) => "the ledger".into(),
    }
}

/// The alert an event raises, if any (`key.used` never does). `projections` name the key.
pub fn alert_for_event(event: &Event, projections: &Projections, ledger: &str) -> Option<Alert> {
    let key_of = |id: Option<Uuid>| id.and_then(|id| projections.keys.get(&id)).map(alert_key);
    let seq = event.seq.to_string();
    let (kind, key_id, severity, summary, details, mut seqs): (
        &str,
        Option<Uuid>,
        String,
        String,
        _,
        Vec<u64>,
    ) = match &event.data {
        EventData::AnomalyDetected(a) => {
            let key = key_of(a.key_id);
            (
                "anomaly.detected",
                a.key_id,
                a.severity.clone(),
                format!(
                    "anomaly {} on {}: {} observed against a threshold of {}{}",
                    a.rule,
                    describe(key.as_ref(), a.key_id),
                    a.observed,
                    a.threshold,
                    a.action
                        .as_deref()
                        .map(|x| format!("; action: {x}"))
                        .unwrap_or_default()
                ),
                serde_json::json!({
                    "anomaly_id": a.anomaly_id, "rule": a.rule, "observed": a.observed,
                    "threshold": a.threshold, "window_start": a.window_start, "window_end": a.window_end,
                    "action": a.action,
                }),
                a.evidence.clone(),
            )
        }
        EventData::KeySuspended(s) => {
            let automatic = matches!(event.actor, Actor::System);
            let key = key_of(Some(s.key_id));
            (
                "key.suspended",
                Some(s.key_id),
                if automatic { "high" } else { "medium" }.to_string(),
                format!(
                    "{} was suspended {}{}{}",
                    describe(key.as_ref(), Some(s.key_id)),
                    if automatic {
                        "automatically"
                    } else {
                        "by hand"
                    },
                    s.until.map(|u| format!(" until {u}")).unwrap_or_default(),
                    s.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
                serde_json::json!({ "automatic": automatic, "until": s.until, "reason": s.reason, "actor": event.actor }),
                Vec::new(),
            )
        }
        EventData::KeyRevoked(r) => {
            let key = key_of(Some(r.key_id));
            (
                "key.revoked",
                Some(r.key_id),
                "medium".to_string(),
                format!(
                    "{} was revoked{}",
                    describe(key.as_ref(), Some(r.key_id)),
                    r.reason
                        .as_deref()
                        .map(|x| format!(": {x}"))
                        .unwrap_or_default()
                ),
                serde_json::json!({ "reason": r.reason, "actor": event.actor }),
                Vec::new(),
            )
        }
        EventData::SignerRotated(r) => (
            "ledger.signer_rotated",
            None,
            "high".to_string(),
            format!(
                "the ledger's signing key was rotated to {}",
                r.new_signer_id
            ),
            serde_json::json!({ "new_signer_id": r.new_signer_id, "new_public_key": r.new_public_key, "reason": r.reason }),
            Vec::new(),
        ),
        _ => return None,
    };
    seqs.insert(0, event.seq);
    seqs.dedup();
    Some(Alert {
        id: alert_id(&[ledger, kind, &seq]),
        kind: kind.to_string(),
        time: event.time,
        ledger: ledger.to_string(),
        key: key_of(key_id),
        seqs,
        severity,
        summary,
        details,
    })
}

/// The time-based alerts in force at `now`: rotation due (within the notice period) or overdue, and expiry
/// within `expiry_notice_days`. Each id names the key and the deadline, so it fires once per deadline. This walks
/// every key: the watcher uses [`deadlines::Deadlines`], which visits only the keys whose moment has come; this
/// full walk is the reference it is tested against.
pub fn time_alerts(
    projections: &Projections,
    now: LedgerTime,
    expiry_notice_days: u32,
    ledger: &str,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for key in projections.keys.iter() {
        key_time_alerts(
            projections,
            key,
            now,
            expiry_notice_days,
            ledger,
            &mut alerts,
        );
    }
    alerts
}

/// The moments a key's time-based alerts compare `now` against.
pub(crate) struct Thresholds {
    /// The rotation period, in days.
    every: u32,
    /// (start of the notice, deadline) of the next rotation; `None` once the key was rotated away.
    rotation: Option<(LedgerTime, LedgerTime)>,
    /// (start of the warning, expiry time), when the key expires.
    expiry: Option<(LedgerTime, LedgerTime)>,
}

/// `key`'s thresholds, from its rotation policy (or the defaults, `reports::rotation_days`) and expiry.
pub(crate) fn thresholds(
    projections: &Projections,
    key: &KeyRecord,
    expiry_notice_days: u32,
) -> Thresholds {
    let (every, notify) = crate::projection::reports::rotation_days(projections, key);
    let since = key.last_rotated_at.unwrap_or(key.created_at);
    let deadline = since.plus_micros(i64::from(every) * DAY * 1_000_000);
    let notice = deadline.plus_micros(-i64::from(notify) * DAY * 1_000_000);
    Thresholds {
        every,
        rotation: key.rotated_to.is_none().then_some((notice, deadline)),
        expiry: key.config.expires_at.map(|expires| {
            let warn_from = expires.plus_micros(-i64::from(expiry_notice_days) * DAY * 1_000_000);
            (warn_from, expires)
        }),
    }
}

/// Appends to `alerts` the time-based alerts in force for `key` at `now` (what [`time_alerts`] raises for it).
pub(crate) fn key_time_alerts(
    projections: &Projections,
    key: &KeyRecord,
    now: LedgerTime,
    expiry_notice_days: u32,
    ledger: &str,
    alerts: &mut Vec<Alert>,
) {
    if !matches!(key.status_at(now), KeyStatus::Active | KeyStatus::Suspended) {
        return;
    }
    let thresholds = thresholds(projections, key, expiry_notice_days);
    let every = thresholds.every;
    let mut raise = |kind: &str, at: LedgerTime, severity: &str, summary: String| {
        let info = alert_key(key);
        alerts.push(Alert {
            id: alert_id(&[ledger, kind, &key.key_id.to_string(), &at.to_string()]),
            kind: kind.to_string(),
            time: at,
            ledger: ledger.to_string(),
            seqs: Vec::new(),
            severity: severity.to_string(),
            summary: format!("{}: {summary}", describe(Some(&info), None)),
            key: Some(info),
            details: serde_json::json!({ "deadline": at }),
        });
    };
    if let Some((notice, deadline)) = thresholds.rotation {
        if now >= deadline {
            raise(
                "key.rotation_overdue",
                deadline,
                "high",
                format!("rotation overdue since {deadline} (every {every} days)"),
            );
        } else if now >= notice {
            raise(
                "key.rotation_due",
                deadline,
                "low",
                format!("rotation due by {deadline} (every {every} days)"),
            );
        }
    }
    if let Some((warn_from, expires)) = thresholds.expiry {
        if now >= warn_from && now < expires {
            raise(
                "key.expiring",
                expires,
                "medium",
                format!("expires at {expires}"),
            );
        }
    }
}

/// The alert for a failed self-verification of the chain (the background check of a snapshot's prefix, or a
/// read that found the stored log changed): once per reason.
pub fn verification_failed(reason: &str, now: LedgerTime, ledger: &str) -> Alert {
    Alert {
        id: alert_id(&[ledger, "ledger.verification_failed", reason]),
        kind: "ledger.verification_failed".into(),
        time: now,
        ledger: ledger.to_string(),
        key: None,
        seqs: Vec::new(),
        severity: "critical".into(),
        summary: format!(
            "the ledger's chain failed verification and it stopped accepting writes: {reason}"
        ),
        details: serde_json::json!({ "reason": reason }),
    }
}

/// The alert for a witness that holds a history this log does not continue (a fork, a cut or a rollback, seen
/// from outside): once per witness and reason.
pub fn witness_conflict(witness: &str, reason: &str, now: LedgerTime, ledger: &str) -> Alert {
    Alert {
        id: alert_id(&[ledger, "ledger.witness_conflict", witness, reason]),
        kind: "ledger.witness_conflict".into(),
        time: now,
        ledger: ledger.to_string(),
        key: None,
        seqs: Vec::new(),
        severity: "critical".into(),
        summary: format!("the witness {witness} refused this log's checkpoint: {reason}"),
        details: serde_json::json!({ "witness": witness, "reason": reason }),
    }
}
