//! The shapes of the API's JSON answers, as types whose schemas the document derives. Handlers build these
//! answers as JSON values; schemathesis checks every answer it gets against these schemas in CI, so an answer
//! and its type cannot drift apart unnoticed.
#![allow(dead_code)]

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use std::collections::BTreeMap;

fn time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "date-time", "description": "RFC 3339, UTC, six fractional digits"})
}

fn nullable_time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "date-time", "description": "RFC 3339, UTC, six fractional digits", "nullable": true})
}

fn nullable_usage(generator: &mut SchemaGenerator) -> Schema {
    let usage = generator.subschema_for::<KeyUsage>();
    json_schema!({"allOf": [usage], "nullable": true, "description": "null before the first use"})
}

fn uuid(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "uuid"})
}

fn hash(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": "^[0-9a-f]{64}$"})
}

fn status(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["active", "suspended", "revoked", "expired", "retired"]})
}

fn any_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "object"})
}

fn objects(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "items": {"type": "object"}})
}

fn nullable_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "nullable": true, "description": "null on the last page"})
}

/// Every error answer.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Error")]
pub struct ErrorAnswer {
    pub error: ErrorBody,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct ErrorBody {
    #[schemars(length(min = 1), description = "stable, machine-readable")]
    pub code: String,
    pub message: String,
    #[schemars(description = "on a read-only follower's 503: the writer's advertised URL")]
    pub leader: Option<String>,
}

/// A key as the API shows it (`keys::view`): its configuration and status, never its secret.
#[derive(JsonSchema)]
#[schemars(rename = "Key")]
pub struct Key {
    #[schemars(schema_with = "uuid")]
    pub key_id: String,
    pub prefix: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub owner: String,
    pub scopes: Vec<String>,
    pub environment: String,
    #[serde(default)]
    pub project_ids: Vec<String>,
    #[serde(default)]
    #[schemars(schema_with = "time")]
    pub expires_at: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    #[serde(default)]
    pub rate_limit_per_minute: i64,
    #[serde(default)]
    #[schemars(with = "crate::event::RotationPolicy")]
    pub rotation_policy: (),
    #[serde(default)]
    #[schemars(with = "crate::event::AnomalyPolicy")]
    pub anomaly_policy: (),
    #[schemars(schema_with = "status")]
    pub status: String,
    #[schemars(schema_with = "time")]
    pub created_at: String,
    #[schemars(range(min = 1))]
    pub created_seq: i64,
    #[schemars(schema_with = "time")]
    pub updated_at: String,
    #[serde(default)]
    #[schemars(schema_with = "time")]
    pub suspended_until: String,
    #[serde(default)]
    pub status_reason: String,
    #[serde(default)]
    #[schemars(schema_with = "time")]
    pub revoked_at: String,
    #[serde(default)]
    #[schemars(schema_with = "uuid")]
    pub rotated_from: String,
    #[serde(default)]
    #[schemars(schema_with = "uuid")]
    pub rotated_to: String,
    #[serde(default)]
    #[schemars(schema_with = "time")]
    pub retires_at: String,
    #[serde(default)]
    #[schemars(schema_with = "time")]
    pub last_rotated_at: String,
    #[serde(default)]
    #[schemars(schema_with = "time")]
    pub last_used_at: String,
    #[serde(default)]
    pub last_used_ip: String,
}

/// A key's use so far (`GET /v1/keys/{id}`).
#[derive(JsonSchema)]
#[schemars(rename = "KeyUsage")]
pub struct KeyUsage {
    pub total: i64,
    pub allowed: i64,
    pub denied: BTreeMap<String, i64>,
    #[schemars(schema_with = "nullable_time")]
    #[serde(default)]
    pub first_used: Option<String>,
    #[schemars(schema_with = "nullable_time")]
    #[serde(default)]
    pub last_used: Option<String>,
    #[serde(default)]
    pub last_ip: Option<String>,
    pub overlap_uses: i64,
    pub overlap_ips: BTreeMap<String, i64>,
}

#[derive(JsonSchema)]
#[schemars(rename = "KeyWithUsage")]
pub struct KeyWithUsage {
    #[serde(flatten)]
    pub key: Key,
    #[schemars(required, schema_with = "nullable_usage")]
    pub usage: Option<KeyUsage>,
}

/// A key just issued (create, rotate): the secret, shown once.
#[derive(JsonSchema)]
#[schemars(rename = "IssuedKey")]
pub struct IssuedKey {
    pub key: Key,
    #[schemars(
        regex(pattern = "^kl_[a-z0-9]{1,16}_[0-9A-Za-z]{36}$"),
        description = "shown once"
    )]
    pub secret: String,
    #[schemars(range(min = 1))]
    pub seq: i64,
    pub warning: String,
}

#[derive(JsonSchema)]
#[schemars(rename = "KeyList")]
pub struct KeyList {
    #[schemars(schema_with = "time")]
    pub as_of: String,
    pub keys: Vec<Key>,
    #[schemars(required, schema_with = "nullable_string")]
    pub next_cursor: Option<String>,
}

#[derive(JsonSchema)]
#[schemars(rename = "OwnerRevocation")]
pub struct OwnerRevocation {
    pub owner: String,
    #[schemars(description = "the keys revoked, one key.revoked event each")]
    pub revoked: Vec<Key>,
}

#[derive(JsonSchema)]
#[schemars(rename = "FindAnswer")]
pub struct FindAnswer {
    pub key: Key,
    pub revoked: bool,
    #[schemars(schema_with = "objects")]
    pub history: (),
}

/// One event as pages list it: its seq, hash and body.
#[derive(JsonSchema)]
#[schemars(inline)]
pub struct ListedEvent {
    #[schemars(range(min = 1))]
    pub seq: i64,
    #[schemars(schema_with = "hash")]
    pub hash: String,
    #[schemars(schema_with = "any_object")]
    pub event: (),
}

#[derive(JsonSchema)]
#[schemars(rename = "EventPage")]
pub struct EventPage {
    pub events: Vec<ListedEvent>,
    #[schemars(required, schema_with = "nullable_string")]
    pub next_cursor: Option<String>,
    #[schemars(range(min = 0))]
    pub window_last_seq: i64,
}

#[derive(JsonSchema)]
#[schemars(rename = "KeyEventPage")]
pub struct KeyEventPage {
    #[serde(flatten)]
    pub page: EventPage,
    #[schemars(schema_with = "uuid")]
    pub key_id: String,
}

#[derive(JsonSchema)]
#[schemars(rename = "UsageReport")]
pub struct UsageReport {}

#[derive(JsonSchema)]
#[schemars(rename = "Anomalies")]
pub struct Anomalies {
    #[schemars(schema_with = "objects")]
    pub anomalies: (),
}

#[derive(JsonSchema)]
#[schemars(inline)]
pub struct ReportRow {
    #[schemars(schema_with = "uuid")]
    pub key_id: String,
    pub name: String,
    pub owner: String,
    pub environment: String,
    #[schemars(schema_with = "status")]
    pub status: String,
    pub finding: String,
}

#[derive(JsonSchema)]
#[schemars(rename = "Report")]
pub struct Report {
    pub report: String,
    #[schemars(schema_with = "time")]
    pub now: String,
    pub rows: Vec<ReportRow>,
}

#[derive(JsonSchema)]
#[schemars(rename = "AuditVerify")]
pub struct AuditVerify {
    pub ok: bool,
    #[schemars(schema_with = "any_object")]
    pub report: (),
}

#[derive(JsonSchema)]
#[schemars(inline)]
pub struct Witnessed {
    #[schemars(range(min = 0))]
    pub size: i64,
    #[schemars(schema_with = "hash")]
    pub root: String,
    pub cosigners: Vec<String>,
    pub note: String,
}

#[derive(JsonSchema)]
#[schemars(rename = "Checkpoint")]
pub struct Checkpoint {
    #[schemars(range(min = 0))]
    pub size: i64,
    #[schemars(schema_with = "hash")]
    pub root: String,
    pub note: String,
    /// The newest checkpoint the configured witness quorum cosigned; null when no witness is configured or
    /// none has met the quorum yet
    pub witnessed: Option<Witnessed>,
}
