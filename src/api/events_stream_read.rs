//! What an event stream reads from the log: where it starts, and the next chunk of durable events its
//! selection keeps, each as the line the client receives (blocking store work, run off the async workers).

use super::events::Page;
use crate::checked::CheckedReader;
use crate::error::{LedgerError, LedgerResult};
use crate::event::Event;
use crate::incident::IncidentFilter;
use crate::store::{LogStore, StoredRecord};
use crate::time::LedgerTime;
use uuid::Uuid;

/// Most events one store pass emits: what a slow reader can leave buffered per stream.
const CHUNK_EVENTS: usize = 256;
/// Most candidate events one store pass looks at, so that a narrow filter over a long log still hands the
/// blocking thread back often.
const CHUNK_SCAN: usize = 4096;

/// Where a stream starts.
#[derive(Clone, Copy, Debug)]
pub(super) enum Start {
    After(u64),
    From(LedgerTime),
    /// After the current durable seq: only new events.
    Now,
}

/// What a stream keeps.
pub(super) struct Selection {
    pub(super) incident: IncidentFilter,
    pub(super) key_id: Option<Uuid>,
    /// Set when `from` is later than every durable event: events before it are skipped.
    pub(super) not_before: Option<LedgerTime>,
}

/// One event, serialized as the line (or SSE data) the client receives.
pub(super) struct Line {
    pub(super) seq: u64,
    pub(super) json: String,
}

/// The seq a stream starts after (blocking store work). Refuses a start inside the archived prefix.
pub(super) fn starting_point(
    store: &dyn LogStore,
    selection: &mut Selection,
    start: Start,
    durable: u64,
) -> LedgerResult<u64> {
    let after = match start {
        Start::After(seq) => seq,
        Start::Now => durable,
        Start::From(time) => {
            let first = store.first_seq_at_or_after(time)?;
            if first > durable {
                // Nothing durable is that recent yet; the next events may still be older than `from`.
                selection.not_before = Some(time);
                durable
            } else {
                first.saturating_sub(1)
            }
        }
    };
    if let Some(prefix) = crate::store::archived_prefix(store)? {
        if after < prefix.size {
            return Err(prefix.reached(format!("a stream after event {after}")));
        }
    }
    Ok(after)
}

/// The events after `after` (up to `durable`) that the selection keeps, at most a chunk's worth, and the last
/// seq looked at, where the next pass resumes (blocking store work).
pub(super) fn read_chunk(
    store: &dyn LogStore,
    selection: &Selection,
    after: u64,
    durable: u64,
) -> LedgerResult<(Vec<Line>, u64)> {
    if after >= durable {
        // A resumed cursor may be ahead of this server (a follower that lags): wait for it to catch up.
        return Ok((Vec::new(), after));
    }
    let mut lines = Vec::new();
    let mut reached = durable;
    let mut reader = CheckedReader::new(store);
    let candidates =
        selection
            .incident
            .candidates(store, selection.key_id, after + 1, durable + 1)?;
    for (looked, seq) in candidates.enumerate() {
        let seq = seq?;
        if looked == CHUNK_SCAN || lines.len() == CHUNK_EVENTS {
            // Every candidate before `seq` was handled, and the seqs between them are not candidates.
            reached = seq - 1;
            break;
        }
        let Some(record) = reader.get(seq)? else {
            return Err(missing(store, seq));
        };
        if selection.not_before.is_some_and(|time| record.time < time) {
            continue;
        }
        if !selection.incident.is_empty() {
            let event = Event::decode(&record.body)
                .map_err(|source| LedgerError::Decode { seq, source })?;
            if !selection.incident.matches(&event) {
                continue;
            }
        }
        lines.push(line(record)?);
    }
    Ok((lines, reached))
}

/// Why a durable event could not be read: archived since, or missing from the log.
fn missing(store: &dyn LogStore, seq: u64) -> LedgerError {
    match crate::store::archived_prefix(store) {
        Ok(Some(prefix)) if seq <= prefix.size => prefix.reached(format!("event {seq}")),
        Ok(_) => LedgerError::Corrupt {
            seq,
            problem: "a durable event is missing".into(),
        },
        Err(error) => error.into(),
    }
}

/// A record as the line of a stream: the same object as an item of a `/v1/events` page.
fn line(record: StoredRecord) -> LedgerResult<Line> {
    let seq = record.seq;
    let corrupt = |problem: String| LedgerError::Corrupt { seq, problem };
    // The stored canonical body is valid JSON: pass it through instead of decoding and re-encoding it.
    let body = String::from_utf8(record.body).map_err(|_| corrupt("body is not UTF-8".into()))?;
    let event =
        serde_json::value::RawValue::from_string(body).map_err(|e| corrupt(e.to_string()))?;
    let page = Page {
        seq,
        hash: hex::encode(record.hash),
        event,
    };
    let json = serde_json::to_string(&page).map_err(|e| corrupt(e.to_string()))?;
    Ok(Line { seq, json })
}
