//! Key semantics over HTTP: one event per gateway verification from many hosts, project binding, PATCH with
//! null, DELETE with a reason, offboarding an owner, and the lockout and escalation refusals.

mod common;
#[path = "common/server.rs"]
mod server;

use keyledger::event::{Actor, EventData};
use reqwest::Method as M;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::*;
use std::net::IpAddr;

/// The first page of `first` gives a cursor; that cursor sent with `other` filters is refused.
async fn refuses_cursor_with_other_filters(s: &Server, first: &str, other: &str) {
    let c = client();
    let (_, page) = call(
        &c,
        M::GET,
        format!("{}{first}", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let path = first.split('?').next().unwrap_or(first);
    let url = format!("{}{path}?cursor={cursor}&{other}", s.base);
    let (status, body) = call(&c, M::GET, url, Some(&s.admin), None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "cursor_mismatch")
    );
}

/// A client whose connections come from `local` (any 127.0.0.0/8 address works on loopback).
fn client_from(local: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

fn last_event(s: &Server) -> keyledger::event::Event {
    let record = s
        .ledger
        .store()
        .get(s.ledger.durable_seq())
        .unwrap()
        .unwrap();
    keyledger::event::Event::decode(&record.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_many_hosts_records_one_event_per_call_and_keeps_working() {
    let s = start().await;
    let (gateway_id, gateway) = new_key(
        &s,
        json!({"name": "edge", "owner": "platform", "scopes": ["ledger:verify"], "environment": "keyledger"}),
    )
    .await;
    let (service_id, service) = new_key(
        &s,
        json!({"name": "svc", "owner": "o", "scopes": ["orders:read"], "environment": "prod"}),
    )
    .await;
    for round in 0..3 {
        for host in 2..=9u8 {
            let c = client_from(IpAddr::from([127, 0, 0, host]));
            let before = s.ledger.durable_seq();
            let (status, answer) = call(
                &c,
                M::POST,
                format!("{}/v1/verify", s.base),
                Some(&gateway),
                Some(json!({"secret": service, "ip": "203.0.113.9", "scope": "orders:read"})),
            )
            .await;
            assert_eq!(
                (status, answer["code"].as_str()),
                (StatusCode::OK, Some("valid")),
                "round {round}, host {host}: {answer}"
            );
            let after = s.ledger.durable_seq();
            assert_eq!(after, before + 1, "exactly one event per verification");
            let event = last_event(&s);
            assert_eq!(
                event.actor.key_id().map(|k| k.to_string()),
                Some(gateway_id.clone())
            );
            match event.data {
                EventData::KeyUsed(used) => {
                    assert_eq!(used.key_id.map(|k| k.to_string()), Some(service_id.clone()));
                    assert_eq!(used.ip.as_deref(), Some("203.0.113.9"));
                    assert_eq!(used.gateway_ip, Some(format!("127.0.0.{host}")));
                }
                other => panic!("expected key.used, got {other:?}"),
            }
        }
    }
    let gateway_key = s
        .ledger
        .projections()
        .keys
        .get(&gateway_id.parse().unwrap())
        .cloned()
        .unwrap();
    assert_eq!(
        gateway_key.last_used_ip.as_deref(),
        Some("127.0.0.9"),
        "the gateway's own use is on the record"
    );
    // The same from the log alone (what `key show`, `key list` and `?as_of=` read): the by-key index names the
    // gateway on the uses it asked about.
    let (past, _) = keyledger::ledger::keys_as_of(
        s.ledger.store().as_ref(),
        s.ledger.now(),
        s.ledger.durable_seq(),
    )
    .unwrap();
    let gateway_uuid = gateway_id.parse().unwrap();
    assert_eq!(
        past.get(&gateway_uuid).unwrap().last_used_ip.as_deref(),
        Some("127.0.0.9")
    );
    let history = keyledger::keys::key_history(
        s.ledger.store().as_ref(),
        gateway_uuid,
        s.ledger.durable_seq(),
    )
    .unwrap();
    assert_eq!(
        history
            .iter()
            .filter(|e| e.type_name() == "key.used")
            .count(),
        24,
        "every call it made"
    );
    // The gateway key's own rate limit holds, counted from the same single events.
    let (limited_id, limited) = new_key(
        &s,
        json!({"name": "edge-2", "owner": "platform", "scopes": ["ledger:verify"], "environment": "keyledger", "rate_limit_per_minute": 3}),
    )
    .await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let (status, _) = call(
            &client(),
            M::POST,
            format!("{}/v1/verify", s.base),
            Some(&limited),
            Some(json!({"secret": service})),
        )
        .await;
        codes.push(status.as_u16());
    }
    assert_eq!(codes, vec![200, 200, 200, 429], "{limited_id}");
    let response = client()
        .post(format!("{}/v1/verify", s.base))
        .bearer_auth(&limited)
        .json(&json!({"secret": service}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // A refused gateway is recorded as its own use, and nothing is verified.
    let (status, body) = call(
        &client(),
        M::POST,
        format!("{}/v1/verify", s.base),
        Some(&service),
        Some(json!({"secret": service})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    match last_event(&s).data {
        EventData::KeyUsed(used) => {
            assert_eq!(used.key_id.map(|k| k.to_string()), Some(service_id));
            assert_eq!(used.scope.as_deref(), Some("ledger:verify"));
            assert_eq!(last_event(&s).actor, Actor::System);
        }
        other => panic!("expected key.used, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_over_http_are_enforced_on_the_next_verification() {
    let s = start().await;
    let c = client();
    let (id, secret) = new_key(
        &s,
        json!({"name": "svc", "owner": "o", "scopes": ["orders:read"], "environment": "prod",
               "ip_allowlist": ["10.0.0.0/8"], "project_ids": ["shop"], "rate_limit_per_minute": 100,
               "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let verify = |body: Value| {
        let c = c.clone();
        let url = format!("{}/v1/verify", s.base);
        let admin = s.admin.clone();
        async move {
            call(&c, M::POST, url, Some(&admin), Some(body)).await.1["code"]
                .as_str()
                .unwrap_or("")
                .to_string()
        }
    };
    assert_eq!(
        verify(json!({"secret": secret, "ip": "10.2.0.1", "project": "shop"})).await,
        "valid"
    );
    assert_eq!(
        verify(json!({"secret": secret, "ip": "10.2.0.1"})).await,
        "project_not_allowed"
    );
    assert_eq!(
        verify(json!({"secret": secret, "ip": "10.2.0.1", "project": "blog"})).await,
        "project_not_allowed"
    );
    let (status, key) = call(
        &c,
        M::PATCH,
        format!("{}/v1/keys/{id}", s.base),
        Some(&s.admin),
        Some(json!({"ip_allowlist": ["10.1.0.0/16"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert_eq!(
        verify(json!({"secret": secret, "ip": "10.2.0.1", "project": "shop"})).await,
        "ip_not_allowed"
    );
    let (status, key) = call(
        &c,
        M::PATCH,
        format!("{}/v1/keys/{id}", s.base),
        Some(&s.admin),
        Some(json!({"ip_allowlist": null, "project_ids": null, "expires_at": null, "rate_limit_per_minute": null, "description": "cleared"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    for field in [
        "ip_allowlist",
        "project_ids",
        "expires_at",
        "rate_limit_per_minute",
    ] {
        assert!(key.get(field).is_none(), "{field} cleared: {key}");
    }
    assert_eq!(
        verify(json!({"secret": secret, "ip": "192.0.2.1"})).await,
        "valid"
    );
    for (body, field) in [
        (json!({"owner": null}), "owner"),
        (json!({"scopes": null}), "scopes"),
        (json!({"name": "x"}), "name"),
        (json!({"environment": null}), "environment"),
    ] {
        let (status, error) = call(
            &c,
            M::PATCH,
            format!("{}/v1/keys/{id}", s.base),
            Some(&s.admin),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(field),
            "{body}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_keeps_the_reason_and_owners_are_offboarded_in_one_request() {
    let s = start().await;
    let c = client();
    let (id, _) = new_key(
        &s,
        json!({"name": "a", "owner": "mallory", "scopes": ["read"], "environment": "prod"}),
    )
    .await;
    let (status, key) = call(
        &c,
        M::DELETE,
        format!("{}/v1/keys/{id}?reason=rotated%20out", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(
        (status, key["status_reason"].as_str()),
        (StatusCode::OK, Some("rotated out"))
    );
    let (id, _) = new_key(
        &s,
        json!({"name": "b", "owner": "mallory", "scopes": ["read"], "environment": "prod"}),
    )
    .await;
    let (status, key) = call(
        &c,
        M::DELETE,
        format!("{}/v1/keys/{id}", s.base),
        Some(&s.admin),
        Some(json!({"reason": "leaked"})),
    )
    .await;
    assert_eq!(
        (status, key["status_reason"].as_str()),
        (StatusCode::OK, Some("leaked"))
    );
    new_key(
        &s,
        json!({"name": "c", "owner": "mallory", "scopes": ["read"], "environment": "prod"}),
    )
    .await;
    new_key(
        &s,
        json!({"name": "d", "owner": "mallory", "scopes": ["read"], "environment": "staging"}),
    )
    .await;
    let (status, answer) = call(
        &c,
        M::POST,
        format!("{}/v1/owners/mallory/revoke", s.base),
        Some(&s.admin),
        Some(json!({"reason": "left the company"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let revoked = answer["revoked"].as_array().unwrap();
    assert_eq!(revoked.len(), 2, "{answer}");
    assert!(revoked
        .iter()
        .all(|k| k["status"] == "revoked" && k["status_reason"] == "left the company"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_lock_itself_out_or_mint_more_than_it_holds_over_http() {
    let s = start().await;
    let c = client();
    let admin_id = {
        let (_, me) = call(
            &c,
            M::POST,
            format!("{}/v1/keys/find", s.base),
            Some(&s.admin),
            Some(json!({"secret": s.admin})),
        )
        .await;
        me["key"]["key_id"].as_str().unwrap().to_string()
    };
    let (status, body) = call(
        &c,
        M::POST,
        format!("{}/v1/keys/{admin_id}/suspend", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "cannot_suspend_own_key")
    );
    // Found by schemathesis: rotating its own key without an overlap retired the caller's credential at once.
    for overlap in [0, 3600] {
        let (status, body) = call(
            &c,
            M::POST,
            format!("{}/v1/keys/{admin_id}/rotate", s.base),
            Some(&s.admin),
            Some(json!({ "overlap_seconds": overlap })),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::CONFLICT, "cannot_rotate_own_key")
        );
    }
    let (status, body) = call(
        &c,
        M::PATCH,
        format!("{}/v1/keys/{admin_id}", s.base),
        Some(&s.admin),
        Some(json!({"scopes": ["ledger:read"]})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "cannot_remove_own_admin")
    );
    let (status, body) = call(
        &c,
        M::POST,
        format!("{}/v1/keys", s.base),
        Some(&s.admin),
        Some(json!({"name": "god", "owner": "o", "scopes": ["*"], "environment": "prod"})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "scope_not_held")
    );
    let (status, body) = call(&c, M::POST, format!("{}/v1/keys", s.base), Some(&s.admin),
        Some(json!({"name": "exp", "owner": "o", "scopes": ["experiments.*"], "environment": "prod"}))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request"),
        "{body}"
    );
    new_key(
        &s,
        json!({"name": "dup", "owner": "o", "scopes": ["read"], "environment": "prod"}),
    )
    .await;
    let (status, body) = call(
        &c,
        M::POST,
        format!("{}/v1/keys", s.base),
        Some(&s.admin),
        Some(json!({"name": "dup", "owner": "o", "scopes": ["read"], "environment": "prod"})),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "name_taken"));
    // Still an administrator after all of that.
    let (status, _) = call(
        &c,
        M::GET,
        format!("{}/v1/keys", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id_no_store_and_json_errors() {
    let s = start().await;
    let c = client();
    let health = c
        .get(format!("{}/healthz", s.base))
        .header("x-request-id", "probe-1")
        .send()
        .await
        .unwrap();
    assert_eq!(health.headers()["x-request-id"], "probe-1");
    assert_eq!(health.headers()["cache-control"], "no-store");
    let denied = c.get(format!("{}/v1/keys", s.base)).send().await.unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert!(denied.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let generated = denied.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!generated.is_empty());
    for (method, path, status, error) in [
        (
            M::PUT,
            "/v1/keys",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            M::GET,
            "/v1/nothing-here",
            StatusCode::NOT_FOUND,
            "no_route",
        ),
    ] {
        let response = c
            .request(method, format!("{}{path}", s.base))
            .bearer_auth(&s.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), error, "{body}");
    }
    // The request id a caller sends is the one recorded with its key use.
    let (status, _) = {
        let response = c
            .get(format!("{}/v1/keys", s.base))
            .bearer_auth(&s.admin)
            .header("x-request-id", "trace-77")
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.headers()["x-request-id"].clone(),
        )
    };
    assert_eq!(status, StatusCode::OK);
    assert_eq!(last_event(&s).request_id.as_deref(), Some("trace-77"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_carries_its_query_and_refuses_other_filters() {
    let s = start().await;
    let c = client();
    let (mine, my_secret) = new_key(
        &s,
        json!({"name": "mine", "owner": "o", "scopes": ["read"], "environment": "prod"}),
    )
    .await;
    let (_, other_secret) = new_key(
        &s,
        json!({"name": "other", "owner": "o", "scopes": ["read"], "environment": "prod"}),
    )
    .await;
    for _ in 0..6 {
        for secret in [&my_secret, &other_secret] {
            call(
                &c,
                M::POST,
                format!("{}/v1/verify", s.base),
                Some(&s.admin),
                Some(json!({"secret": secret})),
            )
            .await;
        }
    }
    let mut url = format!("{}/v1/events?key_id={mine}&type=key.used&limit=2", s.base);
    let mut seen = 0;
    loop {
        let (status, page) = call(&c, M::GET, url.clone(), Some(&s.admin), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["events"].as_array().unwrap() {
            let event: Value = item["event"].clone();
            assert_eq!(
                event["data"]["key_id"],
                mine.as_str(),
                "only the filtered key on every page: {event}"
            );
            seen += 1;
        }
        match page["next_cursor"].as_str() {
            // The next page with the cursor alone, as the docs show.
            Some(cursor) => url = format!("{}/v1/events?cursor={cursor}", s.base),
            None => break,
        }
    }
    assert_eq!(seen, 6);
    // A key's history has the same shape and paging.
    let mut url = format!("{}/v1/keys/{mine}/events?limit=3", s.base);
    let mut history = 0;
    loop {
        let (status, page) = call(&c, M::GET, url.clone(), Some(&s.admin), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["key_id"], mine.as_str());
        history += page["events"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{}/v1/keys/{mine}/events?cursor={cursor}", s.base),
            None => break,
        }
    }
    assert_eq!(history, 7, "key.created and six uses");
    refuses_cursor_with_other_filters(
        &s,
        &format!("/v1/events?key_id={mine}&limit=2"),
        "type=key.created",
    )
    .await;
    for bad in ["ip=999.1.1.1", "actor=key:bad", "cursor=1.2"] {
        let (status, body) = call(
            &c,
            M::GET,
            format!("{}/v1/events?{bad}", s.base),
            Some(&s.admin),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_that_could_never_be_right_are_refused_by_name() {
    let s = start().await;
    let c = client();
    let (id, secret) = new_key(
        &s,
        json!({"name": "svc", "owner": "o", "scopes": ["read"], "environment": "prod"}),
    )
    .await;
    for (method, path, body, field) in [
        (
            M::GET,
            "/v1/reports/stale?days=-1".to_string(),
            None,
            "days",
        ),
        (
            M::GET,
            "/v1/reports/credentials?format=xml".to_string(),
            None,
            "format",
        ),
        (
            M::POST,
            "/v1/keys/find".to_string(),
            Some(json!({"secret": secret, "sha256": "ab"})),
            "secret",
        ),
        (
            M::PATCH,
            format!("/v1/keys/{id}"),
            Some(json!({"ip_allowlist": ["10.0.0.1/8"]})),
            "ip_allowlist",
        ),
        (
            M::POST,
            "/v1/verify".to_string(),
            Some(json!({"secret": secret, "user_agent": "u".repeat(600)})),
            "user_agent",
        ),
        (M::GET, "/v1/events?from=-soon".to_string(), None, "from"),
    ] {
        let (status, error) = call(
            &c,
            method,
            format!("{}{path}", s.base),
            Some(&s.admin),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap_or("")
                .starts_with(field),
            "{path}: {error}"
        );
    }
    let (status, page) = call(
        &c,
        M::GET,
        format!("{}/v1/events?from=-1h&to=now", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        !page["events"].as_array().unwrap().is_empty(),
        "relative times cover what just happened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_read_after_auth_and_errors_never_echo_a_secret() {
    let s = start().await;
    let c = client();
    let (id, secret) = new_key(
        &s,
        json!({"name": "svc", "owner": "o", "scopes": ["read"], "environment": "prod"}),
    )
    .await;
    // No key: 401 whatever the body, before it is looked at.
    let response = c
        .post(format!("{}/v1/keys/{id}/rotate", s.base))
        .body("{not json")
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = c
        .post(format!("{}/v1/keys/find", s.base))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "find, whose scope depends on its body, still authenticates first"
    );
    let response = c
        .post(format!("{}/v1/keys/{id}/rotate", s.base))
        .bearer_auth(&s.admin)
        .json(&json!([1]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "an array is not a rotate body"
    );
    let response = c
        .post(format!("{}/v1/keys/{id}/suspend", s.base))
        .bearer_auth(&s.admin)
        .body("{\"reason\":\"x\"}")
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "unsupported_media_type");
    for body in [
        json!({"secret": secret, "ip": secret}),
        json!({"secret": 5, "ip": secret}),
        json!({"secret": [secret]}),
    ] {
        let (status, error) = call(
            &c,
            M::POST,
            format!("{}/v1/verify", s.base),
            Some(&s.admin),
            Some(body),
        )
        .await;
        assert!(status.is_client_error(), "{error}");
        assert!(
            !error.to_string().contains(&secret),
            "the secret is not echoed: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default_and_allows_only_configured_origins() {
    let plain = start().await;
    let c = client();
    let response = c
        .get(format!("{}/v1/keys", plain.base))
        .bearer_auth(&plain.admin)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!response
        .headers()
        .contains_key("access-control-allow-origin"));
    let s = start_with_config("[http]\ncors_origins = [\"https://console.example\"]\n").await;
    let preflight = c
        .request(M::OPTIONS, format!("{}/v1/keys", s.base))
        .header("origin", "https://console.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://console.example"
    );
    let other = c
        .get(format!("{}/v1/keys", s.base))
        .bearer_auth(&s.admin)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    let allowed = c
        .get(format!("{}/v1/keys", s.base))
        .bearer_auth(&s.admin)
        .header("origin", "https://console.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://console.example"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_in_pages_that_keep_their_filters() {
    let s = start().await;
    let c = client();
    for i in 0..5 {
        new_key(&s, json!({"name": format!("p{i}"), "owner": "o", "scopes": ["read"], "environment": "prod"})).await;
        new_key(&s, json!({"name": format!("s{i}"), "owner": "o", "scopes": ["read"], "environment": "staging"})).await;
    }
    let mut url = format!("{}/v1/keys?environment=prod&limit=2", s.base);
    let mut names = Vec::new();
    loop {
        let (status, page) = call(&c, M::GET, url.clone(), Some(&s.admin), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let keys = page["keys"].as_array().unwrap();
        assert!(keys.len() <= 2);
        names.extend(keys.iter().map(|k| k["name"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{}/v1/keys?cursor={cursor}", s.base),
            None => break,
        }
    }
    assert_eq!(
        names,
        vec!["p0", "p1", "p2", "p3", "p4"],
        "oldest first, filter kept, nothing repeated"
    );
    refuses_cursor_with_other_filters(
        &s,
        "/v1/keys?environment=prod&limit=2",
        "environment=staging",
    )
    .await;
    let (status, _) = call(
        &c,
        M::GET,
        format!("{}/v1/keys?limit=0", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_answers_carry_the_presented_keys_rate_limit() {
    let s = start().await;
    let c = client();
    let (_, secret) = new_key(&s, json!({"name": "metered", "owner": "o", "scopes": ["read"], "environment": "prod", "rate_limit_per_minute": 3})).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = c
            .post(format!("{}/v1/verify", s.base))
            .bearer_auth(&s.admin)
            .json(&json!({"secret": secret}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let (limit, remaining, retry) = (
            header("ratelimit-limit"),
            header("ratelimit-remaining"),
            header("retry-after"),
        );
        let body: Value = response.json().await.unwrap();
        seen.push((
            body["code"].as_str().unwrap().to_string(),
            limit,
            remaining,
            retry.is_some(),
        ));
    }
    let three = Some("3".to_string());
    assert_eq!(
        seen,
        vec![
            ("valid".into(), three.clone(), Some("2".into()), false),
            ("valid".into(), three.clone(), Some("1".into()), false),
            ("valid".into(), three.clone(), Some("0".into()), false),
            ("rate_limited".into(), three, Some("0".into()), true),
        ]
    );
}
