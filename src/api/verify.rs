//! `POST /v1/verify`: gateways ask whether a key is valid for a scope from an IP; the answer comes after its
//! durable `key.used` event.

use super::auth::{authenticate, VERIFY};
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::keys::VerifyKey;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    secret: String,
    ip: Option<String>,
    scope: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

pub async fn verify(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<VerifyBody>, JsonRejection>,
) -> ApiResult<Json<crate::keys::VerifyAnswer>> {
    let caller = authenticate(&state, &headers, peer, VERIFY).await?;
    let Json(body) = body?;
    let ip = body
        .ip
        .as_deref()
        .map(|ip| {
            ip.parse::<IpAddr>()
                .map_err(|_| ApiError::bad_request("ip", format!("{ip:?} is not an IP address")))
        })
        .transpose()?;
    if body.user_agent.as_ref().is_some_and(|ua| ua.len() > 512)
        || body.scope.as_ref().is_some_and(|s| s.len() > 128)
    {
        return Err(ApiError::bad_request(
            "user_agent",
            "user_agent at most 512 bytes, scope at most 128",
        ));
    }
    let request_id = body
        .request_id
        .filter(|r| r.len() <= 128)
        .unwrap_or_else(|| caller.request_id.clone());
    let command = VerifyKey::new(&body.secret, ip, body.scope, body.user_agent)
        .by(caller.actor(), Some(request_id));
    let answer = state.ledger.submit(command).await?;
    state.ledger.metrics().record_verify(answer.code);
    Ok(Json(answer))
}
