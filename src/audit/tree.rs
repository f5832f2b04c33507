//! The Merkle tree kept beside the chain. Its hashes are stored as C2SP tlog-tiles (src/audit/tiles.rs), written in
//! the same atomic batch as their events; a subtree is folded from the one tile holding its row. Ledgers written
//! before tiles hold one `merkle/` side entry per complete subtree from level 4 up instead: where a tile is
//! missing, that entry is used, else the subtree is recomputed from the event hashes in the records. The writer
//! keeps the right-edge frontier, so each append costs amortised O(1).

use super::merkle::{fold_leaves, leaf_hash, node_hash, range_hash, SubtreeSource};
use crate::chain::Hash32;
use crate::error::{LedgerError, LedgerResult};
use crate::store::LogStore;

/// The previous layout stored subtrees at this level and above as `merkle/` entries; below it they were
/// recomputed from records (an archive still keeps its records in blocks of this many leaves' worth).
pub const STORED_LEVEL: u32 = 4;
const NODE_PREFIX: &[u8] = crate::store::side_keys::MERKLE_NODES;

/// Side-entry key of the subtree root at (`level`, `index`) in the previous layout (read as a fallback, and removed
/// by [`super::tiles::write_all_tiles`]).
pub fn node_key(level: u32, index: u64) -> Vec<u8> {
    let mut key = NODE_PREFIX.to_vec();
    key.push(level as u8);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The tree as the store holds it.
pub struct StoredTree<'a> {
    pub store: &'a dyn LogStore,
}

impl SubtreeSource for StoredTree<'_> {
    type Error = LedgerError;

    fn subtree(&self, level: u32, index: u64) -> LedgerResult<Hash32> {
        if let Some(hash) = super::tile_read::subtree_from_tile(self.store, level, index)? {
            return Ok(hash);
        }
        // No tile holds it (a ledger written before tiles): the old node entry, else computed.
        if level >= STORED_LEVEL {
            if let Some(bytes) = self.store.get_side(&node_key(level, index))? {
                return bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| LedgerError::Corrupt {
                        seq: index << level,
                        problem: "Merkle node has the wrong length".into(),
                    });
            }
            // Not stored (e.g. a tree built before nodes were kept): compute from the level below.
            return Ok(node_hash(
                &self.subtree(level - 1, index * 2)?,
                &self.subtree(level - 1, index * 2 + 1)?,
            ));
        }
        let width = 1u64 << level;
        let first_seq = index * width + 1;
        let mut hashes = Vec::with_capacity(width as usize);
        for record in self.store.scan(first_seq, first_seq + width) {
            hashes.push(leaf_hash(&record?.hash));
        }
        if hashes.len() as u64 != width {
            return Err(LedgerError::Corrupt {
                seq: first_seq,
                problem: "events under a Merkle subtree are missing".into(),
            });
        }
        Ok(fold_leaves(hashes))
    }
}

/// The right edge of the tree: one complete subtree root per set bit of `size`, largest first.
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<(u32, Hash32)>,
}

impl Frontier {
    /// Rebuilds the frontier of a tree of `size` leaves from the store (O(log n) subtree lookups).
    pub fn load(store: &dyn LogStore, size: u64) -> LedgerResult<Self> {
        let tree = StoredTree { store };
        let mut nodes = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                nodes.push((level, tree.subtree(level, start >> level)?));
                start += 1 << level;
            }
        }
        Ok(Self { size, nodes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds the next leaf.
    pub fn push(&mut self, event_hash: &Hash32) {
        self.push_with(event_hash, |_, _, _| {});
    }

    /// Adds the next leaf; calls `completed(level, index, hash)` for its leaf hash (level 0) and then for each
    /// subtree it completes, lowest first.
    pub fn push_with(&mut self, event_hash: &Hash32, mut completed: impl FnMut(u32, u64, &Hash32)) {
        let mut level = 0u32;
        let mut hash = leaf_hash(event_hash);
        completed(0, self.size, &hash);
        while let Some(&(top_level, top_hash)) = self.nodes.last() {
            if top_level != level {
                break;
            }
            self.nodes.pop();
            hash = node_hash(&top_hash, &hash);
            level += 1;
            completed(level, self.size >> level, &hash);
        }
        self.nodes.push((level, hash));
        self.size += 1;
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash32 {
        let mut iter = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return super::merkle::empty_root();
        };
        for (_, hash) in iter {
            acc = node_hash(hash, &acc);
        }
        acc
    }
}

/// The root of the first `size` leaves, from the store.
pub fn stored_root(store: &dyn LogStore, size: u64) -> LedgerResult<Hash32> {
    range_hash(&StoredTree { store }, 0, size)
}
