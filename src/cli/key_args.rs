//! The arguments of `keyledger key …` and `keyledger history`, and the parsers for their values.

use crate::event::{AnomalyPolicy, ClearableField};
use crate::projection::KeyStatus;
use crate::time::LedgerTime;
use clap::{Args, Subcommand};
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
    /// Free text shown with the key (at most 1,024 characters).
    #[arg(long)]
    pub description: Option<String>,
    /// Who is responsible for the key: a team or person (required on create).
    #[arg(long)]
    pub owner: Option<String>,
    /// A scope the key grants (repeat for several).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Bind the key to a project (repeat for several): it then verifies only for requests naming one.
    #[arg(long = "project")]
    pub projects: Vec<String>,
    /// Metadata as key=value (repeat for several).
    #[arg(long = "meta", value_parser = parse_meta)]
    pub metadata: Vec<(String, String)>,
    /// Allowed client network as a CIDR or address (repeat for several).
    #[arg(long = "allow-ip")]
    pub ip_allowlist: Vec<String>,
    /// Allowed uses per minute (1-1,000,000); unset means no limit.
    #[arg(long, visible_alias = "rate-limit-per-minute")]
    pub rate_limit: Option<u32>,
    /// Rotation period in days (1-3650); reports flag the key when it is due.
    #[arg(long)]
    pub rotate_every_days: Option<u32>,
    /// Warn this many days before a rotation is due (default 14, shortened for shorter periods).
    #[arg(long)]
    pub notify_days_before: Option<u32>,
    /// Expiry time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, allow_hyphen_values = true)]
    pub expires: Option<LedgerTime>,
    /// This key's anomaly policy as JSON, e.g. '{"suspend_on":[]}' (alert only) or
    /// '{"distinct_ips_max":20,"disabled_rules":["unusual_hour"]}'; see docs/ANOMALIES.md.
    #[arg(long, value_parser = parse_anomaly_policy)]
    pub anomaly_policy: Option<AnomalyPolicy>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The rotation notice when `--notify-days-before` is not given.
pub const DEFAULT_NOTIFY_DAYS: u32 = 14;

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
    /// The key's name, unique among the live keys of its environment (1-128 characters).
    #[arg(long)]
    pub name: String,
    /// Environment (e.g. production, staging): part of the secret's prefix; letters, digits, _ and -.
    #[arg(long = "env", visible_alias = "environment")]
    pub environment: String,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only keys of this environment.
    #[arg(long = "env", visible_alias = "environment")]
    pub environment: Option<String>,
    /// Who is responsible for the key: a team or person (required on create).
    #[arg(long)]
    pub owner: Option<String>,
    /// active, suspended, revoked, expired or retired.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<KeyStatus>,
    /// Only keys bound to this project.
    #[arg(long)]
    pub project: Option<String>,
    /// The scope the request needs (e.g. payments:read).
    #[arg(long)]
    pub scope: Option<String>,
    /// Show the keys as they were at this time.
    #[arg(long, allow_hyphen_values = true)]
    pub as_of: Option<LedgerTime>,
    /// At most this many keys, the oldest first (all of them when not given).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Print JSON instead of text.
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
    /// The key's id (a UUID, as `key list` shows).
    pub key_id: Uuid,
    /// Show the state at this time (RFC 3339, a date, or relative like -1h).
    #[arg(long, allow_hyphen_values = true)]
    pub as_of: Option<LedgerTime>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The key's id (a UUID, as `key list` shows).
    pub key_id: Uuid,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Reset an optional field to "not set" (repeat for several), e.g. --clear expires_at.
    #[arg(long = "clear", value_parser = parse_clear)]
    pub clear: Vec<ClearableField>,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The key's id (a UUID, as `key list` shows).
    pub key_id: Uuid,
    /// How long the old key keeps working, e.g. 0, 90s, 1h, 7d.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub overlap: u32,
    /// Print JSON instead of text.
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
    /// The key's id (a UUID, as `key list` shows).
    pub key_id: Uuid,
    /// Why, for the record (at most 512 characters).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The key's id (a UUID, as `key list` shows).
    #[arg(required_unless_present = "owner", conflicts_with = "owner")]
    pub key_id: Option<Uuid>,
    /// Revoke every active or suspended key of this owner (offboarding), one event each.
    #[arg(long)]
    pub owner: Option<String>,
    /// Why, for the record (at most 512 characters).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SuspendArgs {
    /// The key's id (a UUID, as `key list` shows).
    pub key_id: Uuid,
    /// Suspend for this long (e.g. 30m, 2h).
    #[arg(long = "for", value_parser = parse_duration, conflicts_with = "until")]
    pub for_secs: Option<u32>,
    /// Suspend until this time (RFC 3339, a date, or relative like +2h).
    #[arg(long, allow_hyphen_values = true)]
    pub until: Option<LedgerTime>,
    /// Why, for the record (at most 512 characters).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl SuspendArgs {
    /// The end of the suspension: `--until`, or `--for` from `now`; none means until reactivated.
    pub fn end(&self, now: LedgerTime) -> Option<LedgerTime> {
        self.until
            .or_else(|| self.for_secs.map(|s| now.plus_secs(i64::from(s))))
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The secret, or `-` to read it from standard input (keeps it out of the process list).
    pub secret: String,
    /// The client's IP address, checked against the key's allowlist.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// The scope the request needs (e.g. payments:read).
    #[arg(long)]
    pub scope: Option<String>,
    /// The project the request is for (a key bound to projects works only for those).
    #[arg(long)]
    pub project: Option<String>,
    /// The client's user agent, for the record (at most 512 bytes).
    #[arg(long)]
    pub user_agent: Option<String>,
    /// Print JSON instead of text.
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
    /// Why, for the record (at most 512 characters).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The key's id (a UUID, as `key list` shows).
    pub key_id: Uuid,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
