//! `GET /v1/keys`: keys matching filters, now or as of a past time, oldest first, in pages whose opaque cursor
//! carries the filters, the page size and (for an as-of listing) the time.

use super::auth::{Authenticated, Read};
use super::error::{time_param, ApiError, ApiResult};
use super::AppState;
use crate::keys::view::key_json;
use crate::keys::{list_keys, KeyFilter};
use crate::ledger::keys_as_of;
use crate::projection::KeyStatus;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, serde::Serialize, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    environment: Option<String>,
    owner: Option<String>,
    status: Option<String>,
    project: Option<String>,
    scope: Option<String>,
    as_of: Option<String>,
    #[serde(skip_serializing)]
    limit: Option<usize>,
    #[serde(skip_serializing)]
    cursor: Option<String>,
}

/// What a `/v1/keys` cursor carries: the last key's creation seq and the query it continues.
#[derive(serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysCursor {
    after: u64,
    limit: usize,
    query: ListQuery,
}

pub const MAX_KEYS_PAGE: usize = 1000;

pub async fn list(
    State(state): State<AppState>,
    _: Authenticated<Read>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(mut q) = query?;
    let mut after = 0;
    if let Some(text) = q.cursor.take() {
        let continued: KeysCursor = super::cursor::decode(&text)?;
        let given = ListQuery {
            limit: None,
            ..q.clone()
        };
        if given != ListQuery::default() && given != continued.query {
            return Err(super::cursor::mismatch());
        }
        let limit = q.limit.or(Some(continued.limit));
        q = continued.query;
        q.limit = limit;
        after = continued.after;
    }
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_KEYS_PAGE {
        return Err(ApiError::bad_request(
            "limit",
            format!("must be 1..={MAX_KEYS_PAGE}"),
        ));
    }
    let status = q
        .status
        .as_deref()
        .map(|s| {
            KeyStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "status",
                    "one of active, suspended, revoked, expired, retired",
                )
            })
        })
        .transpose()?;
    let filter = KeyFilter {
        environment: q.environment.clone(),
        owner: q.owner.clone(),
        status,
        project: q.project.clone(),
        scope: q.scope.clone(),
    };
    let as_of = time_param("as_of", &q.as_of)?;
    let (keys, at) = match as_of {
        Some(at) => {
            let store = state.ledger.store().clone();
            let durable = state.ledger.durable_seq();
            let past = tokio::task::spawn_blocking(move || keys_as_of(store.as_ref(), at, durable))
                .await
                .map_err(|_| crate::LedgerError::WriterStopped)??;
            (list_keys(&past.0, &filter, at, after, Some(limit + 1)), at)
        }
        None => {
            let now = state.ledger.now();
            (
                list_keys(
                    &state.ledger.projections().keys,
                    &filter,
                    now,
                    after,
                    Some(limit + 1),
                ),
                now,
            )
        }
    };
    let mut page = keys;
    let next = (page.len() > limit).then(|| {
        page.truncate(limit);
        let after = page.last().map_or(after, |k| k.created_seq);
        // A page read "now" continues now; one read as of a time continues at that same time.
        let query = ListQuery {
            as_of: as_of.map(|t| t.to_string()),
            limit: None,
            cursor: None,
            ..q.clone()
        };
        super::cursor::encode(&KeysCursor {
            after,
            limit,
            query,
        })
    });
    Ok(Json(json!({
        "as_of": at,
        "keys": page.iter().map(|k| key_json(k, at)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}
