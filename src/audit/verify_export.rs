//! Offline verification of an export, with nothing but the ledger's first public key (and, optionally, an older
//! checkpoint the reader kept): every link, hash and signature in the window, the events at its edges, the signer
//! endorsements, the closing checkpoint's signature, the inclusion of the window in it, and the consistency proof
//! that the log only grew. The first bad line is reported with why.

use super::checkpoint::Checkpoint;
use super::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use crate::canonical::canonical_value_bytes;
use crate::chain::{chain_hash, verify_hash_signature, Hash32, GENESIS_PREV};
use crate::event::{Event, EventData};
use crate::signers::SignerRegistry;
use crate::time::LedgerTime;
use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;
use std::io::BufRead;

const SIGNATURE_CHUNK: usize = 4096;

/// Where and why an export failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("line {line}{}: {problem}", seq.map(|s| format!(" (seq {s})")).unwrap_or_default())]
pub struct ExportFailure {
    pub line: u64,
    pub seq: Option<u64>,
    pub problem: String,
}

/// What a valid export proved.
#[derive(Clone, Debug, Serialize)]
pub struct ExportCheck {
    pub from_seq: u64,
    pub to_seq: u64,
    pub events: u64,
    pub tree_size: u64,
    pub root: String,
    pub origin: String,
    pub consistency_from: Option<u64>,
}

type Check<T> = Result<T, ExportFailure>;

fn fail<T>(line: u64, seq: Option<u64>, problem: impl Into<String>) -> Check<T> {
    Err(ExportFailure {
        line,
        seq,
        problem: problem.into(),
    })
}

fn hash_field(value: &Value, field: &str, line: u64) -> Check<Hash32> {
    value[field]
        .as_str()
        .and_then(|t| hex::decode(t).ok())
        .and_then(|b| b.try_into().ok())
        .map_or_else(
            || {
                fail(
                    line,
                    value["seq"].as_u64(),
                    format!("{field} is not 64 hex digits"),
                )
            },
            Ok,
        )
}

fn proof_field(value: &Value, field: &str, line: u64) -> Check<Vec<Hash32>> {
    let items = value[field]
        .as_array()
        .map_or_else(|| fail(line, None, format!("{field} is missing")), Ok)?;
    items
        .iter()
        .map(|item| hash_field(&serde_json::json!({ "h": item }), "h", line))
        .collect()
}

/// A checked record line: its event, hash and signature (the signature is checked by the caller).
struct RecordLine {
    seq: u64,
    event: Event,
    hash: Hash32,
    signature: [u8; 64],
    signer_id: String,
}

fn check_record(value: &Value, line: u64, expected_prev: Option<&Hash32>) -> Check<RecordLine> {
    let seq = value["seq"]
        .as_u64()
        .map_or_else(|| fail(line, None, "seq is missing"), Ok)?;
    let prev = hash_field(value, "prev_hash", line)?;
    if expected_prev.is_some_and(|want| *want != prev) {
        return fail(line, Some(seq), "prev_hash is not the previous event's hash (an event was removed, inserted or reordered)");
    }
    let hash = hash_field(value, "hash", line)?;
    let body = canonical_value_bytes(&value["body"])
        .or_else(|e| fail(line, Some(seq), format!("body: {e}")))?;
    if chain_hash(&prev, &body) != hash {
        return fail(line, Some(seq), "hash does not match SHA-256(domain ‖ prev_hash ‖ canonical body): the body was changed");
    }
    let event = Event::decode(&body).or_else(|e| fail(line, Some(seq), e.to_string()))?;
    if event.seq != seq {
        return fail(line, Some(seq), format!("the body says seq {}", event.seq));
    }
    let signature: [u8; 64] = value["signature"]
        .as_str()
        .and_then(|t| hex::decode(t).ok())
        .and_then(|b| b.try_into().ok())
        .map_or_else(
            || fail(line, Some(seq), "signature is not 128 hex digits"),
            Ok,
        )?;
    let signer_id = value["signer_id"].as_str().unwrap_or_default().to_string();
    Ok(RecordLine {
        seq,
        event,
        hash,
        signature,
        signer_id,
    })
}

/// Signatures waiting to be batch-verified, with their lines.
#[derive(Default)]
struct PendingSignatures(Vec<(u64, u64, Hash32, [u8; 64], VerifyingKey)>);

impl PendingSignatures {
    fn flush(&mut self) -> Check<()> {
        let pending = std::mem::take(&mut self.0);
        let bad = pending
            .par_chunks(256)
            .filter_map(|chunk| {
                let messages: Vec<&[u8]> = chunk.iter().map(|p| p.2.as_slice()).collect();
                let signatures: Vec<Signature> =
                    chunk.iter().map(|p| Signature::from_bytes(&p.3)).collect();
                let keys: Vec<VerifyingKey> = chunk.iter().map(|p| p.4).collect();
                if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                    return None;
                }
                chunk
                    .iter()
                    .find(|p| !verify_hash_signature(&p.4, &p.2, &p.3))
                    .map(|p| (p.0, p.1))
            })
            .min();
        match bad {
            Some((line, seq)) => fail(line, Some(seq), "signature does not verify"),
            None => Ok(()),
        }
    }
}

struct Verifier {
    signers: SignerRegistry,
    pending: PendingSignatures,
    /// (line, seq, event hash, proof) to check once the checkpoint is known.
    inclusions: Vec<(u64, u64, Hash32, Vec<Hash32>)>,
}

impl Verifier {
    fn signed(&mut self, record: &RecordLine, line: u64) -> Check<()> {
        let signer = self
            .signers
            .signer_for(record.seq)
            .map_or_else(|| fail(line, Some(record.seq), "no signer is in force"), Ok)?;
        if signer.id.to_string() != record.signer_id {
            return fail(
                line,
                Some(record.seq),
                format!(
                    "signed by {} but the signer in force is {}",
                    record.signer_id, signer.id
                ),
            );
        }
        self.pending
            .0
            .push((line, record.seq, record.hash, record.signature, signer.key));
        if self.pending.0.len() >= SIGNATURE_CHUNK {
            self.pending.flush()?;
        }
        if let EventData::SignerRotated(_) = record.event.data {
            self.signers
                .observe(&record.event)
                .or_else(|e| fail(line, Some(record.seq), e.to_string()))?;
        }
        Ok(())
    }

    /// Reports `failure`, unless an earlier line's signature is bad (then that one is first).
    fn first(&mut self, failure: ExportFailure) -> ExportFailure {
        self.pending.flush().err().unwrap_or(failure)
    }
}

/// Verifies an export read line by line. `older` is a checkpoint note the reader kept from before.
pub fn verify_export(
    reader: impl BufRead,
    anchor: VerifyingKey,
    older: Option<&str>,
) -> Check<ExportCheck> {
    let mut v = Verifier {
        signers: SignerRegistry::anchored(anchor),
        pending: PendingSignatures::default(),
        inclusions: Vec::new(),
    };
    match run(reader, &mut v, older) {
        Ok(check) => Ok(check),
        Err(failure) => Err(v.first(failure)),
    }
}

fn run(reader: impl BufRead, v: &mut Verifier, older: Option<&str>) -> Check<ExportCheck> {
    let mut lines = reader.lines().enumerate().map(|(i, l)| (i as u64 + 1, l));
    let mut next = move || -> Check<Option<(u64, Value)>> {
        match lines.next() {
            None => Ok(None),
            Some((n, Err(e))) => fail(n, None, format!("unreadable: {e}")),
            Some((n, Ok(text))) => serde_json::from_str(&text)
                .map(|value| Some((n, value)))
                .or_else(|e| fail(n, None, format!("not JSON: {e}"))),
        }
    };
    let Some((_, header)) = next()? else {
        return fail(1, None, "the file is empty");
    };
    if header["kind"] != "header"
        || header["format"] != "keyledger-export"
        || header["version"] != 1
    {
        return fail(1, None, "not a keyledger export (version 1) header");
    }
    let (from_seq, to_seq, size) = (
        header["from_seq"].as_u64().unwrap_or(0),
        header["to_seq"].as_u64().unwrap_or(0),
        header["tree_size"].as_u64().unwrap_or(0),
    );
    let origin = header["origin"].as_str().unwrap_or_default().to_string();
    let requested_from = header["requested_from"]
        .as_str()
        .and_then(|t| LedgerTime::parse(t).ok());
    let requested_to = header["requested_to"]
        .as_str()
        .and_then(|t| LedgerTime::parse(t).ok());
    let mut prev = GENESIS_PREV;
    let mut expected = from_seq;
    let mut events = 0u64;
    let mut later_endorsements = Vec::new();
    let mut first_hash = None;
    let mut item = next()?;
    while let Some((line, value)) = item.take() {
        match value["kind"].as_str() {
            Some("endorsement") => {
                let seq = value["seq"].as_u64().unwrap_or(0);
                if seq > to_seq {
                    later_endorsements.push((line, value));
                } else {
                    let record = check_record(&value, line, None)?;
                    if !matches!(record.event.data, EventData::SignerRotated(_)) {
                        return fail(
                            line,
                            Some(seq),
                            "an endorsement must be a ledger.signer_rotated event",
                        );
                    }
                    v.signed(&record, line)?;
                    v.inclusions.push((
                        line,
                        seq,
                        record.hash,
                        proof_field(&value, "inclusion", line)?,
                    ));
                }
            }
            Some("boundary")
                if events == 0
                    && expected == from_seq
                    && value["seq"].as_u64() == Some(from_seq.wrapping_sub(1)) =>
            {
                let record = check_record(&value, line, None)?;
                v.signed(&record, line)?;
                if requested_from.is_some_and(|from| record.event.time >= from) {
                    return fail(line, Some(record.seq), "the event before the window is inside the requested range: events are missing at the start");
                }
                v.inclusions.push((
                    line,
                    record.seq,
                    record.hash,
                    proof_field(&value, "inclusion", line)?,
                ));
                prev = record.hash;
            }
            Some("event") => {
                let record = check_record(&value, line, Some(&prev))?;
                if record.seq != expected {
                    return fail(
                        line,
                        Some(record.seq),
                        format!("expected seq {expected}: events are missing or out of order"),
                    );
                }
                if from_seq > 1 && events == 0 && prev == GENESIS_PREV {
                    return fail(line, Some(record.seq), "the event before the window is missing: the chain link into the window cannot be checked");
                }
                v.signed(&record, line)?;
                first_hash.get_or_insert(record.hash);
                prev = record.hash;
                expected += 1;
                events += 1;
            }
            Some("boundary") => {
                let record = check_record(&value, line, Some(&prev))?;
                if record.seq != to_seq + 1 || expected != to_seq + 1 {
                    return fail(
                        line,
                        Some(record.seq),
                        "boundary event out of place: events are missing before it",
                    );
                }
                v.signed(&record, line)?;
                if requested_to.is_some_and(|to| record.event.time < to) {
                    return fail(line, Some(record.seq), "the event after the window is inside the requested range: events are missing at the end");
                }
                v.inclusions.push((
                    line,
                    record.seq,
                    record.hash,
                    proof_field(&value, "inclusion", line)?,
                ));
            }
            Some("checkpoint") => {
                if expected != to_seq + 1 || (to_seq >= from_seq && events != to_seq - from_seq + 1)
                {
                    return fail(line, Some(expected), format!("the window should hold events {from_seq}..={to_seq}: events are missing"));
                }
                if to_seq < size
                    && requested_to.is_some()
                    && !v.inclusions.iter().any(|i| i.1 == to_seq + 1)
                {
                    return fail(line, None, "the event after the window is missing: the end of the range cannot be checked");
                }
                for (e_line, value) in later_endorsements.drain(..) {
                    let record = check_record(&value, e_line, None)?;
                    v.signed(&record, e_line)?;
                    v.inclusions.push((
                        e_line,
                        record.seq,
                        record.hash,
                        proof_field(&value, "inclusion", e_line)?,
                    ));
                }
                v.pending.flush()?;
                return finish(
                    line,
                    &value,
                    v,
                    &mut next,
                    Summary {
                        from_seq,
                        to_seq,
                        size,
                        events,
                        origin,
                        first_hash,
                        last_hash: prev,
                    },
                    older,
                );
            }
            _ => return fail(line, None, "unexpected line here"),
        }
        item = next()?;
    }
    fail(
        0,
        None,
        "the file ends before its checkpoint: the export was cut short",
    )
}

struct Summary {
    from_seq: u64,
    to_seq: u64,
    size: u64,
    events: u64,
    origin: String,
    first_hash: Option<Hash32>,
    last_hash: Hash32,
}

fn finish(
    line: u64,
    value: &Value,
    v: &mut Verifier,
    next: &mut dyn FnMut() -> Check<Option<(u64, Value)>>,
    s: Summary,
    older: Option<&str>,
) -> Check<ExportCheck> {
    let note = value["note"].as_str().unwrap_or_default();
    let checkpoint = [s.size, s.size + 1]
        .iter()
        .filter_map(|seq| v.signers.signer_for(*seq))
        .find_map(|signer| Checkpoint::verify_note(note, &signer.key).ok())
        .map_or_else(
            || {
                fail(
                    line,
                    None,
                    "the checkpoint's signature does not verify with the signer in force",
                )
            },
            Ok,
        )?;
    if checkpoint.size != s.size || checkpoint.origin != s.origin {
        return fail(
            line,
            None,
            "the checkpoint does not match the header (size or origin)",
        );
    }
    for (e_line, seq, hash, proof) in &v.inclusions {
        if !verify_inclusion(seq - 1, s.size, &leaf_hash(hash), proof, &checkpoint.root) {
            return fail(
                *e_line,
                Some(*seq),
                "inclusion proof does not verify against the checkpoint",
            );
        }
    }
    let mut consistency_from = None;
    let mut proved_ends = 0;
    loop {
        let Some((line, value)) = next()? else {
            return fail(
                0,
                None,
                "the file ends before its end line: the export was cut short",
            );
        };
        match value["kind"].as_str() {
            Some("inclusion") => {
                let seq = value["seq"].as_u64().unwrap_or(0);
                if seq != s.from_seq && seq != s.to_seq {
                    return fail(
                        line,
                        Some(seq),
                        "inclusion proof for an event outside the window's ends",
                    );
                }
                let proof = proof_field(&value, "proof", line)?;
                let hash = if seq == s.to_seq {
                    Some(s.last_hash)
                } else {
                    s.first_hash
                };
                let Some(hash) = hash else {
                    return fail(line, Some(seq), "inclusion proof for an empty window");
                };
                if !verify_inclusion(seq - 1, s.size, &leaf_hash(&hash), &proof, &checkpoint.root) {
                    return fail(
                        line,
                        Some(seq),
                        "inclusion proof does not verify against the checkpoint",
                    );
                }
                proved_ends += 1;
            }
            Some("consistency") => {
                let old = value["old_size"].as_u64().unwrap_or(0);
                let proof = proof_field(&value, "proof", line)?;
                if let Some(note) = older {
                    let kept = older_checkpoint(note, v).or_else(|e| fail(line, None, e))?;
                    if kept.size == old
                        && !verify_consistency(old, s.size, &kept.root, &checkpoint.root, &proof)
                    {
                        return fail(line, None, format!("the log of size {} does not extend the kept checkpoint of size {old}: history was rewritten", s.size));
                    }
                    if kept.size == old {
                        consistency_from = Some(old);
                    }
                }
            }
            Some("end") => {
                if value["events"].as_u64() != Some(s.events) {
                    return fail(
                        line,
                        None,
                        "the end line counts a different number of events",
                    );
                }
                if s.events > 0 && proved_ends < 2 {
                    return fail(
                        line,
                        None,
                        "the inclusion proofs of the window's ends are missing",
                    );
                }
                if let Some(note) = older {
                    let kept = older_checkpoint(note, v).or_else(|e| fail(line, None, e))?;
                    if kept.origin != s.origin {
                        return fail(
                            line,
                            None,
                            format!("the kept checkpoint is of another log ({})", kept.origin),
                        );
                    }
                    if kept.size > s.size {
                        return fail(line, None, format!("the kept checkpoint has {} events, more than this export's {}: the log was cut", kept.size, s.size));
                    }
                    if consistency_from.is_none()
                        && !(kept.size == s.size && kept.root == checkpoint.root)
                    {
                        return fail(
                            line,
                            None,
                            format!(
                                "no valid consistency proof from the kept checkpoint (size {})",
                                kept.size
                            ),
                        );
                    }
                }
                if next()?.is_some() {
                    return fail(line + 1, None, "lines after the end line");
                }
                return Ok(ExportCheck {
                    from_seq: s.from_seq,
                    to_seq: s.to_seq,
                    events: s.events,
                    tree_size: s.size,
                    root: hex::encode(checkpoint.root),
                    origin: s.origin,
                    consistency_from: consistency_from.or(older.map(|_| s.size)),
                });
            }
            _ => return fail(line, None, "unexpected line after the checkpoint"),
        }
    }
}

fn older_checkpoint(note: &str, v: &Verifier) -> Result<Checkpoint, String> {
    v.signers
        .entries()
        .iter()
        .find_map(|signer| Checkpoint::verify_note(note, &signer.key).ok())
        .ok_or_else(|| {
            "the kept checkpoint is not signed by any of this ledger's signers".to_string()
        })
}
