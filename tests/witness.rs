//! `keyledger witness` (issue 29): the C2SP tlog-witness server side. A checkpoint is cosigned only when its
//! signature verifies and a consistency proof shows the log grew from what the witness cosigned last; a fork, a
//! rollback, an unknown log, a stranger's signature and a bad proof are refused with the protocol's statuses; a
//! real ledger's checkpoints are cosigned; the state survives kill -9 without ever going back.

mod common;

use keyledger::audit::checkpoint::{stored_checkpoints, Checkpoint};
use keyledger::audit::cosignature::{verify_cosignature, NamedKey, COSIGNATURE_V1, NOTE_ED25519};
use keyledger::audit::merkle::{consistency_proof, root, MemoryLeaves};
use keyledger::audit::witness_client::request_body;
use keyledger::chain::{Hash32, LedgerSigner};
use keyledger::witness::state::StateDir;
use keyledger::witness::Witness;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ORIGIN: &str = "ledger.example/test";

/// A log: its key and leaves, and the notes and proofs a client sends.
struct Log {
    signer: LedgerSigner,
    leaves: Vec<Hash32>,
}

impl Log {
    fn new(seed: u8, leaves: usize, salt: &str) -> Self {
        let leaves = (0..leaves)
            .map(|i| Sha256::digest(format!("{salt}{i}").as_bytes()).into())
            .collect();
        Self {
            signer: LedgerSigner::from_seed(&[seed; 32]),
            leaves,
        }
    }

    fn vkey(&self) -> NamedKey {
        NamedKey::new(ORIGIN, NOTE_ED25519, self.signer.public_key())
    }

    fn note(&self, size: u64) -> String {
        let leaves = MemoryLeaves(self.leaves.clone());
        let Ok(root) = root(&leaves, size);
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
        }
        .sign(&self.signer)
        .unwrap()
    }

    /// An add-checkpoint body from `old` to `size`.
    fn body(&self, old: u64, size: u64) -> String {
        let leaves = MemoryLeaves(self.leaves.clone());
        let Ok(proof) = consistency_proof(&leaves, old, size);
        request_body(old, &proof, &self.note(size))
    }
}

fn witness(dir: &std::path::Path, logs: Vec<NamedKey>) -> Witness {
    let state = StateDir::new(dir);
    if state.key().is_err() {
        state.init("witness.example/w1").unwrap();
    }
    Witness::open(state, logs).unwrap()
}

fn cosigner(witness: &Witness) -> NamedKey {
    NamedKey::parse_vkey(&witness.vkey(), COSIGNATURE_V1).unwrap()
}

#[test]
fn a_growing_log_is_cosigned_and_each_cosignature_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::new(1, 40, "a");
    let w = witness(tmp.path(), vec![log.vkey()]);
    let mut old = 0;
    for size in [1, 2, 3, 7, 8, 20, 33, 40] {
        let line = w
            .add_checkpoint(&log.body(old, size), 1_700_000_000 + size)
            .unwrap();
        let (_, body, _) = Checkpoint::parse_note(&log.note(size)).unwrap();
        assert_eq!(
            verify_cosignature(&cosigner(&w), &body, &line),
            Ok(Some(1_700_000_000 + size)),
            "size {size}"
        );
        old = size;
    }
    // The same checkpoint again is cosigned again (nothing changed).
    assert!(w.add_checkpoint(&log.body(40, 40), 1_700_000_100).is_ok());
    assert_eq!(w.cosigned(ORIGIN).unwrap().size, 40);
}

#[test]
fn a_forked_history_is_refused_and_the_witness_keeps_its_view() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::new(1, 30, "a");
    // Same origin and key, rewritten from leaf 5 on.
    let mut fork = Log::new(1, 30, "a");
    for leaf in &mut fork.leaves[5..] {
        *leaf = Sha256::digest(leaf.as_slice()).into();
    }
    let w = witness(tmp.path(), vec![log.vkey()]);
    w.add_checkpoint(&log.body(0, 20), 1).unwrap();
    // The fork at the size the witness holds: 409 with the witness's size.
    let refused = w.add_checkpoint(&fork.body(20, 20), 2).unwrap_err();
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (StatusCode::CONFLICT, "20\n")
    );
    // The fork grown further: its proof from 20 does not lead from the witnessed root.
    let refused = w.add_checkpoint(&fork.body(20, 30), 3).unwrap_err();
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(w.cosigned(ORIGIN).unwrap().size, 20);
    // The honest log still grows.
    assert!(w.add_checkpoint(&log.body(20, 30), 4).is_ok());
}

#[test]
fn a_rollback_a_stale_old_size_a_stranger_and_an_unknown_log_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::new(1, 30, "a");
    let w = witness(tmp.path(), vec![log.vkey()]);
    w.add_checkpoint(&log.body(0, 20), 1).unwrap();
    // A smaller size than the old one: malformed.
    let refused = w
        .add_checkpoint(&log.body(0, 15).replacen("old 0", "old 20", 1), 2)
        .unwrap_err();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    // A rolled-back size from what the client thought the witness held: 409 naming 20.
    let refused = w.add_checkpoint(&log.body(10, 15), 3).unwrap_err();
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (StatusCode::CONFLICT, "20\n")
    );
    // A client that knows nothing asks with old 0 and learns the size.
    let refused = w.add_checkpoint(&log.body(0, 25), 4).unwrap_err();
    assert_eq!(refused.body, "20\n");
    // Signed by another key for the same origin: 403.
    let stranger = Log::new(2, 30, "a");
    let refused = w.add_checkpoint(&stranger.body(20, 25), 5).unwrap_err();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // A log the witness does not follow: 404.
    let other = log.body(20, 25).replace(ORIGIN, "other.example/log");
    assert_eq!(
        w.add_checkpoint(&other, 6).unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    // Malformed bodies: 400.
    for body in ["old x\n\n", "old 01\n\n", "no blank line"] {
        assert_eq!(
            w.add_checkpoint(body, 7).unwrap_err().status,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    assert_eq!(w.cosigned(ORIGIN).unwrap().size, 20);
}

#[test]
fn a_ledgers_own_checkpoints_are_cosigned_with_its_proofs() {
    let (tmp, dir, ledger) = common::fresh_ledger();
    common::append_uses(&ledger, None, 30, 100);
    let store = ledger.store().clone();
    let notes = stored_checkpoints(store.as_ref()).unwrap();
    assert!(notes.len() >= 2, "{notes:?}");
    let identity = dir.identity().unwrap();
    let log = NamedKey::new(
        &identity.origin,
        NOTE_ED25519,
        dir.anchor_public_key().unwrap(),
    );
    let w = witness(&tmp.path().join("witness"), vec![log]);
    let tree = keyledger::audit::tree::StoredTree {
        store: store.as_ref(),
    };
    let mut old = 0;
    for (size, note) in notes {
        let proof = consistency_proof(&tree, old, size).unwrap();
        let body = request_body(old, &proof, &note);
        let line = w
            .add_checkpoint(&body, 1)
            .unwrap_or_else(|r| panic!("size {size}: {r:?}"));
        let (_, signed, _) = Checkpoint::parse_note(&note).unwrap();
        assert_eq!(
            verify_cosignature(&cosigner(&w), &signed, &line),
            Ok(Some(1))
        );
        old = size;
    }
}

/// A `keyledger witness serve` process on a free loopback port.
fn serve(state: &std::path::Path, log: &NamedKey) -> (Child, String) {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_keyledger"))
            .args(["witness", "serve", "--state"])
            .arg(state)
            .args([
                "--log",
                &log.to_vkey(),
                "--addr",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (child, base);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("the witness did not start");
}

fn post(
    client: &reqwest::blocking::Client,
    base: &str,
    body: String,
) -> Option<(StatusCode, String, String)> {
    let response = client
        .post(format!("{base}/add-checkpoint"))
        .body(body)
        .send()
        .ok()?;
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Some((status, kind, response.text().ok()?))
}

#[test]
fn the_witness_state_survives_kill_9_and_never_goes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("witness");
    StateDir::new(&state).init("witness.example/w1").unwrap();
    let log = Log::new(1, 400, "a");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut acknowledged = 0u64;
    let mut seed = 0x9e37_79b9_u64;
    for round in 0..4 {
        let (mut child, base) = serve(&state, &log.vkey());
        // Where the witness stands: old 0 is answered with its size (or cosigned, the first time).
        let (status, kind, text) =
            post(&client, &base, log.body(0, 1)).expect("the witness answers");
        let mut size = if status == StatusCode::OK {
            1
        } else {
            assert_eq!(
                (status, kind.as_str()),
                (StatusCode::CONFLICT, "text/x.tlog.size")
            );
            text.trim().parse::<u64>().unwrap()
        };
        assert!(
            size >= acknowledged,
            "round {round}: the witness went back from {acknowledged} to {size}"
        );
        acknowledged = acknowledged.max(size);
        // Submissions grow the log until the process is killed at a random moment.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_at = Instant::now() + Duration::from_millis(20 + seed % 200);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_at.saturating_duration_since(Instant::now()));
            child.kill().unwrap();
            child.wait().unwrap();
        });
        while size < 399 {
            let next = size + 1;
            match post(&client, &base, log.body(size, next)) {
                Some((StatusCode::OK, _, _)) => {
                    acknowledged = next;
                    size = next;
                }
                Some((status, _, text)) => panic!("round {round}: {status} {text}"),
                None => break,
            }
        }
        killer.join().unwrap();
    }
    let (mut child, base) = serve(&state, &log.vkey());
    let (_, _, text) = post(&client, &base, log.body(0, 1)).unwrap();
    let size: u64 = text.trim().parse().unwrap_or(1);
    assert!(size >= acknowledged, "finally {size} < {acknowledged}");
    child.kill().unwrap();
    child.wait().unwrap();
}
