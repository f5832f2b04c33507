//! HTTP benchmark on loopback: `POST /v1/verify` from 64 concurrent connections (each answer after its durable
//! `key.used`), and `GET /v1/events` for a 1,000-event window out of a large log (1,000,000 events by default;
//! set KEYLEDGER_BENCH_EVENTS to change). Run: `cargo bench --bench http`. Traffic stays on 127.0.0.1 and stops
//! after a fixed time.

#[path = "shared/load.rs"]
mod load;

use keyledger::api::{serve, AppState};
use keyledger::datadir::DataDir;
use keyledger::event::{Actor, EventData, KeyConfig, KeyUsed, VerifyCode};
use keyledger::keys::{CreateKey, Requester};
use keyledger::ledger::AppendEvents;
use keyledger::time::LedgerTime;
use load::drive;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Signatures per second on this machine, one thread and all threads (rayon, as the writer signs a batch): the
/// ceiling for events/s, measured in the same run as the HTTP figures.
fn signing_floor() -> (f64, f64) {
    use rayon::prelude::*;
    let signer = keyledger::chain::LedgerSigner::generate();
    let hashes: Vec<[u8; 32]> = (0..20_000u32)
        .map(|i| keyledger::chain::chain_hash(&[0; 32], &i.to_be_bytes()))
        .collect();
    let started = Instant::now();
    let signed: usize = hashes
        .iter()
        .map(|h| signer.sign_hash(h).unwrap()[0] as usize)
        .sum();
    let single = hashes.len() as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let parallel: usize = hashes
        .par_iter()
        .map(|h| signer.sign_hash(h).unwrap()[0] as usize)
        .sum();
    let all = hashes.len() as f64 / started.elapsed().as_secs_f64();
    assert_eq!(signed, parallel);
    (single, all)
}

/// Verifications per second submitted straight to the ledger by 64 tasks: everything but HTTP.
async fn submit_floor(
    ledger: &Arc<keyledger::ledger::Ledger>,
    secret: &str,
    run_for: Duration,
) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (ledger, secret) = (ledger.clone(), secret.to_string());
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while started.elapsed() < run_for {
                let command = keyledger::keys::VerifyKey::new(
                    &secret,
                    "10.1.2.3".parse().ok(),
                    Some("orders:read".into()),
                    None,
                );
                ledger.submit(command).await.expect("verify");
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let (single, all) = signing_floor();
    println!(
        "Ed25519 signing floor: {single:.0} signatures/s on one thread, {all:.0}/s on all threads"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    let (ledger, identity) = dir.init(None).expect("init");
    let who = Requester::new(Actor::System, None);
    let gateway = KeyConfig {
        name: "gateway".into(),
        owner: "edge".into(),
        scopes: vec!["ledger:verify".into(), "ledger:read".into()],
        environment: "keyledger".into(),
        ..Default::default()
    };
    let service = KeyConfig {
        name: "svc".into(),
        owner: "team".into(),
        scopes: vec!["orders:read".into()],
        environment: "production".into(),
        ..Default::default()
    };
    let gateway = ledger
        .submit_blocking(CreateKey::new(who.clone(), &gateway).expect("config"))
        .expect("create")
        .secret
        .expose()
        .to_string();
    let service = ledger
        .submit_blocking(CreateKey::new(who, &service).expect("config"))
        .expect("create")
        .secret
        .expose()
        .to_string();
    let ledger = Arc::new(ledger);
    let state = AppState::new(
        ledger.clone(),
        dir.anchor_public_key().expect("anchor"),
        identity.origin,
    );
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
        let body = serde_json::json!({ "secret": service, "ip": "10.1.2.3", "scope": "orders:read" });
        let verify = drive(&client, format!("{base}/v1/verify"), &gateway, Some(body), Duration::from_secs(8)).await;
        verify.print("POST /v1/verify, 64 connections", "one durable key.used each, the gateway's auth folded in");
        let health = drive(&client, format!("{base}/healthz"), &gateway, None, Duration::from_secs(4)).await;
        health.print("GET /healthz, 64 connections", "HTTP and client floor on the same cores: no ledger work");
        let in_process = submit_floor(&ledger, &service, Duration::from_secs(4)).await;
        println!(
            "in-process VerifyKey submits, 64 tasks, no HTTP: {in_process:.0}/s (the ledger's own floor: decide, sign, group commit, fsync)"
        );

        let target: u64 = std::env::var("KEYLEDGER_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
        // The load runs above already wrote events; the window must start past them.
        let target = target.max(2 * ledger.durable_seq() + 10_000);
        let fill_started = Instant::now();
        let mut window = None;
        let mut batch_number = 0u64;
        while ledger.durable_seq() < target {
            batch_number += 1;
            let events = (0..2000)
                .map(|n| EventData::KeyUsed(KeyUsed { key_id: None, prefix: None, outcome: VerifyCode::NotFound, ip: Some(format!("10.0.{}.{}", n % 200, n % 250)), user_agent: None, scope: None, project: None, gateway_ip: None, overlap: false, method: None, path: None, committed: None }))
                .collect();
            let request_id = Some(format!("fill-{batch_number}"));
            ledger.submit(AppendEvents { actor: Actor::System, request_id, events }).await.expect("append");
            if window.is_none() && ledger.durable_seq() > target / 2 {
                window = Some(LedgerTime::now());
            }
        }
        println!("filled to {} events in {:.1?}", ledger.durable_seq(), fill_started.elapsed());
        let from = window.expect("window start").to_string();
        let mut times = Vec::new();
        for _ in 0..20 {
            let sent = Instant::now();
            let response = client.get(format!("{base}/v1/events")).query(&[("from", from.as_str()), ("limit", "1000")]).bearer_auth(&gateway).send().await.expect("events");
            let page: serde_json::Value = response.json().await.expect("json");
            assert_eq!(page["events"].as_array().map(Vec::len), Some(1000));
            times.push(sent.elapsed());
        }
        times.sort();
        println!("GET /v1/events, 1,000 events from the middle of {} : median {:.2?}, worst {:.2?}; target < 20 ms", ledger.durable_seq(), times[10], times[19]);
        // Incident filters over the whole log, answered from the attribute index.
        let filters = [
            ("ip", "10.0.7.7".to_string()),
            ("request_id", format!("fill-{}", batch_number / 2)),
            ("type", "key.created".to_string()),
            ("actor", "system".to_string()),
        ];
        for (name, value) in filters {
            let mut times = Vec::new();
            let mut found = 0;
            for _ in 0..20 {
                let sent = Instant::now();
                let response = client.get(format!("{base}/v1/events")).query(&[(name, value.as_str()), ("limit", "1000")]).bearer_auth(&gateway).send().await.expect("events");
                let page: serde_json::Value = response.json().await.expect("json");
                found = page["events"].as_array().map_or(0, Vec::len);
                times.push(sent.elapsed());
            }
            times.sort();
            println!("GET /v1/events?{name}=…&limit=1000 over {} events ({found} on the first page): median {:.2?}, worst {:.2?}; target < 20 ms", ledger.durable_seq(), times[10], times[19]);
        }
        let _ = stop.send(());
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    });
}
