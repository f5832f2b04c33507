//! The bounded cache of decoded blocks the sled store reads through: by block number, least recently used
//! evicted first once over its byte budget.

use super::StoredRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(super) type Records = Arc<Vec<StoredRecord>>;

/// Decoded blocks by number, least recently used evicted first once over the byte budget.
pub(super) struct BlockCache {
    budget: usize,
    inner: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    blocks: HashMap<u64, (Records, usize, u64)>,
    bytes: usize,
    tick: u64,
}

impl BlockCache {
    pub(super) fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::new(CacheState::default()),
        }
    }

    pub(super) fn get(&self, block: u64) -> Option<Records> {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.tick += 1;
        let tick = state.tick;
        state.blocks.get_mut(&block).map(|entry| {
            entry.2 = tick;
            entry.0.clone()
        })
    }

    pub(super) fn put(&self, block: u64, records: Records) {
        let size: usize = records.iter().map(|r| r.body.len() + 160).sum();
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.tick += 1;
        let tick = state.tick;
        if let Some((_, old, _)) = state.blocks.insert(block, (records, size, tick)) {
            state.bytes -= old;
        }
        state.bytes += size;
        while state.bytes > self.budget && state.blocks.len() > 1 {
            let Some(oldest) = state
                .blocks
                .iter()
                .min_by_key(|(_, e)| e.2)
                .map(|(b, _)| *b)
            else {
                break;
            };
            if let Some((_, size, _)) = state.blocks.remove(&oldest) {
                state.bytes -= size;
            }
        }
    }

    /// Forgets blocks that were rewritten (pruning, tampering).
    pub(super) fn clear(&self) {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *state = CacheState::default();
    }
}
