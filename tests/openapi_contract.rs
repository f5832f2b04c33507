//! The OpenAPI document is built from the code (`keyledger::api::openapi`) and served at /v1/openapi.json;
//! docs/openapi.json is that document checked in, and must be current (`KEYLEDGER_WRITE_OPENAPI=1 cargo test
//! --test openapi_contract` rewrites it). It stays a valid OpenAPI 3.0.3 document: no schema uses a list-valued
//! `type` (3.1 and JSON Schema style; 3.0 says `nullable: true`), so 3.0 tooling reads every schema, and every
//! `$ref` names something the document defines.
//! The full validation (openapi-spec-validator) runs in .ci/schemathesis.sh against the served document; the
//! route list is checked in tests/http_api.rs.

use serde_json::Value;

/// Every place under `node` where a `type` keyword holds a list, as JSON pointers. Example and enum values are
/// data, not schemas, and are not looked into.
fn list_valued_types(node: &Value, pointer: &str, found: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if map.get("type").is_some_and(Value::is_array) {
                found.push(format!("{pointer}/type"));
            }
            for (key, value) in map {
                if matches!(key.as_str(), "example" | "examples" | "enum" | "default") {
                    continue;
                }
                let escaped = key.replace('~', "~0").replace('/', "~1");
                list_valued_types(value, &format!("{pointer}/{escaped}"), found);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                list_valued_types(value, &format!("{pointer}/{index}"), found);
            }
        }
        _ => {}
    }
}

fn document() -> Value {
    serde_json::from_str(keyledger::api::openapi_text()).expect("the document is JSON")
}

#[test]
fn docs_openapi_json_is_the_document_the_code_builds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let built = keyledger::api::openapi_text();
    if std::env::var_os("KEYLEDGER_WRITE_OPENAPI").is_some() {
        std::fs::write(path, built).expect("docs/openapi.json is writable");
    }
    let checked_in = std::fs::read_to_string(path).expect("docs/openapi.json");
    assert!(
        checked_in == built,
        "docs/openapi.json is not the document the code builds: run KEYLEDGER_WRITE_OPENAPI=1 cargo test --test openapi_contract"
    );
}

/// Every `$ref` value under `node`, with where it is.
fn references(node: &Value, pointer: &str, found: &mut Vec<(String, String)>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push((pointer.to_string(), target.clone()));
            }
            for (key, value) in map {
                references(value, &format!("{pointer}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter().enumerate() {
                references(value, &format!("{pointer}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn every_reference_names_a_defined_component() {
    let doc = document();
    let mut found = Vec::new();
    references(&doc, "", &mut found);
    assert!(found.len() > 100, "{} references", found.len());
    let dangling: Vec<_> = found
        .iter()
        .filter(|(_, target)| {
            let pointer = target.strip_prefix('#').expect("a local reference");
            doc.pointer(pointer).is_none()
        })
        .collect();
    assert!(dangling.is_empty(), "{dangling:#?}");
}

#[test]
fn the_document_says_it_is_openapi_3_0_3() {
    assert_eq!(document()["openapi"], "3.0.3");
}

#[test]
fn no_schema_uses_a_list_valued_type() {
    let mut found = Vec::new();
    list_valued_types(&document(), "", &mut found);
    assert!(
        found.is_empty(),
        "OpenAPI 3.0 has no list-valued `type`: write one type and `nullable: true` at {found:#?}"
    );
}

/// The code point ranges of the first negated class (`[^…]`) of `pattern`, written with `\uXXXX` escapes.
fn excluded(pattern: &str) -> Vec<(u32, u32)> {
    let start = pattern.find("[^").expect("a negated class") + 2;
    let class = &pattern[start..start + pattern[start..].find(']').expect("the class ends")];
    let points: Vec<&str> = class.split("\\u").skip(1).collect();
    let mut ranges = Vec::new();
    let mut index = 0;
    while index < points.len() {
        let point = |text: &str| u32::from_str_radix(&text[..4], 16).expect("\\uXXXX");
        let low = point(points[index]);
        // `\uAAAA-\uBBBB`: the dash ends the first piece.
        if points[index].ends_with('-') {
            ranges.push((low, point(points[index + 1])));
            index += 2;
        } else {
            ranges.push((low, low));
            index += 1;
        }
    }
    ranges
}

/// Every BMP character the schema's `pattern` excludes and the server accepts, or the reverse, inside `a…a`.
fn disagreements(pattern: &str, server_accepts: impl Fn(&str) -> bool) -> Vec<String> {
    let ranges = excluded(pattern);
    (0..=0xFFFF_u32)
        .filter_map(char::from_u32)
        .filter(|c| {
            let schema_accepts = !ranges
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&u32::from(*c)));
            schema_accepts != server_accepts(&format!("a{c}a"))
        })
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .collect()
}

#[test]
fn the_text_patterns_refuse_exactly_the_characters_the_server_refuses() {
    use keyledger::keys::validate;
    let doc = document();
    let config = &doc["components"]["schemas"]["KeyConfig"]["properties"];
    let value = config["metadata"]["additionalProperties"]["pattern"]
        .as_str()
        .unwrap();
    let metadata =
        |text: &str| validate::metadata(&[("k".to_string(), text.to_string())].into()).is_ok();
    assert_eq!(
        disagreements(value, metadata),
        Vec::<String>::new(),
        "metadata values"
    );
    let owner = config["owner"]["pattern"].as_str().unwrap();
    let accepts_owner = |text: &str| validate::owner(text).is_ok();
    assert_eq!(
        disagreements(owner, accepts_owner),
        Vec::<String>::new(),
        "owner"
    );
    let patch = &doc["components"]["schemas"]["KeyPatch"]["properties"];
    assert_eq!(patch["metadata"]["additionalProperties"]["pattern"], value);
    assert_eq!(patch["owner"]["pattern"], owner);
    assert_eq!(config["name"]["pattern"], owner);
}

#[test]
fn the_stream_documents_its_bounded_form_with_the_servers_limits() {
    use keyledger::api::events_stream::{MAX_IDLE_SECS, MAX_LIMIT};
    let doc = document();
    let parameters = doc["paths"]["/v1/events/stream"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let schema = |name: &str| {
        let parameter = parameters.iter().find(|p| p["name"] == name);
        parameter.unwrap_or_else(|| panic!("no {name}"))["schema"].clone()
    };
    assert_eq!(schema("limit")["minimum"], 1);
    assert_eq!(schema("limit")["maximum"], MAX_LIMIT);
    assert_eq!(schema("idle_timeout")["minimum"], 0);
    assert_eq!(schema("idle_timeout")["maximum"], MAX_IDLE_SECS);
}
