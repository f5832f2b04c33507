//! `keyledger key …` and `keyledger history`: the key lifecycle from the command line.

use super::key_output::*;
use super::{Cli, CliError, CliResult, EXIT_DENIED, EXIT_FAILED};
use crate::event::{Actor, AnomalyPolicy, ClearableField, KeyConfig, KeyPatch, RotationPolicy};
use crate::keys::*;
use crate::ledger::Ledger;
use crate::projection::{keys_as_of, KeyStatus};
use crate::time::LedgerTime;
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use uuid::Uuid;

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Issue a new key; its secret is printed once.
    Create(CreateArgs),
    /// List keys, optionally filtered, or as they were at a past time.
    List(ListArgs),
    /// Show one key with its links.
    Show(ShowArgs),
    /// Change what may change (not name or environment).
    Update(UpdateArgs),
    /// Replace a key; the old one keeps working for the overlap window.
    Rotate(RotateArgs),
    /// Revoke a key for good, or (`--owner`) every active or suspended key of an owner.
    Revoke(RevokeArgs),
    /// Suspend a key, for a while or until reactivated.
    Suspend(SuspendArgs),
    /// Reactivate a suspended key.
    Reactivate(StatusArgs),
    /// Check a secret as a gateway would (recorded as a key use); exit 5 when denied.
    Verify(VerifyArgs),
    /// Find the key of a leaked secret (or its SHA-256), show its history, optionally revoke it.
    Find(FindArgs),
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub owner: Option<String>,
    /// A scope the key grants (repeat for several).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    #[arg(long = "project")]
    pub projects: Vec<String>,
    /// Metadata as key=value (repeat for several).
    #[arg(long = "meta", value_parser = parse_meta)]
    pub metadata: Vec<(String, String)>,
    /// Allowed client network as a CIDR or address (repeat for several).
    #[arg(long = "allow-ip")]
    pub ip_allowlist: Vec<String>,
    #[arg(long)]
    pub rate_limit: Option<u32>,
    #[arg(long)]
    pub rotate_every_days: Option<u32>,
    #[arg(long, default_value_t = 14)]
    pub notify_days_before: u32,
    /// Expiry time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub expires: Option<LedgerTime>,
    /// This key's anomaly policy as JSON, e.g. '{"suspend_on":[]}' (alert only) or
    /// '{"distinct_ips_max":20,"disabled_rules":["unusual_hour"]}'; see docs/ANOMALIES.md.
    #[arg(long, value_parser = parse_anomaly_policy)]
    pub anomaly_policy: Option<AnomalyPolicy>,
    #[arg(long)]
    pub json: bool,
}

fn parse_anomaly_policy(text: &str) -> Result<AnomalyPolicy, String> {
    serde_json::from_str(text).map_err(|e| format!("not an anomaly policy: {e}"))
}

fn parse_clear(text: &str) -> Result<ClearableField, String> {
    ClearableField::parse(text).ok_or_else(|| {
        let names: Vec<&str> = ClearableField::ALL.iter().map(|f| f.as_str()).collect();
        format!("{text:?} cannot be cleared; one of {}", names.join(", "))
    })
}

fn parse_meta(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not key=value"))
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long = "env")]
    pub environment: String,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long = "env")]
    pub environment: Option<String>,
    #[arg(long)]
    pub owner: Option<String>,
    /// active, suspended, revoked, expired or retired.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<KeyStatus>,
    #[arg(long)]
    pub project: Option<String>,
    #[arg(long)]
    pub scope: Option<String>,
    /// Show the keys as they were at this time.
    #[arg(long)]
    pub as_of: Option<LedgerTime>,
    #[arg(long)]
    pub json: bool,
}

fn parse_status(text: &str) -> Result<KeyStatus, String> {
    KeyStatus::parse(text).ok_or_else(|| {
        format!("{text:?} is not one of active, suspended, revoked, expired, retired")
    })
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    pub key_id: Uuid,
    #[arg(long)]
    pub as_of: Option<LedgerTime>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub key_id: Uuid,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Reset an optional field to "not set" (repeat for several), e.g. --clear expires_at.
    #[arg(long = "clear", value_parser = parse_clear)]
    pub clear: Vec<ClearableField>,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    pub key_id: Uuid,
    /// How long the old key keeps working, e.g. 0, 90s, 1h, 7d.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub overlap: u32,
    #[arg(long)]
    pub json: bool,
}

fn parse_duration(text: &str) -> Result<u32, String> {
    if let Ok(secs) = text.parse::<u32>() {
        return Ok(secs);
    }
    let duration = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    u32::try_from(duration.as_secs()).map_err(|_| format!("{text:?} is too long"))
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    pub key_id: Uuid,
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[arg(required_unless_present = "owner", conflicts_with = "owner")]
    pub key_id: Option<Uuid>,
    /// Revoke every active or suspended key of this owner (offboarding), one event each.
    #[arg(long)]
    pub owner: Option<String>,
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SuspendArgs {
    pub key_id: Uuid,
    /// Suspend for this long (e.g. 30m, 2h).
    #[arg(long = "for", value_parser = parse_duration, conflicts_with = "until")]
    pub for_secs: Option<u32>,
    #[arg(long)]
    pub until: Option<LedgerTime>,
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The secret, or `-` to read it from standard input (keeps it out of the process list).
    pub secret: String,
    #[arg(long)]
    pub ip: Option<IpAddr>,
    #[arg(long)]
    pub scope: Option<String>,
    /// The project the request is for (a key bound to projects works only for those).
    #[arg(long)]
    pub project: Option<String>,
    #[arg(long)]
    pub user_agent: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    /// The leaked secret or its SHA-256 in hex, or `-` to read it from standard input.
    pub secret_or_hash: String,
    /// Revoke the key in the same step.
    #[arg(long)]
    pub revoke: bool,
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    pub key_id: Uuid,
    #[arg(long)]
    pub json: bool,
}

fn read_secret_arg(text: &str) -> Result<String, CliError> {
    if text != "-" {
        return Ok(text.to_string());
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| CliError::new(EXIT_FAILED, format!("reading stdin: {e}")))?;
    Ok(input.trim().to_string())
}

fn operator() -> Requester {
    Requester::new(Actor::local_operator(), None)
}

fn open(cli: &Cli) -> Result<Ledger, CliError> {
    Ok(cli.data_dir().open(&cli.key_source())?)
}

fn policy(args: &ConfigArgs) -> Option<RotationPolicy> {
    args.rotate_every_days.map(|every_days| RotationPolicy {
        every_days,
        notify_days_before: args.notify_days_before.min(every_days.saturating_sub(1)),
    })
}

pub fn run(cli: &Cli, command: &KeyCommand) -> CliResult {
    let now = LedgerTime::now();
    match command {
        KeyCommand::Create(args) => {
            let c = &args.config;
            let config = KeyConfig {
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
            };
            let ledger = open(cli)?;
            let issued = ledger.submit_blocking(CreateKey::new(operator(), &config)?)?;
            print_issued(&issued, c.json, now)
        }
        KeyCommand::List(args) => {
            let filter = KeyFilter {
                environment: args.environment.clone(),
                owner: args.owner.clone(),
                status: args.status,
                project: args.project.clone(),
                scope: args.scope.clone(),
            };
            let (state, at) = state_at(cli, args.as_of)?;
            let keys = list_keys(&state, &filter, at);
            if args.json {
                return print_json(&keys.iter().map(|k| key_json(k, at)).collect::<Vec<_>>());
            }
            print_key_table(&keys, at);
            Ok(())
        }
        KeyCommand::Show(args) => {
            let (state, at) = state_at(cli, args.as_of)?;
            let key = state.get(&args.key_id).ok_or_else(|| {
                CliError::new(EXIT_FAILED, format!("key {} not found", args.key_id))
            })?;
            if args.json {
                return print_json(&key_json(key, at));
            }
            print_key(key, at);
            Ok(())
        }
        KeyCommand::Update(args) => {
            let c = &args.config;
            let patch = KeyPatch {
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
            };
            let ledger = open(cli)?;
            let key = ledger.submit_blocking(UpdateKey::new(operator(), args.key_id, &patch)?)?;
            show(&key, c.json, now)
        }
        KeyCommand::Rotate(args) => {
            let ledger = open(cli)?;
            let issued = ledger.submit_blocking(RotateKey {
                who: operator(),
                key_id: args.key_id,
                overlap_seconds: args.overlap,
            })?;
            if !args.json {
                println!(
                    "Rotated {} → {}; the old key works for {} more second(s).\n",
                    args.key_id, issued.key.key_id, args.overlap
                );
            }
            print_issued(&issued, args.json, now)
        }
        KeyCommand::Revoke(args) => revoke(cli, args, now),
        KeyCommand::Suspend(args) => {
            let until = args
                .until
                .or_else(|| args.for_secs.map(|s| now.plus_secs(i64::from(s))));
            let key = open(cli)?.submit_blocking(SuspendKey {
                who: operator(),
                key_id: args.key_id,
                until,
                reason: args.reason.clone(),
            })?;
            show(&key, args.json, now)
        }
        KeyCommand::Reactivate(args) => {
            let key = open(cli)?.submit_blocking(ReactivateKey {
                who: operator(),
                key_id: args.key_id,
                reason: args.reason.clone(),
            })?;
            show(&key, args.json, now)
        }
        KeyCommand::Verify(args) => {
            let secret = read_secret_arg(&args.secret)?;
            let command = VerifyKey::new(
                &secret,
                args.ip,
                args.scope.clone(),
                args.user_agent.clone(),
            )
            .by(Actor::local_operator(), None)
            .for_project(args.project.clone());
            let answer = open(cli)?.submit_blocking(command)?;
            print_verify(&answer, args.json)?;
            if answer.valid {
                Ok(())
            } else {
                Err(CliError::new(
                    EXIT_DENIED,
                    format!("denied: {}", answer.code.as_str()),
                ))
            }
        }
        KeyCommand::Find(args) => find(cli, args, now),
    }
}

fn revoke(cli: &Cli, args: &RevokeArgs, now: LedgerTime) -> CliResult {
    let ledger = open(cli)?;
    let Some(owner) = &args.owner else {
        let key_id = args
            .key_id
            .ok_or_else(|| CliError::new(2, "give a key id or --owner"))?;
        let key = ledger.submit_blocking(RevokeKey {
            who: operator(),
            key_id,
            reason: args.reason.clone(),
        })?;
        return show(&key, args.json, now);
    };
    let revoked = ledger.submit_blocking(RevokeOwnerKeys {
        who: operator(),
        owner: owner.clone(),
        reason: args.reason.clone(),
    })?;
    if args.json {
        return print_json(&revoked.iter().map(|k| key_json(k, now)).collect::<Vec<_>>());
    }
    if revoked.is_empty() {
        println!("{owner} has no active or suspended keys; nothing was revoked.");
        return Ok(());
    }
    println!("Revoked {} key(s) of {owner}:", revoked.len());
    print_key_table(&revoked, now);
    Ok(())
}

fn show(key: &crate::projection::KeyRecord, json: bool, now: LedgerTime) -> CliResult {
    if json {
        return print_json(&key_json(key, now));
    }
    print_key(key, now);
    Ok(())
}

/// The key state now (from a full replay of the log) or as of a past time (snapshot + replay).
fn state_at(
    cli: &Cli,
    as_of: Option<LedgerTime>,
) -> Result<(crate::projection::KeyState, LedgerTime), CliError> {
    let store = cli.data_dir().open_store()?;
    let durable = store
        .head()
        .map_err(crate::LedgerError::from)?
        .map_or(0, |h| h.seq);
    let at = as_of.unwrap_or_else(LedgerTime::now);
    let (state, _) = keys_as_of(store.as_ref(), at, durable)?;
    Ok((state, at))
}

fn find(cli: &Cli, args: &FindArgs, now: LedgerTime) -> CliResult {
    let hash = hash_of_leak(&read_secret_arg(&args.secret_or_hash)?)?;
    let ledger = open(cli)?;
    let key_id = ledger
        .projections()
        .keys
        .by_secret_hash(&hash)
        .map(|k| k.key_id)
        .ok_or_else(|| CliError::new(EXIT_FAILED, "no key has this secret"))?;
    let key = if args.revoke {
        let reason = args
            .reason
            .clone()
            .or_else(|| Some("leaked secret found".into()));
        Some(ledger.submit_blocking(RevokeKey {
            who: operator(),
            key_id,
            reason,
        })?)
    } else {
        None
    };
    let key = key
        .or_else(|| ledger.projections().keys.get(&key_id).cloned())
        .ok_or_else(|| CliError::new(EXIT_FAILED, "key vanished"))?;
    let history = key_history(ledger.store().as_ref(), key_id, ledger.durable_seq())?;
    if args.json {
        let bodies: Vec<_> = history.iter().filter_map(|e| e.body_value().ok()).collect();
        return print_json(
            &serde_json::json!({ "key": key_json(&key, now), "revoked": args.revoke, "history": bodies }),
        );
    }
    print_key(&key, now);
    if args.revoke {
        println!("\nRevoked: the next verification of this secret is refused.");
    }
    println!("\nHistory:");
    print_history(&history, false)
}

pub fn history(cli: &Cli, args: &HistoryArgs) -> CliResult {
    let store = cli.data_dir().open_store()?;
    let durable = store
        .head()
        .map_err(crate::LedgerError::from)?
        .map_or(0, |h| h.seq);
    let events = key_history(store.as_ref(), args.key_id, durable)?;
    if events.is_empty() {
        return Err(CliError::new(
            EXIT_FAILED,
            format!("no events for key {}", args.key_id),
        ));
    }
    print_history(&events, args.json)
}
