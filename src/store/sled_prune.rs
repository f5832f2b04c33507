//! Archival pruning for the block layout: the archived records leave their blocks and tail chunks (a block whose
//! every record went is removed with its postings and directory entry), one unit per `apply_batch`. Kept records
//! (the genesis, signer rotations, the last Merkle block) stay, without postings. A rewritten block is appended
//! to the newest segment, and segments that no block names any more are removed.

use super::sled_keys::{backend, be_u64, seq_key, time_index_key, BLOCK, POSTINGS, TAIL};
use super::sled_read::tail_records;
use super::sled_segments::block_frames;
use super::sled_store::SledStore;
use super::sled_units::{
    all_postings, block_header, block_of, encode_block, encode_postings, encode_tail, split_tail,
};
use super::StoreResult;
use std::collections::BTreeSet;

impl SledStore {
    pub(super) fn prune(&self, through: u64, keep: &[u64]) -> StoreResult<u64> {
        let _one_writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let keep: BTreeSet<u64> = keep.iter().copied().collect();
        let stays = |seq: u64| seq > through || keep.contains(&seq);
        let mut removed = 0u64;
        let blocks: Vec<(sled::IVec, sled::IVec)> = self
            .blocks
            .range(seq_key(BLOCK, 0)..=seq_key(BLOCK, block_of(through)))
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        for (key, value) in blocks {
            let block = be_u64(&key[1..])?;
            let records = self.decode_block_value(block, &value)?;
            let kept: Vec<_> = records.iter().filter(|r| stays(r.seq)).cloned().collect();
            if kept.len() == records.len() {
                continue;
            }
            removed += (records.len() - kept.len()) as u64;
            let mut writes = sled::Batch::default();
            writes.remove(&time_index_key(records[0].time, records[0].seq));
            let postings_key = seq_key(POSTINGS, block);
            match kept.first() {
                None => {
                    writes.remove(key);
                    writes.remove(&postings_key);
                }
                Some(first) => {
                    let unit = "a block being pruned";
                    let header = block_header(&self.resolve(&value, unit)?, unit)?;
                    let dictionary = self.dictionary(&header.dictionary, unit)?;
                    let id = header.dictionary;
                    let block_bytes = encode_block(&kept, dictionary.as_deref().map(|d| (&id, d)))?;
                    writes.insert(&time_index_key(first.time, first.seq), &[]);
                    let postings = match self.blocks.get(postings_key).map_err(backend)? {
                        Some(old) => all_postings(&self.resolve(&old, unit)?, unit)?,
                        None => Vec::new(),
                    };
                    let postings = encode_postings(
                        postings
                            .into_iter()
                            .filter(|(_, seq)| *seq > through)
                            .collect(),
                    );
                    self.store_frames(&mut writes, &block_frames(block, &block_bytes, &postings))?;
                }
            }
            self.apply_cold(writes)?;
        }
        let chunks: Vec<(sled::IVec, sled::IVec)> = self
            .tree
            .range(seq_key(TAIL, 0)..=seq_key(TAIL, through))
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        for (key, value) in chunks {
            let first = be_u64(&key[1..])?;
            let value = self.tail_bytes(first, &value)?;
            let records = tail_records(first, &value)?;
            let kept: Vec<_> = records.iter().filter(|r| stays(r.seq)).cloned().collect();
            removed += (records.len() - kept.len()) as u64;
            let (_, _, postings) = split_tail(&value, "a tail chunk being pruned")?;
            let postings = all_postings(postings, "a tail chunk being pruned")?
                .into_iter()
                .filter(|(_, seq)| *seq > through)
                .collect();
            let mut writes = sled::Batch::default();
            if kept.is_empty() {
                writes.remove(key);
            } else {
                self.journal_tails(&mut writes, &[(first, encode_tail(&kept, postings))])?;
            }
            self.apply(writes)?;
        }
        self.cache.clear();
        self.flush_all()?;
        // Rewritten blocks went to the newest segment: older segments no location names are free.
        let freed = self
            .segments
            .remove_unreferenced(&self.referenced_segments()?)?;
        if freed > 0 {
            tracing::info!(bytes = freed, "pruning freed whole segments");
        }
        Ok(removed)
    }
}
