//! Brings the attribute index and the usage rollups of a log written before they existed up to date, once, when
//! the writer opens the store; a crash part-way leaves no marker, so the next open simply files the entries again.

use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData};
use crate::projection::rollup::{self, RollupCoverage};
use crate::projection::rollup_open::HourCells;
use crate::store::{has_attribute_index, AppendBatch, LogStore, ATTRIBUTE_INDEX_MARKER};

/// Entries written per batch while backfilling.
const BACKFILL_BATCH: usize = 100_000;
/// Packed rollup entries (four per hour with uses) written per batch while backfilling.
const BACKFILL_PACKED: usize = 1_024;

/// Files every stored event under its attributes unless the index already covers the log; returns how many
/// entries were written.
pub fn ensure_attribute_index(store: &dyn LogStore) -> LedgerResult<u64> {
    if has_attribute_index(store)? {
        return Ok(0);
    }
    let head = store.head()?.map_or(0, |h| h.seq);
    let mut batch = AppendBatch::default();
    let mut filed = 0u64;
    for record in store.scan(1, head.saturating_add(1)) {
        let record = record?;
        let seq = record.seq;
        let event =
            Event::decode(&record.body).map_err(|source| LedgerError::Decode { seq, source })?;
        for digest in event.attribute_digests() {
            batch.attribute_index.push((digest, seq));
        }
        if batch.attribute_index.len() >= BACKFILL_BATCH {
            filed += batch.attribute_index.len() as u64;
            store.write_batch(&std::mem::take(&mut batch))?;
        }
    }
    filed += batch.attribute_index.len() as u64;
    batch
        .side
        .push((ATTRIBUTE_INDEX_MARKER.to_vec(), b"1".to_vec()));
    store.append(&batch)?;
    Ok(filed)
}

/// Counts every stored event into the hourly usage rollups unless they already cover the log; returns how many
/// events were counted. Every hour before the head's is packed; the head's hour stays open, for the writer to
/// count again from its events (`open_hour`). Cells are computed from scratch (never read back), so a crash
/// part-way is repaired by the next open.
pub fn ensure_rollups(store: &dyn LogStore) -> LedgerResult<u64> {
    if rollup::coverage(store)?.is_some() {
        return Ok(0);
    }
    let head = store.head()?.map_or(0, |h| h.seq);
    let mut cells: Option<HourCells> = None;
    let mut batch = AppendBatch::default();
    let mut coverage: Option<RollupCoverage> = None;
    let mut counted = 0u64;
    for record in store.scan(1, head.saturating_add(1)) {
        let record = record?;
        let seq = record.seq;
        coverage.get_or_insert(RollupCoverage {
            from_seq: seq,
            from_micros: record.time.as_micros(),
        });
        let hour = rollup::hour_of(record.time);
        if cells.as_ref().map(HourCells::hour) != Some(hour) {
            if let Some(done) = cells.replace(HourCells::new(hour)) {
                batch.side.extend(done.packed_entries());
            }
        }
        let event =
            Event::decode(&record.body).map_err(|source| LedgerError::Decode { seq, source })?;
        if let (EventData::KeyUsed(used), Some(cells)) = (&event.data, cells.as_mut()) {
            cells.add(event.time, used);
        }
        counted += 1;
        if batch.side.len() >= BACKFILL_PACKED {
            store.write_batch(&std::mem::take(&mut batch))?;
        }
    }
    batch
        .side
        .push(rollup::marker_entry(coverage.unwrap_or(RollupCoverage {
            from_seq: 1,
            from_micros: i64::MIN,
        })));
    store.append(&batch)?;
    Ok(counted)
}
