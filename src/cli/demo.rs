//! `keyledger demo`: a guided tour on a fresh ledger.

use super::{Cli, CliError, CliResult, EXIT_FAILED};
use crate::audit::{verify_log, VerifyRange};
use crate::datadir::DataDir;
use crate::event::{Actor, EventData, KeyUsed, VerifyCode};
use crate::ledger::AppendEvents;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct DemoArgs {}

pub fn run(cli: &Cli, _args: &DemoArgs) -> CliResult {
    let root: PathBuf = match &cli.data {
        Some(path) => path.clone(),
        None => tempfile::Builder::new()
            .prefix("keyledger-demo-")
            .tempdir()
            .map_err(|e| {
                CliError::new(EXIT_FAILED, format!("creating a temporary directory: {e}"))
            })?
            .keep(),
    };
    let dir = DataDir::new(&root);
    println!("== keyledger demo in {}", root.display());
    let (ledger, identity) = dir.init(None)?;
    println!(
        "1. initialized ledger {} (signer {})",
        identity.ledger_id, identity.signer_id
    );
    let started = Instant::now();
    let batch: Vec<EventData> = (0..10_000)
        .map(|i| {
            EventData::KeyUsed(KeyUsed {
                key_id: None,
                prefix: None,
                outcome: VerifyCode::NotFound,
                ip: Some(format!("203.0.113.{}", i % 250)),
                user_agent: Some("demo-probe/1.0".into()),
                scope: None,
                overlap: false,
            })
        })
        .collect();
    ledger.submit_blocking(AppendEvents {
        actor: Actor::System,
        request_id: None,
        events: batch,
    })?;
    println!(
        "2. appended 10,000 signed, hash-chained events in {:.2?}",
        started.elapsed()
    );
    let started = Instant::now();
    let anchor = dir.anchor_public_key()?;
    let report = verify_log(
        ledger.store().as_ref(),
        anchor,
        VerifyRange::default(),
        None,
    )?;
    if !report.is_ok() {
        return Err(CliError::new(
            EXIT_FAILED,
            format!("demo ledger failed verification: {:?}", report.problems),
        ));
    }
    println!(
        "3. verified {} events and {} signatures in {:.2?}",
        report.events_checked,
        report.signatures_checked,
        started.elapsed()
    );
    println!("Next: keyledger --data {} audit verify", root.display());
    Ok(())
}
