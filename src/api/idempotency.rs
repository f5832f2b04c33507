//! `Idempotency-Key` on POSTs: the same key and body within 24 hours get the first successful answer again,
//! replayed (`Idempotent-Replayed: true`) instead of acting twice; the same key with another body is a 422.
//!
//! Answers survive restarts as side entries of the store, sealed (ChaCha20-Poly1305) under a key derived from
//! the caller's own credential and the idempotency key, and filed under another hash of the two. A create or a
//! rotation answers with a new secret; on disk it is only readable by whoever presents the same credential
//! again, so no secret is stored in the clear. A replay authenticates like the first request (and is recorded),
//! so a key revoked since cannot fetch the answer.

use super::auth::{authenticate, presented, ADMIN, VERIFY};
use super::error::ApiError;
use super::AppState;
use crate::time::LedgerTime;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;

pub use super::conventions::IDEMPOTENCY_KEY as HEADER;
pub use super::conventions::IDEMPOTENT_REPLAYED as REPLAYED;
/// How long an answer is kept.
pub const RETENTION_SECS: i64 = 24 * 3600;
const PREFIX: &[u8] = crate::store::side_keys::IDEMPOTENCY;
const MAX_KEY_LEN: usize = 255;

/// Idempotency keys whose first request is still running (a concurrent duplicate is a 409).
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<[u8; 32]>>);

/// What is filed under `idem/<id>`.
#[derive(Serialize, Deserialize)]
struct Stored {
    v: u8,
    created: LedgerTime,
    /// SHA-256 of method, path and body: what "the same request" means.
    fingerprint: String,
    nonce: String,
    sealed: String,
}

/// The answer inside `sealed`.
#[derive(Serialize, Deserialize)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn derive(label: &str, credential: &str, key: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(format!("keyledger/idempotency/{label}/v1\n"));
    hash.update(credential.as_bytes());
    hash.update(b"\n");
    hash.update(key.as_bytes());
    hash.finalize().into()
}

fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str());
    hash.update(b" ");
    hash.update(path);
    hash.update(b"\n");
    hash.update(body);
    hex::encode(hash.finalize())
}

fn entry_key(id: &[u8; 32]) -> Vec<u8> {
    [PREFIX, id.as_slice()].concat()
}

fn invalid_key() -> ApiError {
    ApiError::bad_request(
        "Idempotency-Key",
        format!("must be 1-{MAX_KEY_LEN} visible ASCII characters, no spaces (e.g. a UUID)"),
    )
}

/// The scope a POST route authenticates with (a replay checks the same one).
fn scope_for(path: &str) -> &'static str {
    if path == "/v1/verify" {
        VERIFY
    } else {
        ADMIN
    }
}

/// The middleware, for every route; only POSTs carrying the header are affected.
pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(raw) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let Some(key) = raw
        .to_str()
        .ok()
        // Visible ASCII only (docs/API.md): a space, a tab or a control character is a client bug, not a key.
        .filter(|k| {
            !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| (b'!'..=b'~').contains(&b))
        })
        .map(str::to_string)
    else {
        return invalid_key().into_response();
    };
    // Without a credential the request is refused anyway; nothing to remember.
    let Some(credential) = presented(request.headers()) else {
        return next.run(request).await;
    };
    match run_once(&state, request, next, &credential, &key).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run_once(
    state: &AppState,
    request: Request,
    next: Next,
    credential: &str,
    key: &str,
) -> Result<Response, Response> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, super::BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request bodies are limited to {} bytes", super::BODY_LIMIT),
            )
            .into_response()
        })?;
    let path = parts.uri.path().to_string();
    let print = fingerprint(&parts.method, &path, &body);
    let id = derive("id", credential, key);
    let seal = derive("seal", credential, key);
    let now = state.ledger.now();
    if let Some(stored) = load(state, &id, now).map_err(IntoResponse::into_response)? {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        authenticate(state, &parts.headers, peer, scope_for(&path))
            .await
            .map_err(IntoResponse::into_response)?;
        if stored.fingerprint != print {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request in the last 24 hours; use a new key",
            )
            .into_response());
        }
        return replay(&stored, &seal).map_err(IntoResponse::into_response);
    }
    if !claim(state, id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still running; retry when it has finished",
        )
        .into_response());
    }
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let answered = remember(state, id, &seal, print, now, response).await;
    release(state, &id);
    Ok(answered)
}

fn claim(state: &AppState, id: [u8; 32]) -> bool {
    // A poisoned lock only means another request panicked mid-insert; the set itself is still sound.
    let mut running = state.in_flight.0.lock().unwrap_or_else(|e| e.into_inner());
    running.insert(id)
}

fn release(state: &AppState, id: &[u8; 32]) {
    let mut running = state.in_flight.0.lock().unwrap_or_else(|e| e.into_inner());
    running.remove(id);
}

fn load(state: &AppState, id: &[u8; 32], now: LedgerTime) -> Result<Option<Stored>, ApiError> {
    let Some(bytes) = state.ledger.store().get_side(&entry_key(id))? else {
        return Ok(None);
    };
    let stored: Stored = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("idempotency record: {e}")))?;
    Ok((now.secs_since(stored.created) < RETENTION_SECS).then_some(stored))
}

fn replay(stored: &Stored, seal: &[u8; 32]) -> Result<Response, ApiError> {
    let broken = |what: &str| ApiError::internal(format!("idempotency record: {what}"));
    let nonce = hex::decode(&stored.nonce).map_err(|_| broken("nonce"))?;
    let sealed = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &stored.sealed)
        .map_err(|_| broken("sealed answer"))?;
    if nonce.len() != 12 {
        return Err(broken("nonce"));
    }
    let plain = ChaCha20Poly1305::new(Key::from_slice(seal))
        .decrypt(Nonce::from_slice(&nonce), sealed.as_slice())
        .map_err(|_| broken("does not open"))?;
    let answer: Answer = serde_json::from_slice(&plain).map_err(|_| broken("answer"))?;
    let status = StatusCode::from_u16(answer.status).map_err(|_| broken("status"))?;
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    restore_headers(headers, &answer.headers);
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

fn restore_headers(headers: &mut HeaderMap, saved: &[(String, String)]) {
    for (name, value) in saved {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
}

/// Files a successful answer; anything else is returned as is and a retry runs again.
async fn remember(
    state: &AppState,
    id: [u8; 32],
    seal: &[u8; 32],
    fingerprint: String,
    now: LedgerTime,
    response: Response,
) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::internal("reading the answer failed").into_response();
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let answer = Answer {
        status: parts.status.as_u16(),
        headers,
        body: text,
    };
    if store(state, id, seal, fingerprint, now, &answer)
        .await
        .is_err()
    {
        // The action happened, so it is answered; a retry would not be recognised (the detail is logged).
        tracing::warn!("could not keep the idempotent answer");
    }
    Response::from_parts(parts, Body::from(body))
}

async fn store(
    state: &AppState,
    id: [u8; 32],
    seal: &[u8; 32],
    fingerprint: String,
    now: LedgerTime,
    answer: &Answer,
) -> Result<(), ApiError> {
    let plain = serde_json::to_vec(answer).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let sealed = ChaCha20Poly1305::new(Key::from_slice(seal))
        .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
        .map_err(|_| ApiError::internal("sealing the answer failed"))?;
    let stored = Stored {
        v: 1,
        created: now,
        fingerprint,
        nonce: hex::encode(nonce),
        sealed: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sealed),
    };
    let bytes = serde_json::to_vec(&stored).map_err(|e| ApiError::internal(e.to_string()))?;
    let ledger = state.ledger.clone();
    tokio::task::spawn_blocking(move || ledger.store().put_side(&[(entry_key(&id), bytes)]))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(())
}

/// Removes answers older than 24 hours; `serve` calls it every minute. Returns how many went.
pub fn purge_expired(ledger: &crate::ledger::Ledger) -> crate::store::StoreResult<usize> {
    let now = ledger.now();
    let mut expired = Vec::new();
    for entry in ledger.store().scan_side(PREFIX) {
        let (key, bytes) = entry?;
        let old = serde_json::from_slice::<Stored>(&bytes)
            .map(|s| now.secs_since(s.created) >= RETENTION_SECS)
            .unwrap_or(true);
        if old {
            expired.push(key);
        }
    }
    if !expired.is_empty() {
        ledger.store().remove_side(&expired)?;
    }
    Ok(expired.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filing_id_and_the_sealing_key_differ_and_depend_on_both_inputs() {
        let id = derive("id", "kl_a", "k1");
        assert_ne!(id, derive("seal", "kl_a", "k1"));
        assert_ne!(id, derive("id", "kl_b", "k1"));
        assert_ne!(id, derive("id", "kl_a", "k2"));
    }

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let base = fingerprint(&Method::POST, "/v1/keys", b"{}");
        assert_ne!(base, fingerprint(&Method::POST, "/v1/keys/find", b"{}"));
        assert_ne!(base, fingerprint(&Method::POST, "/v1/keys", b"{ }"));
        assert_eq!(base, fingerprint(&Method::POST, "/v1/keys", b"{}"));
    }
}
