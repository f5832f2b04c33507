//! The `[alerts]` section of keyledger.toml: webhook sinks (URL, where the signing secret comes from, which
//! kinds, JSON or Slack shape, retry schedule) and the notice period of time-based alerts.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Every alert kind, in the order docs/API.md lists them.
pub const KINDS: &[&str] = &[
    "anomaly.detected",
    "key.suspended",
    "key.revoked",
    "key.rotation_due",
    "key.rotation_overdue",
    "key.expiring",
    "ledger.signer_rotated",
    "ledger.verification_failed",
    "ledger.witness_conflict",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    pub sinks: Vec<SinkConfig>,
    /// A key expiring within this many days raises `key.expiring` (once per key and expiry time).
    pub expiry_notice_days: u32,
    /// How often the time-based alerts (rotation due/overdue, expiring) are looked for, in seconds.
    pub check_interval_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            expiry_notice_days: 14,
            check_interval_secs: 60,
        }
    }
}

/// The body a sink receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkFormat {
    /// The alert document (docs/API.md, "Alerts").
    #[default]
    Json,
    /// `{"text": "…"}`, the shape Slack's incoming webhooks accept.
    Slack,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// 1–64 of `[a-z0-9_-]`: names the sink in deliveries, metrics and the delivery cursor.
    pub name: String,
    pub url: String,
    /// The environment variable holding the signing secret…
    pub secret_env: Option<String>,
    /// …or a file holding it (trailing newline removed). One of the two is required.
    pub secret_file: Option<PathBuf>,
    /// Which kinds this sink receives; empty: all.
    pub kinds: Vec<String>,
    pub format: SinkFormat,
    /// The first retry waits about this long (with jitter); each next one twice as long.
    pub retry_initial_ms: u64,
    /// The longest wait between two attempts.
    pub retry_max_secs: u64,
    /// After this long an alert is given up on and recorded as failed.
    pub give_up_after_secs: u64,
    /// How long one attempt may take.
    pub timeout_secs: u64,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            url: String::new(),
            secret_env: None,
            secret_file: None,
            kinds: Vec::new(),
            format: SinkFormat::Json,
            retry_initial_ms: 1_000,
            retry_max_secs: 3_600,
            give_up_after_secs: 86_400,
            timeout_secs: 10,
        }
    }
}

impl SinkConfig {
    pub fn wants(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind)
    }

    /// Where the secret comes from, for listings (never the secret).
    pub fn secret_source(&self) -> String {
        match (&self.secret_env, &self.secret_file) {
            (Some(var), _) => format!("${var}"),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => "(none)".into(),
        }
    }

    /// Reads the signing secret.
    pub fn secret(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        let text = match (&self.secret_env, &self.secret_file) {
            (Some(var), _) => std::env::var(var).map_err(|_| {
                format!(
                    "alert sink {:?}: ${var} (its signing secret) is not set",
                    self.name
                )
            })?,
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "alert sink {:?}: reading its secret from {}: {e}",
                    self.name,
                    path.display()
                )
            })?,
            (None, None) => return Err(format!("alert sink {:?} names no secret", self.name)),
        };
        let secret = text.trim_end_matches(['\r', '\n']);
        if secret.len() < 16 {
            return Err(format!(
                "alert sink {:?}: the signing secret must be at least 16 bytes",
                self.name
            ));
        }
        Ok(Zeroizing::new(secret.as_bytes().to_vec()))
    }
}

/// Whether `name` can name a sink: 1-64 of a-z, 0-9, `_` and `-`.
pub fn is_sink_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
}

impl AlertsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=86_400).contains(&self.check_interval_secs) {
            return Err(format!(
                "alerts.check_interval_secs = {} is outside 1..=86400",
                self.check_interval_secs
            ));
        }
        if self.expiry_notice_days > 3650 {
            return Err("alerts.expiry_notice_days is over 3650".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for sink in &self.sinks {
            let field = |what: &str| format!("alerts.sinks[{:?}].{what}", sink.name);
            if !is_sink_name(&sink.name) {
                return Err(format!(
                    "alerts.sinks: name {:?} must be 1-64 of a-z, 0-9, _ and -",
                    sink.name
                ));
            }
            if !names.insert(&sink.name) {
                return Err(format!("alerts.sinks: two sinks are named {:?}", sink.name));
            }
            if !(sink.url.starts_with("https://") || sink.url.starts_with("http://")) {
                return Err(format!(
                    "{}: {:?} is not an http(s) URL",
                    field("url"),
                    sink.url
                ));
            }
            if sink.secret_env.is_none() && sink.secret_file.is_none() {
                return Err(format!(
                    "{}: give secret_env or secret_file (the secret itself never goes in keyledger.toml)",
                    field("secret_env")
                ));
            }
            if let Some(unknown) = sink.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
                return Err(format!(
                    "{}: {unknown:?} is not an alert kind: one of {}",
                    field("kinds"),
                    KINDS.join(", ")
                ));
            }
            if sink.retry_initial_ms == 0 || sink.retry_max_secs == 0 || sink.timeout_secs == 0 {
                return Err(format!(
                    "{}: retry_initial_ms, retry_max_secs and timeout_secs must be positive",
                    field("retry_initial_ms")
                ));
            }
            if !(1..=7 * 86_400).contains(&sink.give_up_after_secs) {
                return Err(format!(
                    "{} is outside 1..=604800",
                    field("give_up_after_secs")
                ));
            }
        }
        Ok(())
    }
}
