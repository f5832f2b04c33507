//! Reading a log written in the first sled layout (one item per event and per index entry, keyledger before
//! blocks): it opens read-only, for `audit`, exports and `store migrate`; writes are refused until it is migrated.
//! Keys: `e‖seq` → record, `k‖key id‖seq`, `t‖time‖seq`, `l‖seq`, `a‖digest‖seq` → ∅.

use super::sled_keys::{backend, be_u64, seq_key, time_index_key};
use super::{StoreError, StoreIter, StoreResult, StoredRecord};
use crate::time::LedgerTime;
use uuid::Uuid;

pub(super) const EVENT: u8 = b'e';
const KEY_INDEX: u8 = b'k';
const LIFECYCLE_INDEX: u8 = b'l';
const ATTRIBUTE_INDEX: u8 = b'a';

/// Whether `tree` holds a log in the first layout.
pub(super) fn is_legacy(tree: &sled::Tree) -> StoreResult<bool> {
    Ok(tree
        .scan_prefix([EVENT])
        .next()
        .transpose()
        .map_err(backend)?
        .is_some())
}

fn entry_key(prefix: u8, id: &[u8; 16], seq: u64) -> [u8; 25] {
    let mut out = [0u8; 25];
    out[0] = prefix;
    out[1..17].copy_from_slice(id);
    out[17..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// The first layout's reads over its tree.
pub(super) struct Legacy<'a>(pub &'a sled::Tree);

impl<'a> Legacy<'a> {
    fn range<T: 'static>(
        &self,
        from: Vec<u8>,
        to: Vec<u8>,
        map: impl Fn(&[u8], &[u8]) -> StoreResult<T> + Send + 'static,
    ) -> StoreIter<'a, T> {
        Box::new(self.0.range(from..to).map(move |item| {
            let (key, value) = item.map_err(backend)?;
            map(&key, &value)
        }))
    }

    pub fn last_record(&self) -> StoreResult<Option<StoredRecord>> {
        let last = self
            .0
            .range(seq_key(EVENT, 0)..=seq_key(EVENT, u64::MAX))
            .next_back()
            .transpose()
            .map_err(backend)?;
        last.map(|(key, value)| Ok(StoredRecord::decode(be_u64(&key[1..])?, &value)?))
            .transpose()
    }

    pub fn get(&self, seq: u64) -> StoreResult<Option<StoredRecord>> {
        self.0
            .get(seq_key(EVENT, seq))
            .map_err(backend)?
            .map(|value| Ok(StoredRecord::decode(seq, &value)?))
            .transpose()
    }

    pub fn scan(&self, from: u64, to: u64) -> StoreIter<'a, StoredRecord> {
        self.range(
            seq_key(EVENT, from).to_vec(),
            seq_key(EVENT, to).to_vec(),
            |key, value| Ok(StoredRecord::decode(be_u64(&key[1..])?, value)?),
        )
    }

    /// Scans records from `start` to the first at or after `time`.
    pub fn first_seq_at_or_after(&self, start: u64, time: LedgerTime) -> StoreResult<Option<u64>> {
        for item in self
            .0
            .range(seq_key(EVENT, start)..=seq_key(EVENT, u64::MAX))
        {
            let (key, value) = item.map_err(backend)?;
            let seq = be_u64(&key[1..])?;
            let event_time = StoredRecord::decode_time(&value)
                .ok_or_else(|| StoreError::Corrupt(format!("record at seq {seq} has no time")))?;
            if event_time >= time {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    pub fn key_seqs(&self, key: Uuid, from: u64, to: u64, rev: bool) -> StoreIter<'a, u64> {
        self.id_seqs(KEY_INDEX, key.as_bytes(), from, to, rev)
    }

    pub fn attribute_seqs(&self, digest: [u8; 16], from: u64, to: u64) -> StoreIter<'a, u64> {
        self.id_seqs(ATTRIBUTE_INDEX, &digest, from, to, false)
    }

    fn id_seqs(
        &self,
        prefix: u8,
        id: &[u8; 16],
        from: u64,
        to: u64,
        rev: bool,
    ) -> StoreIter<'a, u64> {
        let range = entry_key(prefix, id, from).to_vec()..entry_key(prefix, id, to).to_vec();
        let seq = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            let (raw, _) = item.map_err(backend)?;
            be_u64(&raw[17..])
        };
        if rev {
            Box::new(self.0.range(range).rev().map(seq))
        } else {
            Box::new(self.0.range(range).map(seq))
        }
    }

    pub fn lifecycle_seqs(&self, from: u64, to: u64) -> StoreIter<'a, u64> {
        self.range(
            seq_key(LIFECYCLE_INDEX, from).to_vec(),
            seq_key(LIFECYCLE_INDEX, to).to_vec(),
            |raw, _| be_u64(&raw[1..]),
        )
    }

    pub fn id_index(&self, attribute: bool) -> StoreIter<'a, ([u8; 16], u64)> {
        let prefix = if attribute {
            ATTRIBUTE_INDEX
        } else {
            KEY_INDEX
        };
        Box::new(self.0.scan_prefix([prefix]).map(|item| {
            let (raw, _) = item.map_err(backend)?;
            if raw.len() != 25 {
                return Err(StoreError::Corrupt(
                    "index entry has the wrong length".into(),
                ));
            }
            let mut id = [0u8; 16];
            id.copy_from_slice(&raw[1..17]);
            Ok((id, be_u64(&raw[17..])?))
        }))
    }

    /// The first layout's sparse time index entry `(time, seq)` bytes, for the time seek's start.
    pub fn time_seek_start(&self, time: LedgerTime) -> StoreResult<u64> {
        Ok(self
            .0
            .range(time_index_key(LedgerTime::MIN, 0)..time_index_key(time, 0))
            .next_back()
            .transpose()
            .map_err(backend)?
            .map(|(key, _)| be_u64(&key[9..17]))
            .transpose()?
            .unwrap_or(1))
    }
}
