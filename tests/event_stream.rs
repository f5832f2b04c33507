//! `GET /v1/events/stream` against a real server: NDJSON lines in seq order shaped like `/v1/events` items,
//! filters, resuming with `Last-Event-ID` without gap or duplicate, catching up from a time across chunks,
//! Server-Sent Events whose ids are the seqs, bad input and missing credentials refused before streaming, and
//! a server shutdown that ends open streams instead of waiting for them, and the bounded form (`limit`,
//! `idle_timeout`) that answers a finite response for scripts and fuzzers.

mod common;
#[path = "common/server.rs"]
mod server;

use keyledger::event::Actor;
use keyledger::ledger::AppendEvents;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use server::*;
use std::time::Duration;

/// How long any single wait on a stream may take before the test fails.
const WAIT: Duration = Duration::from_secs(5);

/// A client without the total request timeout of `server::client()`, which would cut a stream off.
fn stream_client() -> Client {
    Client::builder().connect_timeout(WAIT).build().unwrap()
}

/// An open stream, read line by line.
struct Lines {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Lines {
    /// The next line (without its newline); `None` when the server ended the stream.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(String::from_utf8(line[..end].to_vec()).unwrap());
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("the stream sent nothing in time")
                .expect("reading the stream");
            match chunk {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => return None,
            }
        }
    }

    /// The next NDJSON item.
    async fn item(&mut self) -> Value {
        let line = self.next().await.expect("the stream ended");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// The next SSE event as (id, data), skipping keep-alive comments.
    async fn sse(&mut self) -> (Option<String>, Value) {
        let (mut id, mut data) = (None, None);
        loop {
            let line = self.next().await.expect("the stream ended");
            if line.is_empty() {
                if let Some(data) = data {
                    return (id, data);
                }
            } else if let Some(value) = line.strip_prefix("id:") {
                id = Some(value.trim().to_string());
            } else if let Some(value) = line.strip_prefix("data:") {
                data = Some(serde_json::from_str(value.trim()).unwrap());
            } else {
                assert!(line.starts_with(':'), "unexpected SSE line {line:?}");
            }
        }
    }
}

/// Opens `/v1/events/stream?{query}` as the admin with extra `headers`.
async fn request(s: &Server, query: &str, headers: &[(&str, String)]) -> reqwest::Response {
    let mut request = stream_client()
        .get(format!("{}/v1/events/stream?{query}", s.base))
        .bearer_auth(&s.admin);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    tokio::time::timeout(WAIT, request.send())
        .await
        .expect("the stream did not answer in time")
        .expect("the request was sent")
}

async fn open(s: &Server, query: &str, headers: &[(&str, String)]) -> Lines {
    let response = request(s, query, headers).await;
    assert_eq!(response.status(), StatusCode::OK);
    Lines {
        response,
        buffer: Vec::new(),
    }
}

fn header(lines: &Lines, name: &str) -> String {
    lines.response.headers()[name].to_str().unwrap().to_string()
}

/// Every event `/v1/events` lists, as its items.
async fn listed(s: &Server) -> Vec<Value> {
    let (mut items, mut url) = (Vec::new(), format!("{}/v1/events?limit=1000", s.base));
    loop {
        let (status, page) = call(&client(), reqwest::Method::GET, url, Some(&s.admin), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        items.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{}/v1/events?cursor={cursor}", s.base),
            None => return items,
        }
    }
}

async fn create(s: &Server, name: &str) -> String {
    new_key(
        s,
        json!({"name": name, "owner": "team", "scopes": ["read"], "environment": "test"}),
    )
    .await
    .0
}

async fn revoke(s: &Server, id: &str) {
    let url = format!("{}/v1/keys/{id}", s.base);
    let (status, body) = call(
        &client(),
        reqwest::Method::DELETE,
        url,
        Some(&s.admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn seq(item: &Value) -> u64 {
    item["seq"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_lines_arrive_in_seq_order_shaped_like_event_pages() {
    let s = start().await;
    let after = s.ledger.durable_seq();
    let mut lines = open(&s, &format!("after={after}"), &[]).await;
    assert_eq!(header(&lines, "content-type"), "application/x-ndjson");
    assert_eq!(header(&lines, "x-stream-after"), after.to_string());
    create(&s, "one").await;
    create(&s, "two").await;
    // The stream's own authentication, then a key use and a creation per key.
    let mut items = Vec::new();
    for _ in 0..5 {
        items.push(lines.item().await);
    }
    let seqs: Vec<u64> = items.iter().map(seq).collect();
    assert_eq!(seqs, (after + 1..=after + 5).collect::<Vec<_>>());
    for item in &items {
        assert_eq!(item.as_object().unwrap().len(), 3, "{item}");
        assert_eq!(item["hash"].as_str().unwrap().len(), 64);
        assert_eq!(item["event"]["seq"], item["seq"]);
    }
    let types: Vec<&str> = items
        .iter()
        .map(|i| i["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.iter().filter(|t| **t == "key.created").count(), 2);
    let listed = listed(&s).await;
    for item in &items {
        assert!(
            listed.contains(item),
            "{item} is not as /v1/events lists it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_start_only_new_events_are_sent() {
    let s = start().await;
    let before = s.ledger.durable_seq();
    let mut lines = open(&s, "", &[]).await;
    let after: u64 = header(&lines, "x-stream-after").parse().unwrap();
    // Only the stream's own authentication came between.
    assert_eq!(after, before + 1);
    create(&s, "new").await;
    assert_eq!(seq(&lines.item().await), after + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_filter_yields_only_those_events() {
    let s = start().await;
    let mut lines = open(&s, "type=key.revoked", &[]).await;
    let first = create(&s, "first").await;
    let kept = create(&s, "kept").await;
    revoke(&s, &first).await;
    let second = create(&s, "second").await;
    revoke(&s, &second).await;
    let third = create(&s, "third").await;
    revoke(&s, &third).await;
    let mut revoked = Vec::new();
    for _ in 0..3 {
        let item = lines.item().await;
        assert_eq!(item["event"]["type"], "key.revoked", "{item}");
        revoked.push(
            item["event"]["data"]["key_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(revoked, [first, second, third]);
    assert!(!revoked.contains(&kept));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_without_gap_or_duplicate() {
    let s = start().await;
    let after = s.ledger.durable_seq();
    let mut lines = open(&s, &format!("after={after}"), &[]).await;
    create(&s, "a").await;
    create(&s, "b").await;
    let mut seen: Vec<u64> = Vec::new();
    for _ in 0..3 {
        seen.push(seq(&lines.item().await));
    }
    drop(lines);
    // Events made while no one is connected, and some read but not received before the drop.
    create(&s, "c").await;
    create(&s, "d").await;
    let last = *seen.last().unwrap();
    // Last-Event-ID overrides the query's start, as when an EventSource reconnects to its first URL.
    let mut lines = open(
        &s,
        &format!("after={after}"),
        &[("last-event-id", last.to_string())],
    )
    .await;
    assert_eq!(header(&lines, "x-stream-after"), last.to_string());
    let target = s.ledger.durable_seq();
    while *seen.last().unwrap() < target {
        seen.push(seq(&lines.item().await));
    }
    let expected: Vec<u64> = listed(&s)
        .await
        .iter()
        .map(seq)
        .filter(|seq| (after + 1..=target).contains(seq))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_catches_up_across_chunks_then_follows() {
    let s = start().await;
    for batch in 0..6 {
        let events = (0..100)
            .map(|n| common::used(None, &format!("b{batch}-{n}")))
            .collect();
        s.ledger
            .submit(AppendEvents {
                actor: Actor::System,
                request_id: None,
                events,
            })
            .await
            .unwrap();
    }
    let mut lines = open(&s, "from=2000-01-01T00:00:00Z", &[]).await;
    assert_eq!(header(&lines, "x-stream-after"), "0");
    let durable = s.ledger.durable_seq();
    assert!(durable > 600);
    for expected in 1..=durable {
        assert_eq!(seq(&lines.item().await), expected);
    }
    create(&s, "later").await;
    assert_eq!(seq(&lines.item().await), durable + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_carry_the_seq_as_their_id() {
    let s = start().await;
    let after = s.ledger.durable_seq();
    let accept = [("accept", "text/event-stream".to_string())];
    let mut lines = open(&s, &format!("after={after}"), &accept).await;
    assert!(header(&lines, "content-type").starts_with("text/event-stream"));
    create(&s, "sse").await;
    for expected in after + 1..=after + 3 {
        let (id, data) = lines.sse().await;
        assert_eq!(id, Some(expected.to_string()));
        assert_eq!(seq(&data), expected);
        assert_eq!(data["event"]["seq"], expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_json_400_and_no_key_a_401() {
    let s = start().await;
    let bad = [
        ("type=key.nonsense", vec![]),
        ("key_id=not-a-uuid", vec![]),
        ("ip=not-an-ip", vec![]),
        ("after=minus-one", vec![]),
        ("after=3&from=2026-01-01T00:00:00Z", vec![]),
        ("to=2026-01-01T00:00:00Z", vec![]),
        ("limit=0", vec![]),
        ("limit=100001&idle_timeout=0", vec![]),
        ("idle_timeout=3601", vec![]),
        ("", vec![("last-event-id", "abc".to_string())]),
    ];
    for (query, headers) in bad {
        let response = request(&s, query, &headers).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let body: Value = response.json().await.unwrap();
        assert!(!code(&body).is_empty(), "{query}: {body}");
    }
    let response = tokio::time::timeout(
        WAIT,
        stream_client()
            .get(format!("{}/v1/events/stream", s.base))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_the_server_down_ends_open_streams() {
    let s = start().await;
    let mut ndjson = open(&s, "", &[]).await;
    let accept = [("accept", "text/event-stream".to_string())];
    let mut sse = open(&s, "", &accept).await;
    // Dropping the server starts its graceful shutdown, which waits for every open response to finish.
    drop(s);
    // The SSE stream's authentication may still arrive first; then the end, not a timeout.
    while let Some(line) = ndjson.next().await {
        assert!(line.contains("\"key.used\""), "{line}");
    }
    while let Some(line) = sse.next().await {
        assert!(line.is_empty() || line.starts_with(':'), "{line:?}");
    }
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers()["content-type"].to_str().unwrap().into()
}

/// The whole body of a bounded stream: it must end by itself, well within `WAIT`.
async fn finite(s: &Server, query: &str, headers: &[(&str, String)]) -> (String, String) {
    let response = request(s, query, headers).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    let kind = content_type(&response);
    let body = tokio::time::timeout(WAIT, response.text()).await;
    (kind, body.expect("the stream did not end").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bounded_form_answers_a_finite_response() {
    let s = start().await;
    create(&s, "one").await;
    create(&s, "two").await;
    let durable = s.ledger.durable_seq();
    // idle_timeout=0: every durable event (with the stream's own authentication), then the end.
    let (kind, body) = finite(&s, "after=0&idle_timeout=0", &[]).await;
    assert_eq!(kind, "application/x-ndjson");
    let items = body.lines().map(|l| seq(&serde_json::from_str(l).unwrap()));
    let (seqs, count) = (items.collect::<Vec<u64>>(), body.lines().count() as u64);
    assert_eq!(seqs, (1..=count).collect::<Vec<_>>());
    assert!(count == durable || count == durable + 1, "{seqs:?}");
    // limit: that many events, then the end, also as Server-Sent Events.
    let (_, body) = finite(&s, "after=0&limit=2", &[]).await;
    assert_eq!(body.lines().count(), 2, "{body}");
    let accept = [("accept", "text/event-stream".to_string())];
    let (kind, body) = finite(&s, "after=1&limit=3", &accept).await;
    assert!(kind.starts_with("text/event-stream"));
    let ids: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("id:")).collect();
    assert_eq!(
        ids.iter().map(|id| id.trim()).collect::<Vec<_>>(),
        ["2", "3", "4"]
    );
    // idle_timeout=1 with nothing new: the end after about a second.
    let started = std::time::Instant::now();
    let (_, body) = finite(&s, "idle_timeout=1&type=key.revoked", &[]).await;
    assert!(
        body.is_empty() && started.elapsed() >= Duration::from_millis(900),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_with_from_is_a_json_400_naming_from_also_in_the_bounded_form() {
    let s = start().await;
    let sse = [("accept", "text/event-stream".to_string())];
    for query in [
        "after=0&from=now",
        "after=0&from=-1h&idle_timeout=0&limit=5",
    ] {
        for headers in [&sse[..], &[]] {
            let response = request(&s, query, headers).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
            assert!(
                content_type(&response).starts_with("application/json"),
                "{query}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(code(&body), "invalid_request", "{query}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("from:") && message.contains("after"),
                "{body}"
            );
        }
    }
}
