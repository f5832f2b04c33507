//! Usage rollups at writer open: the open hour (the head's) is counted again from the log's own events, since
//! its cells live in memory (from the writer's checkpoint of them on, when it matches the log); a closed hour whose packed cells are missing is packed from its events; and
//! the per-group cells an earlier version kept for its open hour (`rollup/h/`) are removed — the packing and the
//! removal in one batch, after the counting. Counts come only from events, so a crash at any point leaves
//! nothing the next open does not count again exactly once.

use crate::error::LedgerResult;
use crate::projection::rollup::{self, RollupCoverage};
use crate::projection::rollup_checkpoint;
use crate::projection::rollup_open::{
    count_hour, hour_base, hour_seqs, stored_events, HourCells, RollupWriter,
};
use crate::store::{AppendBatch, LogStore};
use std::collections::BTreeSet;

/// What the open step did, for the log.
#[derive(Debug, Default)]
pub struct OpenedRollups {
    /// Uses counted into the open hour's cells.
    pub open_uses: u64,
    /// Closed hours packed from their events.
    pub packed_hours: usize,
    /// Previous-version cells removed.
    pub removed_cells: usize,
}

/// The open hour's checkpointed cells, read ahead: `Ledger::open` decodes them on a thread beside the replay (with
/// 100,000 keys and 300,000 IPs in the hour, ~0.4 s of a 1.5 s start, docs/PERFORMANCE.md).
pub struct Prefetched {
    hour: i64,
    loaded: Option<(HourCells, u64)>,
}

/// Reads the checkpoint of the head's hour, if any. Only reads; [`prepare`] still checks it against the log.
pub fn prefetch(store: &dyn LogStore) -> LedgerResult<Option<Prefetched>> {
    let Some(head) = store.head()? else {
        return Ok(None);
    };
    let hour = rollup::hour_of(head.time);
    Ok(Some(Prefetched {
        hour,
        loaded: rollup_checkpoint::load(store, hour)?,
    }))
}

/// The writer's rollups for `store`: counted from every event first when the log has none
/// (`backfill::ensure_rollups`), then opened as [`open_rollups`] says, with the checkpoint read ahead if given.
pub fn prepare(store: &dyn LogStore, prefetched: Option<Prefetched>) -> LedgerResult<RollupWriter> {
    let counted = super::backfill::ensure_rollups(store)?;
    if counted > 0 {
        tracing::info!(
            events = counted,
            "counted the existing events into usage rollups"
        );
    }
    let (rollups, opened) = open_rollups(store, prefetched)?;
    if opened.packed_hours > 0 || opened.removed_cells > 0 {
        tracing::info!(
            packed_hours = opened.packed_hours,
            removed_cells = opened.removed_cells,
            "packed closed hours of usage rollups from their events and removed the per-group cells of the open hour"
        );
    }
    tracing::debug!(
        uses = opened.open_uses,
        "counted the open hour's uses into its rollup cells"
    );
    Ok(rollups)
}

/// The writer's rollups for `store`, whose rollups cover the log (`backfill::ensure_rollups` ran first).
pub fn open_rollups(
    store: &dyn LogStore,
    prefetched: Option<Prefetched>,
) -> LedgerResult<(RollupWriter, OpenedRollups)> {
    let mut opened = OpenedRollups::default();
    let (Some(head), Some(coverage)) = (store.head()?, rollup::coverage(store)?) else {
        return Ok((RollupWriter::new(None), opened));
    };
    let open_hour = rollup::hour_of(head.time);
    let end = head.seq.saturating_add(1);
    let legacy = rollup::legacy_cells(store)?;
    // Archived parts of hours that closed since are in their packed cells: only the open hour's stays.
    let archived: Vec<Vec<u8>> = store
        .scan_side(rollup::ARCHIVED_PREFIX)
        .map(|entry| entry.map(|(key, _)| key))
        .filter(|key| {
            key.as_ref()
                .map_or(true, |key| rollup::hour_of_key(key) != Some(open_hour))
        })
        .collect::<Result<_, _>>()?;
    let mut closed: BTreeSet<i64> = legacy
        .iter()
        .chain(&archived)
        .filter_map(|key| rollup::hour_of_key(key))
        .filter(|hour| *hour < open_hour)
        .collect();
    let open_seqs = hour_seqs(store, open_hour, coverage.from_seq, end)?;
    closed.extend(unpacked_hour_before(store, &coverage, open_seqs.start)?);
    let mut batch = AppendBatch::default();
    for hour in closed {
        let (cells, _) = count_stored_hour(store, hour, coverage.from_seq, end)?;
        if !cells.is_empty() {
            batch.side.extend(cells.packed_entries());
            opened.packed_hours += 1;
        }
    }
    let (cells, uses) = count_open_hour(store, open_hour, coverage.from_seq, end, prefetched)?;
    opened.open_uses = uses;
    opened.removed_cells = legacy.len();
    batch.side_removals = legacy;
    batch.side_removals.extend(archived);
    if !batch.is_empty() {
        store.append(&batch)?;
    }
    Ok((RollupWriter::new(Some(cells)), opened))
}

/// The open hour's cells: from the writer's checkpoint of them plus the events after it, when the checkpoint
/// matches the log and no archive cut the hour; else counted from the store as [`count_stored_hour`].
fn count_open_hour(
    store: &dyn LogStore,
    hour: i64,
    from_seq: u64,
    end: u64,
    prefetched: Option<Prefetched>,
) -> LedgerResult<(HourCells, u64)> {
    let (base, kept_from) = hour_base(store, hour, from_seq)?;
    if base.is_empty() {
        let checkpoint = match prefetched.filter(|ahead| ahead.hour == hour) {
            Some(ahead) => ahead.loaded,
            None => rollup_checkpoint::load(store, hour)?,
        };
        if let Some((cells, through)) = checkpoint {
            if through < end && through.saturating_add(1) >= kept_from {
                let seqs = hour_seqs(store, hour, through.saturating_add(1), end)?;
                return count_hour(cells, stored_events(store, seqs), None);
            }
        }
    }
    // As count_stored_hour, with the base already read.
    let seqs = hour_seqs(store, hour, kept_from, end)?;
    count_hour(base, stored_events(store, seqs), None)
}

/// The cells of `hour` counted from the store: its archived part, if any, then its events kept in the store (from
/// `from_seq` on, before `end`); and how many events were counted.
fn count_stored_hour(
    store: &dyn LogStore,
    hour: i64,
    from_seq: u64,
    end: u64,
) -> LedgerResult<(HourCells, u64)> {
    let (base, from_seq) = hour_base(store, hour, from_seq)?;
    let seqs = hour_seqs(store, hour, from_seq, end)?;
    count_hour(base, stored_events(store, seqs), None)
}

/// The hour of the last event before the open hour, when its packed cells are missing. The writer packs an hour
/// in the same batch as the first event of a later one, so this finds nothing in a log it wrote; it is the check
/// that a closed hour was not left unpacked (by a tool or a version that appended otherwise), and costs one read
/// when that hour is packed. An hour without uses has nothing packed and is counted to find that out.
fn unpacked_hour_before(
    store: &dyn LogStore,
    coverage: &RollupCoverage,
    open_start: u64,
) -> LedgerResult<Option<i64>> {
    if open_start <= coverage.from_seq.max(1) {
        return Ok(None);
    }
    let Some(record) = store.get(open_start - 1)? else {
        return Ok(None);
    };
    let hour = rollup::hour_of(record.time);
    Ok((!rollup::is_packed(store, hour)?).then_some(hour))
}
