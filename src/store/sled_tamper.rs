//! Store-level corruption for tamper tests: what someone holding the data directory can do to the log, named by
//! what it damages, so that tests need not know the sled layout (which changes with the storage format).

use super::{SledStore, StoreError, StoreResult, StoredRecord};
use crate::time::LedgerTime;

impl SledStore {
    /// Overwrites the stored record at `record.seq` with `record`, bypassing the chain (tamper tests only).
    pub fn tamper_replace_record(&self, record: &StoredRecord) -> StoreResult<()> {
        self.raw_tree()
            .insert(Self::raw_event_key(record.seq), record.encode())
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        self.flush_raw()
    }

    /// Removes the time-index entry `(time, seq)`; `false` if there was none (tamper tests only).
    pub fn tamper_remove_time_entry(&self, time: LedgerTime, seq: u64) -> StoreResult<bool> {
        let removed = self
            .raw_tree()
            .remove(Self::raw_time_index_key(time, seq))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        self.flush_raw()?;
        Ok(removed.is_some())
    }

    fn flush_raw(&self) -> StoreResult<()> {
        self.raw_tree()
            .flush()
            .map(|_| ())
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}
