//! Copying a ledger's log from one store to another (sled to PostgreSQL and back): records in seq order with the
//! chain checked link by link as they are read, every index filed again from the events, then every side entry
//! (Merkle nodes, checkpoints, signers, snapshots, rollups). The caller verifies the copy with the ledger's
//! public key before using it.

use super::salvage::ChainFollower;
use super::{AppendBatch, LogStore, StoreError, StoreResult};
use crate::event::Event;

/// Records per batch written to the target.
const COPY_BATCH: usize = 4_096;

/// What a copy moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    pub events: u64,
    pub side_entries: u64,
}

/// Copies everything in `source` into the empty `target`, refusing a broken chain link, a gap or an archived
/// source (whose first events are elsewhere). `progress` is told the last seq copied.
pub fn copy_log(
    source: &dyn LogStore,
    target: &dyn LogStore,
    progress: &dyn Fn(u64),
) -> StoreResult<CopyReport> {
    if target.head()?.is_some() {
        return Err(StoreError::Corrupt(
            "the target already holds events: copy into an empty store".into(),
        ));
    }
    if source.get_side(b"archive/prefix")?.is_some() {
        return Err(StoreError::Corrupt(
            "the source ledger was archived (its first events live in archive files): copying it is not supported"
                .into(),
        ));
    }
    let mut report = CopyReport::default();
    let mut chain = ChainFollower::default();
    let mut batch = AppendBatch::default();
    for record in source.scan(1, u64::MAX) {
        let record = record?;
        chain.accept(&record).map_err(|problem| {
            StoreError::Corrupt(format!("{problem}: the source fails verification"))
        })?;
        let event = Event::decode(&record.body)
            .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", record.seq)))?;
        batch.index_event(&event, batch.records.len());
        batch.records.push(record);
        report.events += 1;
        if batch.records.len() == COPY_BATCH {
            target.append(&std::mem::take(&mut batch))?;
            progress(report.events);
        }
    }
    for entry in source.scan_side(b"") {
        batch.side.push(entry?);
        report.side_entries += 1;
        if batch.side.len() == COPY_BATCH {
            target.append(&std::mem::take(&mut batch))?;
        }
    }
    target.append(&batch)?;
    progress(report.events);
    Ok(report)
}
