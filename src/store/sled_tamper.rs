//! Store-level corruption for tamper tests: what someone holding the data directory can do to the log, named by
//! what it damages, so that tests need not know the block layout. Each rewrite is consistent at the storage
//! level (a re-compressed block, a re-encoded posting run), as a careful attacker's would be, unless its name
//! says it damages bytes.

use super::sled_keys::{
    backend, dictionary_key, encode_head, seq_key, time_index_key, BLOCK, CURRENT_DICTIONARY,
    POSTINGS, TAIL,
};
use super::sled_read::tail_records;
use super::sled_segments::{block_frames, Frame, FrameKind, Location};
use super::sled_store::SledStore;
use super::sled_units::{
    all_postings, attribute_term, block_header, block_of, encode_block, encode_postings,
    encode_tail, key_term, split_tail, Term, LIFECYCLE_TERM,
};
use super::{Head, StoreError, StoreResult, StoredRecord};
use crate::time::LedgerTime;
use uuid::Uuid;

type Change<'a> = &'a mut dyn FnMut(&mut Vec<StoredRecord>, &mut Vec<(Term, u64)>);

impl SledStore {
    /// Rewrites the unit (block or tail chunk) that holds `seq` after `change`, bypassing the chain.
    fn tamper_unit(&self, seq: u64, change: Change<'_>) -> StoreResult<()> {
        let mut writes = sled::Batch::default();
        let sealed = seq < self.tail_from();
        if sealed {
            let block = block_of(seq);
            let key = seq_key(BLOCK, block);
            let bytes = self
                .blocks
                .get(key)
                .map_err(backend)?
                .ok_or_else(|| StoreError::Backend(format!("no block holds event {seq}")))?;
            let header = block_header(
                &self.resolve(&bytes, "a tampered block")?,
                "a tampered block",
            )?;
            let dictionary = self.dictionary(&header.dictionary, "a tampered block")?;
            let mut records = self.decode_block_value(block, &bytes)?;
            let postings_key = seq_key(POSTINGS, block);
            let mut postings = match self.blocks.get(postings_key).map_err(backend)? {
                Some(old) => all_postings(
                    &self.resolve(&old, "tampered postings")?,
                    "tampered postings",
                )?,
                None => Vec::new(),
            };
            let old_first = records.first().map(|r| (r.time, r.seq));
            change(&mut records, &mut postings);
            if let Some((time, seq)) = old_first {
                writes.remove(&time_index_key(time, seq));
            }
            match records.first() {
                None => {
                    writes.remove(&key);
                    writes.remove(&postings_key);
                }
                Some(first) => {
                    let id = header.dictionary;
                    writes.insert(&time_index_key(first.time, first.seq), &[]);
                    let block_bytes =
                        encode_block(&records, dictionary.as_deref().map(|d| (&id, d)))?;
                    let postings = encode_postings(postings);
                    self.store_frames(&mut writes, &block_frames(block, &block_bytes, &postings))?;
                }
            }
        } else {
            let (first, value) = self
                .tail_chunk_at(seq)?
                .ok_or_else(|| StoreError::Backend(format!("no tail chunk holds event {seq}")))?;
            let mut records = tail_records(first, &value)?;
            let (_, _, postings) = split_tail(&value, "a tampered chunk")?;
            let mut postings = all_postings(postings, "a tampered chunk")?;
            change(&mut records, &mut postings);
            if records.is_empty() {
                writes.remove(&seq_key(TAIL, first));
            } else {
                self.journal_tails(&mut writes, &[(first, encode_tail(&records, postings))])?;
            }
        }
        if sealed {
            self.apply_cold(writes)?;
        } else {
            self.apply(writes)?;
        }
        self.cache.clear();
        self.flush_all()
    }

    /// Puts `record` at `record.seq` in place of the stored one (tamper tests only).
    pub fn tamper_replace_record(&self, record: &StoredRecord) -> StoreResult<()> {
        self.tamper_unit(record.seq, &mut |records, _| match records
            .binary_search_by_key(&record.seq, |r| r.seq)
        {
            Ok(at) => records[at] = record.clone(),
            Err(at) => records.insert(at, record.clone()),
        })
    }

    /// Removes the record at `seq`, leaving a gap (tamper tests only).
    pub fn tamper_remove_record(&self, seq: u64) -> StoreResult<()> {
        self.tamper_unit(seq, &mut |records, _| records.retain(|r| r.seq != seq))
    }

    fn tamper_posting(&self, term: Term, seq: u64, add: bool) -> StoreResult<()> {
        self.tamper_unit(seq, &mut |_, postings| {
            if add {
                postings.push((term, seq));
            } else {
                postings.retain(|entry| *entry != (term, seq));
            }
        })
    }

    /// Removes (or adds) the key-index posting `(key, seq)` (tamper tests only).
    pub fn tamper_key_posting(&self, key: &Uuid, seq: u64, add: bool) -> StoreResult<()> {
        self.tamper_posting(key_term(key), seq, add)
    }

    /// Removes (or adds) the attribute-index posting `(digest, seq)` (tamper tests only).
    pub fn tamper_attribute_posting(
        &self,
        digest: &[u8; 16],
        seq: u64,
        add: bool,
    ) -> StoreResult<()> {
        self.tamper_posting(attribute_term(digest), seq, add)
    }

    /// Removes the lifecycle-index posting of `seq` (tamper tests only).
    pub fn tamper_remove_lifecycle_posting(&self, seq: u64) -> StoreResult<()> {
        self.tamper_posting(LIFECYCLE_TERM, seq, false)
    }

    /// Removes the time-directory entry `(time, seq)`; `false` if there was none (tamper tests only).
    pub fn tamper_remove_time_entry(&self, time: LedgerTime, seq: u64) -> StoreResult<bool> {
        let removed = self
            .blocks
            .remove(time_index_key(time, seq))
            .map_err(backend)?;
        self.flush_all()?;
        Ok(removed.is_some())
    }

    /// Cuts every event after `keep` and points the head at `keep`, as a careful attacker would (tamper tests).
    pub fn tamper_cut_after(&self, keep: u64) -> StoreResult<()> {
        let mut anchors: Vec<u64> = Vec::new();
        for item in self
            .blocks
            .range(seq_key(BLOCK, block_of(keep + 1))..=seq_key(BLOCK, u64::MAX))
        {
            let (key, _) = item.map_err(backend)?;
            anchors.push(super::sled_keys::be_u64(&key[1..])? * super::BLOCK_EVENTS + 1);
        }
        for item in self.tree.scan_prefix([TAIL]) {
            let (key, _) = item.map_err(backend)?;
            anchors.push(super::sled_keys::be_u64(&key[1..])?);
        }
        for anchor in anchors {
            self.tamper_unit(anchor.max(keep + 1), &mut |records, postings| {
                records.retain(|r| r.seq <= keep);
                postings.retain(|(_, seq)| *seq <= keep);
            })?;
        }
        self.unseal_partial_block(keep)?;
        self.tail_from
            .store(self.first_unsealed()?, std::sync::atomic::Ordering::Release);
        let last = self
            .record_at(keep)?
            .ok_or_else(|| StoreError::Backend(format!("event {keep} is not stored")))?;
        let head = Head {
            seq: keep,
            hash: last.hash,
            time: last.time,
        };
        self.tree
            .insert(super::sled_keys::HEAD, encode_head(&head))
            .map_err(backend)?;
        self.flush_all()
    }

    /// A cut inside a sealed block leaves it partial: as a careful attacker would, its events become a tail chunk
    /// again (block, postings and directory entry removed), so that the writer can go on from the cut.
    fn unseal_partial_block(&self, keep: u64) -> StoreResult<()> {
        let block = block_of(keep);
        if keep == 0 || keep + 1 >= self.tail_from() || keep % super::BLOCK_EVENTS == 0 {
            return Ok(());
        }
        let Some(records) = self.block(block, false)? else {
            return Ok(());
        };
        let postings_key = seq_key(POSTINGS, block);
        let unit = "the postings of a cut block";
        let postings = match self.blocks.get(postings_key).map_err(backend)? {
            Some(old) => all_postings(&self.resolve(&old, unit)?, unit)?,
            None => Vec::new(),
        };
        let (mut writes, mut cold) = (sled::Batch::default(), sled::Batch::default());
        if let Some(first) = records.first() {
            cold.remove(&time_index_key(first.time, first.seq));
            self.journal_tails(&mut writes, &[(first.seq, encode_tail(&records, postings))])?;
        }
        cold.remove(&seq_key(BLOCK, block));
        cold.remove(&postings_key);
        self.apply_group(writes, Some(cold), None)?;
        self.cache.clear();
        Ok(())
    }

    /// Flips one byte of a sealed block's stored bytes in place, `from_end` bytes before its end, as a failing
    /// disk or an editor would (tamper tests only).
    pub fn tamper_flip_block_byte(&self, block: u64, from_end: usize) -> StoreResult<()> {
        let value = self.block_value(block)?;
        match Location::decode(&value) {
            Some(location) => {
                let bytes = self.resolve(&value, "a damaged block")?;
                let at = bytes.len() - from_end.min(bytes.len());
                self.segments
                    .damage(&location, at as u64, bytes[at] ^ 0x20)?;
            }
            None => {
                let mut bytes = value.to_vec();
                let at = bytes.len() - from_end.min(bytes.len());
                bytes[at] ^= 0x20;
                self.blocks
                    .insert(seq_key(BLOCK, block), bytes)
                    .map_err(backend)?;
            }
        }
        self.cache.clear();
        self.flush_all()
    }

    /// Adds `by` to the first seq a sealed block's header names, storing the block again with a matching
    /// checksum, as a careful attacker would (tamper tests only).
    pub fn tamper_block_first_seq(&self, block: u64, by: u64) -> StoreResult<()> {
        let value = self.block_value(block)?;
        let mut bytes = self.resolve(&value, "a rewritten block")?.into_owned();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[1..9]);
        let moved = u64::from_be_bytes(first).wrapping_add(by);
        bytes[1..9].copy_from_slice(&moved.to_be_bytes());
        let mut writes = sled::Batch::default();
        self.store_frames(
            &mut writes,
            &[Frame {
                kind: FrameKind::Block,
                block,
                payload: &bytes,
            }],
        )?;
        self.apply_cold(writes)?;
        self.cache.clear();
        self.flush_all()
    }

    fn block_value(&self, block: u64) -> StoreResult<sled::IVec> {
        self.blocks
            .get(seq_key(BLOCK, block))
            .map_err(backend)?
            .ok_or_else(|| StoreError::Backend(format!("block {block} is not stored")))
    }

    /// Stores other bytes under the current dictionary's id (tamper tests only); `false` without a dictionary.
    pub fn tamper_replace_dictionary(&self, bytes: &[u8]) -> StoreResult<bool> {
        let Some(id) = self.blocks.get(CURRENT_DICTIONARY).map_err(backend)? else {
            return Ok(false);
        };
        let id: [u8; 32] = id
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Backend("dictionary id".into()))?;
        self.blocks
            .insert(dictionary_key(&id), bytes)
            .map_err(backend)?;
        self.cache.clear();
        self.flush_all()?;
        Ok(true)
    }
}
