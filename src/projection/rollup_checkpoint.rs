//! A checkpoint of the open hour's usage cells in the store (FORMAT.md §4, `rollup/o`), so that the writer's
//! open counts only the events after it instead of the whole hour. The writer puts it into a batch (atomic with
//! that batch's events) after every [`CHECKPOINT_EVERY`] uses counted and at clean shutdown. It names the last
//! event it counts by seq and hash: an open uses it only when the log holds that event with that hash and the
//! hour is still the open one; otherwise the hour is counted from its events as before. It is derived data: the
//! log alone decides, and removing it changes nothing but the next open's duration.

use super::rollup::{self, Cell, Dim};
use super::rollup_cells::HourCells;
use crate::chain::Hash32;
use crate::store::{LogStore, StoreResult};
use std::collections::BTreeMap;

/// The side entry holding the checkpoint.
pub const OPEN_CELLS_KEY: &[u8] = b"rollup/o";
/// Uses counted into the open hour between two checkpoints: bounds what an open after a crash counts again, and
/// the store's rewrites of the cells (a busy hour's cells are megabytes).
pub const CHECKPOINT_EVERY: u64 = 1_000_000;
const HEADER: usize = 8 + 8 + 32;

/// The checkpoint of `cells`, which count the hour's uses up to event `through` (whose hash is `hash`):
/// hour (i64 BE) ‖ through (u64 BE) ‖ hash ‖ per dimension of [`Dim::ALL`]: length (u32 BE) ‖ packed cells.
pub fn encode(cells: &HourCells, through: u64, hash: &Hash32) -> (Vec<u8>, Vec<u8>) {
    let mut value = Vec::with_capacity(HEADER + 1024);
    value.extend_from_slice(&cells.hour().to_be_bytes());
    value.extend_from_slice(&through.to_be_bytes());
    value.extend_from_slice(hash);
    for dim in Dim::ALL {
        let sorted: BTreeMap<&str, &Cell> =
            cells.cells(dim).map(|(g, c)| (g.as_str(), c)).collect();
        let packed = rollup::encode_packed(&sorted);
        value.extend_from_slice(&(packed.len() as u32).to_be_bytes());
        value.extend_from_slice(&packed);
    }
    (OPEN_CELLS_KEY.to_vec(), value)
}

/// The stored checkpoint if it counts `hour` up to an event the log holds with the hash it names:
/// `(cells, through)`. `None` when there is none, it is of another hour, or the log does not match it.
pub fn load(store: &dyn LogStore, hour: i64) -> StoreResult<Option<(HourCells, u64)>> {
    let Some(value) = store.get_side(OPEN_CELLS_KEY)? else {
        return Ok(None);
    };
    let Some(header) = value.get(..HEADER) else {
        return Ok(None);
    };
    let number = |range: std::ops::Range<usize>| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&header[range]);
        bytes
    };
    let stored_hour = i64::from_be_bytes(number(0..8));
    let through = u64::from_be_bytes(number(8..16));
    if stored_hour != hour {
        return Ok(None);
    }
    match store.get(through)? {
        Some(record) if record.hash[..] == header[16..HEADER] => {}
        _ => return Ok(None),
    }
    let mut cells = HourCells::new(hour);
    let mut rest = &value[HEADER..];
    for dim in Dim::ALL {
        let Some((length, tail)) = rest.split_first_chunk::<4>() else {
            return Ok(None);
        };
        let length = u32::from_be_bytes(*length) as usize;
        let Some(packed) = tail.get(..length) else {
            return Ok(None);
        };
        for (group, cell) in rollup::decode_packed(packed)? {
            cells.insert(dim, group, cell);
        }
        rest = &tail[length..];
    }
    Ok(Some((cells, through)))
}
