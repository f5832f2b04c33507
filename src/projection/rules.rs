//! The analysis rules the projections apply: the anomaly thresholds and actions (`[anomaly]` in keyledger.toml)
//! and the rotation periods of keys without a policy of their own (`[rotation]`).

use serde::{Deserialize, Serialize};

/// The rules judged per key, which a key's anomaly policy may tune or disable (`probing` is per source IP).
pub const KEY_RULES: [&str; 6] = [
    "dead_key_use",
    "distinct_ips",
    "denied_rate",
    "rate_spike",
    "new_network",
    "unusual_hour",
];

/// What the projections need of the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnalysisRules {
    pub anomaly: AnomalyConfig,
    pub rotation: RotationDefaults,
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
        let rules = KEY_RULES;
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
