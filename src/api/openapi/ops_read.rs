//! The read operations: events and their stream, usage, anomalies and reports.

use super::{Operation, PathItem};
use serde_json::json;

/// `/v1/events`
pub fn events() -> PathItem {
    PathItem::new()
    .get(
        Operation::keyed(Some("listEvents"), r"Events in a time window with filters and cursor paging")
        .describe(r"Requires the `ledger:read` scope. A `cursor` must be a `next_cursor` this endpoint returned (400 invalid_request otherwise), a rule the schema cannot state.")
        .param(json!({"name": "from", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "to", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "type", "in": "query", "required": false, "description": "event type", "schema": {"type": "string", "enum": ["ledger.initialized", "key.created", "key.updated", "key.rotated", "key.revoked", "key.suspended", "key.reactivated", "key.expired", "key.used", "policy.set", "anomaly.detected", "ledger.signer_rotated"]}}))
        .param(json!({"name": "key_id", "in": "query", "required": false, "description": "", "schema": {"type": "string", "format": "uuid"}}))
        .param(json!({"name": "ip", "in": "query", "required": false, "description": "key.used events from this address", "schema": {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}}))
        .param(json!({"name": "actor", "in": "query", "required": false, "description": "system, key:UUID, a key UUID, or operator:NAME", "schema": {"type": "string", "pattern": "^(system|key:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|operator:.+)$"}}))
        .param(json!({"name": "request_id", "in": "query", "required": false, "description": "", "schema": {"type": "string"}}))
        .param(json!({"name": "limit", "in": "query", "required": false, "description": "page size (default 100)", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}))
        .param(json!({"name": "cursor", "in": "query", "required": false, "description": "the next_cursor of the previous page (opaque; anything else is a 400); other filters beside it are refused (cursor_mismatch)", "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}}))
        .json(200, r"OK", &[], "EventPage")
        .request_errors()
        .archived()
        .transport(),
    )
}

/// `/v1/events/stream`
pub fn events_stream() -> PathItem {
    PathItem::new()
    .get(
        Operation::keyed(Some("streamEvents"), r"Follow events as they become durable (NDJSON or Server-Sent Events), resumable from a seq; bounded with limit or idle_timeout")
        .describe(r"Requires the `ledger:read` scope. Streams the events after a start, then each new event once it is durable, until the client disconnects or the server shuts down. Bounded form, for scripts and tools that read a response to its end: `limit=N` ends the response after N events, `idle_timeout=S` ends it once no event was sent for S seconds (`idle_timeout=0`: as soon as every durable event of the start and filters was sent), whichever comes first; e.g. `?from=-1h&idle_timeout=0` is the last hour, then the end. `limit` alone waits for its events however long that takes. Each event is the same object as an item of a `/v1/events` page. NDJSON (`application/x-ndjson`, one object per line) by default; Server-Sent Events when `Accept` includes `text/event-stream` (each event: `id: <seq>` and `data: <the object>`; a comment line as keep-alive every 15 s). Start: `Last-Event-ID` if sent, else `after`, else `from`, else the current durable seq (only new events); the `X-Stream-After` response header names it. `after` and `from` together are refused (400 invalid_request, naming `from`): give one. To resume without gap or duplicate, reconnect with `Last-Event-ID` set to the last seq received (or to `X-Stream-After` if none was). Filters are checked before the stream starts (400, a JSON error); an error after it started ends the stream.")
        .param(json!({"name": "after", "in": "query", "required": false, "description": "start after this seq (default: the current durable seq, i.e. only new events); not with from (400)", "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}}))
        .param(json!({"name": "from", "in": "query", "required": false, "description": "start at the first event at or after this time; not with after (400)", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "type", "in": "query", "required": false, "description": "event type", "schema": {"type": "string", "enum": ["ledger.initialized", "key.created", "key.updated", "key.rotated", "key.revoked", "key.suspended", "key.reactivated", "key.expired", "key.used", "policy.set", "anomaly.detected", "ledger.signer_rotated"]}}))
        .param(json!({"name": "key_id", "in": "query", "required": false, "description": "", "schema": {"type": "string", "format": "uuid"}}))
        .param(json!({"name": "ip", "in": "query", "required": false, "description": "key.used events from this address", "schema": {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}}))
        .param(json!({"name": "actor", "in": "query", "required": false, "description": "system, key:UUID, a key UUID, or operator:NAME", "schema": {"type": "string", "pattern": "^(system|key:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|operator:.+)$"}}))
        .param(json!({"name": "request_id", "in": "query", "required": false, "description": "", "schema": {"type": "string"}}))
        .param(json!({"name": "limit", "in": "query", "required": false, "description": "end the response after this many events (it may wait for them: add idle_timeout to bound the time)", "schema": {"type": "integer", "minimum": 1, "maximum": 100000}}))
        .param(json!({"name": "idle_timeout", "in": "query", "required": false, "description": "end the response once no event was sent for this many seconds; 0: as soon as it has caught up with the durable log", "schema": {"type": "integer", "minimum": 0, "maximum": 3600}}))
        .param(json!({"name": "Last-Event-ID", "in": "header", "required": false, "description": "resume after this seq (sent by EventSource on reconnect); overrides after and from", "schema": {"type": "integer", "minimum": 0, "maximum": u64::MAX}}))
        .raw_answer(200, json!({"description": "OK: a stream of events; without limit or idle_timeout it does not end by itself", "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}, "Cache-Control": {"$ref": "#/components/headers/Cache-Control"}, "X-Stream-After": {"description": "the seq the stream starts after (resume from it with Last-Event-ID when no event arrived)", "required": true, "schema": {"type": "integer", "minimum": 0}}}, "content": {"application/x-ndjson": {"schema": {"type": "object", "required": ["seq", "hash", "event"], "properties": {"seq": {"type": "integer", "minimum": 1}, "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "event": {"type": "object"}}}}, "text/event-stream": {"schema": {"type": "string", "description": "`id: <seq>` and `data: <an event object as in application/x-ndjson>` per event, `:` keep-alive comments"}}}}))
        .error(400, r"invalid_request (a filter, limit or idle_timeout out of range, Last-Event-ID, or both after and from), invalid_query", &[])
        .refused_keys()
        .unavailable()
        .error(410, r"archived: the start is before the archived prefix (the message names the archive file)", &[])
        .transport(),
    )
}

/// `/v1/usage`
pub fn usage() -> PathItem {
    PathItem::new()
    .get(
        Operation::keyed(Some("usage"), r"Usage over a window, grouped")
        .describe(r"Requires the `ledger:read` scope. Whole hours are read from hourly rollups (`rollup_hours`); hours the window cuts, and one key's usage (`key_id`), are read event by event (`events_scanned`).")
        .param(json!({"name": "from", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "to", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "key_id", "in": "query", "required": false, "description": "", "schema": {"type": "string", "format": "uuid"}}))
        .param(json!({"name": "group_by", "in": "query", "required": false, "description": "default key", "schema": {"type": "string", "enum": ["key", "ip", "user_agent", "scope", "owner"]}}))
        .param(json!({"name": "top", "in": "query", "required": false, "description": "rows, busiest first (default 50)", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}))
        .json(200, r"OK", &[], "UsageReport")
        .request_errors()
        .archived()
        .transport(),
    )
}

/// `/v1/anomalies`
pub fn anomalies() -> PathItem {
    PathItem::new()
    .get(
        Operation::keyed(Some("anomalies"), r"Anomalies found by the rules")
        .describe(r"Requires the `ledger:read` scope.")
        .param(json!({"name": "from", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "to", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "key_id", "in": "query", "required": false, "description": "", "schema": {"type": "string", "format": "uuid"}}))
        .json(200, r"OK", &[], "Anomalies")
        .request_errors()
        .archived()
        .transport(),
    )
}

/// `/v1/reports/{name}`
pub fn reports_name() -> PathItem {
    PathItem::new()
    .param(json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "enum": ["stale", "rotation", "expiring", "overlap", "owner", "credentials"]}}))
    .get(
        Operation::keyed(Some("report"), r"A report, with now as a parameter")
        .describe(r"Requires the `ledger:read` scope. `owner` needs ?owner= (400 invalid_request without it: a rule the schema cannot state). format=csv answers text/csv.")
        .param(json!({"name": "days", "in": "query", "required": false, "description": "stale (default 30) and expiring (default 14)", "schema": {"type": "integer", "minimum": 1, "maximum": 3650}}))
        .param(json!({"name": "owner", "in": "query", "required": false, "description": "", "schema": {"type": "string"}}))
        .param(json!({"name": "now", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "format", "in": "query", "required": false, "description": "", "schema": {"type": "string", "enum": ["json", "csv"]}}))
        .answer(200, r"OK", &[], json!({"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}, "text/csv": {"schema": {"type": "string"}}}))
        .request_errors()
        .archived()
        .transport(),
    )
}
