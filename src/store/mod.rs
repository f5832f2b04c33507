//! Storage of the log behind a narrow trait: append a batch atomically and durably, read by seq, time and key.
//!
//! The writer's chain logic never sees the backend; [`SledStore`] is the embedded default and a replicated
//! database can implement [`LogStore`] later (DESIGN.md §9). Every call maps to a primary-key lookup or range scan.

pub mod archived;
pub mod copy;
pub mod personal_side;
mod pg;
mod read_ahead;
mod record;
pub mod salvage;
pub mod side_keys;
mod sled_bytes;
mod sled_cache;
mod sled_columns;
mod sled_files;
mod sled_journal;
mod sled_journal_refs;
mod sled_keys;
mod sled_legacy;
mod sled_open;
mod sled_postings;
mod sled_prune;
mod sled_read;
mod sled_segment_files;
mod sled_segments;
mod sled_side;
mod sled_store;
mod sled_tamper;
#[cfg(test)]
mod sled_test_records;
mod sled_tile_files;
mod sled_units;
mod sled_write;

pub use archived::{archived_prefix, archived_size, ArchivedPrefix, PREFIX_KEY};
pub use pg::{PgRole, PgStore};
pub use read_ahead::{link_before, with_read_ahead, Chunk};
pub use record::{RecordDecodeError, StoredRecord};
pub use sled_store::{SledStore, BLOCK_EVENTS};

use crate::chain::Hash32;
use crate::time::LedgerTime;
use std::path::PathBuf;
use uuid::Uuid;

/// `[storage]` in keyledger.toml: how the embedded store reads.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Decoded blocks kept in memory for reads (a key's history, proofs, as-of replays), in MiB; 1..=65536.
    pub block_cache_mib: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            block_cache_mib: 64,
        }
    }
}

impl StorageConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=65_536).contains(&self.block_cache_mib) {
            return Err(format!(
                "storage.block_cache_mib = {} is outside 1..=65536",
                self.block_cache_mib
            ));
        }
        Ok(())
    }
}

/// The newest event: what the next one chains from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash32,
    pub time: LedgerTime,
}

/// Sparse time index stride: an entry for the first event of a batch and every this-many events after.
pub const TIME_INDEX_STRIDE: usize = 64;

/// Everything one group commit writes: records, their index entries, the new head and derived side entries.
#[derive(Debug, Default)]
pub struct AppendBatch {
    pub records: Vec<StoredRecord>,
    /// `(key id, seq)` for every key an event concerns.
    pub key_index: Vec<(Uuid, u64)>,
    /// Sparse time index: `(time, seq)` for the first event of a batch and every 64th after it.
    pub time_index: Vec<(LedgerTime, u64)>,
    /// Seqs of lifecycle events (every type but `key.used`): what "as of" replays.
    pub lifecycle_index: Vec<u64>,
    /// `(attribute digest, seq)`: ip, request id, type and actor of every event (event::attributes).
    pub attribute_index: Vec<([u8; 16], u64)>,
    /// Derived data written in the same atomic step (Merkle nodes, checkpoints, signer registry).
    pub side: Vec<(Vec<u8>, Vec<u8>)>,
    /// Side entries removed in the same atomic step (a superseded checkpoint).
    pub side_removals: Vec<Vec<u8>>,
}

impl AppendBatch {
    /// Files `event`, the batch's `position`-th, in every index: its keys, lifecycle and attributes, and the
    /// sparse time index for the first event of a batch and every [`TIME_INDEX_STRIDE`]-th after it.
    pub fn index_event(&mut self, event: &crate::event::Event, position: usize) {
        if position % TIME_INDEX_STRIDE == 0 {
            self.time_index.push((event.time, event.seq));
        }
        for key in event.key_ids().into_iter().flatten() {
            self.key_index.push((key, event.seq));
        }
        if event.data.is_lifecycle() {
            self.lifecycle_index.push(event.seq);
        }
        for digest in event.attribute_digests() {
            self.attribute_index.push((digest, event.seq));
        }
    }

    /// Whether the batch writes anything at all.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.side.is_empty()
            && self.side_removals.is_empty()
            && self.attribute_index.is_empty()
    }
}

/// Side entry present once the attribute index covers the whole log (new ledgers from their first event; older
/// ones after the backfill at open). Without it, attribute filters scan and verification skips that index.
pub const ATTRIBUTE_INDEX_MARKER: &[u8] = b"index/attributes-v1";

/// Whether the attribute index covers the whole log.
pub fn has_attribute_index(store: &dyn LogStore) -> StoreResult<bool> {
    Ok(store.get_side(ATTRIBUTE_INDEX_MARKER)?.is_some())
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "data directory {0} is in use by another keyledger process (a running `keyledger serve`?): stop it, or \
         ask the running server through its HTTP API (docs/API.md)"
    )]
    InUse(PathBuf),
    #[error("storage error: {0}")]
    Backend(String),
    #[error(transparent)]
    Record(#[from] RecordDecodeError),
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("batch must start at seq {expected}, not {found}")]
    OutOfOrder { expected: u64, found: u64 },
    #[error("this store was opened read-only (a follower): it cannot write")]
    ReadOnly,
    #[error(
        "the log in {0} was written by keyledger before blocks (one sled item per event): it opens read-only; run \
         `keyledger store migrate` to rewrite it in the block layout (docs/OPERATIONS.md)"
    )]
    LegacyLayout(PathBuf),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A boxed iterator over store items.
pub type StoreIter<'a, T> = Box<dyn Iterator<Item = StoreResult<T>> + Send + 'a>;

/// The narrow storage interface the ledger needs.
pub trait LogStore: Send + Sync + 'static {
    /// Writes the batch atomically (all or nothing). It need not be durable until [`LogStore::sync`] returns.
    fn write_batch(&self, batch: &AppendBatch) -> StoreResult<()>;
    /// Makes every batch written so far durable.
    fn sync(&self) -> StoreResult<()>;
    /// Whether a writer may open the store (a log in a layout this version only reads may not).
    fn check_writable(&self) -> StoreResult<()> {
        Ok(())
    }
    /// The most events between two time-index entries: a larger gap means an entry was removed.
    fn time_index_stride(&self) -> u64 {
        TIME_INDEX_STRIDE as u64
    }
    /// Writes the batch atomically and returns once it is durable.
    fn append(&self, batch: &AppendBatch) -> StoreResult<()> {
        self.write_batch(batch)?;
        self.sync()
    }
    /// The stored head, or `None` for an empty log.
    fn head(&self) -> StoreResult<Option<Head>>;
    /// The record with the highest seq, whatever the head says.
    fn last_record(&self) -> StoreResult<Option<StoredRecord>>;
    fn get(&self, seq: u64) -> StoreResult<Option<StoredRecord>>;
    /// Records with `from <= seq < to`, in seq order.
    fn scan(&self, from: u64, to: u64) -> StoreIter<'_, StoredRecord>;
    /// The first seq whose time is `>= time` (head + 1 when there is none).
    fn first_seq_at_or_after(&self, time: LedgerTime) -> StoreResult<u64>;
    /// Seqs of events concerning `key`, with `from <= seq < to`, ascending.
    fn key_seqs(&self, key: Uuid, from: u64, to: u64) -> StoreIter<'_, u64>;
    /// [`LogStore::key_seqs`] newest first (e.g. to find a key's last use without reading its history).
    fn key_seqs_rev(&self, key: Uuid, from: u64, to: u64) -> StoreIter<'_, u64>;
    /// Every key index entry, in no particular order (the embedded store lists them block by block).
    fn key_index(&self) -> StoreIter<'_, (Uuid, u64)>;
    /// Seqs of lifecycle events (every type but `key.used`) with `from <= seq < to`, ascending.
    fn lifecycle_seqs(&self, from: u64, to: u64) -> StoreIter<'_, u64>;
    /// Every time index entry, ordered by time then seq.
    fn time_index(&self) -> StoreIter<'_, (LedgerTime, u64)>;
    /// Seqs filed under an attribute digest, `from <= seq < to`, ascending.
    fn attribute_seqs(&self, digest: [u8; 16], from: u64, to: u64) -> StoreIter<'_, u64>;
    /// Every attribute index entry, in no particular order (for verification).
    fn attribute_index(&self) -> StoreIter<'_, ([u8; 16], u64)>;
    fn get_side(&self, key: &[u8]) -> StoreResult<Option<Vec<u8>>>;
    /// Side entries whose key starts with `prefix`, in key order.
    fn scan_side(&self, prefix: &[u8]) -> StoreIter<'_, (Vec<u8>, Vec<u8>)>;
    /// Side entries whose key starts with `prefix` and is `>= from`, in key order (a follower reads only the
    /// checkpoints it has not seen).
    fn scan_side_from(&self, prefix: &[u8], from: &[u8]) -> StoreIter<'_, (Vec<u8>, Vec<u8>)> {
        let from = from.to_vec();
        Box::new(
            self.scan_side(prefix)
                .filter(move |entry| entry.as_ref().map_or(true, |(key, _)| *key >= from)),
        )
    }
    /// Writes derived side entries durably, outside any event batch (e.g. projection snapshots).
    fn put_side(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> StoreResult<()>;
    /// Removes side entries durably, outside any event batch (e.g. expired idempotency records).
    fn remove_side(&self, keys: &[Vec<u8>]) -> StoreResult<()>;
    /// Bytes the store occupies on disk.
    fn size_on_disk(&self) -> StoreResult<u64>;
    /// Archival: removes durably every record with `seq <= through` except the seqs in `keep`, and every index
    /// entry with `seq <= through`. Idempotent (an interrupted call is finished by calling it again). Returns
    /// how many records it removed.
    fn prune_archived(&self, through: u64, keep: &[u64]) -> StoreResult<u64>;
    /// Blocks until the writer may have appended something, or `timeout` passed (followers wait on this between
    /// catch-up reads). Without a change feed this simply sleeps.
    fn wait_for_appends(&self, timeout: std::time::Duration) -> StoreResult<()> {
        std::thread::sleep(timeout);
        Ok(())
    }
    /// Publishes the address clients should send writes to (the writer's `serve --advertise`); followers name it.
    fn advertise_writer(&self, _address: &str) -> StoreResult<()> {
        Ok(())
    }
    /// The address the current writer advertised, if the store keeps one.
    fn advertised_writer(&self) -> StoreResult<Option<String>> {
        Ok(None)
    }
}
