//! Alerts (issue 15): signed webhooks from an outbox derived from the log, delivered at least once. A receiver on
//! 127.0.0.1 inside each test records what arrives.

mod common;
#[path = "common/server.rs"]
mod server;

use hmac::{Hmac, Mac};
use keyledger::cli::demo::receiver::Receiver;
use reqwest::Method as M;
use serde_json::{json, Value};
use server::{call, client, new_key, Server};
use std::time::Duration;

#[path = "common/alerts.rs"]
mod alerting;
use alerting::{
    alert_pairs, deadline_server, has, key_body, sinks_toml, start_outbox, wait_for, SECRET,
};

/// The documented recipe (docs/API.md, "Alerts"), written here independently of keyledger's own code.
fn recipe_verifies(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_string()),
            Some(("v1", value)) => v1 = Some(value.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes()) == v1
}

/// Runs docs/API.md's Python recipe on a received request; `None` when python3 is not installed.
fn python_recipe_verifies(secret: &str, header: &str, body: &[u8]) -> Option<bool> {
    let doc = include_str!("../docs/API.md");
    let start = doc
        .find("```python\n")
        .expect("the recipe is in docs/API.md")
        + "```python\n".len();
    let recipe = &doc[start..start + doc[start..].find("```").unwrap()];
    let tmp = tempfile::tempdir().unwrap();
    let body_file = tmp.path().join("body");
    std::fs::write(&body_file, body).unwrap();
    let script = format!("{recipe}\nimport sys\nprint(verify(sys.argv[1].encode(), sys.argv[2], open(sys.argv[3], 'rb').read()))\n");
    let output = std::process::Command::new("python3")
        .args(["-c", &script, secret, header])
        .arg(&body_file)
        .output()
        .ok()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8_lossy(&output.stdout).trim() == "True")
}

async fn revoke(s: &Server, key_id: &str) {
    let (status, body) = call(
        &client(),
        M::DELETE,
        format!("{}/v1/keys/{key_id}", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_arrives_signed_by_the_documented_recipe_and_without_any_secret() {
    let receiver = Receiver::start(SECRET.as_bytes(), 0, Duration::ZERO)
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let s = server::start_with_config(&sinks_toml(tmp.path(), &[("security", &receiver.url, "")]))
        .await;
    let _outbox = start_outbox(&s);
    let (key_id, secret) = new_key(&s, key_body("billing-api")).await;
    revoke(&s, &key_id).await;
    wait_for(&receiver, "the revocation alert", |r| !r.is_empty()).await;
    let got = &receiver.received()[0];
    assert!(got.signed, "keyledger's own check");
    assert!(
        recipe_verifies(SECRET, &got.signature, &got.body),
        "the documented recipe"
    );
    assert!(!recipe_verifies(
        "another-secret-value",
        &got.signature,
        &got.body
    ));
    match python_recipe_verifies(SECRET, &got.signature, &got.body) {
        Some(verified) => {
            assert!(verified, "docs/API.md's Python recipe");
            let wrong = python_recipe_verifies("another-secret-value", &got.signature, &got.body);
            assert_eq!(wrong, Some(false));
            let mut tampered = got.body.clone();
            tampered[10] ^= 1;
            let tampered = python_recipe_verifies(SECRET, &got.signature, &tampered);
            assert_eq!(tampered, Some(false));
        }
        None => common::skip(
            "python3",
            "python3 is not installed: docs/API.md's Python recipe was not run",
        ),
    }
    let alert: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(alert["kind"], "key.revoked");
    assert_eq!(alert["id"], got.alert_id.as_str());
    assert_eq!(alert["key"]["key_id"], key_id.as_str());
    assert_eq!(alert["key"]["name"], "billing-api");
    assert_eq!(alert["key"]["owner"], "team-payments");
    assert!(alert["seqs"].as_array().unwrap().len() == 1);
    let text = String::from_utf8_lossy(&got.body);
    let hash = keyledger::secret::Secret::parse(&secret)
        .unwrap()
        .hash_hex();
    for forbidden in [secret.as_str(), hash.as_str(), SECRET, s.admin.as_str()] {
        assert!(!text.contains(forbidden), "a secret in the payload: {text}");
    }
    // The delivery is on record, and the sinks are listed without their secret.
    let (status, listed) = call(
        &client(),
        M::GET,
        format!("{}/v1/alerts/deliveries", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["deliveries"][0]["status"], "delivered", "{listed}");
    assert_eq!(listed["deliveries"][0]["alert_id"], got.alert_id.as_str());
    assert!(!listed.to_string().contains(SECRET));
    assert_eq!(listed["sinks"][0]["name"], "security");
    for bad in ["sink=", "sink=Not%20A%20Sink", "status=lost", "limit=0"] {
        let (status, body) = call(
            &client(),
            M::GET,
            format!("{}/v1/alerts/deliveries?{bad}", s.base),
            Some(&s.admin),
            None,
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_failing_its_first_attempts_gets_the_alert_exactly_once_more_after_it_recovers() {
    let receiver = Receiver::start(SECRET.as_bytes(), 3, Duration::ZERO)
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let s =
        server::start_with_config(&sinks_toml(tmp.path(), &[("flaky", &receiver.url, "")])).await;
    let outbox = start_outbox(&s);
    let (key_id, _) = new_key(&s, key_body("flaky-key")).await;
    revoke(&s, &key_id).await;
    wait_for(&receiver, "an acknowledged delivery", |r| {
        r.iter().any(|x| x.acknowledged)
    })
    .await;
    // Give a wrong second delivery time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 4, "three failures then one success: {got:?}");
    assert!(
        got.iter()
            .all(|r| r.alert_id == got[0].alert_id && r.body == got[0].body),
        "the same alert each time"
    );
    assert_eq!(got.iter().filter(|r| r.acknowledged).count(), 1);
    let (_, listed) = call(
        &client(),
        M::GET,
        format!("{}/v1/alerts/deliveries?sink=flaky", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(listed["deliveries"][0]["attempts"], 4, "{listed}");
    assert_eq!(listed["deliveries"][0]["status"], "delivered", "{listed}");
    let metrics = outbox.metrics.render();
    assert!(
        metrics.contains(
            "keyledger_alert_deliveries_total{sink=\"flaky\",result=\"failed_attempt\"} 3"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("keyledger_alert_deliveries_total{sink=\"flaky\",result=\"delivered\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_keeps_failing_holds_back_neither_appends_nor_another_sink() {
    let broken = Receiver::start(SECRET.as_bytes(), usize::MAX, Duration::ZERO)
        .await
        .unwrap();
    let healthy = Receiver::start(SECRET.as_bytes(), 0, Duration::ZERO)
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let toml = sinks_toml(
        tmp.path(),
        &[
            ("broken", &broken.url, ""),
            ("healthy", &healthy.url, "format = \"slack\""),
        ],
    );
    let s = server::start_with_config(&toml).await;
    let _outbox = start_outbox(&s);
    let mut revoked = Vec::new();
    for n in 0..5 {
        let (key_id, _) = new_key(&s, key_body(&format!("k{n}"))).await;
        revoke(&s, &key_id).await;
        revoked.push(key_id);
    }
    wait_for(&healthy, "all five alerts at the healthy sink", |r| {
        r.len() == 5
    })
    .await;
    assert!(healthy
        .received()
        .iter()
        .all(|r| r.signed && r.acknowledged));
    let slack: Value = serde_json::from_slice(&healthy.received()[0].body).unwrap();
    assert!(
        slack["text"].as_str().unwrap().contains("key.revoked"),
        "{slack}"
    );
    wait_for(&broken, "the broken sink is retried", |r| r.len() >= 3).await;
    assert!(
        broken
            .received()
            .iter()
            .all(|r| r.alert_id == broken.received()[0].alert_id),
        "in order: the first alert until it succeeds"
    );
    let (_, listed) = call(
        &client(),
        M::GET,
        format!(
            "{}/v1/alerts/deliveries?sink=broken&status=retrying",
            s.base
        ),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(
        listed["deliveries"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    assert!(
        listed["deliveries"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_based_alerts_fire_once_per_deadline_also_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (receiver, s, clock) = deadline_server(tmp.path()).await;
    let mut expiring = key_body("expiring");
    expiring["expires_at"] = json!("2026-01-10T00:00:00Z");
    let (expiring_id, _) = new_key(&s, expiring).await;
    let (rotating_id, _) = new_key(&s, key_body("rotating")).await;
    let outbox = start_outbox(&s);
    wait_for(&receiver, "the expiry notice", |r| r.len() == 1).await;
    let first: Value = serde_json::from_slice(&receiver.received()[0].body).unwrap();
    assert_eq!(
        (first["kind"].as_str(), first["key"]["key_id"].as_str()),
        (Some("key.expiring"), Some(expiring_id.as_str()))
    );
    // A restart of the outbox (its marks are in the store): the same deadline does not fire again.
    drop(outbox);
    let outbox = start_outbox(&s);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "fired once: {:?}",
        receiver.received()
    );
    // 80 days on: the rotations fall due (notice 14 days before day 90), once each; 11 days later, overdue.
    clock.advance_secs(80 * 86_400);
    wait_for(&receiver, "the rotation notice", |r| {
        has(r, "key.rotation_due", &rotating_id)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    clock.advance_secs(11 * 86_400);
    wait_for(&receiver, "the overdue alert", |r| {
        has(r, "key.rotation_overdue", &rotating_id)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let pairs = alert_pairs(&receiver.received());
    let mut unique = pairs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        pairs.len(),
        "each (kind, key) fired once: {pairs:?}"
    );
    for expected in [
        ("key.expiring", expiring_id.as_str()),
        ("key.rotation_due", rotating_id.as_str()),
        ("key.rotation_overdue", rotating_id.as_str()),
    ] {
        assert!(
            pairs
                .iter()
                .any(|(k, id)| (k.as_str(), id.as_str()) == expected),
            "{expected:?} in {pairs:?}"
        );
    }
    // The expired key raises nothing more; the admin key (same age) has its own rotation alerts.
    assert!(
        !pairs
            .iter()
            .any(|(k, id)| id == &expiring_id && k != "key.expiring"),
        "{pairs:?}"
    );
    drop(outbox);
}

#[test]
fn a_sink_without_its_secret_or_with_an_unknown_kind_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("keyledger.toml");
    for (toml, expected) in [
        ("[[alerts.sinks]]\nname = \"s\"\nurl = \"http://127.0.0.1:9/h\"\n", "secret_env or secret_file"),
        ("[[alerts.sinks]]\nname = \"s\"\nurl = \"http://127.0.0.1:9/h\"\nsecret_env = \"X\"\nkinds = [\"key.exploded\"]\n", "not an alert kind"),
        ("[[alerts.sinks]]\nname = \"S S\"\nurl = \"http://127.0.0.1:9/h\"\nsecret_env = \"X\"\n", "must be 1-64"),
        ("[[alerts.sinks]]\nname = \"s\"\nurl = \"ftp://x\"\nsecret_env = \"X\"\n", "not an http(s) URL"),
    ] {
        std::fs::write(&path, toml).unwrap();
        let error = keyledger::config::AnalysisConfig::load(&path).unwrap_err().to_string();
        assert!(error.contains(expected), "{toml}: {error}");
    }
}
