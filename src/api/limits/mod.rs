//! Limits below the router (issue 28): how long a request head may take to arrive, how many connections may be
//! open at once, and how large a head may be — enforced on each connection before hyper parses anything, and
//! answered (408, 414, 431, 400) by the router as JSON, with `X-Request-Id` and `Cache-Control`, like every error.
//!
//! Each accepted connection is wrapped by [`Guard`]: it holds one of `max_connections` places, and its request
//! heads are held back until whole and checked (`wire`, `head`). A head that is refused or late never reaches
//! hyper: hyper is handed a stand-in request instead, carrying the refusal and a secret made once per process,
//! and [`answer_refused`] (a router layer) answers it; the connection then closes.

mod conn;
mod head;
mod stream;
mod wire;

pub use conn::Guard;
pub use head::{MAX_HEADERS, MAX_HEAD_BYTES, MAX_TARGET_BYTES};

use super::error::ApiError;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use head::Refusal;
use std::sync::OnceLock;
use std::time::Duration;

/// How long a request head may take from its first byte (the default of `serve --header-timeout`).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay open with no request begun (`serve --idle-timeout`): longer than common
/// proxies keep idle upstream connections (nginx: 60 s), so that they close first.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// How many connections may be open at once (`serve --max-connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The limits a server enforces on its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A request head (request line and header fields) must arrive whole this soon after its first byte, or it
    /// is answered 408 and the connection closed.
    pub header_timeout: Duration,
    /// A connection on which no request has begun for this long (a new one, or kept alive between requests) is
    /// closed without an answer.
    pub idle_timeout: Duration,
    /// Connections beyond this many open ones are refused (503 over plain HTTP; closed over TLS).
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Limits {
    /// Refuses limits a server cannot work with (zero).
    pub fn check(&self) -> Result<(), String> {
        if self.header_timeout.is_zero() || self.idle_timeout.is_zero() {
            return Err("--header-timeout and --idle-timeout must be longer than zero".into());
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        Ok(())
    }
}

/// The header of a stand-in request; removed from every request, so a caller cannot send one.
const STAND_IN: &str = "x-keyledger-refused";

/// A random value made once per process that marks stand-in requests as made here.
fn secret() -> &'static str {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET.get_or_init(|| {
        use rand_core::RngCore;
        let mut bytes = [0u8; 16];
        match rand_core::OsRng.try_fill_bytes(&mut bytes) {
            Ok(()) => hex::encode(bytes),
            Err(_) => uuid::Uuid::now_v7().simple().to_string(),
        }
    })
}

/// The request hyper is handed instead of a refused head: the refused request's method and target when they
/// were sound (so the request log names them), its request id, and the refusal in [`STAND_IN`].
fn stand_in(refusal: &Refusal) -> Vec<u8> {
    const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let (method, target) = match &refusal.line {
        Some((method, target)) if METHODS.contains(&method.as_str()) && target.starts_with('/') => {
            (method.as_str(), target.as_str())
        }
        _ => ("GET", "/"),
    };
    let request_id = refusal
        .request_id
        .as_ref()
        .map(|id| format!("x-request-id: {id}\r\n"))
        .unwrap_or_default();
    // The message is made here from ASCII text, header names (tokens) and hex: a valid header value.
    let message: String = refusal
        .message
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect();
    format!(
        "{method} {target} HTTP/1.1\r\nhost: keyledger\r\nconnection: close\r\n{request_id}{STAND_IN}: {} {} {message}\r\n\r\n",
        secret(),
        refusal.status.as_u16(),
    )
    .into_bytes()
}

/// The stable code of a refusal's status (those [`super::conventions`] gives hyper's own answers).
fn code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        _ => "bad_request",
    }
}

/// Router layer: answers a stand-in request with the refusal it carries (the connection then closes), and
/// removes the stand-in header from every other request.
pub async fn answer_refused(mut request: Request, next: Next) -> Response {
    let Some(value) = request.headers_mut().remove(STAND_IN) else {
        return next.run(request).await;
    };
    let refusal = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix(secret()))
        .and_then(|v| v.strip_prefix(' '))
        .and_then(|v| v.split_once(' '))
        .and_then(|(status, message)| {
            let status = StatusCode::from_bytes(status.as_bytes()).ok()?;
            Some((status, message.to_string()))
        });
    let Some((status, message)) = refusal else {
        return next.run(request).await;
    };
    let message = super::error::redact_secrets(&message);
    tracing::info!(status = status.as_u16(), reason = %message, "request refused before routing");
    let mut response = ApiError::new(status, code(status), message).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
