//! The public JSON view of a key, shared by the HTTP API and the CLI's `--json`: its record plus the status in
//! force at a time (the recorded status and the secret's hash are left out).

use crate::projection::KeyRecord;
use crate::time::LedgerTime;
use serde_json::{json, Value};

/// The public view of a key: its record plus the status in force `now`.
pub fn key_json(key: &KeyRecord, now: LedgerTime) -> Value {
    let mut value = serde_json::to_value(key).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("status".into(), json!(key.status_at(now)));
        map.remove("recorded_status");
    }
    value
}
