//! components/schemas: every request and answer type's schema, derived with schemars' OpenAPI 3.0 settings.

use super::answers::*;
use super::answers_service::*;
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{Map, Value};

fn add<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) {
    generator.subschema_for::<T>();
}

pub fn all() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let types: &[fn(&mut schemars::SchemaGenerator)] = &[
        add::<ErrorAnswer>,
        add::<crate::event::RotationPolicy>,
        add::<crate::event::AnomalyPolicy>,
        add::<crate::api::key_bodies::CreateBody>,
        add::<crate::api::key_bodies::UpdateBody>,
        add::<Key>,
        add::<KeyUsage>,
        add::<KeyWithUsage>,
        add::<IssuedKey>,
        add::<KeyList>,
        add::<OwnerRevocation>,
        add::<FindAnswer>,
        add::<crate::api::verify::VerifyBody>,
        add::<VerifyAnswer>,
        add::<crate::api::keys::FindBody>,
        add::<crate::api::key_bodies::StatusBody>,
        add::<ReasonRequest>,
        add::<RevokeRequest>,
        add::<crate::api::keys::RotateBody>,
        add::<EventPage>,
        add::<KeyEventPage>,
        add::<Health>,
        add::<UsageReport>,
        add::<Anomalies>,
        add::<Report>,
        add::<AuditVerify>,
        add::<Checkpoint>,
        add::<AlertDeliveries>,
    ];
    for add in types {
        add(&mut generator);
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true);
    schemas.insert(
        "RotationPolicyPatch".into(),
        super::fields::rotation_policy_patch(),
    );
    let mut schemas = Value::Object(schemas);
    plain_integers(&mut schemas);
    schemas
}

/// OpenAPI 3.0 knows the integer formats int32 and int64 only: schemars' uint32 and the like go.
fn plain_integers(node: &mut Value) {
    match node {
        Value::Object(map) => {
            let unsized_format = map.get("format").and_then(Value::as_str).is_some_and(|f| {
                matches!(
                    f,
                    "uint"
                        | "uint8"
                        | "uint16"
                        | "uint32"
                        | "uint64"
                        | "int"
                        | "int8"
                        | "int16"
                        | "int32"
                        | "int64"
                        | "double"
                        | "float"
                )
            });
            if unsized_format {
                map.remove("format");
            }
            // schemars states serde's defaults; an empty one says nothing a reader needs.
            let empty_default = map.get("default").is_some_and(|d| {
                d.is_null()
                    || d.as_str() == Some("")
                    || d.as_array().is_some_and(Vec::is_empty)
                    || d.as_object().is_some_and(Map::is_empty)
                    || (d.is_f64() && d.as_f64() == Some(0.0))
            });
            if empty_default {
                map.remove("default");
            }
            map.values_mut().for_each(plain_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(plain_integers),
        _ => {}
    }
}
