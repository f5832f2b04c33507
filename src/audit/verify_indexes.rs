//! The index and checkpoint half of stored-log verification: the key and lifecycle indexes hold exactly the
//! entries the events call for, time index entries point at events with their time, and every stored checkpoint
//! is signed by the signer in force and matches the events (a checkpoint larger than the log is a cut tail).

use super::checkpoint::Checkpoint;
use super::problem::{problem, Problem, ProblemKind};
use crate::chain::Hash32;
use crate::error::LedgerResult;
use crate::event::Event;
use crate::signers::SignerRegistry;
use crate::store::LogStore;
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};

/// Index entries for events after `to` are not checked (a server keeps appending while it verifies).
#[derive(Clone, Copy)]
pub(super) struct IndexBounds {
    pub to: u64,
    /// Events archived away (their index entries may be pruned).
    pub archived: u64,
}

/// The newest event stored and the last one verified.
#[derive(Clone, Copy)]
pub(super) struct CheckpointBounds {
    pub newest: u64,
    pub to: u64,
}

/// An order-independent digest of a set of `(key, seq)` index entries: their count and the wrapping sum of
/// SHA-256 prefixes. Equal digests mean (short of a deliberate collision) equal sets, so the key index is
/// compared with what the events call for in one pass, without holding either set in memory.
#[derive(Default, PartialEq, Eq)]
pub(super) struct EntryDigest {
    count: u64,
    sum: u128,
}

impl EntryDigest {
    pub(super) fn add(&mut self, key: &uuid::Uuid, seq: u64) {
        self.add_bytes(key.as_bytes(), seq);
    }

    pub(super) fn add_bytes(&mut self, key: &[u8; 16], seq: u64) {
        let mut hasher = sha2::Sha256::new();
        hasher.update(key);
        hasher.update(seq.to_be_bytes());
        let digest = hasher.finalize();
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&digest[..16]);
        self.count += 1;
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(prefix));
    }
}

/// The digest of a stored index's `(16-byte key, seq)` entries up to the verified seq.
fn stored_digest<K>(
    entries: crate::store::StoreIter<'_, (K, u64)>,
    bytes: impl Fn(&K) -> [u8; 16],
    bounds: IndexBounds,
) -> LedgerResult<EntryDigest> {
    let mut stored = EntryDigest::default();
    for entry in entries {
        let (key, seq) = entry?;
        if seq <= bounds.to {
            stored.add_bytes(&bytes(&key), seq);
        }
    }
    Ok(stored)
}

/// Checks that the key index holds exactly the entries the events call for, and that every time index entry
/// points at an event with that time. Returns how many entries were read.
pub(super) fn check_indexes(
    store: &dyn LogStore,
    expected: &EntryDigest,
    bounds: IndexBounds,
    problems: &mut Vec<Problem>,
) -> LedgerResult<u64> {
    let stored = stored_digest(store.key_index(), |key| *key.as_bytes(), bounds)?;
    let mut checked = stored.count;
    if stored != *expected {
        name_missing_entries(store, bounds, problems, |event| (event.key_ids(), false))?;
        // Only on failure: find the entries whose event does not name their key.
        let mut strays = BTreeSet::new();
        for entry in store.key_index() {
            let (key, seq) = entry?;
            if seq > bounds.to {
                continue;
            }
            let names_key = store
                .get(seq)?
                .and_then(|r| Event::decode(&r.body).ok())
                .is_some_and(|e| e.key_ids().contains(&Some(key)));
            if !names_key {
                strays.insert((seq, key));
            }
        }
        for (seq, key) in strays {
            problems.push(Problem {
                seq,
                kind: ProblemKind::IndexMismatch,
                detail: format!(
                    "key index entry for key {key} points at seq {seq}, which does not concern it"
                ),
            });
        }
    }
    let stride = store.time_index_stride();
    let mut previous = bounds.archived;
    for entry in store.time_index() {
        let (time, seq) = entry?;
        if seq > bounds.to {
            continue;
        }
        if seq > previous + stride {
            problems.push(time_gap(previous, seq, stride));
        }
        previous = previous.max(seq);
        checked += 1;
        match store.get(seq)? {
            Some(record) if record.time == time => {}
            _ => problems.push(Problem {
                seq,
                kind: ProblemKind::IndexMismatch,
                detail: format!(
                    "time index entry {time} points at seq {seq}, which has another time"
                ),
            }),
        }
    }
    if bounds.to >= previous + stride {
        problems.push(time_gap(previous, bounds.to + 1, stride));
    }
    Ok(checked)
}

/// The store writes time-index entries at most `stride` events apart (each batch's first event and every 64th
/// after it; the embedded store one per block and tail chunk): a larger gap means an entry was removed (seeks
/// stay correct, but the index was edited).
fn time_gap(previous: u64, next: u64, stride: u64) -> Problem {
    problem(
        previous + 1,
        ProblemKind::IndexMismatch,
        &format!(
            "the time index has no entry for events {}..={} (one is written at least every {} events): an entry was removed",
            previous + 1,
            next - 1,
            stride
        ),
    )
}

/// The writer stores a checkpoint at every multiple of 1,024 events and keeps them all: each one the verified
/// range (above the archived prefix) reaches must be there.
pub(super) fn check_checkpoint_series(
    checkpoints: &[(u64, String)],
    archived: u64,
    to: u64,
    problems: &mut Vec<Problem>,
) {
    let stored: BTreeSet<u64> = checkpoints.iter().map(|(size, _)| *size).collect();
    let every = crate::audit::checkpoint::CHECKPOINT_EVERY;
    let mut size = (archived / every + 1) * every;
    while size <= to {
        if !stored.contains(&size) {
            problems.push(problem(
                size,
                ProblemKind::CheckpointMismatch,
                &format!("the stored checkpoint of {size} events is missing (one is kept for every multiple of {every}): it was removed"),
            ));
        }
        size += every;
    }
}

/// Checks that the lifecycle index lists exactly the events that are not `key.used`.
pub(super) fn check_lifecycle_index(
    store: &dyn LogStore,
    expected: &EntryDigest,
    bounds: IndexBounds,
    problems: &mut Vec<Problem>,
) -> LedgerResult<u64> {
    let end = bounds.to.saturating_add(1);
    let mut stored = EntryDigest::default();
    for seq in store.lifecycle_seqs(1, end) {
        stored.add(&uuid::Uuid::nil(), seq?);
    }
    if stored != *expected {
        name_missing_entries(store, bounds, problems, |event| {
            ([None, None], event.data.is_lifecycle())
        })?;
        for seq in store.lifecycle_seqs(1, end) {
            let seq = seq?;
            let lifecycle = store
                .get(seq)?
                .and_then(|r| Event::decode(&r.body).ok())
                .is_some_and(|e| e.data.is_lifecycle());
            if !lifecycle {
                problems.push(problem(
                    seq,
                    ProblemKind::IndexMismatch,
                    "lifecycle index lists an event that is not a lifecycle event",
                ));
            }
        }
    }
    Ok(stored.count)
}

/// Checks every stored checkpoint against the log: signed by the signer of its last event (or of the next one),
/// and its root equal to the root recomputed from the event hashes (`roots`, by size). A checkpoint larger than
/// the log means its tail was cut; one beyond the verified range is left alone.
pub(super) fn check_checkpoints(
    checkpoints: &[(u64, String)],
    roots: &BTreeMap<u64, Hash32>,
    signers: &SignerRegistry,
    bounds: CheckpointBounds,
    problems: &mut Vec<Problem>,
) -> u64 {
    for (size, note) in checkpoints {
        let size = *size;
        let signed = [size, size + 1]
            .iter()
            .filter_map(|seq| signers.signer_for(*seq))
            .find_map(|signer| Checkpoint::verify_note(note, &signer.key).ok())
            .filter(|checkpoint| checkpoint.size == size);
        let Some(checkpoint) = signed else {
            problems.push(Problem {
                seq: size,
                kind: ProblemKind::CheckpointMismatch,
                detail: format!(
                    "stored checkpoint of {size} events is not signed by the signer in force"
                ),
            });
            continue;
        };
        if size > bounds.newest {
            problems.push(Problem {
                seq: bounds.newest + 1,
                kind: ProblemKind::CheckpointMismatch,
                detail: format!(
                    "a signed checkpoint covers {size} events but the log holds {}: its tail was cut",
                    bounds.newest
                ),
            });
        } else if size <= bounds.to
            && roots
                .get(&size)
                .is_some_and(|root| *root != checkpoint.root)
        {
            problems.push(Problem {
                seq: size,
                kind: ProblemKind::CheckpointMismatch,
                detail: format!(
                    "the log's first {size} events no longer have the root the checkpoint signed"
                ),
            });
        }
    }
    checkpoints.len() as u64
}

/// Checks that the attribute index (ip, request id) holds exactly the entries the events call for.
/// Only on a mismatch is the log read again, to name the events whose entries are missing or stray.
pub(super) fn check_attribute_index(
    store: &dyn LogStore,
    expected: &EntryDigest,
    bounds: IndexBounds,
    problems: &mut Vec<Problem>,
) -> LedgerResult<u64> {
    let stored = stored_digest(store.attribute_index(), |digest| *digest, bounds)?;
    if stored == *expected {
        return Ok(stored.count);
    }
    let mut found = BTreeSet::new();
    for entry in store.attribute_index() {
        let (digest, seq) = entry?;
        if seq > bounds.to {
            continue;
        }
        let belongs = store
            .get(seq)?
            .and_then(|r| Event::decode(&r.body).ok())
            .is_some_and(|e| e.attribute_digests().contains(&digest));
        if !belongs {
            found.insert((
                seq,
                "an attribute index entry points at this event, which does not have that attribute",
            ));
        }
    }
    for record in store.scan(1, bounds.to.saturating_add(1)) {
        let record = record?;
        let Ok(event) = Event::decode(&record.body) else {
            continue;
        };
        for digest in event.attribute_digests() {
            let mut entries = store.attribute_seqs(digest, record.seq, record.seq + 1);
            if entries.next().transpose()?.is_none() {
                found.insert((
                    record.seq,
                    "the attribute index misses an entry for this event",
                ));
            }
        }
    }
    for (seq, detail) in found {
        problems.push(problem(seq, ProblemKind::IndexMismatch, detail));
    }
    Ok(stored.count)
}

/// The key and lifecycle index entries event `seq` should have (`keys`, `lifecycle`) and has not.
pub(super) fn missing_index_entries(
    store: &dyn LogStore,
    seq: u64,
    keys: &[Option<uuid::Uuid>; 2],
    lifecycle: bool,
) -> Vec<Problem> {
    let mut missing = Vec::new();
    for key in keys.iter().flatten() {
        if !indexed(store.key_seqs(*key, seq, seq + 1)) {
            missing.push(Problem {
                seq,
                kind: ProblemKind::IndexMismatch,
                detail: format!("key index has no entry for key {key} at this seq"),
            });
        }
    }
    if lifecycle && !indexed(store.lifecycle_seqs(seq, seq + 1)) {
        missing.push(problem(
            seq,
            ProblemKind::IndexMismatch,
            "lifecycle index has no entry for this event",
        ));
    }
    missing
}

/// After a digest mismatch: reads the events up to `bounds.to` again and names each entry `wants` says an event
/// should have (its keys, whether it is a lifecycle event) that the index lacks.
fn name_missing_entries(
    store: &dyn LogStore,
    bounds: IndexBounds,
    problems: &mut Vec<Problem>,
    wants: impl Fn(&Event) -> ([Option<uuid::Uuid>; 2], bool),
) -> LedgerResult<()> {
    for record in store.scan(1, bounds.to.saturating_add(1)) {
        let record = record?;
        // An event that does not decode is reported by the event checks already.
        if let Ok(event) = Event::decode(&record.body) {
            let (keys, lifecycle) = wants(&event);
            problems.extend(missing_index_entries(store, record.seq, &keys, lifecycle));
        }
    }
    Ok(())
}

/// Whether an index lookup found its entry (an unreadable entry counts as missing).
fn indexed(mut entries: crate::store::StoreIter<'_, u64>) -> bool {
    matches!(entries.next(), Some(Ok(_)))
}
