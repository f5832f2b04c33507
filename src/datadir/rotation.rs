//! Signer rotation that survives a crash at any point. The new key is written (0600, fsynced) to
//! `signing.key.next` before the `ledger.signer_rotated` event commits; only then are the key files moved into
//! place. A ledger opened after a crash between the two finds the pending key, uses it if the rotation is on the
//! record, and finishes the move; if the rotation never committed, the pending key is discarded.

use super::{
    sync_dir, write_private_file, DataDir, KeySource, SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV,
};
use crate::chain::LedgerSigner;
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Actor, EventData, SignerRotated};
use crate::ledger::{AppendEvents, Ledger};
use std::fs;
use std::path::PathBuf;

const PENDING: &str = "signing.key.next";

/// What a finished rotation did.
#[derive(Debug)]
pub struct Rotation {
    pub seq: u64,
    pub old_id: String,
    pub new_id: String,
    /// Where the new signing key now is.
    pub new_key_path: PathBuf,
    /// Whether the key lives in the data directory (else the operator must move it to their secrets manager).
    pub key_in_dir: bool,
}

fn pending_path(dir: &DataDir) -> PathBuf {
    dir.root().join(PENDING)
}

fn key_in_dir(source: &KeySource) -> bool {
    *source == KeySource::Default
        && std::env::var(SIGNING_KEY_ENV).is_err()
        && std::env::var(SIGNING_KEY_FILE_ENV).is_err()
}

/// The pending new key, if a rotation was started.
pub(super) fn pending_signers(dir: &DataDir) -> LedgerResult<Vec<LedgerSigner>> {
    let path = pending_path(dir);
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(vec![dir.load_signer(&KeySource::File(path))?])
}

/// After an open: moves a committed pending key into place, or discards one whose rotation never committed.
pub(super) fn finish_if_pending(
    dir: &DataDir,
    source: &KeySource,
    current_public_hex: &str,
) -> LedgerResult<Option<PathBuf>> {
    let Some(pending) = pending_signers(dir)?.pop() else {
        return Ok(None);
    };
    let path = pending_path(dir);
    if pending.public_key_hex() != current_public_hex {
        fs::remove_file(&path)
            .map_err(|e| LedgerError::io(format!("removing {}", path.display()), e))?;
        sync_dir(dir.root())?;
        return Ok(None);
    }
    let target = if key_in_dir(source) {
        if let Ok(old) = dir.load_signer(&KeySource::File(dir.key_path())) {
            let retired = dir.root().join(format!("signing.key.retired-{}", old.id()));
            fs::rename(dir.key_path(), &retired)
                .map_err(|e| LedgerError::io("retiring the old signing key", e))?;
        }
        dir.key_path()
    } else {
        dir.root().join(format!("signing.key.new-{}", pending.id()))
    };
    fs::rename(&path, &target).map_err(|e| {
        LedgerError::io(
            format!("moving the new signing key to {}", target.display()),
            e,
        )
    })?;
    sync_dir(dir.root())?;
    Ok(Some(target))
}

/// Step 1: a fresh key, durably on disk as the pending key (a stale one from an uncommitted attempt is replaced).
pub fn prepare(dir: &DataDir) -> LedgerResult<LedgerSigner> {
    let path = pending_path(dir);
    if path.exists() {
        fs::remove_file(&path)
            .map_err(|e| LedgerError::io(format!("removing {}", path.display()), e))?;
    }
    let signer = LedgerSigner::generate();
    let seed = signer
        .seed_hex()
        .ok_or_else(|| LedgerError::Config("a generated key is held in memory".into()))?;
    write_private_file(&path, seed.as_bytes())?;
    sync_dir(dir.root())?;
    Ok(signer)
}

/// Step 2: the rotation on the record, endorsed by the current key. The writer ends its batch here, so no later
/// event is signed by the retired key.
pub fn commit(ledger: &Ledger, new: &LedgerSigner, reason: Option<String>) -> LedgerResult<u64> {
    let seqs = ledger.submit_blocking(AppendEvents {
        actor: Actor::local_operator(),
        request_id: None,
        events: vec![EventData::SignerRotated(SignerRotated {
            new_public_key: new.public_key_hex(),
            new_signer_id: new.id().to_string(),
            reason,
        })],
    })?;
    seqs.first().copied().ok_or(LedgerError::WriterStopped)
}

/// The whole rotation: prepare, commit, then move the key files into place.
pub fn rotate(dir: &DataDir, source: &KeySource, reason: Option<String>) -> LedgerResult<Rotation> {
    let ledger = dir.open(source)?;
    let old_id = ledger
        .signers()
        .current()
        .map(|s| s.id.to_string())
        .unwrap_or_default();
    let new = prepare(dir)?;
    let seq = commit(&ledger, &new, reason)?;
    drop(ledger);
    let new_key_path = finish_if_pending(dir, source, &new.public_key_hex())?
        .ok_or_else(|| LedgerError::Config("the new signing key disappeared".into()))?;
    Ok(Rotation {
        seq,
        old_id,
        new_id: new.id().to_string(),
        new_key_path,
        key_in_dir: key_in_dir(source),
    })
}
