//! What a file of kept checkpoints says about a log: `audit verify --anchor` checks every note in it (each kept
//! size within the log, each root the log's root at that size), and a writer refuses to open a log that is behind,
//! or not consistent with, the newest note (a restored backup that lost anchored events must not regrow).

use super::anchor::split_notes;
use super::checkpoint::Checkpoint;
use crate::error::{LedgerError, LedgerResult};
use crate::signers::SignerEntry;
use crate::store::LogStore;
use ed25519_dalek::VerifyingKey;

/// One note of an anchor file, its signature checked: its place in the file (1-based) and its checkpoint.
#[derive(Clone, Debug)]
pub struct KeptNote {
    pub position: usize,
    pub checkpoint: Checkpoint,
}

/// Every note in `text`, each verified by one of `signers` and of `origin`. A note that none of them signed, or
/// that names another log, is refused by its position: an anchor file holds this ledger's notes only.
pub fn kept_notes(
    text: &str,
    signers: &[SignerEntry],
    origin: &str,
) -> LedgerResult<Vec<KeptNote>> {
    let mut kept = Vec::new();
    for (index, note) in split_notes(text).into_iter().enumerate() {
        let position = index + 1;
        let checkpoint = signers
            .iter()
            .find_map(|s| Checkpoint::verify_note(&note, &s.key).ok())
            .ok_or_else(|| {
                LedgerError::PinMismatch(format!(
                    "note {position} of the anchor is not signed by any of this ledger's signers"
                ))
            })?;
        if checkpoint.origin != origin {
            return Err(LedgerError::PinMismatch(format!(
                "note {position} of the anchor is a checkpoint of another ledger ({})",
                checkpoint.origin
            )));
        }
        kept.push(KeptNote {
            position,
            checkpoint,
        });
    }
    Ok(kept)
}

/// The newest (largest) of `kept`, whatever its place in the file.
pub fn newest(kept: &[KeptNote]) -> Option<&KeptNote> {
    kept.iter().max_by_key(|note| note.checkpoint.size)
}

/// Checks one kept note against the log of `held` events: the log must hold its events, with its root.
pub fn check_note(store: &dyn LogStore, note: &KeptNote, held: u64) -> LedgerResult<()> {
    let size = note.checkpoint.size;
    if size > held {
        return Err(LedgerError::Corrupt {
            seq: held + 1,
            problem: format!(
                "the log holds {held} events but a checkpoint kept outside (note {}) covers {size}: events {}..={size} were cut",
                note.position,
                held + 1,
            ),
        });
    }
    if super::tree::stored_root(store, size)? != note.checkpoint.root {
        return Err(LedgerError::Corrupt {
            seq: size,
            problem: format!(
                "the log's first {size} events do not have the root of the checkpoint kept outside (note {}): history was cut and regrown or rewritten",
                note.position
            ),
        });
    }
    Ok(())
}

/// What `audit verify --anchor` found: how many notes it checked and the newest kept size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnchorReport {
    pub notes: usize,
    pub newest: u64,
}

/// Checks the stored log against *every* checkpoint kept in `text` (an anchor file's text or one note), in file
/// order, and names the first contradiction. Run after `verify_log` succeeded, so the stored Merkle tiles are
/// known to match the events.
pub fn check_every_note(
    store: &dyn LogStore,
    anchor: VerifyingKey,
    origin: &str,
    text: &str,
) -> LedgerResult<AnchorReport> {
    let signers = super::verify::signers_before(store, anchor, u64::MAX)?;
    let kept = kept_notes(text, signers.entries(), origin)?;
    let newest = newest(&kept).map(|n| n.checkpoint.size).ok_or_else(|| {
        LedgerError::PinMismatch(
            "the anchor holds no checkpoint signed by this ledger's signers".into(),
        )
    })?;
    let held = store.head()?.map_or(0, |h| h.seq);
    // A size seen twice must have one root; each distinct size is checked against the log once.
    let mut checked = std::collections::BTreeMap::new();
    for note in &kept {
        match checked.get(&note.checkpoint.size) {
            Some(root) if *root == note.checkpoint.root => continue,
            Some(_) => {
                return Err(LedgerError::Corrupt {
                    seq: note.checkpoint.size,
                    problem: format!(
                        "note {} of the anchor gives another root for {} events than an earlier note: the log was forked",
                        note.position, note.checkpoint.size
                    ),
                })
            }
            None => {
                check_note(store, note, held)?;
                checked.insert(note.checkpoint.size, note.checkpoint.root);
            }
        }
    }
    Ok(AnchorReport {
        notes: kept.len(),
        newest,
    })
}

/// The writer's check at open: the log of `held` events must hold the newest kept checkpoint's events with its
/// root. Notes that none of `signers` verifies, or of another origin, are skipped here (an anchor shared by
/// mistake must not stop a ledger from opening; `audit verify --anchor` names them). Returns the newest kept size.
pub fn check_writer_against(
    store: &dyn LogStore,
    signers: &[SignerEntry],
    origin: &str,
    text: &str,
    held: u64,
) -> LedgerResult<Option<u64>> {
    // Parsing is cheap and a signature check is not: verify from the largest size down until one holds.
    let mut candidates: Vec<(u64, usize, String)> = split_notes(text)
        .into_iter()
        .enumerate()
        .filter_map(|(i, note)| {
            let (checkpoint, _, _) = Checkpoint::parse_note(&note).ok()?;
            (checkpoint.origin == origin).then_some((checkpoint.size, i + 1, note))
        })
        .collect();
    candidates.sort_by_key(|(size, _, _)| std::cmp::Reverse(*size));
    let Some((position, checkpoint)) = candidates.iter().find_map(|(_, position, note)| {
        signers
            .iter()
            .find_map(|s| Checkpoint::verify_note(note, &s.key).ok())
            .map(|checkpoint| (*position, checkpoint))
    }) else {
        return Ok(None);
    };
    let size = checkpoint.size;
    let note = KeptNote {
        position,
        checkpoint,
    };
    check_note(store, &note, held).map_err(|error| match error {
        LedgerError::Corrupt { seq, problem } => LedgerError::Corrupt {
            seq,
            problem: format!(
                "{problem}; refusing to write to a log behind its anchor (kept size {size}): restore a copy that holds them"
            ),
        },
        other => other,
    })?;
    Ok(Some(size))
}

/// Checks the stored log against every checkpoint kept in `kept` (an anchor file's text or one note) and returns
/// the newest kept size; see [`check_every_note`].
pub fn check_log_against(
    store: &dyn crate::store::LogStore,
    anchor: ed25519_dalek::VerifyingKey,
    origin: &str,
    kept: &str,
) -> crate::LedgerResult<u64> {
    check_every_note(store, anchor, origin, kept).map(|report| report.newest)
}
