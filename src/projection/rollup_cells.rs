//! The cells of one hour's usage rollup, per dimension, in shards shared copy-on-write: what the open hour
//! counts into (rollup_open.rs) and what a rollup checkpoint stores (rollup_checkpoint.rs).

use super::rollup::{self, Cell, Dim};
use crate::event::KeyUsed;
use crate::time::LedgerTime;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

/// Shards per dimension: a reader's snapshot makes the writer copy only the shards it changes afterwards.
const SHARDS: usize = 64;

/// Some of one dimension's cells in one hour, by group.
pub type Shard = HashMap<String, Cell>;

/// The cells of one hour, per dimension, in shards shared copy-on-write.
#[derive(Clone, Debug)]
pub struct HourCells {
    pub(super) hour: i64,
    pub(super) dims: [Vec<Arc<Shard>>; 4],
}

pub(super) fn shard_of(group: &str) -> usize {
    // SipHash with fixed keys: a group always falls in the same shard. The modulo keeps the index in range.
    (BuildHasherDefault::<DefaultHasher>::default().hash_one(group) % SHARDS as u64) as usize
}

impl HourCells {
    /// No cells yet for `hour`.
    pub fn new(hour: i64) -> Self {
        Self {
            hour,
            dims: std::array::from_fn(|_| (0..SHARDS).map(|_| Arc::default()).collect()),
        }
    }

    pub fn hour(&self) -> i64 {
        self.hour
    }

    /// Counts one use in every dimension.
    pub fn add(&mut self, time: LedgerTime, used: &KeyUsed) {
        for dim in Dim::ALL {
            self.add_in(dim, time, used);
        }
    }

    /// Counts one use in `dim` only.
    pub fn add_in(&mut self, dim: Dim, time: LedgerTime, used: &KeyUsed) {
        let group = dim.group_of(used);
        let shard = &mut self.dims[dim.index()][shard_of(&group)];
        Arc::make_mut(shard)
            .entry(group)
            .or_default()
            .add(dim, time, used);
    }

    /// Puts a counted cell back (from a checkpoint).
    pub(super) fn insert(&mut self, dim: Dim, group: String, cell: Cell) {
        Arc::make_mut(&mut self.dims[dim.index()][shard_of(&group)]).insert(group, cell);
    }

    /// Whether no use was counted.
    pub fn is_empty(&self) -> bool {
        self.dims.iter().flatten().all(|shard| shard.is_empty())
    }

    /// The shards of `dim` (cheap: they are shared, not copied).
    pub fn shards(&self, dim: Dim) -> Vec<Arc<Shard>> {
        self.dims[dim.index()].clone()
    }

    /// Every cell of `dim`, in no particular order.
    pub fn cells(&self, dim: Dim) -> impl Iterator<Item = (&String, &Cell)> {
        self.dims[dim.index()].iter().flat_map(|shard| shard.iter())
    }

    /// How many cells `dim` has.
    pub fn len(&self, dim: Dim) -> usize {
        self.dims[dim.index()].iter().map(|shard| shard.len()).sum()
    }

    /// The hour's packed side entries, one per dimension that has cells.
    pub fn packed_entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries(rollup::packed_key)
    }

    /// The cells packed as [`HourCells::packed_entries`], under the keys `key` gives.
    pub(super) fn entries(&self, key: fn(i64, Dim) -> Vec<u8>) -> Vec<(Vec<u8>, Vec<u8>)> {
        Dim::ALL
            .into_iter()
            .filter_map(|dim| {
                let cells: BTreeMap<&str, &Cell> =
                    self.cells(dim).map(|(g, c)| (g.as_str(), c)).collect();
                (!cells.is_empty()).then(|| (key(self.hour, dim), rollup::encode_packed(&cells)))
            })
            .collect()
    }
}
