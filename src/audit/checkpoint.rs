//! Checkpoints: signed statements of (tree size, Merkle root) in the C2SP `tlog-checkpoint` signed-note format,
//! so transparency-log tooling and witnesses can read them; kept as a series in the store.
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root>\n\n— <origin> <base64(key id ‖ Ed25519 signature)>\n
//! ```
//! The signature covers the note text (the first three lines, newline included); the key id is the first four
//! bytes of SHA-256(origin ‖ "\n" ‖ 0x01 ‖ public key).

use crate::chain::{Hash32, LedgerSigner};
use crate::error::{LedgerError, LedgerResult};
use crate::store::LogStore;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// Write a checkpoint whenever the tree reaches a multiple of this size.
pub const CHECKPOINT_EVERY: u64 = 1024;
const CHECKPOINT_PREFIX: &[u8] = crate::store::side_keys::CHECKPOINTS;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash32,
}

/// Why a note is not a valid checkpoint.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("not a checkpoint note: {0}")]
    Malformed(&'static str),
    #[error("no signature by the expected key ({0})")]
    NoSignature(String),
    #[error("the checkpoint signature does not verify")]
    BadSignature,
}

/// The C2SP note key id of an Ed25519 key named `name`.
pub fn note_key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n\x01");
    hasher.update(public.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The C2SP verifier key string: `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
pub fn verifier_key(name: &str, public: &VerifyingKey) -> String {
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(public.as_bytes());
    format!(
        "{name}+{}+{}",
        hex::encode(note_key_id(name, public)),
        B64.encode(bytes)
    )
}

impl Checkpoint {
    /// The signed text: origin, size and root, one per line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// The whole signed note.
    pub fn sign(&self, signer: &LedgerSigner) -> Result<String, crate::chain::SignError> {
        let body = self.body();
        let signature = signer.sign_message(body.as_bytes())?;
        let mut blob = note_key_id(&self.origin, &signer.public_key()).to_vec();
        blob.extend_from_slice(&signature);
        Ok(format!(
            "{body}\n\u{2014} {} {}\n",
            self.origin,
            B64.encode(blob)
        ))
    }

    /// Parses a note without checking its signature: its checkpoint, the signed text and the signature lines.
    pub fn parse_note(note: &str) -> Result<(Checkpoint, String, &str), CheckpointError> {
        let (body, signatures) = note.split_once("\n\n").ok_or(CheckpointError::Malformed(
            "no blank line before the signatures",
        ))?;
        let body = format!("{body}\n");
        let mut lines = body.lines();
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(CheckpointError::Malformed("no origin line"))?
            .to_string();
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or(CheckpointError::Malformed("no tree size"))?;
        let root: Hash32 = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or(CheckpointError::Malformed("no base64 root hash"))?;
        if lines.next().is_some() {
            return Err(CheckpointError::Malformed(
                "more than three lines before the signatures",
            ));
        }
        let checkpoint = Checkpoint { origin, size, root };
        Ok((checkpoint, body, signatures))
    }

    /// Parses a note and checks its signature by `public`: of its signature lines, the one named by the origin
    /// with the key id of `public` (others, e.g. witnesses' cosignatures, are ignored).
    pub fn verify_note(note: &str, public: &VerifyingKey) -> Result<Checkpoint, CheckpointError> {
        let (checkpoint, body, signatures) = Self::parse_note(note)?;
        let origin = &checkpoint.origin;
        let want = note_key_id(origin, public);
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                continue;
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                continue;
            };
            let Ok(blob) = B64.decode(blob) else { continue };
            if name != origin.as_str() || blob.len() != 68 || blob[..4] != want {
                continue;
            }
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&blob[4..]);
            return public
                .verify_strict(body.as_bytes(), &Signature::from_bytes(&signature))
                .map(|_| checkpoint)
                .map_err(|_| CheckpointError::BadSignature);
        }
        Err(CheckpointError::NoSignature(hex::encode(want)))
    }
}

/// Side-entry key of the stored checkpoint for `size`.
pub fn checkpoint_key(size: u64) -> Vec<u8> {
    let mut key = CHECKPOINT_PREFIX.to_vec();
    key.extend_from_slice(&size.to_be_bytes());
    key
}

/// Every stored checkpoint note, oldest first, with its size.
pub fn stored_checkpoints(store: &dyn LogStore) -> LedgerResult<Vec<(u64, String)>> {
    stored_checkpoints_from(store, 0)
}

/// The stored checkpoint notes of `size >= from` events, oldest first, with their sizes.
pub fn stored_checkpoints_from(
    store: &dyn LogStore,
    from: u64,
) -> LedgerResult<Vec<(u64, String)>> {
    let mut out = Vec::new();
    let mut start = CHECKPOINT_PREFIX.to_vec();
    start.extend_from_slice(&from.to_be_bytes());
    for entry in store.scan_side_from(CHECKPOINT_PREFIX, &start) {
        let (key, value) = entry?;
        let size = key
            .get(CHECKPOINT_PREFIX.len()..)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes);
        let size = size.ok_or_else(|| LedgerError::Corrupt {
            seq: 0,
            problem: "malformed checkpoint key".into(),
        })?;
        out.push((size, String::from_utf8_lossy(&value).into_owned()));
    }
    Ok(out)
}
