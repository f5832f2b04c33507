//! The witnessed side of `audit`: `verify --witnessed` (ask each configured witness about the log's newest
//! checkpoint), `export --witnessed` (against the newest checkpoint the quorum cosigned) and
//! `verify-export --witness-key … --quorum N` (the export's checkpoint must carry the quorum's cosignatures).

use super::{CliError, EXIT_FAILED, EXIT_VERIFY_FAILED};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::cosigned::newest_witnessed as newest_cosigned;
use crate::audit::export::newest_stored_checkpoint;
use crate::audit::verify_export::ExportCheck;
use crate::audit::witnessed::{ask_witnesses, WitnessQuorum};
use crate::datadir::DataDir;
use crate::store::LogStore;

fn configured(dir: &DataDir) -> Result<crate::config::AnalysisConfig, CliError> {
    let config = dir.config()?;
    if config.witnesses.is_empty() {
        return Err(CliError::new(
            2,
            format!(
                "no witness is configured: add [[witnesses]] (url, key) to {}",
                dir.config_path().display()
            ),
        ));
    }
    Ok(config)
}

/// The newest kept checkpoint cosigned by the configured quorum.
pub(super) fn newest_witnessed(
    dir: &DataDir,
    store: &dyn LogStore,
) -> Result<(Checkpoint, String), CliError> {
    let config = configured(dir)?;
    let quorum = WitnessQuorum::from_config(&config.witnesses, &config.witness_policy)
        .map_err(|e| CliError::new(2, e))?;
    newest_cosigned(store, &quorum.witnesses, quorum.quorum)?.ok_or_else(|| {
        CliError::new(
            EXIT_FAILED,
            format!(
                "no checkpoint has been cosigned by {} of the configured witnesses yet (a serving writer submits each checkpoint)",
                quorum.quorum
            ),
        )
    })
}

/// `audit verify --witnessed`: every configured witness is asked about the newest stored checkpoint.
pub(super) fn verify_witnessed(
    dir: &DataDir,
    store: &dyn LogStore,
    head: u64,
    json: bool,
) -> Result<(), CliError> {
    let config = configured(dir)?;
    let (checkpoint, note) = newest_stored_checkpoint(store)?;
    let asked = ask_witnesses(store, &note, &config.witnesses, &config.witness_policy)
        .map_err(|e| CliError::new(2, e))?;
    if json {
        println!("{}", serde_json::json!({ "witnessed": asked }));
    } else {
        for answer in &asked.answers {
            println!(
                "witness {}: {} ({})",
                answer.witness, answer.outcome, answer.detail
            );
        }
    }
    if let Some(conflict) = asked.conflicts().next() {
        return Err(CliError::new(
            EXIT_VERIFY_FAILED,
            format!(
                "witnessed verification FAILED: witness {}: {}",
                conflict.witness, conflict.detail
            ),
        ));
    }
    if !asked.is_ok() {
        return Err(CliError::new(
            EXIT_VERIFY_FAILED,
            format!(
                "witnessed verification FAILED: witness quorum not met: {} of the {} cosignatures required for the checkpoint of {} events",
                asked.cosigned(),
                asked.quorum,
                checkpoint.size
            ),
        ));
    }
    if !json {
        println!(
            "OK: {} of {} witnesses cosigned the checkpoint of {} events (quorum {}); {} events after it are not witnessed yet",
            asked.cosigned(),
            asked.answers.len(),
            checkpoint.size,
            asked.quorum,
            head.saturating_sub(checkpoint.size)
        );
    }
    Ok(())
}

/// The quorum `verify-export` checks, when `--witness-key` is given.
pub(super) fn quorum_of(
    witness_keys: &[String],
    quorum: Option<usize>,
) -> Result<Option<WitnessQuorum>, CliError> {
    if witness_keys.is_empty() {
        return Ok(None);
    }
    WitnessQuorum::from_vkeys(witness_keys, quorum)
        .map(Some)
        .map_err(|e| CliError::new(2, e.to_string()))
}

/// The witnesses that cosigned a verified export's checkpoint, when they make the quorum.
pub(super) fn check_export(
    quorum: Option<&WitnessQuorum>,
    check: &ExportCheck,
    json: bool,
) -> Result<Option<Vec<String>>, CliError> {
    let Some(quorum) = quorum else {
        return Ok(None);
    };
    match quorum.check_note(&check.note) {
        Ok(names) => Ok(Some(names)),
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": false, "failure": { "witnessed": e.to_string() } })
                );
            }
            Err(CliError::new(
                EXIT_VERIFY_FAILED,
                format!("export verification FAILED: the checkpoint is not witnessed: {e}"),
            ))
        }
    }
}
