//! Validation of key configuration input: names, scopes, metadata limits, CIDRs, rate limits and policies.
//! Every refusal names the field and says what is allowed. Text that identifies a key (names, owners, scopes,
//! metadata) refuses a keyledger secret pasted into it and characters that change how text displays (bidi
//! controls, zero-width and other invisible characters), so that no key can pose as another; those refusals never
//! repeat the value. The checks under every text field are in validate_text.rs, the rate limit and the rotation
//! and anomaly policies in validate_policy.rs.

use crate::error::{LedgerError, LedgerResult};
use crate::event::{KeyConfig, KeyPatch};
use std::collections::BTreeMap;

pub use super::validate_policy::{
    anomaly_policy, rate_limit, rotation_policy, MAX_RATE_LIMIT, MAX_ROTATION_DAYS,
    MAX_SUSPEND_SECS,
};
use super::validate_text::{clean, invalid, label, text, token};

pub const MAX_NAME: usize = 128;
pub const MAX_DESCRIPTION: usize = 1024;
pub const MAX_SCOPES: usize = 64;
pub const MAX_PROJECTS: usize = 64;
pub const MAX_METADATA_ENTRIES: usize = 32;
pub const MAX_METADATA_VALUE: usize = 512;
pub const MAX_CIDRS: usize = 64;

/// An owner, as a key carries it and revoke-by-owner names it.
pub fn owner(value: &str) -> LedgerResult<String> {
    label("owner", value, MAX_NAME, true)
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
    use crate::event::RotationPolicy;

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
