//! `keyledger audit archive`: moves the oldest events into a verifiable export file (audit::archive).

use super::remote::local_only;
use super::{Cli, CliResult};
use crate::time::LedgerTime;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ArchiveArgs {
    /// Archive the events older than this (RFC 3339, a date, or relative like -90d); the cut falls on the last
    /// multiple of 1,024 events before it.
    #[arg(long, allow_hyphen_values = true)]
    pub before: LedgerTime,
    /// The archive file to write (must not exist): a verifiable export of the archived events.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn archive(cli: &Cli, args: &ArchiveArgs) -> CliResult {
    local_only(cli, "audit archive")?;
    let dir = cli.data_dir();
    let ledger = dir.open(&cli.key_source())?;
    let signer = dir.load_signer(&cli.key_source())?;
    let summary = crate::ledger::archive::archive(
        &ledger,
        &signer,
        args.before,
        &args.output,
        &dir.config()?.rules(),
    )?;
    if args.json {
        return super::key_output::print_json(&summary);
    }
    println!(
        "archived events {}..={} ({} events, {} bytes, sha256 {}) to {}; removed {} records from the live store",
        summary.from_seq,
        summary.to_seq,
        summary.events,
        summary.bytes,
        summary.file_sha256,
        args.output.display(),
        summary.records_removed
    );
    println!(
        "keep the file; check it offline with: keyledger audit verify-export {} --public-key {}",
        args.output.display(),
        dir.public_key_path().display()
    );
    Ok(())
}
