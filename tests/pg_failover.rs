//! One writer with a standby on PostgreSQL (issue 14): `serve` holds the ledger's advisory lock; `serve --standby`
//! waits for it. Under concurrent `POST /v1/verify` load the leader is killed with SIGKILL at random moments, ten
//! times; each time the standby must answer within the bound, and in the end every acknowledged event is in the
//! log exactly once, the chain has not forked and `audit verify` passes.

mod common;
#[path = "common/process.rs"]
mod process;

use common::pg;
use process::{admin_key_from, free_port, keyledger, wait_until};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a standby may take to answer after the leader dies.
const TAKEOVER_BOUND: Duration = Duration::from_secs(10);
const ROUNDS: usize = 10;

/// `serve` (leader or standby) on its own port; the log goes next to the data directory.
fn serve(data: &Path, standby: bool, n: usize) -> (Child, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let log = data.with_extension(format!("serve-{n}.log"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyledger"));
    command
        .arg("--data")
        .arg(data)
        .args(["serve", "--addr", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")));
    if standby {
        command.arg("--standby");
    }
    (
        command.spawn().expect("serve starts"),
        format!("http://{addr}"),
    )
}

fn healthy(client: &reqwest::blocking::Client, base: &str) -> bool {
    client
        .get(format!("{base}/healthz"))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

#[test]
fn killing_the_leader_hands_the_ledger_to_the_standby_without_losing_or_forking() {
    let Some(cluster) = pg::cluster_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let url = cluster.fresh_database();
    let init = keyledger(&data, &["init", "--store", &url]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let admin = admin_key_from(&String::from_utf8_lossy(&init.stdout));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let (mut leader, mut leader_base) = serve(&data, false, 0);
    wait_until("the leader answers", || healthy(&client, &leader_base));
    // A second plain `serve` is refused while the leader holds the lock.
    let (mut refused, _) = serve(&data, false, 99);
    let status = refused.wait().unwrap();
    assert!(!status.success(), "a second writer must not start");
    let (mut standby, mut standby_base) = serve(&data, true, 1);

    // request id → seq of every acknowledged verification.
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut seed = 0x9e37_79b9_u64;
    let mut takeovers = Vec::new();
    for round in 0..ROUNDS {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let (acked, stop, base, admin) = (acked.clone(), stop.clone(), leader_base.clone(), admin.clone());
                std::thread::spawn(move || {
                    let client = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(5))
                        .build()
                        .unwrap();
                    for n in 0.. {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let request_id = format!("r{round}-w{worker}-{n}");
                        let body = serde_json::json!({"secret": "kl_test_notakey", "request_id": request_id});
                        let answer = client
                            .post(format!("{base}/v1/verify"))
                            .bearer_auth(&admin)
                            .json(&body)
                            .send();
                        match answer {
                            Ok(response) if response.status().is_success() => {
                                let value: serde_json::Value = response.json().unwrap();
                                let seq = value["seq"].as_u64().expect("an acknowledged event's seq");
                                acked.lock().unwrap().insert(request_id, seq);
                            }
                            // The leader died mid-request: not acknowledged, may or may not be on record.
                            _ => break,
                        }
                    }
                })
            })
            .collect();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(200 + (seed >> 33) % 500));
        leader.kill().unwrap();
        let killed = Instant::now();
        leader.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for worker in workers {
            worker.join().unwrap();
        }
        let deadline = killed + TAKEOVER_BOUND;
        while !healthy(&client, &standby_base) {
            assert!(
                Instant::now() < deadline,
                "round {round}: the standby did not take over within {TAKEOVER_BOUND:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        takeovers.push(killed.elapsed());
        (leader, leader_base) = (standby, standby_base);
        (standby, standby_base) = serve(&data, true, round + 2);
    }
    leader.kill().unwrap();
    leader.wait().unwrap();
    standby.kill().unwrap();
    standby.wait().unwrap();

    // Every acknowledged verification is on record exactly once, at the seq it was acknowledged with.
    let events = keyledger(&data, &["events"]);
    assert!(
        events.status.success(),
        "{}",
        String::from_utf8_lossy(&events.stderr)
    );
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    for line in String::from_utf8_lossy(&events.stdout).lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(request_id) = event["request_id"].as_str() {
            seen.entry(request_id.to_string())
                .or_default()
                .push(event["seq"].as_u64().unwrap());
        }
    }
    let acked = acked.lock().unwrap();
    assert!(acked.len() > 100, "load ran: {} acknowledged", acked.len());
    for (request_id, seq) in acked.iter() {
        assert_eq!(seen.get(request_id), Some(&vec![*seq]), "{request_id}");
    }
    let verify = keyledger(&data, &["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    takeovers.sort();
    eprintln!(
        "{} acknowledged events over {ROUNDS} kills; takeover median {:?}, slowest {:?}",
        acked.len(),
        takeovers[ROUNDS / 2],
        takeovers[ROUNDS - 1]
    );
}
