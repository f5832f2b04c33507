//! `keyledger events --follow` in client mode: prints the events `GET /v1/events/stream` sends as they become
//! durable (the canonical JSON lines `keyledger events` prints), and after a dropped connection reconnects with
//! `Last-Event-ID` set to the last event printed, so that the output has neither gaps nor duplicates.

use super::remote::{refusal, root_cause, window_query, Remote};
use super::{CliError, EXIT_FAILED};
use crate::incident::IncidentFilter;
use crate::time::LedgerTime;
use reqwest::blocking::Response;
use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;
use uuid::Uuid;

const PATH: &str = "/v1/events/stream";
/// Response header naming the seq a stream starts after (see `api::events_stream`).
const STREAM_AFTER: &str = "x-stream-after";
const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(30);

/// What to follow: the filters of `keyledger events`, without the end of a window.
#[derive(Clone, Debug, Default)]
pub struct FollowFilters {
    /// Start with the first event at or after this time instead of with the next new one.
    pub from: Option<LedgerTime>,
    pub key: Option<Uuid>,
    pub incident: IncidentFilter,
}

/// The refusal of `--follow` without `--server`: only a running server can say when new events are durable.
pub fn needs_server() -> CliError {
    CliError::new(
        2,
        "--follow reads the event stream of a running server: pass --server URL (or set KEYLEDGER_ADDR) of a \
         running `keyledger serve`, with a key holding ledger:read in $KEYLEDGER_TOKEN",
    )
}

/// How one connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The connection was lost or closed by the server: reconnect.
    Dropped(String),
    /// Stdout was closed (e.g. `| head`): stop quietly.
    OutputClosed,
}

/// Why a stream could not be opened.
enum Refused {
    /// Worth another try later (unreachable, 5xx, 429, 408).
    Retry(String),
    Fatal(CliError),
}

/// Follows the stream until stdout closes or the server refuses for good (bad filter, key revoked…). A failure
/// to connect is an error the first time, and retried with a bounded backoff, without end, once the stream was
/// open. A dead connection is noticed by the client's read timeout (the server sends keep-alives while idle).
pub fn follow(
    remote: &Remote,
    filters: &FollowFilters,
    after: Option<u64>,
) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // Where the next connection resumes: unknown before the first connection when `after` is not given.
    let mut last = after;
    let mut connected = false;
    let mut delay = FIRST_DELAY;
    loop {
        match open(remote, filters, last) {
            Ok(response) => {
                connected = true;
                delay = FIRST_DELAY;
                if last.is_none() {
                    last = response
                        .headers()
                        .get(STREAM_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok());
                }
                match relay(BufReader::new(response), &mut out, &mut last)? {
                    Ended::OutputClosed => return Ok(()),
                    Ended::Dropped(why) => eprintln!(
                        "warning: the event stream was interrupted ({why}); reconnecting{}",
                        last.map_or(String::new(), |seq| format!(" after event {seq}"))
                    ),
                }
            }
            Err(Refused::Retry(why)) if connected => eprintln!(
                "warning: {why}; retrying in {}",
                humantime::format_duration(delay)
            ),
            Err(Refused::Retry(why)) => return Err(CliError::new(EXIT_FAILED, why)),
            Err(Refused::Fatal(error)) => return Err(error),
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// Opens the stream as Server-Sent Events (for their keep-alives), resuming after `last` when known.
fn open(remote: &Remote, filters: &FollowFilters, last: Option<u64>) -> Result<Response, Refused> {
    let mut query = window_query(filters.from, None, filters.key);
    let incident = filters.incident.clone();
    let named = [
        ("type", incident.event_type),
        ("ip", incident.ip),
        ("actor", incident.actor),
        ("request_id", incident.request_id),
    ];
    query.extend(
        named
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?))),
    );
    let mut request = remote
        .request(Method::GET, PATH)
        .query(&query)
        .header(ACCEPT, "text/event-stream");
    if let Some(seq) = last {
        // Takes precedence over `from` on the server.
        request = request.header("last-event-id", seq.to_string());
    }
    let response = request.send().map_err(|e| {
        Refused::Retry(format!(
            "cannot reach the server at {}: {}",
            remote.base,
            root_cause(&e)
        ))
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::NOT_FOUND {
        return Err(Refused::Fatal(CliError::new(
            EXIT_FAILED,
            format!(
                "the server at {} has no {PATH}: it is older than this client; upgrade it to use --follow",
                remote.base
            ),
        )));
    }
    let retry = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    let error = refusal(response);
    Err(if retry {
        Refused::Retry(error.message)
    } else {
        Refused::Fatal(error)
    })
}

/// Prints the events of one connection (SSE: `data:` lines, an empty line ending each event) until it ends.
fn relay(
    mut reader: impl BufRead,
    out: &mut impl Write,
    last: &mut Option<u64>,
) -> Result<Ended, CliError> {
    let mut line = String::new();
    let mut data = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(Ended::Dropped("the server closed it".into())),
            Ok(_) => {}
            Err(error) => return Ok(Ended::Dropped(error.to_string())),
        }
        let field = line.trim_end_matches(['\n', '\r']);
        if field.is_empty() {
            if !data.is_empty() && !print(&data, out, last)? {
                return Ok(Ended::OutputClosed);
            }
            data.clear();
        } else if let Some(value) = field.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
        // `id:` repeats the seq the data carries; lines starting with `:` are keep-alives.
    }
}

/// Prints one event unless it was printed already; `false` once stdout is closed.
fn print(data: &str, out: &mut impl Write, last: &mut Option<u64>) -> Result<bool, CliError> {
    #[derive(serde::Deserialize)]
    struct Item {
        seq: u64,
        event: Box<serde_json::value::RawValue>,
    }
    let item: Item = serde_json::from_str(data).map_err(|e| {
        CliError::new(
            EXIT_FAILED,
            format!("unexpected event from the server: {e}"),
        )
    })?;
    if last.is_some_and(|seq| item.seq <= seq) {
        return Ok(true);
    }
    // The canonical body exactly as stored, as `keyledger events` prints it.
    if writeln!(out, "{}", item.event.get())
        .and_then(|()| out.flush())
        .is_err()
    {
        return Ok(false);
    }
    *last = Some(item.seq);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> String {
        format!(
            "id: {seq}\ndata: {{\"seq\":{seq},\"hash\":\"00\",\"event\":{{\"seq\":{seq},\"type\":\"key.used\"}}}}\n\n"
        )
    }

    #[test]
    fn prints_each_event_once_and_remembers_the_last() {
        let stream = format!(":\n\n{}{}{}", event(4), event(5), event(5));
        let mut out = Vec::new();
        let mut last = Some(3);
        let ended = relay(stream.as_bytes(), &mut out, &mut last).unwrap();
        assert!(matches!(ended, Ended::Dropped(_)));
        assert_eq!(last, Some(5));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"seq\":4,\"type\":\"key.used\"}\n{\"seq\":5,\"type\":\"key.used\"}\n"
        );
    }

    #[test]
    fn skips_events_already_printed_before_a_reconnect() {
        let stream = format!("{}{}", event(7), event(8));
        let mut out = Vec::new();
        let mut last = Some(7);
        relay(stream.as_bytes(), &mut out, &mut last).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"seq\":8,\"type\":\"key.used\"}\n"
        );
    }

    #[test]
    fn a_garbled_event_is_an_error() {
        let mut last = None;
        let result = relay("data: {not json\n\n".as_bytes(), &mut Vec::new(), &mut last);
        assert!(result.is_err());
    }
}
