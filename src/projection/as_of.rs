//! Key state "as of" a past time: the newest projection snapshot before it, plus a replay of the events between.
//! Snapshots of the key-state projection are written every [`SNAPSHOT_EVERY`] events as side entries; they are
//! derived data (a snapshot that fails to load is skipped and the replay starts earlier).

use super::{KeyState, SnapshotEntry};
use crate::error::{LedgerError, LedgerResult};
use crate::event::Event;
use crate::store::LogStore;
use crate::time::LedgerTime;

/// Events between key-state snapshots: an as-of query replays at most this many events.
pub const SNAPSHOT_EVERY: u64 = 50_000;
const SNAPSHOT_PREFIX: &[u8] = b"snapshot/keys/";

fn snapshot_key(seq: u64) -> Vec<u8> {
    let mut key = SNAPSHOT_PREFIX.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Stores the key state as it was after `seq`.
pub fn write_snapshot(store: &dyn LogStore, seq: u64, state: &KeyState) -> LedgerResult<()> {
    let bytes = serde_json::to_vec(&state.snapshot_entries())
        .map_err(|e| LedgerError::Config(e.to_string()))?;
    store.put_side(&[(snapshot_key(seq), bytes)])?;
    Ok(())
}

/// The newest loadable snapshot taken at a seq before `end` (exclusive).
fn latest_snapshot_before(store: &dyn LogStore, end: u64) -> LedgerResult<Option<(u64, KeyState)>> {
    let mut candidates: Vec<(u64, Vec<u8>)> = Vec::new();
    for entry in store.scan_side(SNAPSHOT_PREFIX) {
        let (key, value) = entry?;
        let Some(seq) = key
            .get(SNAPSHOT_PREFIX.len()..)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        else {
            continue;
        };
        if seq < end {
            candidates.push((seq, value));
        }
    }
    while let Some((seq, bytes)) = candidates.pop() {
        match serde_json::from_slice::<Vec<SnapshotEntry>>(&bytes) {
            Ok(entries) => return Ok(Some((seq, KeyState::from_snapshot(entries)))),
            Err(error) => tracing::warn!(seq, %error, "skipping unreadable key-state snapshot"),
        }
    }
    Ok(None)
}

/// The key state after every event at or before `time` (and at or before `durable_seq`), and the last seq in it.
pub fn keys_as_of(
    store: &dyn LogStore,
    time: LedgerTime,
    durable_seq: u64,
) -> LedgerResult<(KeyState, u64)> {
    let end = store
        .first_seq_at_or_after(time.plus_micros(1))?
        .min(durable_seq + 1);
    let (start, mut state) = match latest_snapshot_before(store, end)? {
        Some((seq, state)) => (seq + 1, state),
        None => (1, KeyState::default()),
    };
    let mut last = start.saturating_sub(1);
    for record in store.scan(start, end) {
        let record = record?;
        let event = Event::decode(&record.body).map_err(|source| LedgerError::Decode {
            seq: record.seq,
            source,
        })?;
        state.apply(&event);
        last = record.seq;
    }
    Ok((state, last))
}
