//! Verification of the stored log: every hash recomputed, every signature checked (batched, on all cores),
//! the indexes checked against the events, and the first bad seq reported with what is wrong there.

use super::checkpoint::stored_checkpoints;
use super::problem::{problem, Problem, ProblemKind, VerifyRange, VerifyReport};
use super::tree::Frontier;
use super::verify_indexes::{
    check_attribute_index, check_checkpoint_series, check_checkpoints, check_indexes,
    check_lifecycle_index, CheckpointBounds, EntryDigest, IndexBounds,
};
use super::verify_rollups::RollupCheck;
use super::verify_tree::{archived_frontier, TreeCheck};
use super::verify_walk::Walk;
use crate::chain::{verify_hash_signature, Hash32, GENESIS_PREV};
use crate::error::{LedgerError, LedgerResult};
use crate::event::Event;
use crate::signers::SignerRegistry;
use crate::store::{with_read_ahead, Head, LogStore, StoreError, StoredRecord};
use ed25519_dalek::VerifyingKey;

const CHUNK: usize = 8192;
/// Problems kept in a report; the first is what matters, the rest help locate the damage.
const MAX_PROBLEMS: usize = 100;

/// Verifies the log against `anchor`, the public key of its first signer. From seq 1, it also recomputes the
/// Merkle tree from the event hashes (comparing stored nodes and every stored checkpoint with it) and checks the
/// indexes for the events in range. Storage that cannot be read further is a problem at the seq reached.
pub fn verify_log(
    store: &dyn LogStore,
    anchor: VerifyingKey,
    range: VerifyRange,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> LedgerResult<VerifyReport> {
    let archived = crate::store::archived_prefix(store)?;
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
    let signers = signers_before(store, anchor, from)?;
    let prev: Hash32 = if from == 1 {
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
    let report = VerifyReport {
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
    let mut walk = Walk {
        store,
        from_genesis,
        tree: TreeCheck::new(store, frontier, wanted)?,
        rollups: match from_genesis {
            true => RollupCheck::new(store, from)?,
            false => None,
        },
        signers,
        prev,
        expected: from,
        last_time: None,
        keys: EntryDigest::default(),
        lifecycle: EntryDigest::default(),
        attributes: EntryDigest::default(),
        problems,
        report,
    };
    // The next chunks are read and decompressed on a thread of their own while this one is checked.
    let unreadable = with_read_ahead(store, from, to.saturating_add(1), CHUNK, |chunks| {
        for chunk in chunks {
            match chunk {
                Ok(chunk) => walk.chunk(&chunk),
                Err(e) => {
                    walk.problems.push(storage_problem(walk.expected, &e));
                    return true;
                }
            }
            if let Some(report_progress) = progress {
                report_progress(walk.expected - 1);
            }
            if walk.problems.len() > MAX_PROBLEMS {
                break;
            }
        }
        false
    });
    let Walk {
        tree,
        rollups,
        signers,
        keys,
        lifecycle,
        attributes,
        mut problems,
        mut report,
        ..
    } = walk;
    if from_genesis && !unreadable {
        report.merkle_nodes_checked += tree.finish(store, &mut problems);
        let archived = crate::store::archived_size(store)?;
        let bounds = IndexBounds { to, archived };
        report.index_entries_checked = check_indexes(store, &keys, bounds, &mut problems)?
            + check_lifecycle_index(store, &lifecycle, bounds, &mut problems)?;
        if crate::store::has_attribute_index(store)? {
            report.index_entries_checked +=
                check_attribute_index(store, &attributes, bounds, &mut problems)?;
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

/// The signers in force before `from`: the anchor, then each rotation recorded before it (each rotation event
/// re-checked: signed by the signer it replaces, naming the key the registry holds).
pub(crate) fn signers_before(
    store: &dyn LogStore,
    anchor: VerifyingKey,
    from: u64,
) -> LedgerResult<SignerRegistry> {
    let mut signers = SignerRegistry::anchored(anchor);
    for seq in super::rotations::rotation_seqs(store)? {
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
