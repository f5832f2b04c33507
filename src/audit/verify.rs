//! Verification of the stored log: every hash recomputed, every signature checked (batched, on all cores),
//! the indexes checked against the events, and the first bad seq reported with what is wrong there.

use super::checkpoint::stored_checkpoints;
use super::problem::{problem, Problem, ProblemKind, VerifyRange, VerifyReport};
use super::tree::Frontier;
use super::verify_indexes::{
    check_attribute_index, check_checkpoint_series, check_checkpoints, check_indexes,
    check_lifecycle_index, missing_index_entries, CheckpointBounds, EntryDigest, IndexBounds,
};
use super::verify_rollups::RollupCheck;
use super::verify_tree::{archived_frontier, TreeCheck};
use crate::chain::{chain_hash, verify_hash_signature, Hash32, GENESIS_PREV};
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData, KeyUsed};
use crate::signers::SignerRegistry;
use crate::store::{with_read_ahead, Head, LogStore, StoreError, StoredRecord};
use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;

const CHUNK: usize = 8192;
const SIGNATURE_BATCH: usize = 256;
/// Problems kept in a report; the first is what matters, the rest help locate the damage.
const MAX_PROBLEMS: usize = 100;

struct Checked {
    keys: [Option<uuid::Uuid>; 2],
    attributes: Vec<[u8; 16]>,
    lifecycle: bool,
    rotation: Option<Event>,
    used: Option<KeyUsed>,
}

/// Verifies the log against `anchor`, the public key of its first signer. From seq 1, it also recomputes the
/// Merkle tree from the event hashes (comparing stored nodes and every stored checkpoint with it) and checks the
/// indexes for the events in range. Storage that cannot be read further is a problem at the seq reached.
pub fn verify_log(
    store: &dyn LogStore,
    anchor: VerifyingKey,
    range: VerifyRange,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> LedgerResult<VerifyReport> {
    let archived = super::archive::archived_prefix(store)?;
    let base = archived.as_ref().map_or(0, |p| p.size);
    let from = range.from.max(base + 1);
    let (head, last) = match (store.head(), store.last_record()) {
        (Ok(head), Ok(last)) => (head, last),
        (Err(e), _) | (_, Err(e)) => return Ok(storage_failure(from, &e)),
    };
    let newest = last.as_ref().map_or(0, |r| r.seq);
    let to = range.to.unwrap_or(newest).min(newest);
    // From the first live event: the whole tree, the indexes and the checkpoints are checked too.
    let from_genesis = from == base + 1;
    let mut problems = Vec::new();
    if from_genesis && to == newest {
        check_head(head.as_ref(), last.as_ref(), &mut problems);
    }
    if newest == 0 {
        problems.push(problem(
            1,
            ProblemKind::Gap,
            "the log holds no events: every ledger starts with ledger.initialized",
        ));
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
        merkle_nodes_checked: 0,
        archived_through: base,
        problems: Vec::new(),
    };
    let checkpoints: Vec<(u64, String)> = if from_genesis {
        stored_checkpoints(store)?
            .into_iter()
            .filter(|(size, _)| *size > base)
            .collect()
    } else {
        Vec::new()
    };
    let frontier = match &archived {
        Some(prefix) => archived_frontier(store, prefix, &signers, &mut problems)?,
        None => Frontier::default(),
    };
    let wanted = checkpoints.iter().map(|(size, _)| *size).collect();
    let mut tree = TreeCheck::new(store, frontier, wanted)?;
    let mut expected = from;
    let mut last_time = None;
    let mut expected_keys = EntryDigest::default();
    let mut expected_lifecycle = EntryDigest::default();
    let mut expected_attributes = EntryDigest::default();
    let mut rollups = match from_genesis {
        true => RollupCheck::new(store, from)?,
        false => None,
    };
    let mut unreadable = false;
    // The next chunks are read and decompressed on a thread of their own while this one is checked.
    with_read_ahead(store, from, to.saturating_add(1), CHUNK, |chunks| {
        for chunk in chunks {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    problems.push(storage_problem(expected, &e));
                    unreadable = true;
                    break;
                }
            };
            let first_prev = prev;
            // Bodies, links and each event's own index entries are checked on all cores (the lookups are random
            // reads); what depends on order (gaps, time, signers) follows in one pass.
            let checked: Vec<Result<(Checked, Vec<Problem>), Problem>> = chunk
                .par_iter()
                .enumerate()
                .map(|(i, record)| {
                    let link = if i == 0 {
                        &first_prev
                    } else {
                        &chunk[i - 1].hash
                    };
                    let checked = check_body(record, link)?;
                    // From genesis, whole-index digests are compared at the end (the events are read again to name
                    // a missing entry only when they differ); a range has no such digest, so it looks each entry up.
                    let missing = match from_genesis {
                        true => Vec::new(),
                        false => missing_index_entries(
                            store,
                            record.seq,
                            &checked.keys,
                            checked.lifecycle,
                        ),
                    };
                    Ok((checked, missing))
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
                if from_genesis {
                    report.merkle_nodes_checked += tree.push(store, record, &mut problems);
                }
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
                    Ok((checked, missing)) => {
                        problems.extend(missing);
                        for key in checked.keys.into_iter().flatten() {
                            expected_keys.add(&key, record.seq);
                        }
                        for digest in &checked.attributes {
                            expected_attributes.add_bytes(digest, record.seq);
                        }
                        if checked.lifecycle {
                            expected_lifecycle.add(&uuid::Uuid::nil(), record.seq);
                        }
                        if let (Some(used), Some(rollups)) = (&checked.used, rollups.as_mut()) {
                            rollups.push(store, record.seq, record.time, used);
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
    });
    if from_genesis && !unreadable {
        report.merkle_nodes_checked += tree.finish(store, &mut problems);
        let archived = super::archive::archived_size(store)?;
        let bounds = IndexBounds { to, archived };
        report.index_entries_checked = check_indexes(store, &expected_keys, bounds, &mut problems)?
            + check_lifecycle_index(store, &expected_lifecycle, bounds, &mut problems)?;
        if crate::store::has_attribute_index(store)? {
            report.index_entries_checked +=
                check_attribute_index(store, &expected_attributes, bounds, &mut problems)?;
        }
        if let Some(rollups) = rollups {
            report.index_entries_checked += rollups.finish(store, to, &mut problems);
        }
        report.checkpoints_checked = check_checkpoints(
            &checkpoints,
            &tree.roots,
            &signers,
            CheckpointBounds { newest, to },
            &mut problems,
        );
        check_checkpoint_series(&checkpoints, archived, to, &mut problems);
    }
    problems.sort_by_key(|p| (p.seq, p.kind));
    problems.truncate(MAX_PROBLEMS);
    report.problems = problems;
    Ok(report)
}

fn check_head(head: Option<&Head>, last: Option<&StoredRecord>, problems: &mut Vec<Problem>) {
    match (head, last) {
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

fn storage_problem(seq: u64, error: &StoreError) -> Problem {
    Problem {
        seq,
        kind: ProblemKind::StorageCorrupt,
        detail: format!(
            "storage corrupt before seq {seq}: the store cannot be read further ({error})"
        ),
    }
}

fn storage_failure(from: u64, error: &StoreError) -> VerifyReport {
    VerifyReport {
        from_seq: from,
        to_seq: 0,
        events_checked: 0,
        signatures_checked: 0,
        index_entries_checked: 0,
        checkpoints_checked: 0,
        merkle_nodes_checked: 0,
        archived_through: 0,
        problems: vec![storage_problem(from, error)],
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
pub(crate) fn signers_before(
    store: &dyn LogStore,
    anchor: VerifyingKey,
    from: u64,
) -> LedgerResult<SignerRegistry> {
    let mut signers = SignerRegistry::anchored(anchor);
    for seq in crate::ledger::rotation_seqs(store)? {
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
