use super::*;
use crate::audit::merkle::{leaf_hash, root, MemoryLeaves, SubtreeSource};
use crate::store::SledStore;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

fn event_hash(i: u64) -> Hash32 {
    Sha256::digest(i.to_be_bytes()).into()
}

type TilesByKey = BTreeMap<Vec<u8>, Vec<u8>>;

/// Grows a tree of `size` leaves, taking the changed tiles every `batch` leaves as the writer does; returns the
/// final tiles by key, the frontier, the tiles' state and the leaf hashes.
fn grow(size: u64, batch: u64) -> (TilesByKey, Frontier, Tiles, Vec<Hash32>) {
    let (mut frontier, mut tiles) = (Frontier::default(), Tiles::default());
    let mut stored = BTreeMap::new();
    let mut leaves = Vec::new();
    for i in 0..size {
        let hash = event_hash(i);
        leaves.push(leaf_hash(&hash));
        tiles.push(&mut frontier, &hash);
        if (i + 1) % batch == 0 || i + 1 == size {
            let changed = tiles.take_changed();
            let keys: std::collections::BTreeSet<_> = changed.iter().map(|(k, _)| k).collect();
            assert_eq!(
                keys.len(),
                changed.len(),
                "a tile written twice in one batch"
            );
            stored.extend(changed);
        }
    }
    (stored, frontier, tiles, leaves)
}

/// What the tiles must hold: row 8·L of the tree a Frontier computes, cut into runs of 256.
fn expected_tiles(size: u64) -> TilesByKey {
    let mut rows: BTreeMap<u32, Vec<(u64, Hash32)>> = BTreeMap::new();
    let mut frontier = Frontier::default();
    for i in 0..size {
        frontier.push_with(&event_hash(i), |level, index, hash| {
            if level % TILE_HEIGHT == 0 {
                rows.entry(level / TILE_HEIGHT)
                    .or_default()
                    .push((index, *hash));
            }
        });
    }
    let mut tiles = BTreeMap::new();
    for (level, row) in rows {
        for (n, chunk) in row.chunks(TILE_WIDTH as usize).enumerate() {
            assert!(chunk
                .iter()
                .enumerate()
                .all(|(j, (index, _))| *index == n as u64 * TILE_WIDTH + j as u64));
            let bytes: Vec<u8> = chunk.iter().flat_map(|(_, hash)| *hash).collect();
            tiles.insert(tile_key(level, n as u64), bytes);
        }
    }
    tiles
}

#[test]
fn tiles_hold_the_rows_a_frontier_computes() {
    for size in [1u64, 255, 256, 257, 65_536 + 3] {
        for batch in [1u64, 7, 1000] {
            if size > 1000 && batch < 1000 {
                continue;
            }
            let (stored, frontier, tiles, leaves) = grow(size, batch);
            // The writer never stores the partial leaf tile (it is rebuilt from the last events at open).
            let mut expected = expected_tiles(size);
            if size % TILE_WIDTH != 0 {
                expected.remove(&tile_key(0, size / TILE_WIDTH));
            }
            assert_eq!(stored, expected, "size {size}, batch {batch}");
            assert_eq!(tiles.root(), frontier.root(), "size {size}");
            assert_eq!(
                tiles.root(),
                root(&MemoryLeaves(leaves.clone()), size).unwrap()
            );
            // Level 0 is the leaf hashes themselves.
            if size >= TILE_WIDTH {
                assert_eq!(stored[&tile_key(0, 0)], leaves[..256].concat());
            }
        }
    }
    let (stored, ..) = grow(65_536 + 3, 1000);
    // 256 full leaf tiles (the partial one of 3 is not stored), one full tile of level-8 hashes, one level-16 hash.
    assert_eq!(stored.len(), 256 + 1 + 1);
    assert!(!stored.contains_key(&tile_key(0, 256)));
    assert_eq!(stored[&tile_key(1, 0)].len(), 256 * 32);
    assert_eq!(stored[&tile_key(2, 0)].len(), 32);
}

fn store_with_tiles(size: u64) -> (tempfile::TempDir, SledStore, Vec<Hash32>) {
    let tmp = tempfile::tempdir().unwrap();
    let store = SledStore::open(&tmp.path().join("db")).unwrap();
    // Every tile, the partial leaf tile too (as a migration writes them), so that no read needs the events.
    let (_, _, _, leaves) = grow(size, 500);
    append_events(&store, size);
    let stored = expected_tiles(size);
    store
        .put_side(&stored.into_iter().collect::<Vec<_>>())
        .unwrap();
    (tmp, store, leaves)
}

/// Events 1..=`count` (hashes as `event_hash`): a store shows a full tile only once its head covers it.
fn append_events(store: &SledStore, count: u64) {
    use crate::store::{AppendBatch, LogStore, StoredRecord};
    for first in (1..=count).step_by(4096) {
        let records = (first..=count.min(first + 4095))
            .map(|seq| StoredRecord {
                seq,
                time: crate::time::LedgerTime::from_micros(seq as i64),
                hash: event_hash(seq - 1),
                signature: [0; 64],
                signer: crate::chain::SignerId([0; 8]),
                body: b"{}".to_vec(),
            })
            .collect();
        store
            .append(&AppendBatch {
                records,
                ..Default::default()
            })
            .unwrap();
    }
}

#[test]
fn a_node_read_from_its_tile_equals_the_node_folded_from_leaves() {
    let size = 65_536 + 300;
    let (_tmp, store, leaves) = store_with_tiles(size);
    let memory = MemoryLeaves(leaves);
    for level in 0..=16u32 {
        let count = size >> level;
        for index in [0, 1, count / 2, count.saturating_sub(1)] {
            if index >= count {
                continue;
            }
            let want = memory.subtree(level, index).unwrap();
            assert_eq!(
                subtree_from_tile(&store, level, index).unwrap(),
                Some(want),
                "level {level}, index {index}"
            );
            let tree = StoredTree { store: &store };
            assert_eq!(tree.subtree(level, index).unwrap(), want);
        }
    }
    // Beyond the tree: no tile is that wide (or stored at all).
    assert_eq!(subtree_from_tile(&store, 0, size).unwrap(), None);
    assert_eq!(subtree_from_tile(&store, 17, 0).unwrap(), None);
    assert_eq!(subtree_from_tile(&store, 9, 128).unwrap(), None);
}

#[test]
fn the_right_edge_loads_from_the_store_and_grows_on() {
    let size = 256 * 3 + 17;
    let (_tmp, store, _) = store_with_tiles(size);
    let (mut frontier, mut loaded) = (Frontier::default(), Tiles::load(&store, size).unwrap());
    for i in 0..size {
        frontier.push(&event_hash(i));
    }
    loaded.check(&frontier).unwrap();
    for i in size..size + 600 {
        loaded.push(&mut frontier, &event_hash(i));
    }
    let changed: BTreeMap<_, _> = loaded.take_changed().into_iter().collect();
    let want = expected_tiles(size + 600);
    for (key, bytes) in &changed {
        assert_eq!(Some(bytes), want.get(key));
    }
    // Tiles 0/3 and 0/4 filled and the level-1 tile changed; 0/0 .. 0/2 were full already, and the partial leaf
    // tile 0/5 is not written.
    assert_eq!(changed.len(), 3);
    let mut other = Frontier::default();
    other.push(&event_hash(0));
    assert!(loaded.check(&other).is_err());
}

#[test]
fn a_wrong_length_tile_is_corrupt() {
    let (_tmp, store, _) = store_with_tiles(10);
    store.put_side(&[(tile_key(0, 0), vec![0u8; 33])]).unwrap();
    assert!(subtree_from_tile(&store, 0, 0).is_err());
}
