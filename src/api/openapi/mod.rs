//! The OpenAPI 3.0.3 document, built from the code: the router's route list gives the paths (each route carries
//! its operations, `super::routes`), the request and response types derive their schemas (schemars, OpenAPI 3.0
//! settings) and the shared headers, parameters and error answers come from one place here. `/v1/openapi.json`
//! serves it and docs/openapi.json is this document checked in (tests/openapi_contract.rs fails when that copy is
//! not current; `KEYLEDGER_WRITE_OPENAPI=1 cargo test --test openapi_contract` rewrites it).

mod answers;
mod answers_service;
mod components;
pub(super) mod fields;
mod ops_audit;
mod ops_keys;
mod ops_read;
mod schemas;

pub(super) use ops_audit::*;
pub(super) use ops_keys::*;
pub(super) use ops_read::*;

use serde_json::{json, Map, Value};

/// The operations one path answers, with parameters shared by all of them.
#[derive(Default)]
pub struct PathItem {
    parameters: Vec<Value>,
    operations: Vec<(&'static str, Operation)>,
}

impl PathItem {
    pub fn new() -> Self {
        Self::default()
    }

    /// A parameter every operation of the path takes (a path parameter).
    pub fn param(mut self, parameter: Value) -> Self {
        self.parameters.push(parameter);
        self
    }

    pub fn get(self, op: Operation) -> Self {
        self.with("get", op)
    }

    pub fn post(self, op: Operation) -> Self {
        self.with("post", op)
    }

    pub fn patch(self, op: Operation) -> Self {
        self.with("patch", op)
    }

    pub fn delete(self, op: Operation) -> Self {
        self.with("delete", op)
    }

    fn with(mut self, method: &'static str, op: Operation) -> Self {
        self.operations.push((method, op));
        self
    }

    fn to_value(&self) -> Value {
        let mut item = Map::new();
        if !self.parameters.is_empty() {
            item.insert("parameters".into(), Value::Array(self.parameters.clone()));
        }
        for (method, op) in &self.operations {
            item.insert((*method).into(), Value::Object(op.0.clone()));
        }
        Value::Object(item)
    }
}

/// One operation, built in the order the document lists its members.
#[derive(Clone)]
pub struct Operation(Map<String, Value>);

/// Headers every answer carries.
const ALWAYS: [&str; 2] = ["X-Request-Id", "Cache-Control"];

impl Operation {
    /// An operation that needs a keyledger key (bearer or `X-API-Key`).
    pub fn keyed(operation_id: Option<&str>, summary: &str) -> Self {
        let mut op = Self::new(operation_id, summary);
        op.0.insert(
            "security".into(),
            json!([{ "bearer": [] }, { "apiKey": [] }]),
        );
        op
    }

    /// An operation anyone may call.
    pub fn open(operation_id: Option<&str>, summary: &str) -> Self {
        let mut op = Self::new(operation_id, summary);
        op.0.insert("security".into(), json!([]));
        op
    }

    fn new(operation_id: Option<&str>, summary: &str) -> Self {
        let mut map = Map::new();
        if let Some(id) = operation_id {
            map.insert("operationId".into(), json!(id));
        }
        map.insert("summary".into(), json!(summary));
        Self(map)
    }

    pub fn describe(mut self, text: &str) -> Self {
        self.0.insert("description".into(), json!(text));
        self
    }

    pub fn param(mut self, parameter: Value) -> Self {
        self.list("parameters").push(parameter);
        self
    }

    /// A parameter defined once under components/parameters.
    pub fn shared_param(self, name: &str) -> Self {
        self.param(json!({ "$ref": format!("#/components/parameters/{name}") }))
    }

    /// A required JSON body of the named schema.
    pub fn body(mut self, schema: &str) -> Self {
        self.0.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { "application/json": { "schema": schema_ref(schema) } } }),
        );
        self
    }

    /// An optional JSON body of the named schema.
    pub fn optional_body(mut self, schema: &str) -> Self {
        self.0.insert(
            "requestBody".into(),
            json!({ "required": false, "content": { "application/json": { "schema": schema_ref(schema) } } }),
        );
        self
    }

    /// An answer written out whole (headers of its own, besides the shared ones).
    pub fn raw_answer(mut self, status: u16, answer: Value) -> Self {
        self.responses().insert(status.to_string(), answer);
        self
    }

    /// An answer: `headers` besides X-Request-Id and Cache-Control, `content` by media type.
    pub fn answer(
        mut self,
        status: u16,
        description: &str,
        headers: &[&str],
        content: Value,
    ) -> Self {
        let headers: Map<String, Value> = ALWAYS
            .iter()
            .chain(headers)
            .map(|name| {
                (
                    name.to_string(),
                    json!({ "$ref": format!("#/components/headers/{name}") }),
                )
            })
            .collect();
        let answer = json!({ "description": description, "headers": headers, "content": content });
        self.responses().insert(status.to_string(), answer);
        self
    }

    /// A JSON answer of the named schema.
    pub fn json(self, status: u16, description: &str, headers: &[&str], schema: &str) -> Self {
        self.answer(
            status,
            description,
            headers,
            json!({ "application/json": { "schema": schema_ref(schema) } }),
        )
    }

    /// An error answer (the `Error` body).
    pub fn error(self, status: u16, description: &str, headers: &[&str]) -> Self {
        self.json(status, description, headers, "Error")
    }

    /// Links from the last answer added to the operations that take the key it names.
    pub fn links(mut self, status: u16, links: Value) -> Self {
        if let Some(Value::Object(answer)) = self.responses().get_mut(&status.to_string()) {
            answer.insert("links".into(), links);
        }
        self
    }

    /// 400 for a malformed request.
    pub fn bad_request(self) -> Self {
        self.error(
            400,
            "invalid_request, invalid_query, invalid_path, invalid_body (malformed JSON), cursor_mismatch",
            &[],
        )
    }

    /// [`Operation::bad_request`], [`Operation::refused_keys`] and [`Operation::unavailable`]: what any keyed
    /// request may be answered.
    pub fn request_errors(self) -> Self {
        self.bad_request().refused_keys().unavailable()
    }

    /// [`Operation::bad_body`] and [`Operation::transport`]: what any request with a JSON body may be answered
    /// besides.
    pub fn body_errors(self) -> Self {
        self.bad_body().transport()
    }

    /// 401, 403 and 429: the calling key refused.
    pub fn refused_keys(self) -> Self {
        self.error(
            401,
            "no key, or the key is unknown, revoked, expired, retired or suspended",
            &["WWW-Authenticate"],
        )
        .error(
            403,
            "insufficient_scope, ip_not_allowed, project_not_allowed, scope_not_held",
            &[],
        )
        .error(
            429,
            "rate_limited: the calling key's rate limit is exhausted (Retry-After)",
            &["Retry-After"],
        )
    }

    /// 503 from a ledger that stopped.
    pub fn unavailable(self) -> Self {
        self.error(
            503,
            "unavailable, write_failed: the ledger stopped accepting writes",
            &[],
        )
    }

    pub fn not_found(self) -> Self {
        self.error(404, "not_found", &[])
    }

    /// 410 for a read that reaches into the archived prefix.
    pub fn archived(self) -> Self {
        self.error(
            410,
            "archived: the window, as_of or event is before the archived prefix (the message names the archive file)",
            &[],
        )
    }

    /// 413 and 415: a body too large or not JSON.
    pub fn not_json(self) -> Self {
        self.error(413, "body_too_large (64 KiB)", &[]).error(
            415,
            "unsupported_media_type: a body not sent as application/json",
            &[],
        )
    }

    /// [`Operation::not_json`] and 422: a body of the wrong shape (or an Idempotency-Key reused).
    pub fn bad_body(self) -> Self {
        self.not_json().error(
            422,
            "invalid_body: well-formed JSON of the wrong shape (unknown field, wrong type, missing field), or idempotency_key_reused",
            &[],
        )
    }

    /// The answers any request may get from the server itself: 405, 408 and 500.
    pub fn transport(self) -> Self {
        let mut op = self.error(
            405,
            "method_not_allowed (the Allow header lists the methods)",
            &[],
        );
        if let Some(Value::Object(headers)) = op
            .responses()
            .get_mut("405")
            .and_then(|answer| answer.get_mut("headers"))
        {
            headers.insert(
                "Allow".into(),
                json!({ "required": true, "schema": { "type": "string" } }),
            );
        }
        op.error(408, "request_timeout (10 s)", &[])
            .error(500, "internal_error", &[])
    }

    fn list(&mut self, name: &str) -> &mut Vec<Value> {
        let entry = self
            .0
            .entry(name)
            .or_insert_with(|| Value::Array(Vec::new()));
        if !entry.is_array() {
            *entry = Value::Array(Vec::new());
        }
        match entry {
            Value::Array(items) => items,
            // Made an array just above.
            _ => unreachable!("an array"),
        }
    }

    fn responses(&mut self) -> &mut Map<String, Value> {
        let entry = self
            .0
            .entry("responses")
            .or_insert_with(|| Value::Object(Map::new()));
        match entry {
            Value::Object(map) => map,
            // Only ever inserted as an object.
            _ => unreachable!("an object"),
        }
    }
}

/// Links from an answer naming a key (`key.key_id`) to the operations that take it: (link name, operationId).
pub fn key_links(operations: &[(&str, &str)]) -> Value {
    let links: Map<String, Value> = operations
        .iter()
        .map(|(name, operation)| {
            let link = json!({
                "operationId": operation,
                "parameters": { "id": "$response.body#/key/key_id" },
                "description": "the key just answered",
            });
            (name.to_string(), link)
        })
        .collect();
    Value::Object(links)
}

pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The whole document, with the paths the route list gives (each with its operations).
pub fn document(paths: Vec<(&'static str, PathItem)>) -> Value {
    let paths: Map<String, Value> = paths
        .into_iter()
        .map(|(path, item)| (path.to_string(), item.to_value()))
        .collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "keyledger",
            "version": "1",
            "description": "Audit-first API-key ledger. Every key action and use is a hash-chained, signed event."
        },
        "paths": paths,
        "components": components::all(),
    })
}

/// The document as served and checked in: JSON with one-space indents and a final newline.
pub fn to_text(document: &Value) -> String {
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    let mut text = match serde::Serialize::serialize(document, &mut serializer) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.push('\n');
    text
}
