//! The shapes of the service answers (verification, health, alert deliveries) and of the reason-only bodies, as
//! types whose schemas the document derives.
#![allow(dead_code)]

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

fn time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "date-time", "description": "RFC 3339, UTC, six fractional digits"})
}

fn reason(generator: &mut SchemaGenerator) -> Schema {
    super::fields::reason(generator)
}

/// `POST /v1/verify`'s answer about the presented key.
#[derive(JsonSchema)]
#[schemars(rename = "VerifyAnswer")]
pub struct VerifyAnswer {
    pub valid: bool,
    #[schemars(extend("enum" = ["valid", "not_found", "bad_format", "revoked", "expired", "suspended", "retired", "insufficient_scope", "ip_not_allowed", "rate_limited", "project_not_allowed"]))]
    pub code: String,
    #[serde(default)]
    #[schemars(extend("format" = "uuid"))]
    pub key_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub environment: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[schemars(
        description = "true only on an allowed use of a rotated key inside its overlap window"
    )]
    pub overlap: bool,
    #[serde(default)]
    #[schemars(schema_with = "time")]
    pub retires_at: String,
    pub seq: i64,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub retry_after_secs: i64,
}

#[derive(JsonSchema)]
#[schemars(inline)]
pub struct RateLimit {
    pub limit: i64,
    pub remaining: i64,
    pub reset_secs: i64,
}

#[derive(JsonSchema)]
#[schemars(rename = "AlertDeliveries")]
pub struct AlertDeliveries {
    pub sinks: Vec<AlertSink>,
    pub deliveries: Vec<AlertDelivery>,
}

#[derive(JsonSchema)]
#[schemars(inline)]
pub struct AlertSink {
    pub name: String,
    pub url: String,
    #[schemars(extend("enum" = ["json", "slack"]))]
    pub format: String,
    #[schemars(
        description = "where the secret comes from ($VAR or a file path), never the secret"
    )]
    pub secret: String,
    #[schemars(schema_with = "anything")]
    pub kinds: (),
}

fn anything(_: &mut SchemaGenerator) -> Schema {
    json_schema!({})
}

#[derive(JsonSchema)]
#[schemars(inline)]
pub struct AlertDelivery {
    pub alert_id: String,
    pub sink: String,
    pub kind: String,
    pub summary: String,
    #[schemars(extend("enum" = ["delivered", "retrying", "failed"]))]
    pub status: String,
    #[schemars(range(min = 0))]
    pub attempts: i64,
    pub first_attempt_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub http_status: i64,
    #[serde(default)]
    pub last_error: String,
}

/// `/healthz`.
#[derive(JsonSchema)]
#[schemars(rename = "Health")]
pub struct Health {
    #[schemars(
        extend("enum" = ["ok", "degraded", "failed"]),
        description = "ok; degraded: the ledger writes, but checkpoints could not be handed to the configured anchor (see anchor_failures and keyledger_anchor_failures_total); failed (503)."
    )]
    pub status: String,
    #[serde(default)]
    #[schemars(
        description = "Checkpoints this server could not hand to the anchor (file or command) since it started."
    )]
    pub anchor_failures: i64,
    #[serde(default)]
    pub durable_seq: i64,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub startup_check: Option<StartupCheck>,
    #[serde(default)]
    pub replication: Option<Replication>,
}

/// A server that started from its projection snapshot checks the events before it in the background: running
/// (up to upto), passed, or failed (the ledger then stops: 503).
#[derive(JsonSchema)]
#[schemars(inline)]
pub struct StartupCheck {
    #[schemars(extend("enum" = ["running", "passed", "failed"]))]
    pub state: String,
    #[serde(default)]
    pub upto: i64,
    #[serde(default)]
    pub reason: String,
}

/// role of this process: the leader (writer) or a read-only follower with its lag
#[derive(JsonSchema)]
#[schemars(inline)]
pub struct Replication {
    #[schemars(extend("enum" = ["leader", "follower"]))]
    pub role: String,
    pub leader: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub applied_seq: i64,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub leader_seq: i64,
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub lag_seconds: f64,
}

/// The optional body of reactivate.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReasonRequest")]
pub struct ReasonRequest {
    #[schemars(schema_with = "reason")]
    #[serde(default)]
    pub reason: Option<String>,
}

/// The optional body of a revocation (or `?reason=`, or `X-Reason`).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RevokeRequest")]
pub struct RevokeRequest {
    #[schemars(schema_with = "reason")]
    #[serde(default)]
    pub reason: Option<String>,
}
