//! `GET /v1/events/stream`: a follow stream of durable ledger events for SIEMs and scripts, as NDJSON or as
//! Server-Sent Events, resumable from a seq (`after`, or the `Last-Event-ID` a reconnecting client sends).
//! Events are read from the store in bounded chunks off the async runtime and never past the durable seq;
//! between chunks the stream waits for the ledger's commit notifications, and it ends when the server shuts down,
//! or, in its bounded form (`limit`, `idle_timeout`), after that many events or that long without one.

use super::auth::{Authenticated, Read};
use super::error::{time_param, uuid_param, ApiError, ApiResult};
use super::events_stream_read::{read_chunk, starting_point, Line, Selection, Start};
use super::AppState;
use crate::error::{LedgerError, LedgerResult};
use crate::incident::IncidentFilter;
use crate::ledger::Ledger;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often an idle SSE stream sends a comment, so that proxies keep it open and clients notice a dead one.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Response header: the seq the stream starts after. A client that is cut off before the first event resumes
/// from it (`Last-Event-ID`) instead of from whatever is current by then.
pub const STREAM_AFTER: &str = "x-stream-after";
/// Request header: resume after this seq (what an `EventSource` sends when it reconnects).
pub const LAST_EVENT_ID: &str = "last-event-id";
/// Most events a bounded stream (`limit`) may ask for.
pub const MAX_LIMIT: u64 = 100_000;
/// Longest `idle_timeout`, in seconds.
pub const MAX_IDLE_SECS: u64 = 3600;

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    after: Option<u64>,
    from: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    key_id: Option<String>,
    ip: Option<String>,
    actor: Option<String>,
    request_id: Option<String>,
    limit: Option<u64>,
    idle_timeout: Option<u64>,
}

/// Ends a server's open streams when it shuts down. A follow stream never finishes by itself and a graceful
/// shutdown waits for every response to finish, so `serve` installs one as a router extension and closes it
/// when its shutdown signal fires. Without it, streams end when their client goes away.
#[derive(Clone, Debug)]
pub struct StreamShutdown(Arc<watch::Sender<bool>>);

impl Default for StreamShutdown {
    fn default() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }
}

impl StreamShutdown {
    /// Ends every stream opened through this handle (after the events it has already read).
    pub fn close(&self) {
        self.0.send_replace(true);
    }

    fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// The state of one open stream.
struct Follow {
    ledger: Arc<Ledger>,
    selection: Arc<Selection>,
    /// The last seq looked at: every event up to it was sent (or queued in `pending`) or filtered out.
    cursor: u64,
    pending: VecDeque<Line>,
    commits: watch::Receiver<u64>,
    shutdown: Option<watch::Receiver<bool>>,
    /// `limit`: how many more events to send before the stream ends.
    remaining: Option<u64>,
    /// `idle_timeout`: the stream ends this long after its start or its last event (zero: once caught up).
    idle: Option<Duration>,
    last_sent: Instant,
}

/// `GET /v1/events/stream`: authenticates (`ledger:read`) and checks the request, then streams.
pub async fn stream(
    State(state): State<AppState>,
    _: Authenticated<Read>,
    shutdown: Option<Extension<StreamShutdown>>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query?;
    let start = start(&q, &headers)?;
    let (remaining, idle) = bounds(&q)?;
    let incident = IncidentFilter {
        event_type: q.event_type,
        ip: q.ip,
        actor: q.actor,
        request_id: q.request_id,
    };
    incident.check()?;
    let mut selection = Selection {
        incident,
        key_id: uuid_param("key_id", &q.key_id)?,
        not_before: None,
    };
    // Subscribed before the first read, so that no batch made durable after it goes unnoticed.
    let commits = state.ledger.subscribe();
    let durable = state.ledger.durable_seq();
    let store = state.ledger.store().clone();
    // The first chunk is read before answering, so that a bad start (archived, corrupt) is an HTTP error.
    let (selection, after, first, reached) = tokio::task::spawn_blocking(move || {
        let after = starting_point(store.as_ref(), &mut selection, start, durable)?;
        let (lines, reached) = read_chunk(store.as_ref(), &selection, after, durable)?;
        Ok::<_, LedgerError>((selection, after, lines, reached))
    })
    .await
    .map_err(|_| LedgerError::WriterStopped)??;
    let follow = Follow {
        ledger: state.ledger.clone(),
        selection: Arc::new(selection),
        cursor: reached,
        pending: first.into(),
        commits,
        shutdown: shutdown.map(|Extension(s)| s.subscribe()),
        remaining,
        idle,
        last_sent: Instant::now(),
    };
    let lines = futures_util::stream::unfold(follow, Follow::next);
    // Proxies such as nginx would otherwise hold events back to fill their buffers.
    let (after_value, no) = (HeaderValue::from(after), HeaderValue::from_static("no"));
    let stream_headers = [
        (HeaderName::from_static(STREAM_AFTER), after_value),
        (HeaderName::from_static("x-accel-buffering"), no),
    ];
    if wants_sse(&headers) {
        let events = lines.map(|line| {
            Ok::<_, Infallible>(SseEvent::default().id(line.seq.to_string()).data(line.json))
        });
        let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
        return Ok((stream_headers, sse).into_response());
    }
    let body = Body::from_stream(lines.map(|line| {
        let mut bytes = line.json.into_bytes();
        bytes.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(bytes))
    }));
    let ndjson = HeaderValue::from_static("application/x-ndjson");
    Ok(([(header::CONTENT_TYPE, ndjson)], stream_headers, body).into_response())
}

/// The start a request asks for: `Last-Event-ID` over `after` or `from`, else only new events.
fn start(q: &StreamQuery, headers: &HeaderMap) -> ApiResult<Start> {
    let from = time_param("from", &q.from)?;
    if q.after.is_some() && from.is_some() {
        return Err(ApiError::bad_request(
            "from",
            "give either after (a seq) or from (a time), not both",
        ));
    }
    let resume = headers
        .get(LAST_EVENT_ID)
        .map(|value| {
            let seq = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            seq.ok_or_else(|| {
                ApiError::bad_request("Last-Event-ID", "must be the seq of an event (its id)")
            })
        })
        .transpose()?;
    Ok(match (resume.or(q.after), from) {
        (Some(seq), _) => Start::After(seq),
        (None, Some(time)) => Start::From(time),
        (None, None) => Start::Now,
    })
}

/// The bounded form's `limit` and `idle_timeout`, checked.
fn bounds(q: &StreamQuery) -> ApiResult<(Option<u64>, Option<Duration>)> {
    if q.limit.is_some_and(|n| !(1..=MAX_LIMIT).contains(&n)) {
        let message = format!("must be 1-{MAX_LIMIT}");
        return Err(ApiError::bad_request("limit", message));
    }
    if q.idle_timeout.is_some_and(|secs| secs > MAX_IDLE_SECS) {
        let message = format!("must be 0-{MAX_IDLE_SECS} seconds");
        return Err(ApiError::bad_request("idle_timeout", message));
    }
    Ok((q.limit, q.idle_timeout.map(Duration::from_secs)))
}

fn wants_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}

impl Follow {
    /// The next event to send, waiting for one if need be; `None` ends the stream.
    async fn next(mut self) -> Option<(Line, Self)> {
        loop {
            if self.remaining == Some(0) {
                return None;
            }
            if let Some(line) = self.pending.pop_front() {
                self.remaining = self.remaining.map(|n| n - 1);
                self.last_sent = Instant::now();
                return Some((line, self));
            }
            if self.shutdown.as_ref().is_some_and(|s| *s.borrow()) {
                return None;
            }
            // Marked seen before durable_seq is read: a batch made durable after the read wakes the wait below.
            self.commits.mark_unchanged();
            let durable = self.ledger.durable_seq();
            if self.cursor < durable {
                if let Err(error) = self.read(durable).await {
                    if error.code() == "log_corrupt" {
                        self.ledger.stop_untrusted(&error.to_string());
                    }
                    tracing::warn!(%error, after = self.cursor, "event stream ended early");
                    return None;
                }
                continue;
            }
            if self.idle == Some(Duration::ZERO) {
                return None; // caught up with the durable log
            }
            let idle_end = self.idle.map(|idle| self.last_sent + idle);
            tokio::select! {
                changed = self.commits.changed() => {
                    // The ledger's notifier is gone: it is closing.
                    if changed.is_err() {
                        return None;
                    }
                }
                () = closed(self.shutdown.as_mut()) => return None,
                () = idle_over(idle_end) => return None,
            }
        }
    }

    async fn read(&mut self, durable: u64) -> LedgerResult<()> {
        let store = self.ledger.store().clone();
        let selection = self.selection.clone();
        let after = self.cursor;
        let (lines, reached) = tokio::task::spawn_blocking(move || {
            read_chunk(store.as_ref(), &selection, after, durable)
        })
        .await
        .map_err(|_| LedgerError::WriterStopped)??;
        self.cursor = reached;
        self.pending.extend(lines);
        Ok(())
    }
}

/// Resolves at the end of the idle time (never, without `idle_timeout`).
async fn idle_over(end: Option<Instant>) {
    match end {
        Some(end) => tokio::time::sleep_until(end.into()).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the server shuts down (never, without a [`StreamShutdown`]).
async fn closed(shutdown: Option<&mut watch::Receiver<bool>>) {
    match shutdown {
        // An error means the handle itself is gone, along with the server.
        Some(shutdown) => drop(shutdown.wait_for(|closed| *closed).await),
        None => std::future::pending().await,
    }
}
