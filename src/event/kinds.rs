//! The data of each event type: what a key action, a key use or a ledger action records.

use crate::time::LedgerTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// How often a key should be rotated and how early to warn about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(description = "notify_days_before must be less than every_days")]
pub struct RotationPolicy {
    #[schemars(range(min = 1, max = 3650))]
    pub every_days: u32,
    #[serde(default)]
    #[schemars(range(max = 3649))]
    pub notify_days_before: u32,
}

/// How the anomaly rules treat one key, on top of the `[anomaly]` defaults of `keyledger.toml`. Absent fields
/// keep the defaults. Recorded in `key.created`/`key.updated`, so a replay applies the same policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    description = "Per-key anomaly policy on top of the keyledger.toml defaults (docs/ANOMALIES.md). Absent fields keep the defaults."
)]
pub struct AnomalyPolicy {
    /// Rules that never fire for this key (any of the per-key rules: `dead_key_use`, `distinct_ips`,
    /// `denied_rate`, `rate_spike`, `new_network`, `unusual_hour`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        description = "rules that never fire for this key",
        extend("items" = {"type": "string", "enum": ["dead_key_use", "distinct_ips", "denied_rate", "rate_spike", "new_network", "unusual_hour"]})
    )]
    pub disabled_rules: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub distinct_ips_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub denied_percent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub rate_factor: Option<u64>,
    /// Rules whose firing suspends this key; `[]` means alert only. Absent: the default list, except that a key
    /// holding a `ledger:*` scope (or `*`) is never suspended by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        description = "rules whose firing suspends this key; [] means alert only; absent means the default list (none for keys holding ledger: scopes or *)",
        extend("items" = {"type": "string", "enum": ["dead_key_use", "distinct_ips", "denied_rate", "rate_spike", "new_network", "unusual_hour"]})
    )]
    pub suspend_on: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2592000))]
    pub suspend_for_secs: Option<u32>,
}

/// A key's configuration as set at creation (and copied on rotation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KeyConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub owner: String,
    pub scopes: Vec<String>,
    pub environment: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub project_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<LedgerTime>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// CIDRs (IPv4 or IPv6) in canonical text form; empty means any address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_allowlist: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_policy: Option<RotationPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_policy: Option<AnomalyPolicy>,
}

/// `key.created`: a new key, by its public prefix and the SHA-256 of its secret (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCreated {
    pub key_id: Uuid,
    pub prefix: String,
    /// Lower-case hex SHA-256 of the whole secret string.
    pub secret_sha256: String,
    pub config: KeyConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<Uuid>,
}

/// The fields an update may change; absent fields stay as they were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allowlist: Option<Vec<String>>,
    /// `0` removes the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// `every_days: 0` removes the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_policy: Option<RotationPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<LedgerTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_policy: Option<AnomalyPolicy>,
    /// Optional fields reset to "not set" (applied before the fields given above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clear: Vec<ClearableField>,
}

/// The optional fields of a key's configuration that an update may clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearableField {
    Description,
    ProjectIds,
    Metadata,
    IpAllowlist,
    RateLimitPerMinute,
    RotationPolicy,
    ExpiresAt,
    AnomalyPolicy,
}

impl ClearableField {
    pub const ALL: [ClearableField; 8] = [
        ClearableField::Description,
        ClearableField::ProjectIds,
        ClearableField::Metadata,
        ClearableField::IpAllowlist,
        ClearableField::RateLimitPerMinute,
        ClearableField::RotationPolicy,
        ClearableField::ExpiresAt,
        ClearableField::AnomalyPolicy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClearableField::Description => "description",
            ClearableField::ProjectIds => "project_ids",
            ClearableField::Metadata => "metadata",
            ClearableField::IpAllowlist => "ip_allowlist",
            ClearableField::RateLimitPerMinute => "rate_limit_per_minute",
            ClearableField::RotationPolicy => "rotation_policy",
            ClearableField::ExpiresAt => "expires_at",
            ClearableField::AnomalyPolicy => "anomaly_policy",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

impl KeyPatch {
    /// Whether the patch gives a new value for `field`.
    pub fn sets(&self, field: ClearableField) -> bool {
        match field {
            ClearableField::Description => self.description.is_some(),
            ClearableField::ProjectIds => self.project_ids.is_some(),
            ClearableField::Metadata => self.metadata.is_some(),
            ClearableField::IpAllowlist => self.ip_allowlist.is_some(),
            ClearableField::RateLimitPerMinute => self.rate_limit_per_minute.is_some(),
            ClearableField::RotationPolicy => self.rotation_policy.is_some(),
            ClearableField::ExpiresAt => self.expires_at.is_some(),
            ClearableField::AnomalyPolicy => self.anomaly_policy.is_some(),
        }
    }
}

/// `key.updated`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUpdated {
    pub key_id: Uuid,
    pub changes: KeyPatch,
}

/// `key.rotated`: the old key is linked to its successor and keeps working until `old_key_retires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotated {
    pub key_id: Uuid,
    pub new_key_id: Uuid,
    pub overlap_seconds: u32,
    pub old_key_retires_at: LedgerTime,
}

/// `key.revoked`, `key.reactivated`, `key.expired`: a status change with an optional reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatusChange {
    pub key_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `key.suspended`: until a time, or until reactivated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySuspended {
    pub key_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<LedgerTime>,
}

/// The stable outcome codes of a verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyCode {
    Valid,
    NotFound,
    BadFormat,
    Revoked,
    Expired,
    Suspended,
    Retired,
    InsufficientScope,
    IpNotAllowed,
    RateLimited,
    ProjectNotAllowed,
}

impl VerifyCode {
    pub const ALL: [VerifyCode; 11] = [
        VerifyCode::Valid,
        VerifyCode::NotFound,
        VerifyCode::BadFormat,
        VerifyCode::Revoked,
        VerifyCode::Expired,
        VerifyCode::Suspended,
        VerifyCode::Retired,
        VerifyCode::InsufficientScope,
        VerifyCode::IpNotAllowed,
        VerifyCode::RateLimited,
        VerifyCode::ProjectNotAllowed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VerifyCode::Valid => "valid",
            VerifyCode::NotFound => "not_found",
            VerifyCode::BadFormat => "bad_format",
            VerifyCode::Revoked => "revoked",
            VerifyCode::Expired => "expired",
            VerifyCode::Suspended => "suspended",
            VerifyCode::Retired => "retired",
            VerifyCode::InsufficientScope => "insufficient_scope",
            VerifyCode::IpNotAllowed => "ip_not_allowed",
            VerifyCode::RateLimited => "rate_limited",
            VerifyCode::ProjectNotAllowed => "project_not_allowed",
        }
    }

    pub fn is_allowed(self) -> bool {
        self == VerifyCode::Valid
    }
}

/// `key.used`: one verification, allowed or denied. `key_id` is absent when no key matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    /// The public prefix of the presented secret, when it had a well-formed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    pub outcome: VerifyCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The project the request was for, when it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The address of the gateway that asked (`POST /v1/verify`), whose key is the event's actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ip: Option<String>,
    /// True when an old key was used during its rotation overlap window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overlap: bool,
    /// The client request's method and path (no query string), when a gateway asked through `/v1/authz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Commitments to the personal fields (body version 2, [`crate::personal`]): the hashed body carries these
    /// instead of `ip`, `gateway_ip` and `user_agent`, whose values are kept beside the event, sealed under their
    /// day's key. In memory the values stay in their fields while they are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<Committed>,
}

/// Hex SHA-256 commitments to a `key.used` event's personal fields (`crate::personal::commit`), one per field that
/// had a value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Committed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// `policy.set`: default rotation policy for an environment (or for one key when `key_id` is given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    pub rotation: RotationPolicy,
}

/// `anomaly.detected`: a rule fired and an action was taken on the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyDetected {
    pub anomaly_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    pub rule: String,
    pub severity: String,
    pub window_start: LedgerTime,
    pub window_end: LedgerTime,
    pub observed: u64,
    pub threshold: u64,
    pub evidence: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// `ledger.initialized`: the first event, naming the ledger and its first signer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerInitialized {
    pub ledger_id: Uuid,
    pub origin: String,
    /// Lower-case hex of the Ed25519 public key.
    pub public_key: String,
    pub signer_id: String,
}

/// `ledger.signer_rotated`: signed by the old key, it endorses the new one for every later event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerRotated {
    pub new_public_key: String,
    pub new_signer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
