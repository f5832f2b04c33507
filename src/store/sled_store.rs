//! The embedded sled backend: three trees beside segment and tile files, one atomic write plus `flush` per group
//! commit.
//!
//! A group commit is one `apply_batch` on the `log` tree, or one transaction over the trees it touches. Events are
//! not one item each: a group commit adds one tail chunk, and once the tail holds [`BLOCK_EVENTS`] events they are
//! sealed into a zstd block with its postings, appended to a segment file (docs/FORMAT.md §4). `log`: `L` → layout
//! version, `h` → head, `s‖name` → side entries, `T‖first seq` → tail chunk. `blocks`: `B‖block` / `P‖block` →
//! where a block and its postings lie, `t‖time‖first seq` → ∅ (the time directory, one entry per block), `D‖id` →
//! a dictionary, `d` → the id new blocks use, `E` → the segments' committed end. `bulk`: large side entries
//! (sled_side.rs). Full Merkle tiles are in tile files (sled_tile_files.rs).

use super::sled_keys::{backend, be_u64, decode_head, time_entry, HEAD, TAIL, TIME};
use super::sled_legacy::Legacy;
use super::sled_units::{
    attribute_term, key_term, split_tail, term_attribute, term_key, LIFECYCLE_TERM,
};
use super::{AppendBatch, Head, LogStore, StoreError, StoreIter, StoreResult, StoredRecord};
use crate::time::LedgerTime;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use uuid::Uuid;

pub use super::sled_units::BLOCK_EVENTS;

/// The sled-backed log store.
pub struct SledStore {
    pub(super) db: sled::Db,
    /// The head, tail chunks and side entries: small values updated by every group commit.
    pub(super) tree: sled::Tree,
    /// Sealed blocks, their postings, the time directory and dictionaries: large values written once. Kept apart
    /// so that sled never rewrites a block with the hot entries of its node (measured in docs/PERFORMANCE.md).
    pub(super) blocks: sled::Tree,
    /// Large side entries written now and then (sled_side.rs).
    pub(super) bulk: sled::Tree,
    pub(super) dir: PathBuf,
    /// Written by keyledger before blocks: readable, not writable (`store migrate`).
    pub(super) legacy: bool,
    /// The first seq not in a sealed block.
    pub(super) tail_from: AtomicU64,
    /// One writer at a time: a group commit, a prune or a tamper rewrites units it read.
    pub(super) write_lock: Mutex<()>,
    pub(super) cache: super::sled_cache::BlockCache,
    pub(super) segments: super::sled_segment_files::Segments,
    /// The tail chunks, beside sled (sled_journal.rs).
    pub(super) journal: super::sled_segment_files::Segments,
    /// Full Merkle tiles, beside sled.
    pub(super) tile_files: super::sled_tile_files::TileFiles,
}

impl SledStore {
    /// Whether the log was written by keyledger before blocks: it reads, but writes are refused until
    /// `keyledger store migrate` rewrites it.
    pub fn is_legacy_layout(&self) -> bool {
        self.legacy
    }

    /// Sled items in the log's tree (what sled keeps per-item state for; docs/PERFORMANCE.md counts them).
    pub fn item_count(&self) -> usize {
        if self.legacy {
            return self.tree.len();
        }
        self.tree.len() + self.blocks.len() + self.bulk.len()
    }

    /// Bytes of the live keys and values (what the log holds, before sled's own overhead and dead versions).
    pub fn live_bytes(&self) -> u64 {
        let trees: &[&sled::Tree] = if self.legacy {
            &[&self.tree]
        } else {
            &[&self.tree, &self.blocks, &self.bulk]
        };
        trees
            .iter()
            .flat_map(|tree| tree.iter())
            .filter_map(Result::ok)
            .map(|(key, value)| (key.len() + value.len()) as u64)
            .sum::<u64>()
            + self.segment_live_bytes()
            + self.tile_files.bytes_on_disk()
    }

    fn legacy_reader(&self) -> Option<Legacy<'_>> {
        self.legacy.then_some(Legacy(&self.tree))
    }

    fn refuse_legacy(&self) -> StoreResult<()> {
        if self.legacy {
            return Err(StoreError::LegacyLayout(self.dir.clone()));
        }
        Ok(())
    }

    pub(super) fn apply(&self, writes: sled::Batch) -> StoreResult<()> {
        self.tree.apply_batch(writes).map_err(backend)
    }

    pub(super) fn apply_cold(&self, writes: sled::Batch) -> StoreResult<()> {
        self.blocks.apply_batch(writes).map_err(backend)
    }

    /// Applies the batches atomically (one sled transaction over the trees that have one), or `log` alone.
    pub(super) fn apply_group(
        &self,
        log: sled::Batch,
        cold: Option<sled::Batch>,
        bulk: Option<sled::Batch>,
    ) -> StoreResult<()> {
        use sled::Transactional;
        if cold.is_none() && bulk.is_none() {
            return self.apply(log);
        }
        (&self.tree, &self.blocks, &self.bulk)
            .transaction(|(tree, blocks, bulk_tree)| {
                tree.apply_batch(&log)?;
                if let Some(cold) = &cold {
                    blocks.apply_batch(cold)?;
                }
                if let Some(bulk) = &bulk {
                    bulk_tree.apply_batch(bulk)?;
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| match e {
                sled::transaction::TransactionError::Storage(err) => backend(err),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Backend("a group commit's transaction was aborted".into())
                }
            })
    }

    pub(super) fn flush_all(&self) -> StoreResult<()> {
        self.db.flush().map_err(backend).map(|_| ())
    }
}

impl LogStore for SledStore {
    fn write_batch(&self, batch: &AppendBatch) -> StoreResult<()> {
        self.refuse_legacy()?;
        self.write_blocks(batch)
    }

    fn check_writable(&self) -> StoreResult<()> {
        self.refuse_legacy()
    }

    fn sync(&self) -> StoreResult<()> {
        self.flush_all()
    }

    fn head(&self) -> StoreResult<Option<Head>> {
        self.tree
            .get(HEAD)
            .map_err(backend)?
            .map(|bytes| decode_head(&bytes))
            .transpose()
    }

    fn last_record(&self) -> StoreResult<Option<StoredRecord>> {
        match self.legacy_reader() {
            Some(legacy) => legacy.last_record(),
            None => self.last_stored_record(),
        }
    }

    fn get(&self, seq: u64) -> StoreResult<Option<StoredRecord>> {
        match self.legacy_reader() {
            Some(legacy) => legacy.get(seq),
            None => self.record_at(seq),
        }
    }

    fn scan(&self, from: u64, to: u64) -> StoreIter<'_, StoredRecord> {
        if from >= to {
            return Box::new(std::iter::empty());
        }
        match self.legacy_reader() {
            Some(legacy) => legacy.scan(from, to),
            None => self.scan_units(from, to),
        }
    }

    fn first_seq_at_or_after(&self, time: LedgerTime) -> StoreResult<u64> {
        let end = self.head()?.map_or(1, |head| head.seq + 1);
        let found = match self.legacy_reader() {
            Some(legacy) => legacy.first_seq_at_or_after(legacy.time_seek_start(time)?, time)?,
            None => self.seek_time(time)?,
        };
        Ok(found.unwrap_or(end))
    }

    fn key_seqs(&self, key: Uuid, from: u64, to: u64) -> StoreIter<'_, u64> {
        match self.legacy_reader() {
            Some(legacy) => legacy.key_seqs(key, from, to, false),
            None => self.postings(key_term(&key), from, to, false),
        }
    }

    fn key_seqs_rev(&self, key: Uuid, from: u64, to: u64) -> StoreIter<'_, u64> {
        match self.legacy_reader() {
            Some(legacy) => legacy.key_seqs(key, from, to, true),
            None => self.postings(key_term(&key), from, to, true),
        }
    }

    fn lifecycle_seqs(&self, from: u64, to: u64) -> StoreIter<'_, u64> {
        match self.legacy_reader() {
            Some(legacy) => legacy.lifecycle_seqs(from, to),
            None => self.postings(LIFECYCLE_TERM, from, to, false),
        }
    }

    fn key_index(&self) -> StoreIter<'_, (Uuid, u64)> {
        match self.legacy_reader() {
            Some(legacy) => Box::new(
                legacy
                    .id_index(false)
                    .map(|entry| entry.map(|(id, seq)| (Uuid::from_bytes(id), seq))),
            ),
            None => self.every_posting(term_key),
        }
    }

    fn attribute_seqs(&self, digest: [u8; 16], from: u64, to: u64) -> StoreIter<'_, u64> {
        match self.legacy_reader() {
            Some(legacy) => legacy.attribute_seqs(digest, from, to),
            None => self.postings(attribute_term(&digest), from, to, false),
        }
    }

    fn attribute_index(&self) -> StoreIter<'_, ([u8; 16], u64)> {
        match self.legacy_reader() {
            Some(legacy) => legacy.id_index(true),
            None => self.every_posting(term_attribute),
        }
    }

    fn time_index(&self) -> StoreIter<'_, (LedgerTime, u64)> {
        let directory = self
            .blocks
            .scan_prefix([TIME])
            .map(|item| time_entry(&item.map_err(backend)?.0));
        if self.legacy {
            return Box::new(directory);
        }
        // Tail chunks carry their first event's time themselves (a journaled one in its sled value).
        let tails = self.tree.scan_prefix([TAIL]).map(|item| {
            let (key, value) = item.map_err(backend)?;
            let seq = be_u64(&key[1..])?;
            if let Some(time) = super::sled_journal_refs::ref_time(&value) {
                return Ok((time, seq));
            }
            let (time, _, _) = split_tail(&value, &format!("the tail chunk at event {seq}"))?;
            Ok((time, seq))
        });
        Box::new(directory.chain(tails))
    }

    fn time_index_stride(&self) -> u64 {
        if self.legacy {
            super::TIME_INDEX_STRIDE as u64
        } else {
            BLOCK_EVENTS
        }
    }

    fn get_side(&self, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        self.side_get(key)
    }

    fn scan_side(&self, prefix: &[u8]) -> StoreIter<'_, (Vec<u8>, Vec<u8>)> {
        self.side_scan(prefix, prefix)
    }

    fn scan_side_from(&self, prefix: &[u8], from: &[u8]) -> StoreIter<'_, (Vec<u8>, Vec<u8>)> {
        self.side_scan(prefix, from)
    }

    fn put_side(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> StoreResult<()> {
        self.side_write(entries, &[])
    }

    fn remove_side(&self, keys: &[Vec<u8>]) -> StoreResult<()> {
        self.side_write(&[], keys)
    }

    fn size_on_disk(&self) -> StoreResult<u64> {
        Ok(self.db.size_on_disk().map_err(backend)?
            + self.segments.bytes_on_disk()
            + self.journal_bytes_on_disk()
            + self.tile_files.bytes_on_disk())
    }

    fn prune_archived(&self, through: u64, keep: &[u64]) -> StoreResult<u64> {
        self.refuse_legacy()?;
        self.prune(through, keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_keys::{time_bytes, time_from_bytes};

    #[test]
    fn negative_times_sort_before_positive() {
        assert!(time_bytes(LedgerTime::from_micros(-1)) < time_bytes(LedgerTime::from_micros(0)));
        assert_eq!(
            time_from_bytes(time_bytes(LedgerTime::from_micros(-42))).as_micros(),
            -42
        );
    }

    #[test]
    fn second_open_of_a_directory_in_use_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        assert!(matches!(
            SledStore::open(dir.path()),
            Err(StoreError::InUse(_))
        ));
    }
}
