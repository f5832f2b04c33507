//! Canonical JSON: the exact bytes that are hashed and signed (sorted keys, compact, integers only, UTF-8).
//!
//! The encoding is the subset of RFC 8785 that Python's
//! `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` also produces: object keys sorted
//! by Unicode code point (equal to UTF-8 byte order), no whitespace, strings escaped only where JSON requires
//! (`"`, `\\`, control characters; `\b \f \n \r \t` short forms, others `\u00xx` in lower case), and no floats.

use serde::Serialize;
use serde_json::Value;

/// Why a value has no canonical form.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    #[error("canonical JSON allows integers only; found the number {0}")]
    Float(String),
    #[error(
        "integer {0} is outside ±2^53, which other languages' JSON parsers cannot hold exactly"
    )]
    IntegerTooLarge(String),
    #[error("value does not serialize to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Largest integer a verifier written with IEEE doubles (JavaScript, jq) still reads exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Serializes `value` to its canonical bytes.
pub fn to_canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let tree = serde_json::to_value(value)?;
    canonical_value_bytes(&tree)
}

/// Canonical bytes of an already-built JSON value. serde_json's `Map` is a `BTreeMap` (the `preserve_order`
/// feature is off, checked by a test below), so serializing it writes keys in sorted order.
pub fn canonical_value_bytes(tree: &Value) -> Result<Vec<u8>, CanonicalError> {
    check_integers_only(tree)?;
    Ok(serde_json::to_vec(tree)?)
}

fn check_integers_only(value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::IntegerTooLarge(n.to_string()));
                }
            } else if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::IntegerTooLarge(n.to_string()));
                }
            } else {
                return Err(CanonicalError::Float(n.to_string()));
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check_integers_only),
        Value::Object(map) => map.values().try_for_each(check_integers_only),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_recursively_and_is_compact() {
        let v = json!({"b": 1, "a": {"z": [1, 2], "y": "x"}, "é": "ü", "A": null});
        let bytes = canonical_value_bytes(&v).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"A":null,"a":{"y":"x","z":[1,2]},"b":1,"é":"ü"}"#
        );
    }

    #[test]
    fn escapes_like_python_json_dumps() {
        let v = json!({"s": "quote\" back\\ nl\n tab\t bell\u{7} del\u{7f} slash/"});
        let text = String::from_utf8(canonical_value_bytes(&v).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\"s\":\"quote\\\" back\\\\ nl\\n tab\\t bell\\u0007 del\u{7f} slash/\"}"
        );
    }

    #[test]
    fn rejects_floats_and_unsafe_integers() {
        assert!(matches!(
            canonical_value_bytes(&json!({"x": 1.5})),
            Err(CanonicalError::Float(_))
        ));
        assert!(matches!(
            canonical_value_bytes(&json!([1u64 << 60])),
            Err(CanonicalError::IntegerTooLarge(_))
        ));
        assert!(canonical_value_bytes(&json!([-(1i64 << 52)])).is_ok());
    }
}
