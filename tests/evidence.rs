//! The evidence folder (issue 28, case 11): damage to the files around the log is exit 3, a read-only audit writes
//! nothing into what it audits, a server finds a damaged signature at start, `audit verify` names a removed
//! time-index entry and a removed checkpoint, and a checkpoint that cannot be anchored is never silent.

mod common;
#[path = "common/process.rs"]
mod process;

use keyledger::store::{LogStore, SledStore, BLOCK_EVENTS};
use std::path::Path;
use uuid::Uuid;

fn files_under(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn initialised() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, text) = common::run_cli(&data, &["init"]);
    assert_eq!(code, 0, "{text}");
    (tmp, data)
}

#[test]
fn a_damaged_log_conf_or_a_missing_signing_pub_or_ledger_json_is_exit_3() {
    let (_tmp, data) = initialised();
    let conf = data.join("log/conf");
    let genuine = std::fs::read(&conf).unwrap();
    std::fs::write(&conf, b"\xff\xfe not sled's configuration").unwrap();
    for args in [&["key", "list"][..], &["audit", "verify"]] {
        let (code, text) = common::run_cli(&data, args);
        assert_eq!(code, 3, "{args:?}: {text}");
        assert!(text.contains("conf"), "names the file: {text}");
    }
    assert_ne!(
        std::fs::read(&conf).unwrap(),
        genuine,
        "sled did not rewrite it"
    );
    std::fs::write(&conf, &genuine).unwrap();

    let public = data.join("signing.pub");
    let kept = std::fs::read(&public).unwrap();
    std::fs::remove_file(&public).unwrap();
    for args in [&["key", "list"][..], &["audit", "verify"]] {
        let (code, text) = common::run_cli(&data, args);
        assert_eq!(code, 3, "missing signing.pub, {args:?}: {text}");
    }
    std::fs::write(&public, kept).unwrap();

    std::fs::rename(data.join("ledger.json"), data.join("ledger.json.away")).unwrap();
    let (code, text) = common::run_cli(&data, &["audit", "verify"]);
    assert_eq!(code, 3, "missing ledger.json beside a log: {text}");
    std::fs::rename(data.join("ledger.json.away"), data.join("ledger.json")).unwrap();
    let (code, text) = common::run_cli(&data, &["audit", "verify"]);
    assert_eq!(code, 0, "restored, it verifies: {text}");
}

#[test]
fn audit_verify_on_an_emptied_log_refuses_and_writes_nothing_into_it() {
    let (_tmp, data) = initialised();
    let log = data.join("log");
    std::fs::remove_dir_all(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    for args in [&["audit", "verify"][..], &["key", "list"], &["events"]] {
        let (code, text) = common::run_cli(&data, args);
        assert_eq!(code, 3, "{args:?}: {text}");
        assert!(
            files_under(&log).is_empty(),
            "{args:?} wrote {:?}",
            files_under(&log)
        );
    }
}

#[test]
fn serve_finds_a_damaged_signature_below_the_newest_checkpoint_at_start() {
    let (tmp, dir) = common::ledger_with_uses(300, &[Uuid::from_u128(1)]);
    {
        let store = SledStore::open(&dir.db_path()).unwrap();
        let mut record = store.get(150).unwrap().unwrap();
        record.signature[7] ^= 0x01;
        store.tamper_replace_record(&record).unwrap();
    }
    let (code, text) = common::run_cli(dir.root(), &["audit", "verify"]);
    assert_eq!(code, 3, "{text}");
    let addr = format!("127.0.0.1:{}", process::free_port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("--data")
        .arg(dir.root())
        .args(["serve", "--addr", &addr])
        .env_remove("KEYLEDGER_SIGNING_KEY")
        .env_remove("KEYLEDGER_SIGNING_KEY_FILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::blocking::Client::new();
    let mut last = String::new();
    process::wait_until("the start-up check reports the bad signature", || {
        let Ok(response) = client.get(format!("http://{addr}/healthz")).send() else {
            return false;
        };
        let failed = response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE;
        last = response.text().unwrap_or_default();
        failed
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(last.contains("150") && last.contains("signature"), "{last}");
    drop(tmp);
}

#[test]
fn audit_verify_names_a_removed_time_index_entry_and_a_removed_checkpoint() {
    // Batches of 256, as a busy server writes them. The embedded store keeps one time-index entry per sealed block
    // of 1,024 events and one per tail chunk: 13 batches (3,329 events with the genesis) seal blocks 0..=2 and
    // leave the rest in tail chunks, so a middle block's entry can go.
    let (_tmp, dir, ledger) = common::fresh_ledger();
    common::append_uses(&ledger, Some(Uuid::from_u128(1)), 13, 256);
    drop(ledger);
    let store = SledStore::open(&dir.db_path()).unwrap();
    assert_eq!(store.time_index_stride(), BLOCK_EVENTS);
    let (blocks, chunks) = store.unit_counts();
    assert!(
        blocks >= 3 && chunks >= 1,
        "{blocks} blocks, {chunks} tail chunks"
    );
    let entries: Vec<_> = store.time_index().map(|e| e.unwrap()).collect();
    assert_eq!(entries.len(), blocks + chunks, "{entries:?}");
    // A tail chunk carries its time itself: its entry cannot be removed on its own.
    let (time, seq) = *entries.last().unwrap();
    assert!(!store.tamper_remove_time_entry(time, seq).unwrap());
    // Block 1's entry (events 1025..=2048), between blocks 0 and 2.
    let (time, seq) = *entries
        .iter()
        .find(|(_, seq)| *seq == BLOCK_EVENTS + 1)
        .expect("block 1 has an entry");
    assert!(store.tamper_remove_time_entry(time, seq).unwrap());
    assert_eq!(store.time_index().count(), entries.len() - 1);
    let report = common::verify_report(&store, &dir);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.detail.contains("time index has no entry") && p.seq <= seq),
        "{:?}",
        report.problems
    );
    // Put it back by removing every checkpoint instead: the series at multiples of 1,024 is missed.
    drop(store);
    let (_tmp2, dir) = common::ledger_with_uses(2_100, &[Uuid::from_u128(1)]);
    let store = SledStore::open(&dir.db_path()).unwrap();
    let keys: Vec<Vec<u8>> = keyledger::audit::checkpoint::stored_checkpoints(&store)
        .unwrap()
        .into_iter()
        .map(|(size, _)| keyledger::audit::checkpoint::checkpoint_key(size))
        .collect();
    assert!(keys.len() >= 2);
    store.remove_side(&keys).unwrap();
    let report = common::verify_report(&store, &dir);
    for size in [1024, 2048] {
        assert!(
            report.problems.iter().any(|p| p.seq == size
                && p.detail
                    .contains(&format!("checkpoint of {size} events is missing"))),
            "{size}: {:?}",
            report.problems
        );
    }
}

#[test]
fn a_checkpoint_that_cannot_be_anchored_is_a_failed_command_and_a_degraded_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, init) = common::run_cli(&data, &["init"]);
    assert_eq!(code, 0, "{init}");
    let admin = process::admin_key_from(&init);
    let unwritable = tmp.path().join("no-such-dir").join("ledger.anchors");
    std::fs::write(
        data.join("keyledger.toml"),
        format!("[anchor]\nfile = {:?}\n", unwritable.display().to_string()),
    )
    .unwrap();
    let create = [
        "key",
        "create",
        "--name",
        "k",
        "--env",
        "production",
        "--owner",
        "o",
        "--scope",
        "a:read",
    ];
    let (code, text) = common::run_cli(&data, &create);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("could not be anchored"), "{text}");
    assert!(
        text.contains("kl_production_"),
        "the key itself was created and shown: {text}"
    );

    let served = process::Served::start(&data, &[]);
    let client = reqwest::blocking::Client::new();
    let health = |client: &reqwest::blocking::Client| -> serde_json::Value {
        client
            .get(format!("{}/healthz", served.base))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(health(&client)["status"], "ok");
    let checkpoint = client
        .get(format!("{}/v1/audit/checkpoint", served.base))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert!(checkpoint.status().is_success(), "{:?}", checkpoint.text());
    let mut last = serde_json::Value::Null;
    process::wait_until("/healthz reports the failed anchoring", || {
        last = health(&client);
        last["status"] == "degraded"
    });
    assert!(last["anchor_failures"].as_u64() >= Some(1), "{last}");
    let metrics = client
        .get(format!("{}/metrics", served.base))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keyledger_anchor_failures_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}
