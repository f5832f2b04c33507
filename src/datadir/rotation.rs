//! Signer rotation that survives a crash at any point, between keys of either kind (a file, a PKCS#11 token).
//! The new key is made durable before the `ledger.signer_rotated` event commits: a fresh file key is written
//! (0600, fsynced) to `signing.key.next`; a token key is generated on the token, proven to sign, and named with
//! its public key in `signer.next.toml` ([`super::rotation_token`]). Only after the commit are keyledger.toml's
//! `[signer]` and the key files brought into line. An open after a crash offers the pending key besides the
//! configured one, signs with whichever the log says is current, and then finishes the rotation (if it is on the
//! record) or discards the pending key (if it never committed); every finishing step can be redone.

use super::rotation_token::{self, PendingToken};
use super::{sync_dir, DataDir, KeySource, SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV};
use crate::chain::LedgerSigner;
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Actor, EventData, SignerRotated};
use crate::ledger::{AppendEvents, Ledger};
use crate::token::SignerConfig;
use std::fs;
use std::path::PathBuf;

const PENDING: &str = "signing.key.next";

/// Where a rotation puts the new key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateTo {
    /// A fresh key file.
    File,
    /// The key a `kind = "pkcs11"` `[signer]` section names (generated on its token).
    Token(SignerConfig),
}

/// Where the new key is once a rotation is finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewKey {
    /// A key file: `signing.key`, or `signing.key.new-<id>` when the old key came from outside the directory
    /// (`in_dir` false: the operator moves it to their secrets manager).
    File { path: PathBuf, in_dir: bool },
    /// A key on a PKCS#11 token; keyledger.toml's `[signer]` names it.
    Token {
        token_label: String,
        key_label: String,
    },
}

/// What finishing a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub new_key: NewKey,
    /// The old key file, renamed `signing.key.retired-<id>`.
    pub retired_key: Option<PathBuf>,
}

/// What a finished rotation did.
#[derive(Debug)]
pub struct Rotation {
    pub seq: u64,
    pub old_id: String,
    pub new_id: String,
    /// Where the old key was: keyledger.toml's `[signer]` before the rotation.
    pub old_signer: SignerConfig,
    pub new_key: NewKey,
    /// The old key file, renamed `signing.key.retired-<id>` (it signs nothing the log accepts after `seq`).
    pub retired_key: Option<PathBuf>,
}

fn pending_path(dir: &DataDir) -> PathBuf {
    dir.root().join(PENDING)
}

fn key_in_dir(source: &KeySource) -> bool {
    *source == KeySource::Default
        && std::env::var(SIGNING_KEY_ENV).is_err()
        && std::env::var(SIGNING_KEY_FILE_ENV).is_err()
}

/// The pending new keys, if a rotation was started: a file key, and a token key that can be opened.
pub(super) fn pending_signers(dir: &DataDir) -> LedgerResult<Vec<LedgerSigner>> {
    let mut pending = Vec::new();
    let path = pending_path(dir);
    if path.exists() {
        pending.push(dir.load_signer(&KeySource::File(path))?);
    }
    if let Some(marker) = rotation_token::read(dir)? {
        pending.extend(rotation_token::open(&marker));
    }
    Ok(pending)
}

/// The keys an open offers the ledger: the one `source` gives and every pending one. While a rotation is pending
/// the configured key may not load (keyledger.toml or the key files are half-way to the new key): it is then
/// left out, and its error returned beside the candidates, for the caller to report if none of them is current.
pub(super) fn candidates(
    dir: &DataDir,
    source: &KeySource,
) -> LedgerResult<(Vec<LedgerSigner>, Option<LedgerError>)> {
    let pending = pending_signers(dir)?;
    match dir.load_signer(source) {
        Ok(configured) => Ok((std::iter::once(configured).chain(pending).collect(), None)),
        Err(error) if !pending.is_empty() => {
            tracing::warn!(%error, "the configured signing key does not load; trying the pending rotation's key");
            Ok((pending, Some(error)))
        }
        Err(error) => Err(error),
    }
}

/// After an open: finishes a rotation whose new key is `current_public_hex` (keyledger.toml's `[signer]`, then the
/// key files, then the marker), or discards a pending key whose rotation never committed.
pub(super) fn finish_if_pending(
    dir: &DataDir,
    source: &KeySource,
    current_public_hex: &str,
) -> LedgerResult<Option<Finished>> {
    let mut finished = None;
    if let Some(marker) = rotation_token::read(dir)? {
        if marker.public_key == current_public_hex {
            finished = Some(finish_token(dir, &marker)?);
        } else {
            tracing::warn!(
                "a signer rotation onto {} never committed: its marker is discarded and the key is left on the \
                 token (a retry with the same label uses it; else delete it there)",
                marker.place()
            );
            rotation_token::remove(dir)?;
        }
    }
    let path = pending_path(dir);
    if path.exists() {
        let pending = dir.load_signer(&KeySource::File(path.clone()))?;
        if pending.public_key_hex() == current_public_hex {
            finished = Some(finish_file(dir, source, &pending)?);
        } else {
            remove_file(&path)?;
            sync_dir(dir.root())?;
        }
    }
    Ok(finished)
}

/// keyledger.toml names the token's key; a `signing.key` left in the directory is retired; the marker goes.
fn finish_token(dir: &DataDir, marker: &PendingToken) -> LedgerResult<Finished> {
    dir.replace_signer(&marker.signer)?;
    let retired_key = retire_key_file(dir)?;
    rotation_token::remove(dir)?;
    Ok(Finished {
        new_key: NewKey::Token {
            token_label: marker.signer.token_label.clone().unwrap_or_default(),
            key_label: marker.signer.key_label.clone().unwrap_or_default(),
        },
        retired_key,
    })
}

/// keyledger.toml says the key is a file; the pending key file moves into place (retiring the old one).
fn finish_file(dir: &DataDir, source: &KeySource, new: &LedgerSigner) -> LedgerResult<Finished> {
    dir.replace_signer(&SignerConfig::default())?;
    let in_dir = key_in_dir(source);
    let (path, retired_key) = if in_dir {
        (dir.key_path(), retire_key_file(dir)?)
    } else {
        let name = format!("signing.key.new-{}", new.id());
        (dir.root().join(name), None)
    };
    fs::rename(pending_path(dir), &path).map_err(|e| {
        LedgerError::io(
            format!("moving the new signing key to {}", path.display()),
            e,
        )
    })?;
    sync_dir(dir.root())?;
    Ok(Finished {
        new_key: NewKey::File { path, in_dir },
        retired_key,
    })
}

/// Renames an existing `signing.key` to `signing.key.retired-<its id>`.
fn retire_key_file(dir: &DataDir) -> LedgerResult<Option<PathBuf>> {
    let key = dir.key_path();
    if !key.exists() {
        return Ok(None);
    }
    let old = dir.load_signer(&KeySource::File(key.clone()))?;
    let retired = dir.root().join(format!("signing.key.retired-{}", old.id()));
    fs::rename(&key, &retired).map_err(|e| LedgerError::io("retiring the old signing key", e))?;
    sync_dir(dir.root())?;
    Ok(Some(retired))
}

fn remove_file(path: &std::path::Path) -> LedgerResult<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LedgerError::io(format!("removing {}", path.display()), e)),
    }
}

/// Pending keys of an earlier attempt that never committed (an open discarded their markers already, unless the
/// caller skipped it), so that only the new attempt's key is pending.
fn discard_stale(dir: &DataDir) -> LedgerResult<()> {
    let path = pending_path(dir);
    remove_file(&path)?;
    remove_file(&path.with_file_name(format!("{PENDING}.tmp")))?;
    rotation_token::remove(dir)
}

/// Step 1 (to a file): a fresh key, durably on disk as the pending key (a stale one from an uncommitted attempt
/// is replaced).
pub fn prepare(dir: &DataDir) -> LedgerResult<LedgerSigner> {
    discard_stale(dir)?;
    let signer = LedgerSigner::generate();
    let seed = signer
        .seed_hex()
        .ok_or_else(|| LedgerError::Config("a generated key is held in memory".into()))?;
    super::config_file::replace_file(&pending_path(dir), seed.as_bytes(), 0o600)?;
    Ok(signer)
}

/// Step 1 (to a token): the key `signer` names on its token, generated there unless it exists (it must not be, or
/// have been, `ledger`'s signer), proven to sign, and durably recorded as the pending key in `signer.next.toml`.
pub fn prepare_token(
    dir: &DataDir,
    ledger: &Ledger,
    signer: &SignerConfig,
) -> LedgerResult<LedgerSigner> {
    discard_stale(dir)?;
    rotation_token::prepare(dir, ledger, signer)
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

/// Step 3, which every open also runs: keyledger.toml and the key files brought into line with the record.
pub fn finish(dir: &DataDir, source: &KeySource, new: &LedgerSigner) -> LedgerResult<Finished> {
    finish_if_pending(dir, source, &new.public_key_hex())?.ok_or_else(|| {
        LedgerError::Config("the new signing key's pending record disappeared".into())
    })
}

/// The whole rotation: prepare, commit, then finish.
pub fn rotate(
    dir: &DataDir,
    source: &KeySource,
    to: &RotateTo,
    reason: Option<String>,
) -> LedgerResult<Rotation> {
    let old_signer = dir.config()?.signer;
    let ledger = dir.open(source)?;
    let old_id = ledger
        .signers()
        .current()
        .map(|s| s.id.to_string())
        .unwrap_or_default();
    let new = match to {
        RotateTo::File => prepare(dir)?,
        RotateTo::Token(signer) => prepare_token(dir, &ledger, signer)?,
    };
    let seq = commit(&ledger, &new, reason)?;
    drop(ledger);
    let finished = finish(dir, source, &new)?;
    Ok(Rotation {
        seq,
        old_id,
        new_id: new.id().to_string(),
        old_signer,
        new_key: finished.new_key,
        retired_key: finished.retired_key,
    })
}
