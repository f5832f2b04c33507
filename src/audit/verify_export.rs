//! Offline verification of an export, with nothing but the ledger's first public key (and, optionally, an older
//! checkpoint the reader kept): every link, hash and signature in the window, the events at its edges, the signer
//! endorsements, the closing checkpoint's signature, the inclusion of the window in it, and the consistency proof
//! that the log only grew. The first bad line is reported with why.

pub use super::export_lines::ExportFailure;
use super::export_lines::{
    check_link, check_record, fail, parse_header, proof_field, Check, RecordLine,
};
use crate::chain::{verify_hash_signature, Hash32, GENESIS_PREV};
use crate::event::EventData;
use crate::signers::SignerRegistry;
use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use serde::Serialize;
use std::io::BufRead;

mod closing;
mod lines;
use closing::{finish, Summary};
use lines::Lines;

const SIGNATURE_CHUNK: usize = 4096;

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
    /// The range the export claims to cover (null: from the first event / up to the checkpoint).
    pub requested_from: Option<String>,
    pub requested_to: Option<String>,
    /// The checkpoint note the export carries, with any witness cosignatures.
    #[serde(skip)]
    pub note: String,
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
    match run(reader, &mut v, older, &hex::encode(anchor.as_bytes())) {
        Ok(check) => Ok(check),
        Err(failure) => Err(v.first(failure)),
    }
}

fn run(
    reader: impl BufRead,
    v: &mut Verifier,
    older: Option<&str>,
    trusted: &str,
) -> Check<ExportCheck> {
    let mut lines = Lines::new(reader);
    let Some((_, header)) = lines.next()? else {
        return fail(1, None, "the file is empty");
    };
    let header = parse_header(&header, trusted)?;
    let (from_seq, to_seq, size) = (header.from_seq, header.to_seq, header.size);
    let (requested_from, requested_to) = (header.requested_from, header.requested_to);
    let origin = header.origin.clone();
    let mut boundary_before = false;
    let mut boundary_after = false;
    let mut prev = GENESIS_PREV;
    let mut expected = from_seq;
    let mut events = 0u64;
    let mut later_endorsements = Vec::new();
    // FORMAT.md §9: a rotation outside the window is an endorsement even when it is also a boundary event.
    let mut endorsed = std::collections::BTreeSet::new();
    let mut rotating_boundaries = Vec::new();
    let mut first_hash = None;
    let mut item = lines.next()?;
    while let Some((line, value)) = item.take() {
        match value["kind"].as_str() {
            Some("endorsement") => {
                let seq = value["seq"].as_u64().unwrap_or(0);
                endorsed.insert(seq);
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
                if boundary_before {
                    return fail(
                        line,
                        value["seq"].as_u64(),
                        "a second boundary line before the window",
                    );
                }
                boundary_before = true;
                let record = check_record(&value, line, None)?;
                if matches!(record.event.data, EventData::SignerRotated(_)) {
                    rotating_boundaries.push((line, record.seq));
                }
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
                let record = match lines.take_record() {
                    Some(checked) => {
                        check_link(&value, line, &prev)?;
                        checked?
                    }
                    None => check_record(&value, line, Some(&prev))?,
                };
                if record.seq != expected {
                    return fail(
                        line,
                        Some(record.seq),
                        format!("expected seq {expected}: events are missing or out of order"),
                    );
                }
                if from_seq > 1 && !boundary_before {
                    return fail(line, Some(record.seq), "the event before the window is missing: the chain link into the window cannot be checked");
                }
                if requested_from.is_some_and(|from| record.event.time < from)
                    || requested_to.is_some_and(|to| record.event.time >= to)
                {
                    return fail(
                        line,
                        Some(record.seq),
                        format!(
                            "event time {} is outside the requested range",
                            record.event.time
                        ),
                    );
                }
                v.signed(&record, line)?;
                first_hash.get_or_insert(record.hash);
                prev = record.hash;
                expected += 1;
                events += 1;
            }
            Some("boundary") => {
                if from_seq > 1 && !boundary_before {
                    return fail(line, value["seq"].as_u64(), "the event before the window is missing: the start of the range cannot be checked");
                }
                if boundary_after {
                    return fail(
                        line,
                        value["seq"].as_u64(),
                        "a second boundary line after the window",
                    );
                }
                boundary_after = true;
                let record = check_record(&value, line, Some(&prev))?;
                if record.seq != to_seq + 1 || expected != to_seq + 1 {
                    return fail(
                        line,
                        Some(record.seq),
                        "boundary event out of place: events are missing before it",
                    );
                }
                if matches!(record.event.data, EventData::SignerRotated(_)) {
                    rotating_boundaries.push((line, record.seq));
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
                if from_seq > 1 && !boundary_before {
                    return fail(line, None, "the event before the window is missing: the start of the range cannot be checked");
                }
                if to_seq < size && !boundary_after {
                    return fail(line, None, "the event after the window is missing: the end of the range cannot be checked");
                }
                if let Some((b_line, seq)) = rotating_boundaries
                    .iter()
                    .find(|(_, seq)| !endorsed.contains(seq))
                {
                    return fail(
                        *b_line,
                        Some(*seq),
                        "the boundary event is a signer rotation that is missing among the endorsements",
                    );
                }
                for (e_line, value) in later_endorsements.drain(..) {
                    let record = check_record(&value, e_line, None)?;
                    if !matches!(record.event.data, EventData::SignerRotated(_)) {
                        return fail(
                            e_line,
                            Some(record.seq),
                            "an endorsement must be a ledger.signer_rotated event",
                        );
                    }
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
                    &mut lines,
                    Summary {
                        from_seq,
                        to_seq,
                        size,
                        events,
                        origin,
                        first_hash,
                        last_hash: prev,
                        requested_from,
                        requested_to,
                    },
                    older,
                );
            }
            _ => return fail(line, None, "unexpected line here"),
        }
        item = lines.next()?;
    }
    lines.cut_short("checkpoint")
}
