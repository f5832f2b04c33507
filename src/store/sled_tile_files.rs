//! Full Merkle tiles in files of their own beside sled: tile N of tile level L at byte 8,192·N of `tiles/L.tiles`.
//!
//! A tile never changes once it holds 256 hashes, and its place in the file follows from its address, so full tiles
//! need neither a sled item nor an index: the tree, which grows with every event, costs sled nothing (in sled,
//! one 8 KiB item per 256 events grew the process by ~50 MiB and the file by ~80 B per event per million written,
//! docs/PERFORMANCE.md). Partial tiles at the tree's right edge stay side entries in sled. A tile is visible only
//! once the log's head covers it, so bytes a crash left between writing a file and committing the batch are never
//! read, and the next commit overwrites them. A removed tile is all zeros (no SHA-256 is).

use super::{StoreError, StoreResult};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Bytes of a full tile: 256 hashes of 32 bytes.
pub(super) const FULL_TILE: usize = 256 * 32;
/// The side-entry prefix of tile keys (`tile/` ‖ L (u8) ‖ N (u64 BE), audit/tiles.rs).
const TILE_PREFIX: &[u8] = super::side_keys::TILES;

/// The tile level and index a side-entry key names, if it is a tile key.
pub(super) fn tile_address(key: &[u8]) -> Option<(u8, u64)> {
    let rest = key.strip_prefix(TILE_PREFIX)?;
    let (&level, index) = rest.split_first()?;
    Some((level, u64::from_be_bytes(index.try_into().ok()?)))
}

pub(super) fn tile_side_key(level: u8, index: u64) -> Vec<u8> {
    let mut key = TILE_PREFIX.to_vec();
    key.push(level);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// Whether side entries under `prefix` (from `from` on) may include tile keys.
pub(super) fn may_hold_tiles(prefix: &[u8]) -> bool {
    TILE_PREFIX.starts_with(prefix) || prefix.starts_with(TILE_PREFIX)
}

/// Whether a log with `leaves` events covers the whole of tile (`level`, `index`).
fn covered(level: u8, index: u64, leaves: u64) -> bool {
    let span = 1u128 << (8 * (u32::from(level) + 1)).min(127);
    (u128::from(index) + 1) * span <= u128::from(leaves)
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |err| StoreError::Backend(format!("{what}: {err}"))
}

/// The tile files of one log.
pub(super) struct TileFiles {
    dir: PathBuf,
    /// Open handles by level, with whether each may write.
    files: RwLock<HashMap<u8, (Arc<File>, bool)>>,
}

impl TileFiles {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            files: RwLock::new(HashMap::new()),
        }
    }

    fn path(&self, level: u8) -> PathBuf {
        self.dir.join(format!("{level}.tiles"))
    }

    fn file(&self, level: u8, create: bool) -> StoreResult<Option<Arc<File>>> {
        if let Some((file, writable)) = self
            .files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&level)
        {
            if *writable || !create {
                return Ok(Some(file.clone()));
            }
        }
        let path = self.path(level);
        let created = create && !path.exists();
        if created {
            std::fs::create_dir_all(&self.dir)
                .map_err(io(format!("creating {}", self.dir.display())))?;
        }
        let opened = OpenOptions::new()
            .read(true)
            .write(create)
            .create(create)
            .truncate(false)
            .open(&path);
        let file = match opened {
            Ok(file) => Arc::new(file),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io(format!("opening {}", path.display()))(err)),
        };
        if created {
            sync_dir(&self.dir)?;
        }
        self.files
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(level, (file.clone(), create));
        Ok(Some(file))
    }

    /// Writes full tiles and zeros for removed ones, then syncs every file written: all of it is on disk before
    /// the sled commit that makes the tiles visible.
    pub(super) fn write(&self, tiles: &[(u8, u64, &[u8])]) -> StoreResult<()> {
        let mut written: HashMap<u8, Arc<File>> = HashMap::new();
        for &(level, index, bytes) in tiles {
            let file = self
                .file(level, true)?
                .ok_or_else(|| StoreError::Backend("a tile file could not be created".into()))?;
            file.write_all_at(bytes, index * FULL_TILE as u64)
                .map_err(io(format!("writing {}", self.path(level).display())))?;
            written.insert(level, file);
        }
        for (level, file) in written {
            file.sync_data()
                .map_err(io(format!("syncing {}", self.path(level).display())))?;
        }
        Ok(())
    }

    /// The full tile at (`level`, `index`) if the file holds it and a log of `leaves` events covers it.
    pub(super) fn read(&self, level: u8, index: u64, leaves: u64) -> StoreResult<Option<Vec<u8>>> {
        if !covered(level, index, leaves) {
            return Ok(None);
        }
        let Some(file) = self.file(level, false)? else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; FULL_TILE];
        match file.read_exact_at(&mut bytes, index * FULL_TILE as u64) {
            Ok(()) if bytes.iter().all(|b| *b == 0) => Ok(None),
            Ok(()) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(err) => Err(StoreError::Corrupt(format!(
                "the Merkle tile at tile level {level}, index {index} cannot be read from {}: {err}",
                self.path(level).display()
            ))),
        }
    }

    /// Every visible tile, in side-entry key order (level, then index), from key `from` on.
    pub(super) fn scan(
        &self,
        leaves: u64,
        from: Vec<u8>,
    ) -> impl Iterator<Item = StoreResult<(Vec<u8>, Vec<u8>)>> + '_ {
        let levels = self.levels();
        levels.into_iter().flat_map(move |level| {
            let count =
                std::fs::metadata(self.path(level)).map_or(0, |m| m.len()) / FULL_TILE as u64;
            let from = from.clone();
            (0..count)
                .filter(move |index| tile_side_key(level, *index) >= from)
                .take_while(move |index| covered(level, *index, leaves))
                .filter_map(move |index| match self.read(level, index, leaves) {
                    Ok(Some(bytes)) => Some(Ok((tile_side_key(level, index), bytes))),
                    Ok(None) => None,
                    Err(err) => Some(Err(err)),
                })
        })
    }

    /// The tile levels that have a file, in order.
    fn levels(&self) -> Vec<u8> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut levels: Vec<u8> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name();
                name.to_str()?.strip_suffix(".tiles")?.parse().ok()
            })
            .collect();
        levels.sort_unstable();
        levels
    }

    pub(super) fn bytes_on_disk(&self) -> u64 {
        self.levels()
            .iter()
            .filter_map(|level| std::fs::metadata(self.path(*level)).ok())
            .map(|meta| meta.len())
            .sum()
    }
}

fn sync_dir(dir: &Path) -> StoreResult<()> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))
}

/// Merges two iterators of side entries sorted by key; where both hold a key, `first`'s entry is kept.
pub(super) fn merge_sorted<'a>(
    first: impl Iterator<Item = StoreResult<(Vec<u8>, Vec<u8>)>> + 'a,
    second: impl Iterator<Item = StoreResult<(Vec<u8>, Vec<u8>)>> + 'a,
) -> impl Iterator<Item = StoreResult<(Vec<u8>, Vec<u8>)>> + 'a {
    let mut first = first.peekable();
    let mut second = second.peekable();
    std::iter::from_fn(move || {
        let order = match (first.peek(), second.peek()) {
            (None, None) => return None,
            (Some(_), None) | (Some(Err(_)), _) => std::cmp::Ordering::Less,
            (None, Some(_)) | (_, Some(Err(_))) => std::cmp::Ordering::Greater,
            (Some(Ok((a, _))), Some(Ok((b, _)))) => a.cmp(b),
        };
        match order {
            std::cmp::Ordering::Less => first.next(),
            std::cmp::Ordering::Greater => second.next(),
            std::cmp::Ordering::Equal => {
                second.next();
                first.next()
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::sled_keys::stored_side_key;
    use super::super::sled_store::SledStore;
    use super::super::sled_test_records::record;
    use super::super::{AppendBatch, LogStore};
    use super::*;

    fn tile(byte: u8) -> Vec<u8> {
        vec![byte; FULL_TILE]
    }

    #[test]
    fn a_tile_is_read_back_only_once_the_log_covers_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = TileFiles::new(dir.path().join("tiles"));
        files
            .write(&[(0, 0, &tile(1)), (0, 2, &tile(3)), (1, 0, &tile(9))])
            .unwrap();
        assert_eq!(files.read(0, 0, 256).unwrap(), Some(tile(1)));
        assert_eq!(files.read(0, 0, 255).unwrap(), None, "not yet covered");
        assert_eq!(
            files.read(0, 1, 1024).unwrap(),
            None,
            "a hole reads as zeros"
        );
        assert_eq!(files.read(0, 2, 1024).unwrap(), Some(tile(3)));
        assert_eq!(files.read(0, 7, 1 << 20).unwrap(), None, "past the end");
        assert_eq!(files.read(1, 0, 65_535).unwrap(), None);
        assert_eq!(files.read(1, 0, 65_536).unwrap(), Some(tile(9)));
        let keys: Vec<Vec<u8>> = files
            .scan(1 << 20, Vec::new())
            .map(|entry| entry.unwrap().0)
            .collect();
        assert_eq!(
            keys,
            vec![
                tile_side_key(0, 0),
                tile_side_key(0, 2),
                tile_side_key(1, 0)
            ]
        );
        let from_second: Vec<Vec<u8>> = files
            .scan(1024, tile_side_key(0, 1))
            .map(|entry| entry.unwrap().0)
            .collect();
        assert_eq!(from_second, vec![tile_side_key(0, 2)]);
    }

    fn batch_with_side(from: u64, count: u64, side: Vec<(Vec<u8>, Vec<u8>)>) -> AppendBatch {
        AppendBatch {
            records: (from..from + count).map(record).collect(),
            side,
            ..Default::default()
        }
    }

    fn sled_side_keys(store: &SledStore) -> Vec<Vec<u8>> {
        store
            .tree
            .scan_prefix(stored_side_key(b""))
            .map(|item| item.unwrap().0[1..].to_vec())
            .collect()
    }

    #[test]
    fn full_tiles_of_a_group_commit_go_to_files_and_leave_no_sled_item() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let partial = vec![5u8; 3 * 32];
        store
            .append(&batch_with_side(
                1,
                200,
                vec![(tile_side_key(1, 0), partial.clone())],
            ))
            .unwrap();
        assert_eq!(sled_side_keys(&store), vec![tile_side_key(1, 0)]);
        // The level-1 tile completes in the same batch as the leaf tile: both leave sled.
        store
            .append(&batch_with_side(
                201,
                56,
                vec![
                    (tile_side_key(0, 0), tile(4)),
                    (tile_side_key(1, 0), tile(6)),
                ],
            ))
            .unwrap();
        assert!(
            sled_side_keys(&store).is_empty(),
            "{:?}",
            sled_side_keys(&store)
        );
        assert_eq!(store.get_side(&tile_side_key(0, 0)).unwrap(), Some(tile(4)));
        assert!(dir.path().join("tiles/0.tiles").exists());
        let scanned: Vec<Vec<u8>> = store
            .scan_side(b"tile/")
            .map(|entry| entry.unwrap().0)
            .collect();
        assert_eq!(
            scanned,
            vec![tile_side_key(0, 0)],
            "the level-1 tile is not covered yet"
        );
        store.remove_side(&[tile_side_key(0, 0)]).unwrap();
        assert_eq!(store.get_side(&tile_side_key(0, 0)).unwrap(), None);
    }

    #[test]
    fn a_tile_written_by_a_commit_that_never_landed_is_not_read_and_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.append(&batch_with_side(1, 100, Vec::new())).unwrap();
            // A crash after the tile file was synced and before sled committed the batch that named it.
            store.tile_files.write(&[(0, 0, &tile(7))]).unwrap();
            assert_eq!(store.get_side(&tile_side_key(0, 0)).unwrap(), None);
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.get_side(&tile_side_key(0, 0)).unwrap(), None);
        assert_eq!(store.scan_side(b"").count(), 0);
        store
            .append(&batch_with_side(
                101,
                156,
                vec![(tile_side_key(0, 0), tile(8))],
            ))
            .unwrap();
        assert_eq!(store.get_side(&tile_side_key(0, 0)).unwrap(), Some(tile(8)));
    }

    #[test]
    fn tile_keys_are_recognised_and_merges_keep_the_first_source() {
        assert_eq!(tile_address(&tile_side_key(2, 77)), Some((2, 77)));
        assert_eq!(tile_address(b"tile/x"), None);
        assert_eq!(tile_address(b"checkpoint/1"), None);
        assert!(may_hold_tiles(b"") && may_hold_tiles(b"ti") && may_hold_tiles(b"tile/\x01"));
        assert!(!may_hold_tiles(b"signer/"));
        let entry = |k: &str, v: &str| Ok((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
        let merged: Vec<_> = merge_sorted(
            vec![entry("b", "file"), entry("d", "file")].into_iter(),
            vec![entry("a", "sled"), entry("b", "sled"), entry("c", "sled")].into_iter(),
        )
        .map(|e| e.unwrap())
        .map(|(k, v)| {
            format!(
                "{}={}",
                String::from_utf8(k).unwrap(),
                String::from_utf8(v).unwrap()
            )
        })
        .collect();
        assert_eq!(merged, ["a=sled", "b=file", "c=sled", "d=file"]);
    }
}
