//! Usage within a time window, grouped. Whole hours are read from the hourly rollups (`rollup`); the part of an
//! hour the window cuts is read event by event, and only for the groups whose uses in that hour straddle the cut.
//! Windows the rollups cannot answer (one key's usage, a log archived before rollups existed) scan the window.

use super::rollup::{self, Cell, Dim, RollupCoverage};
use super::usage::GroupBy;
use super::KeyState;
use crate::error::LedgerResult;
use crate::event::{EventData, KeyUsed, VerifyCode};
use crate::query::{select_events, EventFilter};
use crate::store::LogStore;
use crate::time::LedgerTime;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

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
    /// `distinct_ips` is a lower bound: in some hour this group was used from more than 64 IPs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub distinct_ips_capped: bool,
    #[serde(skip)]
    ips: HashSet<String>,
}

impl UsageRow {
    fn add_use(&mut self, time: LedgerTime, used: &KeyUsed) {
        self.total += 1;
        if used.outcome == VerifyCode::Valid {
            self.allowed += 1;
        } else {
            *self.denied.entry(used.outcome).or_default() += 1;
        }
        self.first = Some(self.first.map_or(time, |first| first.min(time)));
        self.last = Some(self.last.map_or(time, |last| last.max(time)));
        if let Some(ip) = &used.ip {
            if !self.ips.contains(ip) {
                self.ips.insert(ip.clone());
            }
        }
    }

    fn add_cell(&mut self, dim: Dim, cell_group: &str, cell: &Cell) {
        self.total += cell.total;
        self.allowed += cell.allowed;
        for (code, count) in &cell.denied {
            *self.denied.entry(*code).or_default() += count;
        }
        let (first, last) = (
            LedgerTime::from_micros(cell.first),
            LedgerTime::from_micros(cell.last),
        );
        self.first = Some(self.first.map_or(first, |f| f.min(first)));
        self.last = Some(self.last.map_or(last, |l| l.max(last)));
        if dim == Dim::Ip {
            if cell_group != "(none)" {
                self.ips.insert(cell_group.to_string());
            }
        } else {
            self.ips.extend(cell.ips.iter().cloned());
            self.distinct_ips_capped |= cell.more_ips;
        }
    }
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct UsageReport {
    pub from: Option<LedgerTime>,
    pub to: Option<LedgerTime>,
    pub key_id: Option<Uuid>,
    pub group_by: String,
    /// Uses read event by event (the whole window, or only the cut hours at its ends when rollups answered).
    pub events_scanned: u64,
    /// Hours whose rollups were read.
    #[serde(default)]
    pub rollup_hours: u64,
    pub rows: Vec<UsageRow>,
}

/// The rows of one report while they are being counted.
struct Rows<'a> {
    keys: &'a KeyState,
    group_by: GroupBy,
    rows: HashMap<String, UsageRow>,
}

impl<'a> Rows<'a> {
    /// The row a group of the rollup dimension (or of a use) is counted in: owners are found through the key.
    fn row(&mut self, dim_group: String) -> &mut UsageRow {
        let group = match self.group_by {
            GroupBy::Owner => dim_group
                .parse::<Uuid>()
                .ok()
                .and_then(|k| self.keys.get(&k))
                .map_or_else(|| "(no key)".to_string(), |k| k.config.owner.clone()),
            _ => dim_group,
        };
        self.rows.entry(group.clone()).or_insert_with(|| UsageRow {
            group,
            ..Default::default()
        })
    }
}

/// The rollup dimension a grouping reads (owners through their keys).
fn dim_of(group_by: GroupBy) -> Dim {
    match group_by {
        GroupBy::Key | GroupBy::Owner => Dim::Key,
        GroupBy::Ip => Dim::Ip,
        GroupBy::UserAgent => Dim::UserAgent,
        GroupBy::Scope => Dim::Scope,
    }
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
    let mut rows = Rows {
        keys,
        group_by,
        rows: HashMap::new(),
    };
    let dim = dim_of(group_by);
    let usable = rollup::coverage(store)?.filter(|coverage| rollups_answer(coverage, filter));
    let (scanned, rollup_hours) = match usable {
        Some(_) => count_from_rollups(store, filter, durable_seq, dim, &mut rows)?,
        None => (scan(store, filter, durable_seq, dim, None, &mut rows)?, 0),
    };
    let mut rows: Vec<UsageRow> = rows
        .rows
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
    Ok(UsageReport {
        from: filter.from,
        to: filter.to,
        key_id: filter.key_id,
        group_by: group_by.as_str().to_string(),
        events_scanned: scanned,
        rollup_hours,
        rows,
    })
}

/// Whether rollups can answer: all keys (one key's history is read through its own index), and a window the
/// rollups cover.
fn rollups_answer(coverage: &RollupCoverage, filter: &EventFilter) -> bool {
    filter.key_id.is_none()
        && filter.after_seq.is_none()
        && (coverage.from_seq <= 1
            || filter
                .from
                .is_some_and(|from| from.as_micros() >= coverage.from_micros))
}

/// Counts the uses in `filter`'s window event by event, only of the `only` groups when given; returns how many
/// uses were read.
fn scan(
    store: &dyn LogStore,
    filter: &EventFilter,
    durable_seq: u64,
    dim: Dim,
    only: Option<&HashSet<String>>,
    rows: &mut Rows<'_>,
) -> LedgerResult<u64> {
    let mut scanned = 0u64;
    for event in select_events(store, filter, durable_seq)? {
        let event = event?;
        let EventData::KeyUsed(used) = &event.data else {
            continue;
        };
        scanned += 1;
        let group = dim.group_of(used);
        if only.is_some_and(|only| !only.contains(&group)) {
            continue;
        }
        rows.row(group).add_use(event.time, used);
    }
    Ok(scanned)
}

/// Counts the window from the hourly cells, reading events only for groups whose uses straddle a cut hour's
/// edge; returns (uses read, hours read).
fn count_from_rollups(
    store: &dyn LogStore,
    filter: &EventFilter,
    durable_seq: u64,
    dim: Dim,
    rows: &mut Rows<'_>,
) -> LedgerResult<(u64, u64)> {
    let Some(first_hour) = rollup::first_hour(store)? else {
        return Ok((0, 0));
    };
    let Some(head) = store.head()? else {
        return Ok((0, 0));
    };
    let from = filter.from.map_or(i64::MIN, LedgerTime::as_micros);
    let to = filter.to.map_or(i64::MAX, LedgerTime::as_micros);
    let low = first_hour.max(filter.from.map_or(i64::MIN, rollup::hour_of));
    let high = rollup::hour_of(head.time).min(rollup::hour_of(LedgerTime::from_micros(to - 1)));
    let (mut scanned, mut hours) = (0u64, 0u64);
    for hour in low..=high {
        let start = rollup::hour_start(hour).as_micros();
        let end = start.saturating_add(rollup::HOUR_MICROS);
        let whole = from <= start && end <= to;
        let mut straddling = HashSet::new();
        for (group, cell) in rollup::hour_cells(store, hour, dim)? {
            if whole || (from <= cell.first && cell.last < to) {
                rows.row(group.clone()).add_cell(dim, &group, &cell);
            } else if cell.last >= from && cell.first < to {
                straddling.insert(group);
            }
        }
        hours += 1;
        if !straddling.is_empty() {
            let cut = EventFilter {
                from: Some(LedgerTime::from_micros(from.max(start))),
                to: Some(LedgerTime::from_micros(to.min(end))),
                ..Default::default()
            };
            scanned += scan(store, &cut, durable_seq, dim, Some(&straddling), rows)?;
        }
    }
    Ok((scanned, hours))
}
