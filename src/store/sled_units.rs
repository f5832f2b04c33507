//! The byte layout of the embedded log's stored units: tail chunks (one per group commit, uncompressed, with their
//! postings), sealed blocks of [`BLOCK_EVENTS`] events (a zstd frame with the ledger's dictionary) and the postings
//! run of each sealed block (docs/FORMAT.md, "Stored layout"). The postings' terms and byte layout are in
//! sled_postings.rs.

use super::sled_bytes::{corrupt, Reader};
use super::sled_columns::{decode_columns, encode_columns};
use super::{StoreError, StoreResult, StoredRecord};
use crate::time::LedgerTime;
use sha2::{Digest, Sha256};

pub use super::sled_postings::{
    all_postings, attribute_term, encode_postings, key_term, lookup_postings, term_attribute,
    term_key, Term, LIFECYCLE_TERM,
};

/// Events per sealed block: block `b` holds seqs `b·1024+1 ..= (b+1)·1024` (fewer only after archival pruning).
pub const BLOCK_EVENTS: u64 = 1024;
/// zstd level of sealed blocks: level 6 compresses a demo-ledger block (~440 KB of columns) in ~2 ms, 3 % smaller
/// than level 3 in ~0.7 ms; level 9 saves 3 % more for twice the time, on the writer's thread (docs/PERFORMANCE.md).
const BLOCK_LEVEL: i32 = 6;
/// Largest trained dictionary.
const DICTIONARY_BYTES: usize = 16 * 1024;
const UNIT_VERSION: u8 = 1;
/// A sealed block whose records are laid out by column, without the hashes that follow from the record before
/// (sled_columns.rs, docs/FORMAT.md §4).
const BLOCK_COLUMNS: u8 = 2;
/// `version ‖ first seq ‖ count ‖ first time ‖ last time ‖ raw length ‖ dictionary id`.
const BLOCK_HEADER: usize = 1 + 8 + 4 + 8 + 8 + 4 + 32;
/// A block compressed without a dictionary names this id.
pub const NO_DICTIONARY: [u8; 32] = [0; 32];

pub fn block_of(seq: u64) -> u64 {
    seq.saturating_sub(1) / BLOCK_EVENTS
}

pub fn block_first(block: u64) -> u64 {
    block * BLOCK_EVENTS + 1
}

/// `count u32 ‖ (length u32 ‖ seq u64 ‖ record)*`: records with their seqs, so that a missing one is a gap.
pub fn encode_records(records: &[StoredRecord]) -> Vec<u8> {
    let size: usize = records.iter().map(|r| r.body.len() + 130).sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    for record in records {
        let encoded = record.encode();
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(&record.seq.to_be_bytes());
        out.extend_from_slice(&encoded);
    }
    out
}

pub fn decode_records(bytes: &[u8], unit: &str) -> StoreResult<Vec<StoredRecord>> {
    let mut reader = Reader { bytes, unit };
    let count = reader.u32()? as usize;
    let mut records = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let len = reader.u32()? as usize;
        let seq = reader.u64()?;
        records.push(StoredRecord::decode(seq, reader.take(len)?)?);
    }
    if !reader.bytes.is_empty() {
        return Err(corrupt(format!("{unit} has bytes after its records")));
    }
    Ok(records)
}

/// A group commit's events before they are sealed: `version ‖ first time ‖ records length u32 ‖ records ‖
/// postings` (decoded whole only by tests; reads split it).
pub(super) fn tail_name(seq: u64) -> String {
    format!("the tail chunk at event {seq}")
}

pub(super) fn block_name(block: u64) -> String {
    format!("block {block} (events {}..)", block_first(block))
}

#[cfg(test)]
pub struct TailChunk {
    pub records: Vec<StoredRecord>,
    pub postings: Vec<(Term, u64)>,
}

/// A tail chunk whose records part is one zstd frame (level 1): every event passes through sled once in a chunk
/// and sled keeps dead versions in its file, so the chunk's size is most of sled's disk use (docs/PERFORMANCE.md).
const TAIL_COMPRESSED: u8 = 2;
const TAIL_LEVEL: i32 = 1;

pub fn encode_tail(records: &[StoredRecord], postings: Vec<(Term, u64)>) -> Vec<u8> {
    let raw = encode_records(records);
    // Compressing a buffer in memory cannot fail short of allocation; keep the raw records if it ever does.
    let (version, body) = match zstd::bulk::compress(&raw, TAIL_LEVEL) {
        Ok(compressed) if compressed.len() < raw.len() => (TAIL_COMPRESSED, compressed),
        _ => (UNIT_VERSION, raw),
    };
    let postings = encode_postings(postings);
    let mut out = Vec::with_capacity(13 + body.len() + postings.len());
    out.push(version);
    let first_time = records.first().map_or(0, |r| r.time.as_micros());
    out.extend_from_slice(&first_time.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&postings);
    out
}

/// A tail chunk's records part, decoded only when asked for.
pub struct TailRecords<'a> {
    bytes: &'a [u8],
    compressed: bool,
}

impl TailRecords<'_> {
    pub fn decode(&self, unit: &str) -> StoreResult<Vec<StoredRecord>> {
        if !self.compressed {
            return decode_records(self.bytes, unit);
        }
        let raw = zstd::stream::decode_all(self.bytes)
            .map_err(|e| corrupt(format!("{unit} does not decompress: {e}")))?;
        decode_records(&raw, unit)
    }
}

/// Splits a tail chunk into its first event's time, its records and its postings' bytes.
pub fn split_tail<'a>(
    bytes: &'a [u8],
    unit: &'a str,
) -> StoreResult<(LedgerTime, TailRecords<'a>, &'a [u8])> {
    let mut reader = Reader { bytes, unit };
    let compressed = match reader.take(1)?[0] {
        UNIT_VERSION => false,
        TAIL_COMPRESSED => true,
        _ => return Err(corrupt(format!("{unit} has an unknown version"))),
    };
    let time = LedgerTime::from_micros(reader.u64()? as i64);
    let len = reader.u32()? as usize;
    let records = reader.take(len)?;
    Ok((
        time,
        TailRecords {
            bytes: records,
            compressed,
        },
        reader.bytes,
    ))
}

#[cfg(test)]
pub fn decode_tail(bytes: &[u8], unit: &str) -> StoreResult<TailChunk> {
    let (_, records, postings) = split_tail(bytes, unit)?;
    Ok(TailChunk {
        records: records.decode(unit)?,
        postings: all_postings(postings, unit)?,
    })
}

/// A sealed block's uncompressed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub first_seq: u64,
    pub count: u32,
    pub first_time: LedgerTime,
    pub last_time: LedgerTime,
    pub raw_len: u32,
    pub dictionary: [u8; 32],
}

/// Compresses `records` (at least one) into a block value with `dictionary` (`None`: no dictionary).
pub fn encode_block(
    records: &[StoredRecord],
    dictionary: Option<(&[u8; 32], &[u8])>,
) -> StoreResult<Vec<u8>> {
    let raw = encode_columns(records);
    let io = |e: std::io::Error| StoreError::Backend(format!("compressing a block: {e}"));
    let mut compressor = match dictionary {
        Some((_, bytes)) => zstd::bulk::Compressor::with_dictionary(BLOCK_LEVEL, bytes),
        None => zstd::bulk::Compressor::new(BLOCK_LEVEL),
    }
    .map_err(io)?;
    compressor.include_checksum(true).map_err(io)?;
    let frame = compressor.compress(&raw).map_err(io)?;
    let (first, last) = match (records.first(), records.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => {
            return Err(StoreError::Backend(
                "an empty block cannot be sealed".into(),
            ))
        }
    };
    let mut out = Vec::with_capacity(BLOCK_HEADER + frame.len());
    out.push(BLOCK_COLUMNS);
    out.extend_from_slice(&first.seq.to_be_bytes());
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    out.extend_from_slice(&first.time.as_micros().to_be_bytes());
    out.extend_from_slice(&last.time.as_micros().to_be_bytes());
    out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    out.extend_from_slice(dictionary.map_or(&NO_DICTIONARY, |(id, _)| id));
    out.extend_from_slice(&frame);
    Ok(out)
}

pub fn block_header(bytes: &[u8], unit: &str) -> StoreResult<BlockHeader> {
    let mut reader = Reader { bytes, unit };
    let version = reader.take(1)?[0];
    if version != UNIT_VERSION && version != BLOCK_COLUMNS {
        return Err(corrupt(format!("{unit} has an unknown version")));
    }
    let first_seq = reader.u64()?;
    let count = reader.u32()?;
    let first_time = LedgerTime::from_micros(reader.u64()? as i64);
    let last_time = LedgerTime::from_micros(reader.u64()? as i64);
    let raw_len = reader.u32()?;
    let mut dictionary = [0u8; 32];
    dictionary.copy_from_slice(reader.take(32)?);
    Ok(BlockHeader {
        first_seq,
        count,
        first_time,
        last_time,
        raw_len,
        dictionary,
    })
}

/// Decompresses a block with its dictionary's bytes (checked against the id) and checks the header against the
/// records it holds: a flipped byte fails the frame's checksum, a lying header is named.
pub fn decode_block(
    bytes: &[u8],
    dictionary: Option<&[u8]>,
    unit: &str,
) -> StoreResult<Vec<StoredRecord>> {
    let header = block_header(bytes, unit)?;
    let frame = &bytes[BLOCK_HEADER..];
    let damaged = |e: std::io::Error| corrupt(format!("{unit} does not decompress: {e}"));
    let mut decompressor = match dictionary {
        Some(dict) => zstd::bulk::Decompressor::with_dictionary(dict),
        None => zstd::bulk::Decompressor::new(),
    }
    .map_err(damaged)?;
    let raw = decompressor
        .decompress(frame, header.raw_len as usize)
        .map_err(damaged)?;
    let records = if bytes[0] == BLOCK_COLUMNS {
        decode_columns(&raw, unit)?
    } else {
        decode_records(&raw, unit)?
    };
    let lies = match (records.first(), records.last()) {
        (Some(first), Some(last)) => {
            first.seq != header.first_seq
                || records.len() != header.count as usize
                || first.time != header.first_time
                || last.time != header.last_time
                || records.windows(2).any(|pair| pair[0].seq >= pair[1].seq)
        }
        _ => true,
    };
    if lies {
        return Err(corrupt(format!(
            "{unit}'s header (events {}.., {} of them) does not describe the events it holds",
            header.first_seq, header.count
        )));
    }
    Ok(records)
}

/// A dictionary's id: the SHA-256 of its bytes.
pub fn dictionary_id(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Trains a dictionary from event bodies; `None` when zstd finds too little to learn from.
pub fn train_dictionary(records: &[StoredRecord]) -> Option<Vec<u8>> {
    let samples: Vec<&[u8]> = records.iter().map(|r| r.body.as_slice()).collect();
    zstd::dict::from_samples(&samples, DICTIONARY_BYTES)
        .ok()
        .filter(|dict| dict.len() >= 256)
}

// The unit tests (sled_units_tests.rs) take `use super::*` and name key ids, which moved with the postings.
#[cfg(test)]
use uuid::Uuid;

#[cfg(test)]
#[path = "sled_units_tests.rs"]
mod tests;
