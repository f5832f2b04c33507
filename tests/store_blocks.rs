//! The embedded store's block layout: events sealed into compressed blocks, damage inside a block named, and a
//! ledger written before blocks read, refused for writing and migrated (docs/FORMAT.md "Stored layout").

mod common;

use keyledger::datadir::DataDir;
use keyledger::event::{Actor, EventData};
use keyledger::ledger::AppendEvents;
use keyledger::store::{LogStore, SledStore, BLOCK_EVENTS};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// A closed sled ledger of the genesis plus `uses` key uses in batches of 100, in its own temporary directory.
fn sled_ledger(uses: usize) -> (tempfile::TempDir, DataDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let (ledger, _) = dir.init(None).unwrap();
    let key = Uuid::from_u128(7);
    for batch in 0..uses / 100 {
        // A handful of user agents, as real callers have (each distinct one is a rollup cell of the hour).
        let events = (0..100)
            .map(|n| common::used(Some(key), &format!("client/{}", (batch + n) % 4)))
            .collect();
        ledger
            .submit_blocking(AppendEvents {
                actor: Actor::System,
                request_id: None,
                events,
            })
            .unwrap();
    }
    drop(ledger);
    (tmp, dir)
}

fn verify(dir: &DataDir) -> (i32, String) {
    common::run_cli(dir.root(), &["audit", "verify"])
}

#[test]
fn events_live_in_sealed_blocks_of_1024_with_a_trained_dictionary_and_few_items() {
    let (_tmp, dir) = sled_ledger(5_000);
    let store = SledStore::open(&dir.db_path()).unwrap();
    let head = store.head().unwrap().unwrap().seq;
    let (blocks, chunks) = store.unit_counts();
    assert_eq!(blocks as u64, head / BLOCK_EVENTS, "head {head}");
    // One chunk per batch of 100 since the last seal.
    assert!(
        chunks as u64 <= (head % BLOCK_EVENTS) / 100 + 2,
        "{chunks} tail chunks for {} unsealed events",
        head % BLOCK_EVENTS
    );
    // Blocks, postings and the directory are ~3 items per 1,024 events; side entries (checkpoints, tiles,
    // rollups) add a few more. The first layout held 5-8 items per event.
    let items = store.item_count() as f64 / head as f64;
    assert!(items < 0.05, "{items:.3} sled items per event");
    assert!(
        store.tamper_replace_dictionary(&[]).unwrap(),
        "a dictionary was trained from the bodies"
    );
    drop(store);
    let (code, text) = verify(&dir);
    assert_eq!(code, 3, "an emptied dictionary must be refused: {text}");
}

/// Damages a 2,500-event ledger with `tamper`; `audit verify` must exit 3 naming `what`.
fn refused_after(tamper: impl FnOnce(&SledStore, u64) -> String) {
    let (_tmp, dir) = sled_ledger(2_500);
    assert_eq!(verify(&dir).0, 0);
    let store = SledStore::open(&dir.db_path()).unwrap();
    let head = store.head().unwrap().unwrap().seq;
    let what = tamper(&store, head);
    drop(store);
    let (code, text) = verify(&dir);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains(&what), "{what} in {text}");
}

#[test]
fn a_flipped_byte_inside_a_compressed_block_is_refused_naming_the_block() {
    refused_after(|store, _| {
        store.tamper_flip_block_byte(1, 300).unwrap();
        "block 1".into()
    });
}

#[test]
fn a_swapped_dictionary_is_refused_naming_it() {
    refused_after(|store, _| {
        assert!(store.tamper_replace_dictionary(&[0x42u8; 4096]).unwrap());
        "dictionary".into()
    });
}

#[test]
fn a_block_whose_header_lies_about_its_events_is_refused() {
    refused_after(|store, _| {
        store.tamper_block_first_seq(0, 1).unwrap();
        "block 0".into()
    });
}

#[test]
fn a_posting_pointing_past_the_head_is_refused() {
    refused_after(|store, head| {
        store
            .tamper_key_posting(&Uuid::from_u128(7), head + 10, true)
            .unwrap();
        format!("event {}", head + 10)
    });
}

/// A write: it needs the writer, which a log from before blocks refuses until migrated.
const CREATE_KEY: &[&str] = &[
    "key",
    "create",
    "--name",
    "after",
    "--owner",
    "ops",
    "--env",
    "production",
    "--scope",
    "read",
];

const BEFORE_BLOCKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ledger-before-blocks");

/// A copy of the fixture ledger written by keyledger before blocks (fixtures/README.md).
fn ledger_before_blocks(tmp: &Path) -> PathBuf {
    let root = tmp.join("data");
    common::copy_dir(Path::new(BEFORE_BLOCKS), &root);
    root
}

fn is_legacy(root: &Path) -> bool {
    SledStore::open(&root.join("log"))
        .unwrap()
        .is_legacy_layout()
}

#[test]
fn a_ledger_from_before_blocks_reads_refuses_writes_and_migrates_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let root = ledger_before_blocks(tmp.path());
    assert!(is_legacy(&root));
    let (code, before) = common::run_cli(&root, &["audit", "verify"]);
    assert_eq!(code, 0, "{before}");
    assert!(before.contains("1650 events"), "{before}");
    let (code, text) = common::run_cli(&root, &["events", "--type", "key.created"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = common::run_cli(&root, CREATE_KEY);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("store migrate"), "{text}");

    let (code, text) = common::run_cli(&root, &["store", "migrate"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("rewrote 1650 events"), "{text}");
    assert!(!is_legacy(&root));
    assert!(!root.join("log.v1").exists() && !root.join("log.migrating").exists());
    let (code, after) = common::run_cli(&root, &["audit", "verify"]);
    assert_eq!(code, 0, "{after}");
    assert!(after.contains("1650 events"), "{after}");
    let (code, text) = common::run_cli(&root, CREATE_KEY);
    assert_eq!(code, 0, "{text}");
    let (code, text) = common::run_cli(&root, &["store", "migrate"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("already in the block layout"), "{text}");
}

#[test]
fn a_killed_migration_starts_again_and_one_killed_between_its_renames_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    // Killed while copying: a partial new log beside the intact old one.
    let root = ledger_before_blocks(&tmp.path().join("copying"));
    std::fs::create_dir_all(root.join("log.migrating")).unwrap();
    std::fs::write(root.join("log.migrating/db"), b"half a copy").unwrap();
    let (code, text) = common::run_cli(&root, &["store", "migrate"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(verify(&DataDir::new(&root)).0, 0);

    // Killed between moving the old log aside and moving the new one in.
    let second = ledger_before_blocks(&tmp.path().join("renaming"));
    std::fs::rename(second.join("log"), second.join("log.v1")).unwrap();
    common::copy_dir(&root.join("log"), &second.join("log.migrating"));
    let (code, text) = common::run_cli(&second, &["store", "migrate"]);
    assert_eq!(code, 0, "{text}");
    assert!(!second.join("log.v1").exists());
    let (code, text) = verify(&DataDir::new(&second));
    assert_eq!(code, 0, "{text}");
}

#[test]
fn a_closed_hour_is_packed_into_one_entry_per_dimension_and_still_verifies() {
    let (_tmp, dir, ledger, clock) = common::clocked_ledger();
    let key = Uuid::from_u128(9);
    for _hour in 0..3 {
        let events = (0..300)
            .map(|n| {
                let mut event = common::used(Some(key), "client/1");
                if let EventData::KeyUsed(used) = &mut event {
                    used.ip = Some(format!("203.0.113.{}", n % 250));
                }
                event
            })
            .collect();
        ledger
            .submit_blocking(AppendEvents {
                actor: Actor::System,
                request_id: None,
                events,
            })
            .unwrap();
        clock.advance_secs(3600);
    }
    let store = ledger.store();
    // Two closed hours × four dimensions; the open hour's cells live in the writer's memory, not in the store.
    assert_eq!(store.scan_side(b"rollup/p/").count(), 8);
    assert_eq!(store.scan_side(b"rollup/h/").count(), 0);
    common::assert_verifies(store.as_ref(), &dir);
    // The second hour's packed IPs put in the first hour's place are caught: the first-use times differ.
    let packed: Vec<_> = store.scan_side(b"rollup/p/").map(|e| e.unwrap()).collect();
    let by_ip: Vec<_> = packed.iter().filter(|(k, _)| k.ends_with(b"i")).collect();
    store
        .put_side(&[(by_ip[0].0.clone(), by_ip[1].1.clone())])
        .unwrap();
    let report = common::verify_report(store.as_ref(), &dir);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.detail.contains("usage rollup") && p.detail.contains("by ip")),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_log_cut_inside_a_sealed_block_takes_appends_after_the_cut() {
    let (_tmp, dir) = sled_ledger(2_100);
    let store = SledStore::open(&dir.db_path()).unwrap();
    let kept = store.get(1_400).unwrap().unwrap();
    store.tamper_cut_after(1_500).unwrap();
    assert_eq!(store.head().unwrap().unwrap().seq, 1_500);
    let mut next = store.get(1_500).unwrap().unwrap();
    next.seq = 1_501;
    store
        .append(&keyledger::store::AppendBatch {
            records: vec![next.clone()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(store.get(1_501).unwrap(), Some(next));
    assert_eq!(store.get(1_400).unwrap(), Some(kept));
    assert_eq!(store.scan(1, u64::MAX).count(), 1_501);
}
