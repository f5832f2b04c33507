//! One storage conformance suite over every backend (issue 14): sled always, PostgreSQL when a cluster can be
//! started here (Debian's postgresql package) or is named by KEYLEDGER_TEST_PG. Atomic batches, ordering, every
//! index, side entries, reopen, a second writer refused, out-of-order batches refused, archival pruning; and the
//! whole-index listings and side scans over more rows than a PostgreSQL page (5,000).

#[path = "common/pg.rs"]
mod pg;

use keyledger::chain::SignerId;
use keyledger::store::{AppendBatch, LogStore, PgStore, SledStore, StoreError, StoredRecord};
use keyledger::time::LedgerTime;
use std::sync::Arc;
use uuid::Uuid;

/// Opens the backend's store at the same place each time (a reopen sees what was written before).
type Opener = Box<dyn Fn() -> Result<Arc<dyn LogStore>, StoreError>>;

fn record(seq: u64) -> StoredRecord {
    StoredRecord {
        seq,
        time: LedgerTime::from_micros(1_000_000 + seq as i64 * 10),
        hash: [seq as u8; 32],
        signature: [7; 64],
        signer: SignerId([1; 8]),
        body: format!("{{\"seq\":{seq}}}").into_bytes(),
    }
}

fn key(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

/// A batch of events `from..=to`: key `n % 3` per event, every 4th a lifecycle event, an attribute per event, a
/// sparse time index and a side entry.
fn batch(from: u64, to: u64) -> AppendBatch {
    let records: Vec<_> = (from..=to).map(record).collect();
    AppendBatch {
        key_index: (from..=to).map(|s| (key((s % 3) as u8), s)).collect(),
        time_index: records
            .iter()
            .step_by(64)
            .map(|r| (r.time, r.seq))
            .collect(),
        lifecycle_index: (from..=to).filter(|s| s % 4 == 0).collect(),
        attribute_index: (from..=to).map(|s| ([(s % 2) as u8; 16], s)).collect(),
        side: vec![(
            format!("test/batch/{to}").into_bytes(),
            to.to_be_bytes().to_vec(),
        )],
        records,
        ..Default::default()
    }
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

fn collect<T>(iter: keyledger::store::StoreIter<'_, T>) -> Vec<T> {
    iter.map(|item| item.expect("readable")).collect()
}

fn conformance(name: &str, open: Opener) {
    let store = open().expect("open");
    // Empty.
    assert!(store.head().unwrap().is_none(), "{name}");
    assert!(store.last_record().unwrap().is_none());
    assert_eq!(store.scan(1, 100).count(), 0);
    assert_eq!(
        store
            .first_seq_at_or_after(LedgerTime::from_micros(0))
            .unwrap(),
        1
    );
    // A second writer is refused while the first holds the store.
    assert!(
        matches!(open(), Err(StoreError::InUse(_))),
        "{name}: second open"
    );

    store.append(&batch(1, 150)).unwrap();
    store.append(&batch(151, 300)).unwrap();
    // Out of order (a gap, a repeat): refused, and nothing of the batch is written.
    for bad in [batch(302, 310), batch(300, 310), batch(1, 5)] {
        let refused = store.append(&bad);
        assert!(
            matches!(refused, Err(StoreError::OutOfOrder { expected: 301, .. })),
            "{name}: {refused:?}"
        );
    }
    assert!(
        store.get_side(b"test/batch/310").unwrap().is_none(),
        "{name}: a refused batch wrote nothing"
    );
    assert!(store.get(302).unwrap().is_none());

    // Records, head, scans.
    let head = store.head().unwrap().unwrap();
    assert_eq!(
        (head.seq, head.hash, head.time),
        (300, record(300).hash, record(300).time)
    );
    assert_eq!(store.last_record().unwrap().unwrap(), record(300));
    assert_eq!(store.get(17).unwrap().unwrap(), record(17));
    assert!(store.get(301).unwrap().is_none() && store.get(0).unwrap().is_none());
    let scanned: Vec<u64> = collect(store.scan(140, 160))
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(scanned, (140..160).collect::<Vec<_>>());
    assert_eq!(
        collect(store.scan(1, u64::MAX)).len(),
        300,
        "{name}: a scan crosses pages"
    );
    assert_eq!(store.scan(50, 50).count(), 0);
    // Time seeks.
    assert_eq!(store.first_seq_at_or_after(record(77).time).unwrap(), 77);
    assert_eq!(
        store
            .first_seq_at_or_after(record(77).time.plus_micros(1))
            .unwrap(),
        78
    );
    assert_eq!(
        store
            .first_seq_at_or_after(LedgerTime::from_micros(i64::MAX))
            .unwrap(),
        301
    );
    // Indexes.
    let by_key: Vec<u64> = collect(store.key_seqs(key(1), 1, 20));
    assert_eq!(by_key, vec![1, 4, 7, 10, 13, 16, 19]);
    let newest_first: Vec<u64> = collect(store.key_seqs_rev(key(1), 1, 301))
        .into_iter()
        .take(3)
        .collect();
    assert_eq!(newest_first, vec![298, 295, 292]);
    assert_eq!(collect(store.key_seqs(key(2), 1, 301)).len(), 100);
    assert_eq!(collect(store.lifecycle_seqs(1, 13)), vec![4, 8, 12]);
    assert_eq!(
        collect(store.attribute_seqs([1; 16], 10, 16)),
        vec![11, 13, 15]
    );
    // Whole-index listings come in no particular order, but each entry exactly once.
    let mut key_index = collect(store.key_index());
    key_index.sort();
    assert_eq!(key_index.len(), 300);
    assert!(
        key_index.windows(2).all(|w| w[0] < w[1]),
        "{name}: key index entries are distinct"
    );
    let mut attributes = collect(store.attribute_index());
    attributes.sort();
    assert_eq!(attributes.len(), 300);
    assert!(attributes.windows(2).all(|w| w[0] < w[1]));
    let times = collect(store.time_index());
    assert!(!times.is_empty() && times.windows(2).all(|w| w[0] < w[1]));

    // Side entries: in batches, alone, by prefix (with a 0xFF byte in the prefix), removal.
    assert_eq!(
        store.get_side(b"test/batch/300").unwrap().unwrap(),
        300u64.to_be_bytes()
    );
    let odd_prefix = b"test/\xff".to_vec();
    store
        .put_side(&[
            ([odd_prefix.clone(), b"a".to_vec()].concat(), b"1".to_vec()),
            ([odd_prefix.clone(), b"b".to_vec()].concat(), b"2".to_vec()),
            (b"test/\xff\xff".to_vec(), b"3".to_vec()),
        ])
        .unwrap();
    let under: Vec<Vec<u8>> = collect(store.scan_side(&odd_prefix))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(under.len(), 3, "{name}: {under:?}");
    assert_eq!(collect(store.scan_side(b"test/batch/")).len(), 2);
    store.remove_side(&[b"test/\xff\xff".to_vec()]).unwrap();
    assert_eq!(collect(store.scan_side(&odd_prefix)).len(), 2);
    // The same key twice in one batch: the later value wins; a removal and an insert of one key: the insert wins.
    store
        .append(&AppendBatch {
            side: vec![
                (b"test/twice".to_vec(), b"1".to_vec()),
                (b"test/twice".to_vec(), b"2".to_vec()),
            ],
            side_removals: vec![b"test/twice".to_vec()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(store.get_side(b"test/twice").unwrap().unwrap(), b"2");
    assert!(store.size_on_disk().unwrap() > 0);

    // Reopen: everything is still there, and the next batch must continue the head.
    drop(store);
    let store = open().expect("reopen");
    assert_eq!(
        store.head().unwrap().unwrap().seq,
        300,
        "{name}: reopened head"
    );
    assert_eq!(store.get(300).unwrap().unwrap(), record(300));
    assert!(matches!(
        store.append(&batch(5, 6)),
        Err(StoreError::OutOfOrder { .. })
    ));
    store.append(&batch(301, 320)).unwrap();

    // Archival pruning keeps the listed seqs and removes every index entry up to the cut.
    let removed = store.prune_archived(100, &[1, 50]).unwrap();
    assert_eq!(removed, 98, "{name}");
    assert!(store.get(1).unwrap().is_some() && store.get(50).unwrap().is_some());
    assert!(store.get(2).unwrap().is_none() && store.get(101).unwrap().is_some());
    assert!(collect(store.key_seqs(key(1), 1, 101)).is_empty());
    assert_eq!(collect(store.key_index()).len(), 220);
    assert_eq!(
        store.prune_archived(100, &[1, 50]).unwrap(),
        0,
        "{name}: idempotent"
    );
}

/// More rows than one PostgreSQL page in every whole-index listing and side scan, with page boundaries inside
/// one key, one time and one digest: every entry comes once; side scans by key, and the whole-index listings in
/// their index order where the backend gives one (`ordered`: PostgreSQL's ORDER BY; sled's come unordered, and
/// its time index is its own).
fn long_listings(name: &str, store: &dyn LogStore, ordered: bool) {
    const EVENTS: u64 = 12_001;
    let records: Vec<_> = (1..=EVENTS).map(record).collect();
    let key_of = |s: u64| key((s % 7) as u8);
    // Three seqs share each time, so that the seq breaks ties across a page boundary.
    let time_of = |s: u64| LedgerTime::from_micros(1_000_000 + (s / 3) as i64);
    let digest_of = |s: u64| [(s % 5) as u8; 16];
    let side_key = |s: u64| format!("many/{s:06}").into_bytes();
    fn in_order<T: Ord>(items: Vec<T>, ordered: bool) -> Vec<T> {
        if ordered {
            items
        } else {
            sorted(items)
        }
    }
    store
        .append(&AppendBatch {
            key_index: (1..=EVENTS).map(|s| (key_of(s), s)).collect(),
            time_index: (1..=EVENTS).map(|s| (time_of(s), s)).collect(),
            attribute_index: (1..=EVENTS).map(|s| (digest_of(s), s)).collect(),
            side: (1..=EVENTS)
                .map(|s| (side_key(s), s.to_be_bytes().to_vec()))
                .collect(),
            records,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        in_order(collect(store.key_index()), ordered),
        sorted((1..=EVENTS).map(|s| (key_of(s), s)).collect()),
        "{name}: key index"
    );
    let times = collect(store.time_index());
    if ordered {
        assert_eq!(
            times,
            (1..=EVENTS).map(|s| (time_of(s), s)).collect::<Vec<_>>(),
            "{name}: time index"
        );
    } else {
        // sled derives its time index from its blocks, whatever the batch lists.
        assert!(!times.is_empty() && times.windows(2).all(|w| w[0] < w[1]));
    }
    assert_eq!(
        in_order(collect(store.attribute_index()), ordered),
        sorted((1..=EVENTS).map(|s| (digest_of(s), s)).collect()),
        "{name}: attribute index"
    );
    let side: Vec<(Vec<u8>, Vec<u8>)> = (1..=EVENTS)
        .map(|s| (side_key(s), s.to_be_bytes().to_vec()))
        .collect();
    assert_eq!(
        collect(store.scan_side(b"many/")),
        side,
        "{name}: side scan"
    );
    // From a key inside the range (inclusive), and from one between two keys.
    assert_eq!(
        collect(store.scan_side_from(b"many/", &side_key(6_000))),
        side[5_999..].to_vec(),
        "{name}: side scan from a key"
    );
    assert_eq!(
        collect(store.scan_side_from(b"many/", b"many/006000x")),
        side[6_000..].to_vec(),
        "{name}: side scan from between two keys"
    );
    // A prefix with no successor (all 0xFF bytes) pages as well.
    let top: Vec<(Vec<u8>, Vec<u8>)> = (0..EVENTS)
        .map(|s| {
            (
                [b"\xff".to_vec(), s.to_be_bytes().to_vec()].concat(),
                vec![1],
            )
        })
        .collect();
    store.put_side(&top).unwrap();
    assert_eq!(
        collect(store.scan_side(b"\xff")),
        top,
        "{name}: 0xFF prefix"
    );
}

#[test]
fn sled_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    conformance(
        "sled",
        Box::new(move || Ok(Arc::new(SledStore::open(&path)?) as Arc<dyn LogStore>)),
    );
    let other = tempfile::tempdir().unwrap();
    long_listings(
        "sled",
        &SledStore::open(&other.path().join("log")).unwrap(),
        false,
    );
}

#[test]
fn postgres_store_conforms() {
    let Some(cluster) = pg::cluster_or_skip() else {
        return;
    };
    let url = cluster.fresh_database();
    conformance(
        "postgres",
        Box::new(move || Ok(Arc::new(PgStore::open(&url)?) as Arc<dyn LogStore>)),
    );
    long_listings(
        "postgres",
        &PgStore::open(&cluster.fresh_database()).unwrap(),
        true,
    );
}
