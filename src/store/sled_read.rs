//! Reads of the block layout: a record by seq, scans unit by unit, time seeks through the block directory, and
//! postings looked up per block, with a bounded cache of decoded blocks.

use super::sled_cache::Records;
use super::sled_keys::{
    backend, be_u64, dictionary_key, seq_key, time_index_key, BLOCK, POSTINGS, TAIL,
};
use super::sled_store::SledStore;
use super::sled_units::{
    all_postings, block_first, block_header, block_name, block_of, decode_block, dictionary_id,
    lookup_postings, split_tail, tail_name, Term, NO_DICTIONARY,
};
use super::{StoreError, StoreIter, StoreResult, StoredRecord};
use crate::time::LedgerTime;
use std::sync::Arc;

impl SledStore {
    /// The first seq after the last sealed block.
    pub(super) fn first_unsealed(&self) -> StoreResult<u64> {
        let last = self
            .blocks
            .scan_prefix([BLOCK])
            .next_back()
            .transpose()
            .map_err(backend)?;
        Ok(match last {
            Some((key, _)) => block_first(be_u64(&key[1..])? + 1),
            None => 1,
        })
    }

    /// The dictionary `id` names, checked against its id; `None` for blocks compressed without one.
    pub(super) fn dictionary(&self, id: &[u8; 32], unit: &str) -> StoreResult<Option<Vec<u8>>> {
        if *id == NO_DICTIONARY {
            return Ok(None);
        }
        let bytes = self
            .blocks
            .get(dictionary_key(id))
            .map_err(backend)?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{unit} names dictionary {}, which the log does not hold",
                    hex::encode(id)
                ))
            })?;
        if dictionary_id(&bytes) != *id {
            return Err(StoreError::Corrupt(format!(
                "dictionary {} no longer hashes to its id: it was replaced",
                hex::encode(id)
            )));
        }
        Ok(Some(bytes.to_vec()))
    }

    /// The records of a block from its sled value (a segment location, or inline bytes in layout 2).
    pub(super) fn decode_block_value(
        &self,
        block: u64,
        value: &[u8],
    ) -> StoreResult<Vec<StoredRecord>> {
        let unit = block_name(block);
        let bytes = self.resolve(value, &unit)?;
        let header = block_header(&bytes, &unit)?;
        let dictionary = self.dictionary(&header.dictionary, &unit)?;
        let records = decode_block(&bytes, dictionary.as_deref(), &unit)?;
        if block_of(header.first_seq) != block
            || records.last().is_some_and(|r| block_of(r.seq) != block)
        {
            return Err(StoreError::Corrupt(format!(
                "{unit} holds events of another block"
            )));
        }
        Ok(records)
    }

    /// The decoded block, from the cache when `cached`.
    pub(super) fn block(&self, block: u64, cached: bool) -> StoreResult<Option<Records>> {
        if cached {
            if let Some(records) = self.cache.get(block) {
                return Ok(Some(records));
            }
        }
        let Some(bytes) = self.blocks.get(seq_key(BLOCK, block)).map_err(backend)? else {
            return Ok(None);
        };
        let records = Arc::new(self.decode_block_value(block, &bytes)?);
        if cached {
            self.cache.put(block, records.clone());
        }
        Ok(Some(records))
    }

    /// The sled entry of the tail chunk whose first seq is the largest at or below `seq`: `(first seq, value)`.
    fn tail_entry_at(&self, seq: u64) -> StoreResult<Option<(u64, sled::IVec)>> {
        let found = self
            .tree
            .range(seq_key(TAIL, 0)..=seq_key(TAIL, seq))
            .next_back()
            .transpose()
            .map_err(backend)?;
        found
            .map(|(key, value)| Ok((be_u64(&key[1..])?, value)))
            .transpose()
    }

    /// The tail chunk whose first seq is the largest at or below `seq`: `(first seq, its bytes)`.
    pub(super) fn tail_chunk_at(&self, seq: u64) -> StoreResult<Option<(u64, Vec<u8>)>> {
        self.tail_entry_at(seq)?
            .map(|(first, value)| Ok((first, self.tail_bytes(first, &value)?.into_owned())))
            .transpose()
    }

    /// The first seq of [`SledStore::tail_chunk_at`]'s chunk, without reading it.
    pub(super) fn tail_first_at(&self, seq: u64) -> StoreResult<Option<u64>> {
        Ok(self.tail_entry_at(seq)?.map(|(first, _)| first))
    }

    pub(super) fn record_at(&self, seq: u64) -> StoreResult<Option<StoredRecord>> {
        if seq == 0 {
            return Ok(None);
        }
        let records: Records = if seq < self.tail_from() {
            match self.block(block_of(seq), true)? {
                Some(records) => records,
                None => return Ok(None),
            }
        } else {
            match self.tail_chunk_at(seq)? {
                Some((first, value)) => Arc::new(tail_records(first, &value)?),
                None => return Ok(None),
            }
        };
        Ok(records
            .binary_search_by_key(&seq, |r| r.seq)
            .ok()
            .map(|at| records[at].clone()))
    }

    pub(super) fn tail_from(&self) -> u64 {
        self.tail_from.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(super) fn last_stored_record(&self) -> StoreResult<Option<StoredRecord>> {
        if let Some((first, value)) = self.tail_chunk_at(u64::MAX)? {
            if let Some(last) = tail_records(first, &value)?.pop() {
                return Ok(Some(last));
            }
        }
        let last = self
            .blocks
            .scan_prefix([BLOCK])
            .next_back()
            .transpose()
            .map_err(backend)?;
        match last {
            Some((key, value)) => Ok(self.decode_block_value(be_u64(&key[1..])?, &value)?.pop()),
            None => Ok(None),
        }
    }

    /// Every unit from the one holding `from` on, in seq order, decoded lazily.
    fn units_from(
        &self,
        from: u64,
    ) -> StoreResult<impl Iterator<Item = StoreResult<Records>> + '_> {
        let tail_start = self.tail_first_at(from)?.unwrap_or(from);
        let blocks = self
            .blocks
            .range(seq_key(BLOCK, block_of(from))..=seq_key(BLOCK, u64::MAX))
            .map(move |item| {
                let (key, value) = item.map_err(backend)?;
                let block = be_u64(&key[1..])?;
                match self.cache.get(block) {
                    Some(records) => Ok(records),
                    None => Ok(Arc::new(self.decode_block_value(block, &value)?)),
                }
            });
        let tails = self
            .tree
            .range(seq_key(TAIL, tail_start)..=seq_key(TAIL, u64::MAX))
            .map(|item| {
                let (key, value) = item.map_err(backend)?;
                let first = be_u64(&key[1..])?;
                Ok(Arc::new(tail_records(
                    first,
                    &self.tail_bytes(first, &value)?,
                )?))
            });
        Ok(blocks.chain(tails))
    }

    pub(super) fn scan_units(&self, from: u64, to: u64) -> StoreIter<'_, StoredRecord> {
        let units = match self.units_from(from) {
            Ok(units) => units,
            Err(error) => return Box::new(std::iter::once(Err(error))),
        };
        let records = units.flat_map(
            move |unit| -> Box<dyn Iterator<Item = StoreResult<StoredRecord>> + Send> {
                match unit {
                    Ok(records) => {
                        let start = records.partition_point(|r| r.seq < from);
                        Box::new((start..records.len()).map(move |at| Ok(records[at].clone())))
                    }
                    Err(error) => Box::new(std::iter::once(Err(error))),
                }
            },
        );
        Box::new(records.take_while(move |item| item.as_ref().map_or(true, |r| r.seq < to)))
    }

    /// The first event at or after `time`: from the last block that starts before it.
    pub(super) fn seek_time(&self, time: LedgerTime) -> StoreResult<Option<u64>> {
        let start = self
            .blocks
            .range(time_index_key(LedgerTime::MIN, 0)..time_index_key(time, 0))
            .next_back()
            .transpose()
            .map_err(backend)?
            .map(|(key, _)| be_u64(&key[9..17]))
            .transpose()?
            .unwrap_or(1);
        for record in self.scan_units(start, u64::MAX) {
            let record = record?;
            if record.time >= time {
                return Ok(Some(record.seq));
            }
        }
        Ok(None)
    }

    /// Seqs in `[from, to)` that `term` has, ascending (or descending with `rev`), block by block.
    pub(super) fn postings(&self, term: Term, from: u64, to: u64, rev: bool) -> StoreIter<'_, u64> {
        if from >= to {
            return Box::new(std::iter::empty());
        }
        let tail_start = match self.tail_first_at(from) {
            Ok(found) => found.unwrap_or(from),
            Err(error) => return Box::new(std::iter::once(Err(error))),
        };
        let in_range = move |seqs: StoreResult<Vec<u64>>| -> Vec<StoreResult<u64>> {
            match seqs {
                Ok(seqs) => {
                    let mut seqs: Vec<_> = seqs
                        .into_iter()
                        .filter(|s| *s >= from && *s < to)
                        .map(Ok)
                        .collect();
                    if rev {
                        seqs.reverse();
                    }
                    seqs
                }
                Err(error) => vec![Err(error)],
            }
        };
        let blocks = self
            .blocks
            .range(seq_key(POSTINGS, block_of(from))..=seq_key(POSTINGS, block_of(to - 1)));
        let tails = self
            .tree
            .range(seq_key(TAIL, tail_start)..seq_key(TAIL, to));
        let block_seqs = move |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (key, value) = item.map_err(backend)?;
            let name = format!("the postings of {}", block_name(be_u64(&key[1..])?));
            lookup_postings(&self.resolve_for_lookup(&value, &name)?, &term, &name)
        };
        let tail_seqs = move |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (key, value) = item.map_err(backend)?;
            let first = be_u64(&key[1..])?;
            let name = tail_name(first);
            let value = self.tail_bytes(first, &value)?;
            let (_, _, postings) = split_tail(&value, &name)?;
            lookup_postings(postings, &term, &name)
        };
        if rev {
            Box::new(
                tails
                    .rev()
                    .map(tail_seqs)
                    .chain(blocks.rev().map(block_seqs))
                    .flat_map(in_range),
            )
        } else {
            Box::new(
                blocks
                    .map(block_seqs)
                    .chain(tails.map(tail_seqs))
                    .flat_map(in_range),
            )
        }
    }

    /// Every posting whose term `pick` accepts, mapped to what it names (whole-index listings, for verification).
    pub(super) fn every_posting<T: Send + 'static>(
        &self,
        pick: fn(&Term) -> Option<T>,
    ) -> StoreIter<'_, (T, u64)> {
        let blocks = self.blocks.scan_prefix([POSTINGS]).map(|item| {
            let (key, value) = item.map_err(backend)?;
            let block = be_u64(&key[1..])?;
            let name = format!("the postings of {}", block_name(block));
            let entries = all_postings(&self.resolve(&value, &name)?, &name)?;
            within(&entries, block_first(block), block_first(block + 1), &name)?;
            Ok(entries)
        });
        let tails = self.tree.scan_prefix([TAIL]).map(|item| {
            let (key, value) = item.map_err(backend)?;
            let first = be_u64(&key[1..])?;
            let name = tail_name(first);
            let value = self.tail_bytes(first, &value)?;
            let (_, records, postings) = split_tail(&value, &name)?;
            let end = records.decode(&name)?.last().map_or(first, |r| r.seq + 1);
            let entries = all_postings(postings, &name)?;
            within(&entries, first, end, &name)?;
            Ok(entries)
        });
        Box::new(
            blocks
                .chain(tails)
                .flat_map(move |unit| -> Vec<StoreResult<(T, u64)>> {
                    match unit {
                        Ok(entries) => entries
                            .into_iter()
                            .filter_map(|(term, seq)| pick(&term).map(|named| Ok((named, seq))))
                            .collect(),
                        Err(error) => vec![Err(error)],
                    }
                }),
        )
    }
}

/// Postings name only events of their own unit: one past it (beyond the head, say) was planted.
fn within(entries: &[(Term, u64)], from: u64, to: u64, unit: &str) -> StoreResult<()> {
    match entries.iter().find(|(_, seq)| *seq < from || *seq >= to) {
        Some((_, seq)) => Err(StoreError::Corrupt(format!(
            "{unit} names event {seq}, outside the events {from}..{to} it indexes"
        ))),
        None => Ok(()),
    }
}

/// The records of a tail chunk stored under `first`.
pub(super) fn tail_records(first: u64, value: &[u8]) -> StoreResult<Vec<StoredRecord>> {
    let name = tail_name(first);
    let (_, records, _) = split_tail(value, &name)?;
    let records = records.decode(&name)?;
    if records.first().is_some_and(|r| r.seq < first) {
        return Err(StoreError::Corrupt(format!("{name} holds earlier events")));
    }
    Ok(records)
}
