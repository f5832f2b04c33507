//! `Idempotency-Key` on POSTs: a retried create or verification is answered from the first attempt (also after
//! a restart) without acting twice, a reused key with another body is a 422, and no secret reaches the disk.

#[path = "common/server.rs"]
mod server;

use keyledger::clock::ManualClock;
use keyledger::time::LedgerTime;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::*;

async fn post(
    s: &Server,
    path: &str,
    key: &str,
    idempotency: Option<&str>,
    body: &Value,
) -> (StatusCode, Option<String>, Value) {
    let mut request = client()
        .post(format!("{}{path}", s.base))
        .bearer_auth(key)
        .json(body);
    if let Some(idempotency) = idempotency {
        request = request.header("Idempotency-Key", idempotency);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_string());
    (status, replayed, response.json().await.unwrap())
}

fn create_body(name: &str) -> Value {
    json!({ "name": name, "owner": "team-a", "environment": "production", "scopes": ["payments:read"] })
}

/// A second admin key: (secret, id).
async fn another_admin(s: &Server, name: &str) -> (String, String) {
    let body = json!({ "name": name, "owner": "ops", "environment": "keyledger", "scopes": ["ledger:admin"] });
    let (_, _, created) = post(s, "/v1/keys", &s.admin, None, &body).await;
    let id = created["key"]["key_id"].as_str().unwrap().to_string();
    (created["secret"].as_str().unwrap().to_string(), id)
}

fn live_keys(s: &Server) -> usize {
    s.ledger.projections().keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_create_sent_twice_makes_one_key_and_answers_the_same() {
    let s = start().await;
    let before = live_keys(&s);
    let body = create_body("billing");
    let (first, replayed, one) = post(&s, "/v1/keys", &s.admin, Some("create-1"), &body).await;
    assert_eq!((first, replayed), (StatusCode::CREATED, None), "{one}");
    let (again, replayed, two) = post(&s, "/v1/keys", &s.admin, Some("create-1"), &body).await;
    assert_eq!(again, StatusCode::CREATED, "{two}");
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(one, two, "the replay is the first answer, secret included");
    assert_eq!(live_keys(&s), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_header_two_creates_make_two_keys() {
    let s = start().await;
    let before = live_keys(&s);
    post(&s, "/v1/keys", &s.admin, None, &create_body("a")).await;
    post(&s, "/v1/keys", &s.admin, None, &create_body("b")).await;
    assert_eq!(live_keys(&s), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_with_another_body_is_a_422() {
    let s = start().await;
    post(&s, "/v1/keys", &s.admin, Some("k"), &create_body("one")).await;
    let (status, _, body) = post(&s, "/v1/keys", &s.admin, Some("k"), &create_body("two")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_is_not_remembered_and_may_be_retried() {
    let s = start().await;
    let bad = json!({ "name": "", "owner": "team-a", "scopes": ["a:b"] });
    let (status, _, _) = post(&s, "/v1/keys", &s.admin, Some("retry"), &bad).await;
    assert!(status.is_client_error(), "{status}");
    let (status, replayed, body) = post(
        &s,
        "/v1/keys",
        &s.admin,
        Some("retry"),
        &create_body("fixed"),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, None), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_replayed_after_a_restart_and_the_disk_never_holds_the_secret() {
    let s = start().await;
    let body = create_body("survivor");
    let (_, _, first) = post(&s, "/v1/keys", &s.admin, Some("across-restart"), &body).await;
    let secret = first["secret"].as_str().unwrap().to_string();
    let s = s.restart().await;
    let before = live_keys(&s);
    let (status, replayed, again) =
        post(&s, "/v1/keys", &s.admin, Some("across-restart"), &body).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::CREATED, Some("true"))
    );
    assert_eq!(again["secret"], secret.as_str());
    assert_eq!(live_keys(&s), before);
    for entry in s.ledger.store().scan_side(b"idem/") {
        let (_, bytes) = entry.unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&secret) && !text.contains("kl_"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_caller_with_the_same_idempotency_key_acts_for_itself() {
    let s = start().await;
    let (other_admin, _) = another_admin(&s, "second-admin").await;
    let body = create_body("shared-name-a");
    post(&s, "/v1/keys", &s.admin, Some("same"), &body).await;
    let (status, replayed, _) = post(
        &s,
        "/v1/keys",
        &other_admin,
        Some("same"),
        &create_body("shared-name-b"),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_caller_cannot_fetch_its_earlier_answer() {
    let s = start().await;
    let (temp, temp_id) = another_admin(&s, "temp-admin").await;
    let body = create_body("made-by-temp");
    let (status, _, _) = post(&s, "/v1/keys", &temp, Some("mine"), &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let revoked = client()
        .delete(format!("{}/v1/keys/{temp_id}", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    let (status, _, answer) = post(&s, "/v1/keys", &temp, Some("mine"), &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(answer.get("secret").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_retried_with_its_key_is_recorded_once() {
    let s = start().await;
    let (_, _, created) = post(&s, "/v1/keys", &s.admin, None, &create_body("svc")).await;
    let secret = created["secret"].as_str().unwrap();
    let body = json!({ "secret": secret, "scope": "payments:read", "ip": "10.0.0.1" });
    let head = s.ledger.durable_seq();
    let (_, _, first) = post(&s, "/v1/verify", &s.admin, Some("v-1"), &body).await;
    let after_first = s.ledger.durable_seq();
    let (_, replayed, again) = post(&s, "/v1/verify", &s.admin, Some("v-1"), &body).await;
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(first, again);
    assert_eq!(after_first, head + 1, "one key.used for the verification");
    // The replay authenticates the gateway (one recorded use) but does not verify the key again.
    assert_eq!(s.ledger.durable_seq(), after_first + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_kept_for_24_hours_then_the_request_runs_again() {
    let clock = ManualClock::starting_at(LedgerTime::parse("2026-11-24T02:10:00Z").unwrap());
    let s = start_clocked(clock.clone()).await;
    let body = create_body("daily");
    post(&s, "/v1/keys", &s.admin, Some("day"), &body).await;
    clock.advance_secs(23 * 3600);
    let (_, replayed, _) = post(&s, "/v1/keys", &s.admin, Some("day"), &body).await;
    assert_eq!(replayed.as_deref(), Some("true"));
    clock.advance_secs(3600);
    assert_eq!(
        keyledger::api::idempotency::purge_expired(&s.ledger).unwrap(),
        1
    );
    let (status, replayed, answer) = post(&s, "/v1/keys", &s.admin, Some("day"), &body).await;
    // The name is taken by the first key now: the request ran again and was judged afresh.
    assert_eq!((status, replayed), (StatusCode::CONFLICT, None), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_idempotency_key_is_a_400_naming_the_header() {
    let s = start().await;
    let long = "x".repeat(256);
    let (status, _, body) = post(&s, "/v1/keys", &s.admin, Some(&long), &create_body("x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_with_a_space_is_a_400_naming_the_header() {
    let s = start().await;
    let before = live_keys(&s);
    // docs/API.md: visible ASCII only. A space inside is not visible (leading and trailing ones are not sent).
    let spaced = "create billing";
    let (status, _, body) = post(&s, "/v1/keys", &s.admin, Some(spaced), &create_body("sp")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Idempotency-Key"), "{body}");
    assert_eq!(live_keys(&s), before, "nothing was created");
}
