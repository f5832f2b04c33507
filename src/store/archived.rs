//! What the store remembers of events archived out of it (`keyledger audit archive`): the prefix's size, the hash
//! of its last event, the checkpoint covering it and the archive file. The error for a question that reaches into
//! the prefix is [`ArchivedPrefix::reached`], next to the crate's error type.

use super::{LogStore, StoreError, StoreResult};
use crate::time::LedgerTime;
use serde::{Deserialize, Serialize};

/// Side entry describing the archived prefix.
pub const PREFIX_KEY: &[u8] = super::side_keys::ARCHIVE_PREFIX;
/// What the store remembers of the archived events 1..=size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArchivedPrefix {
    pub size: u64,
    /// Hash of event `size`: what event `size + 1` chains from.
    pub last_hash: String,
    pub last_time: LedgerTime,
    /// The signed checkpoint note of the first `size` events.
    pub checkpoint: String,
    /// The archive file as named when it was written, and the SHA-256 of its bytes.
    pub file: String,
    pub file_sha256: String,
    pub archived_at: LedgerTime,
    /// The size of the prefix archived before this one (its file holds events 1..=previous).
    pub previous: u64,
}

/// The archived prefix, if events were archived.
pub fn archived_prefix(store: &dyn LogStore) -> StoreResult<Option<ArchivedPrefix>> {
    match store.get_side(PREFIX_KEY)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            StoreError::Corrupt(format!("the archived prefix record is unreadable: {e}"))
        }),
    }
}

/// The size of the archived prefix (0 when nothing was archived).
pub fn archived_size(store: &dyn LogStore) -> StoreResult<u64> {
    Ok(archived_prefix(store)?.map_or(0, |p| p.size))
}
