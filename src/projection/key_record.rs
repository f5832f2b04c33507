//! One key as the log describes it: its status (with the time-based transitions), rate limiter and checks.

use crate::event::{ClearableField, KeyConfig, KeyPatch};
use crate::time::LedgerTime;
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// A key's lifecycle status as recorded by events. Time-based transitions (expiry, end of suspension, end of a
/// rotation overlap) are applied by [`KeyRecord::status_at`], so they take effect at once, before any sweep event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Suspended,
    Revoked,
    Expired,
    /// Replaced by rotation and past its overlap window.
    Retired,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Suspended => "suspended",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Expired => "expired",
            KeyStatus::Retired => "retired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Active,
            Self::Suspended,
            Self::Revoked,
            Self::Expired,
            Self::Retired,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A key's rate limit at one moment, for `RateLimit-*` headers and answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RateStatus {
    /// Uses allowed per minute.
    pub limit: u32,
    /// Uses that would be allowed right now, back to back.
    pub remaining: u32,
    /// Seconds until the whole allowance is available again.
    pub reset_secs: u64,
}

/// One key as the log describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KeyRecord {
    pub key_id: Uuid,
    pub prefix: String,
    #[serde(skip)]
    pub secret_sha256: [u8; 32],
    /// Shared, not copied, when the key state is cloned (the writer's copy): only an update replaces it.
    #[serde(flatten)]
    pub config: Arc<KeyConfig>,
    /// Status as recorded; see [`KeyRecord::status_at`] for the status in force at a time.
    pub recorded_status: KeyStatus,
    pub created_at: LedgerTime,
    pub created_seq: u64,
    pub updated_at: LedgerTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_until: Option<LedgerTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<LedgerTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_to: Option<Uuid>,
    /// When a rotated-away key stops working (end of its overlap window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retires_at: Option<LedgerTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_rotated_at: Option<LedgerTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<LedgerTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_ip: Option<String>,
    /// GCRA theoretical arrival time (µs) of the rate limiter; see [`KeyRecord::rate_limited_at`].
    #[serde(skip)]
    pub rate_tat: i64,
    /// `config.ip_allowlist`, parsed once so verification does not parse text.
    #[serde(skip)]
    pub allow_nets: Vec<ipnet::IpNet>,
}

const MINUTE_MICROS: i64 = 60_000_000;

impl KeyRecord {
    /// The status in force at `now`: recorded status plus the time-based transitions.
    pub fn status_at(&self, now: LedgerTime) -> KeyStatus {
        match self.recorded_status {
            KeyStatus::Revoked | KeyStatus::Expired | KeyStatus::Retired => self.recorded_status,
            status => {
                if self.config.expires_at.is_some_and(|at| at <= now) {
                    KeyStatus::Expired
                } else if self.retires_at.is_some_and(|at| at <= now) {
                    KeyStatus::Retired
                } else if status == KeyStatus::Suspended
                    && self.suspended_until.is_some_and(|u| u <= now)
                {
                    KeyStatus::Active
                } else {
                    status
                }
            }
        }
    }

    /// True when the key is in a rotation overlap window at `now` (replaced but still working).
    pub fn in_overlap_at(&self, now: LedgerTime) -> bool {
        self.rotated_to.is_some() && self.retires_at.is_some_and(|at| at > now)
    }

    /// Rate limiting is GCRA (a token bucket holding one minute's allowance, refilled continuously): each allowed
    /// use advances the theoretical arrival time by 60 s / limit; a use is refused while that time is more than
    /// a minute (less one interval) ahead of now. O(1) state, and exact on replay since times come from events.
    pub fn rate_limited_at(&self, now: LedgerTime) -> bool {
        self.rate_wait_micros(now).is_some_and(|wait| wait > 0)
    }

    /// Microseconds between uses allowed by the key's limit, if it has one.
    fn rate_interval_micros(&self) -> Option<i64> {
        self.config
            .rate_limit_per_minute
            .filter(|l| *l > 0)
            .map(|limit| MINUTE_MICROS / i64::from(limit))
    }

    /// How long a use at `now` must wait for the limiter (zero or less: it may go now); `None` without a limit.
    fn rate_wait_micros(&self, now: LedgerTime) -> Option<i64> {
        let interval = self.rate_interval_micros()?;
        let now = now.as_micros();
        Some(self.rate_tat.max(now) - now - (MINUTE_MICROS - interval))
    }

    /// The key's rate limit as it stands at `now`: its size, the uses left in the current allowance, and the
    /// seconds until the allowance is full again. `None` for a key without a limit.
    pub fn rate_status(&self, now: LedgerTime) -> Option<RateStatus> {
        let interval = self.rate_interval_micros()?;
        let limit = self.config.rate_limit_per_minute.unwrap_or(0);
        let backlog = (self.rate_tat - now.as_micros()).max(0);
        let spare = MINUTE_MICROS - interval - backlog;
        let remaining = if spare < 0 { 0 } else { spare / interval + 1 };
        Some(RateStatus {
            limit,
            remaining: u32::try_from(remaining.min(i64::from(limit))).unwrap_or(0),
            reset_secs: u64::try_from((backlog + 999_999) / 1_000_000).unwrap_or(0),
        })
    }

    /// Whole seconds (at least 1) until a use would no longer be rate limited, when it is now.
    pub fn retry_after_secs(&self, now: LedgerTime) -> Option<u64> {
        let wait = self.rate_wait_micros(now).filter(|wait| *wait > 0)?;
        Some(
            u64::try_from((wait + 999_999) / 1_000_000)
                .unwrap_or(1)
                .max(1),
        )
    }

    pub(super) fn record_allowed_use(&mut self, now: LedgerTime) {
        if let Some(interval) = self.rate_interval_micros() {
            self.rate_tat = self.rate_tat.max(now.as_micros()) + interval;
        }
    }

    /// Recomputes what is derived from the configuration (after creation, an update or loading a snapshot).
    pub fn refresh_derived(&mut self) {
        self.allow_nets = self
            .config
            .ip_allowlist
            .iter()
            .filter_map(|text| text.parse().ok())
            .collect();
    }

    /// True when `ip` is allowed by the allowlist (an empty list allows every address).
    pub fn ip_allowed(&self, ip: Option<std::net::IpAddr>) -> bool {
        if self.allow_nets.is_empty() {
            return true;
        }
        ip.is_some_and(|ip| self.allow_nets.iter().any(|net| net.contains(&ip)))
    }

    /// True when the key's scopes grant `required` (see [`crate::projection::scope`] for the grammar).
    pub fn grants_scope(&self, required: &str) -> bool {
        crate::projection::scope::any_grants(&self.config.scopes, required)
    }

    /// True when a request for `project` may use the key: a key bound to projects (`project_ids`) works only
    /// for requests that name one of them; an unbound key works for any request.
    pub fn project_allowed(&self, project: Option<&str>) -> bool {
        self.config.project_ids.is_empty()
            || project.is_some_and(|p| self.config.project_ids.iter().any(|id| id == p))
    }

    /// True when the key could authenticate an administrator of the ledger at `now`: active, granting
    /// `ledger:admin`, and not bound to projects (ledger requests name no project).
    pub fn is_usable_admin(&self, now: LedgerTime) -> bool {
        self.status_at(now) == KeyStatus::Active
            && self.rotated_to.is_none()
            && self.grants_scope(crate::projection::scope::LEDGER_ADMIN)
            && self.config.project_ids.is_empty()
    }

    /// The key as it would be after `patch` (for checking an update before it is recorded).
    pub fn patched(&self, patch: &KeyPatch) -> KeyRecord {
        let mut key = self.clone();
        key.apply_patch(patch);
        key.refresh_derived();
        key
    }

    pub(super) fn apply_patch(&mut self, patch: &KeyPatch) {
        // Copied here only if another key state (the writer's, or the published one) still shares it.
        let config = Arc::make_mut(&mut self.config);
        for field in &patch.clear {
            match field {
                ClearableField::Description => config.description.clear(),
                ClearableField::ProjectIds => config.project_ids.clear(),
                ClearableField::Metadata => config.metadata.clear(),
                ClearableField::IpAllowlist => config.ip_allowlist.clear(),
                ClearableField::RateLimitPerMinute => config.rate_limit_per_minute = None,
                ClearableField::RotationPolicy => config.rotation_policy = None,
                ClearableField::ExpiresAt => config.expires_at = None,
                ClearableField::AnomalyPolicy => config.anomaly_policy = None,
            }
        }
        if let Some(v) = &patch.description {
            config.description = v.clone();
        }
        if let Some(v) = &patch.owner {
            config.owner = v.clone();
        }
        if let Some(v) = &patch.scopes {
            config.scopes = v.clone();
        }
        if let Some(v) = &patch.project_ids {
            config.project_ids = v.clone();
        }
        if let Some(v) = &patch.metadata {
            config.metadata = v.clone();
        }
        if let Some(v) = &patch.ip_allowlist {
            config.ip_allowlist = v.clone();
        }
        if let Some(v) = patch.rate_limit_per_minute {
            config.rate_limit_per_minute = (v > 0).then_some(v);
        }
        if let Some(v) = &patch.rotation_policy {
            config.rotation_policy = (v.every_days > 0).then(|| v.clone());
        }
        if let Some(v) = patch.expires_at {
            config.expires_at = Some(v);
        }
        if let Some(v) = &patch.anomaly_policy {
            config.anomaly_policy = Some(v.clone());
        }
    }
}
