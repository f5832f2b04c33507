//! `keyledger usage`, `anomalies`, `report` and `replay`: views derived from the log by replaying it.

use super::key_output::print_json;
use super::progress::events_bar;
use super::{Cli, CliError, CliResult};
use crate::ledger::{replay_log_with, ReplayOutcome};
use crate::projection::lifecycle_as_of;
use crate::projection::reports::{credentials_csv, report, ReportKind};
use crate::projection::usage::{usage_report, GroupBy};
use crate::query::EventFilter;
use crate::time::LedgerTime;
use crate::LedgerError;
use clap::Args;
use uuid::Uuid;

#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Start of the window, inclusive (RFC 3339, a date, or relative like -1h).
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<LedgerTime>,
    /// End of the window, exclusive (RFC 3339, a date, now, or relative like -10m).
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<LedgerTime>,
    /// Only events concerning this key (its id).
    #[arg(long)]
    pub key: Option<Uuid>,
    /// What one row counts: uses per key, client IP, user agent, scope or owner.
    #[arg(long, value_enum, default_value = "key")]
    pub group_by: GroupBy,
    /// Show the busiest N groups.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AnomaliesArgs {
    /// Start of the window, inclusive (RFC 3339, a date, or relative like -1h).
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<LedgerTime>,
    /// End of the window, exclusive (RFC 3339, a date, now, or relative like -10m).
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<LedgerTime>,
    /// Only events concerning this key (its id).
    #[arg(long)]
    pub key: Option<Uuid>,
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
    let outcome = replay_log_with(store.as_ref(), as_of, Some(&update), config)?;
    bar.finish_and_clear();
    Ok(outcome)
}

pub fn usage(cli: &Cli, args: &UsageArgs) -> CliResult {
    let store = cli.data_dir().open_store()?;
    let durable = store
        .head()
        .map_err(LedgerError::from)?
        .map_or(0, |h| h.seq);
    let (keys, _) = lifecycle_as_of(store.as_ref(), LedgerTime::MAX.plus_micros(-1), durable)?;
    let filter = EventFilter {
        from: args.from,
        to: args.to,
        key_id: args.key,
        after_seq: None,
    };
    let report = usage_report(
        store.as_ref(),
        &keys,
        &filter,
        durable,
        args.group_by,
        args.top,
    )?;
    if args.json {
        return print_json(&report);
    }
    let label = |group: &str| match (report.group_by.as_str(), group.parse::<uuid::Uuid>()) {
        ("key", Ok(id)) => keys.get(&id).map_or_else(
            || group.to_string(),
            |k| format!("{} ({id})", k.config.name),
        ),
        _ => group.to_string(),
    };
    let width = report
        .rows
        .iter()
        .map(|row| label(&row.group).chars().count())
        .max()
        .unwrap_or(0)
        .max(report.group_by.len());
    println!(
        "{:<width$} {:>9} {:>9} {:>7} {:>5}  DENIED BY CODE",
        report.group_by.to_uppercase(),
        "TOTAL",
        "ALLOWED",
        "DENIED",
        "IPS"
    );
    for row in &report.rows {
        let denied: u64 = row.denied.values().sum();
        let codes: Vec<String> = row
            .denied
            .iter()
            .map(|(c, n)| format!("{} {n}", c.as_str()))
            .collect();
        println!(
            "{:<width$} {:>9} {:>9} {:>7} {:>5}  {}",
            label(&row.group),
            row.total,
            row.allowed,
            denied,
            row.distinct_ips,
            codes.join(", ")
        );
    }
    println!("{} uses scanned", report.events_scanned);
    Ok(())
}

pub fn anomalies(cli: &Cli, args: &AnomaliesArgs) -> CliResult {
    let outcome = replay(cli, None)?;
    let found: Vec<_> = outcome
        .projections
        .anomalies
        .all()
        .iter()
        .filter(|a| args.key.is_none_or(|k| a.finding.key_id == Some(k)))
        .filter(|a| args.from.is_none_or(|t| a.finding.window_end >= t))
        .filter(|a| args.to.is_none_or(|t| a.finding.window_end < t))
        .cloned()
        .collect();
    if args.json {
        return print_json(&found);
    }
    for a in &found {
        let f = &a.finding;
        let subject = f.key_id.map_or_else(
            || "(no key)".to_string(),
            |k| match outcome.projections.keys.get(&k) {
                Some(key) => format!("{} ({k})", key.config.name),
                None => k.to_string(),
            },
        );
        let unit = crate::projection::anomaly::unit_of(&f.rule);
        let action = f
            .action
            .clone()
            .or_else(|| a.recorded.then(|| "recorded".into()))
            .unwrap_or_default();
        println!(
            "{:<6} {:<13} {subject}  observed {} {unit} (threshold {}) in {}..{}  evidence {} seqs {action}",
            f.severity,
            f.rule,
            f.observed,
            f.threshold,
            f.window_start,
            f.window_end,
            f.evidence.len()
        );
    }
    println!(
        "{} anomal{}",
        found.len(),
        if found.len() == 1 { "y" } else { "ies" }
    );
    Ok(())
}

pub fn run_report(cli: &Cli, args: &ReportArgs) -> CliResult {
    let kind = ReportKind::parse(&args.name, args.days, args.owner.as_deref())
        .ok_or_else(|| CliError::new(2, format!("unknown report {:?} (stale, rotation, expiring, overlap, owner OWNER, credentials)", args.name)))?;
    let outcome = replay(cli, args.now)?;
    let now = args.now.unwrap_or_else(LedgerTime::now);
    let rows = report(&outcome.projections, &kind, now);
    if args.csv {
        print!("{}", credentials_csv(&rows));
        return Ok(());
    }
    if args.json {
        return print_json(&rows);
    }
    let last_used = |r: &crate::projection::reports::ReportRow| {
        r.last_used_at.map_or_else(
            || "never".to_string(),
            |t| t.to_datetime().format("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
    };
    let width = |column: &dyn Fn(&crate::projection::reports::ReportRow) -> String,
                 header: &str| {
        rows.iter()
            .map(|r| column(r).chars().count())
            .max()
            .unwrap_or(0)
            .max(header.len())
    };
    let (wn, wo, we) = (
        width(&|r| r.name.clone(), "NAME"),
        width(&|r| r.owner.clone(), "OWNER"),
        width(&|r| r.environment.clone(), "ENVIRONMENT"),
    );
    if !rows.is_empty() {
        println!(
            "{:<36}  {:<wn$}  {:<wo$}  {:<we$}  {:<9}  {:<20}  FINDING",
            "KEY ID", "NAME", "OWNER", "ENVIRONMENT", "STATUS", "LAST USED"
        );
    }
    for r in &rows {
        println!(
            "{:<36}  {:<wn$}  {:<wo$}  {:<we$}  {:<9}  {:<20}  {}",
            r.key_id,
            r.name,
            r.owner,
            r.environment,
            r.status.as_str(),
            last_used(r),
            r.finding
        );
        for (ip, n) in &r.overlap_ips {
            println!("      {ip:<40} {n} uses of the old key");
        }
    }
    println!("{} key(s)", rows.len());
    Ok(())
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
        "anomalies": p.anomalies.all().len(),
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
        p.anomalies.all().len(),
        p.usage.unmatched
    );
    Ok(())
}
