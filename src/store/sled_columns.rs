//! A sealed block's records laid out by column (docs/FORMAT.md §4): seqs, times and body lengths as varints,
//! signer ids, the hashes that do not follow from the record before, signatures, then the bodies back to back.
//!
//! Column by column, zstd sees the bodies without 64 random signature bytes between each pair and the small
//! fields as runs it compresses to almost nothing, and a hash that follows from the one before and its body is
//! not stored at all (the tree's leaf tiles hold each event's leaf): on the demo ledger ~13 bytes per event fewer
//! than records one after another, and 32 fewer than with every hash.

use super::sled_bytes::{corrupt, put_varint, Reader};
use super::{StoreResult, StoredRecord};
use crate::chain::{chain_hash, SignerId};
use crate::time::LedgerTime;

/// Whether record `i` stores its hash: the first of the block, and one that does not follow the record before.
fn keeps_hash(seqs: &[u64], i: usize) -> bool {
    i == 0 || seqs[i - 1] + 1 != seqs[i]
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

pub(super) fn encode_columns(records: &[StoredRecord]) -> Vec<u8> {
    let bodies: usize = records.iter().map(|r| r.body.len()).sum();
    let mut out = Vec::with_capacity(4 + records.len() * 90 + bodies);
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    let mut before = (0u64, 0i64);
    for record in records {
        put_varint(&mut out, record.seq.wrapping_sub(before.0));
        let micros = record.time.as_micros();
        put_varint(&mut out, zigzag(micros.wrapping_sub(before.1)));
        before = (record.seq, micros);
    }
    for record in records {
        put_varint(&mut out, record.body.len() as u64);
    }
    for record in records {
        out.extend_from_slice(&record.signer.0);
    }
    for (i, record) in records.iter().enumerate() {
        if keeps_hash(&seqs, i) {
            out.extend_from_slice(&record.hash);
        }
    }
    for record in records {
        out.extend_from_slice(&record.signature);
    }
    for record in records {
        out.extend_from_slice(&record.body);
    }
    out
}

/// Reads [`encode_columns`]' bytes, recomputing each hash not stored from the record before it and its body.
pub(super) fn decode_columns(bytes: &[u8], unit: &str) -> StoreResult<Vec<StoredRecord>> {
    let mut reader = Reader { bytes, unit };
    let count = reader.u32()? as usize;
    // Every record takes at least 73 bytes (signer and signature): a larger count is a lie, not an allocation.
    if count > bytes.len() / 73 {
        return Err(corrupt(format!("{unit} names more events than it holds")));
    }
    let mut seqs = Vec::with_capacity(count);
    let mut times = Vec::with_capacity(count);
    let mut before = (0u64, 0i64);
    for _ in 0..count {
        let seq = before.0.wrapping_add(reader.varint()?);
        let micros = before.1.wrapping_add(unzigzag(reader.varint()?));
        seqs.push(seq);
        times.push(micros);
        before = (seq, micros);
    }
    let lengths: Vec<usize> = (0..count)
        .map(|_| reader.varint().map(|len| len as usize))
        .collect::<StoreResult<_>>()?;
    let signers = reader.take(count * 8)?;
    let stored_hashes = (0..count).filter(|&i| keeps_hash(&seqs, i)).count();
    let hashes = reader.take(stored_hashes * 32)?;
    let signatures = reader.take(count * 64)?;
    let mut records: Vec<StoredRecord> = Vec::with_capacity(count);
    let mut next_hash = hashes.chunks_exact(32);
    for i in 0..count {
        let body = reader.take(lengths[i])?.to_vec();
        let hash = match (keeps_hash(&seqs, i), records.last()) {
            (false, Some(previous)) => chain_hash(&previous.hash, &body),
            _ => {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(next_hash.next().unwrap_or(&[0u8; 32]));
                hash
            }
        };
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&signatures[i * 64..i * 64 + 64]);
        let mut signer = [0u8; 8];
        signer.copy_from_slice(&signers[i * 8..i * 8 + 8]);
        records.push(StoredRecord {
            seq: seqs[i],
            time: LedgerTime::from_micros(times[i]),
            hash,
            signature,
            signer: SignerId(signer),
            body,
        });
    }
    if !reader.bytes.is_empty() {
        return Err(corrupt(format!("{unit} has bytes after its records")));
    }
    Ok(records)
}
