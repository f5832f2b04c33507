//! The document's shared pieces: security schemes, response headers, parameters; the schemas come from the types
//! (`schemas`).

use serde_json::{json, Value};

pub fn all() -> Value {
    json!({
        "securitySchemes": security_schemes(),
        "headers": headers(),
        "parameters": parameters(),
        "schemas": super::schemas::all(),
    })
}

fn security_schemes() -> Value {
    json!({"bearer": {"type": "http", "scheme": "bearer", "description": "a keyledger key: `Authorization: Bearer kl_…`"}, "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "a keyledger key, when no Authorization header is sent"}})
}

fn headers() -> Value {
    json!({"X-Request-Id": {"description": "the caller's X-Request-Id when it is 1-128 of [A-Za-z0-9._:-], else a new one", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}}, "Cache-Control": {"description": "answers carry key material", "required": true, "schema": {"type": "string", "enum": ["no-store"]}}, "Retry-After": {"description": "seconds until a retry can succeed", "schema": {"type": "integer", "minimum": 0}}, "WWW-Authenticate": {"required": true, "schema": {"type": "string", "enum": ["Bearer realm=\"keyledger\""]}}, "RateLimit-Limit": {"description": "the presented key's uses per minute (keys with a limit only)", "schema": {"type": "integer", "minimum": 1}}, "RateLimit-Remaining": {"description": "uses allowed right now", "schema": {"type": "integer", "minimum": 0}}, "RateLimit-Reset": {"description": "seconds until the whole allowance is back", "schema": {"type": "integer", "minimum": 0}}, "Idempotent-Replayed": {"description": "`true` on an answer replayed for a repeated Idempotency-Key", "schema": {"type": "string", "enum": ["true"]}}})
}

fn parameters() -> Value {
    json!({"IdempotencyKey": {"name": "Idempotency-Key", "in": "header", "required": false, "description": "the same key and request within 24 hours get the first successful answer again (Idempotent-Replayed: true) instead of acting twice; the same key with another request is a 422 idempotency_key_reused, while the first is still running a 409 idempotency_in_progress. 1-255 visible ASCII characters, no spaces (e.g. a UUID), else 400 invalid_request naming the header.", "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]{1,255}$"}}, "KeyId": {"name": "id", "in": "path", "required": true, "description": "a key_id (400 when not a UUID, 404 when no such key)", "schema": {"type": "string", "format": "uuid"}}, "XReason": {"name": "X-Reason", "in": "header", "required": false, "description": "the reason, when neither ?reason= nor the body gives one. Only the reason used is checked (at most 512 characters, no control characters, else 400), so this header is only checked when it is the one used, a rule the schema cannot state; a value that is not ASCII is not read", "schema": {"type": "string"}}})
}
