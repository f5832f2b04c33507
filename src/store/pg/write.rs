//! Writing to PostgreSQL: one batch as one transaction, conditional on the head it chains from.

use super::backend;
use crate::store::{AppendBatch, StoreError, StoreResult, StoredRecord};
use postgres::Client;
use uuid::Uuid;

/// One batch in one transaction, conditional on the stored head being the event the batch chains from.
pub(super) fn write(client: &mut Client, batch: &AppendBatch) -> StoreResult<()> {
    let mut tx = client.transaction().map_err(backend)?;
    if let Some(first) = batch.records.first() {
        let head: Option<i64> = tx
            .query_opt("SELECT seq FROM kl_head WHERE id = 1 FOR UPDATE", &[])
            .map_err(backend)?
            .map(|row| row.get(0));
        let expected = head.map_or(1, |seq| seq as u64 + 1);
        if first.seq != expected {
            return Err(StoreError::OutOfOrder {
                expected,
                found: first.seq,
            });
        }
        let seqs: Vec<i64> = batch.records.iter().map(|r| r.seq as i64).collect();
        let times: Vec<i64> = batch.records.iter().map(|r| r.time.as_micros()).collect();
        let bodies: Vec<Vec<u8>> = batch.records.iter().map(StoredRecord::encode).collect();
        tx.execute(
            "INSERT INTO kl_events SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])",
            &[&seqs, &times, &bodies],
        )
        .map_err(backend)?;
    }
    let (keys, key_seqs): (Vec<Uuid>, Vec<i64>) =
        batch.key_index.iter().map(|(k, s)| (*k, *s as i64)).unzip();
    tx.execute(
        "INSERT INTO kl_key_index SELECT * FROM unnest($1::uuid[], $2::bigint[]) ON CONFLICT DO NOTHING",
        &[&keys, &key_seqs],
    )
    .map_err(backend)?;
    let (times, time_seqs): (Vec<i64>, Vec<i64>) = batch
        .time_index
        .iter()
        .map(|(t, s)| (t.as_micros(), *s as i64))
        .unzip();
    tx.execute(
        "INSERT INTO kl_time_index SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING",
        &[&times, &time_seqs],
    )
    .map_err(backend)?;
    let lifecycle: Vec<i64> = batch.lifecycle_index.iter().map(|s| *s as i64).collect();
    tx.execute(
        "INSERT INTO kl_lifecycle_index SELECT * FROM unnest($1::bigint[]) ON CONFLICT DO NOTHING",
        &[&lifecycle],
    )
    .map_err(backend)?;
    let (digests, digest_seqs): (Vec<Vec<u8>>, Vec<i64>) = batch
        .attribute_index
        .iter()
        .map(|(d, s)| (d.to_vec(), *s as i64))
        .unzip();
    tx.execute(
        "INSERT INTO kl_attribute_index SELECT * FROM unnest($1::bytea[], $2::bigint[]) ON CONFLICT DO NOTHING",
        &[&digests, &digest_seqs],
    )
    .map_err(backend)?;
    if !batch.side_removals.is_empty() {
        tx.execute(
            "DELETE FROM kl_side WHERE key = ANY($1)",
            &[&batch.side_removals],
        )
        .map_err(backend)?;
    }
    if !batch.side.is_empty() {
        // A later entry for the same key wins, as in a sled batch.
        let mut latest: std::collections::BTreeMap<&[u8], &[u8]> = Default::default();
        for (key, value) in &batch.side {
            latest.insert(key, value);
        }
        let (side_keys, side_values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = latest
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .unzip();
        tx.execute(
            "INSERT INTO kl_side SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&side_keys, &side_values],
        )
        .map_err(backend)?;
    }
    if let Some(last) = batch.records.last() {
        tx.execute(
            "INSERT INTO kl_head VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE \
             SET seq = excluded.seq, hash = excluded.hash, time_us = excluded.time_us",
            &[
                &(last.seq as i64),
                &last.hash.to_vec(),
                &last.time.as_micros(),
            ],
        )
        .map_err(backend)?;
        // Delivered to followers' LISTEN when (and only if) the transaction commits.
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&super::APPENDED_CHANNEL, &last.seq.to_string()],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}
