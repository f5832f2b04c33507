//! Alerts survive a crash (issue 15): `keyledger serve` is killed with SIGKILL while it delivers to a slow sink;
//! after a restart every alert arrives at least once, under the same id it had before the crash.

mod common;
#[path = "common/process.rs"]
mod process;

use keyledger::cli::demo::receiver::Receiver;
use process::{admin_key_from, wait_until, Served};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const SECRET: &str = "whsec_crash_0123456789abcdef";
const REVOCATIONS: usize = 8;

fn acknowledged_ids(receiver: &Receiver) -> BTreeSet<String> {
    receiver
        .received()
        .into_iter()
        .filter(|r| r.acknowledged)
        .map(|r| r.alert_id)
        .collect()
}

#[test]
fn kill_9_mid_delivery_then_restart_delivers_every_alert_at_least_once_with_stable_ids() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Each answer takes 300 ms, so the kill lands while deliveries are in flight.
    let receiver = runtime
        .block_on(Receiver::start(
            SECRET.as_bytes(),
            0,
            Duration::from_millis(300),
        ))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("--data")
        .arg(&data)
        .arg("init")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let admin = admin_key_from(&String::from_utf8_lossy(&init.stdout));
    let secret_file = tmp.path().join("sink.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    std::fs::write(
        data.join("keyledger.toml"),
        format!(
            "[[alerts.sinks]]\nname = \"siem\"\nurl = \"{}\"\nsecret_file = \"{}\"\nretry_initial_ms = 100\nkinds = [\"key.revoked\"]\n",
            receiver.url,
            secret_file.display()
        ),
    )
    .unwrap();

    let served = Served::start(&data, &[]);
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for n in 0..REVOCATIONS {
        let created: Value = client
            .post(format!("{}/v1/keys", served.base))
            .bearer_auth(&admin)
            .json(&json!({"name": format!("svc-{n}"), "owner": "ops", "environment": "live", "scopes": ["a:b"]}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let key_id = created["key"]["key_id"].as_str().unwrap().to_string();
        let revoked = client
            .delete(format!("{}/v1/keys/{key_id}", served.base))
            .bearer_auth(&admin)
            .send()
            .unwrap();
        assert!(revoked.status().is_success());
    }
    wait_until("some alerts are delivered before the kill", || {
        acknowledged_ids(&receiver).len() >= 2
    });
    served.signal(libc::SIGKILL);
    let before_kill: BTreeSet<String> = receiver
        .received()
        .into_iter()
        .map(|r| r.alert_id)
        .collect();
    drop(served);
    assert!(
        acknowledged_ids(&receiver).len() < REVOCATIONS,
        "the kill landed mid-delivery"
    );

    let restarted = Served::start(&data, &[]);
    let recorded = || -> BTreeSet<String> {
        let deliveries: Value = client
            .get(format!(
                "{}/v1/alerts/deliveries?status=delivered",
                restarted.base
            ))
            .bearer_auth(&admin)
            .send()
            .unwrap()
            .json()
            .unwrap();
        deliveries["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["alert_id"].as_str().unwrap().to_string())
            .collect()
    };
    wait_until(
        "the restarted ledger records every alert as delivered",
        || recorded().len() == REVOCATIONS,
    );
    let all: Vec<_> = receiver.received();
    let ids: BTreeSet<String> = all.iter().map(|r| r.alert_id.clone()).collect();
    assert_eq!(
        ids.len(),
        REVOCATIONS,
        "no new ids after the restart: {ids:?}"
    );
    assert!(
        before_kill.is_subset(&ids),
        "the ids seen before the kill are the same alerts"
    );
    assert!(all.iter().all(|r| r.signed), "every request is signed");
    let recorded = recorded();
    assert_eq!(recorded, ids);
    eprintln!(
        "{} requests for {REVOCATIONS} alerts ({} redelivered after the kill)",
        all.len(),
        all.len() - REVOCATIONS
    );
}
