//! The deadline watcher end to end: keys created, changed and rotated after it indexed the keys are filed again
//! from the lifecycle events, and their time-based alerts arrive, once each.

#[path = "common/alerts.rs"]
mod alerting;
#[path = "common/server.rs"]
mod server;

use alerting::{alert_pairs, deadline_server, has, key_body, start_outbox, wait_for};
use reqwest::Method as M;
use serde_json::json;
use server::{call, client, new_key};
use std::time::Duration;

const DAY: i64 = 86_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_created_and_changed_after_the_watcher_started_raise_their_deadlines_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (receiver, s, clock) = deadline_server(tmp.path()).await;
    let outbox = start_outbox(&s);
    // The watcher indexes the keys there are (the admin key, nothing due) at its first sweep.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(receiver.received().is_empty());

    // A key created afterwards, expiring within the notice: learnt from its `key.created`.
    let mut late = key_body("late");
    late["expires_at"] = json!("2026-01-06T00:00:00Z");
    let (late_id, _) = new_key(&s, late).await;
    wait_for(&receiver, "the new key's expiry notice", |r| {
        has(r, "key.expiring", &late_id)
    })
    .await;

    // 20 days on, a policy of 10 days makes another key overdue at once: learnt from its `key.updated`.
    let (patched_id, _) = new_key(&s, key_body("patched")).await;
    clock.advance_secs(20 * DAY);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, body) = call(
        &client(),
        M::PATCH,
        format!("{}/v1/keys/{patched_id}", s.base),
        Some(&s.admin),
        Some(json!({"rotation_policy": {"every_days": 10, "notify_days_before": 2}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_for(&receiver, "the overdue rotation", |r| {
        has(r, "key.rotation_overdue", &patched_id)
    })
    .await;

    // Rotated: the successor (same policy) is due 8 days on; the old key raises no more rotation alerts.
    let (status, body) = call(
        &client(),
        M::POST,
        format!("{}/v1/keys/{patched_id}/rotate", s.base),
        Some(&s.admin),
        Some(json!({"overlap_seconds": 0})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let successor = body["key"]["key_id"].as_str().unwrap().to_string();
    clock.advance_secs(8 * DAY + 60);
    wait_for(&receiver, "the successor's rotation notice", |r| {
        has(r, "key.rotation_due", &successor)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    let pairs = alert_pairs(&receiver.received());
    let mut unique = pairs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), pairs.len(), "each fired once: {pairs:?}");
    let mut expected = vec![
        ("key.expiring".to_string(), late_id),
        ("key.rotation_overdue".to_string(), patched_id),
        ("key.rotation_due".to_string(), successor),
    ];
    expected.sort();
    // The overdue key's notice was never in force at a sweep (the policy made it overdue at once), as with a
    // walk over every key; the admin key's notice (day 76) is still to come.
    assert_eq!(unique, expected);
    drop(outbox);
}
