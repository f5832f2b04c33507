//! `keyledger monitor`: an independent auditor following a served ledger's checkpoints and tlog-tiles entry
//! bundles with a `ledger:audit` key. It follows a growing ledger across polls and bundles, and finds a fork (two
//! ledgers with the same key and origin whose histories part), a cut (a copy from earlier) and a checkpoint signed
//! by another key, exiting 3 without moving its state; the finding reaches a webhook as a signed alert; a ledger
//! it cannot reach is exit 6. All traffic is on 127.0.0.1.

mod common;
#[path = "common/server.rs"]
mod server;

use keyledger::api::{serve, AppState};
use keyledger::audit::checkpoint::verifier_key;
use keyledger::chain::LedgerSigner;
use keyledger::cli::demo::receiver::Receiver;
use keyledger::datadir::{DataDir, KeySource};
use keyledger::event::{Actor, KeyConfig};
use keyledger::keys::{CreateKey, Requester};
use keyledger::ledger::Ledger;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WEBHOOK_SECRET: &str = "whsec_monitor_test_0123456789";

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn command(url: &str, token: &str, public_key: &str, state: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyledger"));
    command
        .args(["monitor", url, "--public-key", public_key, "--state"])
        .arg(state)
        .args(extra)
        .env_remove("KEYLEDGER_ADDR")
        .env_remove("KEYLEDGER_CACERT")
        .env("KEYLEDGER_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `keyledger monitor` (off the runtime's threads, which serve the ledgers) until it exits, or kills it
/// after a minute.
async fn monitor(url: &str, token: &str, public_key: &str, state: &Path, extra: &[&str]) -> Run {
    let mut command = command(url, token, public_key, state, extra);
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("run keyledger monitor");
        let started = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("output");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn saved(state: &Path) -> Value {
    let text = std::fs::read_to_string(state.join("monitor-state.json")).expect("state file");
    serde_json::from_str(&text).expect("state JSON")
}

fn audit_key() -> KeyConfig {
    KeyConfig {
        name: "monitor".into(),
        owner: "auditors".into(),
        scopes: vec!["ledger:audit".into()],
        environment: "keyledger".into(),
        ..Default::default()
    }
}

/// A ledger served on 127.0.0.1 from a data directory of the test's.
struct Served {
    base: String,
    ledger: Arc<Ledger>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve_dir(dir: &DataDir) -> Served {
    let open = dir.clone();
    let ledger = tokio::task::spawn_blocking(move || open.open(&KeySource::File(open.key_path())))
        .await
        .unwrap()
        .expect("open the ledger");
    let ledger = Arc::new(ledger);
    let config = dir.config().unwrap();
    let state = AppState::new(
        ledger.clone(),
        dir.anchor_public_key().unwrap(),
        dir.identity().unwrap().origin,
    )
    .configured(&config.authz, &config.http, &config.alerts);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Served {
        base,
        ledger,
        stop: Some(stop),
    }
}

/// `batches` batches of 100 key uses tagged by `tag`.
async fn grow(ledger: &Arc<Ledger>, tag: &'static str, batches: usize) {
    let ledger = ledger.clone();
    tokio::task::spawn_blocking(move || {
        for batch in 0..batches {
            let events = (0..100)
                .map(|n| common::used(None, &format!("{tag}-{batch}-{n}")))
                .collect();
            ledger
                .submit_blocking(keyledger::ledger::AppendEvents {
                    actor: Actor::System,
                    request_id: None,
                    events,
                })
                .expect("append");
        }
    })
    .await
    .unwrap();
}

/// Ledger A (in the embedded store) with an audit key and some events, closed, and B, a copy of its data
/// directory: the same signing key, origin and history so far. Returns both directories, the audit key's secret
/// and the signing key's public hex.
fn twin_ledgers(tmp: &Path) -> (DataDir, DataDir, String, String) {
    let a = DataDir::new(tmp.join("a"));
    std::fs::create_dir_all(a.root()).unwrap();
    let (mut ledger, identity) = a.init(None).expect("init");
    let created = ledger
        .submit_blocking(CreateKey::new(Requester::new(Actor::System, None), &audit_key()).unwrap())
        .unwrap();
    common::append_uses(&ledger, None, 3, 100);
    ledger.close();
    drop(ledger);
    let b = DataDir::new(tmp.join("b"));
    common::copy_dir(a.root(), b.root());
    let token = created.secret.expose().to_string();
    (a, b, token, identity.public_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_follows_a_growing_ledger() {
    let s = server::start().await;
    let (_, token) = server::new_key(
        &s,
        serde_json::json!({"name": "monitor", "owner": "auditors", "scopes": ["ledger:audit"],
                           "environment": "keyledger"}),
    )
    .await;
    let public = hex::encode(s.anchor.as_bytes());
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("monitor");
    let mut sizes = Vec::new();
    for round in 0..3 {
        // 300 events a round: each poll crosses bundle boundaries (256 entries each).
        grow(&s.ledger, ["r0", "r1", "r2"][round], 3).await;
        let run = monitor(&s.base, &token, &public, &state, &["--once"]).await;
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(run.stdout.contains("monitor: verified"), "{run:?}");
        assert!(!run.stdout.contains(&token) && !run.stderr.contains(&token));
        let size = saved(&state)["size"].as_u64().unwrap();
        assert!(
            sizes.last().is_none_or(|last| size > last + 300),
            "{sizes:?} then {size}"
        );
        sizes.push(size);
    }
    // The verifier key form names the origin, which must be the checkpoints'.
    let origin = s.dir.identity().unwrap().origin;
    let vkey = verifier_key(&origin, &s.anchor);
    let run = monitor(&s.base, &token, &vkey, &state, &["--once"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(saved(&state)["origin"], origin.as_str());
    let other_name = verifier_key("ledger.example/another", &s.anchor);
    let run = monitor(&s.base, &token, &other_name, &state, &["--once"]).await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stderr.contains("monitor: BAD SIGNATURE"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_catches_a_fork() {
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir, token, public) = tokio::task::spawn_blocking({
        let root = tmp.path().to_path_buf();
        move || twin_ledgers(&root)
    })
    .await
    .unwrap();
    let (a, b) = (serve_dir(&a_dir).await, serve_dir(&b_dir).await);
    // From here on the two histories part; B grows further than A.
    grow(&a.ledger, "a", 1).await;
    grow(&b.ledger, "b", 4).await;
    let state = tmp.path().join("monitor");
    let run = monitor(&a.base, &token, &public, &state, &["--once"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let before = saved(&state);
    let run = monitor(&b.base, &token, &public, &state, &["--once"]).await;
    assert_eq!(run.code, Some(3), "{run:?}");
    let size = before["size"].as_u64().unwrap();
    assert!(run.stderr.contains("monitor: FORK at size"), "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("the {size} entries verified before")),
        "{run:?}"
    );
    assert_eq!(
        saved(&state)["root"],
        before["root"],
        "the state did not move"
    );
    // A keeps verifying from the same state.
    let run = monitor(&a.base, &token, &public, &state, &["--once"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_catches_a_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir, token, public) = tokio::task::spawn_blocking({
        let root = tmp.path().to_path_buf();
        move || twin_ledgers(&root)
    })
    .await
    .unwrap();
    // B is A as it was before these 300 events.
    let (a, b) = (serve_dir(&a_dir).await, serve_dir(&b_dir).await);
    grow(&a.ledger, "a", 3).await;
    let state = tmp.path().join("monitor");
    let run = monitor(&a.base, &token, &public, &state, &["--once"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let verified = saved(&state)["size"].as_u64().unwrap();
    // Without --once the monitor polls until its first finding, and exits with it.
    let run = monitor(&b.base, &token, &public, &state, &["--interval", "1"]).await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stderr.contains("monitor: CUT at size"), "{run:?}");
    assert!(
        run.stderr.contains(&format!("the size {verified}")),
        "{run:?}"
    );
    assert_eq!(saved(&state)["size"].as_u64(), Some(verified));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_signed_by_another_key_is_a_bad_signature_and_reaches_the_webhook_signed() {
    let receiver = Receiver::start(WEBHOOK_SECRET.as_bytes(), 0, Duration::ZERO)
        .await
        .unwrap();
    let s = server::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let secret_file = tmp.path().join("webhook.secret");
    std::fs::write(&secret_file, format!("{WEBHOOK_SECRET}\n")).unwrap();
    let stranger = LedgerSigner::from_seed(&[42; 32]).public_key_hex();
    let state = tmp.path().join("monitor");
    let secret_path = secret_file.to_string_lossy().into_owned();
    let run = monitor(
        &s.base,
        &s.admin,
        &stranger,
        &state,
        &[
            "--once",
            "--webhook",
            &receiver.url,
            "--webhook-secret-file",
            &secret_path,
        ],
    )
    .await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stderr.contains("monitor: BAD SIGNATURE"), "{run:?}");
    assert!(!state.join("monitor-state.json").exists());
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{run:?}");
    let got = &received[0];
    assert!(
        got.signed,
        "the signature verifies with the receiver's secret"
    );
    let alert: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(alert["kind"], "monitor.bad_signature");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["id"], got.alert_id.as_str());
    assert!(alert["summary"]
        .as_str()
        .unwrap()
        .starts_with("monitor: BAD SIGNATURE"));
    let body = String::from_utf8_lossy(&got.body);
    assert!(!body.contains(&s.admin) && !body.contains(WEBHOOK_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_that_cannot_be_reached_is_exit_6_and_not_a_finding() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let tmp = tempfile::tempdir().unwrap();
    let state: PathBuf = tmp.path().join("monitor");
    let public = LedgerSigner::from_seed(&[1; 32]).public_key_hex();
    let run = monitor(&url, "kl_test_unused", &public, &state, &["--once"]).await;
    assert_eq!(run.code, Some(6), "{run:?}");
    assert!(run.stderr.contains("could not reach the ledger"), "{run:?}");
    assert!(!state.join("monitor-state.json").exists());
}
