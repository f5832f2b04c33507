//! Reading rows from PostgreSQL: paging through a query, mapping rows to records and seqs, and the key ranges
//! the queries take.

use super::{PgStore, StoreIter, StoreResult, StoredRecord, PAGE};
use postgres::types::ToSql;

impl PgStore {
    /// Pages through `sql` (which takes `$1` = the key to continue after, `$2` = the page size and ends with an
    /// ORDER BY on that key), mapping rows with `map`, which also returns the key of the row.
    pub(super) fn paged<'a, T: Send + 'a>(
        &'a self,
        sql: &'static str,
        start: i64,
        params: Vec<Box<dyn ToSql + Sync + Send>>,
        map: fn(&postgres::Row) -> StoreResult<(i64, T)>,
    ) -> StoreIter<'a, T> {
        self.keyset(sql, start, params, one, map)
    }

    /// Keyset paging over any key: `sql` takes the key to continue after as its first parameters (`cursor` lists
    /// them), then the page size, then `params`, and ends with `ORDER BY` that key `LIMIT` the page size; `map`
    /// returns each row's key and item. Each page is one query, so a listing never holds more than a page.
    pub(super) fn keyset<'a, K: Send + Sync + 'a, T: Send + 'a>(
        &'a self,
        sql: &'static str,
        start: K,
        params: Vec<Box<dyn ToSql + Sync + Send>>,
        cursor: fn(&K) -> Vec<&(dyn ToSql + Sync)>,
        map: fn(&postgres::Row) -> StoreResult<(K, T)>,
    ) -> StoreIter<'a, T> {
        let mut after = start;
        let mut buffer: std::collections::VecDeque<StoreResult<T>> = Default::default();
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            if buffer.is_empty() && !done {
                let fetched = self.read(|client| {
                    let mut args = cursor(&after);
                    args.push(&PAGE);
                    args.extend(params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)));
                    client.query(sql, &args)
                });
                match fetched {
                    Ok(rows) => {
                        done = (rows.len() as i64) < PAGE;
                        for row in &rows {
                            match map(row) {
                                Ok((key, item)) => {
                                    after = key;
                                    buffer.push_back(Ok(item));
                                }
                                Err(e) => {
                                    buffer.push_back(Err(e));
                                    done = true;
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        done = true;
                        buffer.push_back(Err(e));
                    }
                }
            }
            buffer.pop_front()
        }))
    }
}

/// The parameters of a one-column key.
fn one<A: ToSql + Sync>(key: &A) -> Vec<&(dyn ToSql + Sync)> {
    vec![key]
}

/// The parameters of a two-column key (`(a, b) > ($1, $2)`).
pub(super) fn pair<A: ToSql + Sync, B: ToSql + Sync>(key: &(A, B)) -> Vec<&(dyn ToSql + Sync)> {
    vec![&key.0, &key.1]
}

pub(super) fn record_of(row: &postgres::Row) -> StoreResult<(i64, StoredRecord)> {
    let seq: i64 = row.get(0);
    let bytes: Vec<u8> = row.get(1);
    Ok((seq, StoredRecord::decode(seq as u64, &bytes)?))
}

pub(super) fn seq_of(row: &postgres::Row) -> StoreResult<(i64, u64)> {
    let seq: i64 = row.get(0);
    Ok((seq, seq as u64))
}

/// The smallest byte string after every string starting with `prefix` (None: there is none).
pub(super) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A seq range as PostgreSQL bigints (seqs beyond i64 cannot exist there).
pub(super) fn bigint_range(from: u64, to: u64) -> (i64, i64) {
    (
        from.min(i64::MAX as u64) as i64,
        to.min(i64::MAX as u64) as i64,
    )
}
