//! The audit and service operations: verification, checkpoints, exports, transparency-log tiles, alert deliveries, health, metrics and this document.

use super::{Operation, PathItem};
use serde_json::json;

/// `/healthz`
pub fn healthz() -> PathItem {
    PathItem::new().get(
        Operation::open(
            Some("healthz"),
            r"Liveness; 503 once the ledger stopped accepting writes",
        )
        .json(200, r"OK", &[], "Health")
        .json(
            503,
            r"the ledger stopped: {status: failed, reason}",
            &[],
            "Health",
        )
        .transport(),
    )
}

/// `/metrics`
pub fn metrics() -> PathItem {
    PathItem::new().get(
        Operation::open(
            Some("metrics"),
            r"Prometheus metrics: appends, batch sizes, commit latency, verify outcomes",
        )
        .answer(
            200,
            r"Prometheus text exposition",
            &[],
            json!({"text/plain": {"schema": {"type": "string"}}}),
        )
        .transport(),
    )
}

/// `/v1/openapi.json`
pub fn openapi_json() -> PathItem {
    PathItem::new().get(
        Operation::open(Some("openapi"), r"This document")
            .answer(
                200,
                r"OK",
                &[],
                json!({"application/json": {"schema": {"type": "object"}}}),
            )
            .transport(),
    )
}

/// `/v1/audit/verify`
pub fn audit_verify() -> PathItem {
    PathItem::new().get(
        Operation::keyed(Some("auditVerify"), r"Verify the whole chain")
            .describe(r"Requires the `ledger:audit` scope.")
            .json(200, r"OK", &[], "AuditVerify")
            .refused_keys()
            .unavailable()
            .transport(),
    )
}

/// `/v1/audit/checkpoint`
pub fn audit_checkpoint() -> PathItem {
    PathItem::new().get(
        Operation::keyed(
            Some("auditCheckpoint"),
            r"A signed checkpoint of the log now (C2SP signed note)",
        )
        .describe(r"Requires the `ledger:audit` scope.")
        .json(200, r"OK", &[], "Checkpoint")
        .refused_keys()
        .unavailable()
        .transport(),
    )
}

/// `/v1/tlog/checkpoint`
pub fn tlog_checkpoint() -> PathItem {
    PathItem::new()
    .get(
        Operation::keyed(Some("tlogCheckpoint"), r"The newest signed checkpoint note, as C2SP tlog-tiles serves it (text)")
        .describe(r"Requires the `ledger:audit` scope. The checkpoint of /v1/audit/checkpoint, as the bare signed note (C2SP tlog-checkpoint); when witnesses are configured (`[[witnesses]]`), the newest checkpoint their quorum cosigned instead, with their cosignature lines (cosignature/v1) after the log's signature, and 503 not_witnessed before the first: what tlog clients and monitors read before fetching tiles. The tiles themselves are served at /v1/tlog/tile/<L>/<N>[.p/<W>] and /v1/tlog/tile/entries/<N>[.p/<W>] (c2sp.org/tlog-tiles; docs/API.md), outside this document.")
        .answer(200, r"The signed note: origin, size and base64 root, a blank line, then the signature line(s)", &[], json!({"text/plain": {"schema": {"type": "string"}}}))
        .refused_keys()
        .error(503, r"unavailable, write_failed: the ledger stopped accepting writes; not_witnessed: witnesses are configured and no checkpoint has met their quorum yet", &[])
        .transport(),
    )
}

/// `/v1/audit/export`
pub fn audit_export() -> PathItem {
    PathItem::new()
    .get(
        Operation::keyed(Some("auditExport"), r"Streamed JSON-lines export (docs/FORMAT.md)")
        .describe(r"Requires the `ledger:audit` scope. `consistency_from` must be a size the log has had (1..=its current size), else 400 invalid_request; a rule the schema cannot state.")
        .param(json!({"name": "from", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "to", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "consistency_from", "in": "query", "required": false, "description": "a checkpoint size to prove consistency from: 1..=the current size", "schema": {"type": "integer", "minimum": 1, "maximum": u64::MAX}}))
        .param(json!({"name": "witnessed", "in": "query", "required": false, "description": "true: export against the newest checkpoint the configured witness quorum cosigned (its note carries the cosignatures); 409 no_witnesses when no witness is configured, 503 not_witnessed before the first such checkpoint", "schema": {"type": "boolean"}}))
        .answer(200, r"JSON lines", &[], json!({"application/x-ndjson": {"schema": {"type": "string"}}}))
        .bad_request()
        .refused_keys()
        .error(503, r"unavailable, write_failed: the ledger stopped accepting writes; not_witnessed: `witnessed=true` and no checkpoint has met the witness quorum yet", &[])
        .archived()
        .error(409, r"no_witnesses: `witnessed=true` and no witness is configured", &[])
        .transport(),
    )
}

/// `/v1/alerts/deliveries`
pub fn alerts_deliveries() -> PathItem {
    PathItem::new()
    .get(
        Operation::keyed(Some("alertDeliveries"), r"Alert deliveries per sink, newest first, and the configured sinks (without secrets)")
        .describe(r"Requires the `ledger:read` scope. Deliveries are kept per sink (newest 1,000); `status` is delivered, retrying or failed.")
        .param(json!({"name": "sink", "in": "query", "required": false, "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}}))
        .param(json!({"name": "status", "in": "query", "required": false, "schema": {"type": "string", "enum": ["delivered", "retrying", "failed"]}}))
        .param(json!({"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}))
        .json(200, r"OK", &[], "AlertDeliveries")
        .request_errors()
        .archived()
        .transport(),
    )
}
