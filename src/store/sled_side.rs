//! Where the embedded store keeps side entries: full Merkle tiles in the tile files, large values written now and
//! then (the projection snapshot, usage rollups, an archive's base state) in sled's `bulk` tree, the rest in the
//! `log` tree beside the head and the tail.
//!
//! The split is about what sled rewrites. sled writes a node again, whole, once enough changes to it pile up; a
//! node holding an 8 MiB rollup checkpoint beside the checkpoint notes the writer adds every 1,024 events was
//! rewritten as a new 8 MiB blob every few thousand events (~800 MB of blobs at 1M events with 100,000 keys,
//! docs/PERFORMANCE.md). In a tree of their own the large values are rewritten only when they change. Ledgers
//! written before the split keep such entries in `log` until each is written again: reads look in `bulk` first.

use super::side_keys::{prefixes_filed, Filing};
use super::sled_keys::{backend, stored_side_key};
use super::sled_store::SledStore;
use super::sled_tile_files::{may_hold_tiles, merge_sorted, tile_address, FULL_TILE};
use super::{LogStore, StoreIter, StoreResult};

fn is_bulk(key: &[u8]) -> bool {
    prefixes_filed(Filing::Bulk).any(|prefix| key.starts_with(prefix))
}

/// Whether side entries under `prefix` may include bulk ones.
fn may_hold_bulk(prefix: &[u8]) -> bool {
    prefixes_filed(Filing::Bulk).any(|bulk| bulk.starts_with(prefix) || prefix.starts_with(bulk))
}

static ZEROS: [u8; FULL_TILE] = [0; FULL_TILE];

/// What a set of side writes puts outside the `log` batch: tiles (zeros for removed ones) for the tile files, and
/// the `bulk` tree's batch when it has anything.
pub(super) struct StagedSide<'a> {
    pub(super) tiles: Vec<(u8, u64, &'a [u8])>,
    pub(super) bulk: Option<sled::Batch>,
}

impl SledStore {
    /// The number of leaves of the tree: every event is one.
    fn leaves(&self) -> StoreResult<u64> {
        Ok(self.head()?.map_or(0, |head| head.seq))
    }

    /// Sorts side writes and removals: `log`'s go into `log` (with the removal of any older copy of what moves to
    /// the tile files or `bulk`), the rest is returned. A legacy layout keeps everything in `log`.
    pub(super) fn stage_side<'a>(
        &self,
        side: &'a [(Vec<u8>, Vec<u8>)],
        removals: &[Vec<u8>],
        log: &mut sled::Batch,
    ) -> StagedSide<'a> {
        let mut staged = StagedSide {
            tiles: Vec::new(),
            bulk: None,
        };
        for key in removals {
            log.remove(stored_side_key(key));
            if self.legacy {
                continue;
            }
            if let Some((level, index)) = tile_address(key) {
                staged.tiles.push((level, index, &ZEROS[..]));
            } else if is_bulk(key) {
                staged
                    .bulk
                    .get_or_insert_with(sled::Batch::default)
                    .remove(stored_side_key(key));
            }
        }
        for (key, value) in side {
            let full_tile = tile_address(key).filter(|_| value.len() == FULL_TILE);
            match full_tile {
                _ if self.legacy => log.insert(stored_side_key(key), value.as_slice()),
                Some((level, index)) => {
                    staged.tiles.push((level, index, value));
                    // Its partial versions were side entries; the leaf level never has one.
                    if level > 0 {
                        log.remove(stored_side_key(key));
                    }
                }
                None if is_bulk(key) => {
                    log.remove(stored_side_key(key));
                    staged
                        .bulk
                        .get_or_insert_with(sled::Batch::default)
                        .insert(stored_side_key(key), value.as_slice());
                }
                None => log.insert(stored_side_key(key), value.as_slice()),
            }
        }
        staged
    }

    pub(super) fn side_get(&self, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        if !self.legacy {
            if let Some((level, index)) = tile_address(key) {
                if let Some(tile) = self.tile_files.read(level, index, self.leaves()?)? {
                    return Ok(Some(tile));
                }
            } else if is_bulk(key) {
                if let Some(value) = self.bulk.get(stored_side_key(key)).map_err(backend)? {
                    return Ok(Some(value.to_vec()));
                }
            }
        }
        Ok(self
            .tree
            .get(stored_side_key(key))
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    /// Side entries under `prefix` from key `from` on, in key order, from `log`, `bulk` and the tile files.
    pub(super) fn side_scan(
        &self,
        prefix: &[u8],
        from: &[u8],
    ) -> StoreIter<'_, (Vec<u8>, Vec<u8>)> {
        let from = from.max(prefix);
        let mut merged = scan_tree(&self.tree, prefix, from);
        if self.legacy {
            return merged;
        }
        if may_hold_bulk(prefix) {
            merged = Box::new(merge_sorted(scan_tree(&self.bulk, prefix, from), merged));
        }
        if may_hold_tiles(prefix) {
            let leaves = match self.leaves() {
                Ok(leaves) => leaves,
                Err(err) => return Box::new(std::iter::once(Err(err))),
            };
            let prefix = prefix.to_vec();
            let in_files = self
                .tile_files
                .scan(leaves, from.to_vec())
                .filter(move |entry| {
                    entry
                        .as_ref()
                        .map_or(true, |(key, _)| key.starts_with(&prefix))
                });
            merged = Box::new(merge_sorted(in_files, merged));
        }
        merged
    }

    /// Writes side entries outside a group commit (snapshots, tile rewrites, the API's entries): tiles durably
    /// first, then one sled commit.
    pub(super) fn side_write(
        &self,
        entries: &[(Vec<u8>, Vec<u8>)],
        removals: &[Vec<u8>],
    ) -> StoreResult<()> {
        let mut log = sled::Batch::default();
        let staged = self.stage_side(entries, removals, &mut log);
        self.tile_files.write(&staged.tiles)?;
        self.apply_group(log, None, staged.bulk)?;
        self.flush_all()
    }
}

fn scan_tree<'a>(
    tree: &sled::Tree,
    prefix: &[u8],
    from: &[u8],
) -> StoreIter<'a, (Vec<u8>, Vec<u8>)> {
    let stored_prefix = stored_side_key(prefix);
    Box::new(
        tree.range(stored_side_key(from)..)
            .take_while(move |item| {
                item.as_ref()
                    .map_or(true, |(key, _)| key.starts_with(&stored_prefix))
            })
            .map(|item| {
                let (key, value) = item.map_err(backend)?;
                Ok((key[1..].to_vec(), value.to_vec()))
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_values_go_to_the_bulk_tree_and_old_copies_in_log_are_still_read_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        // As a ledger written before the split holds it.
        store
            .tree
            .insert(stored_side_key(b"rollup/p/old"), b"from log".to_vec())
            .unwrap();
        store
            .put_side(&[
                (b"snapshot/projections/body".to_vec(), vec![1; 300_000]),
                (b"checkpoint/1".to_vec(), b"note".to_vec()),
            ])
            .unwrap();
        assert!(store
            .tree
            .get(stored_side_key(b"snapshot/projections/body"))
            .unwrap()
            .is_none());
        assert!(store
            .bulk
            .get(stored_side_key(b"snapshot/projections/body"))
            .unwrap()
            .is_some());
        assert!(store
            .tree
            .get(stored_side_key(b"checkpoint/1"))
            .unwrap()
            .is_some());
        assert_eq!(
            store.get_side(b"rollup/p/old").unwrap().as_deref(),
            Some(&b"from log"[..])
        );
        let keys: Vec<Vec<u8>> = store.scan_side(b"").map(|e| e.unwrap().0).collect();
        assert_eq!(
            keys,
            [
                &b"checkpoint/1"[..],
                b"rollup/p/old",
                b"snapshot/projections/body"
            ]
        );
        store
            .put_side(&[(b"rollup/p/old".to_vec(), b"rewritten".to_vec())])
            .unwrap();
        assert!(store
            .tree
            .get(stored_side_key(b"rollup/p/old"))
            .unwrap()
            .is_none());
        assert_eq!(
            store.get_side(b"rollup/p/old").unwrap().as_deref(),
            Some(&b"rewritten"[..])
        );
        store.remove_side(&[b"rollup/p/old".to_vec()]).unwrap();
        assert_eq!(store.get_side(b"rollup/p/old").unwrap(), None);
        assert_eq!(store.scan_side(b"rollup/").count(), 0);
    }
}
