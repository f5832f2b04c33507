//! The demo's investigation, steps 8 to 10: the incident question about the leaked key's time window, that window
//! exported and verified offline with only the public key, and a verification of the whole chain.

use super::{io, step, DemoSummary};
use crate::audit::{verify_log, VerifyRange};
use crate::datadir::DataDir;
use crate::event::EventData;
use crate::ledger::Ledger;
use crate::query::{select_events, EventFilter};
use crate::time::LedgerTime;
use crate::LedgerError;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use uuid::Uuid;

/// Runs steps 8-10 about the leaked key `leaked_id` and the traffic window; returns the export's path.
pub(super) fn run(
    out: &mut dyn Write,
    ledger: &Ledger,
    dir: &DataDir,
    public_key: &str,
    (window_start, window_end): (LedgerTime, LedgerTime),
    leaked_id: Uuid,
    summary: &mut DemoSummary,
) -> Result<PathBuf, LedgerError> {
    let started = step(
        out,
        8,
        &format!(
            "Incident question: everything ci-deploy did between {window_start} and {window_end}"
        ),
    )
    .map_err(io)?;
    let filter = EventFilter {
        from: Some(window_start),
        to: Some(window_end.plus_micros(1)),
        key_id: Some(leaked_id),
        after_seq: None,
    };
    let mut ips = BTreeSet::new();
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut first_last: Option<(u64, u64)> = None;
    for event in select_events(ledger.store().as_ref(), &filter, ledger.durable_seq())? {
        let event = event?;
        if let EventData::KeyUsed(used) = &event.data {
            ips.insert(used.ip.clone().unwrap_or_default());
            *outcomes.entry(used.outcome.as_str()).or_default() += 1;
            first_last = Some(first_last.map_or((event.seq, event.seq), |(f, _)| (f, event.seq)));
        }
    }
    let (first, last) = first_last.unwrap_or_default();
    writeln!(
        out,
        "   {} uses from {} distinct IPs (seqs {first}..={last}): {:?} ({:.0?})",
        outcomes.values().sum::<usize>(),
        ips.len(),
        outcomes,
        started.elapsed()
    )
    .map_err(io)?;
    summary.leaked_distinct_ips = ips.len();

    let started = step(
        out,
        9,
        "Export the incident window and verify it offline, with only the public key",
    )
    .map_err(io)?;
    let export_path = dir.root().join("incident-export.jsonl");
    let (checkpoint, note) = ledger.checkpoint_blocking()?;
    let request = crate::audit::export::ExportRequest {
        from: Some(window_start),
        to: Some(window_end.plus_micros(1)),
        consistency_from: None,
        first_seq: None,
    };
    let file = std::fs::File::create(&export_path)
        .map_err(|e| LedgerError::io("creating the export", e))?;
    let mut writer = std::io::BufWriter::new(file);
    let exported = crate::audit::export::write_export(
        ledger.store().as_ref(),
        &request,
        &checkpoint,
        &note,
        public_key,
        &mut writer,
        None,
    )?;
    drop(writer);
    let export_time = started.elapsed();
    let reader = std::io::BufReader::new(
        std::fs::File::open(&export_path).map_err(|e| LedgerError::io("reading the export", e))?,
    );
    let checked =
        crate::audit::verify_export::verify_export(reader, dir.anchor_public_key()?, None);
    writeln!(
        out,
        "   wrote {} events ({:.1} MB) to {} in {export_time:.2?}",
        exported.events,
        exported.bytes as f64 / 1e6,
        export_path.display()
    )
    .map_err(io)?;
    match &checked {
        Ok(check) => writeln!(out, "   offline verification OK: events {}..={}, every link and signature, included in the signed checkpoint of {} events ({:.2?})", check.from_seq, check.to_seq, check.tree_size, started.elapsed()).map_err(io)?,
        Err(failure) => writeln!(out, "   offline verification FAILED: {failure}").map_err(io)?,
    }
    summary.export_verified = checked.is_ok();

    let started = step(
        out,
        10,
        "Verify the whole chain: every hash, every signature (batched, both cores), every index",
    )
    .map_err(io)?;
    let report = verify_log(
        ledger.store().as_ref(),
        dir.anchor_public_key()?,
        VerifyRange::default(),
        None,
    )?;
    summary.chain_verified = report.is_ok();
    summary.events = report.events_checked;
    let verdict = if report.is_ok() { "OK" } else { "FAILED" };
    writeln!(
        out,
        "   {verdict}: {} events, {} signatures, {} index entries ({:.2?})",
        report.events_checked,
        report.signatures_checked,
        report.index_entries_checked,
        started.elapsed()
    )
    .map_err(io)?;

    Ok(export_path)
}
