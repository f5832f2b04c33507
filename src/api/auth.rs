//! Authentication with keyledger's own keys (`Authorization: Bearer` or `X-API-Key`): every authenticated
//! request is itself a recorded key use, checked for the ledger scope the route needs.

use super::conventions::request_id;
use super::error::ApiError;
use super::AppState;
use crate::event::{Actor, VerifyCode};
use crate::keys::VerifyKey;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use std::marker::PhantomData;
use std::net::SocketAddr;
use uuid::Uuid;

pub use crate::projection::scope::{
    LEDGER_ADMIN as ADMIN, LEDGER_AUDIT as AUDIT, LEDGER_READ as READ, LEDGER_VERIFY as VERIFY,
};

/// Who is calling, once authenticated.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: Uuid,
    pub request_id: String,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::Key {
            key_id: self.key_id,
        }
    }
}

/// The credential a request presents, if any.
pub(crate) fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        return value.strip_prefix("Bearer ").map(|s| s.trim().to_string());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The caller's `User-Agent`, as recorded with its use (at most 256 characters).
pub(crate) fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect())
}

/// The recorded key use that authenticates a request, ready to submit.
pub struct Authentication {
    pub command: VerifyKey,
    pub request_id: String,
}

/// Builds the authentication of a request for `scope` (401 at once when no key is presented).
pub fn authentication(
    headers: &HeaderMap,
    peer: SocketAddr,
    scope: &str,
) -> Result<Authentication, ApiError> {
    let request_id = request_id(headers);
    let Some(secret) = presented(headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send a keyledger key as `Authorization: Bearer <key>` or `X-API-Key`",
        ));
    };
    let user_agent = user_agent(headers);
    let command = VerifyKey::new(
        &secret,
        Some(peer.ip()),
        Some(scope.to_string()),
        user_agent,
    )
    .by(Actor::System, Some(request_id.clone()));
    Ok(Authentication {
        command,
        request_id,
    })
}

/// Maps a refused authentication to its status: 401 for a missing, unknown, revoked, expired, retired or
/// suspended key; 403 for a missing scope or a refused address; 429 when rate limited.
pub fn refusal(code: VerifyCode, scope: &str) -> Result<(), ApiError> {
    match code {
        VerifyCode::Valid => Ok(()),
        VerifyCode::InsufficientScope => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this key lacks the {scope} scope"),
        )),
        VerifyCode::IpNotAllowed => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ip_not_allowed",
            "this key may not be used from this address",
        )),
        VerifyCode::ProjectNotAllowed => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "project_not_allowed",
            "this key is bound to projects and cannot authenticate to the ledger's own API",
        )),
        VerifyCode::RateLimited => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "this key's rate limit is exhausted",
        )),
        code => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            code.as_str(),
            format!("key refused: {}", code.as_str()),
        )),
    }
}

/// The ledger scope a route needs, as a type: the handler names it in its signature (`Authenticated<Admin>`).
pub trait RouteScope {
    const SCOPE: &'static str;
}

/// `ledger:read`.
pub struct Read;
/// `ledger:admin`.
pub struct Admin;
/// `ledger:audit`.
pub struct Audit;

impl RouteScope for Read {
    const SCOPE: &'static str = READ;
}
impl RouteScope for Admin {
    const SCOPE: &'static str = ADMIN;
}
impl RouteScope for Audit {
    const SCOPE: &'static str = AUDIT;
}

/// A request authenticated for the scope `S` (the key's use recorded): [`authenticate`] as an extractor. It comes
/// first among a handler's arguments, so a request without a usable key is refused before its path, query or
/// body is looked at.
pub struct Authenticated<S>(pub Caller, pub PhantomData<S>);

impl<S: RouteScope> FromRequestParts<AppState> for Authenticated<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer)
            .ok_or_else(|| ApiError::internal("the server was started without peer addresses"))?;
        let caller = authenticate(state, &parts.headers, peer, S::SCOPE).await?;
        Ok(Self(caller, PhantomData))
    }
}

/// Checks the presented key for `scope`, recording the use.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    scope: &str,
) -> Result<Caller, ApiError> {
    let auth = authentication(headers, peer, scope)?;
    let answer = match &state.leader_auth {
        Some(leader) => {
            let address = state.ledger.leader_address();
            leader
                .verify(address, headers, peer, scope, &auth.request_id)
                .await?
        }
        None => state.ledger.submit(auth.command).await?,
    };
    state.ledger.metrics().record_verify(answer.code);
    refusal(answer.code, scope).map_err(|e| e.retry_after(answer.retry_after_secs))?;
    let key_id = answer
        .key_id
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "not_found", "key refused"))?;
    Ok(Caller {
        key_id,
        request_id: auth.request_id,
    })
}
