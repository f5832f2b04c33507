//! Helpers of the alert tests: a keyledger.toml with sinks, starting the outbox, waiting for what a receiver gets.
#![allow(dead_code)]

use super::server::Server;
use keyledger::alerts::outbox::Outbox;
use keyledger::alerts::AlertsConfig;
use keyledger::cli::demo::receiver::{Received, Receiver};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const SECRET: &str = "whsec_test_0123456789abcdef";

/// keyledger.toml with one sink per (name, url, extra settings); the secret in a file beside it.
pub fn sinks_toml(dir: &std::path::Path, sinks: &[(&str, &str, &str)]) -> String {
    let secret_file = dir.join("sink.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let mut toml = String::from("[alerts]\ncheck_interval_secs = 1\n");
    for (name, url, extra) in sinks {
        toml.push_str(&format!(
            "[[alerts.sinks]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret_file = \"{}\"\nretry_initial_ms = 50\n{extra}\n",
            secret_file.display()
        ));
    }
    toml
}

/// A receiver, and a server on a manual clock from 2026-01-01 (rotation every 90 days, 14 days' notice) whose one
/// sink takes the deadline alerts (expiring, rotation due and overdue); its files go in `dir`.
pub async fn deadline_server(
    dir: &std::path::Path,
) -> (
    Receiver,
    Server,
    std::sync::Arc<keyledger::clock::ManualClock>,
) {
    let receiver = Receiver::start(SECRET.as_bytes(), 0, Duration::ZERO)
        .await
        .unwrap();
    let clock = keyledger::clock::ManualClock::starting_at("2026-01-01T00:00:00Z".parse().unwrap());
    let toml = sinks_toml(
        dir,
        &[(
            "deadlines",
            &receiver.url,
            "kinds = [\"key.expiring\", \"key.rotation_due\", \"key.rotation_overdue\"]",
        )],
    );
    let s = super::server::start_clocked_with_config(
        &format!("[rotation]\ndefault_days = 90\nnotify_days_before = 14\n{toml}"),
        clock.clone(),
    )
    .await;
    (receiver, s, clock)
}

pub fn start_outbox(s: &Server) -> Outbox {
    let config: AlertsConfig = s.dir.config().unwrap().alerts;
    Outbox::start(s.ledger.clone(), &config, s.dir.identity().unwrap().origin).unwrap()
}

/// Waits (bounded) until `done` holds for what the receiver got.
pub async fn wait_for(receiver: &Receiver, what: &str, done: impl Fn(&[Received]) -> bool) {
    let started = Instant::now();
    while !done(&receiver.received()) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: got {:?}",
            receiver.received()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// (kind, key id) of every alert received.
pub fn alert_pairs(received: &[Received]) -> Vec<(String, String)> {
    received
        .iter()
        .map(|r| {
            let alert: Value = serde_json::from_slice(&r.body).unwrap();
            (
                alert["kind"].as_str().unwrap().to_string(),
                alert["key"]["key_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

pub fn has(received: &[Received], kind: &str, key_id: &str) -> bool {
    alert_pairs(received)
        .iter()
        .any(|(k, id)| k == kind && id == key_id)
}

pub fn key_body(name: &str) -> Value {
    json!({"name": name, "owner": "team-payments", "environment": "live", "scopes": ["payments:write"]})
}
