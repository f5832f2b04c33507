//! Benchmark of the key hot path: the in-process check with 100,000 keys, verification with its durable
//! `key.used` under 64 concurrent callers, and "as of" over 1,000,000 events.
//! Run: `cargo bench --bench keys` (figures go into docs/PERFORMANCE.md).

use keyledger::datadir::DataDir;
use keyledger::event::{Actor, EventData, KeyConfig, KeyUsed, VerifyCode};
use keyledger::keys::{decide, CreateKey, Request, Requester, VerifyKey};
use keyledger::ledger::keys_as_of;
use keyledger::ledger::AppendEvents;
use keyledger::secret;
use keyledger::time::LedgerTime;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(n: usize) -> KeyConfig {
    KeyConfig {
        name: format!("service-{n}"),
        owner: format!("team-{}", n % 50),
        scopes: vec!["payments:read".into(), "payments:write".into()],
        environment: if n % 3 == 0 {
            "production".into()
        } else {
            "staging".into()
        },
        ip_allowlist: vec!["10.0.0.0/8".into()],
        rate_limit_per_minute: Some(1_000_000),
        ..Default::default()
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    let (ledger, _) = dir.init(None).expect("init");
    let ledger = Arc::new(ledger);

    // 100,000 keys, created by 64 concurrent callers.
    let started = Instant::now();
    let secrets: Vec<String> = runtime.block_on(async {
        let mut tasks = Vec::new();
        for worker in 0..64 {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for n in (worker..100_000).step_by(64) {
                    let command = CreateKey::new(Requester::new(Actor::System, None), &config(n))
                        .expect("valid");
                    out.push(
                        ledger
                            .submit(command)
                            .await
                            .expect("create")
                            .secret
                            .expose()
                            .to_string(),
                    );
                }
                out
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("task"));
        }
        all
    });
    println!(
        "created {} keys in {:.2?}",
        secrets.len(),
        started.elapsed()
    );

    // In-process check without the append.
    let hashes: Vec<[u8; 32]> = secrets.iter().map(|s| secret::hash_secret(s)).collect();
    let ip: Option<IpAddr> = "10.1.2.3".parse().ok();
    let state = ledger.projections();
    let now = LedgerTime::now();
    let rounds = 2_000_000usize;
    let started = Instant::now();
    let mut valid = 0usize;
    for i in 0..rounds {
        let decision = decide(
            &state.keys,
            Some(&hashes[i % hashes.len()]),
            Request {
                ip,
                scope: Some("payments:write"),
                project: None,
            },
            now,
        );
        valid += usize::from(decision.code == VerifyCode::Valid);
    }
    let per_call = started.elapsed().as_secs_f64() / rounds as f64;
    assert_eq!(valid, rounds);
    drop(state);
    let started = Instant::now();
    for i in 0..rounds / 4 {
        std::hint::black_box(secret::check_format(&secrets[i % secrets.len()]).is_ok());
        std::hint::black_box(secret::hash_secret(&secrets[i % secrets.len()]));
    }
    let parse_hash = started.elapsed().as_secs_f64() / (rounds / 4) as f64;
    println!("in-process check with 100,000 keys: {:.3} µs/call (+ {:.3} µs format check and SHA-256 on the caller's thread); target < 5 µs", per_call * 1e6, parse_hash * 1e6);

    // Verification with its durable key.used, 64 concurrent callers.
    let secrets = Arc::new(secrets);
    let run_for = Duration::from_secs(5);
    let started = Instant::now();
    let done: usize = runtime.block_on(async {
        let mut tasks = Vec::new();
        for worker in 0..64usize {
            let ledger = ledger.clone();
            let secrets = secrets.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while started.elapsed() < run_for {
                    let secret = &secrets[(worker * 7919 + n) % secrets.len()];
                    let command = VerifyKey::new(
                        secret,
                        ip,
                        Some("payments:read".into()),
                        Some("bench/1.0".into()),
                    );
                    let answer = ledger.submit(command).await.expect("verify");
                    assert!(answer.valid);
                    n += 1;
                }
                n
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.expect("task");
        }
        total
    });
    println!(
        "durable verify, 64 callers: {done} in {:.2?} = {:.0}/s; target ≥ 40,000/s",
        started.elapsed(),
        done as f64 / started.elapsed().as_secs_f64()
    );

    // Fill to 1,000,000 events, then "as of" a time near the end.
    let have = ledger.durable_seq();
    let key_id = ledger.projections().keys.iter().next().map(|k| k.key_id);
    let started = Instant::now();
    let mut appended = have;
    while appended < 1_000_000 {
        let events: Vec<EventData> = (0..1000)
            .map(|n| {
                EventData::KeyUsed(KeyUsed {
                    key_id,
                    prefix: None,
                    outcome: VerifyCode::Valid,
                    ip: Some(format!("10.0.{}.{}", n % 250, n % 200)),
                    user_agent: Some("bench/1.0".into()),
                    scope: Some("payments:read".into()),
                    project: None,
                    gateway_ip: None,
                    overlap: false,
                    method: None,
                    path: None,
                    committed: None,
                })
            })
            .collect();
        ledger
            .submit_blocking(AppendEvents {
                actor: Actor::System,
                request_id: None,
                events,
            })
            .expect("append");
        appended += 1000;
    }
    println!(
        "filled to {} events in {:.2?}",
        ledger.durable_seq(),
        started.elapsed()
    );
    std::thread::sleep(Duration::from_secs(3)); // let the background snapshot writers finish
    let durable = ledger.durable_seq();
    for probe in [LedgerTime::now(), LedgerTime::now().plus_secs(-5)] {
        let started = Instant::now();
        let (state, seq) = keys_as_of(ledger.store().as_ref(), probe, durable).expect("as of");
        println!(
            "as of {probe}: {} keys at seq {seq} in {:.2?}; target < 1 s",
            state.len(),
            started.elapsed()
        );
    }
}
