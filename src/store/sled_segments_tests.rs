//! Unit tests of blocks in segment files: a log of layout 2 (blocks inline in sled) read and continued, and a
//! segment cut or lost under a log that committed to it.
use super::*;
use crate::store::sled_keys::{LAYOUT, LAYOUT_BLOCKS, LAYOUT_CURRENT};
use crate::store::sled_test_records::append;
use crate::store::{LogStore, SledStore};

fn all_seqs(store: &SledStore) -> Vec<u64> {
    store.scan(1, u64::MAX).map(|r| r.unwrap().seq).collect()
}

/// Rewrites the log as keyledger's layout 2 wrote it: block and posting bytes inline in sled, no segments.
fn make_layout_2(dir: &std::path::Path) {
    let store = SledStore::open(dir).unwrap();
    for item in store.blocks.iter() {
        let (key, value) = item.unwrap();
        if Location::decode(&value).is_some() {
            let bytes = store.resolve(&value, "test").unwrap().into_owned();
            store.blocks.insert(key, bytes).unwrap();
        }
    }
    store.blocks.remove(SEGMENT_END).unwrap();
    store.tree.insert(LAYOUT, &[LAYOUT_BLOCKS]).unwrap();
    store.flush_all().unwrap();
    drop(store);
    std::fs::remove_dir_all(dir.join("segments")).unwrap();
}

#[test]
fn a_layout_2_log_reads_and_goes_on_with_new_blocks_in_segments() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(tmp.path()).unwrap();
        append(&store, 1, 2500);
    }
    make_layout_2(tmp.path());
    let store = SledStore::open(tmp.path()).unwrap();
    assert_eq!(
        store.tree.get(LAYOUT).unwrap().unwrap().as_ref(),
        [LAYOUT_CURRENT]
    );
    assert_eq!(all_seqs(&store), (1..=2500).collect::<Vec<_>>());
    append(&store, 2501, 1000);
    assert_eq!(all_seqs(&store), (1..=3500).collect::<Vec<_>>());
    // Blocks 0 and 1 stay inline, block 2 went to a segment; the key index reads across both.
    let inline = (0..3u64)
        .map(|b| {
            let value = store.blocks.get(seq_key(BLOCK, b)).unwrap().unwrap();
            Location::decode(&value).is_none()
        })
        .collect::<Vec<_>>();
    assert_eq!(inline, [true, true, false]);
    let key = uuid::Uuid::from_u128(1);
    let seqs: Vec<u64> = store
        .key_seqs(key, 2040, 2060)
        .map(|s| s.unwrap())
        .collect();
    assert_eq!(
        seqs,
        (2040..2060).filter(|s| s % 3 == 1).collect::<Vec<_>>()
    );
}

#[test]
fn a_segment_shorter_than_the_log_committed_or_missing_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(tmp.path()).unwrap();
        append(&store, 1, 2100);
    }
    let segment = tmp.path().join("segments").join("00000001.seg");
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - 1).unwrap();
    drop(file);
    let error = SledStore::open(tmp.path()).err().unwrap().to_string();
    assert!(error.contains("the segment was cut"), "{error}");
    std::fs::remove_file(&segment).unwrap();
    let error = SledStore::open(tmp.path()).err().unwrap().to_string();
    assert!(error.contains("is missing"), "{error}");
}
