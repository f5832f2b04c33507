//! Verification of the stored log: every hash recomputed, every signature checked (batched, on all cores),
//! the indexes checked against the events, and the first bad seq reported with what is wrong there.

use super::verify_indexes::{check_checkpoints, check_indexes, check_lifecycle_index, EntryDigest};
use crate::chain::{chain_hash, verify_hash_signature, Hash32, GENESIS_PREV};
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData};
use crate::signers::SignerRegistry;
use crate::store::{LogStore, StoredRecord};
use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use serde::Serialize;

const CHUNK: usize = 8192;
const SIGNATURE_BATCH: usize = 256;
/// Problems kept in a report; the first is what matters, the rest help locate the damage.
const MAX_PROBLEMS: usize = 100;

/// What is wrong at a seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The stored hash is not SHA-256(domain ‖ previous hash ‖ body): the body was changed, or the event before
    /// it is not the one it was chained to.
    BodyChanged,
    /// A seq is missing.
    Gap,
    /// An event sits at a seq other than its own, or its time runs backwards.
    Reorder,
    BadSignature,
    UnknownSigner,
    /// An index entry is missing, or points at an event it does not describe.
    IndexMismatch,
    /// The head disagrees with the newest event.
    HeadMismatch,
    /// The record or body cannot be decoded.
    Malformed,
    /// A stored checkpoint does not match the log (tail cut, or history rewritten), or its signature is bad.
    CheckpointMismatch,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub seq: u64,
    pub kind: ProblemKind,
    pub detail: String,
}

/// The seqs to verify (inclusive); `to = None` means up to the head.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyRange {
    pub from: u64,
    pub to: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub from_seq: u64,
    pub to_seq: u64,
    pub events_checked: u64,
    pub signatures_checked: u64,
    pub index_entries_checked: u64,
    pub checkpoints_checked: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn first_problem(&self) -> Option<&Problem> {
        self.problems.first()
    }
}

struct Checked {
    keys: [Option<uuid::Uuid>; 2],
    lifecycle: bool,
    rotation: Option<Event>,
}

/// Verifies the log against `anchor`, the public key of its first signer.
pub fn verify_log(
    store: &dyn LogStore,
    anchor: VerifyingKey,
    range: VerifyRange,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> LedgerResult<VerifyReport> {
    let head = store.head()?;
    let last = store.last_record()?;
    let from = range.from.max(1);
    let newest = last.as_ref().map_or(0, |r| r.seq);
    let to = range.to.unwrap_or(newest).min(newest);
    let mut problems = Vec::new();
    let full = from == 1 && range.to.is_none();
    if full {
        match (&head, &last) {
            (Some(h), Some(r)) if h.seq != r.seq || h.hash != r.hash => problems.push(Problem {
                seq: h.seq.min(r.seq),
                kind: ProblemKind::HeadMismatch,
                detail: format!(
                    "head names seq {} but the newest event is seq {}",
                    h.seq, r.seq
                ),
            }),
            (None, Some(r)) => {
                problems.push(problem(r.seq, ProblemKind::HeadMismatch, "head is missing"))
            }
            (Some(h), None) => problems.push(problem(
                h.seq,
                ProblemKind::HeadMismatch,
                "events are missing",
            )),
            _ => {}
        }
    }
    let mut signers = signers_before(store, anchor, from)?;
    let mut prev: Hash32 = if from == 1 {
        GENESIS_PREV
    } else {
        match store.get(from - 1)? {
            Some(record) => record.hash,
            None => {
                problems.push(problem(
                    from - 1,
                    ProblemKind::Gap,
                    "the event before the range is missing",
                ));
                GENESIS_PREV
            }
        }
    };
    let mut report = VerifyReport {
        from_seq: from,
        to_seq: to,
        events_checked: 0,
        signatures_checked: 0,
        index_entries_checked: 0,
        checkpoints_checked: 0,
        problems: Vec::new(),
    };
    let mut expected = from;
    let mut last_time = None;
    let mut expected_keys = EntryDigest::default();
    let mut expected_lifecycle = EntryDigest::default();
    let mut records = store.scan(from, to.saturating_add(1));
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        for item in records.by_ref().take(CHUNK) {
            match item {
                Ok(record) => chunk.push(record),
                Err(e) => return Err(LedgerError::Store(e)),
            }
        }
        if chunk.is_empty() {
            break;
        }
        let first_prev = prev;
        let checked: Vec<Result<Checked, Problem>> = chunk
            .par_iter()
            .enumerate()
            .map(|(i, record)| {
                check_body(
                    record,
                    if i == 0 {
                        &first_prev
                    } else {
                        &chunk[i - 1].hash
                    },
                )
            })
            .collect();
        let mut to_sign: Vec<(usize, VerifyingKey)> = Vec::with_capacity(chunk.len());
        for (index, (record, checked)) in chunk.iter().zip(checked).enumerate() {
            if record.seq != expected {
                problems.push(Problem {
                    seq: expected,
                    kind: ProblemKind::Gap,
                    detail: format!("events {expected}..{} are missing", record.seq - 1),
                });
            }
            expected = record.seq + 1;
            if last_time.is_some_and(|t| record.time < t) {
                problems.push(problem(
                    record.seq,
                    ProblemKind::Reorder,
                    "time runs backwards",
                ));
            }
            last_time = Some(record.time);
            match signers.signer_for(record.seq) {
                Some(signer) if signer.id == record.signer => to_sign.push((index, signer.key)),
                Some(signer) => problems.push(Problem {
                    seq: record.seq,
                    kind: ProblemKind::UnknownSigner,
                    detail: format!(
                        "signed by {} but the signer in force is {}",
                        record.signer, signer.id
                    ),
                }),
                None => problems.push(problem(
                    record.seq,
                    ProblemKind::UnknownSigner,
                    "no signer is in force",
                )),
            }
            match checked {
                Ok(checked) => {
                    for key in checked.keys.into_iter().flatten() {
                        expected_keys.add(&key, record.seq);
                        if store
                            .key_seqs(key, record.seq, record.seq + 1)
                            .next()
                            .is_none()
                        {
                            problems.push(Problem {
                                seq: record.seq,
                                kind: ProblemKind::IndexMismatch,
                                detail: format!("key index has no entry for key {key} at this seq"),
                            });
                        }
                    }
                    if checked.lifecycle {
                        expected_lifecycle.add(&uuid::Uuid::nil(), record.seq);
                        if store
                            .lifecycle_seqs(record.seq, record.seq + 1)
                            .next()
                            .is_none()
                        {
                            problems.push(problem(
                                record.seq,
                                ProblemKind::IndexMismatch,
                                "lifecycle index has no entry for this event",
                            ));
                        }
                    }
                    if let Some(rotation) = checked.rotation {
                        if let Err(e) = signers.observe(&rotation) {
                            problems.push(problem(
                                record.seq,
                                ProblemKind::Malformed,
                                &e.to_string(),
                            ));
                        }
                    }
                }
                Err(found) => problems.push(found),
            }
        }
        report.signatures_checked += to_sign.len() as u64;
        problems.extend(check_signatures(&chunk, &to_sign));
        report.events_checked += chunk.len() as u64;
        prev = chunk[chunk.len() - 1].hash;
        if let Some(report_progress) = progress {
            report_progress(expected - 1);
        }
        if problems.len() > MAX_PROBLEMS {
            break;
        }
    }
    if full {
        report.index_entries_checked = check_indexes(store, &expected_keys, &mut problems)?
            + check_lifecycle_index(store, &expected_lifecycle, &mut problems)?;
        report.checkpoints_checked = check_checkpoints(store, &signers, newest, &mut problems)?;
    }
    problems.sort_by_key(|p| (p.seq, p.kind));
    problems.truncate(MAX_PROBLEMS);
    report.problems = problems;
    Ok(report)
}

pub(super) fn problem(seq: u64, kind: ProblemKind, detail: &str) -> Problem {
    Problem {
        seq,
        kind,
        detail: detail.to_string(),
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
    let keys = event.data.key_ids();
    let lifecycle = event.data.is_lifecycle();
    let rotation = matches!(
        event.data,
        EventData::SignerRotated(_) | EventData::LedgerInitialized(_)
    )
    .then_some(event);
    Ok(Checked {
        keys,
        lifecycle,
        rotation,
    })
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

/// The signers in force before `from`: the anchor, then each rotation recorded before it (each rotation event
/// re-checked: signed by the signer it replaces, naming the key the registry holds).
fn signers_before(
    store: &dyn LogStore,
    anchor: VerifyingKey,
    from: u64,
) -> LedgerResult<SignerRegistry> {
    let mut signers = SignerRegistry::anchored(anchor);
    for entry in store.scan_side(b"signer/") {
        let (key, _) = entry?;
        let Some(seq) = key
            .get(7..15)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        else {
            continue;
        };
        if seq >= from {
            break;
        }
        let corrupt = |problem: &str| LedgerError::Corrupt {
            seq,
            problem: problem.to_string(),
        };
        let record = store
            .get(seq)?
            .ok_or_else(|| corrupt("signer rotation event is missing"))?;
        let signer = signers
            .signer_for(seq)
            .ok_or_else(|| corrupt("no signer in force"))?;
        if !verify_hash_signature(&signer.key, &record.hash, &record.signature) {
            return Err(corrupt(
                "signer rotation event is not signed by the signer it replaces",
            ));
        }
        let event = Event::decode(&record.body).map_err(|e| corrupt(&e.to_string()))?;
        signers
            .observe(&event)
            .map_err(|e| corrupt(&e.to_string()))?;
    }
    Ok(signers)
}
