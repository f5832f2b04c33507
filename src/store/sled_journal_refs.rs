//! How a tail chunk's sled value points into the journal: `0xFD ‖ the chunk's first event time ‖ its location`,
//! and how to tell such a reference from a chunk kept inline (as written before the journal).

use super::sled_segments::Location;
use crate::time::LedgerTime;

/// First byte of a tail chunk's sled value when the chunk lies in the journal (a chunk kept inline, as written
/// before the journal, starts with its version, 1 or 2).
const REF_TAG: u8 = 0xFD;
const LOCATION_LEN: usize = 49;
const REF_LEN: usize = 1 + 8 + LOCATION_LEN;

/// `0xFD ‖ the chunk's first event time (i64 BE) ‖ its location in the journal` (sled_segments.rs).
pub(super) fn encode_ref(time: LedgerTime, location: &Location) -> Vec<u8> {
    let mut out = Vec::with_capacity(REF_LEN);
    out.push(REF_TAG);
    out.extend_from_slice(&time.as_micros().to_be_bytes());
    out.extend_from_slice(&location.encode());
    out
}

pub(super) fn ref_location(value: &[u8]) -> Option<Location> {
    if value.len() != REF_LEN || value[0] != REF_TAG {
        return None;
    }
    Location::decode(&value[9..])
}

/// The first event's time a tail chunk's sled value names, without reading the journal; `None` for an inline chunk.
pub(super) fn ref_time(value: &[u8]) -> Option<LedgerTime> {
    ref_location(value)?;
    let raw: [u8; 8] = value[1..9].try_into().ok()?;
    Some(LedgerTime::from_micros(i64::from_be_bytes(raw)))
}
