//! Archival pruning for the sled backend: removes the archived records and every index entry that names them,
//! in bounded batches, then flushes. Kept records (the genesis, signer rotations, the last Merkle block) stay,
//! without index entries.

use super::sled_store::{
    backend, seq_key, SledStore, ATTRIBUTE_INDEX, EVENT, KEY_INDEX, LIFECYCLE_INDEX, TIME_INDEX,
};
use super::StoreResult;
use std::collections::BTreeSet;

/// Removals per `apply_batch`, so that memory stays bounded on a long prefix.
const PRUNE_BATCH: usize = 50_000;

/// Where the seq sits in the keys of each index: `(prefix, offset of the 8 seq bytes)`.
const SEQ_AT: [(u8, usize); 5] = [
    (EVENT, 1),
    (LIFECYCLE_INDEX, 1),
    (TIME_INDEX, 9),
    (KEY_INDEX, 17),
    (ATTRIBUTE_INDEX, 17),
];

impl SledStore {
    pub(super) fn prune(&self, through: u64, keep: &[u64]) -> StoreResult<u64> {
        let keep: BTreeSet<u64> = keep.iter().copied().collect();
        // Kept records lose their index entries too: readers start after `through`.
        let doomed =
            |prefix: u8, seq: u64| seq <= through && (prefix != EVENT || !keep.contains(&seq));
        let mut removed_records = 0u64;
        let mut batch = sled::Batch::default();
        let mut pending = 0usize;
        for (prefix, offset) in SEQ_AT {
            // Records and the lifecycle index are keyed by seq: a bounded range. The others are keyed by time,
            // key or digest first, so their whole prefix is walked.
            let range = if offset == 1 {
                self.tree
                    .range(seq_key(prefix, 1).to_vec()..=seq_key(prefix, through).to_vec())
            } else {
                self.tree.scan_prefix([prefix])
            };
            for item in range {
                let (key, _) = item.map_err(backend)?;
                let Some(seq) = key
                    .get(offset..offset + 8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                else {
                    continue;
                };
                if !doomed(prefix, seq) {
                    continue;
                }
                batch.remove(key);
                pending += 1;
                if prefix == EVENT {
                    removed_records += 1;
                }
                if pending == PRUNE_BATCH {
                    self.tree
                        .apply_batch(std::mem::take(&mut batch))
                        .map_err(backend)?;
                    pending = 0;
                }
            }
        }
        self.tree.apply_batch(batch).map_err(backend)?;
        self.db.flush().map_err(backend)?;
        Ok(removed_records)
    }
}
