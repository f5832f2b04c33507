//! `keyledger serve` under connections that misbehave below the router (issue 28): slow request heads are answered
//! 408 and closed, connections beyond the cap are refused while the server stays healthy, errors made before
//! routing (414, 431, a control character in a header) are JSON with an `X-Request-Id`, a configuration error
//! stops the start before anything is announced, and `--log-format json` keeps the whole stream JSON.
//! Loopback only, a bounded number of connections, every wait bounded.
#![cfg(unix)]

mod common;
#[path = "common/process.rs"]
mod process;
use process::{free_port, Served};

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fresh ledger directory (`keyledger init`).
fn ledger() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, text) = common::run_cli(&data, &["init"]);
    assert_eq!(code, 0, "{text}");
    (tmp, data)
}

fn host_port(served: &Served) -> String {
    served.base.trim_start_matches("http://").to_string()
}

/// What came back on a raw connection: the answer (if any), whether the server closed, and when.
#[derive(Debug, Default)]
struct Answer {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    closed: bool,
    elapsed: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A JSON error answer with `status` and `code`, a request id and `Cache-Control: no-store`.
    fn assert_json_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, Some(status), "{self:?}");
        assert!(
            self.header("content-type")
                .is_some_and(|v| v.starts_with("application/json")),
            "{self:?}"
        );
        assert_eq!(self.json()["error"]["code"], code, "{self:?}");
        assert!(self.json()["error"]["message"].is_string(), "{self:?}");
        assert!(
            self.header("x-request-id").is_some_and(|v| !v.is_empty()),
            "{self:?}"
        );
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
    }
}

/// An answer's status, header fields (names in lower case) and body.
type Parsed = (u16, Vec<(String, String)>, Vec<u8>);

/// Parses one answer from `bytes` once its head and (by Content-Length) body are there.
fn parse(bytes: &[u8]) -> Option<Parsed> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let body = bytes.get(end + 4..end + 4 + length)?.to_vec();
    Some((status, headers, body))
}

/// Reads from `stream` until the server closes or `limit` passes (or, with `until_answer`, a whole answer came);
/// calls `tick` between reads (every 250 ms at most).
fn read_answer(
    stream: &mut TcpStream,
    started: Instant,
    limit: Duration,
    until_answer: bool,
    mut tick: impl FnMut(&mut TcpStream),
) -> Answer {
    stream
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let mut bytes = Vec::new();
    let mut answer = Answer::default();
    let mut chunk = [0u8; 16 * 1024];
    while started.elapsed() < limit {
        match stream.read(&mut chunk) {
            Ok(0) => {
                answer.closed = true;
                break;
            }
            Ok(n) => {
                if bytes.is_empty() {
                    answer.elapsed = started.elapsed();
                }
                bytes.extend_from_slice(&chunk[..n]);
                if until_answer && parse(&bytes).is_some() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => tick(stream),
            Err(_) => {
                answer.closed = true;
                break;
            }
        }
    }
    if let Some((status, headers, body)) = parse(&bytes) {
        answer.status = Some(status);
        answer.headers = headers;
        answer.body = body;
    }
    answer
}

/// Sends `request` on a new connection (write errors ignored: the server may stop reading) and reads the answer
/// until the server closes.
fn exchange(addr: &str, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let _ = stream.write_all(request);
    read_answer(&mut stream, started, Duration::from_secs(5), false, |_| {})
}

/// Sends `request` on `stream` and reads one answer, leaving the connection open.
fn ask(stream: &mut TcpStream, request: &str) -> Answer {
    let started = Instant::now();
    stream.write_all(request.as_bytes()).unwrap();
    read_answer(stream, started, Duration::from_secs(5), true, |_| {})
}

fn healthz_ok(base: &str) -> bool {
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .get(format!("{base}/healthz"))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

#[test]
fn slow_request_heads_are_answered_408_and_closed_while_other_requests_are_served() {
    let (_tmp, data) = ledger();
    let served = Served::start_with_env(&data, &[], &[("KEYLEDGER_HEADER_TIMEOUT", "1s")]);
    let addr = host_port(&served);
    // 20 slowloris connections: a request line and part of the headers, then nothing (even) or a byte every
    // 250 ms (odd), which must not keep the connection alive past the head timeout.
    let slow: Vec<_> = (0..20)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&addr).unwrap();
                let started = Instant::now();
                let head = format!(
                    "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Request-Id: slow-{i}\r\nX-Slow: "
                );
                stream.write_all(head.as_bytes()).unwrap();
                let answer = read_answer(
                    &mut stream,
                    started,
                    Duration::from_secs(6),
                    false,
                    |stream| {
                        if i % 2 == 1 {
                            let _ = stream.write_all(b"a");
                        }
                    },
                );
                (i, answer)
            })
        })
        .collect();
    // Meanwhile, ordinary requests on new connections are answered, promptly.
    let started = Instant::now();
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_millis(1500) {
        let asked = Instant::now();
        assert!(
            healthz_ok(&served.base),
            "a normal request is served beside the slow ones"
        );
        slowest = slowest.max(asked.elapsed());
        answered += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        slowest < Duration::from_secs(1),
        "slowest normal answer {slowest:?}"
    );
    let mut times = Vec::new();
    for handle in slow {
        let (i, answer) = handle.join().unwrap();
        answer.assert_json_error(408, "request_timeout");
        assert_eq!(
            answer.header("x-request-id"),
            Some(format!("slow-{i}").as_str())
        );
        assert!(
            answer.closed,
            "the connection is closed after the 408: {answer:?}"
        );
        assert!(
            answer.elapsed >= Duration::from_millis(900) && answer.elapsed < Duration::from_secs(3),
            "answered after {:?}",
            answer.elapsed
        );
        times.push(answer.elapsed);
    }
    times.sort();
    eprintln!(
        "408 after {:?} (first) to {:?} (last); {answered} normal requests answered meanwhile, slowest {slowest:?}",
        times[0],
        times[times.len() - 1]
    );
    assert!(healthz_ok(&served.base));
}

#[test]
fn connections_beyond_the_cap_are_refused_and_the_server_recovers_when_they_go() {
    let (_tmp, data) = ledger();
    let served = Served::start_with_env(&data, &[], &[("KEYLEDGER_MAX_CONNECTIONS", "4")]);
    let addr = host_port(&served);
    std::thread::sleep(Duration::from_millis(300)); // the readiness probe's connection is gone
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    // Four kept-alive connections, each answered once: they hold the four places.
    let open = || {
        let mut stream = TcpStream::connect(&addr).unwrap();
        let answer = ask(&mut stream, &request);
        assert_eq!(answer.status, Some(200), "{answer:?}");
        stream
    };
    let held: Vec<_> = (0..4).map(|_| open()).collect();
    let refused = exchange(&addr, request.as_bytes());
    refused.assert_json_error(503, "too_many_connections");
    assert!(refused.closed, "{refused:?}");
    eprintln!("a fifth connection refused after {:?}", refused.elapsed);
    drop(held);
    let started = Instant::now();
    while !healthz_ok(&served.base) {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the server answers again once the held connections are gone"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "served again {:?} after the held connections closed",
        started.elapsed()
    );
    // All four places are free again.
    let again: Vec<_> = (0..4).map(|_| open()).collect();
    drop(again);
}

#[test]
fn errors_made_below_the_router_are_json_with_a_request_id() {
    let (_tmp, data) = ledger();
    let served = Served::start(&data, &[]);
    let addr = host_port(&served);
    let host = format!("Host: {addr}\r\n");
    let long_target = |n: usize| format!("GET /v1/keys?q={} HTTP/1.1\r\n{host}\r\n", "a".repeat(n));
    // A target over the server's limit (8 KiB), and one over hyper's own (64 KiB).
    for n in [9_000, 70_000] {
        exchange(&addr, long_target(n).as_bytes()).assert_json_error(414, "uri_too_long");
    }
    // A head over 32 KiB, one far over hyper's own buffer, and more than 100 header fields.
    for n in [40_000, 500_000] {
        let request = format!(
            "GET /healthz HTTP/1.1\r\n{host}X-Big: {}\r\n\r\n",
            "b".repeat(n)
        );
        exchange(&addr, request.as_bytes()).assert_json_error(431, "headers_too_large");
    }
    let many: String = (0..101).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    let request = format!("GET /healthz HTTP/1.1\r\n{host}{many}\r\n");
    exchange(&addr, request.as_bytes()).assert_json_error(431, "headers_too_large");
    // A control character in a header value (the caller's request id, on an earlier line, comes back).
    for bad in [b'\x01', b'\x7f'] {
        let mut request =
            format!("GET /healthz HTTP/1.1\r\n{host}X-Request-Id: limits-bad-1\r\nX-Bad: a")
                .into_bytes();
        request.push(bad);
        request.extend_from_slice(b"b\r\n\r\n");
        let answer = exchange(&addr, &request);
        answer.assert_json_error(400, "bad_request");
        assert_eq!(answer.header("x-request-id"), Some("limits-bad-1"));
        assert!(answer.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("x-bad")));
    }
    // Ordinary requests, on a kept-alive connection too, are untouched.
    let mut stream = TcpStream::connect(&addr).unwrap();
    for _ in 0..3 {
        let answer = ask(&mut stream, &format!("GET /healthz HTTP/1.1\r\n{host}\r\n"));
        assert_eq!(answer.status, Some(200), "{answer:?}");
    }
}

/// keyledger.toml gains an alert sink whose secret comes from an environment variable that is not set.
fn add_sink_without_secret(data: &Path) {
    let config = data.join("keyledger.toml");
    let mut text = std::fs::read_to_string(&config).unwrap_or_default();
    text.push_str(
        "\n[[alerts.sinks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret_env = \"KEYLEDGER_TEST_UNSET_ALERT_SECRET\"\n",
    );
    std::fs::write(&config, text).unwrap();
}

#[test]
fn serve_with_a_missing_alert_sink_secret_exits_2_without_announcing() {
    let (_tmp, data) = ledger();
    add_sink_without_secret(&data);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--addr", &addr])
        .env_remove("KEYLEDGER_TEST_UNSET_ALERT_SECRET")
        .env_remove("KEYLEDGER_SIGNING_KEY")
        .env_remove("KEYLEDGER_SIGNING_KEY_FILE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("serve kept running without its alert sink's secret");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("KEYLEDGER_TEST_UNSET_ALERT_SECRET"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("serving"),
        "announced before failing: {stderr}"
    );
}

#[test]
fn with_log_format_json_every_line_of_the_stream_is_json() {
    let (_tmp, data) = ledger();
    let served = Served::start(&data, &["--log-format", "json"]);
    assert!(healthz_ok(&served.base));
    let (ok, log) = served.stop();
    assert!(ok, "{log}");
    let mut messages = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{log}"));
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["timestamp"].is_string(), "{line}");
        messages.push(
            entry["fields"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    for said in ["serving", "shutting down", "stopped"] {
        assert!(
            messages.iter().any(|m| m.contains(said)),
            "no JSON line says {said:?}:\n{log}"
        );
    }
}
