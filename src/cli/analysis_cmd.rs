//! `keyledger usage`, `anomalies`, `report` and `replay`: views derived from the log by replaying it.

use super::analysis_output::{print_anomalies, print_report, print_usage};
use super::key_output::print_json;
use super::progress::events_bar;
use super::remote::Remote;
use super::window_args::KeyWindowArgs;
use super::{Cli, CliError, CliResult};
use crate::ledger::lifecycle_as_of;
use crate::ledger::{replay_log_with, ReplayOutcome};
use crate::projection::listing::{list_anomalies, named, AnomalyListing};
use crate::projection::reports::{credentials_csv, report, ReportKind, ReportRow};
use crate::projection::usage::{usage_report, GroupBy, UsageReport};
use crate::time::LedgerTime;
use crate::LedgerError;
use clap::Args;

#[derive(Args, Debug)]
pub struct UsageArgs {
    #[command(flatten)]
    pub window: KeyWindowArgs,
    /// What one row counts: uses per key, client IP, user agent, scope or owner.
    #[arg(long, value_enum, default_value = "key")]
    pub group_by: GroupBy,
    /// Show the busiest N groups (1 to 1000, as the API allows).
    #[arg(long, default_value_t = 20, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub top: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AnomaliesArgs {
    #[command(flatten)]
    pub window: KeyWindowArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// stale, rotation, expiring, overlap, owner or credentials.
    pub name: String,
    /// The owner, for `owner`.
    pub owner: Option<String>,
    /// Days for `stale` (default 30) and `expiring` (default 14).
    #[arg(long)]
    pub days: Option<i64>,
    /// Evaluate as of this time instead of now.
    #[arg(long, allow_hyphen_values = true)]
    pub now: Option<LedgerTime>,
    /// CSV output (credentials report).
    #[arg(long)]
    pub csv: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Rebuild the projections as they were at this time.
    #[arg(long, allow_hyphen_values = true)]
    pub as_of: Option<LedgerTime>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn replay(cli: &Cli, as_of: Option<LedgerTime>) -> Result<ReplayOutcome, CliError> {
    let dir = cli.data_dir();
    let config = dir.config()?;
    let store = dir.open_store()?;
    let head = store
        .head()
        .map_err(LedgerError::from)?
        .map_or(0, |h| h.seq);
    let bar = events_bar(head, "replaying");
    let update = |seq: u64| bar.set_position(seq);
    let outcome = replay_log_with(store.as_ref(), as_of, Some(&update), config.rules())?;
    bar.finish_and_clear();
    Ok(outcome)
}

pub fn usage(cli: &Cli, args: &UsageArgs) -> CliResult {
    if let Some(remote) = Remote::from_cli(cli)? {
        let mut query = args.window.query();
        query.push(("group_by", args.group_by.as_str().to_string()));
        query.push(("top", args.top.to_string()));
        let report: UsageReport = remote.get("/v1/usage", &query)?;
        return print_usage(&report, args.json);
    }
    let store = cli.data_dir().open_store()?;
    let durable = store
        .head()
        .map_err(LedgerError::from)?
        .map_or(0, |h| h.seq);
    let (keys, _) = lifecycle_as_of(store.as_ref(), LedgerTime::MAX.plus_micros(-1), durable)?;
    let filter = args.window.filter();
    let report = usage_report(
        store.as_ref(),
        &keys,
        &filter,
        durable,
        args.group_by,
        args.top,
    )?;
    print_usage(&report, args.json)
}

pub fn anomalies(cli: &Cli, args: &AnomaliesArgs) -> CliResult {
    if let Some(remote) = Remote::from_cli(cli)? {
        #[derive(serde::Deserialize)]
        struct Answer {
            anomalies: Vec<AnomalyListing>,
        }
        let answer: Answer = remote.get("/v1/anomalies", &args.window.query())?;
        return print_anomalies(&answer.anomalies, args.json);
    }
    let store = cli.data_dir().open_store()?;
    let durable = store
        .head()
        .map_err(LedgerError::from)?
        .map_or(0, |h| h.seq);
    let found = list_anomalies(
        store.as_ref(),
        args.window.key,
        args.window.time.from,
        args.window.time.to,
        durable,
    )?;
    let (keys, _) = lifecycle_as_of(store.as_ref(), LedgerTime::MAX.plus_micros(-1), durable)?;
    print_anomalies(&named(found, &keys), args.json)
}

pub fn run_report(cli: &Cli, args: &ReportArgs) -> CliResult {
    let kind = ReportKind::parse(&args.name, args.days, args.owner.as_deref())
        .ok_or_else(|| CliError::new(2, format!("unknown report {:?} (stale, rotation, expiring, overlap, owner OWNER, credentials)", args.name)))?;
    if let Some(remote) = Remote::from_cli(cli)? {
        let mut query = Vec::new();
        if let Some(days) = args.days {
            query.push(("days", days.to_string()));
        }
        if let Some(owner) = &args.owner {
            query.push(("owner", owner.clone()));
        }
        if let Some(now) = args.now {
            query.push(("now", now.to_string()));
        }
        let path = format!("/v1/reports/{}", args.name);
        if args.csv {
            query.push(("format", "csv".to_string()));
            let text = remote
                .get_text(&path, &query)?
                .text()
                .map_err(|e| CliError::new(super::EXIT_FAILED, e.to_string()))?;
            print!("{text}");
            return Ok(());
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            rows: Vec<ReportRow>,
        }
        let answer: Answer = remote.get(&path, &query)?;
        return print_report(&answer.rows, args.json);
    }
    let outcome = replay(cli, args.now)?;
    let now = args.now.unwrap_or_else(LedgerTime::now);
    let rows = report(&outcome.projections, &kind, now);
    if args.csv {
        print!("{}", credentials_csv(&rows));
        return Ok(());
    }
    print_report(&rows, args.json)
}

pub fn run_replay(cli: &Cli, args: &ReplayArgs) -> CliResult {
    let started = std::time::Instant::now();
    let outcome = replay(cli, args.as_of)?;
    let p = &outcome.projections;
    let summary = serde_json::json!({
        "events": outcome.events,
        "last_seq": outcome.head.map(|h| h.seq),
        "keys": p.keys.len(),
        "unmatched_attempts": p.usage.unmatched,
        "anomalies": p.anomalies.found(),
        "seconds": started.elapsed().as_secs_f64(),
    });
    if args.json {
        return print_json(&summary);
    }
    println!(
        "replayed {} events in {:.2?}: {} keys, {} anomalies, {} attempts with no matching key",
        outcome.events,
        started.elapsed(),
        p.keys.len(),
        p.anomalies.found(),
        p.usage.unmatched
    );
    Ok(())
}
