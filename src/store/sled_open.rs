//! Opening the embedded store: sled's configuration, the lock of a directory another process holds, damage
//! that makes sled panic, and which layout the log is in (a log from before blocks opens read-only).

use super::sled_keys::{
    backend, LAYOUT, LAYOUT_BLOCKS, LAYOUT_CURRENT, LAYOUT_SEGMENTS, LAYOUT_TILE_FILES, SEGMENT_END,
};
use super::sled_store::SledStore;
use super::{sled_legacy, sled_segment_files, sled_segments, StoreError, StoreResult};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

impl SledStore {
    /// Opens (or creates) the store in `dir`. A directory held by another process gives [`StoreError::InUse`].
    /// A log in the first layout opens read-only ([`SledStore::is_legacy_layout`]).
    pub fn open(dir: &Path) -> StoreResult<Self> {
        Self::open_with_cache(dir, super::StorageConfig::default())
    }

    /// [`SledStore::open`] with `[storage]`'s block cache size.
    pub fn open_with_cache(dir: &Path, storage: super::StorageConfig) -> StoreResult<Self> {
        let cache_bytes = storage.block_cache_mib.saturating_mul(1024 * 1024) as usize;
        // sled's background threads can hold the lock for a moment after the previous handle in this or another
        // process closed; wait up to a second before calling the directory busy.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            match Self::open_once(dir, cache_bytes) {
                Err(StoreError::InUse(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                result => return result,
            }
        }
    }

    /// Opens sled files copied from a damaged log, reading that log's segments in `segments` without writing
    /// them (`store salvage`).
    pub(super) fn open_for_salvage(dir: &Path, segments: &Path) -> StoreResult<Self> {
        let cache_bytes = super::StorageConfig::default().block_cache_mib as usize * 1024 * 1024;
        Self::open_guarded(dir, cache_bytes, Some(segments))
    }

    fn open_once(dir: &Path, cache_bytes: usize) -> StoreResult<Self> {
        Self::open_guarded(dir, cache_bytes, None)
    }

    fn open_guarded(dir: &Path, cache_bytes: usize, segments: Option<&Path>) -> StoreResult<Self> {
        // sled panics on some damaged files (e.g. "tried to serialize Uninitialized" after a truncation); that is
        // corruption to report, not a crash. The default hook would print the panic, so it is silenced meanwhile.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let opened = std::panic::catch_unwind(|| Self::open_unguarded(dir, cache_bytes, segments));
        std::panic::set_hook(hook);
        opened.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StoreError::Corrupt(format!(
                "the store's files are damaged and cannot be opened ({what})"
            )))
        })
    }

    fn open_unguarded(
        dir: &Path,
        cache_bytes: usize,
        salvaged_segments: Option<&Path>,
    ) -> StoreResult<Self> {
        let db = sled::Config::new()
            .path(dir)
            // sled's page cache is most of a server's memory; 128 MiB keeps a serving ledger with 100,000 keys
            // under the 512 MiB target (docs/PERFORMANCE.md) while the recent pages of every index stay cached.
            .cache_capacity(128 * 1024 * 1024)
            // We flush after every batch ourselves; a background flush would only add fsyncs.
            .flush_every_ms(None)
            .open()
            .map_err(|err| match err {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock || is_lock_error(&io) =>
                {
                    StoreError::InUse(dir.to_path_buf())
                }
                other => backend(other),
            })?;
        let tree = db.open_tree("log").map_err(backend)?;
        let legacy = match tree.get(LAYOUT).map_err(backend)? {
            Some(version) if version.as_ref() == [LAYOUT_CURRENT] => false,
            // Layout 2 differs in blocks kept inline in sled, layout 3 in full tiles and large side entries kept in
            // the `log` tree, layout 4 in tail chunks kept inline in sled; this version reads all three. New writes go where this layout puts them, and the label
            // says so before any does (an older keyledger then refuses the log).
            Some(version)
                if [LAYOUT_BLOCKS, LAYOUT_SEGMENTS, LAYOUT_TILE_FILES].contains(&version[0])
                    && version.len() == 1 =>
            {
                tree.insert(LAYOUT, &[LAYOUT_CURRENT]).map_err(backend)?;
                db.flush().map_err(backend)?;
                false
            }
            Some(version) => {
                return Err(StoreError::Corrupt(format!(
                    "the log's layout version {version:?} is not one this keyledger reads"
                )))
            }
            None if sled_legacy::is_legacy(&tree)? => true,
            None => {
                tree.insert(LAYOUT, &[LAYOUT_CURRENT]).map_err(backend)?;
                db.flush().map_err(backend)?;
                false
            }
        };
        let (blocks, bulk) = if legacy {
            // The first layout has no blocks; opening a tree would write into a log that opens read-only.
            (tree.clone(), tree.clone())
        } else {
            (
                db.open_tree("blocks").map_err(backend)?,
                db.open_tree("bulk").map_err(backend)?,
            )
        };
        let committed = match blocks.get(SEGMENT_END).map_err(backend)? {
            Some(value) => Some(sled_segments::decode_end(&value)?),
            None => None,
        };
        use sled_segment_files::{Segments, JOURNAL, SEALED};
        let segments = match salvaged_segments {
            Some(path) => Segments::open(path.to_path_buf(), SEALED, committed, false)?,
            None => Segments::open(dir.join("segments"), SEALED, committed, !legacy)?,
        };
        let journaled = match tree
            .get(super::sled_journal::JOURNAL_END)
            .map_err(backend)?
        {
            Some(value) => Some(sled_segments::decode_end(&value)?),
            None => None,
        };
        let journal = Segments::open(
            dir.join("journal"),
            JOURNAL,
            journaled,
            !legacy && salvaged_segments.is_none(),
        )?;
        let store = Self {
            db,
            tree,
            blocks,
            bulk,
            dir: dir.to_path_buf(),
            legacy,
            tail_from: AtomicU64::new(1),
            write_lock: Mutex::new(()),
            cache: super::sled_cache::BlockCache::new(cache_bytes),
            segments,
            journal,
            tile_files: super::sled_tile_files::TileFiles::new(dir.join("tiles")),
        };
        store
            .tail_from
            .store(store.first_unsealed()?, Ordering::Release);
        Ok(store)
    }
}

fn is_lock_error(io: &std::io::Error) -> bool {
    let text = io.to_string();
    text.contains("lock") || text.contains("temporarily unavailable")
}
