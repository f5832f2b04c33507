//! `/v1/keys/…`: show, history, create, update, rotate, revoke, suspend, reactivate, find.

use super::auth::{authenticate, Caller, ADMIN, READ};
use super::auth::{Admin, Authenticated, Read};
use super::error::{time_param, ApiError, ApiResult};
use super::key_bodies::{optional_body, status_body, CreateBody, UpdateBody};
use super::AppState;
use crate::keys::view::key_json;
use crate::keys::*;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use uuid::Uuid;

pub(super) fn key_id(path: Result<Path<Uuid>, PathRejection>) -> ApiResult<Uuid> {
    path.map(|Path(id)| id).map_err(|_| {
        ApiError::bad_request(
            "id",
            "not a UUID (e.g. 01a20f98-88a2-77e4-aedc-722c469957f0)",
        )
    })
}

pub async fn show(
    State(state): State<AppState>,
    _: Authenticated<Read>,
    path: Result<Path<Uuid>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let id = key_id(path)?;
    let now = state.ledger.now();
    let projections = state.ledger.projections();
    let key = projections
        .keys
        .get(&id)
        .ok_or_else(|| ApiError::from(crate::LedgerError::not_found(format!("key {id}"))))?;
    let mut value = key_json(key, now);
    value["usage"] = serde_json::to_value(projections.usage.get(&id)).unwrap_or(Value::Null);
    Ok(Json(value))
}

pub async fn history(
    State(state): State<AppState>,
    _: Authenticated<Read>,
    path: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<super::events::EventsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let id = key_id(path)?;
    let Query(q) = query?;
    if state.ledger.projections().keys.get(&id).is_none() {
        return Err(crate::LedgerError::not_found(format!("key {id}")).into());
    }
    let mut page = super::events::for_key(&state, id, q).await?;
    page["key_id"] = json!(id);
    Ok(Json(page))
}

fn issued_json(issued: &IssuedKey, state: &AppState) -> Value {
    json!({ "key": key_json(&issued.key, state.ledger.now()), "secret": issued.secret.expose(), "seq": issued.seq, "warning": "the secret is shown once and never again" })
}

fn requester(caller: &Caller) -> Requester {
    Requester::new(caller.actor(), Some(caller.request_id.clone()))
}

pub async fn create(
    State(state): State<AppState>,
    Authenticated(caller, _): Authenticated<Admin>,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(body) = body?;
    let config = body.into();
    let issued = state
        .ledger
        .submit(CreateKey::new(requester(&caller), &config)?)
        .await?;
    Ok((StatusCode::CREATED, Json(issued_json(&issued, &state))))
}

pub async fn update(
    State(state): State<AppState>,
    Authenticated(caller, _): Authenticated<Admin>,
    path: Result<Path<Uuid>, PathRejection>,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let id = key_id(path)?;
    let Json(body) = body?;
    let patch = body.into_patch()?;
    let key = state
        .ledger
        .submit(UpdateKey::new(requester(&caller), id, &patch)?)
        .await?;
    Ok(Json(key_json(&key, state.ledger.now())))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RotateRequest")]
pub struct RotateBody {
    #[serde(default)]
    #[schemars(schema_with = "super::openapi::fields::overlap_seconds")]
    overlap_seconds: u32,
}

pub async fn rotate(
    State(state): State<AppState>,
    Authenticated(caller, _): Authenticated<Admin>,
    headers: HeaderMap,
    path: Result<Path<Uuid>, PathRejection>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = key_id(path)?;
    let overlap_seconds = optional_body::<RotateBody>(&headers, &body)?.overlap_seconds;
    let issued = state
        .ledger
        .submit(RotateKey {
            who: requester(&caller),
            key_id: id,
            overlap_seconds,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(issued_json(&issued, &state))))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReasonQuery {
    reason: Option<String>,
}

/// The reason of a revocation: `?reason=`, a JSON body `{"reason": …}`, or the `X-Reason` header.
fn revocation_reason(
    query: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Option<String>> {
    let body = status_body(headers, body)?;
    if body.until.is_some() {
        return Err(ApiError::bad_request("until", "a revocation has no end"));
    }
    Ok(query.or(body.reason).or_else(|| {
        headers
            .get("x-reason")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }))
}

pub async fn revoke(
    State(state): State<AppState>,
    Authenticated(caller, _): Authenticated<Admin>,
    headers: HeaderMap,
    path: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<ReasonQuery>, QueryRejection>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let id = key_id(path)?;
    let Query(query) = query?;
    let reason = revocation_reason(query.reason, &headers, &body)?;
    let key = state
        .ledger
        .submit(RevokeKey {
            who: requester(&caller),
            key_id: id,
            reason,
        })
        .await?;
    Ok(Json(key_json(&key, state.ledger.now())))
}

pub async fn suspend(
    State(state): State<AppState>,
    Authenticated(caller, _): Authenticated<Admin>,
    headers: HeaderMap,
    path: Result<Path<Uuid>, PathRejection>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let id = key_id(path)?;
    let body = status_body(&headers, &body)?;
    let until = time_param("until", &body.until)?;
    let key = state
        .ledger
        .submit(SuspendKey {
            who: requester(&caller),
            key_id: id,
            until,
            reason: body.reason,
        })
        .await?;
    Ok(Json(key_json(&key, state.ledger.now())))
}

pub async fn reactivate(
    State(state): State<AppState>,
    Authenticated(caller, _): Authenticated<Admin>,
    headers: HeaderMap,
    path: Result<Path<Uuid>, PathRejection>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let id = key_id(path)?;
    let body = status_body(&headers, &body)?;
    let key = state
        .ledger
        .submit(ReactivateKey {
            who: requester(&caller),
            key_id: id,
            reason: body.reason,
        })
        .await?;
    Ok(Json(key_json(&key, state.ledger.now())))
}

/// `POST /v1/owners/{owner}/revoke`: offboarding, every active or suspended key of the owner revoked.
pub async fn revoke_owner(
    State(state): State<AppState>,
    Authenticated(caller, _): Authenticated<Admin>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let Path(owner) = path.map_err(|_| ApiError::bad_request("owner", "not a valid owner name"))?;
    // The owner rules of key creation: no secret, no bidi or zero-width characters (the answer echoes the owner).
    let owner = crate::keys::validate::owner(&owner)?;
    let reason = revocation_reason(None, &headers, &body)?;
    let revoked = state
        .ledger
        .submit(RevokeOwnerKeys {
            who: requester(&caller),
            owner: owner.clone(),
            reason,
        })
        .await?;
    let now = state.ledger.now();
    Ok(Json(json!({
        "owner": owner,
        "revoked": revoked.iter().map(|k| key_json(k, now)).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FindRequest")]
#[schemars(transform = super::openapi::fields::find_request)]
pub struct FindBody {
    #[schemars(schema_with = "super::openapi::fields::secret_findrequest")]
    #[serde(default)]
    secret: Option<String>,
    #[schemars(schema_with = "super::openapi::fields::secret_findrequest")]
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "super::openapi::fields::revoke")]
    revoke: bool,
    #[schemars(schema_with = "super::openapi::fields::reason")]
    #[serde(default)]
    reason: Option<String>,
}

pub async fn find(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<FindBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    // The scope depends on the body (`revoke`), but a request without any key is a 401 before its body is read.
    super::auth::authentication(&headers, peer, READ)?;
    let Json(body) = body?;
    let caller = authenticate(
        &state,
        &headers,
        peer,
        if body.revoke { ADMIN } else { READ },
    )
    .await?;
    if body.secret.is_some() && body.sha256.is_some() {
        return Err(ApiError::bad_request(
            "secret",
            "give `secret` or `sha256`, not both",
        ));
    }
    let text = body
        .secret
        .or(body.sha256)
        .ok_or_else(|| ApiError::bad_request("secret", "give `secret` or `sha256`"))?;
    let hash = hash_of_leak(&text)?;
    let id = state
        .ledger
        .projections()
        .keys
        .by_secret_hash(&hash)
        .map(|k| k.key_id)
        .ok_or_else(|| ApiError::from(crate::LedgerError::not_found("a key with this secret")))?;
    if body.revoke {
        let reason = body.reason.or_else(|| Some("leaked secret found".into()));
        state
            .ledger
            .submit(RevokeKey {
                who: requester(&caller),
                key_id: id,
                reason,
            })
            .await?;
    }
    let key = state
        .ledger
        .projections()
        .keys
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::from(crate::LedgerError::not_found(format!("key {id}"))))?;
    let events = key_history(
        state.ledger.store().as_ref(),
        id,
        state.ledger.durable_seq(),
    )?;
    Ok(Json(
        json!({ "key": key_json(&key, state.ledger.now()), "revoked": body.revoke, "history": events.iter().filter_map(|e| e.body_value().ok()).collect::<Vec<_>>() }),
    ))
}
