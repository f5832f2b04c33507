//! `GET /v1/events`: a time window with filters and cursor paging that stays stable while appends continue.
//! The cursor is opaque (base64url JSON) and carries the query it continues: the window's seqs (pinned at the
//! first page), the filters and the limit. A next page needs only the cursor; a cursor sent with other filters is
//! refused. Store reads run off the async runtime.

use super::auth::{authenticate, READ};
use super::error::{time_param, uuid_param, ApiError, ApiResult};
use super::AppState;
use crate::event::{Event, EventData};
use crate::query::{seq_range, EventFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
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

/// Refuses filters that could never match, naming them.
fn check_filters(q: &EventsQuery) -> ApiResult<()> {
    if let Some(ip) = &q.ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(ApiError::bad_request("ip", "not an IP address"));
        }
    }
    if let Some(actor) = &q.actor {
        let ok = actor == "system"
            || actor
                .strip_prefix("key:")
                .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
            || uuid::Uuid::parse_str(actor).is_ok()
            || actor
                .strip_prefix("operator:")
                .is_some_and(|n| !n.is_empty());
        if !ok {
            return Err(ApiError::bad_request(
                "actor",
                "one of system, key:UUID, a key UUID, or operator:NAME",
            ));
        }
    }
    Ok(())
}

/// The index that narrows a filtered query most. Every filter is still applied to each event read; the index
/// only decides which events are read.
enum Narrowing {
    /// The attribute index: a request id or a client IP.
    Attribute([u8; 16]),
    /// The key index: a key the events concern.
    Key(uuid::Uuid),
    /// A key as the actor: its uses as a gateway are in the key index under it, the changes it made among the
    /// lifecycle events.
    ActorKey(uuid::Uuid),
    /// The lifecycle index: a type other than `key.used`.
    Lifecycle,
    /// No index helps (`type=key.used`, `actor=system`, an operator): read the window.
    Window,
}

/// The union of two ascending seq streams, ascending, each seq once.
fn merged<'a>(
    a: crate::store::StoreIter<'a, u64>,
    b: crate::store::StoreIter<'a, u64>,
) -> impl Iterator<Item = crate::store::StoreResult<u64>> + Send + 'a {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || {
        let next_a = match a.peek() {
            Some(Ok(seq)) => Some(*seq),
            Some(Err(_)) => return a.next(),
            None => None,
        };
        let next_b = match b.peek() {
            Some(Ok(seq)) => Some(*seq),
            Some(Err(_)) => return b.next(),
            None => None,
        };
        match (next_a, next_b) {
            (Some(x), Some(y)) if x == y => {
                b.next();
                a.next()
            }
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => None,
        }
    })
}

fn narrowing(q: &EventsQuery, key_id: Option<uuid::Uuid>, attributes: bool) -> Narrowing {
    use crate::event::attributes::{attribute_digest, Attribute};
    if let Some(key) = key_id {
        return Narrowing::Key(key);
    }
    if attributes {
        if let Some(request_id) = &q.request_id {
            return Narrowing::Attribute(attribute_digest(Attribute::RequestId, request_id));
        }
        if let Some(ip) = &q.ip {
            return Narrowing::Attribute(attribute_digest(Attribute::Ip, ip));
        }
    }
    let actor_key = q
        .actor
        .as_deref()
        .and_then(|a| uuid::Uuid::parse_str(a.strip_prefix("key:").unwrap_or(a)).ok());
    if let Some(key) = actor_key {
        return Narrowing::ActorKey(key);
    }
    match q.event_type.as_deref() {
        Some(t) if t != "key.used" => Narrowing::Lifecycle,
        _ => Narrowing::Window,
    }
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
    check_filters(&q)?;
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
    let filtered =
        q.event_type.is_some() || q.ip.is_some() || q.actor.is_some() || q.request_id.is_some();
    let mut events: Vec<Page> = Vec::new();
    let mut last = after;
    let mut more = false;
    let attributes = crate::store::has_attribute_index(store)?;
    let (from_seq, to_seq) = (after + 1, window_end + 1);
    let seqs: Box<dyn Iterator<Item = crate::store::StoreResult<u64>> + Send + '_> =
        match narrowing(&q, key_id, attributes) {
            Narrowing::Key(key) => store.key_seqs(key, from_seq, to_seq),
            Narrowing::ActorKey(key) => Box::new(merged(
                store.key_seqs(key, from_seq, to_seq),
                store.lifecycle_seqs(from_seq, to_seq),
            )),
            Narrowing::Attribute(digest) => store.attribute_seqs(digest, from_seq, to_seq),
            Narrowing::Lifecycle => store.lifecycle_seqs(from_seq, to_seq),
            Narrowing::Window => Box::new((from_seq..to_seq).map(Ok)),
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
