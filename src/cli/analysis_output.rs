//! How usage, anomalies and reports print as aligned tables with headers, from the same values whether they were
//! computed here or fetched from a server.

use super::key_output::{last_used_column, print_json};
use super::CliResult;
use crate::projection::anomaly::unit_of;
use crate::projection::listing::AnomalyListing;
use crate::projection::reports::ReportRow;
use crate::projection::usage::UsageReport;

pub fn print_usage(report: &UsageReport, json: bool) -> CliResult {
    if json {
        return print_json(report);
    }
    let label = |row: &crate::projection::usage::UsageRow| match &row.name {
        Some(name) => format!("{name} ({})", row.group),
        None => row.group.clone(),
    };
    let width = report
        .rows
        .iter()
        .map(|row| label(row).chars().count())
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
            label(row),
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

pub fn print_anomalies(found: &[AnomalyListing], json: bool) -> CliResult {
    if json {
        return print_json(found);
    }
    for listed in found {
        let a = &listed.anomaly;
        let f = &a.finding;
        let subject = match (f.key_id, &listed.key_name) {
            (None, _) => "(no key)".to_string(),
            (Some(k), Some(name)) => format!("{name} ({k})"),
            (Some(k), None) => k.to_string(),
        };
        let action = f.action.clone().unwrap_or_default();
        println!(
            "{:<6} {:<13} {subject}  observed {} {} (threshold {}) in {}..{}  evidence {} seqs {action}",
            f.severity,
            f.rule,
            f.observed,
            unit_of(&f.rule),
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

pub fn print_report(rows: &[ReportRow], json: bool) -> CliResult {
    if json {
        return print_json(rows);
    }
    let width = |column: &dyn Fn(&ReportRow) -> String, header: &str| {
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
    for r in rows {
        println!(
            "{:<36}  {:<wn$}  {:<wo$}  {:<we$}  {:<9}  {:<20}  {}",
            r.key_id,
            r.name,
            r.owner,
            r.environment,
            r.status.as_str(),
            last_used_column(r.last_used_at),
            r.finding
        );
        for (ip, n) in &r.overlap_ips {
            println!("      {ip:<40} {n} uses of the old key");
        }
    }
    println!("{} key(s)", rows.len());
    Ok(())
}
