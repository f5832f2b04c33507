//! `GET /v1/events`: a time window with filters and cursor paging that stays stable while appends continue.
//! The cursor is opaque (base64url JSON) and carries the query it continues: the window's seqs (pinned at the
//! first page), the filters and the limit. A next page needs only the cursor; a cursor sent with other filters is
//! refused. Store reads run off the async runtime.

use super::auth::{Authenticated, Read};
use super::error::{time_param, uuid_param, ApiError, ApiResult};
use super::AppState;
use crate::event::Event;
use crate::query::{seq_range, EventFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const MAX_LIMIT: usize = 1000;

/// One event of a page (also one line of `/v1/events/stream`).
#[derive(serde::Serialize)]
pub(super) struct Page {
    pub(super) seq: u64,
    pub(super) hash: String,
    pub(super) event: Box<serde_json::value::RawValue>,
}

#[derive(Deserialize, Serialize, Clone, Default, PartialEq, Eq, Debug)]
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
    #[serde(skip_serializing)]
    cursor: Option<String>,
}

/// What a cursor carries: where the last page ended, the window's last seq, and the query it continues.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Continuation {
    after: u64,
    window_end: u64,
    query: EventsQuery,
}

impl Continuation {
    fn encode(&self) -> String {
        super::cursor::encode(self)
    }

    fn decode(text: &str) -> ApiResult<Self> {
        super::cursor::decode(text)
    }
}

/// The query a request stands for: its own, or (with only a cursor, or a cursor and the same filters) the one the
/// cursor continues. Different filters beside a cursor are refused rather than silently mixed.
fn resolve(q: EventsQuery) -> ApiResult<(EventsQuery, Option<(u64, u64)>)> {
    let Some(cursor) = q.cursor.clone() else {
        return Ok((q, None));
    };
    let continued = Continuation::decode(&cursor)?;
    let given = EventsQuery {
        cursor: None,
        limit: None,
        ..q.clone()
    };
    let carried = EventsQuery {
        cursor: None,
        limit: None,
        ..continued.query.clone()
    };
    if given != EventsQuery::default() && given != carried {
        return Err(super::cursor::mismatch());
    }
    let mut query = continued.query;
    query.limit = q.limit.or(query.limit);
    Ok((query, Some((continued.after, continued.window_end))))
}

impl EventsQuery {
    fn incident(&self) -> crate::incident::IncidentFilter {
        crate::incident::IncidentFilter {
            event_type: self.event_type.clone(),
            ip: self.ip.clone(),
            actor: self.actor.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    _: Authenticated<Read>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    page(&state, q).await.map(Json)
}

/// `GET /v1/keys/{id}/events`: a key's history, in the same shape and with the same paging as `/v1/events`.
pub async fn for_key(state: &AppState, key_id: uuid::Uuid, mut q: EventsQuery) -> ApiResult<Value> {
    if q.key_id.is_some() {
        return Err(ApiError::bad_request(
            "key_id",
            "the key is the one in the path",
        ));
    }
    if q.cursor.is_none() {
        q.key_id = Some(key_id.to_string());
    }
    page(state, q).await
}

/// One page of events for a query (or the query a cursor continues).
async fn page(state: &AppState, q: EventsQuery) -> ApiResult<Value> {
    let (q, resumed) = resolve(q)?;
    q.incident().check()?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "limit",
            format!("must be 1..={MAX_LIMIT}"),
        ));
    }
    let key_id = uuid_param("key_id", &q.key_id)?;
    let from = time_param("from", &q.from)?;
    let to = time_param("to", &q.to)?;
    let store = state.ledger.store().clone();
    let durable = state.ledger.durable_seq();
    let page = tokio::task::spawn_blocking(move || {
        read_page(
            store.as_ref(),
            q,
            resumed,
            key_id,
            (from, to),
            limit,
            durable,
        )
    })
    .await
    .map_err(|_| crate::LedgerError::WriterStopped)??;
    Ok(page)
}

/// Reads one page (blocking store work).
fn read_page(
    store: &dyn crate::store::LogStore,
    q: EventsQuery,
    resumed: Option<(u64, u64)>,
    key_id: Option<uuid::Uuid>,
    (from, to): (
        Option<crate::time::LedgerTime>,
        Option<crate::time::LedgerTime>,
    ),
    limit: usize,
    durable: u64,
) -> ApiResult<Value> {
    let (after, window_end) = match resumed {
        Some(resumed) => resumed,
        None => {
            let filter = EventFilter {
                from,
                to,
                key_id,
                after_seq: None,
            };
            let (start, end) = seq_range(store, &filter, durable)?;
            (start.saturating_sub(1), end.saturating_sub(1))
        }
    };
    let incident = q.incident();
    let mut events: Vec<Page> = Vec::new();
    let mut last = after;
    let mut more = false;
    let seqs = incident.candidates(store, key_id, after + 1, window_end + 1)?;
    let mut reader = crate::checked::CheckedReader::new(store);
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
        if !incident.is_empty() {
            let event = Event::decode(&record.body)
                .map_err(|source| crate::LedgerError::Decode { seq, source })?;
            if !incident.matches(&event) {
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
    let next = more.then(|| {
        Continuation {
            after: last,
            window_end,
            query: EventsQuery {
                limit: Some(limit),
                ..q.clone()
            },
        }
        .encode()
    });
    Ok(json!({ "events": events, "next_cursor": next, "window_last_seq": window_end }))
}
