//! RFC 9162 (RFC 6962) Merkle tree hashing, inclusion and consistency proofs, over any source of subtree hashes.
//! Leaves are the events' chain hashes in seq order (leaf i is seq i + 1): leaf hash `SHA-256(0x00 ‖ hash)`,
//! node hash `SHA-256(0x01 ‖ left ‖ right)`, a range split at the largest power of two below its size.

use crate::chain::Hash32;
use sha2::{Digest, Sha256};

/// The leaf hash of an event: `SHA-256(0x00 ‖ its 32-byte chain hash)`.
pub fn leaf_hash(event_hash: &Hash32) -> Hash32 {
    leaf_hash_of(event_hash)
}

/// RFC 6962 leaf hash of arbitrary leaf data.
pub fn leaf_hash_of(data: &[u8]) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash32 {
    Sha256::digest([]).into()
}

/// Largest power of two strictly below `n` (n ≥ 2).
pub fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Hashes of aligned complete subtrees: `subtree(level, index)` is the root over leaves
/// `[index·2^level, (index+1)·2^level)`.
pub trait SubtreeSource {
    type Error;
    fn subtree(&self, level: u32, index: u64) -> Result<Hash32, Self::Error>;
}

/// MTH over leaves `[start, end)`, decomposed into aligned complete subtrees.
pub fn range_hash<S: SubtreeSource>(source: &S, start: u64, end: u64) -> Result<Hash32, S::Error> {
    let size = end - start;
    if size == 0 {
        return Ok(empty_root());
    }
    if size.is_power_of_two() && start % size == 0 {
        return source.subtree(size.trailing_zeros(), start / size);
    }
    let k = split_point(size);
    Ok(node_hash(
        &range_hash(source, start, start + k)?,
        &range_hash(source, start + k, end)?,
    ))
}

/// The root of the tree of the first `size` leaves.
pub fn root<S: SubtreeSource>(source: &S, size: u64) -> Result<Hash32, S::Error> {
    range_hash(source, 0, size)
}

/// RFC 9162 §2.1.3.1: the inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof<S: SubtreeSource>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash32>, S::Error> {
    let mut proof = Vec::new();
    path(source, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path<S: SubtreeSource>(
    source: &S,
    index: u64,
    start: u64,
    end: u64,
    proof: &mut Vec<Hash32>,
) -> Result<(), S::Error> {
    let size = end - start;
    if size <= 1 {
        return Ok(());
    }
    let k = split_point(size);
    if index < k {
        path(source, index, start, start + k, proof)?;
        proof.push(range_hash(source, start + k, end)?);
    } else {
        path(source, index - k, start + k, end, proof)?;
        proof.push(range_hash(source, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.1: the consistency proof from the tree of `old` leaves to the tree of `new` leaves.
pub fn consistency_proof<S: SubtreeSource>(
    source: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash32>, S::Error> {
    let mut proof = Vec::new();
    if old > 0 && old < new {
        subproof(source, old, 0, new, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof<S: SubtreeSource>(
    source: &S,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    proof: &mut Vec<Hash32>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !complete {
            proof.push(range_hash(source, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(source, m, start, start + k, complete, proof)?;
        proof.push(range_hash(source, start + k, end)?);
    } else {
        subproof(source, m - k, start + k, end, false, proof)?;
        proof.push(range_hash(source, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.3.2: checks that `leaf` (a leaf hash) is at `index` in the tree of `size` with root `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash32,
    proof: &[Hash32],
    root: &Hash32,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new`
/// leaves with root `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash32,
    new_root: &Hash32,
    proof: &[Hash32],
) -> bool {
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 || old > new {
        return old == 0 && proof.is_empty();
    }
    let mut path: Vec<Hash32> = proof.to_vec();
    if old.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *old_root && sr == *new_root && sn == 0
}

/// Leaf hashes held in memory, as a subtree source (for tests and small trees).
pub struct MemoryLeaves(pub Vec<Hash32>);

impl SubtreeSource for MemoryLeaves {
    type Error = std::convert::Infallible;
    fn subtree(&self, level: u32, index: u64) -> Result<Hash32, Self::Error> {
        let width = 1u64 << level;
        let start = (index * width) as usize;
        Ok(fold_leaves(self.0[start..start + width as usize].to_vec()))
    }
}

/// The root of a complete (power-of-two sized) run of leaf hashes.
pub fn fold_leaves(mut level: Vec<Hash32>) -> Hash32 {
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level.first().copied().unwrap_or_else(empty_root)
}
