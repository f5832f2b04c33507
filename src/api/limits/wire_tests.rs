//! Unit tests of the request-stream framing (`wire.rs`) and head checks (`head.rs`): where heads and bodies end,
//! fed whole or a byte at a time, and which heads are refused with which status.

use super::super::head::{MAX_HEADERS, MAX_HEAD_BYTES, MAX_TARGET_BYTES};
use super::*;
use axum::http::StatusCode;

/// What the stream hands up, fed `input` in pieces of `piece` bytes: the released runs, and the refusal if any.
fn feed(input: &[u8], piece: usize) -> (Vec<u8>, Option<super::super::head::Refusal>, Wire) {
    let mut wire = Wire::default();
    let mut held = Vec::new();
    let mut out = Vec::new();
    let mut chunks = input.chunks(piece.max(1));
    loop {
        match wire.step(&held, false) {
            Step::Release(n) if n > 0 => {
                // Hand up in two halves, as a small read buffer would.
                let (first, second) = held[..n].split_at(n / 2);
                for part in [first, second] {
                    wire.released(part);
                    out.extend_from_slice(part);
                }
                held.drain(..n);
            }
            Step::Refuse(refusal) => return (out, Some(refusal), wire),
            _ => match chunks.next() {
                Some(chunk) => held.extend_from_slice(chunk),
                None => return (out, None, wire),
            },
        }
    }
}

fn refused(input: &[u8]) -> (StatusCode, String) {
    for piece in [1, 7, input.len()] {
        let (_, refusal, _) = feed(input, piece);
        let refusal =
            refusal.unwrap_or_else(|| panic!("not refused: {:?}", String::from_utf8_lossy(input)));
        if piece == input.len() {
            return (refusal.status, refusal.message);
        }
    }
    unreachable!()
}

const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn whole_heads_and_bodies_are_released_and_the_next_head_waits() {
    let post = b"POST /v1/keys HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    let chunked = b"POST /v1/verify HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let stream = [&b"\r\n"[..], GET, post, chunked, GET].concat();
    for piece in [1, 2, 3, 5, 64, stream.len()] {
        let (out, refusal, wire) = feed(&stream, piece);
        assert_eq!(refusal, None);
        assert_eq!(out, stream, "piece {piece}");
        assert_eq!(wire.heads(), 4);
        assert!(wire.in_head());
    }
    // A partial head is held back.
    let (out, refusal, wire) = feed(&[GET, b"GET /healthz HTTP/1.1\r\nHo"].concat(), 4);
    assert_eq!((out.as_slice(), refusal), (GET, None));
    assert!(wire.in_head());
}

#[test]
fn a_body_is_released_up_to_its_end_only() {
    let mut wire = Wire::default();
    let head = b"POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\n";
    let held = [&head[..], b"abcGET"].concat();
    assert_eq!(wire.step(&held, false), Step::Release(head.len()));
    wire.released(head);
    assert_eq!(wire.step(b"abcGET", false), Step::Release(3));
    wire.released(b"abc");
    assert!(wire.in_head());
    assert_eq!(wire.step(b"GET", false), Step::Wait);
}

#[test]
fn http2_upgrades_and_connect_are_passed_through() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut wire = Wire::default();
    assert_eq!(wire.step(b"PRI * HT", false), Step::Wait);
    assert_eq!(wire.step(preface, false), Step::Release(preface.len()));
    for head in [
        &b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"[..],
        b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
    ] {
        let (out, refusal, wire) = feed(&[head, b"\x16\x03\x01 anything"].concat(), 3);
        assert_eq!(refusal, None);
        assert_eq!(out.len(), head.len() + 12);
        assert!(!wire.in_head());
    }
}

#[test]
fn a_long_target_is_414_before_its_line_ends() {
    let target = "a".repeat(MAX_TARGET_BYTES + 1);
    let (status, _) = refused(format!("GET /{target}").as_bytes());
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    let (status, _) = refused(format!("GET /{target} HTTP/1.1\r\n\r\n").as_bytes());
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    let fits = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET_BYTES - 1));
    assert_eq!(feed(fits.as_bytes(), 1000).1, None);
}

#[test]
fn a_large_head_or_too_many_fields_is_431() {
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}", "b".repeat(MAX_HEAD_BYTES));
    assert_eq!(
        refused(big.as_bytes()).0,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let fields = |n: usize| -> String {
        let lines: String = (0..n).map(|i| format!("X-{i}: {i}\r\n")).collect();
        format!("GET / HTTP/1.1\r\n{lines}\r\n")
    };
    assert_eq!(feed(fields(MAX_HEADERS).as_bytes(), 50).1, None);
    let (status, message) = refused(fields(MAX_HEADERS + 1).as_bytes());
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(message.contains("100 header fields"), "{message}");
}

#[test]
fn bytes_and_framing_httparse_or_hyper_refuse_are_400() {
    for (head, says) in [
        (
            &b"GET / HTTP/1.1\r\nX-Bad: a\x01b\r\n\r\n"[..],
            "header field x-bad: control character 0x01",
        ),
        (b"GET / HTTP/1.1\r\nX-Bad: a\x7f\r\n\r\n", "0x7f"),
        (b"GET / HTTP/1.1\r\nX-Bad: a\rb\r\n\r\n", "0x0d"),
        (
            b"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
            "malformed header field",
        ),
        (
            b"GET / HTTP/1.1\r\n folded\r\n\r\n",
            "malformed header field",
        ),
        (b"GET  / HTTP/1.1\r\n\r\n", "malformed request line"),
        (b"GET / HTTP/2.0\r\n\r\n", "malformed request line"),
        (b"GET /a\x01 HTTP/1.1\r\n\r\n", "malformed request line"),
        (b"GET /a\xff HTTP/1.1\r\n\r\n", "not a valid URI"),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "not chunked",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "Content-Length",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "Content-Length",
        ),
    ] {
        let (status, message) = refused(head);
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(head)
        );
        assert!(message.contains(says), "{message} / {says}");
    }
    // Hyper's own leniencies are kept: bare LF line ends, equal repeated lengths, a length after chunked.
    for head in [
        &b"GET / HTTP/1.1\nHost: x\n\n"[..],
        b"POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-Obs: caf\xc3\xa9\t\r\n\r\n",
    ] {
        let (out, refusal, wire) = feed(head, 3);
        assert_eq!(refusal, None, "{}", String::from_utf8_lossy(head));
        assert_eq!(out, head);
        assert!(wire.in_head());
    }
}

#[test]
fn a_refusal_names_the_request_line_and_the_callers_request_id() {
    let (_, refusal, _) = feed(
        b"PATCH /v1/keys/1 HTTP/1.1\r\nX-Request-Id: req-7\r\nX-Bad: \x02\r\n\r\n",
        5,
    );
    let refusal = refusal.unwrap();
    assert_eq!(refusal.line, Some(("PATCH".into(), "/v1/keys/1".into())));
    assert_eq!(refusal.request_id.as_deref(), Some("req-7"));
    // A head cut short: what arrived whole is named; an unsound request id is not kept.
    let mut wire = Wire::default();
    assert_eq!(
        wire.step(b"GET /slow HTTP/1.1\r\nX-Request-Id: a b\r\nX-Slo", false),
        Step::Wait
    );
    let late = wire
        .refusal(StatusCode::REQUEST_TIMEOUT, "late".into())
        .unwrap();
    assert_eq!(late.line, Some(("GET".into(), "/slow".into())));
    assert_eq!(late.request_id, None);
}

#[test]
fn a_chunked_body_hyper_refuses_turns_the_rest_into_a_pass_through() {
    let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let stream = [&head[..], b"5\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n"].concat();
    let (out, refusal, wire) = feed(&stream, 4);
    assert_eq!(refusal, None);
    assert_eq!(out, stream);
    assert!(!wire.in_head());
}
