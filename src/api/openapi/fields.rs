//! The constraints of request fields the server checks, as the document states them: each request type's field
//! takes its schema from here (`#[schemars(schema_with = …)]`), while the type gives the field list, which fields
//! are required and which are refused.

use schemars::{json_schema, Schema, SchemaGenerator};

pub fn name(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]*[^\\s\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb][^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]*$", "description": "unique among the live keys of the environment (409 name_taken); no control, bidi, zero-width or other invisible characters; no keyledger secret"})
}

pub fn description(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "maxLength": 1024, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"})
}

pub fn owner(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]*[^\\s\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb][^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]*$", "description": "trimmed; not empty; no control, bidi, zero-width or other invisible characters; no keyledger secret"})
}

pub fn scopes(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "minItems": 1, "maxItems": 64, "items": {"type": "string", "maxLength": 64, "pattern": "^(\\*|[A-Za-z0-9._/-]+(:[A-Za-z0-9._/-]+)*(:\\*)?)$", "description": "segments of letters, digits and ._-/ joined by ':'; '*' alone or as the whole last segment (payments:*)"}})
}

pub fn environment(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$", "description": "lowercased"})
}

pub fn project_ids(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "maxItems": 64, "items": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}})
}

pub fn expires_at(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "format": "date-time", "nullable": true, "description": "must be in the future (400 otherwise)"})
}

pub fn metadata(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "object", "description": "names: 1-64 of letters, digits and _.:- (`^[A-Za-z0-9_.:-]{1,64}$`; OpenAPI 3.0 has no keyword for property names, so this is checked by the server only: 400 invalid_request naming metadata); values: at most 512 characters after trimming, no control, bidi, zero-width or other invisible characters (the pattern, and U+110BD, U+110CD, U+13430-1343F, U+1BCA0-1BCA3, U+1D173-1D17A, U+E0001 and U+E0020-E007F, which a portable 3.0 pattern cannot name) and no keyledger secret (400)", "maxProperties": 32, "additionalProperties": {"type": "string", "maxLength": 512, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]*$"}})
}

pub fn ip_allowlist(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "maxItems": 64, "items": {"type": "string", "description": "a CIDR (10.0.0.0/8, 2001:db8::/32) with no bits set past its prefix, or an IP address", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}, {"pattern": "^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/32$"}, {"pattern": "^0\\.0\\.0\\.0/0$"}, {"pattern": "^10\\.0\\.0\\.0/8$"}, {"pattern": "^192\\.168\\.0\\.0/16$"}]}})
}

pub fn rate_limit_per_minute(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "minimum": 1, "maximum": 1000000, "nullable": true})
}

pub fn rotation_policy(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"allOf": [{"$ref": "#/components/schemas/RotationPolicy"}], "nullable": true})
}

pub fn anomaly_policy(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"allOf": [{"$ref": "#/components/schemas/AnomalyPolicy"}], "nullable": true})
}

pub fn description_keypatch(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "maxLength": 1024, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", "nullable": true})
}

pub fn project_ids_keypatch(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "maxItems": 64, "items": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}, "nullable": true})
}

pub fn metadata_keypatch(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "object", "description": "names: 1-64 of letters, digits and _.:- (`^[A-Za-z0-9_.:-]{1,64}$`; OpenAPI 3.0 has no keyword for property names, so this is checked by the server only: 400 invalid_request naming metadata); values: at most 512 characters after trimming, no control, bidi, zero-width or other invisible characters (the pattern, and U+110BD, U+110CD, U+13430-1343F, U+1BCA0-1BCA3, U+1D173-1D17A, U+E0001 and U+E0020-E007F, which a portable 3.0 pattern cannot name) and no keyledger secret (400)", "maxProperties": 32, "additionalProperties": {"type": "string", "maxLength": 512, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]*$"}, "nullable": true})
}

pub fn ip_allowlist_keypatch(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "maxItems": 64, "items": {"type": "string", "description": "a CIDR (10.0.0.0/8, 2001:db8::/32) with no bits set past its prefix, or an IP address", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}, {"pattern": "^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/32$"}, {"pattern": "^0\\.0\\.0\\.0/0$"}, {"pattern": "^10\\.0\\.0\\.0/8$"}, {"pattern": "^192\\.168\\.0\\.0/16$"}]}, "nullable": true})
}

pub fn rate_limit_per_minute_keypatch(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "minimum": 0, "maximum": 1000000, "nullable": true, "description": "0 also removes the limit"})
}

pub fn rotation_policy_keypatch(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"allOf": [{"$ref": "#/components/schemas/RotationPolicyPatch"}], "nullable": true})
}

pub fn anomaly_policy_keypatch(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"allOf": [{"$ref": "#/components/schemas/AnomalyPolicy"}], "nullable": true, "description": "replaces the whole policy"})
}

pub fn secret(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "description": "the presented key; a malformed one is answered valid=false, code bad_format"})
}

pub fn ip(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}], "nullable": true, "description": "the client's address (checked against the key's ip_allowlist); null means none"})
}

pub fn scope(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "nullable": true, "minLength": 1, "maxLength": 128, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", "description": "1-128 bytes, no control characters"})
}

pub fn project(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "nullable": true, "minLength": 1, "maxLength": 64, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", "description": "1-64 bytes; a key bound to projects (project_ids) answers project_not_allowed unless it is one of them"})
}

pub fn user_agent(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "nullable": true, "maxLength": 512, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", "description": "at most 512 bytes, no control characters"})
}

pub fn request_id(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "nullable": true, "description": "recorded with the key.used event; ignored when longer than 128 bytes"})
}

pub fn secret_findrequest(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "nullable": true, "description": "a keyledger secret (kl_<env>_<36 characters>, checksum verified: 400 when it does not match) or the hex SHA-256 of one", "anyOf": [{"pattern": "^[0-9a-fA-F]{64}$"}, {"pattern": "^kl_[a-z0-9]{1,16}_[0-9A-Za-z]{36}$"}]})
}

pub fn revoke(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "boolean", "default": false, "description": "needs ledger:admin"})
}

pub fn reason(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "nullable": true, "maxLength": 512, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"})
}

pub fn until(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d). Must be in the future.", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}], "nullable": true})
}

pub fn overlap_seconds(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "minimum": 0, "maximum": 2592000, "default": 0, "description": "how long the old secret keeps working (at most 30 days)"})
}

/// KeyPatch as a whole: at least one field, and what null means.
pub fn key_patch(schema: &mut Schema) {
    schema.insert("minProperties".into(), 1.into());
    schema.insert(
        "description".into(),
        "Fields left out stay as they are. null clears an optional field (description, project_ids, metadata, ip_allowlist, rate_limit_per_minute, rotation_policy, expires_at, anomaly_policy). null for owner or scopes is a 400; name and environment cannot change (400).".into(),
    );
}

/// FindRequest as a whole: exactly one of secret and sha256.
pub fn find_request(schema: &mut Schema) {
    schema.insert(
        "description".into(),
        "exactly one of secret and sha256 (both are read the same way: a secret or its SHA-256)"
            .into(),
    );
    schema.insert(
        "oneOf".into(),
        serde_json::json!([
            { "required": ["secret"], "properties": { "secret": { "type": "string" } } },
            { "required": ["sha256"], "properties": { "sha256": { "type": "string" } } }
        ]),
    );
}

/// The body of `PATCH /v1/keys/{id}`'s `rotation_policy`: every_days 0 removes the policy.
pub fn rotation_policy_patch() -> serde_json::Value {
    serde_json::json!({"type": "object", "additionalProperties": false, "required": ["every_days"], "description": "every_days 0 removes the policy; otherwise notify_days_before must be less than every_days", "properties": {"every_days": {"type": "integer", "minimum": 0, "maximum": 3650}, "notify_days_before": {"type": "integer", "minimum": 0, "maximum": 3649, "default": 0}}})
}
