//! `keyledger store migrate`: rewrites a log written by keyledger before blocks (one sled item per event) into the
//! block layout beside it, verifies the new log with signing.pub, and only then swaps it in and removes the old
//! one. A killed migration leaves the old log untouched and is started again by running the command again; one
//! killed between the two renames is finished by it.

use super::remote::local_only;
use super::{Cli, CliError, CliResult, EXIT_FAILED, EXIT_VERIFY_FAILED};
use crate::audit::{verify_log, VerifyRange};
use crate::store::copy::copy_log;
use crate::store::{LogStore, SledStore, ATTRIBUTE_INDEX_MARKER};
use crate::LedgerError;
use std::path::Path;

fn io(what: String) -> impl FnOnce(std::io::Error) -> CliError {
    move |e| CliError::new(EXIT_FAILED, format!("{what}: {e}"))
}

pub fn migrate(cli: &Cli) -> CliResult {
    local_only(cli, "store migrate")?;
    let dir = cli.data_dir();
    if dir.config()?.store.is_some() {
        return Err(CliError::new(
            EXIT_FAILED,
            "this ledger's log lives in PostgreSQL, whose layout does not change: nothing to migrate",
        ));
    }
    let log = dir.db_path();
    let staging = log.with_extension("migrating");
    let old = log.with_extension("v1");
    if !log.exists() && staging.exists() && old.exists() {
        return finish_swap(&log, &staging, &old);
    }
    let source = SledStore::open_existing(&log).map_err(LedgerError::from)?;
    if !source.is_legacy_layout() {
        println!(
            "{} is already in the block layout: nothing to migrate",
            log.display()
        );
        return Ok(());
    }
    if staging.exists() {
        // What a killed migration left: the old log is intact, so the copy starts again.
        std::fs::remove_dir_all(&staging).map_err(io(format!("removing {}", staging.display())))?;
    }
    let target = SledStore::open(&staging).map_err(LedgerError::from)?;
    let head = source
        .head()
        .map_err(LedgerError::from)?
        .map_or(0, |h| h.seq);
    let bar = super::progress::events_bar(head, "migrating");
    let report =
        copy_log(&source, &target, &|seq| bar.set_position(seq)).map_err(LedgerError::from)?;
    bar.finish_and_clear();
    crate::audit::tiles::write_all_tiles(&target)?;
    target
        .put_side(&[(ATTRIBUTE_INDEX_MARKER.to_vec(), Vec::new())])
        .map_err(LedgerError::from)?;
    target.sync().map_err(LedgerError::from)?;
    let verified = verify_log(
        &target,
        dir.anchor_public_key()?,
        VerifyRange::default(),
        None,
    )?;
    if !verified.is_ok()
        || target.head().map_err(LedgerError::from)? != source.head().map_err(LedgerError::from)?
    {
        let first = super::store_report::first_problem(&verified)
            .unwrap_or_else(|| "its head differs from the old log's".into());
        return Err(CliError::new(
            EXIT_VERIFY_FAILED,
            format!(
                "the migrated log in {} does not verify ({first}); {} is untouched",
                staging.display(),
                log.display()
            ),
        ));
    }
    let before = source.size_on_disk().map_err(LedgerError::from)?;
    let after = target.size_on_disk().map_err(LedgerError::from)?;
    drop(source);
    drop(target);
    println!(
        "rewrote {} events and {} side entries in the block layout and verified them with {} ({} signatures); \
         the log took {before} bytes, now {after}",
        report.events,
        report.side_entries,
        dir.public_key_path().display(),
        verified.signatures_checked
    );
    std::fs::rename(&log, &old).map_err(io(format!("moving {} aside", log.display())))?;
    finish_swap(&log, &staging, &old)
}

/// Puts the verified new log in place and removes the old one.
fn finish_swap(log: &Path, staging: &Path, old: &Path) -> CliResult {
    std::fs::rename(staging, log)
        .map_err(io(format!("moving {} into place", staging.display())))?;
    std::fs::remove_dir_all(old).map_err(io(format!("removing {}", old.display())))?;
    println!("{} is in the block layout", log.display());
    Ok(())
}
