//! Usage: all-time per-key aggregates kept as a projection, and how window reports group uses (by key, IP, user
//! agent, scope or owner); the window reports themselves are in `usage_window`.

use crate::event::{Event, EventData, VerifyCode};
use crate::time::LedgerTime;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
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

pub use super::usage_rows::GroupBy;
pub use super::usage_window::{usage_report, usage_report_with, UsageReport, UsageRow};
