//! Crash safety: a child process appends under concurrent load and is killed with SIGKILL at random moments,
//! round after round. After each kill the log must reopen, verify, and hold every event acknowledged before it.
//!
//! The child is this test binary re-run with `crash_child` and `KEYLEDGER_CRASH_DIR` set (as sled's own crash
//! test does); it prints `ACK <seq> <tag>` only after `submit_blocking` returned, i.e. after the fsync.

mod common;

use keyledger::datadir::{DataDir, KeySource};
use keyledger::event::{Actor, Event, EventData};
use keyledger::ledger::{replay_from_snapshot, replay_log_with, AppendEvents, Startup};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "KEYLEDGER_CRASH_DIR";
const ROUNDS: usize = 12;
const CHILD_THREADS: usize = 8;

/// Not a test on its own: the body of the child process (returns at once unless `KEYLEDGER_CRASH_DIR` is set).
#[test]
fn crash_child() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let ledger = DataDir::new(root)
        .open(&KeySource::Default)
        .expect("child opens the ledger");
    let stdout = std::sync::Mutex::new(std::io::stdout());
    std::thread::scope(|scope| {
        for thread in 0..CHILD_THREADS {
            let ledger = &ledger;
            let stdout = &stdout;
            scope.spawn(move || {
                for n in 0.. {
                    let tag = format!("t{thread}-n{n}-{}", std::process::id());
                    let command = AppendEvents {
                        actor: Actor::System,
                        request_id: None,
                        events: vec![common::used(None, &tag)],
                    };
                    let seqs = ledger.submit_blocking(command).expect("append");
                    let mut out = stdout.lock().unwrap_or_else(|p| p.into_inner());
                    writeln!(out, "ACK {} {tag}", seqs[0]).expect("stdout");
                    out.flush().expect("stdout flush");
                }
            });
        }
    });
}

/// Re-runs this test binary as the child test `name`, with `env` pointing it at the data directory.
fn spawn_child(
    name: &str,
    env: &str,
    root: &std::path::Path,
    stdout: Stdio,
) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(env, root)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A small deterministic generator for kill delays, so a failing round can be reproduced from its seed.
fn next_delay(state: &mut u64) -> Duration {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    Duration::from_millis(30 + (*state >> 33) % 400)
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_event() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let dir = DataDir::new(&root);
    drop(dir.init(None).unwrap());
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut acknowledged: Vec<(u64, String)> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = spawn_child("crash_child", CHILD_ENV, &root, Stdio::piped());
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| {
                    let mut parts = line.strip_prefix("ACK ")?.split(' ');
                    Some((
                        parts.next()?.parse::<u64>().ok()?,
                        parts.next()?.to_string(),
                    ))
                })
                .collect::<Vec<_>>()
        });
        let delay = next_delay(&mut seed);
        let started = Instant::now();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        eprintln!(
            "round {round}: killed after {:?}, {} acknowledged",
            started.elapsed(),
            acked.len()
        );
        acknowledged.extend(acked);

        let ledger = dir
            .open(&KeySource::Default)
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        common::assert_verifies(ledger.store().as_ref(), &dir);
        for (seq, tag) in &acknowledged {
            let record = ledger
                .store()
                .get(*seq)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acked seq {seq} lost"));
            let event = Event::decode(&record.body).unwrap();
            match event.data {
                EventData::KeyUsed(used) => {
                    assert_eq!(used.user_agent.as_deref(), Some(tag.as_str()), "seq {seq}")
                }
                other => panic!("seq {seq} holds {other:?}"),
            }
        }
    }
    assert!(
        acknowledged.len() > ROUNDS,
        "the children appended too little to test anything: {}",
        acknowledged.len()
    );
}

const OPEN_CHILD_ENV: &str = "KEYLEDGER_CRASH_OPEN_DIR";

/// Not a test on its own: opens, appends to and closes the ledger in a loop until killed.
#[test]
fn crash_open_child() {
    let Ok(root) = std::env::var(OPEN_CHILD_ENV) else {
        return;
    };
    let dir = DataDir::new(root);
    for n in 0.. {
        let ledger = dir
            .open(&KeySource::Default)
            .expect("child opens the ledger");
        let seqs = ledger
            .submit_blocking(AppendEvents {
                actor: Actor::System,
                request_id: None,
                events: vec![common::used(None, &format!("open-{n}"))],
            })
            .expect("append");
        println!("ACK {} open-{n}", seqs[0]);
    }
}

#[test]
fn sigkill_while_opening_leaves_a_ledger_that_opens_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let dir = DataDir::new(&root);
    let ledger = dir.init(None).unwrap().0;
    // Enough events that opening (replay, Merkle recomputation, checkpoint checks) takes a while.
    for _ in 0..20 {
        let events = (0..500)
            .map(|i| common::used(None, &format!("bulk-{i}")))
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
    let mut seed = 0x5eed_u64;
    for round in 0..6 {
        let mut child = spawn_child("crash_open_child", OPEN_CHILD_ENV, &root, Stdio::null());
        std::thread::sleep(next_delay(&mut seed));
        child.kill().unwrap();
        child.wait().unwrap();
        let ledger = dir
            .open(&KeySource::Default)
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let report = common::assert_verifies(ledger.store().as_ref(), &dir);
        assert!(
            report.checkpoints_checked > 0,
            "round {round}: checkpoints survive the kills"
        );
    }
}

const SNAPSHOT_CHILD_ENV: &str = "KEYLEDGER_CRASH_SNAPSHOT_DIR";

/// Not a test on its own: opens from the snapshot (as `serve` does) and appends uses of a few keys until killed,
/// with a snapshot written every second.
#[test]
fn crash_snapshot_child() {
    let Ok(root) = std::env::var(SNAPSHOT_CHILD_ENV) else {
        return;
    };
    let ledger = DataDir::new(root)
        .open_with(&KeySource::Default, Startup::Snapshot)
        .expect("child opens the ledger");
    let key = common::create_key(
        &ledger,
        &common::key_config(&format!("k-{}", std::process::id()), &["read"]),
    )
    .key
    .key_id;
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let ledger = &ledger;
            scope.spawn(move || {
                for n in 0.. {
                    let events = (0..8)
                        .map(|i| common::used(Some(key), &format!("t{thread}-{n}-{i}")))
                        .collect();
                    ledger
                        .submit_blocking(AppendEvents {
                            actor: Actor::System,
                            request_id: None,
                            events,
                        })
                        .expect("append");
                }
            });
        }
    });
}

/// Issue 13: kill -9 at random moments of a ledger that persists its projections; after each kill the state
/// rebuilt from the newest snapshot plus the tail equals a full replay, and the ledger opens from it and verifies.
#[test]
fn sigkill_with_persisted_state_reopens_equal_to_a_full_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let dir = DataDir::new(&root);
    drop(dir.init(None).unwrap());
    std::fs::write(
        dir.config_path(),
        "[snapshots]\ninterval_secs = 1\n[checkpoints]\ninterval_secs = 1\n",
    )
    .unwrap();
    let mut seed = 0x5eed_5a17_u64;
    let mut resumed_rounds = 0;
    for round in 0..8 {
        let mut child = spawn_child(
            "crash_snapshot_child",
            SNAPSHOT_CHILD_ENV,
            &root,
            Stdio::null(),
        );
        std::thread::sleep(Duration::from_millis(600) + 4 * next_delay(&mut seed));
        child.kill().unwrap();
        child.wait().unwrap();

        let store = dir.open_store().unwrap();
        let signer = dir.load_signer(&KeySource::Default).unwrap();
        let rules = dir.config().unwrap().rules();
        let full = replay_log_with(store.as_ref(), None, None, rules.clone())
            .unwrap_or_else(|e| panic!("round {round}: full replay failed: {e}"));
        if let Ok(resumed) = replay_from_snapshot(store.as_ref(), &[signer], &rules).unwrap() {
            resumed_rounds += 1;
            assert_eq!(resumed.head, full.head, "round {round}");
            assert_eq!(
                resumed.frontier.root(),
                full.frontier.root(),
                "round {round}"
            );
            assert!(
                resumed.projections == full.projections,
                "round {round}: persisted state + tail differs from a full replay"
            );
        }
        drop(store);
        let ledger = dir
            .open_with(&KeySource::Default, Startup::Snapshot)
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        common::assert_verifies(ledger.store().as_ref(), &dir);
    }
    assert!(
        resumed_rounds >= 4,
        "snapshots were usable after only {resumed_rounds} of 8 kills"
    );
}
