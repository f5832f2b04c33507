//! Reads that check what they return: every record handed out has its hash recomputed from its body and the hash
//! of the record before it (the chain link), and its body must name its own seq and time. A mismatch is a
//! [`LedgerError::Corrupt`] naming the seq — never forged data on screen. A record copied to another seq fails
//! too, since its body was hashed after a different predecessor. (Signatures are checked where the whole log is
//! walked: open, replay and `audit verify`.)

use crate::chain::{chain_hash, Hash32, GENESIS_PREV};
use crate::error::{LedgerError, LedgerResult};
use crate::store::{LogStore, StoredRecord};

/// Checks records in any order, remembering the last one so contiguous reads cost no extra lookup.
pub struct CheckedReader<'a> {
    store: &'a dyn LogStore,
    last: Option<(u64, Hash32)>,
}

impl<'a> CheckedReader<'a> {
    pub fn new(store: &'a dyn LogStore) -> Self {
        Self { store, last: None }
    }

    /// The record at `seq`, checked against its predecessor; `None` when no record is stored there.
    pub fn get(&mut self, seq: u64) -> LedgerResult<Option<StoredRecord>> {
        match self.store.get(seq)? {
            Some(record) => self.accept(record).map(Some),
            None => Ok(None),
        }
    }

    /// The record at `seq`, which an index says exists.
    pub fn get_indexed(&mut self, seq: u64) -> LedgerResult<StoredRecord> {
        self.get(seq)?.ok_or_else(|| LedgerError::Corrupt {
            seq,
            problem: "an index names this event but it is missing".into(),
        })
    }

    /// Records `from <= seq < to` in order, each checked; a gap is an error.
    pub fn scan(
        mut self,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = LedgerResult<StoredRecord>> + 'a {
        let store = self.store;
        let mut records = store.scan(from, to);
        let mut expected = from;
        std::iter::from_fn(move || {
            let record = match records.next()? {
                Ok(record) => record,
                Err(e) => return Some(Err(e.into())),
            };
            if record.seq != expected {
                return Some(Err(LedgerError::Corrupt {
                    seq: expected,
                    problem: format!(
                        "event {expected} is missing (next stored is {})",
                        record.seq
                    ),
                }));
            }
            expected += 1;
            Some(self.accept(record))
        })
    }

    fn accept(&mut self, record: StoredRecord) -> LedgerResult<StoredRecord> {
        let seq = record.seq;
        let prev = match self.last {
            Some((last, hash)) if last + 1 == seq => hash,
            _ if seq <= 1 => GENESIS_PREV,
            _ => match self.store.get(seq - 1)? {
                Some(previous) => previous.hash,
                None => {
                    if let Some(prefix) =
                        crate::store::archived_prefix(self.store)?.filter(|p| seq - 1 <= p.size)
                    {
                        return Err(prefix.reached(format!("event {seq}")));
                    }
                    return Err(LedgerError::Corrupt {
                        seq: seq - 1,
                        problem: format!("event {} is missing before event {seq}", seq - 1),
                    });
                }
            },
        };
        check_record(&record, &prev)?;
        self.last = Some((seq, record.hash));
        Ok(record)
    }
}

/// The record's hash must be SHA-256(domain ‖ `prev` ‖ body), and its body must carry its seq and time.
pub fn check_record(record: &StoredRecord, prev: &Hash32) -> LedgerResult<()> {
    if chain_hash(prev, &record.body) != record.hash {
        return Err(LedgerError::Corrupt {
            seq: record.seq,
            problem:
                "hash does not match the body and the previous event's hash: the record was changed"
                    .into(),
        });
    }
    Ok(())
}
