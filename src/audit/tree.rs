//! The Merkle tree kept beside the chain: complete subtree roots from level 4 up (16 leaves and more) are stored
//! as side entries in the same atomic batch as their events; lower levels are recomputed from the event hashes in
//! the records (at most 16 reads). The writer keeps the right-edge frontier, so each append costs amortised O(1).

use super::merkle::{fold_leaves, leaf_hash, node_hash, range_hash, SubtreeSource};
use crate::chain::Hash32;
use crate::error::{LedgerError, LedgerResult};
use crate::store::LogStore;

/// Subtrees at this level and above are stored; below it they are recomputed from records.
pub const STORED_LEVEL: u32 = 4;
const NODE_PREFIX: &[u8] = b"merkle/";

/// Side-entry key of the stored subtree root at (`level`, `index`).
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

    /// Adds the next leaf; returns the subtrees it completed at stored levels as `(level, index, hash)`.
    pub fn push(&mut self, event_hash: &Hash32) -> Vec<(u32, u64, Hash32)> {
        let mut completed = Vec::new();
        let mut level = 0u32;
        let mut hash = leaf_hash(event_hash);
        while let Some(&(top_level, top_hash)) = self.nodes.last() {
            if top_level != level {
                break;
            }
            self.nodes.pop();
            hash = node_hash(&top_hash, &hash);
            level += 1;
            if level >= STORED_LEVEL {
                completed.push((level, self.size >> level, hash));
            }
        }
        self.nodes.push((level, hash));
        self.size += 1;
        completed
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
