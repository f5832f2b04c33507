//! An independent monitor of a served ledger (`keyledger monitor`): it follows the ledger's signed checkpoints and
//! C2SP tlog-tiles entry bundles, recomputes the Merkle root from the right edge it verified last plus the new
//! entries, and reports a checkpoint that does not verify, a tree that shrank (a cut) or one whose history differs
//! from what it verified (a fork). It needs only `ledger:audit`, keeps its own state (`state`) and can send each
//! finding as a signed alert (`alert`). Fetching is behind [`Source`], so this module holds no HTTP client of the
//! ledger's API; `cli::monitor_cmd` provides one.

pub mod alert;
pub mod frontier;
mod poll;
pub mod state;

pub use poll::{poll, Outcome};

use crate::audit::cosignature::{NamedKey, NOTE_ED25519};
use crate::chain::parse_public_key_hex;
use ed25519_dalek::VerifyingKey;
use std::fmt;
use std::path::PathBuf;

/// Entries per bundle (c2sp.org/tlog-tiles).
pub const BUNDLE_WIDTH: u64 = 256;

/// Where a monitor reads a ledger from.
pub trait Source {
    /// The newest signed checkpoint note.
    fn checkpoint(&mut self) -> Result<String, MonitorError>;
    /// Entry bundle `index` holding `width` entries (256: a full bundle; fewer: the partial `.p/<width>`).
    fn entries(&mut self, index: u64, width: u64) -> Result<Vec<u8>, MonitorError>;
}

/// Why a poll could not be completed (as opposed to a [`Finding`] about the ledger).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The ledger did not answer, answered with a server error or with something that is not what was asked
    /// for: tried again at the next poll.
    #[error("could not reach the ledger: {0}")]
    Unreachable(String),
    /// The ledger refused the monitor (its key, its scope): trying again will not help.
    #[error("the ledger refused the monitor: {0}")]
    Refused(String),
    #[error("monitor state {path}: {message}")]
    State { path: PathBuf, message: String },
    /// The state follows another ledger than the one now answering.
    #[error("{0}")]
    OtherLedger(String),
}

impl MonitorError {
    /// Whether the next poll may succeed where this one failed.
    pub fn is_transient(&self) -> bool {
        matches!(self, MonitorError::Unreachable(_))
    }
}

/// What a monitor found wrong with the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// At `size`, the ledger's tree differs from the one the monitor verified (or from the entries it serves).
    Fork { size: u64, detail: String },
    /// The ledger's checkpoint is smaller than the one the monitor verified.
    Cut { verified: u64, size: u64 },
    /// The checkpoint is not signed by the ledger's key.
    BadSignature { detail: String },
}

impl Finding {
    /// The alert kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Fork { .. } => "monitor.fork",
            Finding::Cut { .. } => "monitor.cut",
            Finding::BadSignature { .. } => "monitor.bad_signature",
        }
    }

    /// The size the finding is about.
    pub fn size(&self) -> Option<u64> {
        match self {
            Finding::Fork { size, .. } | Finding::Cut { size, .. } => Some(*size),
            Finding::BadSignature { .. } => None,
        }
    }
}

/// `monitor: FORK at size N: …`, the line printed on stderr and the alert's summary.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Fork { size, detail } => write!(f, "monitor: FORK at size {size}: {detail}"),
            Finding::Cut { verified, size } => write!(
                f,
                "monitor: CUT at size {size}: the ledger's checkpoint is smaller than the size {verified} this \
                 monitor verified before"
            ),
            Finding::BadSignature { detail } => write!(f, "monitor: BAD SIGNATURE: {detail}"),
        }
    }
}

/// The ledger's checkpoint key as `--public-key` gives it.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    pub key: VerifyingKey,
    /// The origin a verifier key names; with bare hex, the origin is read from the note.
    pub origin: Option<String>,
}

impl TrustedKey {
    /// 64 hex digits of the Ed25519 public key, or a C2SP verifier key `<origin>+<key id>+<base64 key>`.
    pub fn parse(text: &str) -> Result<TrustedKey, String> {
        let text = text.trim();
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let key = parse_public_key_hex(text).map_err(|e| e.to_string())?;
            return Ok(TrustedKey { key, origin: None });
        }
        let named = NamedKey::parse_vkey(text, NOTE_ED25519).map_err(|e| {
            format!("{e}: give 64 hex digits (signing.pub) or the checkpoint verifier key")
        })?;
        Ok(TrustedKey {
            key: named.key,
            origin: Some(named.name),
        })
    }
}
