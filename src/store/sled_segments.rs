//! Sealed blocks, their postings and dictionaries in append-only segment files beside sled (`log/segments/`):
//! each frame is self-describing and checksummed, fsynced before sled records where it is, and sled keeps only
//! its location (segment, offset, length, SHA-256) — so sled holds the tail and the index, not the evidence.
//!
//! A frame is `magic "KLS1" ‖ kind ‖ block (u64) ‖ length (u32) ‖ payload ‖ SHA-256(payload)`; `block` is the
//! block it belongs to (for a dictionary, the first block compressed with it). The committed end of the newest
//! segment is sled's `E` entry, written in the same transaction as the locations: bytes past it were never
//! committed (a seal cut short) and stay where they are, while new frames go to a new segment.

use super::sled_keys::{backend, seq_key, BLOCK, POSTINGS, SEGMENT_END};
use super::{StoreError, StoreResult};
use std::borrow::Cow;
use std::collections::BTreeSet;

pub(super) const FRAME_MAGIC: &[u8; 4] = b"KLS1";
/// `magic ‖ kind ‖ block ‖ length`.
pub(super) const FRAME_HEADER: usize = 4 + 1 + 8 + 4;
pub(super) const FRAME_TRAILER: usize = 32;
/// A sled value that is a location, not inline bytes: no inline block (version 1) or posting run (a term count
/// below 2^24) starts with this byte, and a location is exactly [`LOCATION_LEN`] bytes.
const LOCATION_TAG: u8 = 0xFE;
const LOCATION_LEN: usize = 1 + 4 + 8 + 4 + 32;

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FrameKind {
    Block,
    Postings,
    Dictionary,
    /// A tail chunk, in the journal (sled_journal.rs); its number is the chunk's first seq.
    Tail,
}

impl FrameKind {
    pub(super) fn byte(self) -> u8 {
        match self {
            FrameKind::Block => b'B',
            FrameKind::Postings => b'P',
            FrameKind::Dictionary => b'D',
            FrameKind::Tail => b'T',
        }
    }

    pub(super) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b'B' => Some(FrameKind::Block),
            b'P' => Some(FrameKind::Postings),
            b'D' => Some(FrameKind::Dictionary),
            b'T' => Some(FrameKind::Tail),
            _ => None,
        }
    }
}

/// Where a payload lies: sled's value for a block or its postings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Location {
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
    pub sha256: [u8; 32],
}

impl Location {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LOCATION_LEN);
        out.push(LOCATION_TAG);
        out.extend_from_slice(&self.segment.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.sha256);
        out
    }

    /// The location a sled value names, or `None` for a value that holds its bytes inline (layout 2).
    pub(super) fn decode(value: &[u8]) -> Option<Self> {
        if value.len() != LOCATION_LEN || value[0] != LOCATION_TAG {
            return None;
        }
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&value[17..49]);
        Some(Self {
            segment: u32::from_be_bytes([value[1], value[2], value[3], value[4]]),
            offset: u64::from_be_bytes(value[5..13].try_into().ok()?),
            len: u32::from_be_bytes(value[13..17].try_into().ok()?),
            sha256,
        })
    }
}

/// A frame to append.
pub(super) struct Frame<'a> {
    pub kind: FrameKind,
    pub block: u64,
    pub payload: &'a [u8],
}

pub(super) fn encode_end(segment: u32, end: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..4].copy_from_slice(&segment.to_be_bytes());
    out[4..].copy_from_slice(&end.to_be_bytes());
    out
}

pub(super) fn decode_end(value: &[u8]) -> StoreResult<(u32, u64)> {
    let raw: [u8; 12] = value.try_into().map_err(|_| {
        StoreError::Corrupt("the segments' committed end has the wrong length".into())
    })?;
    Ok((
        u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
        u64::from_be_bytes([
            raw[4], raw[5], raw[6], raw[7], raw[8], raw[9], raw[10], raw[11],
        ]),
    ))
}

/// A block and its postings, the frames a seal or a rewrite appends.
pub(super) fn block_frames<'a>(block: u64, bytes: &'a [u8], postings: &'a [u8]) -> [Frame<'a>; 2] {
    [
        Frame {
            kind: FrameKind::Block,
            block,
            payload: bytes,
        },
        Frame {
            kind: FrameKind::Postings,
            block,
            payload: postings,
        },
    ]
}

impl super::SledStore {
    /// The bytes a block's or postings' sled value stands for: read from its segment and checked, or the value
    /// itself (layout 2 kept them inline in sled).
    pub(super) fn resolve<'a>(&self, value: &'a [u8], unit: &str) -> StoreResult<Cow<'a, [u8]>> {
        match Location::decode(value) {
            Some(location) => Ok(Cow::Owned(self.segments.read(&location, unit)?)),
            None => Ok(Cow::Borrowed(value)),
        }
    }

    /// [`SledStore::resolve`] without the SHA-256 check, for postings looked up by a query: the 32-byte hash of a
    /// ~70 KiB run per block was most of a rare key's whole-log lookup (docs/PERFORMANCE.md), and every event a
    /// lookup names is read and checked after; verification reads postings through `resolve`.
    pub(super) fn resolve_for_lookup<'a>(
        &self,
        value: &'a [u8],
        unit: &str,
    ) -> StoreResult<Cow<'a, [u8]>> {
        match Location::decode(value) {
            Some(location) => Ok(Cow::Owned(self.segments.read_unhashed(&location, unit)?)),
            None => Ok(Cow::Borrowed(value)),
        }
    }

    /// Appends `frames` to the segments (durably) and records in `cold` where each block and posting run now
    /// lies, with the new committed end: the caller commits `cold` in one sled transaction.
    pub(super) fn store_frames(
        &self,
        cold: &mut sled::Batch,
        frames: &[Frame<'_>],
    ) -> StoreResult<()> {
        if frames.is_empty() {
            return Ok(());
        }
        let (locations, (segment, end)) = self.segments.append(frames)?;
        for (frame, location) in frames.iter().zip(locations) {
            let prefix = match frame.kind {
                FrameKind::Block => BLOCK,
                FrameKind::Postings => POSTINGS,
                // sled keeps the dictionary itself (`D‖id`); its frame is for salvage.
                FrameKind::Dictionary | FrameKind::Tail => continue,
            };
            cold.insert(&seq_key(prefix, frame.block), location.encode());
        }
        cold.insert(SEGMENT_END, &encode_end(segment, end));
        Ok(())
    }

    /// Bytes of the segment files (docs/PERFORMANCE.md splits the log's disk use into sled's and these).
    pub fn segment_bytes_on_disk(&self) -> u64 {
        self.segments.bytes_on_disk()
    }

    /// Bytes the live blocks and postings take in their segments.
    pub(super) fn segment_live_bytes(&self) -> u64 {
        self.blocks
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(_, value)| Location::decode(&value))
            .map(|location| u64::from(location.len) + (FRAME_HEADER + FRAME_TRAILER) as u64)
            .sum()
    }

    /// Every segment a location names.
    pub(super) fn referenced_segments(&self) -> StoreResult<BTreeSet<u32>> {
        let mut out = BTreeSet::new();
        for item in self.blocks.iter() {
            let (_, value) = item.map_err(backend)?;
            if let Some(location) = Location::decode(&value) {
                out.insert(location.segment);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "sled_segments_tests.rs"]
mod tests;
