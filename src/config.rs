//! Analysis configuration: anomaly thresholds and actions, rotation defaults. Read from `<data>/keyledger.toml`
//! when present; every field is optional and documented with its default in docs/ANOMALIES.md.

use crate::error::{LedgerError, LedgerResult};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Where the log lives: absent for the embedded sled store in `<data>/log`, or a PostgreSQL URL
    /// (`postgres://user@host/db`; the password from $KEYLEDGER_PG_PASSWORD or the file named by
    /// $KEYLEDGER_PG_PASSWORD_FILE, never in this file).
    pub store: Option<String>,
    /// The embedded store's read cache.
    pub storage: crate::store::StorageConfig,
    pub anomaly: AnomalyConfig,
    pub rotation: RotationDefaults,
    pub checkpoints: CheckpointConfig,
    pub snapshots: SnapshotConfig,
    pub anchor: crate::audit::anchor::AnchorConfig,
    pub http: HttpConfig,
    pub authz: crate::gateway::AuthzConfig,
    /// Webhook sinks and the notice period of time-based alerts (issue 15).
    pub alerts: crate::alerts::AlertsConfig,
}

/// The HTTP API's browser-facing settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Origins (`https://console.example.com`) whose pages may call the API from a browser. Empty (the default):
    /// no CORS headers at all, so browsers refuse cross-origin calls.
    pub cors_origins: Vec<String>,
}

/// When the writer signs and stores checkpoints besides every 1,024 events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// A checkpoint at least this often (seconds) while events arrive; 1..=86400.
    pub interval_secs: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self { interval_secs: 60 }
    }
}

/// How often a serving ledger persists its projection state, so that the next start replays only the tail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Seconds between snapshots while events arrive (one is also written at clean shutdown); 1..=86400.
    pub interval_secs: u64,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self { interval_secs: 300 }
    }
}

/// Thresholds of the anomaly rules. Windows are in seconds; rates in percent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// More than this many distinct client IPs for one key within `distinct_ips_window_secs`.
    pub distinct_ips_max: u64,
    pub distinct_ips_window_secs: i64,
    /// A bucket of `rate_bucket_secs` with more than `rate_factor` × the key's own trailing mean.
    pub rate_factor: u64,
    pub rate_bucket_secs: i64,
    /// Trailing buckets that form the baseline, and how many must exist before the rule speaks.
    pub rate_baseline_buckets: u64,
    pub rate_min_baseline_buckets: u64,
    /// A bucket must hold at least this many uses to count as a spike.
    pub rate_min_volume: u64,
    /// Denied share above this percentage within `denied_window_secs`, with at least `denied_min_volume` uses.
    pub denied_percent: u64,
    pub denied_window_secs: i64,
    pub denied_min_volume: u64,
    /// New network (/24, /48) once a key has this many uses or is this old.
    pub new_network_warmup_uses: u64,
    pub new_network_warmup_secs: i64,
    /// Unusual hour: an hour of day (UTC) never used before, once the key is this old.
    pub unusual_hour_warmup_secs: i64,
    /// Probing: more than this many not_found/bad_format attempts from one IP within the window.
    pub probing_max: u64,
    pub probing_window_secs: i64,
    /// Rules whose firing suspends the key (an `anomaly.detected` and a `key.suspended` on the record).
    pub suspend_on: Vec<String>,
    pub suspend_for_secs: u32,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            distinct_ips_max: 5,
            distinct_ips_window_secs: 3600,
            rate_factor: 3,
            rate_bucket_secs: 300,
            rate_baseline_buckets: 12,
            rate_min_baseline_buckets: 3,
            rate_min_volume: 50,
            denied_percent: 10,
            denied_window_secs: 900,
            denied_min_volume: 20,
            new_network_warmup_uses: 100,
            new_network_warmup_secs: 86_400,
            unusual_hour_warmup_secs: 7 * 86_400,
            probing_max: 20,
            probing_window_secs: 60,
            suspend_on: vec!["distinct_ips".into()],
            suspend_for_secs: 3600,
        }
    }
}

/// Rotation period when a key has no policy of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotationDefaults {
    pub production_days: u32,
    pub default_days: u32,
    pub notify_days_before: u32,
}

impl Default for RotationDefaults {
    fn default() -> Self {
        Self {
            production_days: 90,
            default_days: 180,
            notify_days_before: 14,
        }
    }
}

/// `field = value` must lie in `range`.
fn in_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{field} = {value} is outside {}..={}",
            range.start(),
            range.end()
        ))
    }
}

const DAY: i64 = 86_400;

impl AnomalyConfig {
    /// Every threshold must be one a rule can use: windows and divisors non-zero, percentages at most 100,
    /// rule names known.
    pub fn validate(&self) -> Result<(), String> {
        in_range(
            "anomaly.distinct_ips_max",
            self.distinct_ips_max,
            1..=1_000_000,
        )?;
        in_range(
            "anomaly.distinct_ips_window_secs",
            self.distinct_ips_window_secs,
            1..=30 * DAY,
        )?;
        in_range("anomaly.rate_factor", self.rate_factor, 1..=1_000_000)?;
        in_range("anomaly.rate_bucket_secs", self.rate_bucket_secs, 1..=DAY)?;
        in_range(
            "anomaly.rate_baseline_buckets",
            self.rate_baseline_buckets,
            1..=10_000,
        )?;
        in_range(
            "anomaly.rate_min_baseline_buckets",
            self.rate_min_baseline_buckets,
            0..=self.rate_baseline_buckets,
        )?;
        in_range(
            "anomaly.rate_min_volume",
            self.rate_min_volume,
            1..=u64::MAX,
        )?;
        in_range("anomaly.denied_percent", self.denied_percent, 0..=100)?;
        in_range(
            "anomaly.denied_window_secs",
            self.denied_window_secs,
            1..=30 * DAY,
        )?;
        in_range(
            "anomaly.denied_min_volume",
            self.denied_min_volume,
            1..=u64::MAX,
        )?;
        in_range(
            "anomaly.new_network_warmup_secs",
            self.new_network_warmup_secs,
            0..=3650 * DAY,
        )?;
        in_range(
            "anomaly.unusual_hour_warmup_secs",
            self.unusual_hour_warmup_secs,
            0..=3650 * DAY,
        )?;
        in_range("anomaly.probing_max", self.probing_max, 1..=u64::MAX)?;
        in_range(
            "anomaly.probing_window_secs",
            self.probing_window_secs,
            1..=DAY,
        )?;
        in_range(
            "anomaly.suspend_for_secs",
            self.suspend_for_secs,
            1..=30 * 86_400,
        )?;
        let rules = crate::projection::anomaly::KEY_RULES;
        if let Some(unknown) = self
            .suspend_on
            .iter()
            .find(|r| !rules.contains(&r.as_str()))
        {
            return Err(format!(
                "anomaly.suspend_on names {unknown:?}, which is not a per-key rule: one of {}",
                rules.join(", ")
            ));
        }
        Ok(())
    }
}

impl RotationDefaults {
    pub fn validate(&self) -> Result<(), String> {
        in_range("rotation.production_days", self.production_days, 1..=3650)?;
        in_range("rotation.default_days", self.default_days, 1..=3650)?;
        let shortest = self.production_days.min(self.default_days);
        in_range(
            "rotation.notify_days_before",
            self.notify_days_before,
            0..=shortest.saturating_sub(1),
        )
    }
}

impl AnalysisConfig {
    /// Checks ranges the types cannot express; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(store) = &self.store {
            if !(store.starts_with("postgres://") || store.starts_with("postgresql://")) {
                return Err(format!("store = {store:?}: only postgres:// URLs are supported (leave it out for the embedded store)"));
            }
            if store.split("://").nth(1).is_some_and(|rest| {
                rest.split('@').next().is_some_and(|c| c.contains(':')) && rest.contains('@')
            }) {
                return Err("store: put no password in keyledger.toml; use $KEYLEDGER_PG_PASSWORD or $KEYLEDGER_PG_PASSWORD_FILE".into());
            }
        }
        self.anomaly.validate()?;
        self.rotation.validate()?;
        self.authz.compile()?;
        self.alerts.validate()?;
        if let Some(bad) = self.http.cors_origins.iter().find(|o| {
            !(o.starts_with("https://") || o.starts_with("http://"))
                || o.ends_with('/')
                || o.contains(char::is_whitespace)
        }) {
            return Err(format!(
                "http.cors_origins: {bad:?} is not an origin like https://console.example.com (scheme and host, \
                 no path)"
            ));
        }
        self.storage.validate()?;
        if !(1..=86_400).contains(&self.checkpoints.interval_secs) {
            return Err(format!(
                "checkpoints.interval_secs = {} is outside 1..=86400",
                self.checkpoints.interval_secs
            ));
        }
        if !(1..=86_400).contains(&self.snapshots.interval_secs) {
            return Err(format!(
                "snapshots.interval_secs = {} is outside 1..=86400",
                self.snapshots.interval_secs
            ));
        }
        if self
            .anchor
            .command
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err("anchor.command is empty".into());
        }
        if self
            .anchor
            .read_command
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err("anchor.read_command is empty".into());
        }
        Ok(())
    }

    /// Reads the file if it exists; defaults otherwise. Unknown fields are refused by name.
    pub fn load(path: &Path) -> LedgerResult<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let config: Self = toml::from_str(&text)
                    .map_err(|e| LedgerError::Config(format!("{}: {e}", path.display())))?;
                config
                    .validate()
                    .map_err(|e| LedgerError::Config(format!("{}: {e}", path.display())))?;
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(LedgerError::io(format!("reading {}", path.display()), e)),
        }
    }
}
