//! Key state "as of" a past time. Every event except `key.used` is listed in the store's lifecycle index, so an
//! as-of query replays only the lifecycle events up to that time — work proportional to the number of key
//! changes, not to the length of the log (which is mostly uses). Usage fields (`last_used_at`, `last_used_ip`)
//! are therefore not part of an as-of answer; usage as of a time is a usage query over a window.

use super::KeyState;
use crate::error::{LedgerError, LedgerResult};
use crate::event::Event;
use crate::store::LogStore;
use crate::time::LedgerTime;

/// The key state after every lifecycle event at or before `time` (and at or before `durable_seq`), and the last
/// seq that state covers.
pub fn keys_as_of(
    store: &dyn LogStore,
    time: LedgerTime,
    durable_seq: u64,
) -> LedgerResult<(KeyState, u64)> {
    let end = store
        .first_seq_at_or_after(time.plus_micros(1))?
        .min(durable_seq + 1);
    let mut state = KeyState::default();
    let mut reader = crate::store::CheckedReader::new(store);
    for seq in store.lifecycle_seqs(1, end) {
        let seq = seq?;
        let record = reader.get_indexed(seq)?;
        let event =
            Event::decode(&record.body).map_err(|source| LedgerError::Decode { seq, source })?;
        state.apply(&event);
    }
    Ok((state, end.saturating_sub(1)))
}
