//! `keyledger store salvage`: what survives damage to the embedded log is copied, verified, into a new ledger
//! that a writer can go on with; the report says where it stopped and which checkpoint still matches; the
//! damaged ledger is only read.

mod common;

use keyledger::datadir::{DataDir, KeySource};
use keyledger::store::{LogStore, SledStore};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A closed ledger of the genesis plus 2,500 uses (two sealed blocks, a tail, checkpoints at 1,024 and 2,048).
fn ledger() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let (ledger, _) = DataDir::new(&root).init(None).unwrap();
    common::append_uses(&ledger, None, 25, 100);
    drop(ledger);
    (tmp, root)
}

fn salvage(tmp: &Path, root: &Path) -> (i32, String, PathBuf) {
    let new = tmp.join("salvaged");
    let (code, text) = common::run_cli(
        root,
        &[
            "store",
            "salvage",
            root.to_str().unwrap(),
            "--to",
            new.to_str().unwrap(),
        ],
    );
    (code, text, new)
}

fn head(root: &Path) -> u64 {
    SledStore::open(&root.join("log"))
        .unwrap()
        .head()
        .unwrap()
        .map_or(0, |h| h.seq)
}

/// SHA-256 of every file under `dir`, by path: what salvage must leave as it was.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, [u8; 32])> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(fingerprint(&path));
        } else {
            out.push((
                path.clone(),
                Sha256::digest(std::fs::read(&path).unwrap()).into(),
            ));
        }
    }
    out.sort();
    out
}

/// The salvaged ledger verifies and takes new events.
fn usable(new: &Path, expected_head: u64) {
    assert_eq!(head(new), expected_head);
    let (code, text) = common::run_cli(new, &["audit", "verify"]);
    assert_eq!(code, 0, "{text}");
    let ledger = DataDir::new(new).open(&KeySource::Default).unwrap();
    common::append_uses(&ledger, None, 1, 10);
    drop(ledger);
    let (code, text) = common::run_cli(new, &["audit", "verify"]);
    assert_eq!(code, 0, "after new events: {text}");
}

#[test]
fn an_intact_ledger_is_salvaged_whole() {
    let (tmp, root) = ledger();
    let (code, text, new) = salvage(tmp.path(), &root);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("salvaged events 1..=2501"), "{text}");
    assert!(text.contains("no damage found"), "{text}");
    assert!(text.contains("checkpoint of 2501 events"), "{text}");
    usable(&new, 2501);
}

#[test]
fn a_damaged_block_stops_the_salvage_before_it_and_names_the_lost_checkpoint() {
    let (tmp, root) = ledger();
    SledStore::open(&root.join("log"))
        .unwrap()
        .tamper_flip_block_byte(1, 300)
        .unwrap();
    let before = fingerprint(&root);
    let (code, text, new) = salvage(tmp.path(), &root);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        fingerprint(&root),
        before,
        "salvage wrote into the damaged ledger"
    );
    assert!(text.contains("salvaged events 1..=1024"), "{text}");
    assert!(text.contains("block 1"), "{text}");
    assert!(text.contains("checkpoint of 1024 events"), "{text}");
    assert!(
        text.contains("events 1025..=2501 were in the log and are lost"),
        "{text}"
    );
    usable(&new, 1024);
}

#[test]
fn a_lost_sled_file_leaves_the_sealed_blocks_salvageable_from_the_segments() {
    let (tmp, root) = ledger();
    // sled's file zeroed (a disk that lost it): sled refuses the log or opens it empty.
    let db = root.join("log").join("db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::write(&db, vec![0u8; len as usize]).unwrap();
    let segments = fingerprint(&root.join("log").join("segments"));
    let (code, text) = common::run_cli(&root, &["audit", "verify"]);
    assert_ne!(code, 0, "a zeroed sled file must be refused: {text}");
    // Opening the damaged log must leave the sealed blocks in their segments.
    assert_eq!(fingerprint(&root.join("log").join("segments")), segments);
    let (code, text, new) = salvage(tmp.path(), &root);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("salvaged events 1..=2048"), "{text}");
    assert!(text.contains("sled was not usable"), "{text}");
    assert!(text.contains("signed again"), "{text}");
    usable(&new, 2048);
}

#[test]
fn salvage_refuses_an_existing_target_and_a_directory_without_a_log() {
    let (tmp, root) = ledger();
    std::fs::create_dir_all(tmp.path().join("salvaged")).unwrap();
    let (code, text, _) = salvage(tmp.path(), &root);
    assert_ne!(code, 0);
    assert!(text.contains("exists"), "{text}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, text) = common::run_cli(
        &root,
        &[
            "store",
            "salvage",
            empty.to_str().unwrap(),
            "--to",
            tmp.path().join("x").to_str().unwrap(),
        ],
    );
    assert_ne!(code, 0);
    assert!(text.contains("no log"), "{text}");
}
