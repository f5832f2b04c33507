//! Read-only followers on PostgreSQL (issue 14): `serve --follower` follows the log the leader appends, answers
//! reads, refuses writes with 503 naming the leader, has the leader verify (and record) every key it is
//! presented, and sees a revocation within its measured lag. The follower's data directory holds no signing key.

mod common;
#[path = "common/process.rs"]
mod process;

use common::pg;
use process::{admin_key_from, keyledger, wait_until, Served};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a follower may take to show what the leader acknowledged.
const LAG_BOUND: Duration = Duration::from_secs(5);

fn create_key(
    client: &Client,
    base: &str,
    admin: &str,
    name: &str,
    scopes: &[&str],
) -> (String, String) {
    let created: Value = client
        .post(format!("{base}/v1/keys"))
        .bearer_auth(admin)
        .json(&json!({"name": name, "owner": "ops", "environment": "live", "scopes": scopes}))
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .unwrap();
    (
        created["key"]["key_id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

fn get(client: &Client, url: &str, key: &str) -> (u16, Value) {
    let response = client.get(url).bearer_auth(key).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn health(client: &Client, base: &str) -> Value {
    client
        .get(format!("{base}/healthz"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// A data directory for a follower on another host: the metadata and public key, no signing key.
fn follower_dir(leader: &Path, follower: &Path) {
    std::fs::create_dir_all(follower).unwrap();
    for name in ["ledger.json", "keyledger.toml", "signing.pub"] {
        std::fs::copy(leader.join(name), follower.join(name)).unwrap();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn a_follower_serves_reads_refuses_writes_and_sees_a_revocation_within_its_lag() {
    let Some(cluster) = pg::cluster_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("leader");
    let url = cluster.fresh_database();
    let init = keyledger(&data, &["init", "--store", &url]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let admin = admin_key_from(&String::from_utf8_lossy(&init.stdout));
    // Checkpoints every second, so that the follower has a recent one to cut exports at.
    let toml = data.join("keyledger.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\n[checkpoints]\ninterval_secs = 1\n")).unwrap();
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let leader = Served::start(&data, &[]);
    let (_, follower_key) = create_key(
        &client,
        &leader.base,
        &admin,
        "follower-1",
        &["ledger:verify"],
    );
    let follower_data = tmp.path().join("follower");
    follower_dir(&data, &follower_data);
    // Without its own key a follower refuses to start: it could not record the uses it authenticates.
    let keyless = keyledger(
        &follower_data,
        &["serve", "--follower", "--addr", "127.0.0.1:1"],
    );
    assert_eq!(keyless.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&keyless.stderr).contains("KEYLEDGER_FOLLOWER_KEY"));

    let follower = Served::start_with_env(
        &follower_data,
        &["--follower"],
        &[("KEYLEDGER_FOLLOWER_KEY", follower_key.as_str())],
    );
    let health_now = health(&client, &follower.base);
    assert_eq!(
        health_now["replication"]["role"], "follower",
        "{health_now}"
    );
    assert_eq!(
        health_now["replication"]["leader"],
        leader.base.as_str(),
        "{health_now}"
    );
    assert_eq!(
        health(&client, &leader.base)["replication"]["role"],
        "leader"
    );

    // A key made on the leader appears on the follower; a reader key works against the follower, and its use
    // is on record (by the leader, with the follower as the gateway).
    let (reader_id, reader) = create_key(&client, &leader.base, &admin, "reader", &["ledger:read"]);
    let key_url = format!("{}/v1/keys/{reader_id}", follower.base);
    wait_until("the follower shows the new key", || {
        get(&client, &key_url, &admin).0 == 200
    });
    let (status, listed) = get(&client, &format!("{}/v1/keys", follower.base), &reader);
    assert_eq!(status, 200, "{listed}");
    let history_url = format!("{}/v1/keys/{reader_id}/events", leader.base);
    let (_, history) = get(&client, &history_url, &admin);
    let uses: Vec<&Value> = history["events"]
        .as_array()
        .expect("a page of events")
        .iter()
        .filter(|e| e["event"]["type"] == "key.used")
        .collect();
    assert_eq!(uses.len(), 1, "one recorded use: {history}");
    assert_eq!(uses[0]["event"]["data"]["outcome"], "valid", "{history}");
    assert_eq!(
        uses[0]["event"]["data"]["gateway_ip"], "127.0.0.1",
        "{history}"
    );

    // Writes and verification are the leader's: 503 naming it.
    for (method, path, body) in [
        (
            "POST",
            "/v1/keys".to_string(),
            json!({"name": "x", "owner": "o", "environment": "live", "scopes": ["a"]}),
        ),
        ("POST", "/v1/verify".to_string(), json!({"secret": reader})),
        ("DELETE", format!("/v1/keys/{reader_id}"), Value::Null),
    ] {
        let request = client
            .request(method.parse().unwrap(), format!("{}{path}", follower.base))
            .bearer_auth(&admin);
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        let response = request.send().unwrap();
        assert_eq!(response.status().as_u16(), 503, "{method} {path}");
        let error: Value = response.json().unwrap();
        assert_eq!(
            error["error"]["code"], "read_only_follower",
            "{method} {path}: {error}"
        );
        assert_eq!(
            error["error"]["leader"],
            leader.base.as_str(),
            "{method} {path}: {error}"
        );
    }

    // Lag under load: 4 clients verify against the leader while the follower's lag is sampled.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, base, admin) = (stop.clone(), leader.base.clone(), admin.clone());
            std::thread::spawn(move || {
                let client = Client::new();
                let mut sent = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && sent < 2_000 {
                    let answer = client
                        .post(format!("{base}/v1/verify"))
                        .bearer_auth(&admin)
                        .json(&json!({"secret": "kl_test_notakey"}))
                        .send()
                        .unwrap();
                    assert!(answer.status().is_success());
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let mut lags = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        lags.push(
            health(&client, &follower.base)["replication"]["lag_seconds"]
                .as_f64()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: usize = load.into_iter().map(|t| t.join().unwrap()).sum();
    let leader_seq = health(&client, &leader.base)["durable_seq"]
        .as_u64()
        .unwrap();
    wait_until("the follower catches up after the load", || {
        health(&client, &follower.base)["durable_seq"].as_u64() == Some(leader_seq)
    });
    lags.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lags, 0.5), percentile(&lags, 0.99));
    eprintln!("{sent} verifications on the leader; follower lag p50 {p50:.4} s, p99 {p99:.4} s");
    assert!(p99 < LAG_BOUND.as_secs_f64(), "lag p99 {p99} s");

    // A revocation on the leader: the revoked key is refused through the follower at once (the leader decides),
    // and the follower's own view shows the revocation within the bound.
    let revoked = client
        .delete(format!("{}/v1/keys/{reader_id}", leader.base))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    let revoked_at = Instant::now();
    assert_eq!(
        get(&client, &format!("{}/v1/keys", follower.base), &reader).0,
        401
    );
    wait_until("the follower shows the revocation", || {
        get(&client, &key_url, &admin).1["status"] == "revoked"
    });
    let seen_after = revoked_at.elapsed();
    eprintln!("revocation seen by the follower after {seen_after:?}");
    assert!(seen_after < LAG_BOUND, "{seen_after:?}");

    // Reads that need the chain: verification and a verifiable export, both from the follower.
    let (status, report) = get(
        &client,
        &format!("{}/v1/audit/verify", follower.base),
        &admin,
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    wait_until("the follower has a checkpoint to export at", || {
        client
            .get(format!("{}/v1/audit/export", follower.base))
            .bearer_auth(&admin)
            .send()
            .is_ok_and(|r| r.status().is_success())
    });
    let export = client
        .get(format!("{}/v1/audit/export", follower.base))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let export_path = tmp.path().join("from-follower.jsonl");
    std::fs::write(&export_path, &export).unwrap();
    let public_key = follower_data.join("signing.pub");
    let checked = keyledger(
        &follower_data,
        &[
            "audit",
            "verify-export",
            export_path.to_str().unwrap(),
            "--public-key",
            public_key.to_str().unwrap(),
        ],
    );
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    let (stopped, log) = follower.stop();
    assert!(stopped, "{log}");
    drop(leader);
}
