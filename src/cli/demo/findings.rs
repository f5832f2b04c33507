//! The demo's findings from the day of traffic, steps 5 and 6: the anomalies the rules raised (and the leaked key's
//! automatic suspension), and who still uses the rotated key inside its overlap window.

use super::{io, step, DemoSummary};
use crate::event::EventData;
use crate::ledger::Ledger;
use crate::query::{select_events, EventFilter};
use crate::time::LedgerTime;
use crate::LedgerError;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;
use uuid::Uuid;

/// Runs steps 5-6: `leaked_id_early` is the key the traffic leaked, `old_id` billing-api's rotated-away key.
pub(super) fn run(
    out: &mut dyn Write,
    ledger: &Ledger,
    leaked_id_early: Uuid,
    old_id: Uuid,
    summary: &mut DemoSummary,
) -> Result<(), LedgerError> {
    let started = step(
        out,
        5,
        "Anomalies the rules raised from that traffic (and the automatic suspension)",
    )
    .map_err(io)?;
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    let is_suspended = |ledger: &crate::ledger::Ledger| {
        ledger
            .projections()
            .keys
            .get(&leaked_id_early)
            .is_some_and(|k| {
                k.status_at(LedgerTime::now()) == crate::projection::KeyStatus::Suspended
            })
    };
    // The suspension is recorded by the writer right after the batch that tripped the rule.
    while Instant::now() < deadline && !is_suspended(ledger) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let names: BTreeMap<Uuid, String> = ledger
        .projections()
        .keys
        .iter()
        .map(|k| (k.key_id, k.config.name.clone()))
        .collect();
    // Every finding is recorded as `anomaly.detected` right after the batch that made it: wait for the last.
    let mut found = ledger.anomalies(None, None, None)?;
    while Instant::now() < deadline && (found.len() as u64) < ledger.projections().anomalies.found()
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
        found = ledger.anomalies(None, None, None)?;
    }
    for anomaly in found.iter().map(|listing| &listing.anomaly) {
        let f = &anomaly.finding;
        let subject = f
            .key_id
            .and_then(|k| names.get(&k).cloned())
            .unwrap_or_else(|| "(no key)".into());
        let action = match &f.action {
            Some(action) if action.starts_with("suspend_key") => "→ key suspended (on the record)",
            _ => "",
        };
        writeln!(
            out,
            "   {:<6} {:<13} {subject:<17} observed {} (threshold {}), {} evidence events {action}",
            f.severity,
            f.rule,
            f.observed,
            f.threshold,
            f.evidence.len()
        )
        .map_err(io)?;
    }
    let suspended = is_suspended(ledger);
    writeln!(
        out,
        "   ci-deploy suspended automatically: {suspended} ({:.0?})",
        started.elapsed()
    )
    .map_err(io)?;
    summary.anomaly_rules = found
        .iter()
        .map(|a| a.anomaly.finding.rule.clone())
        .collect();
    summary.leaked_auto_suspended = suspended;

    let started = step(
        out,
        6,
        "Stragglers: who still uses billing-api's old key inside its overlap window?",
    )
    .map_err(io)?;
    let mut straggler_ips: BTreeMap<String, usize> = BTreeMap::new();
    let filter = EventFilter {
        key_id: Some(old_id),
        ..Default::default()
    };
    for event in select_events(ledger.store().as_ref(), &filter, ledger.durable_seq())? {
        if let EventData::KeyUsed(used) = event?.data {
            if used.overlap {
                *straggler_ips
                    .entry(used.ip.unwrap_or_default())
                    .or_default() += 1;
            }
        }
    }
    for (ip, count) in &straggler_ips {
        writeln!(out, "   {ip:<16} {count} uses of the old key (switch it to the new one before the window ends)").map_err(io)?;
    }
    summary.stragglers = straggler_ips.values().sum();
    writeln!(out, "   ({:.0?})", started.elapsed()).map_err(io)?;

    Ok(())
}
