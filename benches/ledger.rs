//! Benchmark of the foundation: durable appends with 1, 8 and 64 concurrent writers, full verification, and
//! bytes on disk per event — each beside the machine's own floor measured in the same run.
//! Run: `cargo bench --bench ledger` (figures go into docs/PERFORMANCE.md). With KEYLEDGER_BENCH_PG set to a
//! PostgreSQL server's base URL (`postgres://postgres@127.0.0.1:5432`, a role that may create databases), the same
//! runs follow on PostgreSQL, each in a new database: `.ci/with-postgres.sh` sets KEYLEDGER_TEST_PG, e.g.
//! `.ci/with-postgres.sh sh -c 'KEYLEDGER_BENCH_PG=${KEYLEDGER_TEST_PG%/*} cargo bench --bench ledger'`.
//! Where SoftHSM2 is installed (Debian `softhsm2`), the sled runs follow once more with the key on a SoftHSM2 token
//! (issue 30), beside the token's own signing rate.

#[path = "shared/floors.rs"]
mod floors;

use ed25519_dalek::{Signer, SigningKey};
use keyledger::audit::{verify_log, VerifyRange};
use keyledger::datadir::DataDir;
use keyledger::event::{Actor, EventData, KeyUsed, VerifyCode};
use keyledger::ledger::AppendEvents;
use keyledger::token::{SignerConfig, SignerKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const RUN_FOR: Duration = Duration::from_secs(4);

fn key_used(n: u64) -> EventData {
    EventData::KeyUsed(KeyUsed {
        key_id: Some(Uuid::from_u128(
            0x019a_0000_0000_7000_8000_0000_0000_0000 | u128::from(n % 1000),
        )),
        prefix: Some("kl_prod_Ab3dEf9".into()),
        outcome: VerifyCode::Valid,
        ip: Some(format!("10.{}.{}.{}", n % 200, (n / 200) % 250, n % 250)),
        user_agent: Some("billing-service/2.14.1 (linux; x86_64) reqwest/0.12".into()),
        scope: Some("payments:write".into()),
        project: None,
        gateway_ip: None,
        overlap: false,
        method: None,
        path: None,
        committed: None,
    })
}

fn sign_floor() -> f64 {
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        for i in 0..1000u64 {
            std::hint::black_box(key.sign(&i.to_le_bytes()));
        }
        n += 1000;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// A new database on the PostgreSQL server at `base`; its URL.
fn fresh_database(base: &str) -> String {
    let name = format!("kl_bench_{}", Uuid::now_v7().simple());
    let mut client = postgres::Client::connect(&format!("{base}/postgres"), postgres::NoTls)
        .expect("PostgreSQL");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    format!("{base}/{name}")
}

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 token in a temporary directory, its configuration and PIN in this process's environment (set before
/// any thread starts: SoftHSM reads them at C_Initialize). `None` without SoftHSM2.
fn softhsm_token(dir: &std::path::Path) -> Option<SignerConfig> {
    if !std::path::Path::new(SOFTHSM).exists() {
        println!("(SoftHSM2 is not installed: no runs with the key on a token)");
        return None;
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("token directory");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .expect("softhsm2.conf");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    std::env::set_var(keyledger::token::PIN_ENV, "4321");
    let init = std::process::Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--pin",
            "4321",
            "--so-pin",
            "87654321",
        ])
        .output()
        .expect("softhsm2-util");
    assert!(init.status.success(), "{init:?}");
    Some(SignerConfig {
        kind: SignerKind::Pkcs11,
        module: Some(SOFTHSM.into()),
        token_label: Some("bench".into()),
        key_label: None,
        pin_file: None,
    })
}

/// Signatures per second straight through the token, from `threads` threads (one session each).
fn token_floor(token: &SignerConfig, threads: usize) -> f64 {
    let mut config = token.clone();
    config.key_label = Some("floor".into());
    let key = Arc::new(keyledger::token::TokenKey::open(&config, true).expect("token key"));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (key, done) = (key.clone(), done.clone());
            scope.spawn(move || {
                let mut n = 0u64;
                while started.elapsed() < Duration::from_secs(2) {
                    key.sign(&n.to_le_bytes()).expect("token sign");
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Durable appends from `writers` tasks on sled, or on PostgreSQL when `pg` names a server; with `token`, the key
/// is generated on that PKCS#11 token.
fn appends(
    writers: usize,
    runtime: &tokio::runtime::Runtime,
    pg: Option<&str>,
    token: Option<&SignerConfig>,
) -> (f64, u64, u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    if let Some(base) = pg {
        dir.set_store(&fresh_database(base)).expect("store");
    }
    if let Some(token) = token {
        let mut config = token.clone();
        config.key_label = Some(format!("ledger-{writers}"));
        dir.set_signer(&config).expect("[signer]");
    }
    let (ledger, _) = dir.init(None).expect("init");
    let ledger = Arc::new(ledger);
    let done = Arc::new(AtomicU64::new(0));
    let lag = (pg.is_some() && writers == 64).then(|| follower_lag(&dir, ledger.clone()));
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..writers {
            let ledger = ledger.clone();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = w as u64 * 1_000_000;
                while started.elapsed() < RUN_FOR {
                    let command = AppendEvents {
                        actor: Actor::Key {
                            key_id: Uuid::from_u128(7),
                        },
                        request_id: None,
                        events: vec![key_used(n)],
                    };
                    ledger.submit(command).await.expect("append");
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer task");
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let events = done.load(Ordering::Relaxed);
    if let Some(lag) = lag {
        let mut delays = lag.join().expect("follower sampler");
        delays.sort();
        println!(
            "follower: {} samples of the time from the leader's acknowledgement to the follower showing it: \
             p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            delays.len(),
            delays[delays.len() / 2],
            delays[delays.len() * 99 / 100],
            delays[delays.len() - 1]
        );
    }
    let body_bytes: u64 = ledger
        .store()
        .scan(2, u64::MAX)
        .map(|r| r.expect("record").body.len() as u64)
        .sum();
    let anchor = dir.anchor_public_key().expect("anchor");
    if writers == 64 {
        let started = Instant::now();
        let report = verify_log(
            ledger.store().as_ref(),
            anchor,
            VerifyRange::default(),
            None,
        )
        .expect("verify");
        assert!(report.is_ok());
        let rate = report.events_checked as f64 / started.elapsed().as_secs_f64();
        println!(
            "full verification: {} events in {:.2?} = {:.0} events/s",
            report.events_checked,
            started.elapsed(),
            rate
        );
        VERIFY_RATE.store(rate as u64, Ordering::Relaxed);
    }
    let batches = ledger.metrics().batches_committed.load(Ordering::Relaxed);
    let metrics = ledger.metrics().render();
    let fsync_sum: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("keyledger_commit_seconds_sum "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    println!(
        "      fsyncs: {batches}, mean {:.3} ms",
        fsync_sum * 1000.0 / batches.max(1) as f64
    );
    drop(ledger);
    // Reopen so the size reflects what the store keeps after a restart, not in-flight buffers.
    let store = dir.open_store().expect("reopen");
    let disk = store.size_on_disk().expect("size");
    println!(
        "{writers:>3} writers: {events} durable events in {elapsed:.2}s = {:.0} events/s ({:.1} events/batch); \
         on disk {:.0} B/event for {:.0} B bodies ({:.2}x)",
        events as f64 / elapsed,
        events as f64 / batches.max(1) as f64,
        disk as f64 / events.max(1) as f64,
        body_bytes as f64 / events.max(1) as f64,
        disk as f64 / body_bytes.max(1) as f64
    );
    (events as f64 / elapsed, disk, body_bytes)
}

/// A follower of the ledger in `dir` (PostgreSQL), sampled while the writers run: each sample takes the leader's
/// durable seq and waits until the follower shows it.
fn follower_lag(
    dir: &DataDir,
    leader: Arc<keyledger::ledger::Ledger>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    let url = dir
        .config()
        .expect("config")
        .store
        .expect("a PostgreSQL store");
    let store = keyledger::store::PgStore::open_as(&url, keyledger::store::PgRole::Follower)
        .expect("follower store");
    let follower = keyledger::ledger::Ledger::open_follower(
        Arc::new(store),
        vec![dir.anchor_public_key().expect("anchor")],
        dir.config().expect("config").rules(),
        keyledger::clock::system(),
    )
    .expect("follower");
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut delays = Vec::new();
        while started.elapsed() < RUN_FOR {
            let target = leader.durable_seq();
            let asked = Instant::now();
            while follower.durable_seq() < target {
                std::thread::sleep(Duration::from_micros(100));
            }
            delays.push(asked.elapsed());
            std::thread::sleep(Duration::from_millis(1));
        }
        delays
    })
}

static VERIFY_RATE: AtomicU64 = AtomicU64::new(0);

fn main() {
    let hsm_dir = tempfile::tempdir().expect("tempdir");
    let token = softhsm_token(hsm_dir.path());
    let sign = sign_floor();
    println!("floor: Ed25519 sign on one core = {sign:.0}/s");
    let batch = floors::batch_verify_floor_two_cores();
    println!("floor: Ed25519 batch verify on both cores = {batch:.0}/s");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pg = std::env::var("KEYLEDGER_BENCH_PG").ok();
    let stores = [("sled", None), ("PostgreSQL", pg.as_deref())];
    for (name, backend) in stores
        .iter()
        .filter(|(name, b)| *name == "sled" || b.is_some())
    {
        println!("== {name}");
        for writers in [1, 8, 64] {
            let (rate, _, _) = appends(writers, &runtime, *backend, None);
            println!("      = {:.2} of the one-core signing floor", rate / sign);
        }
        let verify = VERIFY_RATE.load(Ordering::Relaxed) as f64;
        println!(
            "full verification = {:.2} of the two-core batch-verify floor",
            verify / batch
        );
    }
    if let Some(token) = &token {
        println!("== sled, the key on a SoftHSM2 token (PKCS#11)");
        for threads in [1, 2, 8] {
            println!(
                "floor: the token's Ed25519 signing from {threads} thread(s) = {:.0}/s",
                token_floor(token, threads)
            );
        }
        for writers in [1, 8, 64] {
            let (rate, _, _) = appends(writers, &runtime, None, Some(token));
            println!(
                "      = {:.2} of the one-core in-memory signing floor",
                rate / sign
            );
        }
    }
}
