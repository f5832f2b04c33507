//! Persisted projection state (issue 13): a serving ledger starts from its signed snapshot and replays only the
//! tail; the events before the snapshot are still checked (in the background, fail-stop); a snapshot that was
//! edited, or built under other anomaly rules, is ignored in favour of a full replay.

mod common;
#[path = "common/snapshots.rs"]
mod snapshots;

use common::ledger_with_uses;
use keyledger::datadir::{DataDir, KeySource};
use keyledger::event::Actor;
use keyledger::keys::{Requester, RevokeKey};
use keyledger::ledger::{replay_log, Ledger, Startup, StartupCheck};
use keyledger::store::{LogStore, SledStore};
use std::time::{Duration, Instant};
use uuid::Uuid;

const BODY: &[u8] = b"snapshot/projections/body";
const HEADER: &[u8] = b"snapshot/projections/header";

fn keys() -> Vec<Uuid> {
    (1..=4u128).map(Uuid::from_u128).collect()
}

fn open_serving(dir: &DataDir) -> Ledger {
    dir.open_with(&KeySource::Default, Startup::Snapshot)
        .expect("opens")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_serving_open_starts_from_the_snapshot_and_equals_a_full_replay() {
    let (_tmp, dir) = ledger_with_uses(300, &keys());
    let ledger = open_serving(&dir);
    let head = ledger.durable_seq();
    assert_eq!(
        ledger.opened_from_snapshot(),
        Some(head),
        "clean shutdown persisted the state"
    );
    let full = replay_log(ledger.store().as_ref(), None, None).unwrap();
    assert_eq!(*ledger.projections(), full.projections);
    wait_for("the background check", || {
        ledger.startup_check() == StartupCheck::Passed
    });
    assert_eq!(ledger.failure(), None);
}

#[test]
fn a_changed_event_before_the_snapshot_stops_the_serving_ledger() {
    let (_tmp, dir) = ledger_with_uses(300, &keys());
    {
        let store = SledStore::open(&dir.db_path()).unwrap();
        let mut record = store.get(10).unwrap().unwrap();
        let at = record.body.windows(3).position(|w| w == b"use").unwrap();
        record.body[at] = b'U';
        store.tamper_replace_record(&record).unwrap();
    }
    let ledger = open_serving(&dir);
    assert!(ledger.opened_from_snapshot().is_some());
    wait_for("the ledger to stop", || ledger.failure().is_some());
    let failure = ledger.failure().unwrap();
    assert!(failure.contains("seq 10"), "{failure}");
    assert!(matches!(ledger.startup_check(), StartupCheck::Failed(_)));
    let refused = ledger.submit_blocking(RevokeKey {
        who: Requester::new(Actor::System, None),
        key_id: Uuid::from_u128(1),
        reason: None,
    });
    assert!(refused.is_err(), "a stopped ledger appends nothing");
    // The offline tools still refuse that log outright.
    drop(ledger);
    assert!(dir.open(&KeySource::Default).is_err());
}

#[test]
fn a_snapshot_edited_without_the_signing_key_is_ignored() {
    let (_tmp, dir, ledger) = common::fresh_ledger();
    let created = common::create_key(&ledger, &common::key_config("victim", &["read"]))
        .key
        .key_id;
    ledger
        .submit_blocking(RevokeKey {
            who: Requester::new(Actor::System, None),
            key_id: created,
            reason: None,
        })
        .unwrap();
    drop(ledger);
    {
        let store = SledStore::open(&dir.db_path()).unwrap();
        let body = store
            .get_side(BODY)
            .unwrap()
            .expect("a snapshot was written");
        // Sections of zstd-compressed MessagePack, the keys' second: the status is the string "revoked";
        // "retired" has the same length, so the forged body stays well-formed and only the signature can tell.
        let mut parts = snapshots::sections(&body);
        assert_eq!(
            parts.len(),
            5,
            "facts, keys, usage, anomaly windows, pending actions"
        );
        let keys = &mut parts[1];
        let at = keys
            .windows(7)
            .position(|w| w == b"revoked")
            .expect("the key's status is in the body");
        keys[at..at + 7].copy_from_slice(b"retired");
        let forged = snapshots::pack_sections(&parts);
        store.put_side(&[(BODY.to_vec(), forged)]).unwrap();
    }
    let ledger = open_serving(&dir);
    assert_eq!(
        ledger.opened_from_snapshot(),
        None,
        "the forged snapshot is not used"
    );
    assert!(
        ledger.snapshot_refused().unwrap().contains("not signed"),
        "{:?}",
        ledger.snapshot_refused()
    );
    let key = ledger.projections().keys.get(&created).cloned().unwrap();
    assert_eq!(key.recorded_status.as_str(), "revoked");
}

#[test]
fn other_anomaly_rules_replay_the_whole_log() {
    let (_tmp, dir) = ledger_with_uses(50, &keys());
    std::fs::write(
        dir.root().join("keyledger.toml"),
        "[anomaly]\ndistinct_ips_max = 3\n",
    )
    .unwrap();
    let ledger = open_serving(&dir);
    assert_eq!(ledger.opened_from_snapshot(), None);
    let full = keyledger::ledger::replay_log_with(
        ledger.store().as_ref(),
        None,
        None,
        dir.config().unwrap().rules(),
    )
    .unwrap();
    assert_eq!(*ledger.projections(), full.projections);
}

#[test]
fn snapshots_are_written_while_serving() {
    let (_tmp, dir) = ledger_with_uses(20, &keys());
    std::fs::write(
        dir.root().join("keyledger.toml"),
        "[snapshots]\ninterval_secs = 1\n",
    )
    .unwrap();
    let ledger = open_serving(&dir);
    let before = ledger.opened_from_snapshot().unwrap();
    common::create_key(&ledger, &common::key_config("later", &["read"]));
    let head = ledger.durable_seq();
    assert!(head > before);
    let store = ledger.store().clone();
    wait_for("a periodic snapshot", || {
        let header = store
            .get_side(b"snapshot/projections/header")
            .unwrap()
            .unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        header["seq"].as_u64() == Some(head)
    });
}

#[test]
fn the_snapshot_is_binary_small_and_round_trips() {
    let (_tmp, dir) = ledger_with_uses(2000, &keys());
    let (header, body) = {
        let store = SledStore::open(&dir.db_path()).unwrap();
        (
            store.get_side(HEADER).unwrap().expect("a header"),
            store.get_side(BODY).unwrap().expect("a body"),
        )
    };
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(header["format"], "keyledger-snapshot/3");
    assert_eq!(
        &body[4..8],
        b"\x28\xb5\x2f\xfd",
        "a zstd frame after its length"
    );
    assert_eq!(snapshots::sections(&body).len(), 5);
    assert!(
        body.len() < 4 * 1024,
        "2,000 uses of 4 keys leave a snapshot of {} bytes: state follows keys, not uses",
        body.len()
    );
    let ledger = open_serving(&dir);
    assert_eq!(ledger.opened_from_snapshot(), Some(ledger.durable_seq()));
    let full = replay_log(ledger.store().as_ref(), None, None).unwrap();
    assert_eq!(*ledger.projections(), full.projections);
}

#[test]
fn a_snapshot_of_the_previous_format_is_refused_with_its_reason_and_replaced() {
    let (_tmp, dir) = ledger_with_uses(100, &keys());
    {
        let store = SledStore::open(&dir.db_path()).unwrap();
        let header = store.get_side(HEADER).unwrap().unwrap();
        let mut header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        header["format"] = "keyledger-snapshot/1".into();
        store
            .put_side(&[(HEADER.to_vec(), serde_json::to_vec(&header).unwrap())])
            .unwrap();
    }
    let ledger = open_serving(&dir);
    assert_eq!(ledger.opened_from_snapshot(), None);
    let why = ledger.snapshot_refused().unwrap().to_string();
    assert!(
        why.contains("keyledger-snapshot/1") && why.contains("replayed"),
        "{why}"
    );
    let full = replay_log(ledger.store().as_ref(), None, None).unwrap();
    assert_eq!(*ledger.projections(), full.projections);
    drop(ledger);
    let reopened = open_serving(&dir);
    assert!(
        reopened.opened_from_snapshot().is_some(),
        "the clean shutdown wrote a snapshot of the new format"
    );
}

#[test]
fn a_snapshot_of_format_2_is_still_read() {
    let (_tmp, dir) = ledger_with_uses(300, &keys());
    {
        let store = SledStore::open(&dir.db_path()).unwrap();
        let body = snapshots::body_of(&store.get_side(BODY).unwrap().unwrap());
        let stored = zstd::bulk::compress(&rmp_serde::to_vec_named(&body).unwrap(), 3).unwrap();
        let header = snapshots::signed_header(&dir, 2, &body, &stored);
        store
            .put_side(&[(HEADER.to_vec(), header), (BODY.to_vec(), stored)])
            .unwrap();
    }
    let ledger = open_serving(&dir);
    assert_eq!(
        ledger.opened_from_snapshot(),
        Some(ledger.durable_seq()),
        "{:?}",
        ledger.snapshot_refused()
    );
    let full = replay_log(ledger.store().as_ref(), None, None).unwrap();
    assert_eq!(*ledger.projections(), full.projections);
}
