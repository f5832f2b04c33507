//! The files sled keeps in a log directory, checked before an existing log is opened: sled silently replaces a
//! missing or damaged configuration and creates an empty database in an emptied directory, which would write
//! into the evidence and hide what happened to it.

use super::{SledStore, StoreError, StoreResult};
use std::path::Path;

impl SledStore {
    /// Opens a log that must already exist in `dir`: its `conf` (text followed by its CRC-32, as sled writes it)
    /// and its `db` file must be there and intact, or the log is called corrupt before sled touches anything.
    pub fn open_existing(dir: &Path) -> StoreResult<Self> {
        Self::open_existing_with_cache(dir, super::StorageConfig::default())
    }

    /// [`SledStore::open_existing`] with `[storage]`'s block cache size.
    pub fn open_existing_with_cache(
        dir: &Path,
        storage: super::StorageConfig,
    ) -> StoreResult<Self> {
        check_files(dir)?;
        Self::open_with_cache(dir, storage)
    }
}

pub(super) fn check_files(dir: &Path) -> StoreResult<()> {
    let conf = dir.join("conf");
    let bytes = match std::fs::read(&conf) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::Corrupt(format!(
                "{} is missing: the log directory was emptied or replaced",
                conf.display()
            )))
        }
        Err(e) => return Err(StoreError::Corrupt(format!("{}: {e}", conf.display()))),
    };
    let intact = bytes.len() > 4 && {
        let (text, crc) = bytes.split_at(bytes.len() - 4);
        std::str::from_utf8(text).is_ok() && crc32fast::hash(text).to_le_bytes() == crc
    };
    if !intact {
        return Err(StoreError::Corrupt(format!(
            "{} is not sled's configuration (damaged or replaced): refusing to let sled rewrite it",
            conf.display()
        )));
    }
    if !dir.join("db").is_file() {
        return Err(StoreError::Corrupt(format!(
            "{} is missing: the log directory was emptied or replaced",
            dir.join("db").display()
        )));
    }
    Ok(())
}
