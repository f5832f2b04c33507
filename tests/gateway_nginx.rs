//! Forward-auth (issue 17): Debian's nginx runs docs/GATEWAYS.md's configuration with `auth_request` to a served
//! ledger and a small upstream. Clients connect from 127.0.0.3, so that the proxy (127.0.0.1, trusted) and the
//! client are different addresses. Without nginx the proxy test says it was skipped and why.

#[path = "common/server.rs"]
mod server;
#[path = "common/skip.rs"]
mod skip;

use keyledger::cli::demo::nginx;
use reqwest::{Method as M, StatusCode};
use serde_json::{json, Value};
use server::{call, client, new_key, start_with_config, Server};
use std::net::{IpAddr, SocketAddr};

const AUTHZ_TOML: &str = r#"
[authz]
trusted_proxies = ["127.0.0.1"]

[[authz.routes]]
methods = ["GET", "HEAD"]
path = "/orders/**"
scope = "orders:read"

[[authz.routes]]
path = "/orders/**"
scope = "orders:write"
"#;

const CLIENT_ADDRESS: &str = "127.0.0.3";

/// A client whose connections come from 127.0.0.3.
fn outside_client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(CLIENT_ADDRESS.parse::<IpAddr>().ok())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn key(s: &Server, name: &str, extra: Value) -> (String, String) {
    let mut body = json!({"name": name, "owner": "team-orders", "scopes": ["orders:read"], "environment": "production"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    new_key(s, body).await
}

async fn gateway_key(s: &Server) -> (String, String) {
    new_key(
        s,
        json!({"name": "nginx-edge", "owner": "platform", "scopes": ["ledger:verify"], "environment": "keyledger"}),
    )
    .await
}

fn address(s: &Server) -> SocketAddr {
    s.base
        .trim_start_matches("http://")
        .parse()
        .expect("server address")
}

/// Every `key.used` event that records a forwarded request (it has a path), oldest first.
async fn forwarded_uses(s: &Server) -> Vec<Value> {
    let (status, page) = call(
        &client(),
        M::GET,
        format!("{}/v1/events?type=key.used&limit=1000", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|page| page["event"].clone())
        .filter(|e| e["data"]["path"].is_string())
        .collect()
}

async fn get(c: &reqwest::Client, url: String, key: Option<&str>) -> reqwest::Response {
    let mut request = c.get(url);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.send().await.expect("request")
}

fn code_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-keyledger-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_lets_valid_keys_through_and_records_every_request() {
    let Some(binary) = nginx::find_binary() else {
        skip::skip(
            "nginx",
            "nginx is not installed (Debian: apt-get install nginx-light); .ci/run installs it",
        );
        return;
    };
    let s = start_with_config(AUTHZ_TOML).await;
    let (gateway_id, gateway_secret) = gateway_key(&s).await;
    let (reader_id, reader) = key(&s, "orders-reader", json!({})).await;
    let (_, reports) = key(&s, "reporter", json!({"scopes": ["reports:read"]})).await;
    let (_, metered) = key(&s, "metered", json!({"rate_limit_per_minute": 2})).await;
    let (_, internal) = key(&s, "internal", json!({"ip_allowlist": ["10.0.0.0/8"]})).await;
    let (upstream, seen) = nginx::echo_upstream().await.unwrap();
    let proxy = nginx::Nginx::start(&binary, address(&s), upstream, &gateway_secret, "").unwrap();
    let c = outside_client();
    let base = proxy.base();

    // A valid key reaches the service, which learns who called and never sees the secret.
    let ok = get(
        &c,
        format!("{base}/orders/17?token=not-recorded"),
        Some(&reader),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK, "{}", proxy.error_log());
    assert_eq!(code_of(&ok), "valid");
    assert_eq!(ok.text().await.unwrap(), "upstream ok");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let h = &seen[0];
        let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(header("x-keyledger-key-id"), reader_id);
        assert_eq!(header("x-keyledger-key-name"), "orders-reader");
        assert_eq!(header("x-keyledger-owner"), "team-orders");
        assert_eq!(header("x-keyledger-environment"), "production");
        assert_eq!(header("x-keyledger-scopes"), "orders:read");
        assert!(h.get("x-api-key").is_none() && h.get("authorization").is_none());
    }
    // The route rules ask orders:write for a POST: 403, and the service is not reached.
    let post = c
        .post(format!("{base}/orders/17"))
        .header("x-api-key", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
    assert_eq!(code_of(&post), "insufficient_scope");
    // A location naming its scope with X-Keyledger-Scope.
    let report = get(&c, format!("{base}/reports/daily"), Some(&reports)).await;
    assert_eq!(report.status(), StatusCode::OK, "{}", proxy.error_log());
    let wrong = get(&c, format!("{base}/reports/daily"), Some(&reader)).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // No key at all.
    let anonymous = get(&c, format!("{base}/orders/17"), None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "only the two allowed requests"
    );

    // Revoked on the ledger: the very next proxied request is refused.
    let (status, body) = call(
        &client(),
        M::DELETE,
        format!("{}/v1/keys/{reader_id}", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let revoked = get(&c, format!("{base}/orders/17"), Some(&reader)).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&revoked), "revoked");

    // Rate limited: 429 with Retry-After, through nginx's error_page.
    for _ in 0..2 {
        let allowed = get(&c, format!("{base}/orders/1"), Some(&metered)).await;
        assert_eq!(allowed.status(), StatusCode::OK);
    }
    let limited = get(&c, format!("{base}/orders/1"), Some(&metered)).await;
    assert_eq!(
        limited.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        proxy.error_log()
    );
    assert_eq!(code_of(&limited), "rate_limited");
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");

    // A client forging X-Forwarded-For does not pass an allowlist for the forged network.
    let forged = c
        .get(format!("{base}/orders/1"))
        .header("x-api-key", &internal)
        .header("x-forwarded-for", "10.1.1.1")
        .header("x-real-ip", "10.1.1.1")
        .header("forwarded", "for=10.1.1.1")
        .header("x-forwarded-uri", "/public")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(code_of(&forged), "ip_not_allowed");

    // Every proxied request is one event, with the client's address, the original method and path (no query),
    // and the gateway's key as the actor.
    let uses = forwarded_uses(&s).await;
    let requests: Vec<(&str, &str)> = uses
        .iter()
        .map(|e| {
            (
                e["data"]["method"].as_str().unwrap(),
                e["data"]["path"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        requests,
        [
            ("GET", "/orders/17"),
            ("POST", "/orders/17"),
            ("GET", "/reports/daily"),
            ("GET", "/reports/daily"),
            ("GET", "/orders/17"),
            ("GET", "/orders/17"),
            ("GET", "/orders/1"),
            ("GET", "/orders/1"),
            ("GET", "/orders/1"),
            ("GET", "/orders/1"),
        ]
    );
    for event in &uses {
        assert_eq!(event["data"]["ip"], CLIENT_ADDRESS, "{event}");
        assert_eq!(event["actor"]["key_id"], gateway_id.as_str(), "{event}");
        assert_eq!(event["data"]["gateway_ip"], "127.0.0.1", "{event}");
    }
    let outcomes: Vec<&str> = uses
        .iter()
        .map(|e| e["data"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "valid",
            "insufficient_scope",
            "valid",
            "insufficient_scope",
            "bad_format",
            "revoked",
            "valid",
            "valid",
            "rate_limited",
            "ip_not_allowed"
        ]
    );
    let text = serde_json::to_string(&uses).unwrap();
    for secret in [&reader, &reports, &metered, &internal, &gateway_secret] {
        assert!(!text.contains(secret.as_str()), "a secret in the log");
    }
}

/// Straight to `/v1/authz` without nginx: forwarding headers from an untrusted peer are ignored, Envoy's
/// path-prefix style names the original request, conflicting headers are refused, and the gateway's own key is
/// required and checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_trusts_forwarding_headers_only_from_configured_proxies() {
    let s = start_with_config(AUTHZ_TOML).await;
    let (_, gateway) = gateway_key(&s).await;
    let (_, reader) = key(&s, "orders-reader", json!({})).await;
    let (_, internal) = key(&s, "internal", json!({"ip_allowlist": ["10.0.0.0/8"]})).await;
    let outside = outside_client();
    let authz = |c: &reqwest::Client, method: M, path: &str| {
        c.request(method, format!("{}{path}", s.base))
            .header("x-keyledger-gateway-key", &gateway)
    };

    // An untrusted peer (127.0.0.3) claiming to be 10.1.1.1 and to ask for /public: neither is believed.
    let untrusted = authz(&outside, M::GET, "/v1/authz")
        .header("x-api-key", &internal)
        .header("x-forwarded-for", "10.1.1.1")
        .header("x-forwarded-uri", "/orders/5")
        .send()
        .await
        .unwrap();
    assert_eq!(untrusted.status(), StatusCode::FORBIDDEN);
    assert_eq!(code_of(&untrusted), "ip_not_allowed");
    // Envoy style: the original method and path follow /v1/authz.
    let envoy = authz(&outside, M::DELETE, "/v1/authz/orders/5?x=1")
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(
        envoy.status(),
        StatusCode::FORBIDDEN,
        "DELETE needs orders:write"
    );
    let envoy_read = authz(&outside, M::GET, "/v1/authz/orders/5")
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(envoy_read.status(), StatusCode::OK);
    assert!(envoy_read.headers().contains_key("x-keyledger-key-id"));
    // From the trusted proxy address the headers are believed, and must agree.
    let local = client();
    let trusted = authz(&local, M::GET, "/v1/authz")
        .header("x-api-key", &internal)
        .header("x-forwarded-for", "198.51.100.1, 10.1.1.1")
        .header("x-original-uri", "/orders/9")
        .send()
        .await
        .unwrap();
    assert_eq!(trusted.status(), StatusCode::OK);
    let conflicting = authz(&local, M::GET, "/v1/authz")
        .header("x-api-key", &reader)
        .header("x-original-uri", "/orders/9")
        .header("x-forwarded-uri", "/public")
        .send()
        .await
        .unwrap();
    assert_eq!(conflicting.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code_of(&conflicting), "ambiguous_request");

    let uses = forwarded_uses(&s).await;
    let recorded: Vec<(&str, &str, &str)> = uses
        .iter()
        .map(|e| {
            (
                e["data"]["ip"].as_str().unwrap(),
                e["data"]["method"].as_str().unwrap(),
                e["data"]["path"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            (CLIENT_ADDRESS, "GET", "/"),
            (CLIENT_ADDRESS, "DELETE", "/orders/5"),
            (CLIENT_ADDRESS, "GET", "/orders/5"),
            ("10.1.1.1", "GET", "/orders/9"),
        ]
    );

    // The gateway must identify itself with a ledger:verify key.
    let anonymous_gateway = local
        .get(format!("{}/v1/authz", s.base))
        .header("x-api-key", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous_gateway.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code_of(&anonymous_gateway), "gateway_unauthenticated");
    let not_a_gateway = local
        .get(format!("{}/v1/authz", s.base))
        .header("x-keyledger-gateway-key", &reader)
        .header("x-api-key", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_gateway.status(), StatusCode::FORBIDDEN);
    assert_eq!(code_of(&not_a_gateway), "gateway_insufficient_scope");
    let body: Value = not_a_gateway.json().await.unwrap();
    assert!(!body.to_string().contains(&reader));
}

/// Issue 28, case 5: a call without `X-Keyledger-Gateway-Key` (or with an empty one) answers 401
/// `gateway_unauthenticated` and is recorded as the refused use of an unknown gateway (actor `system`, no key,
/// `bad_format`, the peer as `ip` and `gateway_ip`), with or without a client key, which is not looked at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_without_a_gateway_key_is_recorded_as_a_refused_gateway_use() {
    let s = start_with_config(AUTHZ_TOML).await;
    let (_, reader) = key(&s, "orders-reader", json!({})).await;
    let local = client();
    for (request_id, header, value) in [
        ("no-gateway-1", "x-api-key", reader.as_str()),
        ("no-gateway-2", "x-keyledger-gateway-key", " "),
    ] {
        let answer = local
            .get(format!("{}/v1/authz/orders/1", s.base))
            .header("x-request-id", request_id)
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(code_of(&answer), "gateway_unauthenticated");
    }

    let (status, page) = call(
        &local,
        M::GET,
        format!("{}/v1/events?type=key.used&limit=1000", s.base),
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["events"].as_array().expect("events").iter();
    let refused: Vec<&Value> = events
        .map(|item| &item["event"])
        .filter(|e| {
            e["request_id"]
                .as_str()
                .is_some_and(|r| r.starts_with("no-gateway-"))
        })
        .collect();
    assert_eq!(refused.len(), 2, "one event per answered call: {page}");
    // Exactly this: no key_id or prefix (the client's key is not looked at), no path.
    let unknown_gateway = json!({"outcome": "bad_format", "scope": "ledger:verify",
        "ip": "127.0.0.1", "gateway_ip": "127.0.0.1"});
    for (event, request_id) in refused.iter().zip(["no-gateway-1", "no-gateway-2"]) {
        assert_eq!(event["request_id"], request_id, "{event}");
        assert_eq!(event["actor"], json!({"kind": "system"}), "{event}");
        assert_eq!(event["data"], unknown_gateway, "{event}");
    }
    assert!(!page.to_string().contains(&reader), "a secret in the log");
}
