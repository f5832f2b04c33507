//! The check a serving ledger runs behind a snapshot it started from: every event the snapshot stands for, its
//! chain, signatures and Merkle root, replayed in the background.

use super::replay::{replay_range, Apply};
use super::replay_start::replay_start;
use crate::chain::{first_bad_signature, Hash32, PendingSignature};
use crate::error::{LedgerError, LedgerResult};
use crate::projection::AnalysisRules;
use crate::signers::SignerRegistry;
use crate::store::{Head, LogStore, StoredRecord};
use std::sync::atomic::AtomicBool;

const SIGNATURE_CHUNK: usize = 4096;

/// Checks the signatures gathered so far and empties the list; a bad one is the log's corruption at its seq.
fn flush_signatures(pending: &mut Vec<PendingSignature>) -> LedgerResult<()> {
    match first_bad_signature(pending) {
        Some(seq) => Err(LedgerError::Corrupt {
            seq,
            problem: "signature does not verify".into(),
        }),
        None => {
            pending.clear();
            Ok(())
        }
    }
}

/// Checks the events a snapshot stands for: the chain from genesis to `head`, every stored checkpoint within
/// it, and that the recomputed Merkle root is the snapshot's. `Ok(false)` when cancelled before the end.
pub(crate) fn check_prefix(
    store: &dyn LogStore,
    head: Head,
    root: Hash32,
    cancel: &AtomicBool,
) -> LedgerResult<bool> {
    let start = replay_start(store, AnalysisRules::default())?;
    // Every signature too, not only the chain and the root: a flipped signature byte changes neither.
    let mut pending: Vec<PendingSignature> = Vec::with_capacity(SIGNATURE_CHUNK);
    let mut visit = |record: &StoredRecord, _: &crate::event::Event, signers: &SignerRegistry| {
        let signer = signers
            .signer_for(record.seq)
            .ok_or_else(|| LedgerError::Corrupt {
                seq: record.seq,
                problem: "no signer is known for this event".into(),
            })?;
        pending.push((record.seq, record.hash, record.signature, signer.key));
        if pending.len() >= SIGNATURE_CHUNK {
            flush_signatures(&mut pending)?;
        }
        Ok(())
    };
    let (outcome, _) = replay_range(
        store,
        start,
        head.seq + 1,
        Apply::Visit(&mut visit),
        None,
        Some(cancel),
    )?;
    flush_signatures(&mut pending)?;
    let reached = outcome.head.map_or(0, |h| h.seq);
    if reached < head.seq && cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(false);
    }
    let corrupt = |problem: &str| LedgerError::Corrupt {
        seq: head.seq,
        problem: problem.into(),
    };
    if reached < head.seq {
        return Err(LedgerError::Corrupt {
            seq: reached + 1,
            problem: format!(
                "event {} is missing below the projection snapshot (taken at {})",
                reached + 1,
                head.seq
            ),
        });
    }
    if outcome.head.map(|h| h.hash) != Some(head.hash) {
        return Err(corrupt(
            "the chain no longer leads to the hash the projection snapshot was taken at",
        ));
    }
    if outcome.frontier.root() != root {
        return Err(corrupt(
            "the events no longer have the Merkle root the projection snapshot was taken at",
        ));
    }
    Ok(true)
}
