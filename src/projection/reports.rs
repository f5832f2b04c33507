//! Compliance and hygiene reports over the projections, with "now" as a parameter: stale keys, rotation overdue
//! or due, expiring keys, overlap stragglers, an owner's keys (offboarding) and the credential report.

use super::{KeyRecord, KeyStatus, Projections};
use crate::time::LedgerTime;
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

const DAY: i64 = 86_400;

/// One row of any report: the key and what the report says about it.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ReportRow {
    pub key_id: Uuid,
    pub name: String,
    pub owner: String,
    pub environment: String,
    pub status: KeyStatus,
    pub prefix: String,
    pub created_at: LedgerTime,
    pub age_days: i64,
    pub last_rotated_at: Option<LedgerTime>,
    pub last_used_at: Option<LedgerTime>,
    pub last_used_ip: Option<String>,
    pub expires_at: Option<LedgerTime>,
    /// What the report found, e.g. "unused for 41 days", "rotation overdue by 3 days".
    pub finding: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overlap_ips: BTreeMap<String, u64>,
}

/// Which report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Stale { days: i64 },
    Rotation,
    Expiring { days: i64 },
    Overlap,
    Owner(String),
    Credentials,
}

impl ReportKind {
    /// Parses a report name as used by the CLI and HTTP API.
    pub fn parse(name: &str, days: Option<i64>, owner: Option<&str>) -> Option<Self> {
        Some(match name {
            "stale" => ReportKind::Stale {
                days: days.unwrap_or(30),
            },
            "rotation" => ReportKind::Rotation,
            "expiring" => ReportKind::Expiring {
                days: days.unwrap_or(14),
            },
            "overlap" => ReportKind::Overlap,
            "owner" => ReportKind::Owner(owner?.to_string()),
            "credentials" => ReportKind::Credentials,
            _ => return None,
        })
    }
}

fn row(p: &Projections, key: &KeyRecord, now: LedgerTime, finding: String) -> ReportRow {
    let usage = p.usage.get(&key.key_id);
    ReportRow {
        key_id: key.key_id,
        name: key.config.name.clone(),
        owner: key.config.owner.clone(),
        environment: key.config.environment.clone(),
        status: key.status_at(now),
        prefix: key.prefix.clone(),
        created_at: key.created_at,
        age_days: now.secs_since(key.created_at) / DAY,
        last_rotated_at: key.last_rotated_at,
        last_used_at: usage.and_then(|u| u.last_used),
        last_used_ip: usage.and_then(|u| u.last_ip.clone()),
        expires_at: key.config.expires_at,
        finding,
        overlap_ips: BTreeMap::new(),
    }
}

/// The rotation period of a key: its own policy, else the environment default.
pub fn rotation_days(p: &Projections, key: &KeyRecord) -> (u32, u32) {
    match &key.config.rotation_policy {
        Some(policy) => (policy.every_days, policy.notify_days_before),
        None => {
            let d = &p.rules.rotation;
            let every = if key.config.environment == "production" {
                d.production_days
            } else {
                d.default_days
            };
            (every, d.notify_days_before)
        }
    }
}

/// Runs a report; rows are ordered by key creation.
pub fn report(p: &Projections, kind: &ReportKind, now: LedgerTime) -> Vec<ReportRow> {
    let mut keys: Vec<&KeyRecord> = p.keys.iter().collect();
    keys.sort_by_key(|k| k.created_seq);
    let live =
        |k: &&KeyRecord| matches!(k.status_at(now), KeyStatus::Active | KeyStatus::Suspended);
    let mut rows = Vec::new();
    for key in keys {
        let finding = match kind {
            ReportKind::Stale { days } if live(&key) => {
                let last = p.usage.get(&key.key_id).and_then(|u| u.last_used);
                let idle = now.secs_since(last.unwrap_or(key.created_at)) / DAY;
                (idle >= *days).then(|| match last {
                    Some(_) => format!("unused for {idle} days"),
                    None => format!("never used in {idle} days"),
                })
            }
            ReportKind::Rotation if live(&key) && key.rotated_to.is_none() => {
                let (every, notify) = rotation_days(p, key);
                let since = key.last_rotated_at.unwrap_or(key.created_at);
                let age = now.secs_since(since) / DAY;
                let every = i64::from(every);
                if age > every {
                    Some(format!(
                        "rotation overdue by {} days (every {every} days)",
                        age - every
                    ))
                } else if age >= every - i64::from(notify) {
                    Some(format!(
                        "rotation due in {} days (every {every} days)",
                        every - age
                    ))
                } else {
                    None
                }
            }
            ReportKind::Expiring { days } if live(&key) => key.config.expires_at.and_then(|at| {
                let left = at.secs_since(now) / DAY;
                (left <= *days).then(|| format!("expires in {left} days"))
            }),
            ReportKind::Overlap if key.in_overlap_at(now) => {
                let uses = p.usage.get(&key.key_id).map_or(0, |u| u.overlap_uses);
                (uses > 0).then(|| {
                    format!(
                        "{uses} uses since rotation; retires at {}",
                        key.retires_at.map(|t| t.to_string()).unwrap_or_default()
                    )
                })
            }
            ReportKind::Owner(owner) if &key.config.owner == owner => {
                Some(format!("{} key", key.status_at(now).as_str()))
            }
            ReportKind::Credentials => Some(String::new()),
            _ => None,
        };
        if let Some(finding) = finding {
            let mut r = row(p, key, now, finding);
            if *kind == ReportKind::Overlap {
                r.overlap_ips = p
                    .usage
                    .get(&key.key_id)
                    .map(|u| u.overlap_ips.clone())
                    .unwrap_or_default();
            }
            rows.push(r);
        }
    }
    rows
}

/// The credential report as CSV (RFC 4180 quoting).
pub fn credentials_csv(rows: &[ReportRow]) -> String {
    let mut out = String::from("key_id,name,owner,environment,status,prefix,created_at,age_days,last_rotated_at,last_used_at,last_used_ip,expires_at\n");
    let opt = |t: &Option<LedgerTime>| t.map(|t| t.to_string()).unwrap_or_default();
    for r in rows {
        let fields = [
            r.key_id.to_string(),
            r.name.clone(),
            r.owner.clone(),
            r.environment.clone(),
            r.status.as_str().to_string(),
            r.prefix.clone(),
            r.created_at.to_string(),
            r.age_days.to_string(),
            opt(&r.last_rotated_at),
            opt(&r.last_used_at),
            r.last_used_ip.clone().unwrap_or_default(),
            opt(&r.expires_at),
        ];
        let quoted: Vec<String> = fields
            .iter()
            .map(|f| {
                if f.contains([',', '"', '\n']) {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f.clone()
                }
            })
            .collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
    out
}
