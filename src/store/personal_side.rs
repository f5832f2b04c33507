//! Where sealed openings of committed personal fields lie (docs/FORMAT.md, "Committed personal fields"): one side
//! entry per group commit, `personal/` ‖ the batch's last seq (u64, big-endian), holding the sealed opening of each
//! of its events that has one. Keyed by the last seq, the entry holding seq S is the first one at or after S, which
//! both stores find with a range read; a [`SealedCursor`] walks them in order for a replay.
//!
//! Value: count (u32) then, per event, seq (u64) ‖ length (u32) ‖ sealed bytes; all big-endian.

use super::side_keys::PERSONAL;
use super::{LogStore, StoreError, StoreResult};

/// The side key of a batch whose last event is `last_seq`.
pub fn key(last_seq: u64) -> Vec<u8> {
    [PERSONAL, &last_seq.to_be_bytes()].concat()
}

pub fn encode(sealed: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + sealed.iter().map(|(_, s)| 12 + s.len()).sum::<usize>());
    out.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
    for (seq, bytes) in sealed {
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

fn corrupt(why: &str) -> StoreError {
    StoreError::Corrupt(format!("sealed personal openings: {why}"))
}

pub fn decode(mut bytes: &[u8]) -> StoreResult<SealedBatch> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> StoreResult<&'a [u8]> {
        if bytes.len() < n {
            return Err(corrupt("cut short"));
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    let count = u32::from_be_bytes(
        take(&mut bytes, 4)?
            .try_into()
            .map_err(|_| corrupt("count"))?,
    );
    let mut out = Vec::with_capacity(count.min(65_536) as usize);
    for _ in 0..count {
        let seq = u64::from_be_bytes(
            take(&mut bytes, 8)?
                .try_into()
                .map_err(|_| corrupt("seq"))?,
        );
        let len = u32::from_be_bytes(
            take(&mut bytes, 4)?
                .try_into()
                .map_err(|_| corrupt("length"))?,
        );
        out.push((seq, take(&mut bytes, len as usize)?.to_vec()));
    }
    if !bytes.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

/// The sealed opening of event `seq`, if it has one.
pub fn sealed_for(store: &dyn LogStore, seq: u64) -> StoreResult<Option<Vec<u8>>> {
    let Some(entry) = store.scan_side_from(PERSONAL, &key(seq)).next() else {
        return Ok(None);
    };
    let (_, value) = entry?;
    Ok(decode(&value)?
        .into_iter()
        .find_map(|(s, sealed)| (s == seq).then_some(sealed)))
}

/// One entry's sealed openings: (seq, sealed bytes) per event.
pub type SealedBatch = Vec<(u64, Vec<u8>)>;

/// Reads sealed openings for ascending seqs, one side entry at a time.
pub struct SealedCursor<'a> {
    store: &'a dyn LogStore,
    /// The entry read last: its last seq and contents.
    current: Option<(u64, SealedBatch)>,
}

impl<'a> SealedCursor<'a> {
    pub fn new(store: &'a dyn LogStore) -> Self {
        Self {
            store,
            current: None,
        }
    }

    /// The sealed opening of `seq` (seqs asked in ascending order).
    pub fn get(&mut self, seq: u64) -> StoreResult<Option<Vec<u8>>> {
        if self.current.as_ref().is_none_or(|(last, _)| *last < seq) {
            self.current = match self.store.scan_side_from(PERSONAL, &key(seq)).next() {
                Some(entry) => {
                    let (key, value) = entry?;
                    let last = key
                        .get(PERSONAL.len()..)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_be_bytes)
                        .ok_or_else(|| corrupt("key"))?;
                    Some((last, decode(&value)?))
                }
                None => None,
            };
        }
        Ok(self.current.as_ref().and_then(|(_, sealed)| {
            sealed
                .iter()
                .find_map(|(s, bytes)| (*s == seq).then(|| bytes.clone()))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    #[test]
    fn each_events_sealed_opening_is_found_by_its_seq() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SledStore::open(&tmp.path().join("db")).unwrap();
        let first = vec![(3, b"three".to_vec()), (5, b"five".to_vec())];
        let second = vec![(9, b"nine".to_vec())];
        store
            .put_side(&[(key(5), encode(&first)), (key(9), encode(&second))])
            .unwrap();
        assert_eq!(sealed_for(&store, 3).unwrap(), Some(b"three".to_vec()));
        assert_eq!(sealed_for(&store, 4).unwrap(), None, "no personal fields");
        assert_eq!(sealed_for(&store, 9).unwrap(), Some(b"nine".to_vec()));
        assert_eq!(sealed_for(&store, 10).unwrap(), None);
        let mut cursor = SealedCursor::new(&store);
        let found: Vec<_> = (1..=10).map(|seq| cursor.get(seq).unwrap()).collect();
        let seqs: Vec<u64> = (1..=10)
            .filter(|s| found[*s as usize - 1].is_some())
            .collect();
        assert_eq!(seqs, vec![3, 5, 9]);

        store
            .put_side(&[(key(12), b"\x00\x00\x00\x02short".to_vec())])
            .unwrap();
        assert!(matches!(
            sealed_for(&store, 12),
            Err(StoreError::Corrupt(_))
        ));
    }
}
