//! The JSON bodies of the key-changing routes and how they become commands' input: unknown fields refused by
//! name, `null` in an update clearing an optional field, the immutable fields refused with a reason.

use super::error::{ApiError, ApiResult};
use crate::event::{AnomalyPolicy, ClearableField, KeyConfig, KeyPatch, RotationPolicy};
use crate::time::LedgerTime;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// A create body: the key configuration.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "KeyConfig")]
pub struct CreateBody {
    #[schemars(schema_with = "super::openapi::fields::name")]
    name: String,
    #[serde(default)]
    #[schemars(schema_with = "super::openapi::fields::description")]
    description: String,
    #[schemars(schema_with = "super::openapi::fields::owner")]
    owner: String,
    #[schemars(schema_with = "super::openapi::fields::scopes")]
    scopes: Vec<String>,
    #[schemars(schema_with = "super::openapi::fields::environment")]
    environment: String,
    #[serde(default)]
    #[schemars(schema_with = "super::openapi::fields::project_ids")]
    project_ids: Vec<String>,
    #[schemars(schema_with = "super::openapi::fields::expires_at")]
    #[serde(default)]
    expires_at: Option<LedgerTime>,
    #[serde(default)]
    #[schemars(schema_with = "super::openapi::fields::metadata")]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    #[schemars(schema_with = "super::openapi::fields::ip_allowlist")]
    ip_allowlist: Vec<String>,
    #[schemars(schema_with = "super::openapi::fields::rate_limit_per_minute")]
    #[serde(default)]
    rate_limit_per_minute: Option<u32>,
    #[schemars(schema_with = "super::openapi::fields::rotation_policy")]
    #[serde(default)]
    rotation_policy: Option<RotationPolicy>,
    #[schemars(schema_with = "super::openapi::fields::anomaly_policy")]
    #[serde(default)]
    anomaly_policy: Option<AnomalyPolicy>,
}

impl From<CreateBody> for KeyConfig {
    fn from(b: CreateBody) -> Self {
        KeyConfig {
            name: b.name,
            description: b.description,
            owner: b.owner,
            scopes: b.scopes,
            environment: b.environment,
            project_ids: b.project_ids,
            expires_at: b.expires_at,
            metadata: b.metadata,
            ip_allowlist: b.ip_allowlist,
            rate_limit_per_minute: b.rate_limit_per_minute,
            rotation_policy: b.rotation_policy,
            anomaly_policy: b.anomaly_policy,
        }
    }
}

/// Absent stays `None`; a present `null` becomes `Some(None)`.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// An update body. Every field is optional; `null` clears an optional field; `name` and `environment` are
/// accepted only to be refused by name.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "KeyPatch")]
#[schemars(transform = super::openapi::fields::key_patch)]
pub struct UpdateBody {
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(skip)]
    name: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(skip)]
    environment: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(schema_with = "super::openapi::fields::description_keypatch")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(schema_with = "super::openapi::fields::owner")]
    owner: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(schema_with = "super::openapi::fields::scopes")]
    scopes: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(schema_with = "super::openapi::fields::project_ids_keypatch")]
    project_ids: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(schema_with = "super::openapi::fields::metadata_keypatch")]
    metadata: Option<Option<BTreeMap<String, String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(schema_with = "super::openapi::fields::ip_allowlist_keypatch")]
    ip_allowlist: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(schema_with = "super::openapi::fields::rate_limit_per_minute_keypatch")]
    rate_limit_per_minute: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(schema_with = "super::openapi::fields::rotation_policy_keypatch")]
    rotation_policy: Option<Option<RotationPolicy>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(schema_with = "super::openapi::fields::expires_at")]
    expires_at: Option<Option<LedgerTime>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schemars(schema_with = "super::openapi::fields::anomaly_policy_keypatch")]
    anomaly_policy: Option<Option<AnomalyPolicy>>,
}

/// Splits a nullable field into its new value and whether it is cleared.
fn split<T>(
    value: Option<Option<T>>,
    field: ClearableField,
    clear: &mut Vec<ClearableField>,
) -> Option<T> {
    match value {
        Some(None) => {
            clear.push(field);
            None
        }
        Some(Some(v)) => Some(v),
        None => None,
    }
}

fn required<T>(value: Option<Option<T>>, field: &str) -> ApiResult<Option<T>> {
    match value {
        Some(None) => Err(ApiError::bad_request(
            field,
            "cannot be null: every key has one; give a new value",
        )),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

impl UpdateBody {
    /// The patch this body asks for (validated later by the command).
    pub fn into_patch(self) -> ApiResult<KeyPatch> {
        for (field, given) in [("name", &self.name), ("environment", &self.environment)] {
            if given.is_some() {
                return Err(ApiError::bad_request(
                    field,
                    "cannot be changed; issue a new key instead",
                ));
            }
        }
        let mut clear = Vec::new();
        use ClearableField as F;
        Ok(KeyPatch {
            owner: required(self.owner, "owner")?,
            scopes: required(self.scopes, "scopes")?,
            description: split(self.description, F::Description, &mut clear),
            project_ids: split(self.project_ids, F::ProjectIds, &mut clear),
            metadata: split(self.metadata, F::Metadata, &mut clear),
            ip_allowlist: split(self.ip_allowlist, F::IpAllowlist, &mut clear),
            rate_limit_per_minute: split(
                self.rate_limit_per_minute,
                F::RateLimitPerMinute,
                &mut clear,
            ),
            rotation_policy: split(self.rotation_policy, F::RotationPolicy, &mut clear),
            expires_at: split(self.expires_at, F::ExpiresAt, &mut clear),
            anomaly_policy: split(self.anomaly_policy, F::AnomalyPolicy, &mut clear),
            clear,
        })
    }
}

/// The optional body of suspend, reactivate and revoke.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "StatusRequest")]
pub struct StatusBody {
    #[schemars(schema_with = "super::openapi::fields::reason")]
    #[serde(default)]
    pub reason: Option<String>,
    #[schemars(schema_with = "super::openapi::fields::until")]
    #[serde(default)]
    pub until: Option<String>,
}

/// An optional JSON body, read after authentication: empty means defaults; otherwise it must be sent as
/// `application/json` (415), be a JSON object (an array is not a struct here, 400) and name only known fields.
pub fn optional_body<T: serde::de::DeserializeOwned + Default>(
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json (or send no body)",
        ));
    }
    let invalid = |e: serde_json::Error| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.to_string())
    };
    let value: Value = serde_json::from_slice(body).map_err(invalid)?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(invalid)
}

/// The optional body of suspend, reactivate and revoke.
pub fn status_body(headers: &axum::http::HeaderMap, body: &[u8]) -> ApiResult<StatusBody> {
    optional_body(headers, body)
}
