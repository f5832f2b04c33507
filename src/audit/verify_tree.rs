//! The Merkle tree as verification recomputes it: from the event hashes (stored tiles compared as it grows), and
//! over an archived prefix from its stored tiles, which must give the prefix's signed checkpoint root.

use super::problem::{problem, Problem, ProblemKind};
use super::tiles::{tile_key, Tiles, TILE_WIDTH};
use super::tree::{node_key, Frontier, STORED_LEVEL};
use crate::chain::Hash32;
use crate::error::LedgerResult;
use crate::signers::SignerRegistry;
use crate::store::{LogStore, StoredRecord};
use std::collections::{BTreeMap, BTreeSet};

/// The tree over the archived prefix, rebuilt from its stored tiles, which must give the root its signed
/// checkpoint names; and the kept last event of the prefix must have the recorded hash.
pub(super) fn archived_frontier(
    store: &dyn LogStore,
    prefix: &crate::store::ArchivedPrefix,
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
    /// The recomputed tiles' right edge (over an archived prefix, loaded from the store).
    tiles: Tiles,
    /// The ledger still has `merkle/` entries of the layout before tiles (not migrated): a missing tile is not
    /// a problem there, and the old entries are compared where present.
    legacy: bool,
    /// Sizes of stored checkpoints, whose roots are kept as the tree reaches them.
    pub(super) wanted: BTreeSet<u64>,
    pub(super) roots: BTreeMap<u64, Hash32>,
}

impl TreeCheck {
    /// Continues the tree of `frontier` (empty, or the archived prefix's).
    pub(super) fn new(
        store: &dyn LogStore,
        frontier: Frontier,
        wanted: BTreeSet<u64>,
    ) -> LedgerResult<Self> {
        let start = frontier.size();
        let legacy = store.get_side(&node_key(4, start >> 4))?.is_some()
            || (start >= 256 && store.get_side(&node_key(8, (start >> 8) - 1))?.is_some());
        Ok(Self {
            tiles: Tiles::load(store, start)?,
            frontier,
            legacy,
            wanted,
            roots: BTreeMap::new(),
        })
    }

    /// Adds the event's leaf; compares each tile it completes with the stored one (and, on a ledger not yet
    /// migrated, each old node entry it completes). Returns the hashes compared.
    pub(super) fn push(
        &mut self,
        store: &dyn LogStore,
        record: &StoredRecord,
        problems: &mut Vec<Problem>,
    ) -> u64 {
        let mut checked = 0;
        if self.legacy {
            let mut completed = Vec::new();
            self.tiles
                .push_with(&mut self.frontier, &record.hash, |level, index, hash| {
                    if level >= STORED_LEVEL {
                        completed.push((level, index, *hash));
                    }
                });
            for (level, index, hash) in completed {
                match store.get_side(&node_key(level, index)) {
                    Ok(Some(stored)) if stored.as_slice() == hash.as_slice() => checked += 1,
                    Ok(None) => {}
                    wrong => problems.push(Problem {
                        seq: record.seq,
                        kind: ProblemKind::IndexMismatch,
                        detail: format!(
                            "the stored Merkle node at level {level}, index {index} {}",
                            match wrong {
                                Ok(_) => "differs from the one recomputed from the events",
                                Err(_) => "cannot be read",
                            }
                        ),
                    }),
                }
            }
        } else {
            self.tiles.push(&mut self.frontier, &record.hash);
        }
        for (level, index, hashes) in self.tiles.take_completed() {
            checked += self.compare(store, record.seq, level, index, &hashes, problems);
        }
        let size = self.frontier.size();
        if self.wanted.contains(&size) {
            self.roots.insert(size, self.frontier.root());
        }
        checked
    }

    /// Compares the partial tiles at the end of the verified range (a stored tile may be wider, when the range
    /// ends before the head). Returns the hashes compared.
    pub(super) fn finish(&self, store: &dyn LogStore, problems: &mut Vec<Problem>) -> u64 {
        let seq = self.frontier.size();
        // The partial leaf tile is never stored (tiles.rs); the events it would hold were just checked.
        self.tiles
            .partial()
            .filter(|(level, _, _)| *level > 0)
            .map(|(level, index, hashes)| self.compare(store, seq, level, index, hashes, problems))
            .sum()
    }

    fn compare(
        &self,
        store: &dyn LogStore,
        seq: u64,
        level: u32,
        index: u64,
        hashes: &[Hash32],
        problems: &mut Vec<Problem>,
    ) -> u64 {
        let want = hashes.as_flattened();
        let wrong = match store.get_side(&tile_key(level, index)) {
            Ok(Some(stored))
                if stored.len() > TILE_WIDTH as usize * 32 || stored.len() % 32 != 0 =>
            {
                Some("has a length that is not a whole number of hashes (at most 256)")
            }
            Ok(Some(stored)) if stored.starts_with(want) => None,
            Ok(Some(stored)) if stored.len() < want.len() && want.starts_with(&stored) => {
                Some("is shorter than the one recomputed from the events")
            }
            Ok(Some(_)) => Some("differs from the one recomputed from the events"),
            Ok(None) if self.legacy => return 0,
            Ok(None) => Some("is missing"),
            Err(_) => Some("cannot be read"),
        };
        match wrong {
            None => hashes.len() as u64,
            Some(wrong) => {
                problems.push(Problem {
                    seq,
                    kind: ProblemKind::IndexMismatch,
                    detail: format!(
                        "the stored Merkle tile at tile level {level}, index {index} {wrong}"
                    ),
                });
                0
            }
        }
    }
}
