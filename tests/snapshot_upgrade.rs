//! A ledger archived by a version that wrote JSON snapshots (`keyledger-snapshot/1`) keeps opening: its archived
//! prefix's base state, which no replay can rebuild, is still read (keys and usage as recorded; the anomaly rules'
//! windows of that version start empty), while a serving snapshot of that format is replayed over (tests/snapshot.rs).

mod common;
#[path = "common/snapshots.rs"]
mod snapshots;

use common::run_cli;
use keyledger::datadir::{DataDir, KeySource};
use keyledger::ledger::replay_log;
use keyledger::time::LedgerTime;
use uuid::Uuid;

const HEADER: &[u8] = b"archive/base/header";
const BODY: &[u8] = b"archive/base/body";

/// Rewrites the stored archive base as format 1 would have written it: JSON, signed under the v1 domain.
fn rewrite_as_format_1(dir: &DataDir) {
    let store = dir.open_store().unwrap();
    let stored = store.get_side(BODY).unwrap().expect("an archive base");
    let mut body = snapshots::body_of(&stored);
    body.projections.anomalies = Default::default();
    let mut json = serde_json::to_value(&body).unwrap();
    // Format 1's anomaly state had other fields; reading it ignores them.
    json["projections"]["anomalies"] = serde_json::json!({"found": [], "ids": {}, "keys": {}});
    let bytes = serde_json::to_vec(&json).unwrap();
    let header = snapshots::signed_header(dir, 1, &body, &bytes);
    store
        .put_side(&[(HEADER.to_vec(), header), (BODY.to_vec(), bytes)])
        .unwrap();
}

#[test]
fn an_archive_base_of_the_json_format_still_opens_with_its_keys_and_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = DataDir::new(&data);
    let ledger = dir.init(None).unwrap().0;
    let key = common::create_key(&ledger, &common::key_config("early", &["read"]))
        .key
        .key_id;
    common::append_uses(&ledger, Some(key), 5, 500);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let cut = LedgerTime::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    common::append_uses(&ledger, Some(key), 1, 300);
    let before = replay_log(ledger.store().as_ref(), None, None)
        .unwrap()
        .projections;
    drop(ledger);
    let file = tmp.path().join("archive.jsonl").display().to_string();
    let (code, out) = run_cli(
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

    rewrite_as_format_1(&dir);
    let (code, out) = run_cli(&data, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    let ledger = dir
        .open(&KeySource::Default)
        .expect("the ledger opens from its format-1 base");
    let now = ledger.projections();
    assert_eq!(now.keys, before.keys);
    assert_eq!(now.usage, before.usage);
    assert_eq!(now.usage.get(&key).map(|u| u.total), Some(2_800));
    assert!(now.keys.get(&Uuid::nil()).is_none());
}
