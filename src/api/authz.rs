//! `/v1/authz` (any method, no body): forward-auth for nginx `auth_request`, Traefik `ForwardAuth`, Caddy
//! `forward_auth` and Envoy `ext_authz`. The proxy forwards the client's headers; keyledger verifies the client's
//! key exactly as `POST /v1/verify` does (one durable `key.used`, the gateway's key as the actor) and answers 200
//! with identity headers for the upstream, or 401/403/429 with the denial code in `X-Keyledger-Code`.

use super::auth::{presented, refusal, VERIFY};
use super::conventions::request_id;
use super::error::{ApiError, ApiResult};
use super::verify::{insert_rate_headers, with_rate_headers, AuthenticatedVerify};
use super::AppState;
use crate::event::Actor;
use crate::gateway::forwarded::client_ip;
use crate::keys::{VerifyAnswer, VerifyKey};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// The header carrying the gateway's own `ledger:verify` key.
pub const GATEWAY_KEY_HEADER: &str = "x-keyledger-gateway-key";
/// The stable denial code (or `valid`) on every answer.
pub const CODE_HEADER: &str = "x-keyledger-code";
/// Longest path recorded (bytes); longer ones are cut at a character boundary.
const MAX_PATH: usize = 1024;

/// The original request as the proxy describes it.
struct Original {
    method: String,
    path: String,
}

pub async fn authz(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match answer(state, peer, method, uri, headers).await {
        Ok(response) => response,
        Err(error) => with_code(error.code.clone(), error.into_response()),
    }
}

async fn answer(
    state: AppState,
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let authz = state.authz.clone();
    let from_proxy = authz.trusts(peer.ip());
    let original = original_request(&headers, &method, &uri, from_proxy)?;
    let scope = match authz.scope_for(&original.method, &original.path) {
        Some(scope) => Some(scope.to_string()),
        None if from_proxy => header(&headers, "x-keyledger-scope").map(str::to_string),
        None => None,
    };
    let project = header(&headers, "x-keyledger-project")
        .filter(|_| from_proxy)
        .map(str::to_string);
    let user_agent = header(&headers, "user-agent").map(|ua| ua.chars().take(512).collect());
    crate::keys::check_request(scope.as_deref(), user_agent.as_deref(), project.as_deref())?;
    let request_id = request_id(&headers);
    let gateway_secret = header(&headers, GATEWAY_KEY_HEADER);
    let gateway = gateway_authentication(gateway_secret, peer, &request_id);
    let client = client_ip(&headers, peer.ip(), &authz);
    let secret = presented(&headers).unwrap_or_default();
    let required = scope.clone().unwrap_or_else(|| "required".into());
    let target = VerifyKey::new(&secret, Some(client), scope, user_agent)
        .by(Actor::System, Some(request_id))
        .for_project(project)
        .for_request(Some(original.method), Some(original.path));
    let (gateway_code, retry_after, answer) = state
        .ledger
        .submit(AuthenticatedVerify {
            auth: gateway,
            target,
        })
        .await?;
    state.ledger.metrics().record_verify(gateway_code);
    if gateway_secret.is_none() {
        // Recorded above as the unknown gateway's refused use (`bad_format`: nothing was presented).
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "gateway_unauthenticated",
            "the proxy must send its ledger:verify key in X-Keyledger-Gateway-Key (docs/GATEWAYS.md)",
        ));
    }
    refusal(gateway_code, VERIFY).map_err(|e| gateway_refused(e.retry_after(retry_after)))?;
    let answer = answer.ok_or_else(|| ApiError::from(crate::LedgerError::WriterStopped))?;
    state.ledger.metrics().record_verify(answer.code);
    Ok(decision(&answer, &required))
}

/// The gateway's own key, checked for `ledger:verify` in the same event as the client's key. Without one the
/// gateway is unknown: its use is checked as an empty secret, which is refused as `bad_format` and recorded like
/// any refused gateway key (actor `system`, the peer as `ip` and `gateway_ip`, the client's key not looked at),
/// so that an answered call is never missing from the log. That costs an unauthenticated caller no more than
/// `/v1/verify` with a made-up key does: one small event, no secret hashed.
fn gateway_authentication(secret: Option<&str>, peer: SocketAddr, request_id: &str) -> VerifyKey {
    let mut gateway = VerifyKey::new(
        secret.unwrap_or_default(),
        Some(peer.ip()),
        Some(VERIFY.to_string()),
        None,
    )
    .by(Actor::System, Some(request_id.to_string()));
    gateway.gateway_ip = Some(peer.ip());
    gateway
}

/// A refused gateway key is the proxy's problem, not the client's: its code is prefixed so that nobody mistakes
/// it for a verdict on the client's key.
fn gateway_refused(mut error: ApiError) -> ApiError {
    error.code = format!("gateway_{}", error.code);
    error.message = format!("the gateway's key was refused: {}", error.message);
    error
}

/// The original method and path: from the proxy's headers when the peer is a trusted proxy (every header that
/// names them must agree), else this request's own method and the path after `/v1/authz` (Envoy's
/// `path_prefix` style). The query string is never recorded: it may carry credentials.
fn original_request(
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    from_proxy: bool,
) -> ApiResult<Original> {
    let own_path = uri
        .path()
        .strip_prefix("/v1/authz")
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or("/");
    let agreed = |names: &[&str]| -> ApiResult<Option<String>> {
        let mut found: Option<&str> = None;
        for name in names {
            for value in headers.get_all(*name) {
                let value = value
                    .to_str()
                    .map_err(|_| ApiError::bad_request(name, "not visible ASCII"))?;
                match found {
                    Some(seen) if seen != value => {
                        return Err(ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "ambiguous_request",
                            format!(
                                "{} disagree: the proxy must set them itself",
                                names.join(" and ")
                            ),
                        ))
                    }
                    _ => found = Some(value),
                }
            }
        }
        Ok(found.map(str::to_string))
    };
    let (mut method, mut path) = (method.as_str().to_string(), own_path.to_string());
    if from_proxy {
        if let Some(forwarded) = agreed(&["x-forwarded-method", "x-original-method"])? {
            method = forwarded;
        }
        if let Some(forwarded) = agreed(&["x-forwarded-uri", "x-original-uri"])? {
            path = forwarded;
        }
    }
    if method.is_empty() || method.len() > 16 || !method.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(ApiError::bad_request("method", "not an HTTP method"));
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(ApiError::bad_request(
            "uri",
            "must be a path starting with /",
        ));
    }
    let mut end = path.len().min(MAX_PATH);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    Ok(Original {
        method: method.to_ascii_uppercase(),
        path: path[..end].to_string(),
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// 200 with the identity headers, or the denial's status, JSON body and code header.
fn decision(answer: &VerifyAnswer, scope: &str) -> Response {
    let mut response = match refusal(answer.code, scope) {
        Ok(()) => {
            let mut response = with_rate_headers(answer);
            let headers = response.headers_mut();
            let identity = [
                ("x-keyledger-key-id", answer.key_id.map(|k| k.to_string())),
                ("x-keyledger-key-name", answer.name.clone()),
                ("x-keyledger-owner", answer.owner.clone()),
                ("x-keyledger-environment", answer.environment.clone()),
                ("x-keyledger-scopes", Some(answer.scopes.join(","))),
                ("x-keyledger-seq", Some(answer.seq.to_string())),
            ];
            for (name, value) in identity {
                if let Some(value) = value {
                    headers.insert(HeaderName::from_static(name), header_value(&value));
                }
            }
            response
        }
        Err(error) => {
            let mut denied = error.into_response();
            insert_rate_headers(denied.headers_mut(), answer);
            denied
        }
    };
    response.headers_mut().insert(
        HeaderName::from_static(CODE_HEADER),
        header_value(answer.code.as_str()),
    );
    response
}

fn with_code(code: String, mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(HeaderName::from_static(CODE_HEADER), header_value(&code));
    response
}

/// A header value for any text: control characters, `%` and bytes outside ASCII are percent-encoded (names and
/// owners may be UTF-8).
fn header_value(text: &str) -> HeaderValue {
    const ENCODED: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');
    let encoded = percent_encoding::percent_encode(text.as_bytes(), ENCODED).to_string();
    // Only visible ASCII and spaces remain, which is always a valid header value.
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}
