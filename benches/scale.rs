//! Growth benchmark (issue 13): one ledger with 100,000 keys grown to 1M, 3M and 10M events (set
//! KEYLEDGER_SCALE_SIZES, e.g. `1000000,3000000`, and KEYLEDGER_SCALE_KEYS), measuring at each size what must not
//! grow with the log: `serve` time to ready and RSS under verify load, filtered incident queries, usage by IP,
//! bytes per event, and the whole-log jobs (replay, audit verify, export, verify-export) beside the machine's
//! batch-verify floor. It appends through the real writer in large batches. Run: `cargo bench --bench scale`.
//! Traffic stays on 127.0.0.1. Prints one table row per size (docs/PERFORMANCE.md keeps them).

#[path = "shared/floors.rs"]
mod floors;
#[path = "shared/scale_fill.rs"]
mod scale_fill;

use scale_fill::{fill_child, fill_in_child, ip_of, rss_kib};

use keyledger::datadir::DataDir;
use keyledger::event::{Actor, KeyConfig};
use keyledger::keys::{CreateKey, Requester};
use keyledger::ledger::Ledger;
use keyledger::store::LogStore;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_keyledger");

fn create_keys(ledger: &Ledger, count: usize) -> (Vec<Uuid>, String, String) {
    let make = |name: String, scopes: &[&str], environment: &str| KeyConfig {
        name,
        owner: "bench".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        environment: environment.into(),
        ..Default::default()
    };
    let who = Requester::new(Actor::System, None);
    let create = |config: &KeyConfig| {
        ledger
            .submit_blocking(CreateKey::new(who.clone(), config).expect("config"))
            .expect("create")
    };
    let gateway = create(&make(
        "gateway".into(),
        &["ledger:verify", "ledger:read"],
        "keyledger",
    ));
    let service = create(&make("svc".into(), &["orders:read"], "production"));
    let keys: Vec<Uuid> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let (create, make) = (&create, &make);
                scope.spawn(move || {
                    (worker..count)
                        .step_by(8)
                        .map(|i| {
                            create(&make(format!("svc-{i}"), &["orders:read"], "production"))
                                .key
                                .key_id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    (
        keys,
        gateway.secret.expose().to_string(),
        service.secret.expose().to_string(),
    )
}

/// Runs the CLI to completion; returns (seconds, peak RSS in MiB, sampled from /proc every 20 ms: rusage would
/// also count the pages a forked child shares with this large process before it execs).
fn timed_cli(data: &Path, args: &[&str]) -> (f64, f64) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cli runs");
    let mut peak = 0;
    let status = loop {
        peak = peak.max(rss_kib(child.id(), "VmHWM:"));
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "keyledger {args:?} failed");
    (started.elapsed().as_secs_f64(), peak as f64 / 1024.0)
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn serve(data: &Path, client: &reqwest::blocking::Client) -> (Server, f64, f64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["serve", "--addr", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let server = Server {
        child,
        base: format!("http://{addr}"),
    };
    let health = |state: Option<&str>| {
        client
            .get(format!("{}/healthz", server.base))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.json::<serde_json::Value>().ok())
            .is_some_and(|h| state.is_none_or(|s| h["startup_check"]["state"] == s))
    };
    while !health(None) {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "serve never answered"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let ready = started.elapsed().as_secs_f64();
    while !health(Some("passed")) {
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, ready, started.elapsed().as_secs_f64())
}

fn median_ms(client: &reqwest::blocking::Client, url: &str, token: &str, runs: usize) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let sent = Instant::now();
            let response = client.get(url).bearer_auth(token).send().expect("query");
            if !response.status().is_success() {
                // e.g. 408 past the server's 10 s request limit: reported as an infinite time.
                eprintln!("{url}: {}", response.status());
                return f64::INFINITY;
            }
            let _ = response.bytes();
            sent.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// 64 connections of verifications for `run_for`; returns (req/s, peak RSS MiB sampled each second).
fn verify_load(
    base: &str,
    gateway: &str,
    service: &str,
    pid: u32,
    run_for: Duration,
) -> (f64, f64) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client");
        let started = Instant::now();
        let body =
            serde_json::json!({ "secret": service, "ip": "10.9.9.9", "scope": "orders:read" });
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (client, url, gateway, body) = (
                    client.clone(),
                    format!("{base}/v1/verify"),
                    gateway.to_string(),
                    body.clone(),
                );
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while started.elapsed() < run_for {
                        let response = client
                            .post(&url)
                            .json(&body)
                            .bearer_auth(&gateway)
                            .send()
                            .await;
                        if response.is_ok_and(|r| r.status().is_success()) {
                            done += 1;
                        }
                    }
                    done
                })
            })
            .collect();
        let mut peak = 0u64;
        while started.elapsed() < run_for {
            tokio::time::sleep(Duration::from_secs(1)).await;
            peak = peak.max(rss_kib(pid, "VmRSS:"));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.expect("task");
        }
        (
            total as f64 / started.elapsed().as_secs_f64(),
            peak as f64 / 1024.0,
        )
    })
}

fn main() {
    if let Ok(target) = std::env::var("KEYLEDGER_SCALE_FILL_TO") {
        return fill_child(target.parse().expect("KEYLEDGER_SCALE_FILL_TO is a number"));
    }
    let sizes: Vec<u64> = std::env::var("KEYLEDGER_SCALE_SIZES")
        .unwrap_or_else(|_| "1000000,3000000,10000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes are integers"))
        .collect();
    let key_count: usize = std::env::var("KEYLEDGER_SCALE_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let floor = floors::batch_verify_floor_two_cores();
    println!("batch-verify floor (ed25519-dalek, both cores): {floor:.0} signatures/s");
    let tmp = tempfile::tempdir().expect("tempdir");
    // KEYLEDGER_SCALE_DIR keeps the grown ledger for a closer look (it must not exist yet).
    let data = std::env::var_os("KEYLEDGER_SCALE_DIR")
        .map_or_else(|| tmp.path().join("data"), std::path::PathBuf::from);
    let dir = DataDir::new(&data);
    let (ledger, _) = dir.init(None).expect("init");
    let started = Instant::now();
    let (keys, gateway, service) = create_keys(&ledger, key_count);
    println!("{key_count} keys created in {:.1?}", started.elapsed());
    drop(ledger);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    let mut batch_number = 0u64;
    println!("| events | fill/s | writer RSS MiB (peak while filling) | sled items/event | serve ready s | prefix checked s | RSS ready MiB | RSS under load MiB | verify req/s | by ip ms | by request_id ms | by type ms | by key ms | usage by ip 24h ms | bytes/event (body) | replay s (peak MiB) | audit verify ev/s (× floor) | export MB/s | verify-export ev/s (× floor) | snapshot B/key | key list ms |");
    println!(
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for size in sizes {
        let (fill_rate, writer_rss) = fill_in_child(&data, &keys, size, &mut batch_number);
        let ledger = dir
            .open(&keyledger::datadir::KeySource::Default)
            .expect("open");
        let events = ledger.durable_seq();
        let store = ledger.store().clone();
        let sample: Vec<usize> = (0..2000u64)
            .filter_map(|i| store.get(1 + i * (events / 2000).max(1)).ok().flatten())
            .map(|r| r.body.len())
            .collect();
        let mean_body = sample.iter().sum::<usize>() as f64 / sample.len() as f64;
        drop(ledger);
        let disk = store.size_on_disk().expect("size") as f64 / events as f64;
        drop(store);
        let items = keyledger::store::SledStore::open(&data.join("log"))
            .expect("reopen the log")
            .item_count() as f64
            / events as f64;

        let (server, ready, checked) = serve(&data, &client);
        let pid = server.child.id();
        let rss_ready = rss_kib(pid, "VmRSS:") as f64 / 1024.0;
        let ip = ip_of(17, 1);
        let request_id = format!("r-{}", batch_number / 2);
        let q = |filter: &str| format!("{}/v1/events?from=-1h&limit=1000&{filter}", server.base);
        let by_ip = median_ms(&client, &q(&format!("ip={ip}")), &gateway, 11);
        let by_request = median_ms(
            &client,
            &q(&format!("request_id={request_id}")),
            &gateway,
            11,
        );
        let by_type = median_ms(&client, &q("type=key.created"), &gateway, 11);
        let by_key = median_ms(&client, &q(&format!("key_id={}", keys[17])), &gateway, 11);
        let key_list = median_ms(
            &client,
            &format!("{}/v1/keys?limit=100", server.base),
            &gateway,
            11,
        );
        let usage = median_ms(
            &client,
            &format!("{}/v1/usage?from=-24h&group_by=ip&top=100", server.base),
            &gateway,
            3,
        );
        let (verify_rate, rss_load) = verify_load(
            &server.base,
            &gateway,
            &service,
            pid,
            Duration::from_secs(10),
        );
        drop(server);
        // The clean shutdown wrote the projection snapshot: its size per key.
        let snapshot_per_key = keyledger::store::SledStore::open(&data.join("log"))
            .expect("reopen the log")
            .get_side(b"snapshot/projections/body")
            .expect("read the snapshot")
            .map_or(0, |body| body.len()) as f64
            / key_count as f64;

        let (replay_secs, replay_mib) = timed_cli(&data, &["replay"]);
        let (verify_secs, _) = timed_cli(&data, &["audit", "verify"]);
        let export = tmp.path().join("export.jsonl");
        let export_arg = export.to_string_lossy().to_string();
        let (export_secs, _) = timed_cli(&data, &["audit", "export", "-o", &export_arg]);
        let export_bytes = std::fs::metadata(&export).map(|m| m.len()).unwrap_or(0) as f64;
        let public = data.join("signing.pub").to_string_lossy().to_string();
        let (check_secs, _) = timed_cli(
            &data,
            &[
                "audit",
                "verify-export",
                &export_arg,
                "--public-key",
                &public,
            ],
        );
        let _ = std::fs::remove_file(&export);
        let events = events as f64;
        println!(
            "| {events:.0} | {fill_rate:.0} | {writer_rss:.0} | {items:.4} | {ready:.2} | {checked:.1} | {rss_ready:.0} | {rss_load:.0} | {verify_rate:.0} | {by_ip:.1} | {by_request:.1} | {by_type:.1} | {by_key:.1} | {usage:.0} | {disk:.0} ({mean_body:.0}) | {replay_secs:.1} ({replay_mib:.0}) | {:.0} ({:.2}) | {:.0} | {:.0} ({:.2}) | {snapshot_per_key:.0} | {key_list:.1} |",
            events / verify_secs,
            events / verify_secs / floor,
            export_bytes / export_secs / 1e6,
            events / check_secs,
            events / check_secs / floor,
        );
    }
}
