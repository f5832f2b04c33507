//! The Merkle tree as verification recomputes it: from the event hashes (stored nodes compared as it grows), and
//! over an archived prefix from its stored nodes, which must give the prefix's signed checkpoint root.

use super::problem::{problem, Problem, ProblemKind};
use super::tree::{node_key, Frontier};
use crate::chain::Hash32;
use crate::error::LedgerResult;
use crate::signers::SignerRegistry;
use crate::store::{LogStore, StoredRecord};
use std::collections::{BTreeMap, BTreeSet};

/// The tree over the archived prefix, rebuilt from its stored nodes, which must give the root its signed
/// checkpoint names; and the kept last event of the prefix must have the recorded hash.
pub(super) fn archived_frontier(
    store: &dyn LogStore,
    prefix: &super::archive::ArchivedPrefix,
    signers: &SignerRegistry,
    problems: &mut Vec<Problem>,
) -> LedgerResult<Frontier> {
    let frontier = Frontier::load(store, prefix.size)?;
    let signed = [prefix.size, prefix.size + 1]
        .iter()
        .filter_map(|seq| signers.signer_for(*seq))
        .find_map(|signer| {
            super::checkpoint::Checkpoint::verify_note(&prefix.checkpoint, &signer.key).ok()
        });
    match signed {
        Some(c) if c.size == prefix.size && c.root == frontier.root() => {}
        Some(_) => problems.push(problem(
            prefix.size,
            ProblemKind::CheckpointMismatch,
            "the stored tree over the archived prefix no longer has its checkpoint's root",
        )),
        None => problems.push(problem(
            prefix.size,
            ProblemKind::CheckpointMismatch,
            "the archived prefix's checkpoint is not signed by the ledger",
        )),
    }
    if store.get(prefix.size)?.map(|r| hex::encode(r.hash)) != Some(prefix.last_hash.clone()) {
        problems.push(problem(
            prefix.size,
            ProblemKind::BodyChanged,
            "the last archived event no longer has the hash the archive recorded",
        ));
    }
    Ok(frontier)
}

/// The Merkle tree recomputed from the event hashes, as verification walks them from seq 1.
pub(super) struct TreeCheck {
    pub(super) frontier: Frontier,
    /// Sizes of stored checkpoints, whose roots are kept as the tree reaches them.
    pub(super) wanted: BTreeSet<u64>,
    pub(super) roots: BTreeMap<u64, Hash32>,
}

impl TreeCheck {
    /// Adds the event's leaf; compares each subtree it completes with the stored node. Returns nodes compared.
    pub(super) fn push(
        &mut self,
        store: &dyn LogStore,
        record: &StoredRecord,
        problems: &mut Vec<Problem>,
    ) -> u64 {
        let completed = self.frontier.push(&record.hash);
        for (level, index, hash) in &completed {
            let wrong = match store.get_side(&node_key(*level, *index)) {
                Ok(Some(stored)) if stored.as_slice() == hash.as_slice() => None,
                Ok(Some(_)) => Some("differs from the one recomputed from the events"),
                Ok(None) => Some("is missing"),
                Err(_) => Some("cannot be read"),
            };
            if let Some(wrong) = wrong {
                problems.push(Problem {
                    seq: record.seq,
                    kind: ProblemKind::IndexMismatch,
                    detail: format!(
                        "the stored Merkle node at level {level}, index {index} {wrong}"
                    ),
                });
            }
        }
        let size = self.frontier.size();
        if self.wanted.contains(&size) {
            self.roots.insert(size, self.frontier.root());
        }
        completed.len() as u64
    }
}
