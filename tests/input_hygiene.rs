//! Input hygiene (issue 28): a live secret pasted into a request id, a name, an owner, a scope or metadata, and
//! bidi or zero-width characters in those fields, are refused by field name, on the HTTP API and the command
//! line, without the value being echoed, logged or stored.

mod common;
#[path = "common/server.rs"]
mod server;

use reqwest::Method as M;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::*;
use std::path::Path;

/// Right-to-left override and zero-width space: enough to make one key's name read as another's.
const TRICKS: [(char, &str); 2] = [('\u{202E}', "U+202E"), ('\u{200B}', "U+200B")];

/// A valid creation body, with `field` replaced by `value`.
fn body_with(field: &str, value: Value) -> Value {
    let mut body =
        json!({"name": "svc", "owner": "team-a", "environment": "prod", "scopes": ["read"]});
    body[field] = value;
    body
}

/// True when any event in the log holds `needle` in its body.
fn log_contains(s: &Server, needle: &str) -> bool {
    let store = s.ledger.store();
    (1..=s.ledger.durable_seq()).any(|seq| {
        let record = store.get(seq).unwrap().unwrap();
        String::from_utf8_lossy(&record.body).contains(needle)
    })
}

/// Posts `body` to `/v1/keys` as the admin and asserts a 400 naming `field` without echoing `secret`.
async fn refused_create(s: &Server, body: Value, field: &str, hidden: &str) {
    let before = s.ledger.durable_seq();
    let (status, answer) = call(
        &client(),
        M::POST,
        format!("{}/v1/keys", s.base),
        Some(&s.admin),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    assert_eq!(code(&answer), "invalid_request", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.starts_with(field), "names {field}: {answer}");
    assert!(!answer.to_string().contains(hidden), "echoed: {answer}");
    // Only the admin's own (authenticating) use is recorded, and it holds none of the body.
    assert!(s.ledger.durable_seq() <= before + 1);
    assert!(!log_contains(s, hidden), "{field} stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_the_request_id_is_refused_before_it_is_echoed_or_recorded() {
    let s = start().await;
    let (_, secret) = new_key(&s, body_with("name", json!("victim"))).await;
    for id in [
        secret.clone(),
        format!("trace-{secret}"),
        format!("{secret}.1"),
    ] {
        let before = s.ledger.durable_seq();
        let response = client()
            .post(format!("{}/v1/keys", s.base))
            .bearer_auth(&s.admin)
            .header("X-Request-Id", &id)
            .json(&body_with("name", json!("other")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{id}");
        for (name, value) in response.headers() {
            assert!(
                !value.to_str().unwrap_or("").contains(&secret),
                "{name} echoes the secret"
            );
        }
        let echoed = response.headers().get("x-request-id").cloned();
        assert!(echoed.is_some(), "a fresh request id still comes back");
        let text = response.text().await.unwrap();
        assert!(!text.contains(&secret), "body echoes the secret: {text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(code(&answer), "invalid_request", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("X-Request-Id"),
            "{answer}"
        );
        assert_eq!(
            s.ledger.durable_seq(),
            before,
            "nothing recorded, not even the use"
        );
        assert!(!log_contains(&s, &secret));
    }
    // Look-alikes without a valid checksum are ordinary request ids.
    let fake = format!("kl_prod_{}", "A".repeat(36));
    let response = client()
        .get(format!("{}/v1/keys?limit=1", s.base))
        .bearer_auth(&s.admin)
        .header("X-Request-Id", &fake)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], fake.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_as_a_scope_is_refused_naming_the_field() {
    let s = start().await;
    let (_, secret) = new_key(&s, body_with("name", json!("victim"))).await;
    refused_create(
        &s,
        body_with("scopes", json!(["read", secret])),
        "scopes",
        &secret,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_as_an_owner_is_refused_on_create_and_on_revoke_by_owner() {
    let s = start().await;
    let (_, secret) = new_key(&s, body_with("name", json!("victim"))).await;
    refused_create(&s, body_with("owner", json!(secret)), "owner", &secret).await;
    let (status, answer) = call(
        &client(),
        M::POST,
        format!("{}/v1/owners/{secret}/revoke", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.starts_with("owner"), "{answer}");
    assert!(!answer.to_string().contains(&secret), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_as_a_name_is_refused_naming_the_field() {
    let s = start().await;
    let (_, secret) = new_key(&s, body_with("name", json!("victim"))).await;
    refused_create(&s, body_with("name", json!(secret)), "name", &secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_metadata_is_refused_naming_the_field() {
    let s = start().await;
    let (id, secret) = new_key(&s, body_with("name", json!("victim"))).await;
    let note = format!("old one was {secret}, rotated");
    refused_create(
        &s,
        body_with("metadata", json!({"token": note})),
        "metadata.token",
        &secret,
    )
    .await;
    refused_create(
        &s,
        body_with("metadata", json!({ secret.clone(): "x" })),
        "metadata",
        &secret,
    )
    .await;
    let (status, answer) = call(
        &client(),
        M::PATCH,
        format!("{}/v1/keys/{id}", s.base),
        Some(&s.admin),
        Some(json!({"metadata": {"token": secret}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(!log_contains(&s, &secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidi_and_zero_width_characters_are_refused_in_names_owners_scopes_and_metadata() {
    let s = start().await;
    for (trick, code_point) in TRICKS {
        let spoof = format!("billing{trick}-admin");
        for (field, value, named) in [
            ("name", json!(spoof), "name"),
            ("owner", json!(spoof), "owner"),
            ("scopes", json!([format!("payments:read{trick}")]), "scopes"),
            ("metadata", json!({"team": spoof}), "metadata.team"),
        ] {
            refused_create(&s, body_with(field, value), named, &spoof).await;
        }
        let (status, answer) = call(
            &client(),
            M::POST,
            format!("{}/v1/owners/team{trick}-a/revoke", s.base),
            Some(&s.admin),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{code_point}: {answer}");
        assert!(answer["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("owner"));
    }
    // Letters of any script remain welcome.
    new_key(&s, body_with("name", json!("équipe-zürich-東京"))).await;
}

fn cli(data: &Path, args: &[&str]) -> (i32, String) {
    common::run_cli(data, args)
}

/// A fresh data directory with one key; returns the directory and that key's secret.
fn cli_ledger() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, text) = cli(&data, &["init"]);
    assert_eq!(code, 0, "{text}");
    let args = [
        "key", "create", "--name", "svc", "--env", "prod", "--owner", "team-a", "--scope", "read",
        "--json",
    ];
    let (code, text) = cli(&data, &args);
    assert_eq!(code, 0, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();
    (tmp, data, secret)
}

/// `key create` with `flag` set to `value`; asserts a refusal naming `field` that does not print `hidden`.
fn cli_refuses(data: &Path, flag: &str, value: &str, field: &str, hidden: &str) {
    let mut args = vec![
        "key", "create", "--name", "other", "--env", "prod", "--owner", "team-b", "--scope", "read",
    ];
    match args.iter().position(|a| *a == flag) {
        Some(at) => args[at + 1] = value,
        None => args.extend([flag, value]),
    }
    let (code, text) = cli(data, &args);
    assert_ne!(code, 0, "{flag}: {text}");
    assert!(text.contains(field), "{flag} names {field}: {text}");
    assert!(!text.contains(hidden), "{flag} printed the value: {text}");
}

#[test]
fn the_cli_refuses_a_secret_as_a_name_without_printing_it() {
    let (_tmp, data, secret) = cli_ledger();
    cli_refuses(&data, "--name", &secret, "name", &secret);
    cli_refuses(&data, "--owner", &secret, "owner", &secret);
    let (code, events) = cli(&data, &["events", "--from", "-1h"]);
    assert_eq!(code, 0, "{events}");
    assert!(!events.contains(&secret), "the secret reached the log");
}

#[test]
fn the_cli_refuses_bidi_and_zero_width_characters() {
    let (_tmp, data, _) = cli_ledger();
    for (trick, _) in TRICKS {
        let spoof = format!("billing{trick}-admin");
        cli_refuses(&data, "--name", &spoof, "name", &spoof);
        cli_refuses(&data, "--owner", &spoof, "owner", &spoof);
        let scope = format!("read{trick}");
        cli_refuses(&data, "--scope", &scope, "scope", &scope);
        cli_refuses(
            &data,
            "--meta",
            &format!("team={spoof}"),
            "metadata",
            &spoof,
        );
    }
}
