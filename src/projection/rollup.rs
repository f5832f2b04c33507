//! Hourly usage rollups as stored: for every closed hour, the `key.used` counts per key, IP, user agent and
//! scope, packed into one compressed side entry per dimension and written in the same atomic batch as the first
//! event of a later hour (FORMAT.md §4), so usage over a long window reads hours instead of events. The open
//! hour is not stored: the writer keeps its cells in memory (`rollup_open`).

use crate::event::{KeyUsed, VerifyCode};
use crate::store::{LogStore, StoreError, StoreResult};
use crate::time::LedgerTime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Side-entry prefix of the previous version's per-group cells of an open hour: `rollup/h/` + hour number (u64
/// big-endian) + dimension byte + group. No longer written; read until the writer next opens the log, which
/// packs or recounts their hours from the events and removes them.
pub const ROLLUP_PREFIX: &[u8] = b"rollup/h/";
/// Side-entry prefix of a closed hour's packed cells: `rollup/p/` + hour number + dimension byte.
pub const PACKED_PREFIX: &[u8] = b"rollup/p/";
/// Side-entry prefix of the archived part of an hour that was open when `audit archive` cut inside it:
/// `rollup/a/` + hour number + dimension byte, packed like a closed hour. Removed when the hour is packed.
pub const ARCHIVED_PREFIX: &[u8] = b"rollup/a/";
/// Present once rollups cover the log from `RollupCoverage::from_seq` on.
pub const ROLLUP_MARKER: &[u8] = b"rollup/hours-v1";
pub const HOUR_MICROS: i64 = 3_600_000_000;
/// Distinct IPs a cell remembers (a key's IPs, a user agent's, a scope's); past this it notes that there were more.
pub const MAX_CELL_IPS: usize = 64;

/// What a cell counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Key,
    Ip,
    UserAgent,
    Scope,
}

impl Dim {
    pub const ALL: [Dim; 4] = [Dim::Key, Dim::Ip, Dim::UserAgent, Dim::Scope];

    /// The dimension's place in [`Dim::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Dim::Key => 0,
            Dim::Ip => 1,
            Dim::UserAgent => 2,
            Dim::Scope => 3,
        }
    }

    fn byte(self) -> u8 {
        match self {
            Dim::Key => b'k',
            Dim::Ip => b'i',
            Dim::UserAgent => b'u',
            Dim::Scope => b's',
        }
    }

    /// The dimension's name in usage queries.
    pub fn name(self) -> &'static str {
        match self {
            Dim::Key => "key",
            Dim::Ip => "ip",
            Dim::UserAgent => "user_agent",
            Dim::Scope => "scope",
        }
    }

    /// The group a use falls in, spelled as usage answers spell it.
    pub fn group_of(self, used: &KeyUsed) -> String {
        match self {
            Dim::Key => used
                .key_id
                .map_or_else(|| "(no key)".to_string(), |k| k.to_string()),
            Dim::Ip => used.ip.clone().unwrap_or_else(|| "(none)".into()),
            Dim::UserAgent => used.user_agent.clone().unwrap_or_else(|| "(none)".into()),
            Dim::Scope => used.scope.clone().unwrap_or_else(|| "(none)".into()),
        }
    }
}

/// The hour number (hours since the Unix epoch) a time falls in.
pub fn hour_of(time: LedgerTime) -> i64 {
    time.as_micros().div_euclid(HOUR_MICROS)
}

/// The first instant of an hour.
pub fn hour_start(hour: i64) -> LedgerTime {
    LedgerTime::from_micros(hour.saturating_mul(HOUR_MICROS))
}

fn hour_bytes(hour: i64) -> [u8; 8] {
    // Offset so that negative hours (before 1970) still sort before positive ones.
    (hour as u64 ^ (1 << 63)).to_be_bytes()
}

/// The side key of every previous-version cell of `dim` in `hour`.
pub fn hour_dim_prefix(hour: i64, dim: Dim) -> Vec<u8> {
    let mut key = ROLLUP_PREFIX.to_vec();
    key.extend_from_slice(&hour_bytes(hour));
    key.push(dim.byte());
    key
}

/// The side key of the packed cells of `dim` in a closed `hour`.
pub fn packed_key(hour: i64, dim: Dim) -> Vec<u8> {
    let mut key = PACKED_PREFIX.to_vec();
    key.extend_from_slice(&hour_bytes(hour));
    key.push(dim.byte());
    key
}

/// The side key of the archived part of `hour`'s cells of `dim`.
pub fn archived_key(hour: i64, dim: Dim) -> Vec<u8> {
    let mut key = ARCHIVED_PREFIX.to_vec();
    key.extend_from_slice(&hour_bytes(hour));
    key.push(dim.byte());
    key
}

/// zstd over the JSON array of `[group, cell]` pairs, in group order.
pub(crate) fn encode_packed(cells: &BTreeMap<&str, &Cell>) -> Vec<u8> {
    // Plain strings and cells always serialise; compressing bytes in memory cannot fail short of allocation.
    let json = serde_json::to_vec(&cells.iter().collect::<Vec<_>>()).unwrap_or_default();
    zstd::bulk::compress(&json, 3).unwrap_or_default()
}

pub(crate) fn decode_packed(bytes: &[u8]) -> StoreResult<Vec<(String, Cell)>> {
    let corrupt = |e: String| StoreError::Corrupt(format!("packed usage rollup: {e}"));
    let json = zstd::bulk::decompress(bytes, 1 << 30).map_err(|e| corrupt(e.to_string()))?;
    serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
}

/// The stored cells of `dim` in `hour`: the packed entry of a closed hour, else the previous version's one entry
/// per group; `None` when the store holds neither (the open hour, or an hour without uses).
pub fn stored_hour_cells(
    store: &dyn LogStore,
    hour: i64,
    dim: Dim,
) -> StoreResult<Option<Vec<(String, Cell)>>> {
    if let Some(packed) = store.get_side(&packed_key(hour, dim))? {
        return decode_packed(&packed).map(Some);
    }
    let mut cells = Vec::new();
    for entry in store.scan_side(&hour_dim_prefix(hour, dim)) {
        let (key, value) = entry?;
        let group = group_of_key(&key).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "usage rollup cell {}",
                String::from_utf8_lossy(&key)
            ))
        })?;
        cells.push((group, Cell::decode(&value)?));
    }
    Ok((!cells.is_empty()).then_some(cells))
}

/// Whether a closed hour's packed cells are stored (every use counts in all four dimensions, so one is enough).
pub fn is_packed(store: &dyn LogStore, hour: i64) -> StoreResult<bool> {
    Ok(store.get_side(&packed_key(hour, Dim::Key))?.is_some())
}

/// The keys of the previous version's per-group cells, in key order (so by hour).
pub fn legacy_cells(store: &dyn LogStore) -> StoreResult<Vec<Vec<u8>>> {
    store
        .scan_side(ROLLUP_PREFIX)
        .map(|entry| entry.map(|(key, _)| key))
        .collect()
}

/// The hours that have rollups stored: packed, per group, or an archived part.
pub fn stored_hours(store: &dyn LogStore) -> StoreResult<BTreeSet<i64>> {
    let mut hours = BTreeSet::new();
    for prefix in [ROLLUP_PREFIX, PACKED_PREFIX, ARCHIVED_PREFIX] {
        for entry in store.scan_side(prefix) {
            hours.extend(hour_of_key(&entry?.0));
        }
    }
    Ok(hours)
}

/// The first hour with rollups.
pub fn first_hour(store: &dyn LogStore) -> StoreResult<Option<i64>> {
    let mut first = None::<i64>;
    for prefix in [ROLLUP_PREFIX, PACKED_PREFIX] {
        if let Some((key, _)) = store.scan_side(prefix).next().transpose()? {
            first = match (first, hour_of_key(&key)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    Ok(first)
}

/// The hour of a stored cell key.
pub fn hour_of_key(key: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = key
        .get(ROLLUP_PREFIX.len()..ROLLUP_PREFIX.len() + 8)?
        .try_into()
        .ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// The group of a stored cell key.
pub fn group_of_key(key: &[u8]) -> Option<String> {
    let group = key.get(ROLLUP_PREFIX.len() + 9..)?;
    String::from_utf8(group.to_vec()).ok()
}

/// The uses of one group within one hour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    #[serde(rename = "n")]
    pub total: u64,
    #[serde(rename = "a")]
    pub allowed: u64,
    #[serde(rename = "d", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub denied: BTreeMap<VerifyCode, u64>,
    /// Times of the first and last use, in microseconds.
    #[serde(rename = "f")]
    pub first: i64,
    #[serde(rename = "l")]
    pub last: i64,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub ips: BTreeSet<String>,
    /// Whether more distinct IPs were seen than `ips` holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more_ips: bool,
}

impl Cell {
    pub(crate) fn add(&mut self, dim: Dim, time: LedgerTime, used: &KeyUsed) {
        let time = time.as_micros();
        if self.total == 0 {
            self.first = time;
        }
        self.total += 1;
        self.last = time;
        if used.outcome == VerifyCode::Valid {
            self.allowed += 1;
        } else {
            *self.denied.entry(used.outcome).or_default() += 1;
        }
        if dim == Dim::Ip {
            return;
        }
        if let Some(ip) = &used.ip {
            if self.ips.len() < MAX_CELL_IPS || self.ips.contains(ip) {
                self.ips.insert(ip.clone());
            } else {
                self.more_ips = true;
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> StoreResult<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| StoreError::Corrupt(format!("usage rollup cell: {e}")))
    }
}

/// Which part of the log the rollups cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupCoverage {
    /// The first seq the rollups count (1, or the first event kept when the log was archived before rollups).
    pub from_seq: u64,
    /// That event's time (microseconds).
    pub from_micros: i64,
}

/// What the rollups cover, or `None` when the log has none yet.
pub fn coverage(store: &dyn LogStore) -> StoreResult<Option<RollupCoverage>> {
    store
        .get_side(ROLLUP_MARKER)?
        .map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("usage rollup marker: {e}")))
        })
        .transpose()
}

/// The marker entry saying rollups cover the log from `coverage` on.
pub fn marker_entry(coverage: RollupCoverage) -> (Vec<u8>, Vec<u8>) {
    // A struct of two integers always serialises.
    let value = serde_json::to_vec(&coverage).unwrap_or_default();
    (ROLLUP_MARKER.to_vec(), value)
}
