//! The conventions every response follows, whichever layer produced it: an `X-Request-Id` (the caller's when
//! sane, else a new one, also handed to the handler; one holding a keyledger secret is refused with 400 before
//! anything echoes, logs or records it), `Cache-Control: no-store` (answers carry key material and
//! secrets), `WWW-Authenticate` on 401, and a JSON error body with a stable code on every error status, including
//! those made by the router (404, 405) and by the limit and timeout layers (413, 408).

use super::error::ApiError;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const REQUEST_ID: &str = "x-request-id";
/// The header naming a retried write (see idempotency.rs), and the one marking an answer as a replay.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The request id: the caller's `X-Request-Id` when it is sane (1-128 of `[A-Za-z0-9._:-]`, and no keyledger
/// secret in it), else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
                && !crate::secret::contains_secret(v)
        })
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_string)
}

/// Refuses a request whose `X-Request-Id` holds a keyledger secret (the grammar alone lets every secret through):
/// the id would be echoed, logged and recorded. The answer names the header and never repeats its value.
pub fn check_request_id(headers: &HeaderMap) -> Result<(), ApiError> {
    let holds_secret = headers
        .get_all(REQUEST_ID)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(crate::secret::contains_secret);
    if holds_secret {
        return Err(ApiError::bad_request(
            "X-Request-Id",
            "holds a keyledger secret (kl_…), which never belongs here; consider it exposed and rotate its key",
        ));
    }
    Ok(())
}

/// The stable code of an error status that no handler named.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        status if status.is_server_error() => "internal_error",
        _ => "error",
    }
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The middleware; install it outermost so it sees every response.
pub async fn conventions(mut request: Request, next: Next) -> Response {
    let refused = check_request_id(request.headers()).err();
    let id = request_id(request.headers());
    // The handler's authentication reads the same header, so the recorded request id is the one echoed.
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    let mut response = match refused {
        // Answered here, outside the request log's layer and before any handler: only the new id is logged.
        Some(refusal) => {
            tracing::info!(method = %request.method(), path = %request.uri().path(), request_id = %id,
                "refused with 400: the X-Request-Id holds a keyledger secret");
            refusal.into_response()
        }
        None => next.run(request).await,
    };
    let status = response.status();
    if (status.is_client_error() || status.is_server_error()) && !is_json(&response) {
        let message = status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_string();
        let body = serde_json::json!({ "error": { "code": code_for(status), "message": message } });
        let headers = std::mem::take(response.headers_mut());
        response = (status, axum::Json(body)).into_response();
        for (name, value) in headers.iter() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, value);
    }
    // Answers carry key material: never stored, unless a handler says otherwise for a success (immutable tiles).
    if !(status.is_success() && headers.contains_key(header::CACHE_CONTROL)) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"keyledger\""),
        );
    }
    response
}

/// The CORS layer for the configured origins, or none (the default: browsers may not call across origins).
pub fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, Method};
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if allowed.is_empty() {
        return None;
    }
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(allowed)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static(REQUEST_ID),
                HeaderName::from_static(IDEMPOTENCY_KEY),
            ])
            .expose_headers([
                HeaderName::from_static(REQUEST_ID),
                HeaderName::from_static(IDEMPOTENT_REPLAYED),
                header::RETRY_AFTER,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_status_has_a_code() {
        for status in [405u16, 408, 413, 414, 431, 500, 503] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_ne!(code_for(status), "error", "{status}");
        }
    }
}

/// The HTTP API's browser-facing settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Origins (`https://console.example.com`) whose pages may call the API from a browser. Empty (the default):
    /// no CORS headers at all, so browsers refuse cross-origin calls.
    pub cors_origins: Vec<String>,
}

impl HttpConfig {
    /// Each origin is a scheme and a host (and port), nothing more.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(bad) = self.cors_origins.iter().find(|o| {
            !(o.starts_with("https://") || o.starts_with("http://"))
                || o.ends_with('/')
                || o.contains(char::is_whitespace)
        }) {
            return Err(format!(
                "http.cors_origins: {bad:?} is not an origin like https://console.example.com (scheme and host, \
                 no path)"
            ));
        }
        Ok(())
    }
}
