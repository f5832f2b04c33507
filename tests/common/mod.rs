//! Helpers shared by the integration tests: throwaway ledgers filled with events.
#![allow(dead_code)]

#[allow(clippy::duplicate_mod)]
pub mod pg;
#[allow(clippy::duplicate_mod)]
pub mod skip;
pub mod softhsm;
#[allow(unused_imports)]
pub use skip::skip;

use keyledger::datadir::DataDir;
use keyledger::event::{Actor, EventData, KeyUsed, VerifyCode};
use keyledger::ledger::{AppendEvents, Ledger};
use tempfile::TempDir;
use uuid::Uuid;

/// A `key.used` event for `key`, tagged by its user agent so tests can find it again. A use of no key comes from
/// an address of its own (derived from the tag), so that filler traffic does not trip the probing rule, whose
/// findings would be recorded as events of their own.
pub fn used(key: Option<Uuid>, tag: &str) -> EventData {
    let ip = match key {
        Some(_) => "198.51.100.7".to_string(),
        None => {
            let h = tag
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            format!("10.{}.{}.{}", h >> 16 & 255, h >> 8 & 255, h & 255)
        }
    };
    EventData::KeyUsed(KeyUsed {
        key_id: key,
        prefix: None,
        outcome: if key.is_some() {
            VerifyCode::Valid
        } else {
            VerifyCode::NotFound
        },
        ip: Some(ip),
        user_agent: Some(tag.to_string()),
        scope: Some("read".into()),
        project: None,
        gateway_ip: None,
        overlap: false,
        method: None,
        path: None,
        committed: None,
    })
}

/// Appends `batches` batches of `per_batch` uses of `key` (tagged `b{batch}-{n}`), one command per batch.
pub fn append_uses(ledger: &Ledger, key: Option<Uuid>, batches: usize, per_batch: usize) {
    for batch in 0..batches {
        let events = (0..per_batch)
            .map(|n| used(key, &format!("b{batch}-{n}")))
            .collect();
        ledger
            .submit_blocking(AppendEvents {
                actor: Actor::System,
                request_id: None,
                events,
            })
            .expect("append");
    }
}

/// A fresh ledger in a temporary directory.
pub fn fresh_ledger() -> (TempDir, DataDir, Ledger) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = DataDir::new(tmp.path().join("data"));
    pg::use_test_store(&dir);
    let (ledger, _) = dir.init(None).expect("init");
    (tmp, dir, ledger)
}

/// A closed ledger holding the genesis event plus `count` key uses spread over `keys` keys (one event per batch
/// so that the time index has many entries).
pub fn ledger_with_uses(count: usize, keys: &[Uuid]) -> (TempDir, DataDir) {
    let (tmp, dir, ledger) = fresh_ledger();
    for i in 0..count {
        let key = keys.get(i % keys.len().max(1)).copied();
        ledger
            .submit_blocking(AppendEvents {
                actor: Actor::System,
                request_id: None,
                events: vec![used(key, &format!("use-{i}"))],
            })
            .expect("append");
    }
    drop(ledger);
    (tmp, dir)
}

/// Verifies the whole log against the directory's anchor and returns the report, problems and all.
pub fn verify_report(
    store: &dyn keyledger::store::LogStore,
    dir: &DataDir,
) -> keyledger::audit::VerifyReport {
    let anchor = dir.anchor_public_key().expect("anchor public key");
    keyledger::audit::verify_log(store, anchor, Default::default(), None)
        .expect("verification runs")
}

/// Verifies the whole log against the directory's anchor, fails the test on any problem, and returns the report.
pub fn assert_verifies(
    store: &dyn keyledger::store::LogStore,
    dir: &DataDir,
) -> keyledger::audit::VerifyReport {
    let anchor = dir.anchor_public_key().expect("anchor public key");
    let report = keyledger::audit::verify_log(store, anchor, Default::default(), None)
        .expect("verification runs");
    assert!(report.is_ok(), "{:?}", report.problems);
    report
}

/// A fresh ledger whose time stands still until the test moves the returned clock.
pub fn clocked_ledger() -> (
    TempDir,
    DataDir,
    Ledger,
    std::sync::Arc<keyledger::clock::ManualClock>,
) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let clock = keyledger::clock::ManualClock::starting_at(
        keyledger::time::LedgerTime::parse("2026-11-24T02:10:00Z").expect("a time"),
    );
    let dir = DataDir::new(tmp.path().join("data")).with_clock(clock.clone());
    pg::use_test_store(&dir);
    let (ledger, _) = dir.init(None).expect("init");
    (tmp, dir, ledger, clock)
}

/// A key configuration in `production` owned by `team-a`.
pub fn key_config(name: &str, scopes: &[&str]) -> keyledger::event::KeyConfig {
    keyledger::event::KeyConfig {
        name: name.into(),
        owner: "team-a".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        environment: "production".into(),
        ..Default::default()
    }
}

/// The local operator, as the CLI on the server acts.
pub fn operator() -> keyledger::keys::Requester {
    keyledger::keys::Requester::new(Actor::local_operator(), None)
}

/// A request authenticated with `key` (as the HTTP API makes them).
pub fn as_key(key: Uuid) -> keyledger::keys::Requester {
    keyledger::keys::Requester::new(Actor::Key { key_id: key }, Some("req-test".into()))
}

pub fn create_key(
    ledger: &Ledger,
    config: &keyledger::event::KeyConfig,
) -> keyledger::keys::IssuedKey {
    ledger
        .submit_blocking(keyledger::keys::CreateKey::new(operator(), config).expect("valid config"))
        .expect("created")
}

/// Verifies `secret` from `ip` for `scope` (and `project`), recorded like a gateway's call.
pub fn verify_as(
    ledger: &Ledger,
    secret: &str,
    ip: &str,
    scope: Option<&str>,
    project: Option<&str>,
) -> keyledger::keys::VerifyAnswer {
    ledger
        .submit_blocking(
            keyledger::keys::VerifyKey::new(
                secret,
                Some(ip.parse().expect("an IP")),
                scope.map(str::to_string),
                None,
            )
            .for_project(project.map(str::to_string)),
        )
        .expect("verification recorded")
}

/// The stable code of a refused command.
pub fn refusal_code(error: keyledger::LedgerError) -> &'static str {
    error.code()
}

/// Runs the `keyledger` binary on `data` (without signing-key variables from the environment); returns its exit
/// code and stdout followed by stderr.
pub fn run_cli(data: &std::path::Path, args: &[&str]) -> (i32, String) {
    run_cli_with(data, args, &[])
}

/// [`run_cli`] with `env` set for the command.
pub fn run_cli_with(
    data: &std::path::Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("KEYLEDGER_SIGNING_KEY")
        .env_remove("KEYLEDGER_SIGNING_KEY_FILE")
        .envs(env.iter().copied())
        .output()
        .expect("run keyledger");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Copies a directory tree (a data directory, as a backup would).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Waits until every finding the anomaly rules made is on the record: the writer records each one as
/// `anomaly.detected` after the batch that made it, so a test comparing the log with the projections waits for it.
pub fn wait_for_findings(ledger: &Ledger) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (ledger.anomalies(None, None, None).expect("anomalies").len() as u64)
        < ledger.projections().anomalies.found()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the findings were not recorded"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Appends `count` unknown-key uses from four client addresses per batch of 1,000 (anomaly findings may add events).
/// Variants with ~20k distinct client IPs or 65k uses of one key hung at teardown in the tile tests.
pub fn append_from_four_ips(ledger: &Ledger, count: u64) {
    let mut left = count;
    for batch in 0.. {
        if left == 0 {
            break;
        }
        let size = left.min(1000);
        let events = (0..size)
            .map(|n| used(None, &format!("b{batch}-{}", n % 4)))
            .collect();
        ledger
            .submit_blocking(keyledger::ledger::AppendEvents {
                actor: keyledger::event::Actor::System,
                request_id: None,
                events,
            })
            .unwrap();
        left -= size;
    }
}
