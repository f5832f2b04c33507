//! Key state "as of" a past time. Every event except `key.used` is listed in the store's lifecycle index, so an
//! as-of query replays only the lifecycle events up to that time — work proportional to the number of key
//! changes, not to the length of the log (which is mostly uses). The usage fields (`last_used_at`,
//! `last_used_ip`) are then filled in from each key's index read backwards to its last allowed use.

use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData};
use crate::projection::KeyState;
use crate::store::LogStore;
use crate::time::LedgerTime;

/// The key state after every lifecycle event at or before `time` (and at or before `durable_seq`), with each
/// key's last allowed use, and the last seq that state covers.
pub fn keys_as_of(
    store: &dyn LogStore,
    time: LedgerTime,
    durable_seq: u64,
) -> LedgerResult<(KeyState, u64)> {
    let (mut state, last) = lifecycle_as_of(store, time, durable_seq)?;
    let mut reader = crate::checked::CheckedReader::new(store);
    let ids: Vec<_> = state.iter().map(|k| k.key_id).collect();
    for key_id in ids {
        if let Some((at, ip)) = last_allowed_use(store, &mut reader, key_id, last + 1)? {
            state.set_last_use(key_id, at, ip);
        }
    }
    Ok((state, last))
}

/// [`keys_as_of`] without the usage fields: configuration and status only, for callers that need no more (e.g.
/// names for a report), reading lifecycle events alone.
pub fn lifecycle_as_of(
    store: &dyn LogStore,
    time: LedgerTime,
    durable_seq: u64,
) -> LedgerResult<(KeyState, u64)> {
    let end = store
        .first_seq_at_or_after(time.plus_micros(1))?
        .min(durable_seq + 1);
    let (mut state, start) = match crate::store::archived_prefix(store)? {
        None => (KeyState::default(), 1),
        Some(prefix) if time < prefix.last_time => {
            return Err(prefix.reached(format!("the key state as of {time}")))
        }
        Some(prefix) => {
            let base = super::replay_start::replay_start(store, Default::default())?;
            (base.outcome.projections.keys, prefix.size + 1)
        }
    };
    let mut reader = crate::checked::CheckedReader::new(store);
    for seq in store.lifecycle_seqs(start, end.max(start)) {
        let seq = seq?;
        let record = reader.get_indexed(seq)?;
        let event =
            Event::decode(&record.body).map_err(|source| LedgerError::Decode { seq, source })?;
        state.apply(&event);
    }
    Ok((state, end.saturating_sub(1)))
}

/// The time and client IP of the key's newest allowed use before seq `end`.
fn last_allowed_use(
    store: &dyn LogStore,
    reader: &mut crate::checked::CheckedReader<'_>,
    key_id: uuid::Uuid,
    end: u64,
) -> LedgerResult<Option<(LedgerTime, Option<String>)>> {
    for seq in store.key_seqs_rev(key_id, 1, end) {
        let seq = seq?;
        let record = reader.get_indexed(seq)?;
        let event =
            Event::decode(&record.body).map_err(|source| LedgerError::Decode { seq, source })?;
        if let EventData::KeyUsed(used) = &event.data {
            if used.key_id == Some(key_id) && used.outcome.is_allowed() {
                return Ok(Some((event.time, used.ip.clone())));
            }
            // A gateway's verification is a use of the gateway's key, from the gateway's address.
            if event.actor.key_id() == Some(key_id) {
                return Ok(Some((event.time, used.gateway_ip.clone())));
            }
        }
    }
    Ok(None)
}
