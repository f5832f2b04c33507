//! `keyledger audit …`: verification of the stored chain.

use super::audit_verify::{print_verify_report, VerifyArgs};
use super::progress::events_bar;
use super::remote::{local_only, Remote};
use super::{Cli, CliError, CliResult};
use crate::audit::{verify_log, VerifyRange};
use crate::LedgerError;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify hashes, signatures, indexes and stored checkpoints; exit 3 on the first bad seq.
    Verify(VerifyArgs),
    /// Print a signed checkpoint of the log as it is now (keep it elsewhere).
    Checkpoint(super::proof_cmd::CheckpointArgs),
    /// Export a time window as self-proving JSON lines.
    Export(super::proof_cmd::ExportArgs),
    /// Verify an export offline, with only the first public key (and an older checkpoint you kept).
    VerifyExport(super::proof_cmd::VerifyExportArgs),
    /// Print the inclusion proof of one event.
    Prove(super::proof_cmd::ProveArgs),
    /// Print the consistency proof between two tree sizes.
    Consistency(super::proof_cmd::ConsistencyArgs),
    /// Replace the ledger's signing key (a file or a PKCS#11 token's); the old key endorses the new one on the
    /// record.
    RotateSigner(super::rotate_cmd::RotateSignerArgs),
    /// Move the events older than a time out of the live store into a verifiable export file.
    Archive(super::archive_cmd::ArchiveArgs),
}

pub fn run(cli: &Cli, command: &AuditCommand) -> CliResult {
    match command {
        AuditCommand::Verify(args) => verify(cli, args),
        AuditCommand::Checkpoint(args) => match Remote::from_cli(cli)? {
            Some(remote) => super::remote_audit::checkpoint(&remote, args),
            None => super::proof_cmd::checkpoint(cli, args),
        },
        AuditCommand::Export(args) => match Remote::from_cli(cli)? {
            Some(remote) => super::remote_audit::export(&remote, args),
            None => super::proof_cmd::export(cli, args),
        },
        AuditCommand::VerifyExport(args) => super::proof_cmd::verify_export_file(args),
        AuditCommand::Prove(args) => {
            local_only(cli, "audit prove")?;
            super::proof_cmd::prove(cli, args)
        }
        AuditCommand::Consistency(args) => {
            local_only(cli, "audit consistency")?;
            super::proof_cmd::consistency(cli, args)
        }
        AuditCommand::Archive(args) => super::archive_cmd::archive(cli, args),
        AuditCommand::RotateSigner(args) => {
            local_only(cli, "audit rotate-signer")?;
            super::rotate_cmd::rotate_signer(cli, args)
        }
    }
}

fn verify(cli: &Cli, args: &VerifyArgs) -> CliResult {
    if let Some(remote) = Remote::from_cli(cli)? {
        return super::remote_audit::verify(&remote, args);
    }
    let dir = cli.data_dir();
    let kept = match &args.anchor {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            CliError::new(
                super::EXIT_FAILED,
                format!("--anchor {}: {e}", path.display()),
            )
        })?),
        None => None,
    };
    let anchor = dir.anchor_public_key()?;
    let store = dir.open_store()?;
    let from = match args.window.from {
        Some(t) => store.first_seq_at_or_after(t).map_err(LedgerError::from)?,
        None => 1,
    };
    let to = match args.window.to {
        Some(t) => Some(
            store
                .first_seq_at_or_after(t)
                .map_err(LedgerError::from)?
                .saturating_sub(1),
        ),
        None => None,
    };
    let head = store
        .head()
        .map_err(LedgerError::from)?
        .map_or(0, |h| h.seq);
    let bar = events_bar(to.unwrap_or(head).saturating_sub(from) + 1, "verifying");
    let started = std::time::Instant::now();
    let update = |seq: u64| bar.set_position(seq.saturating_sub(from) + 1);
    let report = verify_log(
        store.as_ref(),
        anchor,
        VerifyRange { from, to },
        Some(&update),
    )?;
    bar.finish_and_clear();
    print_verify_report(&report, args.json, started.elapsed())?;
    if let Some(kept) = kept {
        let origin = dir.identity()?.origin;
        let report =
            crate::audit::anchor_check::check_every_note(store.as_ref(), anchor, &origin, &kept)?;
        println!(
            "OK: the log holds every checkpoint kept outside ({} notes, the newest of {} events)",
            report.notes, report.newest
        );
    }
    if args.witnessed {
        super::witnessed_cmd::verify_witnessed(&dir, store.as_ref(), head, args.json)?;
    }
    Ok(())
}
