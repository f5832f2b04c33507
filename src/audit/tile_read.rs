//! Reading the stored Merkle tiles (C2SP tlog-tiles): the tile at tile level L, index N holds the hashes of tree
//! level 8·L with indices 256·N … 256·N+W−1, concatenated, as one side entry. This file owns the tile keys and
//! what is read from them: a subtree folded from its tile, and the leaf recorded for an event.

use super::merkle::{fold_leaves, leaf_hash};
use crate::chain::Hash32;
use crate::error::{LedgerError, LedgerResult};
use crate::store::LogStore;

/// Tree levels spanned by one tile level: a tile holds hashes of tree level 8·L.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
pub(super) const HASH: usize = 32;
pub(super) const TILE_PREFIX: &[u8] = crate::store::side_keys::TILES;

/// Side-entry key of the tile at tile level `tile_level`, index `index`: `tile/` ‖ L (u8) ‖ N (u64 BE).
pub fn tile_key(tile_level: u32, index: u64) -> Vec<u8> {
    let mut key = TILE_PREFIX.to_vec();
    key.push(tile_level as u8);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The stored tile's bytes (32·W, W ≤ 256), if stored.
pub fn read_tile(
    store: &dyn LogStore,
    tile_level: u32,
    index: u64,
) -> LedgerResult<Option<Vec<u8>>> {
    let Some(bytes) = store.get_side(&tile_key(tile_level, index))? else {
        return Ok(None);
    };
    if bytes.is_empty() || bytes.len() % HASH != 0 || bytes.len() > TILE_WIDTH as usize * HASH {
        return Err(LedgerError::Corrupt {
            seq: (index * TILE_WIDTH) << (TILE_HEIGHT * tile_level),
            problem: format!(
                "the Merkle tile at tile level {tile_level}, index {index} has a length of {} bytes",
                bytes.len()
            ),
        });
    }
    Ok(Some(bytes))
}

pub(super) fn hashes_of(bytes: &[u8]) -> Vec<Hash32> {
    bytes
        .chunks_exact(HASH)
        // chunks_exact(32) yields only 32-byte slices, so the conversion cannot fail.
        .map(|chunk| chunk.try_into().expect("32-byte chunks"))
        .collect()
}

/// The subtree at (`level`, `index`) folded from the 2^k hashes of row 8·L (level = 8·L + k) in the one tile that
/// holds them; `None` when that tile is not stored or not yet that wide.
pub fn subtree_from_tile(
    store: &dyn LogStore,
    level: u32,
    index: u64,
) -> LedgerResult<Option<Hash32>> {
    let (tile_level, k) = (level / TILE_HEIGHT, level % TILE_HEIGHT);
    let first = index << k;
    let (tile, offset) = (first / TILE_WIDTH, (first % TILE_WIDTH) as usize);
    let Some(bytes) = read_tile(store, tile_level, tile)? else {
        return Ok(None);
    };
    let end = offset + (1usize << k);
    if bytes.len() < end * HASH {
        return Ok(None);
    }
    Ok(Some(fold_leaves(hashes_of(
        &bytes[offset * HASH..end * HASH],
    ))))
}

/// The leaf the stored tree holds for event `seq`, when a stored tile covers it.
pub fn recorded_leaf(store: &dyn LogStore, seq: u64) -> LedgerResult<Option<Hash32>> {
    match seq {
        0 => Ok(None),
        _ => subtree_from_tile(store, 0, seq - 1),
    }
}

/// The first event of `from..=to` whose hash is not the leaf the stored tree holds for it. A sealed block stores
/// no hash but its first (the rest follow from the bodies), so a changed body there shows first as a link or a
/// checkpoint further on; the tree's leaves say which event it was. `None` when every stored leaf agrees, or a
/// read fails (the caller's own finding stands).
pub fn first_unrecorded_leaf(store: &dyn LogStore, from: u64, to: u64) -> Option<u64> {
    let mut tile: Option<(u64, Option<Vec<u8>>)> = None;
    for record in store.scan(from.max(1), to.saturating_add(1)) {
        let record = record.ok()?;
        let index = record.seq - 1;
        let number = index / TILE_WIDTH;
        if tile.as_ref().map(|(n, _)| *n) != Some(number) {
            tile = Some((number, read_tile(store, 0, number).ok()?));
        }
        let at = (index % TILE_WIDTH) as usize * HASH;
        let leaf = tile
            .as_ref()
            .and_then(|(_, bytes)| bytes.as_ref()?.get(at..at + HASH));
        if leaf.is_some_and(|leaf| leaf != leaf_hash(&record.hash)) {
            return Some(record.seq);
        }
    }
    None
}
