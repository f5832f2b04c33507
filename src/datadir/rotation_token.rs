//! A signer rotation onto a PKCS#11 token: the new key is generated on the token (or the one already there by its
//! label is taken) and proven to sign, then `signer.next.toml` — its public key and the `[signer]` section that
//! names it — is written (0600, fsynced, renamed into place) before the rotation event commits. The public key lets
//! a later open decide whether the rotation is on the record without opening the token.

use super::config_file::replace_file;
use super::{open_token, sync_dir, DataDir};
use crate::chain::LedgerSigner;
use crate::error::{LedgerError, LedgerResult};
use crate::ledger::Ledger;
use crate::token::SignerConfig;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::PathBuf;

const MARKER: &str = "signer.next.toml";

/// What `signer.next.toml` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingToken {
    /// Hex of the new key's public key.
    pub public_key: String,
    /// The `[signer]` section that names the new key.
    pub signer: SignerConfig,
}

impl PendingToken {
    /// `"token" / "key"`, for messages.
    pub fn place(&self) -> String {
        format!(
            "the key labelled {:?} on the PKCS#11 token {:?}",
            self.signer.key_label.as_deref().unwrap_or_default(),
            self.signer.token_label.as_deref().unwrap_or_default()
        )
    }
}

pub(super) fn marker_path(dir: &DataDir) -> PathBuf {
    dir.root().join(MARKER)
}

/// The marker, if a rotation onto a token was started and not yet finished or discarded.
pub(super) fn read(dir: &DataDir) -> LedgerResult<Option<PendingToken>> {
    let path = marker_path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LedgerError::io(format!("reading {}", path.display()), e)),
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| LedgerError::Config(format!("{}: {e}", path.display())))
}

/// The pending key, opened on its token; `None` (with a warning) when the token cannot be opened or its key by
/// that label is another one. The marker's public key still decides what a finishing open does.
pub(super) fn open(pending: &PendingToken) -> Option<LedgerSigner> {
    match open_token(&pending.signer, false) {
        Ok(key) if key.public_key_hex() == pending.public_key => Some(key),
        Ok(key) => {
            tracing::warn!(
                found = %key.public_key_hex(),
                expected = %pending.public_key,
                "{} is not the key a pending signer rotation generated; it is not offered to the ledger",
                pending.place()
            );
            None
        }
        Err(error) => {
            tracing::warn!(
                %error,
                "{} (a pending signer rotation's new key) cannot be opened; it is not offered to the ledger",
                pending.place()
            );
            None
        }
    }
}

/// The new key on the token `signer` names (generated there unless the token holds one by that label already,
/// which is what a retry after a crash before the commit finds), proven to sign, and the marker written durably.
/// Refuses a key that is, or ever was, this ledger's signer.
pub(super) fn prepare(
    dir: &DataDir,
    ledger: &Ledger,
    signer: &SignerConfig,
) -> LedgerResult<LedgerSigner> {
    if !signer.is_pkcs11() {
        return Err(LedgerError::Config(
            "a rotation onto a token needs a [signer] of kind = \"pkcs11\"".into(),
        ));
    }
    signer.validate().map_err(LedgerError::Config)?;
    let key = open_token(signer, true)?;
    let marker = PendingToken {
        public_key: key.public_key_hex(),
        signer: signer.clone(),
    };
    if ledger.signer_public_hex() == marker.public_key {
        return Err(LedgerError::Config(format!(
            "{} is the ledger's current signer: name a new key (another --key-label)",
            marker.place()
        )));
    }
    if let Some(used) = ledger
        .signers()
        .entries()
        .iter()
        .find(|entry| entry.key == key.public_key())
    {
        return Err(LedgerError::Config(format!(
            "{} was this ledger's signer {} from seq {}: a retired key is not taken back; name a new key",
            marker.place(),
            used.id,
            used.from_seq
        )));
    }
    key.sign_message(b"keyledger signer rotation probe")
        .map_err(|e| LedgerError::Config(format!("{} does not sign: {e}", marker.place())))?;
    let text = toml::to_string(&marker).map_err(|e| LedgerError::Config(e.to_string()))?;
    replace_file(&marker_path(dir), text.as_bytes(), 0o600)?;
    Ok(key)
}

/// Removes the marker (and a temporary one a crash left), making the removal durable.
pub(super) fn remove(dir: &DataDir) -> LedgerResult<()> {
    let path = marker_path(dir);
    for file in [path.clone(), path.with_file_name(format!("{MARKER}.tmp"))] {
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LedgerError::io(format!("removing {}", file.display()), e)),
        }
    }
    sync_dir(dir.root())
}
