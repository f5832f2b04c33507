//! The operations on keys: issue, change, revoke, find, and verify them (directly or as forward-auth).

use super::{key_links, Operation, PathItem};
use serde_json::json;

/// `/v1/keys`
pub fn keys() -> PathItem {
    PathItem::new()
    .get(
        Operation::keyed(Some("listKeys"), r"List keys (filters, as_of)")
        .describe(r"Requires the `ledger:read` scope. A `cursor` must be a `next_cursor` this endpoint returned (400 invalid_request otherwise), a rule the schema cannot state.")
        .param(json!({"name": "environment", "in": "query", "required": false, "description": "", "schema": {"type": "string"}}))
        .param(json!({"name": "owner", "in": "query", "required": false, "description": "", "schema": {"type": "string"}}))
        .param(json!({"name": "status", "in": "query", "required": false, "description": "", "schema": {"type": "string", "enum": ["active", "suspended", "revoked", "expired", "retired"]}}))
        .param(json!({"name": "project", "in": "query", "required": false, "description": "", "schema": {"type": "string"}}))
        .param(json!({"name": "scope", "in": "query", "required": false, "description": "", "schema": {"type": "string"}}))
        .param(json!({"name": "as_of", "in": "query", "required": false, "description": "the keys as they were at this time", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "limit", "in": "query", "required": false, "description": "Page size (default 100); beside a cursor it changes the page size.", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}))
        .param(json!({"name": "cursor", "in": "query", "required": false, "description": "The next_cursor of the previous page (opaque; anything else is a 400); it carries the filters, page size and as_of. Other filters beside it are refused (cursor_mismatch).", "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}}))
        .json(200, r"a page of keys", &[], "KeyList")
        .request_errors()
        .archived()
        .transport(),
    )
    .post(
        Operation::keyed(Some("createKey"), r"Create a key; the secret is in this answer only")
        .describe(r"Requires the `ledger:admin` scope. 403 `scope_not_held` when granting a ledger scope (`ledger:…`, `ledger:*`, `*`) the caller's key does not cover (docs/KEYS.md). Rules the schema cannot state (400 invalid_request naming the field): `expires_at` must lie in the future; `rotation_policy.notify_days_before` must be less than `every_days`; metadata names are 1-64 of letters, digits and _.:- (OpenAPI 3.0 has no keyword for property names).")
        .shared_param("IdempotencyKey")
        .body("KeyConfig")
        .json(201, r"Created", &["Idempotent-Replayed"], "IssuedKey")
        .request_errors()
        .error(409, r"name_taken, idempotency_in_progress", &[])
        .body_errors()
        .links(201, key_links(&[("KeyShow", "showKey"), ("KeyUpdate", "updateKey"), ("KeyRevoke", "revokeKey"), ("KeyRotate", "rotateKey"), ("KeySuspend", "suspendKey"), ("KeyReactivate", "reactivateKey"), ("KeyHistory", "keyHistory")])),
    )
}

/// `/v1/keys/find`
pub fn keys_find() -> PathItem {
    PathItem::new()
    .post(
        Operation::keyed(Some("findKey"), r"Find a key by a leaked secret or its SHA-256; optionally revoke it")
        .describe(r"Requires the `ledger:read (ledger:admin to revoke)` scope. A `secret` must have the shape of a keyledger secret and a matching checksum (its last characters), else 400 invalid_request naming secret; a rule the schema cannot state. A well-formed secret or SHA-256 that matches no key is a 404.")
        .shared_param("IdempotencyKey")
        .body("FindRequest")
        .json(200, r"the key and its history", &["Idempotent-Replayed"], "FindAnswer")
        .request_errors()
        .error(404, r"no key has this secret", &[])
        .error(409, r"with revoke: cannot_revoke_own_key, last_admin_key, key_revoked; idempotency_in_progress", &[])
        .body_errors()
        .links(200, key_links(&[("KeyShow", "showKey"), ("KeyHistory", "keyHistory")])),
    )
}

/// `/v1/keys/{id}`
pub fn keys_id() -> PathItem {
    PathItem::new()
    .param(json!({"$ref": "#/components/parameters/KeyId"}))
    .get(
        Operation::keyed(Some("showKey"), r"One key with its usage")
        .describe(r"Requires the `ledger:read` scope.")
        .json(200, r"OK", &[], "KeyWithUsage")
        .request_errors()
        .not_found()
        .archived()
        .transport(),
    )
    .patch(
        Operation::keyed(Some("updateKey"), r"Update what may change")
        .describe(r"Requires the `ledger:admin` scope. 403 `scope_not_held` when granting a ledger scope (`ledger:…`, `ledger:*`, `*`) the caller's key does not cover (docs/KEYS.md). Rules the schema cannot state (400 invalid_request naming the field): `expires_at` must lie in the future; `rotation_policy.notify_days_before` must be less than `every_days`; metadata names are 1-64 of letters, digits and _.:- (OpenAPI 3.0 has no keyword for property names).")
        .body("KeyPatch")
        .json(200, r"the key as changed", &[], "Key")
        .request_errors()
        .not_found()
        .error(409, r"cannot_remove_own_admin, last_admin_key, key_revoked, key_retired, key_expired", &[])
        .body_errors(),
    )
    .delete(
        Operation::keyed(Some("revokeKey"), r"Revoke (final); 409 for the key making the request or the last admin key")
        .describe(r"Requires the `ledger:admin` scope. The reason is taken from `?reason=`, else the body's `reason`, else `X-Reason`; only the one used is checked (at most 512 characters, no control characters, else 400 invalid_request naming reason).")
        .param(json!({"name": "reason", "in": "query", "required": false, "description": "the reason; preferred over the body and X-Reason", "schema": {"type": "string", "maxLength": 512, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}}))
        .shared_param("XReason")
        .optional_body("RevokeRequest")
        .json(200, r"the key as revoked", &[], "Key")
        .request_errors()
        .not_found()
        .error(409, r"cannot_revoke_own_key, last_admin_key, key_revoked", &[])
        .not_json()
        .transport(),
    )
}

/// `/v1/keys/{id}/events`
pub fn keys_id_events() -> PathItem {
    PathItem::new()
    .param(json!({"$ref": "#/components/parameters/KeyId"}))
    .get(
        Operation::keyed(Some("keyHistory"), r"Every event concerning the key, paged like /v1/events")
        .describe(r"Requires the `ledger:read` scope. A `cursor` must be a `next_cursor` this endpoint returned (400 invalid_request otherwise), a rule the schema cannot state.")
        .param(json!({"name": "from", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "to", "in": "query", "required": false, "description": "", "schema": {"description": "RFC 3339 date-time, a date (midnight UTC), `now`, or a signed duration from now (-1h, +2d).", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "string", "enum": ["now"]}, {"type": "string", "pattern": "^[+-][0-9]{1,5}(s|m|h|d)$"}]}}))
        .param(json!({"name": "type", "in": "query", "required": false, "description": "event type", "schema": {"type": "string", "enum": ["ledger.initialized", "key.created", "key.updated", "key.rotated", "key.revoked", "key.suspended", "key.reactivated", "key.expired", "key.used", "policy.set", "anomaly.detected", "ledger.signer_rotated"]}}))
        .param(json!({"name": "ip", "in": "query", "required": false, "description": "key.used events from this address", "schema": {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]}}))
        .param(json!({"name": "actor", "in": "query", "required": false, "description": "system, key:UUID, a key UUID, or operator:NAME", "schema": {"type": "string", "pattern": "^(system|key:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|operator:.+)$"}}))
        .param(json!({"name": "request_id", "in": "query", "required": false, "description": "", "schema": {"type": "string"}}))
        .param(json!({"name": "limit", "in": "query", "required": false, "description": "page size (default 100)", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}))
        .param(json!({"name": "cursor", "in": "query", "required": false, "description": "the next_cursor of the previous page (opaque; anything else is a 400); other filters beside it are refused (cursor_mismatch)", "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}}))
        .json(200, r"OK", &[], "KeyEventPage")
        .request_errors()
        .not_found()
        .archived()
        .transport(),
    )
}

/// `/v1/keys/{id}/rotate`
pub fn keys_id_rotate() -> PathItem {
    PathItem::new()
    .param(json!({"$ref": "#/components/parameters/KeyId"}))
    .post(
        Operation::keyed(Some("rotateKey"), r"Rotate: a new key with the same configuration and a new secret; the old one works for overlap_seconds")
        .describe(r"Requires the `ledger:admin` scope.")
        .shared_param("IdempotencyKey")
        .optional_body("RotateRequest")
        .json(201, r"Created", &["Idempotent-Replayed"], "IssuedKey")
        .request_errors()
        .not_found()
        .error(409, r"key_revoked, key_retired, key_expired, idempotency_in_progress", &[])
        .body_errors()
        .links(201, key_links(&[("KeyShow", "showKey"), ("KeyUpdate", "updateKey"), ("KeyRevoke", "revokeKey"), ("KeyRotate", "rotateKey"), ("KeySuspend", "suspendKey"), ("KeyReactivate", "reactivateKey"), ("KeyHistory", "keyHistory")])),
    )
}

/// `/v1/keys/{id}/suspend`
pub fn keys_id_suspend() -> PathItem {
    PathItem::new()
    .param(json!({"$ref": "#/components/parameters/KeyId"}))
    .post(
        Operation::keyed(Some("suspendKey"), r"Suspend, optionally until a time")
        .describe(r"Requires the `ledger:admin` scope. `until` must lie in the future (400 invalid_request naming until), a rule the schema cannot state.")
        .shared_param("IdempotencyKey")
        .optional_body("StatusRequest")
        .json(200, r"OK", &["Idempotent-Replayed"], "Key")
        .request_errors()
        .not_found()
        .error(409, r"cannot_suspend_own_key, key_suspended, last_admin_key, key_revoked, key_retired, key_expired, idempotency_in_progress", &[])
        .body_errors(),
    )
}

/// `/v1/keys/{id}/reactivate`
pub fn keys_id_reactivate() -> PathItem {
    PathItem::new()
    .param(json!({"$ref": "#/components/parameters/KeyId"}))
    .post(
        Operation::keyed(Some("reactivateKey"), r"Reactivate a suspended key")
        .describe(r"Requires the `ledger:admin` scope.")
        .shared_param("IdempotencyKey")
        .optional_body("ReasonRequest")
        .json(200, r"OK", &["Idempotent-Replayed"], "Key")
        .request_errors()
        .not_found()
        .error(409, r"key_not_suspended, key_revoked, key_retired, key_expired, idempotency_in_progress", &[])
        .body_errors(),
    )
}

/// `/v1/owners/{owner}/revoke`
pub fn owners_owner_revoke() -> PathItem {
    PathItem::new()
    .param(json!({"name": "owner", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]*[^\\s\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb][^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]*$"}, "description": "an owner as keys carry it: trimmed, 1-128 characters, no control, bidi or zero-width characters"}))
    .post(
        Operation::keyed(Some("revokeOwner"), r"Offboarding: revoke every active or suspended key of an owner, one key.revoked each")
        .describe(r"Requires the `ledger:admin` scope. The reason is taken from the body's `reason`, else `X-Reason`; only the one used is checked (at most 512 characters, no control characters, else 400 invalid_request naming reason).")
        .shared_param("IdempotencyKey")
        .shared_param("XReason")
        .optional_body("RevokeRequest")
        .json(200, r"OK", &["Idempotent-Replayed"], "OwnerRevocation")
        .request_errors()
        .error(409, r"refused as a whole: cannot_revoke_own_key (includes the caller's key), last_admin_key; idempotency_in_progress", &[])
        .body_errors(),
    )
}

/// `/v1/verify`
pub fn verify() -> PathItem {
    PathItem::new()
    .post(
        Operation::keyed(Some("verify"), r"Verify a key for a gateway; answered after the durable key.used event")
        .describe(r"Requires the `ledger:verify` scope. One key.used event per call, about the presented key, with the gateway's key as actor; if the gateway's key is refused (401/403/429), only its own refused use is recorded. A denied verification is 200 with valid false.")
        .shared_param("IdempotencyKey")
        .body("VerifyRequest")
        .json(200, r"the answer about the presented key; RateLimit-* for keys with a limit, Retry-After when rate_limited", &["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After", "Idempotent-Replayed"], "VerifyAnswer")
        .request_errors()
        .error(409, r"idempotency_in_progress", &[])
        .body_errors(),
    )
}

/// `/v1/authz`
pub fn authz() -> PathItem {
    PathItem::new()
    .get(
        Operation::keyed(None, r"Forward-auth for proxies (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz)")
        .describe(r"Any method; `/v1/authz/{path}` too (Envoy's path_prefix style). The client's key comes from `X-API-Key` or `Authorization: Bearer`, the gateway's `ledger:verify` key from `X-Keyledger-Gateway-Key`. Records one durable key.used event (the gateway's key as actor, the original method and path) and answers 200 with identity headers, or 401/403/429 with the code in `X-Keyledger-Code`. Forwarding headers (X-Forwarded-For, Forwarded, X-Real-IP, X-Forwarded-Method/-Uri, X-Original-Method/-URI, X-Keyledger-Scope, X-Keyledger-Project) are read only from `[authz] trusted_proxies`. See docs/GATEWAYS.md.")
        .param(json!({"name": "X-Keyledger-Gateway-Key", "in": "header", "required": false, "description": "the proxy's own key with the ledger:verify scope", "schema": {"type": "string"}}))
        .raw_answer(200, json!({"description": "the client's key is valid for the request; identity headers for the upstream", "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}, "Cache-Control": {"$ref": "#/components/headers/Cache-Control"}, "X-Keyledger-Code": {"description": "the stable code: `valid`, a refusal code of the client's key, `gateway_…` for the gateway's own key, or a request error code", "schema": {"type": "string"}}, "X-Keyledger-Key-Id": {"schema": {"type": "string"}}, "X-Keyledger-Key-Name": {"schema": {"type": "string"}}, "X-Keyledger-Owner": {"schema": {"type": "string"}}, "X-Keyledger-Environment": {"schema": {"type": "string"}}, "X-Keyledger-Scopes": {"schema": {"type": "string"}}, "X-Keyledger-Seq": {"schema": {"type": "string"}}, "RateLimit-Limit": {"$ref": "#/components/headers/RateLimit-Limit"}, "RateLimit-Remaining": {"$ref": "#/components/headers/RateLimit-Remaining"}, "RateLimit-Reset": {"$ref": "#/components/headers/RateLimit-Reset"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VerifyAnswer"}}}}))
        .raw_answer(400, json!({"description": "invalid_request (a header the proxy sent is malformed), ambiguous_request (two headers naming the original method or URI disagree)", "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}, "Cache-Control": {"$ref": "#/components/headers/Cache-Control"}, "X-Keyledger-Code": {"description": "the stable code: `valid`, a refusal code of the client's key, `gateway_…` for the gateway's own key, or a request error code", "schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}))
        .raw_answer(401, json!({"description": "no, unknown, revoked, expired, retired or suspended client key; or gateway_… when the gateway's key is missing or refused", "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}, "Cache-Control": {"$ref": "#/components/headers/Cache-Control"}, "X-Keyledger-Code": {"description": "the stable code: `valid`, a refusal code of the client's key, `gateway_…` for the gateway's own key, or a request error code", "schema": {"type": "string"}}, "WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}))
        .raw_answer(403, json!({"description": "insufficient_scope, ip_not_allowed, project_not_allowed (client key), or gateway_… (gateway key)", "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}, "Cache-Control": {"$ref": "#/components/headers/Cache-Control"}, "X-Keyledger-Code": {"description": "the stable code: `valid`, a refusal code of the client's key, `gateway_…` for the gateway's own key, or a request error code", "schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}))
        .raw_answer(429, json!({"description": "rate_limited (client or gateway_rate_limited), with Retry-After", "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}, "Cache-Control": {"$ref": "#/components/headers/Cache-Control"}, "X-Keyledger-Code": {"description": "the stable code: `valid`, a refusal code of the client's key, `gateway_…` for the gateway's own key, or a request error code", "schema": {"type": "string"}}, "Retry-After": {"$ref": "#/components/headers/Retry-After"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}))
        .raw_answer(503, json!({"description": "the ledger stopped (a write or integrity failure)", "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}, "Cache-Control": {"$ref": "#/components/headers/Cache-Control"}, "X-Keyledger-Code": {"description": "the stable code: `valid`, a refusal code of the client's key, `gateway_…` for the gateway's own key, or a request error code", "schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})),
    )
}
