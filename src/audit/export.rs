//! Audit exports: a time window of the chain as JSON lines that proves itself offline — the events with their
//! hashes and signatures, the events just outside the window (so nothing at its edges was left out), the signer
//! endorsements a verifier needs, a signed checkpoint, inclusion proofs of the window's ends and, on request, a
//! consistency proof from an older checkpoint. Written in one pass, in constant memory.

use super::checkpoint::Checkpoint;
use super::merkle::{consistency_proof, inclusion_proof};
use super::tree::StoredTree;
use crate::chain::{Hash32, GENESIS_PREV};
use crate::error::{LedgerError, LedgerResult};
use crate::store::{link_before, with_read_ahead, LogStore, StoredRecord};
use crate::time::LedgerTime;
use rayon::prelude::*;
use serde_json::{json, Value};
use std::io::Write;

/// What to export.
#[derive(Clone, Debug, Default)]
pub struct ExportRequest {
    pub from: Option<LedgerTime>,
    pub to: Option<LedgerTime>,
    /// Prove that the tree of this many events (a checkpoint the reader kept) is a prefix of the exported one.
    pub consistency_from: Option<u64>,
    /// Start at this seq instead of `from` (archival writes whole seq ranges).
    pub first_seq: Option<u64>,
}

/// What was exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub from_seq: u64,
    pub to_seq: u64,
    pub events: u64,
    pub tree_size: u64,
    pub bytes: u64,
}

/// Records read, checked and formatted together (about 1 MB of lines).
const EXPORT_CHUNK: usize = 2048;

fn hexes(hashes: &[Hash32]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

fn write_line(out: &mut dyn Write, value: &Value, bytes: &mut u64) -> LedgerResult<()> {
    let mut text = serde_json::to_vec(value).map_err(|e| LedgerError::Config(e.to_string()))?;
    text.push(b'\n');
    *bytes += text.len() as u64;
    out.write_all(&text)
        .map_err(|e| LedgerError::io("writing the export", e))
}

/// One record as an export line: `kind` is `event`, `boundary` or `endorsement`.
pub fn record_line(kind: &str, record: &StoredRecord, prev: &Hash32) -> LedgerResult<Value> {
    let body: Value = serde_json::from_slice(&record.body).map_err(|e| LedgerError::Corrupt {
        seq: record.seq,
        problem: e.to_string(),
    })?;
    Ok(json!({
        "kind": kind,
        "seq": record.seq,
        "prev_hash": hex::encode(prev),
        "hash": hex::encode(record.hash),
        "signature": hex::encode(record.signature),
        "signer_id": record.signer.to_string(),
        "body": body,
    }))
}

/// An `event` line as [`record_line`] writes it (same keys, same order, same bytes), with the stored canonical
/// body copied in instead of parsed and re-serialised: the export's hot loop.
#[derive(serde::Serialize)]
struct EventLine<'a> {
    body: &'a serde_json::value::RawValue,
    hash: String,
    kind: &'static str,
    prev_hash: String,
    seq: u64,
    signature: String,
    signer_id: String,
}

/// The `event` line of a record whose link to `prev` is checked first, with its line feed.
fn event_line(record: &StoredRecord, prev: &Hash32) -> LedgerResult<Vec<u8>> {
    crate::checked::check_record(record, prev)?;
    format_event_line(record, prev)
}

fn format_event_line(record: &StoredRecord, prev: &Hash32) -> LedgerResult<Vec<u8>> {
    let body = serde_json::from_slice(&record.body).map_err(|e| LedgerError::Corrupt {
        seq: record.seq,
        problem: e.to_string(),
    })?;
    let line = EventLine {
        body,
        hash: hex::encode(record.hash),
        kind: "event",
        prev_hash: hex::encode(prev),
        seq: record.seq,
        signature: hex::encode(record.signature),
        signer_id: record.signer.to_string(),
    };
    let mut text = serde_json::to_vec(&line).map_err(|e| LedgerError::Config(e.to_string()))?;
    text.push(b'\n');
    Ok(text)
}

fn record_with_proof(store: &dyn LogStore, kind: &str, seq: u64, size: u64) -> LedgerResult<Value> {
    let record = store.get(seq)?.ok_or_else(|| LedgerError::Corrupt {
        seq,
        problem: "event is missing".into(),
    })?;
    let prev = if seq == 1 {
        GENESIS_PREV
    } else {
        store
            .get(seq - 1)?
            .map(|r| r.hash)
            .ok_or_else(|| LedgerError::Corrupt {
                seq: seq - 1,
                problem: "event is missing".into(),
            })?
    };
    let mut line = record_line(kind, &record, &prev)?;
    line["inclusion"] = json!(hexes(&inclusion_proof(
        &StoredTree { store },
        seq - 1,
        size
    )?));
    Ok(line)
}

/// Writes the export of `request` against a tree of `checkpoint.size` events (signed as `note`).
pub fn write_export(
    store: &dyn LogStore,
    request: &ExportRequest,
    checkpoint: &Checkpoint,
    note: &str,
    anchor_public_key: &str,
    out: &mut dyn Write,
    progress: Option<&dyn Fn(u64)>,
) -> LedgerResult<ExportSummary> {
    let size = checkpoint.size;
    let archived = crate::store::archived_prefix(store)?;
    let live_from = archived.as_ref().map_or(1, |p| p.size + 1);
    let from_seq = match (request.first_seq, request.from) {
        (Some(seq), _) => seq.clamp(1, size + 1),
        (None, Some(t)) => store.first_seq_at_or_after(t)?.min(size + 1),
        (None, None) => live_from,
    };
    if let Some(prefix) = archived.filter(|p| from_seq <= p.size && request.first_seq.is_none()) {
        return Err(prefix.reached("the export's window".into()));
    }
    let end = match request.to {
        Some(t) => store.first_seq_at_or_after(t)?.min(size + 1),
        None => size + 1,
    };
    let to_seq = end.saturating_sub(1).max(from_seq - 1);
    if let Some(old) = request.consistency_from {
        if old == 0 || old > size {
            return Err(LedgerError::invalid(
                "consistency_from",
                format!("must be 1..={size} (the exported tree size)"),
            ));
        }
    }
    // A seq range after the first event is stated as the time of its first event (archives cut where the time
    // steps, so the event before it is older).
    let requested_from = match (request.first_seq, request.from) {
        (Some(seq), _) if seq > 1 => store.get(from_seq)?.map(|r| r.time),
        (_, from) => from,
    };
    let mut bytes = 0u64;
    let header = json!({
        "kind": "header",
        "format": "keyledger-export",
        "version": 1,
        "origin": checkpoint.origin,
        "anchor_public_key": anchor_public_key,
        "requested_from": requested_from.map(|t| t.to_string()),
        "requested_to": request.to.map(|t| t.to_string()),
        "from_seq": from_seq,
        "to_seq": to_seq,
        "tree_size": size,
    });
    write_line(out, &header, &mut bytes)?;
    for seq in super::rotations::rotation_seqs(store)? {
        if seq <= size && !(from_seq..=to_seq).contains(&seq) {
            write_line(
                out,
                &record_with_proof(store, "endorsement", seq, size)?,
                &mut bytes,
            )?;
        }
    }
    if from_seq > 1 {
        write_line(
            out,
            &record_with_proof(store, "boundary", from_seq - 1, size)?,
            &mut bytes,
        )?;
    }
    let mut prev = if from_seq > 1 {
        store.get(from_seq - 1)?.map_or(GENESIS_PREV, |r| r.hash)
    } else {
        GENESIS_PREV
    };
    let mut events = 0u64;
    // The next chunks are read on a thread of their own; each chunk's links are checked and its lines
    // formatted on every core, then written in order.
    with_read_ahead(store, from_seq, end, EXPORT_CHUNK, |chunks| {
        for chunk in chunks {
            let chunk = chunk?;
            let Some(last) = chunk.last() else {
                continue;
            };
            let first_prev = std::mem::replace(&mut prev, last.hash);
            let lines: Vec<LedgerResult<Vec<u8>>> = chunk
                .par_iter()
                .enumerate()
                .map(|(i, record)| event_line(record, link_before(&chunk, i, &first_prev)))
                .collect();
            for line in lines {
                let line = line?;
                bytes += line.len() as u64;
                out.write_all(&line)
                    .map_err(|e| LedgerError::io("writing the export", e))?;
                events += 1;
                if events % 10_000 == 0 {
                    if let Some(report) = progress {
                        report(events);
                    }
                }
            }
        }
        LedgerResult::Ok(())
    })?;
    if to_seq < size {
        write_line(
            out,
            &record_with_proof(store, "boundary", to_seq + 1, size)?,
            &mut bytes,
        )?;
    }
    write_line(
        out,
        &json!({ "kind": "checkpoint", "note": note }),
        &mut bytes,
    )?;
    let tree = StoredTree { store };
    for seq in [from_seq, to_seq] {
        if events > 0 {
            let proof = inclusion_proof(&tree, seq - 1, size)?;
            write_line(
                out,
                &json!({ "kind": "inclusion", "seq": seq, "proof": hexes(&proof) }),
                &mut bytes,
            )?;
        }
    }
    if let Some(old) = request.consistency_from {
        let proof = consistency_proof(&tree, old, size)?;
        write_line(
            out,
            &json!({ "kind": "consistency", "old_size": old, "proof": hexes(&proof) }),
            &mut bytes,
        )?;
    }
    write_line(out, &json!({ "kind": "end", "events": events }), &mut bytes)?;
    out.flush()
        .map_err(|e| LedgerError::io("writing the export", e))?;
    Ok(ExportSummary {
        from_seq,
        to_seq,
        events,
        tree_size: size,
        bytes,
    })
}

/// The newest checkpoint the writer stored, for readers without the signing key (an open ledger makes a fresh
/// one with `Ledger::checkpoint`). Its signature is checked by whoever reads the export.
pub fn newest_stored_checkpoint(store: &dyn LogStore) -> LedgerResult<(Checkpoint, String)> {
    let (_, note) = super::checkpoint::stored_checkpoints(store)?
        .pop()
        .ok_or_else(|| {
            LedgerError::Config("no stored checkpoint yet and no signing key to make one".into())
        })?;
    let (checkpoint, _, _) = Checkpoint::parse_note(&note).map_err(|e| LedgerError::Corrupt {
        seq: 0,
        problem: format!("the newest stored checkpoint: {e}"),
    })?;
    Ok((checkpoint, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::SignerId;

    #[test]
    fn the_fast_event_line_is_the_parsed_one_byte_for_byte() {
        let record = StoredRecord {
            seq: 7,
            time: LedgerTime::from_micros(1_700_000_000_000_000),
            hash: [3u8; 32],
            signature: [4u8; 64],
            signer: SignerId([5u8; 8]),
            // Canonical: UTF-8 as is, only `"` and `\\` and control characters escaped.
            body: "{\"actor\":{\"type\":\"system\"},\"data\":{\"ip\":\"10.0.0.1\",\"note\":\"caf\u{e9} \\\"q\\\" \u{2028}\\n\"},\"seq\":7,\"type\":\"key.used\"}"
                .as_bytes()
                .to_vec(),
        };
        let fast = format_event_line(&record, &[2u8; 32]).unwrap();
        let bytes = fast.len() as u64;
        let mut parsed =
            serde_json::to_vec(&record_line("event", &record, &[2u8; 32]).unwrap()).unwrap();
        parsed.push(b'\n');
        assert_eq!(
            String::from_utf8(fast).unwrap(),
            String::from_utf8(parsed).unwrap()
        );
        assert_eq!(
            bytes,
            1 + serde_json::to_vec(&record_line("event", &record, &[2u8; 32]).unwrap())
                .unwrap()
                .len() as u64
        );
    }
}
