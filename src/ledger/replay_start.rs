//! Where every replay starts: the genesis, or the signed base state after the archived prefix (checked against
//! the prefix's checkpoint); and the replays of the whole log from there.

use super::replay::{replay_from, ReplayOutcome, Resume};
use super::snapshot::{self, ARCHIVE_BASE};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::verify::signers_before;
use crate::chain::parse_public_key_hex;
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData};
use crate::projection::AnalysisRules;
use crate::store::{archived_prefix, LogStore};
use crate::time::LedgerTime;

/// Replays the log into fresh projections, up to and including the last event at or before `as_of` (all events
/// when `None`). `progress` is told the seq reached after each chunk.
pub fn replay_log(
    store: &dyn LogStore,
    as_of: Option<LedgerTime>,
    progress: Option<&dyn Fn(u64)>,
) -> LedgerResult<ReplayOutcome> {
    replay_log_with(store, as_of, progress, AnalysisRules::default())
}

/// [`replay_log`] with the analysis configuration the projections use.
pub fn replay_log_with(
    store: &dyn LogStore,
    as_of: Option<LedgerTime>,
    progress: Option<&dyn Fn(u64)>,
    rules: AnalysisRules,
) -> LedgerResult<ReplayOutcome> {
    let start = replay_start(store, rules)?;
    if let (Some(time), Some(base)) = (as_of, start.outcome.head) {
        if time < base.time {
            if let Some(prefix) = crate::store::archived_prefix(store)? {
                return Err(prefix.reached(format!("the state as of {time}")));
            }
        }
    }
    replay_from(store, as_of, progress, start)
}

/// Where every replay starts: the genesis, or the signed base state after the archived prefix.
pub(crate) fn replay_start(store: &dyn LogStore, rules: AnalysisRules) -> LedgerResult<Resume> {
    let Some(prefix) = archived_prefix(store)? else {
        return Ok(Resume::genesis(crate::projection::Projections::new(rules)));
    };
    let corrupt = |problem: String| LedgerError::Corrupt {
        seq: prefix.size,
        problem,
    };
    let genesis = store
        .get(1)?
        .ok_or_else(|| corrupt("the genesis event is missing".into()))?;
    let event =
        Event::decode(&genesis.body).map_err(|source| LedgerError::Decode { seq: 1, source })?;
    let EventData::LedgerInitialized(init) = &event.data else {
        return Err(corrupt("event 1 is not ledger.initialized".into()));
    };
    let anchor = parse_public_key_hex(&init.public_key)
        .map_err(|_| corrupt("the genesis names an invalid public key".into()))?;
    let signers = signers_before(store, anchor, u64::MAX)?;
    let keys: Vec<_> = signers.entries().iter().map(|s| s.key).collect();
    let loaded = snapshot::load(store, ARCHIVE_BASE, &keys, &rules)?.map_err(|why| {
        corrupt(format!(
            "the state after the archived prefix cannot be used: {why}"
        ))
    })?;
    let checkpoint = keys
        .iter()
        .find_map(|key| Checkpoint::verify_note(&prefix.checkpoint, key).ok())
        .ok_or_else(|| {
            corrupt("the archived prefix's checkpoint is not signed by this ledger".into())
        })?;
    if loaded.head.seq != prefix.size
        || hex::encode(loaded.head.hash) != prefix.last_hash
        || checkpoint.size != prefix.size
        || checkpoint.root != loaded.root
    {
        return Err(corrupt(
            "the state after the archived prefix does not match its checkpoint".into(),
        ));
    }
    Ok(loaded.resume)
}
