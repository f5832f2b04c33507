//! Records and batches the embedded store's unit tests append: a `key.used` body per seq, times 10 µs apart, keys
//! cycling over three ids.

use super::{AppendBatch, LogStore, SledStore, StoredRecord};
use crate::chain::{chain_hash, Hash32, SignerId, GENESIS_PREV};
use crate::time::LedgerTime;
use std::sync::Mutex;

fn body(seq: u64) -> Vec<u8> {
    format!("{{\"seq\":{seq},\"type\":\"key.used\",\"outcome\":\"allowed\"}}").into_bytes()
}

/// The chain hash of `seq` over the bodies before it (sealed blocks recompute hashes from bodies, so the test
/// records must chain as the writer's do).
fn hash_of(seq: u64) -> Hash32 {
    static CHAIN: Mutex<Vec<Hash32>> = Mutex::new(Vec::new());
    let mut chain = CHAIN.lock().unwrap_or_else(|p| p.into_inner());
    while (chain.len() as u64) < seq {
        let prev = chain.last().copied().unwrap_or(GENESIS_PREV);
        let next = chain_hash(&prev, &body(chain.len() as u64 + 1));
        chain.push(next);
    }
    chain[seq as usize - 1]
}

pub(super) fn record(seq: u64) -> StoredRecord {
    StoredRecord {
        seq,
        time: LedgerTime::from_micros(seq as i64 * 10),
        hash: hash_of(seq),
        signature: [0; 64],
        signer: SignerId([0; 8]),
        body: body(seq),
    }
}

pub(super) fn append(store: &SledStore, from: u64, count: u64) {
    let records: Vec<_> = (from..from + count).map(record).collect();
    let key_index = records
        .iter()
        .map(|r| (uuid::Uuid::from_u128(u128::from(r.seq % 3)), r.seq))
        .collect();
    store
        .append(&AppendBatch {
            records,
            key_index,
            ..Default::default()
        })
        .unwrap();
}
