//! The open hour's usage rollup cells, kept in memory and never stored (FORMAT.md §4). The writer counts each
//! batch's uses into them once the batch is written, and packs an hour into the store only when it closes, in the
//! batch holding the first event of a later hour. Readers of the same process share the cells: a reader takes a
//! snapshot of a dimension's shards (a few reference counts under a short read lock), and the writer copies a
//! shard only when it changes one that a reader still holds. At open, the cells are counted again from the
//! events since the hour's start (`count_hour`); a reader without the writer counts them the same way.

use super::rollup::{self, Dim};
use super::rollup_cells::shard_of;
pub use super::rollup_cells::{HourCells, Shard};
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData};
use crate::store::{AppendBatch, LogStore};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The open hour's cells as written so far, shared by the writer and the readers of one process. Empty (`None`)
/// where no writer runs (a follower) or before the writer opened: readers then count the hour from its events.
#[derive(Clone, Debug, Default)]
pub struct OpenHour(Arc<RwLock<Option<HourCells>>>);

impl OpenHour {
    fn read(&self) -> RwLockReadGuard<'_, Option<HourCells>> {
        // The cells are only changed by infallible counting: a panic elsewhere leaves them consistent.
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Option<HourCells>> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A snapshot of the open hour held here and its shards of `dim`: a reader holding it makes the writer copy
    /// the shards it changes meanwhile, never wait.
    pub fn snapshot(&self, dim: Dim) -> Option<(i64, Vec<Arc<Shard>>)> {
        self.read()
            .as_ref()
            .map(|cells| (cells.hour, cells.shards(dim)))
    }

    /// [`OpenHour::snapshot`] when `hour` is the open hour held here.
    pub fn shards_of(&self, hour: i64, dim: Dim) -> Option<Vec<Arc<Shard>>> {
        self.snapshot(dim)
            .filter(|(open, _)| *open == hour)
            .map(|(_, shards)| shards)
    }

    /// The open hour held here, if any.
    pub fn hour(&self) -> Option<i64> {
        self.read().as_ref().map(HourCells::hour)
    }
}

/// The writer's side of the open hour: packs the hours a batch closes into that batch, and counts the batch's
/// uses into the shared cells once it is written.
#[derive(Debug, Default)]
pub struct RollupWriter {
    open: OpenHour,
    /// The last event counted into the cells (seq, hash), and uses counted since the last checkpoint.
    through: Option<(u64, crate::chain::Hash32)>,
    since_checkpoint: u64,
}

impl RollupWriter {
    /// A writer continuing with `cells`, the open hour counted at open (`None` for an empty log).
    pub fn new(cells: Option<HourCells>) -> Self {
        Self {
            open: OpenHour(Arc::new(RwLock::new(cells))),
            through: None,
            since_checkpoint: 0,
        }
    }

    /// Before a batch is written: the checkpoint of the cells as they are (up to the last event published),
    /// when [`rollup_checkpoint::CHECKPOINT_EVERY`] uses were counted since the last one, or when `force`d
    /// (clean shutdown) and any were.
    ///
    /// [`rollup_checkpoint::CHECKPOINT_EVERY`]: super::rollup_checkpoint::CHECKPOINT_EVERY
    pub fn checkpoint(&mut self, force: bool) -> Option<(Vec<u8>, Vec<u8>)> {
        let due = self.since_checkpoint >= super::rollup_checkpoint::CHECKPOINT_EVERY
            || (force && self.since_checkpoint > 0);
        let (through, hash) = self.through.filter(|_| due)?;
        let entry = self
            .open
            .read()
            .as_ref()
            .map(|cells| super::rollup_checkpoint::encode(cells, through, &hash))?;
        self.since_checkpoint = 0;
        Some(entry)
    }

    /// The cells readers share.
    pub fn shared(&self) -> OpenHour {
        self.open.clone()
    }

    /// Before a batch is written: puts the packed cells of every hour its events close into it — the open hour
    /// (with its uses in this batch) and any hour that starts and ends within the batch. Times never decrease
    /// (the writer stamps each event with the later of the clock and the previous event's time), so the hours
    /// of a batch's events are in order.
    pub fn pack_closed<'a>(
        &self,
        events: impl Iterator<Item = &'a Event> + Clone,
        batch: &mut AppendBatch,
    ) {
        let Some(end_hour) = events.clone().last().map(|e| rollup::hour_of(e.time)) else {
            return;
        };
        let mut closing = self.open.read().clone();
        if closing.as_ref().is_some_and(|cells| cells.hour == end_hour) {
            return;
        }
        if let Some(open) = &closing {
            // The part of it an archive cut away, if any, is in the packed cells from now on.
            let archived = Dim::ALL.map(|dim| rollup::archived_key(open.hour, dim));
            batch.side_removals.extend(archived);
        }
        for event in events {
            let hour = rollup::hour_of(event.time);
            if hour >= end_hour {
                break;
            }
            let EventData::KeyUsed(used) = &event.data else {
                continue;
            };
            if closing.as_ref().map(HourCells::hour) != Some(hour) {
                if let Some(done) = closing.replace(HourCells::new(hour)) {
                    batch.side.extend(done.packed_entries());
                }
            }
            if let Some(cells) = closing.as_mut() {
                cells.add(event.time, used);
            }
        }
        if let Some(done) = closing {
            batch.side.extend(done.packed_entries());
        }
    }

    /// After the batch is written: counts its uses into the shared cells, which move on to the hour of its last
    /// event when that is a later one (its earlier hours were packed by [`RollupWriter::pack_closed`]).
    /// `last` is the batch's last event (seq and hash).
    pub fn publish<'a>(
        &mut self,
        events: impl Iterator<Item = &'a Event> + Clone,
        last: (u64, crate::chain::Hash32),
    ) {
        let Some(end_hour) = events.clone().last().map(|e| rollup::hour_of(e.time)) else {
            return;
        };
        self.through = Some(last);
        let mut open = self.open.write();
        let cells = match open.as_mut() {
            Some(cells) if cells.hour == end_hour => cells,
            _ => open.insert(HourCells::new(end_hour)),
        };
        for event in events {
            if let EventData::KeyUsed(used) = &event.data {
                if rollup::hour_of(event.time) == end_hour {
                    cells.add(event.time, used);
                    self.since_checkpoint += 1;
                }
            }
        }
    }
}

/// Where counting `hour` from the events starts: the cells of its part that `audit archive` removed (empty when
/// it cut no part of this hour away) and the first seq to count from (`from_seq`, the rollups' coverage, or the
/// first event kept after that archived part).
pub fn hour_base(store: &dyn LogStore, hour: i64, from_seq: u64) -> LedgerResult<(HourCells, u64)> {
    let mut cells = HourCells::new(hour);
    let mut archived = false;
    for dim in Dim::ALL {
        if let Some(bytes) = store.get_side(&rollup::archived_key(hour, dim))? {
            archived = true;
            for (group, cell) in rollup::decode_packed(&bytes)? {
                Arc::make_mut(&mut cells.dims[dim.index()][shard_of(&group)]).insert(group, cell);
            }
        }
    }
    if !archived {
        return Ok((cells, from_seq));
    }
    let kept = crate::store::archived_size(store)?.saturating_add(1);
    Ok((cells, from_seq.max(kept)))
}

/// Counts the uses among `events` that fall in `cells`' hour into them, in `only` one dimension or in all;
/// returns the cells and how many uses were counted.
pub fn count_hour(
    mut cells: HourCells,
    events: impl Iterator<Item = LedgerResult<Event>>,
    only: Option<Dim>,
) -> LedgerResult<(HourCells, u64)> {
    let hour = cells.hour;
    let mut counted = 0u64;
    for event in events {
        let event = event?;
        let EventData::KeyUsed(used) = &event.data else {
            continue;
        };
        if rollup::hour_of(event.time) != hour {
            continue;
        }
        counted += 1;
        match only {
            Some(dim) => cells.add_in(dim, event.time, used),
            None => cells.add(event.time, used),
        }
    }
    Ok((cells, counted))
}

/// The stored events with seqs in `seqs`, decoded (for a writer, whose replay has checked them already).
pub fn stored_events(
    store: &dyn LogStore,
    seqs: std::ops::Range<u64>,
) -> impl Iterator<Item = LedgerResult<Event>> + '_ {
    store.scan(seqs.start, seqs.end).map(|record| {
        let record = record?;
        let seq = record.seq;
        Event::decode(&record.body).map_err(|source| LedgerError::Decode { seq, source })
    })
}

/// The entries that keep the counts of the events up to `through` that `audit archive` is about to remove, when
/// they fall in an hour not packed yet (the open hour): that hour's archived part, packed, to be written in the
/// same step as the archived prefix. Nothing when the hour is packed (its counts stay in the store).
pub fn archived_part(store: &dyn LogStore, through: u64) -> LedgerResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let (Some(coverage), Some(record)) = (rollup::coverage(store)?, store.get(through)?) else {
        return Ok(Vec::new());
    };
    let hour = rollup::hour_of(record.time);
    if rollup::is_packed(store, hour)? {
        return Ok(Vec::new());
    }
    let (base, from_seq) = hour_base(store, hour, coverage.from_seq)?;
    let seqs = hour_seqs(store, hour, from_seq, through.saturating_add(1))?;
    let (cells, _) = count_hour(base, stored_events(store, seqs), None)?;
    Ok(cells.entries(rollup::archived_key))
}

/// The seqs of `hour`'s events that the rollups count (from `from_seq` on), up to `end` (exclusive).
pub fn hour_seqs(
    store: &dyn LogStore,
    hour: i64,
    from_seq: u64,
    end: u64,
) -> LedgerResult<std::ops::Range<u64>> {
    let start = store
        .first_seq_at_or_after(rollup::hour_start(hour))?
        .max(from_seq);
    let end = end.min(store.first_seq_at_or_after(rollup::hour_start(hour.saturating_add(1)))?);
    Ok(start..end.max(start))
}

#[cfg(test)]
#[path = "rollup_open_tests.rs"]
mod tests;
