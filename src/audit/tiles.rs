//! The Merkle tree's stored form, C2SP tlog-tiles: the tile at tile level L, index N holds the hashes of tree level
//! 8·L (level 0: the leaf hashes) with indices 256·N … 256·N+W−1, concatenated; read and written as one side entry
//! per tile (the embedded store keeps full ones in tile files, store/sled_tile_files.rs). This
//! module owns the tile keys, reading a subtree from its tile, the right edge the writer grows (each batch writes
//! every tile it changed once, with its final contents), and rewriting every tile of an existing log.

use super::merkle::{empty_root, fold_leaves, node_hash, SubtreeSource};
pub use super::tile_read::{
    first_unrecorded_leaf, read_tile, recorded_leaf, subtree_from_tile, tile_key, TILE_HEIGHT,
    TILE_WIDTH,
};
use super::tile_read::{hashes_of, HASH};
use super::tree::{Frontier, StoredTree};
use crate::chain::Hash32;
use crate::error::{LedgerError, LedgerResult};
use crate::store::LogStore;

/// Tiles put (or legacy entries removed) per store call in [`write_all_tiles`].
const WRITE_CHUNK: usize = 1024;

/// The right-edge (partial) tile of one tile level.
#[derive(Clone, Debug, Default)]
struct Edge {
    index: u64,
    hashes: Vec<Hash32>,
    changed: bool,
}

/// The right edge of every tile level as the tree grows, with the tiles changed since they were last taken.
#[derive(Clone, Debug, Default)]
pub struct Tiles {
    edges: Vec<Edge>,
    /// Tiles that became full since the last take: `(tile level, index, hashes)`.
    completed: Vec<(u32, u64, Vec<Hash32>)>,
}

impl Tiles {
    /// The partial tiles of the tree of `size` leaves, read from the store. Where a tile is missing or narrower
    /// (a ledger written before tiles), its hashes come from the stored tree (`merkle/` entries or records).
    pub fn load(store: &dyn LogStore, size: u64) -> LedgerResult<Self> {
        let tree = StoredTree { store };
        let mut edges = Vec::new();
        let mut tile_level = 0u32;
        while TILE_HEIGHT * tile_level < 64 && size >> (TILE_HEIGHT * tile_level) > 0 {
            let row = size >> (TILE_HEIGHT * tile_level);
            let (index, width) = (row / TILE_WIDTH, row % TILE_WIDTH);
            let mut hashes = Vec::new();
            if width > 0 {
                if let Some(bytes) = read_tile(store, tile_level, index)? {
                    hashes = hashes_of(&bytes);
                    hashes.truncate(width as usize);
                }
                for offset in hashes.len() as u64..width {
                    let at = index * TILE_WIDTH + offset;
                    hashes.push(tree.subtree(TILE_HEIGHT * tile_level, at)?);
                }
            }
            edges.push(Edge {
                index,
                hashes,
                changed: false,
            });
            tile_level += 1;
        }
        Ok(Self {
            edges,
            completed: Vec::new(),
        })
    }

    /// Adds the next leaf to `frontier` and to the tiles: the leaf hash to tile level 0, each completed node at a
    /// level that is a multiple of 8 to its tile level.
    pub fn push(&mut self, frontier: &mut Frontier, event_hash: &Hash32) {
        self.push_with(frontier, event_hash, |_, _, _| {});
    }

    /// [`Tiles::push`], also handing `each` every node the leaf completes, as [`Frontier::push_with`] does.
    pub fn push_with(
        &mut self,
        frontier: &mut Frontier,
        event_hash: &Hash32,
        mut each: impl FnMut(u32, u64, &Hash32),
    ) {
        frontier.push_with(event_hash, |level, index, hash| {
            each(level, index, hash);
            if level % TILE_HEIGHT == 0 {
                self.append(level / TILE_HEIGHT, index, hash);
            }
        });
    }

    fn append(&mut self, tile_level: u32, row_index: u64, hash: &Hash32) {
        let level = tile_level as usize;
        if self.edges.len() <= level {
            self.edges.resize_with(level + 1, Edge::default);
        }
        let edge = &mut self.edges[level];
        debug_assert_eq!(
            edge.index * TILE_WIDTH + edge.hashes.len() as u64,
            row_index
        );
        edge.hashes.push(*hash);
        edge.changed = true;
        if edge.hashes.len() as u64 == TILE_WIDTH {
            let full = std::mem::replace(&mut edge.hashes, Vec::with_capacity(TILE_WIDTH as usize));
            self.completed.push((tile_level, edge.index, full));
            edge.index += 1;
        }
    }

    /// Tiles that became full since the last take or `take_changed`: `(tile level, index, hashes)`.
    pub fn take_completed(&mut self) -> Vec<(u32, u64, Vec<Hash32>)> {
        std::mem::take(&mut self.completed)
    }

    /// The partial tiles, `(tile level, index, hashes)`, lowest level first (empty ones left out).
    pub fn partial(&self) -> impl Iterator<Item = (u32, u64, &[Hash32])> + '_ {
        self.edges
            .iter()
            .enumerate()
            .filter(|(_, edge)| !edge.hashes.is_empty())
            .map(|(level, edge)| (level as u32, edge.index, edge.hashes.as_slice()))
    }

    /// Every tile changed since the last take, once, with its final contents, as side entries to write (full
    /// leaf tiles only: the partial one is rebuilt from the last events at open).
    pub fn take_changed(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = self
            .take_completed()
            .into_iter()
            .map(|(level, index, hashes)| (tile_key(level, index), hashes.as_flattened().to_vec()))
            .collect();
        for (level, edge) in self.edges.iter_mut().enumerate() {
            // The partial leaf tile is not stored: rewriting up to 8 KiB per group commit would cost more disk
            // than the events (sled keeps old versions until it compacts). It is rebuilt from the events at open.
            if std::mem::take(&mut edge.changed) && !edge.hashes.is_empty() && level > 0 {
                entries.push((
                    tile_key(level as u32, edge.index),
                    edge.hashes.as_flattened().to_vec(),
                ));
            }
        }
        entries
    }

    /// The root of the tree the partial tiles describe: the set bits of each one's width are the frontier's
    /// subtrees at the levels that tile level spans.
    pub fn root(&self) -> Hash32 {
        let mut nodes = Vec::new();
        for edge in self.edges.iter().rev() {
            let mut offset = 0usize;
            for k in (0..TILE_HEIGHT).rev() {
                let span = 1usize << k;
                if edge.hashes.len() & span != 0 {
                    nodes.push(fold_leaves(edge.hashes[offset..offset + span].to_vec()));
                    offset += span;
                }
            }
        }
        let mut iter = nodes.iter().rev();
        let Some(&last) = iter.next() else {
            return empty_root();
        };
        iter.fold(last, |acc, hash| node_hash(hash, &acc))
    }

    /// Fails when the partial tiles do not give `frontier`'s root (a tile at the right edge was changed).
    pub fn check(&self, frontier: &Frontier) -> LedgerResult<()> {
        if self.root() == frontier.root() {
            return Ok(());
        }
        Err(LedgerError::Corrupt {
            seq: frontier.size(),
            problem: "the stored Merkle tiles at the head do not give the root recomputed from the events \
                      (`keyledger audit verify` names the tile)"
                .into(),
        })
    }
}

/// Rewrites every tile of the log from the stored event hashes (over an archived prefix, whose events are gone,
/// tile levels ≥ 1 come from the stored tree), in bounded chunks; then removes the `merkle/` entries of the
/// previous layout, except those below level 8 inside an archived prefix (no leaf tile can cover them). Run it
/// while no writer has the ledger open. Returns the number of tiles written.
pub fn write_all_tiles(store: &dyn LogStore) -> LedgerResult<u64> {
    let size = store.head()?.map_or(0, |h| h.seq);
    let archived = crate::store::archived_size(store)?.min(size);
    let mut written = 0u64;
    let mut pending: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut flush = |pending: &mut Vec<(Vec<u8>, Vec<u8>)>, all: bool| -> LedgerResult<()> {
        if !pending.is_empty() && (all || pending.len() >= WRITE_CHUNK) {
            store.put_side(pending)?;
            written += pending.len() as u64;
            pending.clear();
        }
        Ok(())
    };
    let tree = StoredTree { store };
    let mut tile_level = 1u32;
    while TILE_HEIGHT * tile_level < 64 && archived >> (TILE_HEIGHT * tile_level) > 0 {
        let row = archived >> (TILE_HEIGHT * tile_level);
        // Full tiles only: the partial one is the right edge loaded below, written with the events' tiles.
        for index in 0..row / TILE_WIDTH {
            let mut bytes = Vec::with_capacity(TILE_WIDTH as usize * HASH);
            for offset in 0..TILE_WIDTH {
                let at = index * TILE_WIDTH + offset;
                bytes.extend_from_slice(&tree.subtree(TILE_HEIGHT * tile_level, at)?);
            }
            pending.push((tile_key(tile_level, index), bytes));
            flush(&mut pending, false)?;
        }
        tile_level += 1;
    }
    flush(&mut pending, true)?;
    let mut frontier = Frontier::load(store, archived)?;
    let mut tiles = Tiles::load(store, archived)?;
    let mut expected = archived + 1;
    for record in store.scan(archived + 1, size + 1) {
        let record = record?;
        if record.seq != expected {
            return Err(LedgerError::Corrupt {
                seq: expected,
                problem: "an event is missing: the Merkle tiles cannot be rebuilt".into(),
            });
        }
        expected += 1;
        tiles.push(&mut frontier, &record.hash);
        for (level, index, hashes) in tiles.take_completed() {
            pending.push((tile_key(level, index), hashes.as_flattened().to_vec()));
            flush(&mut pending, false)?;
        }
    }
    if expected != size + 1 {
        return Err(LedgerError::Corrupt {
            seq: expected,
            problem: "the log ends before its head: the Merkle tiles cannot be rebuilt".into(),
        });
    }
    pending.extend(
        tiles
            .partial()
            .filter(|(level, _, _)| *level > 0)
            .map(|(level, index, hashes)| (tile_key(level, index), hashes.as_flattened().to_vec())),
    );
    flush(&mut pending, true)?;
    remove_legacy_nodes(store, archived)?;
    Ok(written)
}

/// Removes the previous layout's `merkle/` entries, keeping those below level 8 inside an archived prefix.
fn remove_legacy_nodes(store: &dyn LogStore, archived: u64) -> LedgerResult<()> {
    let prefix = crate::store::side_keys::MERKLE_NODES;
    let mut doomed = Vec::new();
    for entry in store.scan_side(prefix) {
        let (key, _) = entry?;
        let level = key.get(prefix.len()).copied().map_or(0, u32::from);
        let index = key
            .get(prefix.len() + 1..)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(u64::MAX, u64::from_be_bytes);
        let inside_prefix = index
            .checked_add(1)
            .and_then(|end| end.checked_mul(1u64 << level.min(63)))
            .is_some_and(|end| end <= archived);
        if level < TILE_HEIGHT && inside_prefix {
            continue;
        }
        doomed.push(key);
        if doomed.len() >= WRITE_CHUNK {
            store.remove_side(&std::mem::take(&mut doomed))?;
        }
    }
    if !doomed.is_empty() {
        store.remove_side(&doomed)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "tiles_tests.rs"]
mod tests;
