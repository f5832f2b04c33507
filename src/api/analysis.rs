//! `/v1/usage`, `/v1/anomalies` and `/v1/reports/{name}`: the usage, anomaly and report projections.

use super::auth::{Authenticated, Read};
use super::error::{time_param, uuid_param, ApiError, ApiResult};
use super::AppState;
use crate::projection::reports::{credentials_csv, report, ReportKind};
use crate::projection::usage::GroupBy;
use crate::query::EventFilter;
use crate::time::LedgerTime;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    from: Option<String>,
    to: Option<String>,
    key_id: Option<String>,
    group_by: Option<GroupBy>,
    top: Option<usize>,
}

pub async fn usage(
    State(state): State<AppState>,
    _: Authenticated<Read>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let filter = EventFilter {
        from: time_param("from", &q.from)?,
        to: time_param("to", &q.to)?,
        key_id: uuid_param("key_id", &q.key_id)?,
        after_seq: None,
    };
    let ledger = state.ledger.clone();
    let group_by = q.group_by.unwrap_or(GroupBy::Key);
    let top = q.top.unwrap_or(50);
    if !(1..=1000).contains(&top) {
        return Err(ApiError::bad_request("top", "must be 1..=1000"));
    }
    // The open hour from the writer's cells in memory (a follower counts it from its events).
    let report = tokio::task::spawn_blocking(move || ledger.usage_report(&filter, group_by, top))
        .await
        .map_err(|e| ApiError::from(crate::LedgerError::Config(e.to_string())))??;
    Ok(Json(serde_json::to_value(report).unwrap_or(Value::Null)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyQuery {
    from: Option<String>,
    to: Option<String>,
    key_id: Option<String>,
}

pub async fn anomalies(
    State(state): State<AppState>,
    _: Authenticated<Read>,
    query: Result<Query<AnomalyQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let (from, to, key) = (
        time_param("from", &q.from)?,
        time_param("to", &q.to)?,
        uuid_param("key_id", &q.key_id)?,
    );
    let ledger = state.ledger.clone();
    let found = tokio::task::spawn_blocking(move || ledger.anomalies(key, from, to))
        .await
        .map_err(|e| ApiError::from(crate::LedgerError::Config(e.to_string())))??;
    Ok(Json(json!({ "anomalies": found })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    days: Option<i64>,
    owner: Option<String>,
    now: Option<String>,
    format: Option<String>,
}

pub async fn reports(
    State(state): State<AppState>,
    _: Authenticated<Read>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Path(name) = path?;
    let Query(q) = query?;
    if q.days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(ApiError::bad_request("days", "must be 1..=3650"));
    }
    if q.format
        .as_deref()
        .is_some_and(|f| f != "json" && f != "csv")
    {
        return Err(ApiError::bad_request("format", "json (default) or csv"));
    }
    let kind = ReportKind::parse(&name, q.days, q.owner.as_deref()).ok_or_else(|| {
        ApiError::bad_request(
            "name",
            "one of stale, rotation, expiring, overlap, owner (with ?owner=), credentials",
        )
    })?;
    let now = time_param("now", &q.now)?.unwrap_or_else(LedgerTime::now);
    let rows = report(&state.ledger.projections(), &kind, now);
    if q.format.as_deref() == Some("csv") {
        return Ok(([(header::CONTENT_TYPE, "text/csv")], credentials_csv(&rows)).into_response());
    }
    Ok(Json(json!({ "report": name, "now": now, "rows": rows })).into_response())
}
