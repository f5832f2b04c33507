//! Group commits into the block layout: each batch becomes one tail chunk; once the tail holds a whole block, the
//! chunks are sealed into zstd blocks with their postings and time directory entries in the same atomic batch, so
//! a crash at any point leaves either the chunks or the blocks, never both or neither.

use super::sled_keys::{
    backend, be_u64, dictionary_key, encode_head, seq_key, time_index_key, BLOCK,
    CURRENT_DICTIONARY, HEAD, POSTINGS, TAIL,
};
use super::sled_read::tail_records;
use super::sled_segments::{Frame, FrameKind};
use super::sled_store::SledStore;
use super::sled_units::{
    all_postings, attribute_term, block_first, block_of, dictionary_id, encode_block,
    encode_postings, encode_tail, key_term, split_tail, train_dictionary, Term, BLOCK_EVENTS,
    LIFECYCLE_TERM,
};
use super::sled_units::{block_name, tail_name};
use super::{AppendBatch, Head, LogStore, StoreError, StoreResult, StoredRecord};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// Every posting a batch files: keys, lifecycle and attributes (the time index is the block directory's).
pub(super) fn batch_postings(batch: &AppendBatch) -> Vec<(Term, u64)> {
    let mut out = Vec::with_capacity(
        batch.key_index.len() + batch.lifecycle_index.len() + batch.attribute_index.len(),
    );
    out.extend(
        batch
            .key_index
            .iter()
            .map(|(key, seq)| (key_term(key), *seq)),
    );
    out.extend(
        batch
            .lifecycle_index
            .iter()
            .map(|seq| (LIFECYCLE_TERM, *seq)),
    );
    out.extend(
        batch
            .attribute_index
            .iter()
            .map(|(digest, seq)| (attribute_term(digest), *seq)),
    );
    out
}

impl SledStore {
    pub(super) fn write_blocks(&self, batch: &AppendBatch) -> StoreResult<()> {
        let _one_writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut postings = batch_postings(batch);
        let mut writes = sled::Batch::default();
        let mut cold = sled::Batch::default();
        let mut sealed = false;
        // Tail chunks this commit writes (first seq, bytes): to the journal, once, before sled commits.
        let mut tails: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut tail_from = self.tail_from();
        if let (Some(first), Some(last)) = (batch.records.first(), batch.records.last()) {
            // The one writer never does otherwise; a batch that does not continue the head is refused, as
            // PostgreSQL's conditional insert refuses it.
            let expected = self.head()?.map_or(1, |head| head.seq + 1);
            if first.seq != expected {
                return Err(StoreError::OutOfOrder {
                    expected,
                    found: first.seq,
                });
            }
            if first.seq < tail_from {
                return Err(StoreError::Corrupt(format!(
                    "the head (event {}) lies inside sealed block {}: the log was cut inside a block",
                    first.seq - 1,
                    block_of(first.seq)
                )));
            }
            let (inside, outside): (Vec<_>, Vec<_>) = postings
                .into_iter()
                .partition(|(_, seq)| *seq >= first.seq && *seq <= last.seq);
            postings = outside;
            if last.seq + 1 - tail_from >= BLOCK_EVENTS {
                self.trim_journal()?;
                tail_from = self.seal(
                    &mut writes,
                    &mut cold,
                    &mut tails,
                    tail_from,
                    &batch.records,
                    inside,
                )?;
                sealed = true;
            } else {
                tails.push((first.seq, encode_tail(&batch.records, inside)));
            }
            let head = Head {
                seq: last.seq,
                hash: last.hash,
                time: last.time,
            };
            writes.insert(HEAD, encode_head(&head));
        }
        if !postings.is_empty() {
            sealed |= self.add_postings(&mut tails, &mut cold, postings)?;
        }
        self.journal_tails(&mut writes, &tails)?;
        let staged = self.stage_side(&batch.side, &batch.side_removals, &mut writes);
        // On disk before the commit that makes them visible (sled_tile_files.rs).
        self.tile_files.write(&staged.tiles)?;
        self.apply_group(writes, sealed.then_some(cold), staged.bulk)?;
        if sealed {
            // Committed in sled's memory, not yet flushed (the caller's `sync` does that).
            super::sled_segment_files::failpoint("seal-committed");
        }
        self.tail_from.store(tail_from, Ordering::Release);
        Ok(())
    }

    /// Moves the tail chunks and `records` into sealed blocks (the remainder into one new chunk); returns the new
    /// first unsealed seq.
    fn seal(
        &self,
        writes: &mut sled::Batch,
        cold: &mut sled::Batch,
        tails: &mut Vec<(u64, Vec<u8>)>,
        tail_from: u64,
        records: &[StoredRecord],
        postings: Vec<(Term, u64)>,
    ) -> StoreResult<u64> {
        let mut all = Vec::with_capacity(BLOCK_EVENTS as usize + records.len());
        let mut all_postings_of_tail = postings;
        for item in self.tree.range(seq_key(TAIL, 0)..=seq_key(TAIL, u64::MAX)) {
            let (key, value) = item.map_err(backend)?;
            let first = be_u64(&key[1..])?;
            let name = tail_name(first);
            let value = self.tail_bytes(first, &value)?;
            let (_, _, chunk_postings) = split_tail(&value, &name)?;
            all.extend(tail_records(first, &value)?);
            all_postings_of_tail.extend(all_postings(chunk_postings, &name)?);
            writes.remove(key);
        }
        all.extend(records.iter().cloned());
        if all.windows(2).any(|pair| pair[1].seq <= pair[0].seq) {
            return Err(StoreError::Corrupt(format!(
                "the tail from event {tail_from} is out of order: it cannot be sealed"
            )));
        }
        let mut by_block: BTreeMap<u64, Vec<(Term, u64)>> = BTreeMap::new();
        for (term, seq) in all_postings_of_tail {
            by_block.entry(block_of(seq)).or_default().push((term, seq));
        }
        // Every block the head has passed the end of is sealed; the rest stays one chunk.
        let open_block = block_of(all.last().map_or(tail_from, |r| r.seq) + 1);
        let mut dictionary = self.current_dictionary()?;
        let mut trained_for: Option<u64> = None;
        let mut sealed: Vec<(u64, Vec<u8>, Vec<u8>)> = Vec::new();
        let mut start = 0usize;
        while start < all.len() && block_of(all[start].seq) < open_block {
            let block = block_of(all[start].seq);
            let end = start + all[start..].partition_point(|r| block_of(r.seq) == block);
            let block_records = &all[start..end];
            if dictionary.is_none() {
                if let Some(trained) = train_dictionary(block_records) {
                    let id = dictionary_id(&trained);
                    cold.insert(dictionary_key(&id), trained.as_slice());
                    cold.insert(CURRENT_DICTIONARY, &id);
                    dictionary = Some((id, trained));
                    trained_for = Some(block);
                }
            }
            let value = encode_block(
                block_records,
                dictionary.as_ref().map(|(id, d)| (id, d.as_slice())),
            )?;
            let postings = encode_postings(by_block.remove(&block).unwrap_or_default());
            sealed.push((block, value, postings));
            cold.insert(
                &time_index_key(block_records[0].time, block_records[0].seq),
                &[],
            );
            start = end;
        }
        let mut frames = Vec::with_capacity(sealed.len() * 2 + 1);
        if let (Some(block), Some((_, trained))) = (trained_for, dictionary.as_ref()) {
            frames.push(Frame {
                kind: FrameKind::Dictionary,
                block,
                payload: trained,
            });
        }
        for (block, value, postings) in &sealed {
            frames.push(Frame {
                kind: FrameKind::Block,
                block: *block,
                payload: value,
            });
            frames.push(Frame {
                kind: FrameKind::Postings,
                block: *block,
                payload: postings,
            });
        }
        self.store_frames(cold, &frames)?;
        let rest = &all[start..];
        if let Some(first) = rest.first() {
            let chunk_postings = by_block.remove(&block_of(first.seq)).unwrap_or_default();
            tails.push((first.seq, encode_tail(rest, chunk_postings)));
        }
        Ok(block_first(open_block))
    }

    /// The dictionary new blocks are compressed with, once one was trained.
    fn current_dictionary(&self) -> StoreResult<Option<([u8; 32], Vec<u8>)>> {
        let Some(id) = self.blocks.get(CURRENT_DICTIONARY).map_err(backend)? else {
            return Ok(None);
        };
        let id: [u8; 32] = id
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt("the current dictionary id is not 32 bytes".into()))?;
        Ok(self
            .dictionary(&id, "the current dictionary")?
            .map(|bytes| (id, bytes)))
    }

    /// Files postings of events already stored (an index backfill): their units' postings are rewritten.
    /// Returns whether a block's postings (in `cold`) changed.
    pub(super) fn add_postings(
        &self,
        tails: &mut Vec<(u64, Vec<u8>)>,
        cold: &mut sled::Batch,
        postings: Vec<(Term, u64)>,
    ) -> StoreResult<bool> {
        let mut any_cold = false;
        let tail_from = self.tail_from();
        let mut by_unit: BTreeMap<(bool, u64), Vec<(Term, u64)>> = BTreeMap::new();
        let mut rewritten: Vec<(u64, Vec<u8>)> = Vec::new();
        for (term, seq) in postings {
            let unit = if seq < tail_from {
                (false, block_of(seq))
            } else {
                let first = self.tail_first_at(seq)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("event {seq} is not stored: it cannot be indexed"))
                })?;
                (true, first)
            };
            by_unit.entry(unit).or_default().push((term, seq));
        }
        for ((tail, at), mut entries) in by_unit {
            if tail {
                // A chunk this commit writes already is rewritten in place, else the stored one.
                let value = match tails.iter().position(|(first, _)| *first == at) {
                    Some(written) => tails.remove(written).1,
                    None => self
                        .tail_chunk_at(at)?
                        .filter(|(first, _)| *first == at)
                        .map(|(_, bytes)| bytes)
                        .unwrap_or_default(),
                };
                let name = tail_name(at);
                let (_, _, old) = split_tail(&value, &name)?;
                entries.extend(all_postings(old, &name)?);
                tails.push((at, encode_tail(&tail_records(at, &value)?, entries)));
            } else {
                let name = format!("the postings of {}", block_name(at));
                if let Some(old) = self.blocks.get(seq_key(POSTINGS, at)).map_err(backend)? {
                    entries.extend(all_postings(&self.resolve(&old, &name)?, &name)?);
                }
                rewritten.push((at, encode_postings(entries)));
            }
        }
        let frames: Vec<Frame<'_>> = rewritten
            .iter()
            .map(|(block, payload)| Frame {
                kind: FrameKind::Postings,
                block: *block,
                payload,
            })
            .collect();
        if !frames.is_empty() {
            self.store_frames(cold, &frames)?;
            any_cold = true;
        }
        Ok(any_cold)
    }
}

impl SledStore {
    /// Sealed blocks and tail chunks in the log (docs/PERFORMANCE.md's item counts).
    pub fn unit_counts(&self) -> (usize, usize) {
        (
            self.blocks.scan_prefix([BLOCK]).count(),
            self.tree.scan_prefix([TAIL]).count(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::sled_test_records::{append, record};
    use super::*;
    use crate::time::LedgerTime;

    #[test]
    fn batches_seal_into_aligned_blocks_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let mut next = 1;
        for count in [1u64, 700, 400, 3000, 5, 1] {
            append(&store, next, count);
            next += count;
        }
        let head = next - 1;
        assert_eq!(store.head().unwrap().unwrap().seq, head);
        // 4,096 events sealed; the chunk left by the seal and the two batches after it.
        assert_eq!(store.unit_counts(), (4, 3));
        let seqs: Vec<u64> = store.scan(1, u64::MAX).map(|r| r.unwrap().seq).collect();
        assert_eq!(seqs, (1..=head).collect::<Vec<_>>());
        let middle: Vec<u64> = store.scan(1000, 1030).map(|r| r.unwrap().seq).collect();
        assert_eq!(middle, (1000..1030).collect::<Vec<_>>());
        for seq in [1, 1024, 1025, 3072, 4096, head] {
            assert_eq!(store.get(seq).unwrap().unwrap(), record(seq));
        }
        assert!(store.get(head + 1).unwrap().is_none());
        assert_eq!(store.last_record().unwrap().unwrap().seq, head);
        let key = uuid::Uuid::from_u128(1);
        let of_key: Vec<u64> = store
            .key_seqs(key, 1020, 1040)
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(
            of_key,
            (1020..1040).filter(|s| s % 3 == 1).collect::<Vec<_>>()
        );
        let newest: Vec<u64> = store
            .key_seqs_rev(key, 1, u64::MAX)
            .take(2)
            .map(|s| s.unwrap())
            .collect();
        let expected: Vec<u64> = (1..=head).rev().filter(|s| s % 3 == 1).take(2).collect();
        assert_eq!(newest, expected);
        assert_eq!(store.key_index().count() as u64, head);
        assert_eq!(
            store
                .first_seq_at_or_after(LedgerTime::from_micros(15_001))
                .unwrap(),
            1501
        );
        assert_eq!(
            store
                .first_seq_at_or_after(LedgerTime::from_micros(10))
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .first_seq_at_or_after(LedgerTime::from_micros(i64::MAX))
                .unwrap(),
            head + 1
        );
    }

    #[test]
    fn a_reopened_store_continues_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            append(&store, 1, 1500);
        }
        let store = SledStore::open(dir.path()).unwrap();
        append(&store, 1501, 600);
        assert_eq!(store.unit_counts().0, 2);
        assert_eq!(store.scan(1, u64::MAX).count(), 2100);
        assert!(store.item_count() < 20, "{} items", store.item_count());
    }
}
