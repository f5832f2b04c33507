//! `keyledger store copy` (and `migrate`, in store_migrate.rs): moves a ledger's log between the embedded store and PostgreSQL (store::copy), then
//! verifies the copy with the ledger's public key.

use super::remote::local_only;
use super::store_report::first_problem;
use super::{Cli, CliError, CliResult, EXIT_FAILED, EXIT_VERIFY_FAILED};
use crate::audit::{verify_log, VerifyRange};
use crate::datadir::DataDir;
use crate::store::copy::copy_log;
use crate::store::{LogStore, PgStore, SledStore};
use crate::LedgerError;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy the ledger's log into an empty store: a PostgreSQL database (postgres://…) or a new embedded log
    /// directory; the chain is checked as it is read and the copy verified with signing.pub.
    Copy(CopyArgs),
    /// Rewrite a log written by keyledger before blocks (one sled item per event, which opens read-only) into
    /// the block layout; verified before the old layout is removed, and started again if killed.
    Migrate,
    /// Copy every intact event of a damaged ledger (from the first up to the first damage) into a new ledger,
    /// verify it, and report where it stopped and which stored checkpoint it still matches.
    Salvage(super::store_salvage::SalvageArgs),
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// The data directory whose log to copy (default: --data).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Where to: postgres://user@host/db (an empty database; password from $KEYLEDGER_PG_PASSWORD), or the
    /// path of a new embedded log directory.
    #[arg(long, value_name = "URL_OR_DIR")]
    pub to: String,
}

pub fn run(cli: &Cli, command: &StoreCommand) -> CliResult {
    match command {
        StoreCommand::Copy(args) => copy(cli, args),
        StoreCommand::Migrate => super::store_migrate::migrate(cli),
        StoreCommand::Salvage(args) => super::store_salvage::salvage(cli, args),
    }
}

fn copy(cli: &Cli, args: &CopyArgs) -> CliResult {
    local_only(cli, "store copy")?;
    let dir = args
        .from
        .clone()
        .map_or_else(|| cli.data_dir(), DataDir::new);
    let source = dir.open_store()?;
    let to_postgres = args.to.starts_with("postgres://") || args.to.starts_with("postgresql://");
    let target: Arc<dyn LogStore> = if to_postgres {
        Arc::new(PgStore::open(&args.to).map_err(LedgerError::from)?)
    } else {
        let path = PathBuf::from(&args.to);
        if path.exists() {
            return Err(CliError::new(
                EXIT_FAILED,
                format!("{} exists: copy into a new directory", path.display()),
            ));
        }
        Arc::new(SledStore::open(&path).map_err(LedgerError::from)?)
    };
    let bar = super::progress::events_bar(
        source
            .head()
            .map_err(LedgerError::from)?
            .map_or(0, |h| h.seq),
        "copying",
    );
    let report = copy_log(source.as_ref(), target.as_ref(), &|seq| {
        bar.set_position(seq)
    })
    .map_err(|err| located(source.as_ref(), err))?;
    bar.finish_and_clear();
    let verified = verify_log(
        target.as_ref(),
        dir.anchor_public_key()?,
        VerifyRange::default(),
        None,
    )?;
    if !verified.is_ok() {
        let first = first_problem(&verified).unwrap_or_default();
        return Err(CliError::new(
            EXIT_VERIFY_FAILED,
            format!("the copy does not verify: {first}"),
        ));
    }
    println!(
        "copied {} events and {} side entries to {}; the copy verifies with {} ({} signatures, {} index entries)",
        report.events,
        report.side_entries,
        if to_postgres { "the PostgreSQL database" } else { args.to.as_str() },
        dir.public_key_path().display(),
        verified.signatures_checked,
        verified.index_entries_checked
    );
    if to_postgres {
        println!(
            "to use it: put `store = \"{}\"` at the top of {} (replacing any store line)",
            args.to,
            dir.config_path().display()
        );
    } else {
        println!(
            "to use it: remove the store line from {} and move {} to {}",
            dir.config_path().display(),
            args.to,
            dir.db_path().display()
        );
    }
    Ok(())
}

/// A broken link found by the copy, named at the event whose body changed when the stored tree says which: in a
/// sealed block, which stores no hash that follows from the one before, a changed body breaks the link only at
/// the next block (docs/FORMAT.md §4).
fn located(source: &dyn LogStore, err: crate::store::StoreError) -> LedgerError {
    let crate::store::StoreError::Corrupt(problem) = &err else {
        return err.into();
    };
    let found_at = source.head().ok().flatten().map_or(0, |h| h.seq);
    match crate::audit::tiles::first_unrecorded_leaf(source, 1, found_at) {
        Some(changed) => crate::store::StoreError::Corrupt(format!(
            "event {changed} does not chain: the hash of its body is not the leaf the Merkle tree recorded for it \
             ({problem})"
        ))
        .into(),
        None => err.into(),
    }
}
