//! The PostgreSQL store's whole-index listings (key, time, attribute) and side-entry scans, each paged by keyset
//! on its `ORDER BY` columns, so that a listing holds one page of rows at a time, never a whole table.

use super::rows::{pair, prefix_end};
use super::{PgStore, StoreError, StoreIter, StoreResult};
use crate::time::LedgerTime;
use uuid::Uuid;

/// A side scan's place: the last key read, and whether that key itself is still to come.
type SideCursor = (Vec<u8>, bool);
/// A side entry: key and value.
type SideEntry = (Vec<u8>, Vec<u8>);

impl PgStore {
    pub(super) fn list_key_index(&self) -> StoreIter<'_, (Uuid, u64)> {
        // The nil id sorts first (PostgreSQL compares uuids bytewise) and seqs start at 1.
        self.keyset(
            "SELECT key_id, seq FROM kl_key_index WHERE (key_id, seq) > ($1, $2) \
             ORDER BY key_id, seq LIMIT $3",
            (Uuid::nil(), i64::MIN),
            Vec::new(),
            pair,
            |row| {
                let (key_id, seq): (Uuid, i64) = (row.get(0), row.get(1));
                Ok(((key_id, seq), (key_id, seq as u64)))
            },
        )
    }

    pub(super) fn list_time_index(&self) -> StoreIter<'_, (LedgerTime, u64)> {
        self.keyset(
            "SELECT time_us, seq FROM kl_time_index WHERE (time_us, seq) > ($1, $2) \
             ORDER BY time_us, seq LIMIT $3",
            (i64::MIN, i64::MIN),
            Vec::new(),
            pair,
            |row| {
                let (time, seq): (i64, i64) = (row.get(0), row.get(1));
                Ok(((time, seq), (LedgerTime::from_micros(time), seq as u64)))
            },
        )
    }

    pub(super) fn list_attribute_index(&self) -> StoreIter<'_, ([u8; 16], u64)> {
        // The empty string sorts before every digest.
        self.keyset(
            "SELECT digest, seq FROM kl_attribute_index WHERE (digest, seq) > ($1, $2) \
             ORDER BY digest, seq LIMIT $3",
            (Vec::new(), i64::MIN),
            Vec::new(),
            pair,
            |row| {
                let (bytes, seq): (Vec<u8>, i64) = (row.get(0), row.get(1));
                let digest: [u8; 16] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("attribute digest is not 16 bytes".into()))?;
                Ok(((bytes, seq), (digest, seq as u64)))
            },
        )
    }

    /// The side entries under `prefix` from `from` on, by key.
    pub(super) fn list_side(&self, prefix: &[u8], from: &[u8]) -> StoreIter<'_, SideEntry> {
        // `from` itself is still to come only on the first page; each later page starts after the last key read.
        let start = (from.max(prefix).to_vec(), true);
        let map: fn(&postgres::Row) -> StoreResult<(SideCursor, SideEntry)> = |row| {
            let key: Vec<u8> = row.get(0);
            Ok(((key.clone(), false), (key, row.get(1))))
        };
        match prefix_end(prefix) {
            Some(end) => self.keyset(
                "SELECT key, value FROM kl_side WHERE key >= $1 AND (key > $1 OR $2) AND key < $4 \
                 ORDER BY key LIMIT $3",
                start,
                vec![Box::new(end)],
                pair,
                map,
            ),
            None => self.keyset(
                "SELECT key, value FROM kl_side WHERE key >= $1 AND (key > $1 OR $2) ORDER BY key LIMIT $3",
                start,
                Vec::new(),
                pair,
                map,
            ),
        }
    }
}
