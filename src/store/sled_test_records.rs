//! Records and batches the embedded store's unit tests append: a `key.used` body per seq, times 10 µs apart, keys
//! cycling over three ids.

use super::{AppendBatch, LogStore, SledStore, StoredRecord};
use crate::chain::SignerId;
use crate::time::LedgerTime;

pub(super) fn record(seq: u64) -> StoredRecord {
    StoredRecord {
        seq,
        time: LedgerTime::from_micros(seq as i64 * 10),
        hash: [seq as u8; 32],
        signature: [0; 64],
        signer: SignerId([0; 8]),
        body: format!("{{\"seq\":{seq},\"type\":\"key.used\",\"outcome\":\"allowed\"}}")
            .into_bytes(),
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
