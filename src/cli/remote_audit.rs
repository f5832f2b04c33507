//! `keyledger audit verify | checkpoint | export` in client mode, through `/v1/audit/…` (a `ledger:audit` key).

use super::audit_verify::{print_verify_report, VerifyArgs};
use super::proof_cmd::{CheckpointArgs, ExportArgs};
use super::remote::Remote;
use super::{CliError, CliResult, EXIT_FAILED};
use crate::audit::VerifyReport;
use serde::Deserialize;
use serde_json::Value;

pub fn verify(remote: &Remote, args: &VerifyArgs) -> CliResult {
    if args.window.is_set() || args.anchor.is_some() || args.witnessed {
        return Err(CliError::new(
            2,
            "through --server, `audit verify` checks the whole log; for a window or an anchor, \
             run it on the server's host, or `audit export` the window and `audit verify-export` it here \
             (`--witnessed`: with `audit export --witnessed` and `verify-export --witness-key`)",
        ));
    }
    #[derive(Deserialize)]
    struct Answer {
        report: VerifyReport,
    }
    let started = std::time::Instant::now();
    let answer: Answer = remote.get("/v1/audit/verify", &[])?;
    print_verify_report(&answer.report, args.json, started.elapsed())
}

pub fn checkpoint(remote: &Remote, args: &CheckpointArgs) -> CliResult {
    let answer: Value = remote.get("/v1/audit/checkpoint", &[])?;
    if args.json {
        return super::key_output::print_json(&answer);
    }
    print!("{}", answer["note"].as_str().unwrap_or_default());
    eprintln!(
        "checkpoint of {} events; verifier key: {}",
        answer["size"],
        answer["verifier_key"].as_str().unwrap_or_default()
    );
    eprintln!("keep this note somewhere keyledger cannot rewrite; `audit verify --anchor` and `audit verify-export --checkpoint` check against it");
    Ok(())
}

pub fn export(remote: &Remote, args: &ExportArgs) -> CliResult {
    let mut query = args.window.query(None);
    if let Some(size) = args.consistency_from {
        query.push(("consistency_from", size.to_string()));
    }
    if args.witnessed {
        query.push(("witnessed", "true".to_string()));
    }
    let mut response = remote.get_text("/v1/audit/export", &query)?;
    let copied = match &args.output {
        Some(path) => {
            let mut file = std::fs::File::create(path).map_err(|e| {
                CliError::new(EXIT_FAILED, format!("creating {}: {e}", path.display()))
            })?;
            response.copy_to(&mut file)
        }
        None => response.copy_to(&mut std::io::stdout().lock()),
    }
    .map_err(|e| CliError::new(EXIT_FAILED, format!("export cut short: {e}")))?;
    eprintln!(
        "exported {copied} bytes from the server; check it with `keyledger audit verify-export`"
    );
    Ok(())
}
