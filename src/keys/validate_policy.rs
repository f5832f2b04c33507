//! The checks of a key's limits and policies (validate.rs re-exports them): the rate limit, the rotation policy and
//! the per-key anomaly policy (known rule names, thresholds that can be met, a bounded suspension).

use super::validate_text::invalid;
use crate::error::LedgerResult;
use crate::event::{AnomalyPolicy, RotationPolicy};
use crate::projection::anomaly::KEY_RULES;

pub const MAX_RATE_LIMIT: u32 = 1_000_000;
pub const MAX_ROTATION_DAYS: u32 = 3650;

pub fn rate_limit(value: u32, allow_zero: bool) -> LedgerResult<u32> {
    if (value == 0 && !allow_zero) || value > MAX_RATE_LIMIT {
        let low = if allow_zero { 0 } else { 1 };
        return invalid(
            "rate_limit_per_minute",
            format!("must be {low}..={MAX_RATE_LIMIT}"),
        );
    }
    Ok(value)
}

pub fn rotation_policy(policy: &RotationPolicy, allow_zero: bool) -> LedgerResult<RotationPolicy> {
    if policy.every_days == 0 && allow_zero {
        return Ok(policy.clone());
    }
    if policy.every_days == 0 || policy.every_days > MAX_ROTATION_DAYS {
        return invalid(
            "rotation_policy.every_days",
            format!("must be 1..={MAX_ROTATION_DAYS}"),
        );
    }
    if policy.notify_days_before >= policy.every_days {
        return invalid(
            "rotation_policy.notify_days_before",
            "must be less than every_days",
        );
    }
    Ok(policy.clone())
}

fn rule_names(field: &str, rules: &[String]) -> LedgerResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for rule in rules {
        if !KEY_RULES.contains(&rule.as_str()) {
            return invalid(
                field,
                format!(
                    "{rule:?} is not a per-key rule: one of {}",
                    KEY_RULES.join(", ")
                ),
            );
        }
        if !out.contains(rule) {
            out.push(rule.clone());
        }
    }
    Ok(out)
}

fn at_least_one(field: &str, value: Option<u64>, max: u64) -> LedgerResult<Option<u64>> {
    match value {
        Some(v) if v == 0 || v > max => invalid(field, format!("must be 1..={max}")),
        other => Ok(other),
    }
}

/// Longest automatic suspension a policy may ask for: 30 days.
pub const MAX_SUSPEND_SECS: u32 = 30 * 86_400;

/// Checks a per-key anomaly policy: known rule names, thresholds that can be met, a bounded suspension.
pub fn anomaly_policy(policy: &AnomalyPolicy) -> LedgerResult<AnomalyPolicy> {
    let suspend_for_secs = match policy.suspend_for_secs {
        Some(secs) if secs == 0 || secs > MAX_SUSPEND_SECS => {
            return invalid(
                "anomaly_policy.suspend_for_secs",
                format!("must be 1..={MAX_SUSPEND_SECS}"),
            )
        }
        other => other,
    };
    Ok(AnomalyPolicy {
        disabled_rules: rule_names("anomaly_policy.disabled_rules", &policy.disabled_rules)?,
        distinct_ips_max: at_least_one(
            "anomaly_policy.distinct_ips_max",
            policy.distinct_ips_max,
            1_000_000,
        )?,
        denied_percent: match policy.denied_percent {
            Some(p) if p > 100 => {
                return invalid("anomaly_policy.denied_percent", "must be 0..=100")
            }
            other => other,
        },
        rate_factor: at_least_one("anomaly_policy.rate_factor", policy.rate_factor, 1_000_000)?,
        suspend_on: policy
            .suspend_on
            .as_deref()
            .map(|rules| rule_names("anomaly_policy.suspend_on", rules))
            .transpose()?,
        suspend_for_secs,
    })
}
