//! Validation of key configuration input: names, scopes, metadata limits, CIDRs, rate limits and policies.
//! Every refusal names the field and says what is allowed. Text that identifies a key (names, owners, scopes,
//! metadata) refuses a keyledger secret pasted into it and characters that change how text displays (bidi
//! controls, zero-width and other invisible characters), so that no key can pose as another; those refusals never
//! repeat the value.

use crate::error::{LedgerError, LedgerResult};
use crate::event::{AnomalyPolicy, KeyConfig, KeyPatch, RotationPolicy};
use crate::projection::anomaly::KEY_RULES;
use std::collections::BTreeMap;

pub const MAX_NAME: usize = 128;
pub const MAX_DESCRIPTION: usize = 1024;
pub const MAX_SCOPES: usize = 64;
pub const MAX_PROJECTS: usize = 64;
pub const MAX_METADATA_ENTRIES: usize = 32;
pub const MAX_METADATA_VALUE: usize = 512;
pub const MAX_CIDRS: usize = 64;
pub const MAX_RATE_LIMIT: u32 = 1_000_000;
pub const MAX_ROTATION_DAYS: u32 = 3650;

fn invalid<T>(field: &str, message: impl Into<String>) -> LedgerResult<T> {
    Err(LedgerError::invalid(field, message))
}

/// Invisible characters that change how the text around them displays: controls, bidi embeddings, overrides,
/// isolates and marks, zero-width characters, line and paragraph separators, and the other format characters.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
            | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

fn no_secret(field: &str, value: &str) -> LedgerResult<()> {
    if crate::secret::contains_secret(value) {
        return invalid(
            field,
            "holds a keyledger secret (kl_…), which never belongs here; consider it exposed and rotate its key",
        );
    }
    Ok(())
}

/// Refuses a secret or an invisible character in `value` without repeating it (the code point is named).
fn clean(field: &str, value: &str) -> LedgerResult<()> {
    no_secret(field, value)?;
    match value.chars().find(|c| invisible(*c)) {
        Some(c) => invalid(
            field,
            format!(
                "must not contain control, bidi or zero-width characters (found U+{:04X})",
                u32::from(c)
            ),
        ),
        None => Ok(()),
    }
}

/// Free text (a description): no secret, no control characters.
fn text(field: &str, value: &str, max: usize, required: bool) -> LedgerResult<String> {
    let trimmed = value.trim();
    no_secret(field, trimmed)?;
    if required && trimmed.is_empty() {
        return invalid(field, "must not be empty");
    }
    if trimmed.chars().count() > max {
        return invalid(field, format!("at most {max} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return invalid(field, "must not contain control characters");
    }
    Ok(trimmed.to_string())
}

/// Text that identifies a key (a name, an owner, a metadata value): also no invisible characters.
fn label(field: &str, value: &str, max: usize, required: bool) -> LedgerResult<String> {
    clean(field, value.trim())?;
    text(field, value, max, required)
}

/// An owner, as a key carries it and revoke-by-owner names it.
pub fn owner(value: &str) -> LedgerResult<String> {
    label("owner", value, MAX_NAME, true)
}

fn token(field: &str, value: &str, max: usize, extra: &str) -> LedgerResult<String> {
    clean(field, value)?;
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        invalid(
            field,
            format!("{value:?} is not allowed: 1-{max} of letters, digits and {extra:?}"),
        )
    }
}

pub fn scopes(field: &str, values: &[String]) -> LedgerResult<Vec<String>> {
    if values.is_empty() {
        return invalid(field, "at least one scope is required");
    }
    if values.len() > MAX_SCOPES {
        return invalid(field, format!("at most {MAX_SCOPES} scopes"));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let scope = value.trim().to_string();
        clean(field, &scope)?;
        crate::projection::scope::check(field, &scope)?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out)
}

pub fn environment(value: &str) -> LedgerResult<String> {
    let lowered = value.trim().to_ascii_lowercase();
    token("environment", &lowered, 32, "_-")
}

pub fn project_ids(values: &[String]) -> LedgerResult<Vec<String>> {
    if values.len() > MAX_PROJECTS {
        return invalid("project_ids", format!("at most {MAX_PROJECTS} project ids"));
    }
    values
        .iter()
        .map(|v| token("project_ids", v, 64, "_.:-"))
        .collect()
}

pub fn metadata(values: &BTreeMap<String, String>) -> LedgerResult<BTreeMap<String, String>> {
    if values.len() > MAX_METADATA_ENTRIES {
        return invalid(
            "metadata",
            format!("at most {MAX_METADATA_ENTRIES} entries"),
        );
    }
    let mut out = BTreeMap::new();
    for (key, value) in values {
        let key = token("metadata", key, 64, "_.:-")?;
        let value = label(&format!("metadata.{key}"), value, MAX_METADATA_VALUE, false)?;
        out.insert(key, value);
    }
    Ok(out)
}

/// Parses CIDRs (a bare address means that one address) into their canonical text.
pub fn ip_allowlist(values: &[String]) -> LedgerResult<Vec<String>> {
    if values.len() > MAX_CIDRS {
        return invalid("ip_allowlist", format!("at most {MAX_CIDRS} entries"));
    }
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        let net = parse_cidr(value).ok_or_else(|| {
            LedgerError::invalid(
                "ip_allowlist",
                format!(
                    "{value:?} is not a CIDR (e.g. 10.0.0.0/8, 2001:db8::/32) or an IP address"
                ),
            )
        })?;
        if net.trunc() != net {
            return invalid(
                "ip_allowlist",
                format!(
                    "{value:?} has bits set past its prefix length; did you mean {}?",
                    net.trunc()
                ),
            );
        }
        let canonical = net.to_string();
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    Ok(out)
}

pub fn parse_cidr(value: &str) -> Option<ipnet::IpNet> {
    let value = value.trim();
    value.parse::<ipnet::IpNet>().ok().or_else(|| {
        value
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

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

/// Validates and normalises a whole configuration (creation).
pub fn config(input: &KeyConfig) -> LedgerResult<KeyConfig> {
    Ok(KeyConfig {
        name: label("name", &input.name, MAX_NAME, true)?,
        description: text("description", &input.description, MAX_DESCRIPTION, false)?,
        owner: owner(&input.owner)?,
        scopes: scopes("scopes", &input.scopes)?,
        environment: environment(&input.environment)?,
        project_ids: project_ids(&input.project_ids)?,
        expires_at: input.expires_at,
        metadata: metadata(&input.metadata)?,
        ip_allowlist: ip_allowlist(&input.ip_allowlist)?,
        rate_limit_per_minute: input
            .rate_limit_per_minute
            .map(|v| rate_limit(v, false))
            .transpose()?,
        rotation_policy: input
            .rotation_policy
            .as_ref()
            .map(|p| rotation_policy(p, false))
            .transpose()?,
        anomaly_policy: input
            .anomaly_policy
            .as_ref()
            .map(anomaly_policy)
            .transpose()?,
    })
}

/// Validates and normalises an update; an empty update is refused.
pub fn patch(input: &KeyPatch) -> LedgerResult<KeyPatch> {
    let out = KeyPatch {
        description: input
            .description
            .as_deref()
            .map(|v| text("description", v, MAX_DESCRIPTION, false))
            .transpose()?,
        owner: input.owner.as_deref().map(owner).transpose()?,
        scopes: input
            .scopes
            .as_deref()
            .map(|v| scopes("scopes", v))
            .transpose()?,
        project_ids: input.project_ids.as_deref().map(project_ids).transpose()?,
        metadata: input.metadata.as_ref().map(metadata).transpose()?,
        ip_allowlist: input
            .ip_allowlist
            .as_deref()
            .map(ip_allowlist)
            .transpose()?,
        rate_limit_per_minute: input
            .rate_limit_per_minute
            .map(|v| rate_limit(v, true))
            .transpose()?,
        rotation_policy: input
            .rotation_policy
            .as_ref()
            .map(|p| rotation_policy(p, true))
            .transpose()?,
        expires_at: input.expires_at,
        anomaly_policy: input
            .anomaly_policy
            .as_ref()
            .map(anomaly_policy)
            .transpose()?,
        clear: {
            let mut clear = input.clear.clone();
            clear.sort_unstable();
            clear.dedup();
            clear
        },
    };
    if let Some(field) = out.clear.iter().find(|f| out.sets(**f)) {
        return invalid(
            field.as_str(),
            "is both set and cleared in one update; give one or the other",
        );
    }
    if out == KeyPatch::default() {
        return invalid(
            "body",
            "nothing to update: give at least one field that may change",
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_parsed_and_normalised_and_bad_ones_named() {
        let nets = ip_allowlist(&["10.0.0.0/8".into(), "2001:db8::1".into()]).unwrap();
        assert_eq!(
            nets,
            vec!["10.0.0.0/8".to_string(), "2001:db8::1/128".to_string()]
        );
        let err = ip_allowlist(&["10.0.0.1/8".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 10.0.0.0/8"), "{err}");
        let err = ip_allowlist(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(
            err.to_string().contains("ip_allowlist") && err.to_string().contains("10.0.0.0/33")
        );
    }

    #[test]
    fn invisible_characters_are_refused_by_code_point_and_letters_of_any_script_kept() {
        for c in "\u{202E}\u{2066}\u{200B}\u{FEFF}\u{061C}\u{E0041}\n".chars() {
            let err = owner(&format!("team{c}a")).unwrap_err().to_string();
            let named = format!("(found U+{:04X})", u32::from(c));
            assert!(err.starts_with("owner") && err.ends_with(&named), "{err}");
        }
        assert_eq!(owner(" équipe-東京 ").unwrap(), "équipe-東京");
        let secret = crate::secret::Secret::generate("prod").expose().to_string();
        let err = scopes("scopes", std::slice::from_ref(&secret))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("scopes") && !err.contains(&secret), "{err}");
    }

    #[test]
    fn empty_or_oversized_fields_are_refused_by_name() {
        let mut config = KeyConfig {
            name: "n".into(),
            owner: "o".into(),
            scopes: vec!["read".into()],
            environment: "prod".into(),
            ..Default::default()
        };
        assert!(super::config(&config).is_ok());
        config.scopes.clear();
        assert!(super::config(&config)
            .unwrap_err()
            .to_string()
            .starts_with("scopes"));
        config.scopes = vec!["read".into()];
        config.metadata.insert("bad key".into(), "v".into());
        assert!(super::config(&config)
            .unwrap_err()
            .to_string()
            .starts_with("metadata"));
        assert!(patch(&KeyPatch::default()).is_err());
        assert!(rotation_policy(
            &RotationPolicy {
                every_days: 30,
                notify_days_before: 30
            },
            false
        )
        .is_err());
    }
}
