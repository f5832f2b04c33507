//! Usage: all-time per-key aggregates kept as a projection, and reports over any time window computed by
//! scanning that window of the log (a seek, then a range scan), grouped by key, IP, user agent, scope or owner.

use super::KeyState;
use crate::error::LedgerResult;
use crate::event::{Event, EventData, VerifyCode};
use crate::query::{select_events, EventFilter};
use crate::store::LogStore;
use crate::time::LedgerTime;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// IPs remembered per key for overlap stragglers.
const MAX_STRAGGLER_IPS: usize = 16;

/// All-time usage of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KeyUsage {
    pub total: u64,
    pub allowed: u64,
    pub denied: BTreeMap<VerifyCode, u64>,
    pub first_used: Option<LedgerTime>,
    pub last_used: Option<LedgerTime>,
    pub last_ip: Option<String>,
    /// Uses of this key inside a rotation overlap window, and the IPs they came from (at most 16).
    pub overlap_uses: u64,
    pub overlap_ips: BTreeMap<String, u64>,
}

/// The usage projection: O(keys) memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct UsageState {
    keys: HashMap<Uuid, KeyUsage>,
    /// Attempts that matched no key (`not_found`, `bad_format`).
    pub unmatched: u64,
}

impl UsageState {
    pub fn get(&self, key: &Uuid) -> Option<&KeyUsage> {
        self.keys.get(key)
    }

    pub fn apply(&mut self, event: &Event) {
        let EventData::KeyUsed(used) = &event.data else {
            return;
        };
        let Some(key_id) = used.key_id else {
            self.unmatched += 1;
            return;
        };
        let usage = self.keys.entry(key_id).or_default();
        usage.total += 1;
        if used.outcome.is_allowed() {
            usage.allowed += 1;
            usage.first_used.get_or_insert(event.time);
            usage.last_used = Some(event.time);
            usage.last_ip.clone_from(&used.ip);
        } else {
            *usage.denied.entry(used.outcome).or_default() += 1;
        }
        if used.overlap {
            usage.overlap_uses += 1;
            if let Some(ip) = &used.ip {
                if usage.overlap_ips.contains_key(ip) || usage.overlap_ips.len() < MAX_STRAGGLER_IPS
                {
                    *usage.overlap_ips.entry(ip.clone()).or_default() += 1;
                }
            }
        }
    }
}

/// What to group a window's usage by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Key,
    Ip,
    #[value(name = "user_agent", alias = "user-agent")]
    UserAgent,
    Scope,
    Owner,
}

impl GroupBy {
    /// The name used in queries, flags and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Key => "key",
            GroupBy::Ip => "ip",
            GroupBy::UserAgent => "user_agent",
            GroupBy::Scope => "scope",
            GroupBy::Owner => "owner",
        }
    }
}

/// Usage of one group within a window.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct UsageRow {
    pub group: String,
    /// The key's name, when rows are grouped by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub total: u64,
    pub allowed: u64,
    pub denied: BTreeMap<VerifyCode, u64>,
    pub first: Option<LedgerTime>,
    pub last: Option<LedgerTime>,
    pub distinct_ips: usize,
    #[serde(skip)]
    ips: HashSet<String>,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct UsageReport {
    pub from: Option<LedgerTime>,
    pub to: Option<LedgerTime>,
    pub key_id: Option<Uuid>,
    pub group_by: String,
    pub events_scanned: u64,
    pub rows: Vec<UsageRow>,
}

/// Usage within `[from, to)` (optionally of one key), grouped, busiest first, at most `top` rows.
pub fn usage_report(
    store: &dyn LogStore,
    keys: &KeyState,
    filter: &EventFilter,
    durable_seq: u64,
    group_by: GroupBy,
    top: usize,
) -> LedgerResult<UsageReport> {
    let mut rows: HashMap<String, UsageRow> = HashMap::new();
    let mut scanned = 0u64;
    for event in select_events(store, filter, durable_seq)? {
        let event = event?;
        let EventData::KeyUsed(used) = &event.data else {
            continue;
        };
        scanned += 1;
        let group = match group_by {
            GroupBy::Key => used
                .key_id
                .map_or_else(|| "(no key)".to_string(), |k| k.to_string()),
            GroupBy::Ip => used.ip.clone().unwrap_or_else(|| "(none)".into()),
            GroupBy::UserAgent => used.user_agent.clone().unwrap_or_else(|| "(none)".into()),
            GroupBy::Scope => used.scope.clone().unwrap_or_else(|| "(none)".into()),
            GroupBy::Owner => used
                .key_id
                .and_then(|k| keys.get(&k))
                .map_or_else(|| "(no key)".to_string(), |k| k.config.owner.clone()),
        };
        let row = rows.entry(group.clone()).or_insert_with(|| UsageRow {
            group,
            ..Default::default()
        });
        row.total += 1;
        if used.outcome == VerifyCode::Valid {
            row.allowed += 1;
        } else {
            *row.denied.entry(used.outcome).or_default() += 1;
        }
        row.first.get_or_insert(event.time);
        row.last = Some(event.time);
        if let Some(ip) = &used.ip {
            if !row.ips.contains(ip) {
                row.ips.insert(ip.clone());
            }
        }
    }
    let mut rows: Vec<UsageRow> = rows
        .into_values()
        .map(|mut row| {
            row.distinct_ips = row.ips.len();
            if group_by == GroupBy::Key {
                row.name = row
                    .group
                    .parse::<Uuid>()
                    .ok()
                    .and_then(|id| keys.get(&id))
                    .map(|k| k.config.name.clone());
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.group.cmp(&b.group)));
    rows.truncate(top);
    let group_by = group_by.as_str().to_string();
    Ok(UsageReport {
        from: filter.from,
        to: filter.to,
        key_id: filter.key_id,
        group_by,
        events_scanned: scanned,
        rows,
    })
}
