//! `GET /v1/alerts/deliveries`: what happened to each alert at each sink (delivered, retrying, failed), newest
//! first, with the configured sinks (never their secrets).

use super::auth::{Authenticated, Read};
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::alerts::deliveries::{list, DeliveryStatus};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    sink: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
}

/// The sinks keyledger.toml names, as listed to users: no secret, only where it comes from.
pub fn sinks_view(config: &crate::alerts::AlertsConfig) -> Vec<Value> {
    config
        .sinks
        .iter()
        .map(|s| {
            json!({
                "name": s.name, "url": s.url, "format": s.format, "secret": s.secret_source(),
                "kinds": if s.kinds.is_empty() { json!("all") } else { json!(s.kinds) },
            })
        })
        .collect()
}

pub fn parse_status(text: &str) -> Option<DeliveryStatus> {
    serde_json::from_value(json!(text)).ok()
}

pub async fn deliveries(
    State(state): State<AppState>,
    _: Authenticated<Read>,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("query", e.body_text()))?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            parse_status(s).ok_or_else(|| {
                ApiError::bad_request("status", "one of delivered, retrying, failed")
            })
        })
        .transpose()?;
    if let Some(sink) = query
        .sink
        .as_deref()
        .filter(|s| !crate::alerts::config::is_sink_name(s))
    {
        return Err(ApiError::bad_request(
            "sink",
            format!("{sink:?} is not a sink name (1-64 of a-z, 0-9, _ and -)"),
        ));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit", "must be 1-1000"));
    }
    let store = state.ledger.store().clone();
    let sink = query.sink.clone();
    let found =
        tokio::task::spawn_blocking(move || list(store.as_ref(), sink.as_deref(), status, limit))
            .await
            .map_err(ApiError::internal)??;
    let sinks = sinks_view(&state.alerts);
    Ok(Json(json!({ "sinks": sinks, "deliveries": found })))
}
