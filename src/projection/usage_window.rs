//! Usage within a time window, grouped. Whole hours are read from the hourly rollups: closed hours from the store
//! (`rollup`), the open hour from the writer's cells in memory when the reader has them, else counted from that
//! hour's events (`rollup_open`) — the same cells either way. The part of an hour the window cuts is read event
//! by event, and only for the groups whose uses in that hour straddle the cut. Windows the rollups cannot answer
//! (one key's usage, a log archived before rollups existed) scan the window.

pub use super::usage_rows::UsageRow;

use super::rollup::{self, Cell, Dim, RollupCoverage};
use super::rollup_open::{self, OpenHour, Shard};
use super::usage_rows::GroupBy;
use super::usage_rows::Rows;
use super::KeyState;
use crate::error::LedgerResult;
use crate::event::EventData;
use crate::query::{select_events, EventFilter};
use crate::store::LogStore;
use crate::time::LedgerTime;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

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

/// The rollup dimension a grouping reads (owners through their keys).
fn dim_of(group_by: GroupBy) -> Dim {
    match group_by {
        GroupBy::Key | GroupBy::Owner => Dim::Key,
        GroupBy::Ip => Dim::Ip,
        GroupBy::UserAgent => Dim::UserAgent,
        GroupBy::Scope => Dim::Scope,
    }
}

/// Usage within `[from, to)` (optionally of one key), grouped, busiest first, at most `top` rows, as a reader
/// without the writer answers it: the open hour is counted from its events.
pub fn usage_report(
    store: &dyn LogStore,
    keys: &KeyState,
    filter: &EventFilter,
    durable_seq: u64,
    group_by: GroupBy,
    top: usize,
) -> LedgerResult<UsageReport> {
    usage_report_with(store, keys, filter, durable_seq, group_by, top, None)
}

/// [`usage_report`], reading the open hour from the writer's cells in `open` when they hold it.
pub fn usage_report_with(
    store: &dyn LogStore,
    keys: &KeyState,
    filter: &EventFilter,
    durable_seq: u64,
    group_by: GroupBy,
    top: usize,
    open: Option<&OpenHour>,
) -> LedgerResult<UsageReport> {
    let dim = dim_of(group_by);
    // Taken first, and held while counting: the rows name their groups by the cells' own strings.
    let snapshot = open.and_then(|open| open.snapshot(dim));
    let mut rows = Rows::new(keys, group_by, dim);
    let usable = rollup::coverage(store)?.filter(|coverage| rollups_answer(coverage, filter));
    let (scanned, rollup_hours) = match usable {
        Some(coverage) => {
            let from_rollups = FromRollups {
                store,
                durable_seq,
                dim,
                coverage,
                open: snapshot
                    .as_ref()
                    .map(|(hour, shards)| (*hour, shards.as_slice())),
            };
            from_rollups.count(filter, &mut rows)?
        }
        None => (scan(store, filter, durable_seq, dim, None, &mut rows)?, 0),
    };
    let rows = rows.busiest(top);
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
        rows.row(&group).add_use(dim, event.time, used);
    }
    Ok(scanned)
}

/// What counting a window from the hourly cells reads.
struct FromRollups<'a> {
    store: &'a dyn LogStore,
    durable_seq: u64,
    dim: Dim,
    coverage: RollupCoverage,
    /// The writer's open hour and its cells of `dim`, as they were when the report started.
    open: Option<(i64, &'a [Arc<Shard>])>,
}

/// The cells of one hour of one dimension, wherever they come from.
enum Cells<'a> {
    /// The writer's open hour, in memory.
    Shared(&'a [Arc<Shard>]),
    /// Packed (or, from the previous version, per group) in the store.
    Stored(Vec<(String, Cell)>),
    /// The open hour of a reader without the writer, counted from its events (in its one dimension).
    Counted(rollup_open::HourCells),
}

/// Where a cell's uses go, given the window.
struct Window {
    from: i64,
    to: i64,
    /// Whether the window holds the whole hour.
    whole: bool,
}

impl Window {
    /// Counts, through `count`, the cells the window holds whole; returns the groups whose uses straddle its edge.
    fn sort<'c>(
        &self,
        cells: impl Iterator<Item = (&'c String, &'c Cell)>,
        mut count: impl FnMut(&'c String, &'c Cell),
    ) -> HashSet<String> {
        let mut straddling = HashSet::new();
        for (group, cell) in cells {
            match self.holds(cell) {
                Some(true) => count(group, cell),
                Some(false) => {
                    straddling.insert(group.clone());
                }
                None => {}
            }
        }
        straddling
    }

    /// Whether all of the cell's uses are inside the window (`Some(true)`), some may be (`Some(false)`: they are
    /// read event by event), or none (`None`).
    fn holds(&self, cell: &Cell) -> Option<bool> {
        if self.whole || (self.from <= cell.first && cell.last < self.to) {
            Some(true)
        } else if cell.last >= self.from && cell.first < self.to {
            Some(false)
        } else {
            None
        }
    }
}

impl<'a> FromRollups<'a> {
    /// Counts the window from the hourly cells, reading events only for groups whose uses straddle a cut hour's
    /// edge (and, without the writer, the open hour's); returns (uses read, hours read from rollups).
    fn count(&self, filter: &EventFilter, rows: &mut Rows<'a>) -> LedgerResult<(u64, u64)> {
        let Some(head) = self.store.head()? else {
            return Ok((0, 0));
        };
        let head_hour = rollup::hour_of(head.time);
        let first_hour = rollup::first_hour(self.store)?.map_or(head_hour, |h| h.min(head_hour));
        let from = filter.from.map_or(i64::MIN, LedgerTime::as_micros);
        let to = filter.to.map_or(i64::MAX, LedgerTime::as_micros);
        let low = first_hour.max(filter.from.map_or(i64::MIN, rollup::hour_of));
        let high = head_hour.min(rollup::hour_of(LedgerTime::from_micros(to - 1)));
        let (mut scanned, mut hours) = (0u64, 0u64);
        for hour in low..=high {
            let start = rollup::hour_start(hour).as_micros();
            let end = start.saturating_add(rollup::HOUR_MICROS);
            let window = Window {
                from,
                to,
                whole: from <= start && end <= to,
            };
            let Some((cells, read)) = self.hour_cells(hour, hour == head_hour)? else {
                continue;
            };
            match read {
                Some(read) => scanned += read,
                None => hours += 1,
            }
            let straddling = self.add_cells(&cells, &window, rows);
            if !straddling.is_empty() {
                let cut = EventFilter {
                    from: Some(LedgerTime::from_micros(from.max(start))),
                    to: Some(LedgerTime::from_micros(to.min(end))),
                    ..Default::default()
                };
                scanned += scan(
                    self.store,
                    &cut,
                    self.durable_seq,
                    self.dim,
                    Some(&straddling),
                    rows,
                )?;
            }
        }
        Ok((scanned, hours))
    }

    /// Counts the cells the window holds whole; returns the groups whose uses straddle its edge.
    fn add_cells(
        &self,
        cells: &Cells<'a>,
        window: &Window,
        rows: &mut Rows<'a>,
    ) -> HashSet<String> {
        let dim = self.dim;
        match cells {
            Cells::Shared(shards) => {
                rows.reserve(shards.iter().map(|shard| shard.len()).sum());
                let cells = shards.iter().flat_map(|shard| shard.iter());
                window.sort(cells, |group, cell| rows.row_of(group).add_cell(dim, cell))
            }
            Cells::Stored(stored) => {
                rows.reserve(stored.len());
                let cells = stored.iter().map(|(group, cell)| (group, cell));
                window.sort(cells, |group, cell| rows.row(group).add_cell(dim, cell))
            }
            Cells::Counted(counted) => {
                rows.reserve(counted.len(dim));
                let cells = counted.cells(dim);
                window.sort(cells, |group, cell| rows.row(group).add_cell(dim, cell))
            }
        }
    }

    /// The cells of `hour`, with how many uses were read to count them (`None` when they came from rollups): a
    /// closed hour from the store, the writer's open hour from memory, the open hour of a reader without the
    /// writer from its events; `None` for a closed hour without uses.
    fn hour_cells(&self, hour: i64, open: bool) -> LedgerResult<Option<(Cells<'a>, Option<u64>)>> {
        // The store before memory: the snapshot was taken first, and the writer packs its hour into the store
        // before it moves on to a later one, so a packed hour is complete while the snapshot of it may not be.
        if let Some(cells) = rollup::stored_hour_cells(self.store, hour, self.dim)? {
            return Ok(Some((Cells::Stored(cells), None)));
        }
        if let Some((_, shards)) = self.open.filter(|(open_hour, _)| *open_hour == hour) {
            return Ok(Some((Cells::Shared(shards), None)));
        }
        if !open {
            return Ok(None);
        }
        // Counted as the writer counts it at open: the part an archive cut away, then the events kept.
        let (base, from_seq) = rollup_open::hour_base(self.store, hour, self.coverage.from_seq)?;
        let window = EventFilter {
            from: Some(rollup::hour_start(hour)),
            to: Some(rollup::hour_start(hour.saturating_add(1))),
            after_seq: Some(from_seq.saturating_sub(1)),
            ..Default::default()
        };
        let events = select_events(self.store, &window, self.durable_seq)?;
        let (cells, read) = rollup_open::count_hour(base, events, Some(self.dim))?;
        Ok(Some((Cells::Counted(cells), Some(read))))
    }
}
