//! `keyledger serve` stops gracefully on SIGTERM under load: it exits 0, and every event it acknowledged is in the
//! log, which verifies.
#![cfg(unix)]

mod common;
#[path = "common/process.rs"]
mod process;
use process::free_port;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigterm_under_load_drains_and_keeps_every_acknowledged_event() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, text) = common::run_cli(&data, &["init"]);
    assert_eq!(code, 0, "{text}");
    let admin = text
        .split_whitespace()
        .find(|w| w.starts_with("kl_keyledger_"))
        .expect("the bootstrap admin key is printed")
        .to_string();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("--data")
        .arg(&data)
        .args(["--log-format", "json", "serve", "--addr", &addr])
        .env_remove("KEYLEDGER_SIGNING_KEY")
        .env_remove("KEYLEDGER_SIGNING_KEY_FILE")
        .env("KEYLEDGER_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(tmp.path().join("serve.log")).unwrap(),
        ))
        .spawn()
        .expect("serve starts");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = format!("http://{addr}");
    let acknowledged: Vec<u64> = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let ready = Instant::now();
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(
                ready.elapsed() < Duration::from_secs(20),
                "serve never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (client, base, admin) = (client.clone(), base.clone(), admin.clone());
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                let started = Instant::now();
                // Bounded: at most 10 s or until the server stops answering.
                while started.elapsed() < Duration::from_secs(10) {
                    let answer = client
                        .post(format!("{base}/v1/verify"))
                        .bearer_auth(&admin)
                        .json(&serde_json::json!({"secret": admin, "ip": "10.0.0.1"}))
                        .send()
                        .await;
                    let Ok(response) = answer else { break };
                    if !response.status().is_success() {
                        break;
                    }
                    let Ok(body) = response.json::<serde_json::Value>().await else {
                        break;
                    };
                    seqs.push(body["seq"].as_u64().expect("an acknowledged seq"));
                }
                seqs
            }));
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let status = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.extend(task.await.unwrap());
        }
        seqs
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "a graceful stop exits 0, not {exit:?}");
    assert!(acknowledged.len() > 10, "load ran: {}", acknowledged.len());
    let dir = keyledger::datadir::DataDir::new(&data);
    let store = dir.open_store().expect("the log reopens");
    for seq in &acknowledged {
        let record = store.get(*seq).unwrap();
        assert!(record.is_some(), "acknowledged event {seq} is in the log");
    }
    common::assert_verifies(store.as_ref(), &dir);
    // `info` logs one JSON line per request with its request id; no colour codes off a terminal; no secrets.
    let log = std::fs::read_to_string(tmp.path().join("serve.log")).unwrap();
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a log file");
    assert!(!log.contains(&admin), "no secret in the log");
    let requests = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| {
            entry["span"]["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
        })
        .filter(|entry| {
            entry["fields"]["status"].is_number()
                || entry["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("response"))
        })
        .count();
    assert!(
        requests >= acknowledged.len(),
        "{requests} request lines for {} answers:\n{}",
        acknowledged.len(),
        log.lines().take(3).collect::<Vec<_>>().join("\n")
    );
}
