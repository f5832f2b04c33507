//! `POST /v1/verify`: gateways ask whether a key is valid for a scope from an IP; the answer comes after its
//! durable `key.used` event.

use super::auth::{authentication, refusal, VERIFY};
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::error::LedgerResult;
use crate::event::{Actor, VerifyCode};
use crate::keys::{VerifyAnswer, VerifyKey};
use crate::ledger::{Command, PlanContext};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "VerifyRequest")]
pub struct VerifyBody {
    #[schemars(schema_with = "super::openapi::fields::secret")]
    secret: String,
    #[schemars(schema_with = "super::openapi::fields::ip")]
    #[serde(default)]
    ip: Option<String>,
    #[schemars(schema_with = "super::openapi::fields::scope")]
    #[serde(default)]
    scope: Option<String>,
    #[schemars(schema_with = "super::openapi::fields::user_agent")]
    #[serde(default)]
    user_agent: Option<String>,
    #[schemars(schema_with = "super::openapi::fields::request_id")]
    #[serde(default)]
    request_id: Option<String>,
    #[schemars(schema_with = "super::openapi::fields::project")]
    #[serde(default)]
    project: Option<String>,
}

/// The gateway's own authentication folded into the verification it asks for: one `key.used` event per call,
/// whose actor is the gateway's key. A gateway that is refused is recorded instead, as its own `key.used`, and
/// nothing is verified.
pub(super) struct AuthenticatedVerify {
    pub auth: VerifyKey,
    pub target: VerifyKey,
}

/// How the gateway fared (its code, and when rate limited the seconds to wait), and the answer about the
/// presented key when the gateway was let in.
pub(super) type GatewayOutcome = (VerifyCode, Option<u64>, Option<VerifyAnswer>);

impl Command for AuthenticatedVerify {
    type Output = GatewayOutcome;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<GatewayOutcome> {
        let gateway = self.auth.decide(ctx.state(), ctx.now());
        let Some(gateway_key) = gateway.key_id.filter(|_| gateway.code.is_allowed()) else {
            let refused = self.auth.plan(ctx)?;
            return Ok((refused.code, refused.retry_after_secs, None));
        };
        self.target.actor = Actor::Key {
            key_id: gateway_key,
        };
        self.target.gateway_ip = self.auth.ip;
        let answer = self.target.plan(ctx)?;
        Ok((gateway.code, None, Some(answer)))
    }
}

pub async fn verify(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<VerifyBody>, JsonRejection>,
) -> ApiResult<axum::response::Response> {
    let auth = authentication(&headers, peer, VERIFY)?;
    let Json(body) = body?;
    let ip = body
        .ip
        .as_deref()
        .map(|ip| {
            ip.parse::<IpAddr>()
                .map_err(|_| ApiError::bad_request("ip", "not an IP address"))
        })
        .transpose()?;
    crate::keys::check_request(
        body.scope.as_deref(),
        body.user_agent.as_deref(),
        body.project.as_deref(),
    )?;
    let request_id = body
        .request_id
        .filter(|r| r.len() <= 128)
        .unwrap_or_else(|| auth.request_id.clone());
    let target = VerifyKey::new(&body.secret, ip, body.scope, body.user_agent)
        .by(Actor::System, Some(request_id))
        .for_project(body.project);
    let (gateway, retry_after, answer) = state
        .ledger
        .submit(AuthenticatedVerify {
            auth: auth.command,
            target,
        })
        .await?;
    state.ledger.metrics().record_verify(gateway);
    refusal(gateway, VERIFY).map_err(|e| e.retry_after(retry_after))?;
    let answer = answer.ok_or_else(|| ApiError::from(crate::LedgerError::WriterStopped))?;
    state.ledger.metrics().record_verify(answer.code);
    Ok(with_rate_headers(&answer))
}

/// The answer, with the presented key's limit as IETF `RateLimit-Limit`/`-Remaining`/`-Reset` headers (keys with
/// a limit only) and `Retry-After` when the answer is `rate_limited`.
pub(super) fn with_rate_headers(answer: &VerifyAnswer) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = Json(answer).into_response();
    insert_rate_headers(response.headers_mut(), answer);
    response
}

/// The presented key's `RateLimit-*` headers (keys with a limit only) and `Retry-After` when rate limited.
pub(super) fn insert_rate_headers(headers: &mut HeaderMap, answer: &VerifyAnswer) {
    if let Some(rate) = answer.rate_limit {
        headers.insert("ratelimit-limit", rate.limit.into());
        headers.insert("ratelimit-remaining", rate.remaining.into());
        headers.insert("ratelimit-reset", rate.reset_secs.into());
    }
    if let Some(secs) = answer.retry_after_secs {
        headers.insert(axum::http::header::RETRY_AFTER, secs.into());
    }
}
