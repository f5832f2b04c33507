//! The in-order pass of `audit verify` over a chunk of records: bodies and links checked on all cores, then
//! gaps, time, signers, the recomputed tree, the index digests and the rollup check in seq order, and the chunk's
//! signatures batch-verified.

use super::problem::{problem, Problem, ProblemKind, VerifyReport};
use super::verify_indexes::{missing_index_entries, EntryDigest};
use super::verify_rollups::RollupCheck;
use super::verify_tree::TreeCheck;
use crate::chain::{chain_hash, verify_hash_signature, Hash32};
use crate::event::{Event, EventData, KeyUsed};
use crate::signers::SignerRegistry;
use crate::store::{link_before, LogStore, StoredRecord};
use crate::time::LedgerTime;
use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;

const SIGNATURE_BATCH: usize = 256;

struct Checked {
    keys: [Option<uuid::Uuid>; 2],
    attributes: Vec<[u8; 16]>,
    lifecycle: bool,
    rotation: Option<Event>,
    used: Option<KeyUsed>,
}

/// The in-order pass over the records: what each chunk adds to the report, the recomputed tree, the index
/// digests and the rollup check, and the problems found.
pub(super) struct Walk<'a> {
    pub(super) store: &'a dyn LogStore,
    pub(super) from_genesis: bool,
    pub(super) tree: TreeCheck,
    pub(super) rollups: Option<RollupCheck>,
    pub(super) signers: SignerRegistry,
    /// The hash of the last record checked (or of the one before the range).
    pub(super) prev: Hash32,
    pub(super) expected: u64,
    pub(super) last_time: Option<LedgerTime>,
    pub(super) keys: EntryDigest,
    pub(super) lifecycle: EntryDigest,
    pub(super) attributes: EntryDigest,
    pub(super) problems: Vec<Problem>,
    pub(super) report: VerifyReport,
}

impl Walk<'_> {
    pub(super) fn chunk(&mut self, chunk: &[StoredRecord]) {
        let Some(last) = chunk.last() else {
            return;
        };
        let first_prev = std::mem::replace(&mut self.prev, last.hash);
        let (store, from_genesis) = (self.store, self.from_genesis);
        // Bodies, links and each event's own index entries are checked on all cores (the lookups are random
        // reads); what depends on order (gaps, time, signers) follows in one pass.
        let checked: Vec<Result<(Checked, Vec<Problem>), Problem>> = chunk
            .par_iter()
            .enumerate()
            .map(|(i, record)| {
                let checked = check_body(record, link_before(chunk, i, &first_prev))?;
                // From genesis, whole-index digests are compared at the end (the events are read again to name
                // a missing entry only when they differ); a range has no such digest, so it looks each entry up.
                let missing = match from_genesis {
                    true => Vec::new(),
                    false => {
                        missing_index_entries(store, record.seq, &checked.keys, checked.lifecycle)
                    }
                };
                Ok((checked, missing))
            })
            .collect();
        let mut to_sign: Vec<(usize, VerifyingKey)> = Vec::with_capacity(chunk.len());
        for (index, (record, checked)) in chunk.iter().zip(checked).enumerate() {
            if let Some(key) = self.in_order(record, checked) {
                to_sign.push((index, key));
            }
        }
        self.report.signatures_checked += to_sign.len() as u64;
        let bad = check_signatures(chunk, &to_sign);
        let store = self.store;
        self.problems.extend(
            bad.into_iter()
                .map(|found| changed_body_or(store, chunk, found)),
        );
        self.report.events_checked += chunk.len() as u64;
    }

    /// The checks that depend on order; returns the key the record's signature must verify with.
    fn in_order(
        &mut self,
        record: &StoredRecord,
        checked: Result<(Checked, Vec<Problem>), Problem>,
    ) -> Option<VerifyingKey> {
        let expected = self.expected;
        if record.seq != expected {
            self.problems.push(Problem {
                seq: expected,
                kind: ProblemKind::Gap,
                detail: format!("events {expected}..{} are missing", record.seq - 1),
            });
        }
        self.expected = record.seq + 1;
        if self.last_time.is_some_and(|t| record.time < t) {
            self.problems.push(problem(
                record.seq,
                ProblemKind::Reorder,
                "time runs backwards",
            ));
        }
        self.last_time = Some(record.time);
        if self.from_genesis {
            self.report.merkle_nodes_checked +=
                self.tree.push(self.store, record, &mut self.problems);
        }
        let key = match self.signers.signer_for(record.seq) {
            Some(signer) if signer.id == record.signer => Some(signer.key),
            Some(signer) => {
                self.problems.push(Problem {
                    seq: record.seq,
                    kind: ProblemKind::UnknownSigner,
                    detail: format!(
                        "signed by {} but the signer in force is {}",
                        record.signer, signer.id
                    ),
                });
                None
            }
            None => {
                self.problems.push(problem(
                    record.seq,
                    ProblemKind::UnknownSigner,
                    "no signer is in force",
                ));
                None
            }
        };
        let (checked, missing) = match checked {
            Ok(found) => found,
            Err(found) => {
                self.problems.push(found);
                return key;
            }
        };
        self.problems.extend(missing);
        for key in checked.keys.into_iter().flatten() {
            self.keys.add(&key, record.seq);
        }
        for digest in &checked.attributes {
            self.attributes.add_bytes(digest, record.seq);
        }
        if checked.lifecycle {
            self.lifecycle.add(&uuid::Uuid::nil(), record.seq);
        }
        if let (Some(used), Some(rollups)) = (&checked.used, self.rollups.as_mut()) {
            rollups.push(self.store, record.seq, record.time, used);
        }
        if let Some(rotation) = checked.rotation {
            if let Err(e) = self.signers.observe(&rotation) {
                self.problems
                    .push(problem(record.seq, ProblemKind::Malformed, &e.to_string()));
            }
        }
        key
    }
}

fn check_body(record: &StoredRecord, link: &Hash32) -> Result<Checked, Problem> {
    if chain_hash(link, &record.body) != record.hash {
        return Err(problem(
            record.seq,
            ProblemKind::BodyChanged,
            "hash does not match SHA-256(domain ‖ previous hash ‖ body): body changed or chain link broken",
        ));
    }
    let event = Event::decode(&record.body)
        .map_err(|e| problem(record.seq, ProblemKind::Malformed, &e.to_string()))?;
    if event.seq != record.seq {
        return Err(Problem {
            seq: record.seq,
            kind: ProblemKind::Reorder,
            detail: format!(
                "stored at seq {} but the event says seq {}",
                record.seq, event.seq
            ),
        });
    }
    if event.time != record.time {
        return Err(problem(
            record.seq,
            ProblemKind::Malformed,
            "stored time differs from the body's time",
        ));
    }
    let keys = event.key_ids();
    let attributes = event.attribute_digests();
    let lifecycle = event.data.is_lifecycle();
    let (rotation, used) = match event.data {
        EventData::SignerRotated(_) | EventData::LedgerInitialized(_) => (Some(event), None),
        EventData::KeyUsed(used) => (None, Some(used)),
        _ => (None, None),
    };
    Ok(Checked {
        keys,
        attributes,
        lifecycle,
        rotation,
        used,
    })
}

/// A signature that does not verify over a hash that is not the leaf the stored tree holds for the event: in a
/// sealed block, which stores no hash but its first, that is how a changed body shows (the hash is recomputed
/// from it), so it is named as one.
fn changed_body_or(store: &dyn LogStore, chunk: &[StoredRecord], found: Problem) -> Problem {
    if found.kind != ProblemKind::BadSignature {
        return found;
    }
    let Ok(at) = chunk.binary_search_by_key(&found.seq, |r| r.seq) else {
        return found;
    };
    match super::tiles::recorded_leaf(store, found.seq) {
        Ok(Some(leaf)) if leaf != super::merkle::leaf_hash(&chunk[at].hash) => problem(
            found.seq,
            ProblemKind::BodyChanged,
            "the hash of this body is not the leaf the Merkle tree recorded for the event, and the signature \
             does not verify over it: body changed or chain link broken",
        ),
        _ => found,
    }
}

/// Batch-verifies signatures on all cores; a failing batch is re-checked one by one to find the bad seqs.
fn check_signatures(chunk: &[StoredRecord], to_sign: &[(usize, VerifyingKey)]) -> Vec<Problem> {
    to_sign
        .par_chunks(SIGNATURE_BATCH)
        .flat_map_iter(|batch| {
            let messages: Vec<&[u8]> = batch
                .iter()
                .map(|(i, _)| chunk[*i].hash.as_slice())
                .collect();
            let signatures: Vec<Signature> = batch
                .iter()
                .map(|(i, _)| Signature::from_bytes(&chunk[*i].signature))
                .collect();
            let keys: Vec<VerifyingKey> = batch.iter().map(|(_, key)| *key).collect();
            let bad: Vec<Problem> =
                if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                    Vec::new()
                } else {
                    batch
                        .iter()
                        .filter(|(i, key)| {
                            !verify_hash_signature(key, &chunk[*i].hash, &chunk[*i].signature)
                        })
                        .map(|(i, _)| {
                            problem(
                                chunk[*i].seq,
                                ProblemKind::BadSignature,
                                "signature does not verify",
                            )
                        })
                        .collect()
                };
            bad.into_iter()
        })
        .collect()
}
