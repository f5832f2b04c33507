//! What the key commands' flags ask for (a key's configuration, a change, a checked verify request, a secret read
//! from stdin), shared by the local commands (key_cmd.rs) and their client mode (remote_keys.rs).

use super::key_args::*;
use super::{CliError, EXIT_FAILED};
use crate::event::{KeyConfig, KeyPatch, RotationPolicy};
use crate::keys::check_request;
use std::collections::BTreeMap;
use std::io::Read;

/// The checked request fields of `key verify`, and the secret (read from stdin for `-`).
pub(super) fn verify_request(args: &VerifyArgs) -> Result<String, CliError> {
    check_request(
        args.scope.as_deref(),
        args.user_agent.as_deref(),
        args.project.as_deref(),
    )?;
    read_secret_arg(&args.secret)
}

pub(super) fn read_secret_arg(text: &str) -> Result<String, CliError> {
    if text != "-" {
        return Ok(text.to_string());
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| CliError::new(EXIT_FAILED, format!("reading stdin: {e}")))?;
    Ok(input.trim().to_string())
}

/// The rotation policy the flags ask for; the default notice is shortened to fit a short period, but an
/// explicit notice as long as the period is refused by validation, as the API refuses it.
fn policy(args: &ConfigArgs) -> Option<RotationPolicy> {
    args.rotate_every_days.map(|every_days| RotationPolicy {
        every_days,
        notify_days_before: args
            .notify_days_before
            .unwrap_or(DEFAULT_NOTIFY_DAYS.min(every_days.saturating_sub(1))),
    })
}

/// The configuration `key create` asks for.
pub(super) fn config_of(args: &CreateArgs) -> Result<KeyConfig, CliError> {
    let c = &args.config;
    Ok(KeyConfig {
        name: args.name.clone(),
        description: c.description.clone().unwrap_or_default(),
        owner: c
            .owner
            .clone()
            .ok_or_else(|| CliError::new(2, "--owner is required"))?,
        scopes: c.scopes.clone(),
        environment: args.environment.clone(),
        project_ids: c.projects.clone(),
        expires_at: c.expires,
        metadata: c.metadata.iter().cloned().collect(),
        ip_allowlist: c.ip_allowlist.clone(),
        rate_limit_per_minute: c.rate_limit,
        rotation_policy: policy(c),
        anomaly_policy: c.anomaly_policy.clone(),
    })
}

/// The change `key update` asks for.
pub(super) fn patch_of(args: &UpdateArgs) -> KeyPatch {
    let c = &args.config;
    KeyPatch {
        description: c.description.clone(),
        owner: c.owner.clone(),
        scopes: (!c.scopes.is_empty()).then(|| c.scopes.clone()),
        project_ids: (!c.projects.is_empty()).then(|| c.projects.clone()),
        metadata: (!c.metadata.is_empty())
            .then(|| c.metadata.iter().cloned().collect::<BTreeMap<_, _>>()),
        ip_allowlist: (!c.ip_allowlist.is_empty()).then(|| c.ip_allowlist.clone()),
        rate_limit_per_minute: c.rate_limit,
        rotation_policy: policy(c),
        expires_at: c.expires,
        anomaly_policy: c.anomaly_policy.clone(),
        clear: args.clear.clone(),
    }
}
