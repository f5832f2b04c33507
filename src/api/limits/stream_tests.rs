//! Unit tests of the guarded stream (`stream.rs`) over an in-memory pipe: whole heads pass unchanged, a late head
//! becomes a 408 stand-in, a connection on which nothing begins ends, a refused head is never handed up.

use super::*;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn guarded(
    header_timeout: Duration,
    idle_timeout: Duration,
) -> (Guarded<DuplexStream>, DuplexStream) {
    let (server, client) = tokio::io::duplex(1 << 20);
    let place = Arc::new(tokio::sync::Semaphore::new(1))
        .try_acquire_owned()
        .expect("a free place");
    let limits = Limits {
        header_timeout,
        idle_timeout,
        max_connections: 1,
    };
    (Guarded::new(server, limits, place), client)
}

/// Reads what the guarded stream hands up until `until` is in it, or it ends, or 3 s pass.
async fn read_until(stream: &mut Guarded<DuplexStream>, until: &str) -> (String, bool) {
    let mut text = Vec::new();
    let mut chunk = [0u8; 1024];
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let n = stream.read(&mut chunk).await.expect("read");
            if n == 0 {
                return true;
            }
            text.extend_from_slice(&chunk[..n]);
            if String::from_utf8_lossy(&text).contains(until) {
                return false;
            }
        }
    })
    .await
    .unwrap_or(false);
    (String::from_utf8_lossy(&text).into_owned(), ended)
}

#[tokio::test]
async fn whole_heads_and_bodies_pass_unchanged() {
    let (mut stream, mut client) = guarded(Duration::from_secs(5), Duration::from_secs(5));
    let sent =
        "POST /v1/keys HTTP/1.1\r\ncontent-length: 4\r\n\r\nbodyGET /healthz HTTP/1.1\r\n\r\n";
    client.write_all(sent.as_bytes()).await.unwrap();
    let (got, ended) = read_until(&mut stream, "healthz HTTP/1.1\r\n\r\n").await;
    assert_eq!((got.as_str(), ended), (sent, false));
}

#[tokio::test]
async fn a_head_that_does_not_finish_in_time_becomes_a_408_stand_in() {
    let (mut stream, mut client) = guarded(Duration::from_millis(200), Duration::from_secs(5));
    let started = Instant::now();
    client
        .write_all(
            b"GET /v1/keys HTTP/1.1\r\nX-Request-Id: late-1\r\nAuthorization: Bearer kl_secret",
        )
        .await
        .unwrap();
    let (got, _) = read_until(&mut stream, "\r\n\r\n").await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(got.starts_with("GET /v1/keys HTTP/1.1\r\n"), "{got}");
    assert!(got.contains("\r\nx-request-id: late-1\r\n"), "{got}");
    assert!(
        got.contains(&format!(
            "{}: {} 408 ",
            super::super::STAND_IN,
            super::super::secret()
        )),
        "{got}"
    );
    assert!(
        !got.contains("kl_secret"),
        "the caller's fields are not handed up: {got}"
    );
    // Whatever the caller sends next is dropped; the stream never ends for hyper while it answers.
    client
        .write_all(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut chunk = [0u8; 64];
    let more = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut chunk)).await;
    assert!(more.is_err(), "nothing more is handed up");
}

#[tokio::test]
async fn a_new_connection_on_which_nothing_begins_ends_at_the_idle_limit() {
    let (mut stream, _client) = guarded(Duration::from_millis(100), Duration::from_millis(300));
    let started = Instant::now();
    let (got, ended) = read_until(&mut stream, "never").await;
    assert_eq!((got.as_str(), ended), ("", true));
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_refused_head_is_answered_by_a_stand_in_at_once() {
    let (mut stream, mut client) = guarded(Duration::from_secs(5), Duration::from_secs(5));
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nX-Bad: \x01\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = read_until(&mut stream, "\r\n\r\n").await;
    assert!(got.starts_with("GET /healthz HTTP/1.1\r\n"), "{got}");
    assert!(
        got.contains(" 400 header field x-bad: control character 0x01"),
        "{got}"
    );
}
