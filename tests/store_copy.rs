//! `keyledger store copy` (issue 14): an embedded ledger moved to PostgreSQL and back verifies with the same
//! public key and replays to the same state; a source whose chain is broken is refused, naming the event.

mod common;

use common::{pg, run_cli};
use keyledger::datadir::{DataDir, KeySource};
use keyledger::keys::{Requester, RevokeKey};
use keyledger::store::{LogStore, SledStore};

/// A sled ledger with keys, uses and a revocation, closed.
fn sled_ledger(dir: &DataDir) -> uuid::Uuid {
    let (ledger, _) = dir.init(None).unwrap();
    let key = common::create_key(&ledger, &common::key_config("billing", &["read"]))
        .key
        .key_id;
    common::append_uses(&ledger, Some(key), 5, 500);
    ledger
        .submit_blocking(RevokeKey {
            who: Requester::new(keyledger::event::Actor::System, None),
            key_id: key,
            reason: Some("moved".into()),
        })
        .unwrap();
    key
}

#[test]
fn a_ledger_moves_to_postgres_and_back_and_verifies_with_the_same_key() {
    let Some(cluster) = pg::cluster_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let key = sled_ledger(&dir);
    let before = dir.open(&KeySource::Default).unwrap();
    let projections = before.projections().clone();
    drop(before);

    let url = cluster.fresh_database();
    let (code, out) = run_cli(dir.root(), &["store", "copy", "--to", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the copy verifies with"), "{out}");
    // A second copy into the same (now full) database is refused.
    let (code, out) = run_cli(dir.root(), &["store", "copy", "--to", &url]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("already holds events"), "{out}");

    // Switched to PostgreSQL: the same state, and it keeps working.
    dir.set_store(&url).unwrap();
    let moved = dir.open(&KeySource::Default).unwrap();
    // The same state (the projections carry the analysis rules, not keyledger.toml's store line).
    let replayed = moved.projections().clone();
    assert!(
        replayed == projections,
        "the moved ledger replays to the same state"
    );
    assert!(moved.projections().keys.get(&key).is_some());
    common::create_key(&moved, &common::key_config("after-the-move", &["read"]));
    let head = moved.store().head().unwrap().unwrap();
    drop(moved);
    let (code, out) = run_cli(dir.root(), &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");

    // And back to a new embedded log.
    let back = tmp.path().join("log-copy");
    let (code, out) = run_cli(
        dir.root(),
        &["store", "copy", "--to", back.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    let copy = SledStore::open(&back).unwrap();
    assert_eq!(copy.head().unwrap().unwrap(), head);
    let report = common::assert_verifies(&copy, &dir);
    assert_eq!(report.to_seq, head.seq);
}

#[test]
fn a_broken_chain_is_not_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    sled_ledger(&dir);
    let store = SledStore::open(&dir.db_path()).unwrap();
    let mut record = store.get(700).unwrap().unwrap();
    record.body = String::from_utf8(record.body)
        .unwrap()
        .replace("b1-", "b9-")
        .into_bytes();
    // Event 700 sits in sealed block 0 (events 1..=1024): the block is re-encoded around the changed body.
    assert!(store.unit_counts().0 >= 1, "block 0 is sealed");
    store.tamper_replace_record(&record).unwrap();
    drop(store);
    let target = tmp.path().join("copy");
    let (code, out) = run_cli(
        dir.root(),
        &["store", "copy", "--to", target.to_str().unwrap()],
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("event 700 does not chain"), "{out}");
}
