//! The sled trees' names and key encodings: the layout labels, the prefixes of each kind of entry, seq, time,
//! dictionary and side-entry keys, the head's bytes, and sled's errors as the store's.

use super::{Head, StoreError, StoreResult};
use crate::time::LedgerTime;

pub(super) const HEAD: &[u8] = b"h";
pub(super) const LAYOUT: &[u8] = b"L";
/// Blocks with their bytes inline in sled (read, and relabelled [`LAYOUT_CURRENT`] when opened).
pub(super) const LAYOUT_BLOCKS: u8 = 2;
/// Blocks in segment files, every side entry in the `log` tree (read, and relabelled [`LAYOUT_CURRENT`] when opened).
pub(super) const LAYOUT_SEGMENTS: u8 = 3;
/// Layout 4 kept tail chunks inline in sled (read, and relabelled [`LAYOUT_CURRENT`] when opened).
pub(super) const LAYOUT_TILE_FILES: u8 = 4;
/// The layout this version writes: blocks in segment files, tail chunks in the journal, full tiles in tile files,
/// large side entries in the `bulk` tree (1 = one item per event, read-only until migrated).
pub(super) const LAYOUT_CURRENT: u8 = 5;
/// In the blocks tree: the newest segment and its committed end.
pub(super) const SEGMENT_END: &[u8] = b"E";
pub(super) const SIDE: u8 = b's';
pub(super) const TAIL: u8 = b'T';
pub(super) const BLOCK: u8 = b'B';
pub(super) const POSTINGS: u8 = b'P';
pub(super) const TIME: u8 = b't';
pub(super) const DICTIONARY: u8 = b'D';
pub(super) const CURRENT_DICTIONARY: &[u8] = b"d";

pub(super) fn backend(err: sled::Error) -> StoreError {
    match err {
        sled::Error::Corruption { .. } => {
            StoreError::Corrupt(format!("the store's files are damaged: {err}"))
        }
        other => StoreError::Backend(other.to_string()),
    }
}

pub(super) fn seq_key(prefix: u8, seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = prefix;
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Times are signed; flipping the sign bit makes big-endian bytes sort in time order.
pub(super) fn time_bytes(time: LedgerTime) -> [u8; 8] {
    ((time.as_micros() as u64) ^ (1 << 63)).to_be_bytes()
}

pub(super) fn time_from_bytes(bytes: [u8; 8]) -> LedgerTime {
    LedgerTime::from_micros((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// Decodes a `t‖time‖seq` key (both layouts share the time directory's key form).
pub(super) fn time_entry(raw: &[u8]) -> StoreResult<(LedgerTime, u64)> {
    if raw.len() != 17 {
        return Err(StoreError::Corrupt(
            "time index entry has the wrong length".into(),
        ));
    }
    let mut time = [0u8; 8];
    time.copy_from_slice(&raw[1..9]);
    Ok((time_from_bytes(time), be_u64(&raw[9..])?))
}

pub(super) fn time_index_key(time: LedgerTime, seq: u64) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[0] = TIME;
    out[1..9].copy_from_slice(&time_bytes(time));
    out[9..].copy_from_slice(&seq.to_be_bytes());
    out
}

pub(super) fn dictionary_key(id: &[u8; 32]) -> Vec<u8> {
    let mut key = vec![DICTIONARY];
    key.extend_from_slice(id);
    key
}

pub(super) fn side_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(SIDE);
    out.extend_from_slice(key);
    out
}

pub(super) fn be_u64(bytes: &[u8]) -> StoreResult<u64> {
    let raw: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(raw))
}

pub(super) fn encode_head(head: &Head) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(&head.seq.to_be_bytes());
    out.extend_from_slice(&head.hash);
    out.extend_from_slice(&head.time.as_micros().to_be_bytes());
    out
}

pub(super) fn decode_head(bytes: &[u8]) -> StoreResult<Head> {
    if bytes.len() != 48 {
        return Err(StoreError::Corrupt(
            "head entry has the wrong length".into(),
        ));
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes[8..40]);
    let mut time = [0u8; 8];
    time.copy_from_slice(&bytes[40..48]);
    Ok(Head {
        seq: be_u64(&bytes[..8])?,
        hash,
        time: LedgerTime::from_micros(i64::from_be_bytes(time)),
    })
}

/// Side-entry keys are stored under `s`; writes of a group commit use this too.
pub(super) fn stored_side_key(key: &[u8]) -> Vec<u8> {
    side_key(key)
}
