//! The writer's witnesses (issue 29): each checkpoint goes to the `[[witnesses]]` of keyledger.toml, their
//! cosignatures are kept beside it and served (`/v1/tlog/checkpoint`, `/v1/audit/checkpoint`, exports); a forked
//! ledger (same key and origin, another history) is refused by the witness and reported by its writer (metrics and a
//! `ledger.witness_conflict` alert); `audit verify --witnessed` catches a cut ledger with no anchor kept; a quorum
//! not met is refused, by `audit verify --witnessed` and by `verify-export --witness-key … --quorum`.

#[path = "common/alerts.rs"]
mod alerting;
mod common;
#[path = "common/server.rs"]
mod server;

use keyledger::audit::checkpoint::Checkpoint;
use keyledger::audit::cosignature::{verify_cosignature, NamedKey, COSIGNATURE_V1, NOTE_ED25519};
use keyledger::audit::cosigned::cosigned_notes;
use keyledger::datadir::{DataDir, KeySource};
use keyledger::ledger::Ledger;
use keyledger::witness::state::StateDir;
use keyledger::witness::Witness;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WITNESS: &str = "witness.example/w1";

/// A witness's key and the loopback port it will answer on; it starts serving once it knows the log's key.
struct PlannedWitness {
    state: PathBuf,
    listener: tokio::net::TcpListener,
    url: String,
    vkey: String,
}

async fn plan_witness(dir: &Path, name: &str) -> PlannedWitness {
    let state = dir.join(name.replace('/', "_"));
    StateDir::new(&state).init(name).unwrap();
    let key = StateDir::new(&state).key().unwrap();
    let vkey = NamedKey::new(name, COSIGNATURE_V1, key.verifying_key()).to_vkey();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    PlannedWitness {
        state,
        listener,
        url,
        vkey,
    }
}

impl PlannedWitness {
    fn toml(&self) -> String {
        format!(
            "[[witnesses]]\nurl = \"{}\"\nkey = \"{}\"\n",
            self.url, self.vkey
        )
    }

    /// Serves `POST /add-checkpoint` for the log of `dir`.
    fn serve(self, dir: &DataDir) -> Arc<Witness> {
        let log = NamedKey::new(
            &dir.identity().unwrap().origin,
            NOTE_ED25519,
            dir.anchor_public_key().unwrap(),
        );
        let witness = Arc::new(Witness::open(StateDir::new(&self.state), vec![log]).unwrap());
        let app = keyledger::witness::router(witness.clone());
        tokio::spawn(async move { axum::serve(self.listener, app).await });
        witness
    }
}

fn cosigner(vkey: &str) -> NamedKey {
    NamedKey::parse_vkey(vkey, COSIGNATURE_V1).unwrap()
}

/// Waits (bounded) until the store keeps a note of `size` events cosigned by `witness`.
async fn wait_cosigned(ledger: &Ledger, size: u64, witness: &NamedKey) -> String {
    let started = Instant::now();
    loop {
        let notes = cosigned_notes(ledger.store().as_ref()).unwrap();
        if let Some((_, note)) = notes.iter().find(|(s, _)| *s == size) {
            let (_, body, lines) = Checkpoint::parse_note(note).unwrap();
            if verify_cosignature(witness, &body, lines).unwrap().is_some() {
                return note.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no cosignature of size {size} arrived: {notes:?}; {:?}",
            ledger.metrics().witness_counters()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Appends `count` unknown-key uses tagged `tag` and signs a checkpoint over them; returns its size.
async fn grow(ledger: &Ledger, count: usize, tag: &str) -> u64 {
    let events = (0..count)
        .map(|n| common::used(None, &format!("{tag}-{}", n % 4)))
        .collect();
    ledger
        .submit(keyledger::ledger::AppendEvents {
            actor: keyledger::event::Actor::System,
            request_id: None,
            events,
        })
        .await
        .unwrap();
    ledger.checkpoint().await.unwrap().0.size
}

fn open(dir: &DataDir) -> Ledger {
    dir.open(&KeySource::Default).unwrap()
}

/// A data directory with `toml` as its keyledger.toml, initialised and closed.
fn init(path: PathBuf, toml: &str) -> DataDir {
    let dir = DataDir::new(path);
    std::fs::create_dir_all(dir.root()).unwrap();
    std::fs::write(dir.config_path(), toml).unwrap();
    drop(dir.init(None).unwrap());
    dir
}

fn cli(dir: &DataDir, args: &[&str]) -> (i32, String) {
    common::run_cli(dir.root(), args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_cosigned_kept_and_served_with_their_cosignatures() {
    let tmp = tempfile::tempdir().unwrap();
    let planned = plan_witness(tmp.path(), WITNESS).await;
    let vkey = planned.vkey.clone();
    let s = server::start_with_config(&planned.toml()).await;
    let witness = planned.serve(&s.dir);
    let size = grow(&s.ledger, 300, "a").await;
    let note = wait_cosigned(&s.ledger, size, &cosigner(&vkey)).await;
    assert_eq!(
        witness
            .cosigned(&s.dir.identity().unwrap().origin)
            .unwrap()
            .size,
        size
    );

    let client = server::client();
    let served = client
        .get(format!("{}/v1/tlog/checkpoint", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let served = served.text().await.unwrap();
    assert_eq!(served, note, "the tlog checkpoint is the witnessed one");
    let (checkpoint, body, lines) = Checkpoint::parse_note(&served).unwrap();
    assert_eq!(checkpoint.size, size);
    assert!(verify_cosignature(&cosigner(&vkey), &body, lines)
        .unwrap()
        .is_some());
    Checkpoint::verify_note(&served, &s.anchor).unwrap();

    let (status, json) = server::call(
        &client,
        reqwest::Method::GET,
        format!("{}/v1/audit/checkpoint", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["witnessed"]["size"], size);
    assert_eq!(json["witnessed"]["cosigners"], serde_json::json!([WITNESS]));

    let metrics = client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "keyledger_witness_cosigned_size{{witness=\"{WITNESS}\"}} {size}"
        )),
        "{metrics}"
    );

    // An export against the witnessed checkpoint carries the cosignature; verify-export checks the quorum.
    let export = client
        .get(format!("{}/v1/audit/export?witnessed=true", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let path = tmp.path().join("witnessed.jsonl");
    std::fs::write(&path, export.bytes().await.unwrap()).unwrap();
    let public = hex::encode(s.anchor.as_bytes());
    let other = plan_witness(tmp.path(), "witness.example/other").await;
    let path_arg = path.to_str().unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify-export", path_arg, "--public-key", &public];
        args.extend_from_slice(extra);
        common::run_cli(tmp.path(), &args)
    };
    let (code, out) = verify(&["--witness-key", &vkey]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("witnessed, cosigned by witness.example/w1"),
        "{out}"
    );
    let (code, out) = verify(&["--witness-key", &vkey, "--witness-key", &other.vkey]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("1 of the 2 cosignatures"), "{out}");
    let (code, out) = verify(&[
        "--witness-key",
        &vkey,
        "--witness-key",
        &other.vkey,
        "--quorum",
        "1",
    ]);
    assert_eq!(code, 0, "{out}");
    // An export against a fresh (unwitnessed) checkpoint is refused with a witness key.
    let fresh = client
        .get(format!("{}/v1/audit/export", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(&path, fresh).unwrap();
    let (code, out) = verify(&["--witness-key", &other.vkey]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not witnessed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_ledger_is_refused_by_the_witness_and_reported_by_its_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = keyledger::cli::demo::receiver::Receiver::start(
        alerting::SECRET.as_bytes(),
        0,
        Duration::ZERO,
    )
    .await
    .unwrap();
    let planned = plan_witness(tmp.path(), WITNESS).await;
    let vkey = planned.vkey.clone();
    let sinks = alerting::sinks_toml(tmp.path(), &[("ops", &receiver.url, "")]);
    let toml = format!("{}{sinks}", planned.toml());
    let a = tokio::task::block_in_place(|| init(tmp.path().join("a"), &toml));
    // The same key and origin, another history from here on.
    common::copy_dir(a.root(), &tmp.path().join("b"));
    let b = DataDir::new(tmp.path().join("b"));
    let witness = planned.serve(&a);
    let origin = a.identity().unwrap().origin;

    let ledger_a = tokio::task::block_in_place(|| open(&a));
    let size_a = grow(&ledger_a, 40, "a").await;
    wait_cosigned(&ledger_a, size_a, &cosigner(&vkey)).await;
    tokio::task::block_in_place(|| drop(ledger_a));

    let ledger_b = Arc::new(tokio::task::block_in_place(|| open(&b)));
    let config = b.config().unwrap();
    let _outbox =
        keyledger::alerts::outbox::Outbox::start(ledger_b.clone(), &config.alerts, origin.clone())
            .unwrap();
    grow(&ledger_b, 70, "b").await;
    let started = Instant::now();
    let counters = loop {
        let counters = ledger_b.metrics().witness_counters();
        if counters.iter().any(|(_, c)| c.conflicts > 0) {
            break counters;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{counters:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (name, counters) = &counters[0];
    assert_eq!(name, WITNESS);
    assert_eq!(counters.conflicts, 1);
    assert_eq!(counters.cosignatures, 0);
    let reason = counters.conflict.clone().unwrap();
    assert!(reason.contains("consistency proof"), "{reason}");
    // The witness kept ledger A's view; nothing of B's history was cosigned.
    assert_eq!(witness.cosigned(&origin).unwrap().size, size_a);
    assert!(cosigned_notes(ledger_b.store().as_ref())
        .unwrap()
        .is_empty());
    alerting::wait_for(&receiver, "the witness conflict alert", |received| {
        alerting::alert_pairs(received)
            .iter()
            .any(|(kind, _)| kind == "ledger.witness_conflict")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_ledger_is_caught_by_audit_verify_witnessed_without_an_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let planned = plan_witness(tmp.path(), WITNESS).await;
    let vkey = planned.vkey.clone();
    let a = tokio::task::block_in_place(|| init(tmp.path().join("a"), &planned.toml()));
    let _witness = planned.serve(&a);
    let ledger = tokio::task::block_in_place(|| open(&a));
    let early = grow(&ledger, 20, "early").await;
    wait_cosigned(&ledger, early, &cosigner(&vkey)).await;
    tokio::task::block_in_place(|| drop(ledger));
    // A backup from here, restored later, is the ledger cut back to it.
    common::copy_dir(a.root(), &tmp.path().join("cut"));
    let cut = DataDir::new(tmp.path().join("cut"));
    let ledger = tokio::task::block_in_place(|| open(&a));
    let size = grow(&ledger, 50, "late").await;
    wait_cosigned(&ledger, size, &cosigner(&vkey)).await;
    tokio::task::block_in_place(|| drop(ledger));

    // The cut copy verifies on its own (no anchor kept); the witness shows it is behind what it cosigned.
    let (code, out) = tokio::task::block_in_place(|| cli(&cut, &["audit", "verify"]));
    assert_eq!(code, 0, "{out}");
    let (code, out) =
        tokio::task::block_in_place(|| cli(&cut, &["audit", "verify", "--witnessed"]));
    assert_eq!(code, 3, "{out}");
    // At least the size it was seen cosigning (a finding recorded at close may have grown it since).
    let cosigned: u64 = out
        .split("cosigned a tree of ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(cosigned >= size, "{out}");
    assert!(out.contains("cut or rolled back"), "{out}");
    let (code, out) = tokio::task::block_in_place(|| cli(&a, &["audit", "verify", "--witnessed"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 of 1 witnesses cosigned"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_quorum_not_met_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let up = plan_witness(tmp.path(), WITNESS).await;
    let down = plan_witness(tmp.path(), "witness.example/down").await;
    let toml = format!(
        "{}{}[witness_policy]\nquorum = 2\ntimeout_secs = 2\n",
        up.toml(),
        down.toml()
    );
    let vkey = up.vkey.clone();
    let a = tokio::task::block_in_place(|| init(tmp.path().join("a"), &toml));
    let _witness = up.serve(&a);
    // The second witness never answers: its port is closed.
    drop(down.listener);
    let ledger = tokio::task::block_in_place(|| open(&a));
    let size = grow(&ledger, 10, "q").await;
    wait_cosigned(&ledger, size, &cosigner(&vkey)).await;
    tokio::task::block_in_place(|| drop(ledger));
    let (code, out) = tokio::task::block_in_place(|| cli(&a, &["audit", "verify", "--witnessed"]));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("quorum not met: 1 of the 2"), "{out}");
    assert!(
        out.contains("witness witness.example/down: failed"),
        "{out}"
    );
    let (code, out) = tokio::task::block_in_place(|| {
        cli(&a, &["audit", "export", "--witnessed", "-o", "/dev/null"])
    });
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no checkpoint has been cosigned by 2"),
        "{out}"
    );
}

#[test]
fn witness_settings_are_checked_when_the_file_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let key = NamedKey::new(
        WITNESS,
        COSIGNATURE_V1,
        ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key(),
    )
    .to_vkey();
    let cases = [
        (format!("[[witnesses]]\nurl = \"ftp://x\"\nkey = \"{key}\"\n"), "witnesses.url"),
        ("[[witnesses]]\nurl = \"http://127.0.0.1:1\"\nkey = \"nope\"\n".to_string(), "witnesses.key"),
        (
            format!("[[witnesses]]\nurl = \"http://127.0.0.1:1\"\nkey = \"{key}\"\n[witness_policy]\nquorum = 2\n"),
            "witness_policy.quorum = 2",
        ),
        (
            format!("[[witnesses]]\nname = \"other\"\nurl = \"http://127.0.0.1:1\"\nkey = \"{key}\"\n"),
            "witnesses.name",
        ),
    ];
    for (toml, field) in cases {
        let path = tmp.path().join("keyledger.toml");
        std::fs::write(&path, &toml).unwrap();
        let error = keyledger::config::AnalysisConfig::load(&path).unwrap_err();
        assert!(error.to_string().contains(field), "{toml}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_witnesses_a_witnessed_export_is_a_conflict_and_the_checkpoint_is_the_newest() {
    let s = server::start().await;
    let client = server::client();
    let (status, body) = server::call(
        &client,
        reqwest::Method::GET,
        format!("{}/v1/audit/export?witnessed=true", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(server::code(&body), "no_witnesses");
    let (status, json) = server::call(
        &client,
        reqwest::Method::GET,
        format!("{}/v1/audit/checkpoint", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{json}");
    assert!(json["witnessed"].is_null(), "{json}");
    assert_eq!(json["size"], s.ledger.durable_seq());
}
