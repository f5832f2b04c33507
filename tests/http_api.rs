//! The HTTP API against a real server on an ephemeral loopback port: auth and scopes, every key operation's
//! success and refusal, bad input named in JSON errors, paging and export while appends continue, a revoked key
//! refused on its very next request, and the OpenAPI document covering every route.

mod common;
#[path = "common/server.rs"]
mod server;

use server::*;

use keyledger::audit::verify_export::verify_export;
use keyledger::event::Actor;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_scopes_and_the_key_lifecycle_over_http() {
    let s = start().await;
    let c = client();
    use reqwest::Method as M;
    let (status, body) = call(&c, M::GET, format!("{}/v1/keys", s.base), None, None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let (status, _) = call(
        &c,
        M::GET,
        format!("{}/v1/keys", s.base),
        Some("kl_x_notakey"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let create = json!({"name": "reader", "owner": "team", "scopes": ["ledger:read"], "environment": "prod", "ip_allowlist": ["127.0.0.0/8"]});
    let (status, reader) = call(
        &c,
        M::POST,
        format!("{}/v1/keys", s.base),
        Some(&s.admin),
        Some(create),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reader}");
    let reader_secret = reader["secret"].as_str().unwrap().to_string();
    let reader_id = reader["key"]["key_id"].as_str().unwrap().to_string();
    let (status, _) = call(
        &c,
        M::GET,
        format!("{}/v1/keys/{reader_id}", s.base),
        Some(&reader_secret),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &c,
        M::POST,
        format!("{}/v1/keys", s.base),
        Some(&reader_secret),
        Some(json!({"name": "x", "owner": "o", "scopes": ["a"], "environment": "e"})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );

    let (status, body) = call(&c, M::POST, format!("{}/v1/keys", s.base), Some(&s.admin), Some(json!({"name": "x", "owner": "o", "scopes": ["a"], "environment": "e", "colour": "red"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
    let (status, body) = call(&c, M::POST, format!("{}/v1/keys", s.base), Some(&s.admin), Some(json!({"name": "x", "owner": "o", "scopes": ["a"], "environment": "e", "ip_allowlist": ["300.1.1.1/8"]}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ip_allowlist"),
        "{body}"
    );

    let (status, body) = call(
        &c,
        M::PATCH,
        format!("{}/v1/keys/{reader_id}", s.base),
        Some(&s.admin),
        Some(json!({"environment": "dev"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("environment"));
    let (status, body) = call(
        &c,
        M::PATCH,
        format!("{}/v1/keys/{reader_id}", s.base),
        Some(&s.admin),
        Some(json!({"owner": "team-2"})),
    )
    .await;
    assert_eq!(
        (status, body["owner"].as_str()),
        (StatusCode::OK, Some("team-2"))
    );
    let (status, body) = call(
        &c,
        M::GET,
        format!("{}/v1/keys/not-a-uuid", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = call(
        &c,
        M::POST,
        format!("{}/v1/keys/{reader_id}/suspend", s.base),
        Some(&s.admin),
        Some(json!({"reason": "check"})),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("suspended"))
    );
    let (status, _) = call(
        &c,
        M::GET,
        format!("{}/v1/keys", s.base),
        Some(&reader_secret),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "suspended key refused at once"
    );
    let (status, body) = call(
        &c,
        M::POST,
        format!("{}/v1/keys/{reader_id}/reactivate", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );

    let (status, rotated) = call(
        &c,
        M::POST,
        format!("{}/v1/keys/{reader_id}/rotate", s.base),
        Some(&s.admin),
        Some(json!({"overlap_seconds": 60})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        rotated["key"]["rotated_from"].as_str(),
        Some(reader_id.as_str())
    );

    let admin_id = s
        .ledger
        .projections()
        .keys
        .by_secret_hash(&keyledger::secret::hash_secret(&s.admin))
        .unwrap()
        .key_id;
    let (status, body) = call(
        &c,
        M::DELETE,
        format!("{}/v1/keys/{admin_id}", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "cannot_revoke_own_key")
    );
    let (status, _) = call(
        &c,
        M::DELETE,
        format!("{}/v1/keys/{reader_id}", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &c,
        M::GET,
        format!("{}/v1/keys", s.base),
        Some(&reader_secret),
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "revoked"),
        "revoked key refused on its very next request"
    );

    let (status, found) = call(
        &c,
        M::POST,
        format!("{}/v1/keys/find", s.base),
        Some(&s.admin),
        Some(
            json!({"sha256": keyledger::secret::Secret::parse(&reader_secret).unwrap().hash_hex()}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["key"]["key_id"].as_str(), Some(reader_id.as_str()));
    assert!(found["history"].as_array().unwrap().len() >= 5);
    let (status, history) = call(
        &c,
        M::GET,
        format!("{}/v1/keys/{reader_id}/events", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(history["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"]["type"] == "key.revoked"));
    for path in [
        "usage?group_by=ip",
        "anomalies",
        "reports/credentials",
        "reports/rotation",
        "audit/verify",
        "audit/checkpoint",
    ] {
        let (status, body) = call(
            &c,
            M::GET,
            format!("{}/v1/{path}", s.base),
            Some(&s.admin),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, body) = call(
        &c,
        M::GET,
        format!("{}/v1/audit/verify", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!((status, body["ok"].as_bool()), (StatusCode::OK, Some(true)));
    let (status, body) = call(
        &c,
        M::GET,
        format!("{}/v1/reports/nonsense", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let (status, _) = call(&c, M::GET, format!("{}/healthz", s.base), None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_verify_and_every_answer_is_recorded() {
    let s = start().await;
    let c = client();
    use reqwest::Method as M;
    let (_, service) = call(
        &c,
        M::POST,
        format!("{}/v1/keys", s.base),
        Some(&s.admin),
        Some(
            json!({"name": "svc", "owner": "o", "scopes": ["orders:read"], "environment": "prod"}),
        ),
    )
    .await;
    let secret = service["secret"].as_str().unwrap();
    let before = s.ledger.durable_seq();
    let (status, answer) = call(
        &c,
        M::POST,
        format!("{}/v1/verify", s.base),
        Some(&s.admin),
        Some(json!({"secret": secret, "ip": "10.1.2.3", "scope": "orders:read"})),
    )
    .await;
    assert_eq!(
        (status, answer["valid"].as_bool(), answer["code"].as_str()),
        (StatusCode::OK, Some(true), Some("valid"))
    );
    assert!(
        answer["seq"].as_u64().unwrap() > before,
        "the key.used event precedes the answer"
    );
    let (_, answer) = call(
        &c,
        M::POST,
        format!("{}/v1/verify", s.base),
        Some(&s.admin),
        Some(json!({"secret": secret, "scope": "orders:write"})),
    )
    .await;
    assert_eq!(answer["code"].as_str(), Some("insufficient_scope"));
    let (status, body) = call(
        &c,
        M::POST,
        format!("{}/v1/verify", s.base),
        Some(&s.admin),
        Some(json!({"secret": secret, "ip": "ten.0.0.1"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("ip"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_and_export_stay_exact_while_appends_continue() {
    let s = start().await;
    let c = client();
    let append = |n: usize, tag: &'static str| {
        let ledger = s.ledger.clone();
        async move {
            for i in 0..n {
                let events = vec![common::used(None, &format!("{tag}-{i}"))];
                ledger
                    .submit(keyledger::ledger::AppendEvents {
                        actor: Actor::System,
                        request_id: None,
                        events,
                    })
                    .await
                    .unwrap();
            }
        }
    };
    append(300, "first").await;
    let writer = tokio::spawn(append(300, "during"));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let window_end;
    loop {
        let mut url = format!("{}/v1/events?limit=37", s.base);
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = call(&c, reqwest::Method::GET, url, Some(&s.admin), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => {
                window_end = page["window_last_seq"].as_u64().unwrap();
                break;
            }
        }
    }
    let expected: Vec<u64> = (1..=window_end).collect();
    assert_eq!(
        seen, expected,
        "every event of the window exactly once, in order"
    );
    let response = c
        .get(format!("{}/v1/audit/export", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    writer.await.unwrap();
    let check = verify_export(text.as_bytes(), s.anchor, None).unwrap();
    assert!(check.events >= 300);
    let (status, body) = call(
        &c,
        reqwest::Method::GET,
        format!("{}/v1/events?limit=5000", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let (status, body) = call(
        &c,
        reqwest::Method::GET,
        format!("{}/v1/events?from=yesterday", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("from"),
        "{body}"
    );
}

/// A sample value for each path parameter, so that a path template can be asked for.
fn sample_path(template: &str) -> String {
    template
        .replace("{id}", "0190a8f0-0000-7000-8000-000000000000")
        .replace("{owner}", "someone")
        .replace("{name}", "credentials")
        .replace("{file}", "app.js")
        .replace("{*path}", "orders/1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_and_the_router_describe_the_same_routes() {
    let doc: Value = serde_json::from_str(keyledger::api::openapi_text()).unwrap();
    let documented: HashSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    // The paths: the router's own list, less those it serves on purpose without documenting them (and those
    // are exactly the ones the route list gives no document entry).
    let routes = keyledger::api::routes();
    let served: HashSet<String> = routes
        .iter()
        .map(|route| route.path.to_string())
        .filter(|path| !keyledger::api::UNDOCUMENTED.contains(&path.as_str()))
        .collect();
    let without_entry: Vec<&str> = routes
        .iter()
        .filter(|route| route.doc.is_none())
        .map(|route| route.path)
        .collect();
    assert_eq!(without_entry, keyledger::api::UNDOCUMENTED);
    let mut missing: Vec<_> = served.difference(&documented).collect();
    let mut stale: Vec<_> = documented.difference(&served).collect();
    missing.sort();
    stale.sort();
    assert!(
        missing.is_empty(),
        "served but not in docs/openapi.json: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "in docs/openapi.json but not served: {stale:?}"
    );
    // The methods: what the running server answers a method it has no handler for (405 and its Allow header).
    let s = start().await;
    let c = client();
    let probe = reqwest::Method::from_bytes(b"PROBE").unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let mut listed: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| *m != "parameters")
            .map(|m| m.to_uppercase())
            .collect();
        let response = c
            .request(probe.clone(), format!("{}{}", s.base, sample_path(path)))
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::METHOD_NOT_ALLOWED {
            // A route for every method (forward-auth answers whatever method the gateway saw).
            assert_eq!(
                path,
                "/v1/authz",
                "{path} answered PROBE with {}",
                response.status()
            );
            continue;
        }
        let allow = response.headers()["allow"].to_str().unwrap().to_string();
        let mut answered: Vec<String> = allow
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| m != "HEAD")
            .collect();
        answered.sort();
        listed.sort();
        assert_eq!(answered, listed, "{path}: the server answers {allow}");
    }
}
