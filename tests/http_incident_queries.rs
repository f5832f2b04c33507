//! Incident queries over HTTP answered from an index (attribute, key or lifecycle): `/v1/events` filtered by ip,
//! request id, type and actor (alone and combined), paged through cursors, return exactly what a scan finds.

mod common;
#[path = "common/server.rs"]
mod server;

use keyledger::event::{Event, EventData};
use reqwest::Method as M;
use reqwest::StatusCode;
use serde_json::json;
use server::*;

/// Every event of `query`, following cursors page by page (two events a page).
async fn paged(s: &Server, query: &str) -> Vec<Event> {
    let c = client();
    let mut url = format!("{}/v1/events?{query}&limit=2", s.base);
    let mut events = Vec::new();
    loop {
        let (status, page) = call(&c, M::GET, url.clone(), Some(&s.admin), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        for item in page["events"].as_array().unwrap() {
            events.push(Event::decode(&serde_json::to_vec(&item["event"]).unwrap()).unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{}/v1/events?cursor={cursor}", s.base),
            None => return events,
        }
    }
}

fn ip(event: &Event) -> Option<&str> {
    match &event.data {
        EventData::KeyUsed(used) => used.ip.as_deref(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_event_queries_return_exactly_what_a_scan_finds() {
    let s = start().await;
    let c = client();
    let (_, secret) = new_key(
        &s,
        json!({"name": "svc", "owner": "o", "scopes": ["read"], "environment": "prod"}),
    )
    .await;
    for i in 0..12 {
        let body = json!({
            "secret": secret,
            "ip": format!("10.0.0.{}", i % 3),
            "request_id": format!("inc-{}", i % 4),
            "scope": "read",
        });
        let (status, answer) = call(
            &c,
            M::POST,
            format!("{}/v1/verify", s.base),
            Some(&s.admin),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // Every query authenticates with a recorded use of the admin key: fix the window before the first one.
    let window = format!("from=-1h&to={}", keyledger::time::LedgerTime::now());
    let all = paged(&s, &window).await;
    let admin_actor = all
        .iter()
        .find(|e| e.type_name() == "key.used" && e.actor.key_id().is_some())
        .map(|e| e.actor.clone())
        .expect("the gateway's uses are on the record");
    let admin_id = admin_actor
        .key_id()
        .expect("a key as the actor")
        .to_string();
    type Filter = Box<dyn Fn(&Event) -> bool>;
    let cases: Vec<(String, Filter)> = vec![
        (
            "ip=10.0.0.1".into(),
            Box::new(|e| ip(e) == Some("10.0.0.1")),
        ),
        (
            "request_id=inc-2".into(),
            Box::new(|e| e.request_id.as_deref() == Some("inc-2")),
        ),
        (
            "type=key.created".into(),
            Box::new(|e| e.type_name() == "key.created"),
        ),
        (
            format!("actor={admin_id}"),
            Box::new(move |e| e.actor == admin_actor),
        ),
        (
            "ip=10.0.0.2&request_id=inc-1".into(),
            Box::new(|e| ip(e) == Some("10.0.0.2") && e.request_id.as_deref() == Some("inc-1")),
        ),
        (
            "actor=system".into(),
            Box::new(|e| e.actor == keyledger::event::Actor::System),
        ),
        (
            "type=key.used&ip=10.0.0.0".into(),
            Box::new(|e| e.type_name() == "key.used" && ip(e) == Some("10.0.0.0")),
        ),
        (
            "ip=10.0.0.9".into(),
            Box::new(|e| ip(e) == Some("10.0.0.9")),
        ),
    ];
    for (query, filter) in cases {
        let expected: Vec<u64> = all.iter().filter(|e| filter(e)).map(|e| e.seq).collect();
        let found: Vec<u64> = paged(&s, &format!("{window}&{query}"))
            .await
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(found, expected, "{query}");
    }
}
