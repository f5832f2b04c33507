//! How usage, anomalies and reports print as aligned tables with headers, from the same values whether they were
//! computed here or fetched from a server.

use super::key_output::{last_used_column, print_json};
use super::table::{plain_table, print_table, table_lines};
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
    let group = report.group_by.to_uppercase();
    let mut table = plain_table(
        &[
            &group,
            "TOTAL",
            "ALLOWED",
            "DENIED",
            "IPS",
            "DENIED BY CODE",
        ],
        &[1, 2, 3, 4],
    );
    for row in &report.rows {
        let denied: u64 = row.denied.values().sum();
        let codes: Vec<String> = row
            .denied
            .iter()
            .map(|(c, n)| format!("{} {n}", c.as_str()))
            .collect();
        table.add_row([
            label(row),
            row.total.to_string(),
            row.allowed.to_string(),
            denied.to_string(),
            row.distinct_ips.to_string(),
            codes.join(", "),
        ]);
    }
    print_table(&table);
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
    if !rows.is_empty() {
        let mut table = plain_table(
            &[
                "KEY ID",
                "NAME",
                "OWNER",
                "ENVIRONMENT",
                "STATUS",
                "LAST USED",
                "FINDING",
            ],
            &[],
        );
        for r in rows {
            table.add_row([
                r.key_id.to_string(),
                r.name.clone(),
                r.owner.clone(),
                r.environment.clone(),
                r.status.as_str().to_string(),
                last_used_column(r.last_used_at),
                r.finding.clone(),
            ]);
        }
        // The header, then each row followed by the addresses that still used its old key (overlap report).
        let mut lines = table_lines(&table);
        if let Some(header) = lines.next() {
            println!("{header}");
        }
        for (r, line) in rows.iter().zip(lines) {
            println!("{line}");
            for (ip, n) in &r.overlap_ips {
                println!("      {ip:<40} {n} uses of the old key");
            }
        }
    }
    println!("{} key(s)", rows.len());
    Ok(())
}
