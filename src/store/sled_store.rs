//! The embedded sled backend: one tree, prefixed keys, one `apply_batch` plus `flush` per group commit.
//!
//! All entries live in a single tree so that a group commit is one atomic `apply_batch` (sled makes batches atomic
//! within a tree; multi-tree transactions are slower and cannot iterate). Key layout:
//! `e‖seq` → record, `k‖key id‖seq` → ∅, `t‖time‖seq` → ∅, `l‖seq` → ∅ (lifecycle events),
//! `a‖attribute digest‖seq` → ∅, `h` → head, `s‖name` → side entries.

use super::{AppendBatch, Head, LogStore, StoreError, StoreIter, StoreResult, StoredRecord};
use crate::time::LedgerTime;
use std::path::Path;
use uuid::Uuid;

pub(super) const EVENT: u8 = b'e';
pub(super) const KEY_INDEX: u8 = b'k';
pub(super) const TIME_INDEX: u8 = b't';
pub(super) const LIFECYCLE_INDEX: u8 = b'l';
const HEAD: &[u8] = b"h";
const SIDE: u8 = b's';
pub(super) const ATTRIBUTE_INDEX: u8 = b'a';

/// The sled-backed log store.
pub struct SledStore {
    pub(super) db: sled::Db,
    pub(super) tree: sled::Tree,
}

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
fn time_bytes(time: LedgerTime) -> [u8; 8] {
    ((time.as_micros() as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from_bytes(bytes: [u8; 8]) -> LedgerTime {
    LedgerTime::from_micros((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

fn key_index_key(key: &Uuid, seq: u64) -> [u8; 25] {
    let mut out = [0u8; 25];
    out[0] = KEY_INDEX;
    out[1..17].copy_from_slice(key.as_bytes());
    out[17..].copy_from_slice(&seq.to_be_bytes());
    out
}

fn attribute_key(digest: &[u8; 16], seq: u64) -> [u8; 25] {
    let mut out = [0u8; 25];
    out[0] = ATTRIBUTE_INDEX;
    out[1..17].copy_from_slice(digest);
    out[17..].copy_from_slice(&seq.to_be_bytes());
    out
}

fn time_index_key(time: LedgerTime, seq: u64) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[0] = TIME_INDEX;
    out[1..9].copy_from_slice(&time_bytes(time));
    out[9..].copy_from_slice(&seq.to_be_bytes());
    out
}

fn side_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(SIDE);
    out.extend_from_slice(key);
    out
}

fn be_u64(bytes: &[u8]) -> StoreResult<u64> {
    let raw: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(raw))
}

fn encode_head(head: &Head) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(&head.seq.to_be_bytes());
    out.extend_from_slice(&head.hash);
    out.extend_from_slice(&head.time.as_micros().to_be_bytes());
    out
}

fn decode_head(bytes: &[u8]) -> StoreResult<Head> {
    if bytes.len() != 48 {
        return Err(StoreError::Corrupt(
            "head entry has the wrong length".into(),
        ));
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes[8..40]);
    let time = i64::from_be_bytes(
        bytes[40..48]
            .try_into()
            .map_err(|_| StoreError::Corrupt("head time".into()))?,
    );
    Ok(Head {
        seq: be_u64(&bytes[..8])?,
        hash,
        time: LedgerTime::from_micros(time),
    })
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. A directory held by another process gives [`StoreError::InUse`].
    pub fn open(dir: &Path) -> StoreResult<Self> {
        // sled's background threads can hold the lock for a moment after the previous handle in this or another
        // process closed; wait up to a second before calling the directory busy.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            match Self::open_once(dir) {
                Err(StoreError::InUse(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                result => return result,
            }
        }
    }

    fn open_once(dir: &Path) -> StoreResult<Self> {
        // sled panics on some damaged files (e.g. "tried to serialize Uninitialized" after a truncation); that is
        // corruption to report, not a crash. The default hook would print the panic, so it is silenced meanwhile.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let opened = std::panic::catch_unwind(|| Self::open_unguarded(dir));
        std::panic::set_hook(hook);
        opened.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StoreError::Corrupt(format!(
                "the store's files are damaged and cannot be opened ({what})"
            )))
        })
    }

    fn open_unguarded(dir: &Path) -> StoreResult<Self> {
        let db = sled::Config::new()
            .path(dir)
            // sled's page cache is most of a server's memory; 128 MiB keeps a serving ledger with 100,000 keys
            // under the 512 MiB target (docs/PERFORMANCE.md) while the recent pages of every index stay cached.
            .cache_capacity(128 * 1024 * 1024)
            // We flush after every batch ourselves; a background flush would only add fsyncs.
            .flush_every_ms(None)
            .open()
            .map_err(|err| match err {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock || is_lock_error(&io) =>
                {
                    StoreError::InUse(dir.to_path_buf())
                }
                other => backend(other),
            })?;
        let tree = db.open_tree("log").map_err(backend)?;
        Ok(Self { db, tree })
    }

    /// The raw tree, for tools and tamper tests that must reach past the ledger's own writes.
    pub fn raw_tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Raw key of the record at `seq` (for tamper tests).
    pub fn raw_event_key(seq: u64) -> Vec<u8> {
        seq_key(EVENT, seq).to_vec()
    }

    /// Raw key of a time-index entry (for tamper tests).
    pub(super) fn raw_time_index_key(time: LedgerTime, seq: u64) -> Vec<u8> {
        time_index_key(time, seq).to_vec()
    }

    /// Raw key of a lifecycle-index entry (for tamper tests).
    pub fn raw_lifecycle_key(seq: u64) -> Vec<u8> {
        seq_key(LIFECYCLE_INDEX, seq).to_vec()
    }

    /// Raw key of an attribute-index entry (for tamper tests).
    pub fn raw_attribute_key(digest: &[u8; 16], seq: u64) -> Vec<u8> {
        attribute_key(digest, seq).to_vec()
    }

    /// Raw key of a key-index entry (for tamper tests).
    pub fn raw_key_index_key(key: &Uuid, seq: u64) -> Vec<u8> {
        key_index_key(key, seq).to_vec()
    }

    fn range_iter<T, F>(&self, from: Vec<u8>, to: Vec<u8>, map: F) -> StoreIter<'_, T>
    where
        F: Fn(&[u8], &[u8]) -> StoreResult<T> + Send + 'static,
        T: 'static,
    {
        Box::new(self.tree.range(from..to).map(move |item| {
            let (key, value) = item.map_err(backend)?;
            map(&key, &value)
        }))
    }
}

fn is_lock_error(io: &std::io::Error) -> bool {
    let text = io.to_string();
    text.contains("lock") || text.contains("temporarily unavailable")
}

impl LogStore for SledStore {
    fn write_batch(&self, batch: &AppendBatch) -> StoreResult<()> {
        // The one writer never does otherwise; a batch that does not continue the head is refused, as PostgreSQL's
        // conditional insert refuses it.
        if let Some(first) = batch.records.first() {
            let expected = self.head()?.map_or(1, |head| head.seq + 1);
            if first.seq != expected {
                return Err(StoreError::OutOfOrder {
                    expected,
                    found: first.seq,
                });
            }
        }
        let mut writes = sled::Batch::default();
        for record in &batch.records {
            writes.insert(&seq_key(EVENT, record.seq), record.encode());
        }
        for (key, seq) in &batch.key_index {
            writes.insert(&key_index_key(key, *seq), &[]);
        }
        for (time, seq) in &batch.time_index {
            writes.insert(&time_index_key(*time, *seq), &[]);
        }
        for seq in &batch.lifecycle_index {
            writes.insert(&seq_key(LIFECYCLE_INDEX, *seq), &[]);
        }
        for (digest, seq) in &batch.attribute_index {
            writes.insert(&attribute_key(digest, *seq), &[]);
        }
        for key in &batch.side_removals {
            writes.remove(side_key(key));
        }
        for (key, value) in &batch.side {
            writes.insert(side_key(key), value.as_slice());
        }
        if let Some(last) = batch.records.last() {
            let head = Head {
                seq: last.seq,
                hash: last.hash,
                time: last.time,
            };
            writes.insert(HEAD, encode_head(&head));
        }
        self.tree.apply_batch(writes).map_err(backend)
    }

    fn sync(&self) -> StoreResult<()> {
        self.db.flush().map_err(backend).map(|_| ())
    }

    fn head(&self) -> StoreResult<Option<Head>> {
        self.tree
            .get(HEAD)
            .map_err(backend)?
            .map(|bytes| decode_head(&bytes))
            .transpose()
    }

    fn last_record(&self) -> StoreResult<Option<StoredRecord>> {
        let last = self
            .tree
            .range(seq_key(EVENT, 0)..=seq_key(EVENT, u64::MAX))
            .next_back()
            .transpose()
            .map_err(backend)?;
        last.map(|(key, value)| Ok(StoredRecord::decode(be_u64(&key[1..])?, &value)?))
            .transpose()
    }

    fn get(&self, seq: u64) -> StoreResult<Option<StoredRecord>> {
        self.tree
            .get(seq_key(EVENT, seq))
            .map_err(backend)?
            .map(|value| Ok(StoredRecord::decode(seq, &value)?))
            .transpose()
    }

    fn scan(&self, from: u64, to: u64) -> StoreIter<'_, StoredRecord> {
        if from >= to {
            return Box::new(std::iter::empty());
        }
        self.range_iter(
            seq_key(EVENT, from).to_vec(),
            seq_key(EVENT, to).to_vec(),
            |key, value| Ok(StoredRecord::decode(be_u64(&key[1..])?, value)?),
        )
    }

    fn first_seq_at_or_after(&self, time: LedgerTime) -> StoreResult<u64> {
        // Start from the last sparse index entry strictly before `time`; at most one index stride to scan.
        let start = self
            .tree
            .range(time_index_key(LedgerTime::MIN, 0)..time_index_key(time, 0))
            .next_back()
            .transpose()
            .map_err(backend)?
            .map(|(key, _)| be_u64(&key[9..17]))
            .transpose()?
            .unwrap_or(1);
        for item in self
            .tree
            .range(seq_key(EVENT, start)..=seq_key(EVENT, u64::MAX))
        {
            let (key, value) = item.map_err(backend)?;
            let seq = be_u64(&key[1..])?;
            let event_time = StoredRecord::decode_time(&value)
                .ok_or_else(|| StoreError::Corrupt(format!("record at seq {seq} has no time")))?;
            if event_time >= time {
                return Ok(seq);
            }
        }
        Ok(self.head()?.map_or(1, |head| head.seq + 1))
    }

    fn key_seqs(&self, key: Uuid, from: u64, to: u64) -> StoreIter<'_, u64> {
        if from >= to {
            return Box::new(std::iter::empty());
        }
        self.range_iter(
            key_index_key(&key, from).to_vec(),
            key_index_key(&key, to).to_vec(),
            |raw, _| be_u64(&raw[17..]),
        )
    }

    fn key_seqs_rev(&self, key: Uuid, from: u64, to: u64) -> StoreIter<'_, u64> {
        if from >= to {
            return Box::new(std::iter::empty());
        }
        let range = key_index_key(&key, from).to_vec()..key_index_key(&key, to).to_vec();
        Box::new(self.tree.range(range).rev().map(|item| {
            let (raw, _) = item.map_err(backend)?;
            be_u64(&raw[17..])
        }))
    }

    fn lifecycle_seqs(&self, from: u64, to: u64) -> StoreIter<'_, u64> {
        if from >= to {
            return Box::new(std::iter::empty());
        }
        self.range_iter(
            seq_key(LIFECYCLE_INDEX, from).to_vec(),
            seq_key(LIFECYCLE_INDEX, to).to_vec(),
            |raw, _| be_u64(&raw[1..]),
        )
    }

    fn key_index(&self) -> StoreIter<'_, (Uuid, u64)> {
        Box::new(self.tree.scan_prefix([KEY_INDEX]).map(|item| {
            let (raw, _) = item.map_err(backend)?;
            if raw.len() != 25 {
                return Err(StoreError::Corrupt(
                    "key index entry has the wrong length".into(),
                ));
            }
            let key =
                Uuid::from_slice(&raw[1..17]).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((key, be_u64(&raw[17..])?))
        }))
    }

    fn attribute_seqs(&self, digest: [u8; 16], from: u64, to: u64) -> StoreIter<'_, u64> {
        if from >= to {
            return Box::new(std::iter::empty());
        }
        self.range_iter(
            attribute_key(&digest, from).to_vec(),
            attribute_key(&digest, to).to_vec(),
            |raw, _| be_u64(&raw[17..]),
        )
    }

    fn attribute_index(&self) -> StoreIter<'_, ([u8; 16], u64)> {
        Box::new(self.tree.scan_prefix([ATTRIBUTE_INDEX]).map(|item| {
            let (raw, _) = item.map_err(backend)?;
            if raw.len() != 25 {
                return Err(StoreError::Corrupt(
                    "attribute index entry has the wrong length".into(),
                ));
            }
            let mut digest = [0u8; 16];
            digest.copy_from_slice(&raw[1..17]);
            Ok((digest, be_u64(&raw[17..])?))
        }))
    }

    fn time_index(&self) -> StoreIter<'_, (LedgerTime, u64)> {
        Box::new(self.tree.scan_prefix([TIME_INDEX]).map(|item| {
            let (raw, _) = item.map_err(backend)?;
            if raw.len() != 17 {
                return Err(StoreError::Corrupt(
                    "time index entry has the wrong length".into(),
                ));
            }
            let mut time = [0u8; 8];
            time.copy_from_slice(&raw[1..9]);
            Ok((time_from_bytes(time), be_u64(&raw[9..])?))
        }))
    }

    fn get_side(&self, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .tree
            .get(side_key(key))
            .map_err(backend)?
            .map(|v| v.to_vec()))
    }

    fn scan_side(&self, prefix: &[u8]) -> StoreIter<'_, (Vec<u8>, Vec<u8>)> {
        Box::new(self.tree.scan_prefix(side_key(prefix)).map(|item| {
            let (key, value) = item.map_err(backend)?;
            Ok((key[1..].to_vec(), value.to_vec()))
        }))
    }

    fn scan_side_from(&self, prefix: &[u8], from: &[u8]) -> StoreIter<'_, (Vec<u8>, Vec<u8>)> {
        let prefix = side_key(prefix);
        Box::new(
            self.tree
                .range(side_key(from)..)
                .take_while(move |item| {
                    item.as_ref()
                        .map_or(true, |(key, _)| key.starts_with(&prefix))
                })
                .map(|item| {
                    let (key, value) = item.map_err(backend)?;
                    Ok((key[1..].to_vec(), value.to_vec()))
                }),
        )
    }

    fn put_side(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> StoreResult<()> {
        let mut writes = sled::Batch::default();
        for (key, value) in entries {
            writes.insert(side_key(key), value.as_slice());
        }
        self.tree.apply_batch(writes).map_err(backend)?;
        self.db.flush().map_err(backend)?;
        Ok(())
    }

    fn remove_side(&self, keys: &[Vec<u8>]) -> StoreResult<()> {
        let mut writes = sled::Batch::default();
        for key in keys {
            writes.remove(side_key(key));
        }
        self.tree.apply_batch(writes).map_err(backend)?;
        self.db.flush().map_err(backend)?;
        Ok(())
    }

    fn size_on_disk(&self) -> StoreResult<u64> {
        self.db.size_on_disk().map_err(backend)
    }

    fn prune_archived(&self, through: u64, keep: &[u64]) -> StoreResult<u64> {
        self.prune(through, keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::SignerId;

    fn record(seq: u64, micros: i64) -> StoredRecord {
        StoredRecord {
            seq,
            time: LedgerTime::from_micros(micros),
            hash: [seq as u8; 32],
            signature: [0; 64],
            signer: SignerId([0; 8]),
            body: format!("{{\"seq\":{seq}}}").into_bytes(),
        }
    }

    #[test]
    fn time_seek_finds_first_event_at_or_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        for start in [1u64, 101] {
            let records: Vec<_> = (start..start + 100)
                .map(|s| record(s, s as i64 * 10))
                .collect();
            let time_index = records
                .iter()
                .step_by(64)
                .map(|r| (r.time, r.seq))
                .collect();
            store
                .append(&AppendBatch {
                    records,
                    time_index,
                    ..Default::default()
                })
                .unwrap();
        }
        assert_eq!(
            store
                .first_seq_at_or_after(LedgerTime::from_micros(0))
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .first_seq_at_or_after(LedgerTime::from_micros(1501))
                .unwrap(),
            151
        );
        assert_eq!(
            store
                .first_seq_at_or_after(LedgerTime::from_micros(1500))
                .unwrap(),
            150
        );
        assert_eq!(
            store
                .first_seq_at_or_after(LedgerTime::from_micros(99_999))
                .unwrap(),
            201
        );
        assert_eq!(store.head().unwrap().unwrap().seq, 200);
        assert_eq!(store.scan(195, 500).count(), 6);
    }

    #[test]
    fn negative_times_sort_before_positive() {
        assert!(time_bytes(LedgerTime::from_micros(-1)) < time_bytes(LedgerTime::from_micros(0)));
        assert_eq!(
            time_from_bytes(time_bytes(LedgerTime::from_micros(-42))).as_micros(),
            -42
        );
    }

    #[test]
    fn second_open_of_a_directory_in_use_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        assert!(matches!(
            SledStore::open(dir.path()),
            Err(StoreError::InUse(_))
        ));
    }
}
