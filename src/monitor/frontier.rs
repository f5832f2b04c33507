//! The monitor's own right edge of the verified tree: one complete subtree root per set bit of its size, largest
//! first, so that it can be saved as a list of hashes and restored (the writer's `audit::tree::Frontier` is built
//! from a store, which a monitor does not have). Hashing is `audit::merkle`'s.

use crate::audit::merkle::{empty_root, leaf_hash, node_hash};
use crate::chain::Hash32;

/// The right edge of a tree of `size` leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash32>,
}

impl Frontier {
    /// A frontier from saved subtree roots; `None` unless there is exactly one per set bit of `size`.
    pub fn restore(size: u64, nodes: Vec<Hash32>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Self { size, nodes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, largest first (what [`Frontier::restore`] takes back).
    pub fn nodes(&self) -> &[Hash32] {
        &self.nodes
    }

    /// Adds the next leaf, given the event hash it holds.
    pub fn push(&mut self, event_hash: &Hash32) {
        let mut hash = leaf_hash(event_hash);
        let mut below = self.size;
        // Each trailing set bit of the size is a complete subtree of the same height: merge with it.
        while below & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            below >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The RFC 6962 root of the tree so far.
    pub fn root(&self) -> Hash32 {
        let mut iter = self.nodes.iter().rev();
        let Some(&last) = iter.next() else {
            return empty_root();
        };
        iter.fold(last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::{root, MemoryLeaves};
    use sha2::{Digest, Sha256};

    #[test]
    fn the_root_matches_the_tree_at_every_size_and_survives_a_restore() {
        let events: Vec<Hash32> = (0u32..300)
            .map(|i| Sha256::digest(i.to_be_bytes()).into())
            .collect();
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), empty_root());
        for (i, event) in events.iter().enumerate() {
            frontier.push(event);
            let leaves = MemoryLeaves(events[..=i].iter().map(leaf_hash).collect());
            let Ok(expected) = root(&leaves, i as u64 + 1);
            assert_eq!(frontier.root(), expected, "size {}", i + 1);
            let restored = Frontier::restore(frontier.size(), frontier.nodes().to_vec());
            assert_eq!(restored.as_ref(), Some(&frontier));
        }
        assert_eq!(Frontier::restore(3, vec![[0; 32]]), None);
    }
}
