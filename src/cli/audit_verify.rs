//! `keyledger audit verify`'s arguments and the printer of its report, shared by the local command (audit_cmd.rs)
//! and its client mode (remote_audit.rs).

use super::window_args::WindowArgs;
use super::{CliError, CliResult, EXIT_VERIFY_FAILED};
use crate::audit::VerifyReport;
use clap::Args;

// The window's flags say what they bound here: the events verified.
#[derive(Args, Debug)]
#[command(
    mut_arg("from", |arg| arg.help("Verify events at or after this time")),
    mut_arg("to", |arg| arg.help("Verify events before this time"))
)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub window: WindowArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// A file of checkpoints kept outside the data directory (the `[anchor] file`, or one saved note): the log
    /// must hold the events of every note in it, with its root.
    #[arg(long)]
    pub anchor: Option<std::path::PathBuf>,
    /// Ask each witness in keyledger.toml about the newest checkpoint: fail when one cosigned a larger tree or
    /// another history (the log was cut or rewritten), or when fewer than the quorum cosign it.
    #[arg(long)]
    pub witnessed: bool,
}

/// Prints a verification report (JSON, or one line when it passed); a problem is exit code 3.
pub(super) fn print_verify_report(
    report: &VerifyReport,
    json: bool,
    elapsed: std::time::Duration,
) -> CliResult {
    if json {
        super::key_output::print_json(report)?;
    } else if report.is_ok() {
        println!(
            "OK: events {}..={} verify ({} events, {} signatures, {} index entries, {:.2}s)",
            report.from_seq,
            report.to_seq,
            report.events_checked,
            report.signatures_checked,
            report.index_entries_checked,
            elapsed.as_secs_f64()
        );
    }
    match report.first_problem() {
        None => Ok(()),
        Some(problem) => Err(CliError::new(
            EXIT_VERIFY_FAILED,
            format!(
                "verification FAILED at seq {}: {:?}: {} ({} problem(s) found)",
                problem.seq,
                problem.kind,
                problem.detail,
                report.problems.len()
            ),
        )),
    }
}
