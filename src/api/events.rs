//! `GET /v1/events`: a time window with filters and cursor paging that stays stable while appends continue
//! (the cursor pins the window's last seq at the first page).

use super::auth::{authenticate, READ};
use super::error::{time_param, uuid_param, ApiError, ApiResult};
use super::AppState;
use crate::event::{Event, EventData};
use crate::query::{seq_range, EventFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;

pub const MAX_LIMIT: usize = 1000;

/// One event of a page.
#[derive(serde::Serialize)]
struct Page {
    seq: u64,
    hash: String,
    event: Box<serde_json::value::RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    from: Option<String>,
    to: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    key_id: Option<String>,
    ip: Option<String>,
    actor: Option<String>,
    request_id: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

fn matches(event: &Event, q: &EventsQuery) -> bool {
    let used = match &event.data {
        EventData::KeyUsed(used) => Some(used),
        _ => None,
    };
    q.event_type
        .as_deref()
        .is_none_or(|t| event.type_name() == t)
        && q.ip
            .as_deref()
            .is_none_or(|ip| used.and_then(|u| u.ip.as_deref()) == Some(ip))
        && q.actor.as_deref().is_none_or(|a| {
            event.actor.to_string() == a || event.actor.key_id().is_some_and(|k| k.to_string() == a)
        })
        && q.request_id
            .as_deref()
            .is_none_or(|r| event.request_id.as_deref() == Some(r))
}

pub async fn list(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    authenticate(&state, &headers, peer, READ).await?;
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "limit",
            format!("must be 1..={MAX_LIMIT}"),
        ));
    }
    if let Some(t) = &q.event_type {
        if !EventData::TYPE_NAMES.contains(&t.as_str()) {
            return Err(ApiError::bad_request(
                "type",
                format!(
                    "unknown event type {t:?}; one of {}",
                    EventData::TYPE_NAMES.join(", ")
                ),
            ));
        }
    }
    let key_id = uuid_param("key_id", &q.key_id)?;
    let store = state.ledger.store().as_ref();
    // The cursor is "<last seq returned>.<last seq of the window>".
    let (after, window_end) = match &q.cursor {
        Some(cursor) => {
            let parsed = cursor
                .split_once('.')
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
            parsed.ok_or_else(|| {
                ApiError::bad_request("cursor", "not a cursor returned by this endpoint")
            })?
        }
        None => {
            let filter = EventFilter {
                from: time_param("from", &q.from)?,
                to: time_param("to", &q.to)?,
                key_id,
                after_seq: None,
            };
            let (start, end) = seq_range(store, &filter, state.ledger.durable_seq())?;
            (start.saturating_sub(1), end.saturating_sub(1))
        }
    };
    let filtered =
        q.event_type.is_some() || q.ip.is_some() || q.actor.is_some() || q.request_id.is_some();
    let mut events: Vec<Page> = Vec::new();
    let mut last = after;
    let mut more = false;
    let seqs: Box<dyn Iterator<Item = crate::store::StoreResult<u64>> + Send + '_> = match key_id {
        Some(key) => store.key_seqs(key, after + 1, window_end + 1),
        None => Box::new((after + 1..=window_end).map(Ok)),
    };
    let mut reader = crate::store::CheckedReader::new(store);
    for seq in seqs {
        let seq = seq?;
        if events.len() == limit {
            more = true;
            break;
        }
        let Some(record) = reader.get(seq)? else {
            break;
        };
        last = seq;
        if filtered {
            let event = Event::decode(&record.body)
                .map_err(|source| crate::LedgerError::Decode { seq, source })?;
            if !matches(&event, &q) {
                continue;
            }
        }
        // The stored canonical body is valid JSON: pass it through instead of decoding and re-encoding it.
        let body = String::from_utf8(record.body).map_err(|_| crate::LedgerError::Corrupt {
            seq,
            problem: "body is not UTF-8".into(),
        })?;
        let raw = serde_json::value::RawValue::from_string(body).map_err(|e| {
            crate::LedgerError::Corrupt {
                seq,
                problem: e.to_string(),
            }
        })?;
        events.push(Page {
            seq,
            hash: hex::encode(record.hash),
            event: raw,
        });
    }
    let next = more.then(|| format!("{last}.{window_end}"));
    Ok(Json(
        json!({ "events": events, "next_cursor": next, "window_last_seq": window_end }),
    ))
}
