//! Reading events back: by seq range, time window or key, never past the last durable event.

use crate::checked::CheckedReader;
use crate::error::LedgerResult;
use crate::event::Event;
use crate::store::{LogStore, StoreResult, StoredRecord};
use crate::time::LedgerTime;
use uuid::Uuid;

/// Which events to read. Times are `[from, to)`; seqs are `[after_seq + 1, up_to_seq]`.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub from: Option<LedgerTime>,
    pub to: Option<LedgerTime>,
    pub key_id: Option<Uuid>,
    /// Resume after this seq (cursor paging).
    pub after_seq: Option<u64>,
}

/// The seq range `[start, end)` a time window covers, capped at `durable_seq`.
pub fn seq_range(
    store: &dyn LogStore,
    filter: &EventFilter,
    durable_seq: u64,
) -> StoreResult<(u64, u64)> {
    let mut start = match filter.from {
        Some(from) => store.first_seq_at_or_after(from)?,
        None => 1,
    };
    if let Some(after) = filter.after_seq {
        start = start.max(after + 1);
    }
    let mut end = durable_seq + 1;
    if let Some(to) = filter.to {
        end = end.min(store.first_seq_at_or_after(to)?);
    }
    Ok((start, end.max(start)))
}

/// Records matching the filter, in seq order, each checked against its hash and chain link.
pub fn select_records<'a>(
    store: &'a dyn LogStore,
    filter: &EventFilter,
    durable_seq: u64,
) -> StoreResult<Box<dyn Iterator<Item = LedgerResult<StoredRecord>> + 'a>> {
    let (start, end) = seq_range(store, filter, durable_seq)?;
    let mut reader = CheckedReader::new(store);
    Ok(match filter.key_id {
        None => Box::new(reader.scan(start, end)),
        Some(key) => Box::new(store.key_seqs(key, start, end).map(move |seq| {
            let seq = seq?;
            reader.get_indexed(seq)
        })),
    })
}

/// Decoded events matching the filter, in seq order; undecodable or changed records are reported as errors.
pub fn select_events<'a>(
    store: &'a dyn LogStore,
    filter: &EventFilter,
    durable_seq: u64,
) -> StoreResult<impl Iterator<Item = LedgerResult<Event>> + 'a> {
    Ok(select_records(store, filter, durable_seq)?.map(|record| {
        let record = record?;
        Event::decode(&record.body).map_err(|source| crate::LedgerError::Decode {
            seq: record.seq,
            source,
        })
    }))
}
