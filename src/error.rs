//! The library's error type: what went wrong with a command or with the ledger, with a stable code for each kind.

use crate::canonical::CanonicalError;
use crate::event::EventDecodeError;
use crate::store::{ArchivedPrefix, StoreError};

/// Errors from the ledger and its commands. `code()` is stable and is what the HTTP API and `--json` report.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Bad input: the named field is missing or malformed.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// The command is well-formed but not allowed in the current state (e.g. rotating a revoked key).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The caller may not do this, whatever the state (e.g. grant a scope it does not hold).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing key could not sign (a PKCS#11 token that is gone or refuses): nothing was recorded.
    #[error(transparent)]
    Sign(#[from] crate::chain::SignError),
    #[error("event could not be encoded: {0}")]
    Encode(#[from] CanonicalError),
    #[error("event {seq} could not be decoded: {source}")]
    Decode {
        seq: u64,
        #[source]
        source: EventDecodeError,
    },
    /// The log on disk does not verify; the ledger refuses to append to it.
    #[error("log does not verify at seq {seq}: {problem}")]
    Corrupt { seq: u64, problem: String },
    /// The data directory's log is not the ledger its metadata pins (missing, empty, foreign or replaced).
    #[error("the ledger does not match its pinned identity: {0}")]
    PinMismatch(String),
    /// The batch could not be made durable; nothing of it was acknowledged.
    #[error("write failed, nothing was recorded: {0}")]
    WriteFailed(String),
    #[error("the ledger's writer has stopped")]
    WriterStopped,
    /// A write asked of a read-only follower (`serve --follower`); `leader` is the writer's advertised address.
    #[error("this keyledger follows the log read-only; send writes to the leader{}", leader.as_deref().map_or(" (none is advertised yet)".to_string(), |l| format!(" at {l}")))]
    ReadOnly { leader: Option<String> },
    #[error("{0}")]
    Config(String),
    /// A question about events that were archived out of the live store (`keyledger audit archive`).
    #[error("{message}")]
    Archived { through: u64, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl LedgerError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        LedgerError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        LedgerError::NotFound { what: what.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        LedgerError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LedgerError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the error says the stored log cannot be trusted (as opposed to bad input or a busy directory).
    pub fn is_integrity_failure(&self) -> bool {
        self.code() == "log_corrupt"
    }

    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::Invalid { .. } => "invalid_request",
            LedgerError::NotFound { .. } => "not_found",
            LedgerError::Conflict { code, .. } | LedgerError::Forbidden { code, .. } => code,
            LedgerError::Store(StoreError::InUse(_)) => "data_dir_in_use",
            LedgerError::Store(StoreError::LegacyLayout(_)) => "legacy_layout",
            LedgerError::Decode { .. }
            | LedgerError::Corrupt { .. }
            | LedgerError::PinMismatch(_)
            | LedgerError::Store(StoreError::Corrupt(_) | StoreError::Record(_)) => "log_corrupt",
            LedgerError::ReadOnly { .. } | LedgerError::Store(StoreError::ReadOnly) => {
                "read_only_follower"
            }
            LedgerError::Store(_) => "storage_error",
            LedgerError::Encode(_) => "encode_error",
            LedgerError::WriteFailed(_) => "write_failed",
            LedgerError::Sign(_) => "signer_unavailable",
            LedgerError::WriterStopped => "unavailable",
            LedgerError::Config(_) => "config_error",
            LedgerError::Archived { .. } => "archived",
            LedgerError::Io { .. } => "io_error",
        }
    }
}

pub type LedgerResult<T> = Result<T, LedgerError>;

/// Defined here rather than in `store::archived`: the store answers in its own errors, below this type.
impl ArchivedPrefix {
    /// The error for a question about event `seq` or time `at` inside the prefix.
    pub fn reached(&self, what: String) -> LedgerError {
        LedgerError::Archived {
            through: self.size,
            message: format!(
                "{what} reaches into the archived events 1..={} (older than {}): they are in {} (sha256 {}); \
                 check them with `keyledger audit verify-export {}`",
                self.size, self.last_time, self.file, self.file_sha256, self.file
            ),
        }
    }
}
