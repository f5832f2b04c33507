//! The index and checkpoint half of stored-log verification: the key and lifecycle indexes hold exactly the
//! entries the events call for, time index entries point at events with their time, and every stored checkpoint
//! is signed by the signer in force and matches the events (a checkpoint larger than the log is a cut tail).

use super::verify::{problem, Problem, ProblemKind};
use crate::error::LedgerResult;
use crate::event::Event;
use crate::signers::SignerRegistry;
use crate::store::LogStore;
use sha2::Digest;
use std::collections::BTreeSet;

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
        let mut hasher = sha2::Sha256::new();
        hasher.update(key.as_bytes());
        hasher.update(seq.to_be_bytes());
        let digest = hasher.finalize();
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&digest[..16]);
        self.count += 1;
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(prefix));
    }
}

/// Checks that the key index holds exactly the entries the events call for, and that every time index entry
/// points at an event with that time. Returns how many entries were read.
pub(super) fn check_indexes(
    store: &dyn LogStore,
    expected: &EntryDigest,
    problems: &mut Vec<Problem>,
) -> LedgerResult<u64> {
    let mut stored = EntryDigest::default();
    for entry in store.key_index() {
        let (key, seq) = entry?;
        stored.add(&key, seq);
    }
    let mut checked = stored.count;
    if stored != *expected {
        // Only on failure: find the entries whose event does not name their key.
        let mut strays = BTreeSet::new();
        for entry in store.key_index() {
            let (key, seq) = entry?;
            let names_key = store
                .get(seq)?
                .and_then(|r| Event::decode(&r.body).ok())
                .is_some_and(|e| e.data.key_ids().contains(&Some(key)));
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
    for entry in store.time_index() {
        let (time, seq) = entry?;
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
    Ok(checked)
}

/// Checks that the lifecycle index lists exactly the events that are not `key.used`.
pub(super) fn check_lifecycle_index(
    store: &dyn LogStore,
    expected: &EntryDigest,
    problems: &mut Vec<Problem>,
) -> LedgerResult<u64> {
    let mut stored = EntryDigest::default();
    for seq in store.lifecycle_seqs(1, u64::MAX) {
        stored.add(&uuid::Uuid::nil(), seq?);
    }
    if stored != *expected {
        for seq in store.lifecycle_seqs(1, u64::MAX) {
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

/// Checks every stored checkpoint against the log: signed by the signer in force, and its root equal to the
/// root recomputed from the events. A checkpoint larger than the log means its tail was cut.
pub(super) fn check_checkpoints(
    store: &dyn LogStore,
    signers: &SignerRegistry,
    newest: u64,
    problems: &mut Vec<Problem>,
) -> LedgerResult<u64> {
    let checkpoints = crate::audit::checkpoint::stored_checkpoints(store)?;
    for (size, note) in &checkpoints {
        let size = *size;
        let signed = [size, size + 1]
            .iter()
            .filter_map(|seq| signers.signer_for(*seq))
            .find_map(|signer| {
                crate::audit::checkpoint::Checkpoint::verify_note(note, &signer.key).ok()
            });
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
        if size > newest {
            problems.push(Problem {
                seq: newest + 1,
                kind: ProblemKind::CheckpointMismatch,
                detail: format!("a signed checkpoint covers {size} events but the log holds {newest}: its tail was cut"),
            });
        } else if crate::audit::tree::stored_root(store, size)? != checkpoint.root {
            problems.push(Problem {
                seq: size,
                kind: ProblemKind::CheckpointMismatch,
                detail: format!(
                    "the log's first {size} events no longer have the root the checkpoint signed"
                ),
            });
        }
    }
    Ok(checkpoints.len() as u64)
}
