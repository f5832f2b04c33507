//! The Merkle tree stored as C2SP tlog-tiles: a real ledger writes one `tile/` entry per 256 hashes and no
//! `merkle/` node entries, gives the same roots and proofs as a tree over its leaves, keeps growing its tiles
//! after a reopen; a changed or removed tile is named by verification; and a ledger in the layout before tiles
//! still verifies and migrates with `write_all_tiles`.

mod common;

use keyledger::audit::merkle::*;
use keyledger::audit::tiles::{tile_key, write_all_tiles, TILE_WIDTH};
use keyledger::audit::tree::{node_key, stored_root, StoredTree};
use keyledger::audit::ProblemKind;
use keyledger::chain::Hash32;
use keyledger::datadir::{DataDir, KeySource};
use keyledger::ledger::Ledger;
use keyledger::store::LogStore;
use std::collections::BTreeMap;

fn leaves(store: &dyn LogStore) -> Vec<Hash32> {
    let size = store.head().unwrap().unwrap().seq;
    store
        .scan(1, size + 1)
        .map(|r| leaf_hash(&r.unwrap().hash))
        .collect()
}

/// The tiles a tree over `leaves` must have: row 8·L cut into runs of 256 hashes.
fn expected_tiles(leaves: &[Hash32]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let memory = MemoryLeaves(leaves.to_vec());
    let mut tiles = BTreeMap::new();
    let mut level = 0u32;
    while (leaves.len() as u64) >> (8 * level) > 0 {
        let row: Vec<Hash32> = (0..(leaves.len() as u64) >> (8 * level))
            .map(|i| memory.subtree(8 * level, i).unwrap())
            .collect();
        for (n, chunk) in row.chunks(TILE_WIDTH as usize).enumerate() {
            // The partial leaf tile is never stored (rebuilt from the last events at open).
            if level > 0 || chunk.len() as u64 == TILE_WIDTH {
                tiles.insert(tile_key(level, n as u64), chunk.concat());
            }
        }
        level += 1;
    }
    tiles
}

fn stored_tiles(store: &dyn LogStore) -> BTreeMap<Vec<u8>, Vec<u8>> {
    store.scan_side(b"tile/").map(|e| e.unwrap()).collect()
}

/// A ledger of a few thousand events: bulk batches (many tiles completed in one batch) and single events (the
/// partial tile rewritten batch after batch).
fn ledger_of_thousands() -> (tempfile::TempDir, DataDir, Ledger) {
    let (tmp, dir, ledger) = common::fresh_ledger();
    common::append_uses(&ledger, None, 6, 500);
    common::append_uses(&ledger, None, 40, 1);
    common::append_uses(&ledger, None, 2, 300);
    (tmp, dir, ledger)
}

fn assert_same_tree(store: &dyn LogStore, leaves: &[Hash32]) {
    let memory = MemoryLeaves(leaves.to_vec());
    let stored = StoredTree { store };
    let size = leaves.len() as u64;
    for n in [1, 2, 255, 256, 257, 1000, 1024, 2049, size - 1, size] {
        assert_eq!(
            stored_root(store, n).unwrap(),
            root(&memory, n).unwrap(),
            "size {n}"
        );
        for index in [0, n / 2, n - 1] {
            assert_eq!(
                inclusion_proof(&stored, index, n).unwrap(),
                inclusion_proof(&memory, index, n).unwrap(),
                "leaf {index} of {n}"
            );
        }
        assert_eq!(
            consistency_proof(&stored, n / 3 + 1, size).unwrap(),
            consistency_proof(&memory, n / 3 + 1, size).unwrap()
        );
    }
}

#[test]
fn a_ledger_stores_tiles_not_nodes_and_they_give_the_same_tree() {
    let (_tmp, dir, ledger) = ledger_of_thousands();
    let store = ledger.store().as_ref();
    let leaves = leaves(store);
    let size = leaves.len() as u64;
    assert_eq!(size, 1 + 3000 + 40 + 600);
    assert_eq!(store.scan_side(b"merkle/").count(), 0);
    let tiles = stored_tiles(store);
    // 14 full leaf tiles (the partial one is not stored) and one partial tile of level-8 hashes: ~ events / 256.
    assert_eq!(tiles.len() as u64, size / 256 + 1);
    assert_eq!(tiles, expected_tiles(&leaves));
    assert_eq!(tiles[&tile_key(0, 0)], leaves[..256].concat());
    assert_same_tree(store, &leaves);
    let report = common::assert_verifies(store, &dir);
    // Every leaf hash of a full leaf tile and every level-8 hash was compared with its tile (the partial leaf
    // tile is not stored).
    assert_eq!(report.merkle_nodes_checked, size - size % 256 + size / 256);

    // Reopened, the writer loads its partial tiles and grows them on.
    drop(ledger);
    let ledger = dir.open(&KeySource::Default).unwrap();
    common::append_uses(&ledger, None, 3, 100);
    common::append_uses(&ledger, None, 1, 1);
    let store = ledger.store().as_ref();
    let leaves = self::leaves(store);
    assert_eq!(stored_tiles(store), expected_tiles(&leaves));
    assert_same_tree(store, &leaves);
    common::assert_verifies(store, &dir);
}

fn tile_problem(store: &dyn LogStore, dir: &DataDir, level: u32, index: u64) -> (u64, String) {
    let report = common::verify_report(store, dir);
    let named = format!("tile at tile level {level}, index {index} ");
    let found: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::IndexMismatch && p.detail.contains(&named))
        .collect();
    assert_eq!(found.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    (found[0].seq, found[0].detail.clone())
}

#[test]
fn a_changed_tile_is_named_by_verification() {
    let (_tmp, dir, ledger) = ledger_of_thousands();
    let store = ledger.store().as_ref();
    let key = tile_key(0, 1);
    let mut tile = store
        .get_side(&key)
        .unwrap()
        .expect("the leaf tile is stored");
    assert_eq!(tile.len(), 256 * 32);
    let original = tile.clone();
    tile[5 * 32 + 7] ^= 1;
    store.put_side(&[(key.clone(), tile)]).unwrap();
    let (seq, detail) = tile_problem(store, &dir, 0, 1);
    // Found when the tile completes: leaf 511 is seq 512.
    assert_eq!(seq, 512);
    assert!(detail.contains("differs from the one recomputed from the events"));
    store.put_side(&[(key, original)]).unwrap();
    common::assert_verifies(store, &dir);

    // The partial tile of level-8 hashes at the end of the log is compared too.
    let key = tile_key(1, 0);
    let mut tile = store
        .get_side(&key)
        .unwrap()
        .expect("the level-1 tile is stored");
    assert_eq!(tile.len(), 14 * 32);
    tile[3] ^= 0x80;
    store.put_side(&[(key, tile)]).unwrap();
    let (seq, detail) = tile_problem(store, &dir, 1, 0);
    assert_eq!(seq, ledger.durable_seq());
    assert!(detail.contains("differs from the one recomputed from the events"));
}

#[test]
fn a_removed_tile_is_reported_missing() {
    let (_tmp, dir, ledger) = ledger_of_thousands();
    let store = ledger.store().as_ref();
    let key = tile_key(0, 2);
    assert!(store.get_side(&key).unwrap().is_some(), "tiles are written");
    store.remove_side(&[key]).unwrap();
    let (seq, detail) = tile_problem(store, &dir, 0, 2);
    assert_eq!(seq, 3 * 256);
    assert!(detail.ends_with("is missing"), "{detail}");
    // Proofs still come out right: the subtrees are computed from the records instead.
    assert_same_tree(store, &self::leaves(store));
}

/// Rewrites the store as the layout before tiles left it: one `merkle/` entry per complete subtree from level 4,
/// no tiles. Returns the number of entries.
fn to_layout_before_tiles(store: &dyn LogStore, leaves: &[Hash32]) -> usize {
    let memory = MemoryLeaves(leaves.to_vec());
    let mut nodes = Vec::new();
    for level in 4..64u32 {
        for index in 0..(leaves.len() as u64 >> level) {
            nodes.push((
                node_key(level, index),
                memory.subtree(level, index).unwrap().to_vec(),
            ));
        }
    }
    store.put_side(&nodes).unwrap();
    let tile_keys: Vec<Vec<u8>> = stored_tiles(store).into_keys().collect();
    store.remove_side(&tile_keys).unwrap();
    assert!(stored_tiles(store).is_empty());
    nodes.len()
}

#[test]
fn a_ledger_in_the_layout_before_tiles_verifies_and_migrates() {
    let (_tmp, dir, ledger) = ledger_of_thousands();
    let store = ledger.store().as_ref();
    let leaves = leaves(store);
    let expected = expected_tiles(&leaves);
    let node_count = to_layout_before_tiles(store, &leaves);
    assert_same_tree(store, &leaves);
    let report = common::assert_verifies(store, &dir);
    assert_eq!(report.merkle_nodes_checked, node_count as u64);

    // A writer opening it continues in tiles (from the old entries and the records).
    drop(ledger);
    let ledger = dir.open(&KeySource::Default).unwrap();
    common::append_uses(&ledger, None, 1, 700);
    let store = ledger.store().as_ref();
    let leaves = self::leaves(store);
    assert_same_tree(store, &leaves);
    common::assert_verifies(store, &dir);

    let written = write_all_tiles(store).unwrap();
    assert_eq!(store.scan_side(b"merkle/").count(), 0);
    let tiles = stored_tiles(store);
    assert_eq!(tiles, expected_tiles(&leaves));
    assert_eq!(written, tiles.len() as u64);
    assert_eq!(
        expected
            .into_keys()
            .filter(|k| !tiles.contains_key(k))
            .count(),
        0
    );
    assert_same_tree(store, &leaves);
    let report = common::assert_verifies(store, &dir);
    let size = leaves.len() as u64;
    assert_eq!(report.merkle_nodes_checked, size - size % 256 + size / 256);
}

#[test]
fn an_archived_ledger_in_the_layout_before_tiles_migrates() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = DataDir::new(&data);
    let ledger = dir.init(None).unwrap().0;
    common::append_uses(&ledger, None, 5, 500);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let cut = keyledger::time::LedgerTime::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    common::append_uses(&ledger, None, 1, 300);
    let store = ledger.store().as_ref();
    to_layout_before_tiles(store, &leaves(store));
    drop(ledger);
    let file = tmp.path().join("archive.jsonl").display().to_string();
    let (code, out) = common::run_cli(
        &data,
        &[
            "audit",
            "archive",
            "--before",
            &cut.to_string(),
            "-o",
            &file,
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("archived events 1..=2048"), "{out}");

    let ledger = dir.open(&KeySource::Default).unwrap();
    let store = ledger.store().as_ref();
    common::assert_verifies(store, &dir);
    let written = write_all_tiles(store).unwrap();
    // Leaf tiles from event 2049 on (8 / 256 = 2048), the level-8 hashes over the whole log.
    let tiles = stored_tiles(store);
    assert_eq!(written, tiles.len() as u64);
    let size = ledger.durable_seq();
    assert_eq!(tiles.len() as u64, size / 256 - 8 + 1);
    // Only the old entries below level 8 inside the prefix stay: no leaf tile covers them.
    for (key, _) in store.scan_side(b"merkle/").map(|e| e.unwrap()) {
        let (level, index) = (
            key[7] as u32,
            u64::from_be_bytes(key[8..16].try_into().unwrap()),
        );
        assert!(level < 8 && (index + 1) << level <= 2048, "{key:?}");
    }
    let report = common::assert_verifies(store, &dir);
    assert_eq!(report.archived_through, 2048);
    assert!(report.merkle_nodes_checked >= size - 2048 - size % 256);

    // The migrated ledger grows on in tiles; its proofs verify against its root.
    drop(ledger);
    let ledger = dir.open(&KeySource::Default).unwrap();
    common::append_uses(&ledger, None, 1, 400);
    let store = ledger.store().as_ref();
    common::assert_verifies(store, &dir);
    let size = ledger.durable_seq();
    let root = stored_root(store, size).unwrap();
    let stored = StoredTree { store };
    for index in [2048, 2100, size - 1] {
        let leaf = leaf_hash(&store.get(index + 1).unwrap().unwrap().hash);
        let proof = inclusion_proof(&stored, index, size).unwrap();
        assert!(
            verify_inclusion(index, size, &leaf, &proof, &root),
            "leaf {index}"
        );
    }
}
