//! The close of an export's verification: the checkpoint's signature, the inclusion of every event of the window
//! in it, and the consistency proof from an older checkpoint the reader kept.

use super::{fail, Check, ExportCheck, Lines, Verifier};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::export_lines::proof_field;
use crate::audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use crate::chain::Hash32;
use crate::time::LedgerTime;
use serde_json::Value;
use std::io::BufRead;

pub(super) struct Summary {
    pub(super) from_seq: u64,
    pub(super) to_seq: u64,
    pub(super) size: u64,
    pub(super) events: u64,
    pub(super) origin: String,
    pub(super) first_hash: Option<Hash32>,
    pub(super) last_hash: Hash32,
    pub(super) requested_from: Option<LedgerTime>,
    pub(super) requested_to: Option<LedgerTime>,
}

pub(super) fn finish(
    line: u64,
    value: &Value,
    v: &mut Verifier,
    lines: &mut Lines<impl BufRead>,
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
        let Some((line, value)) = lines.next()? else {
            return lines.cut_short("end line");
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
                if lines.next()?.is_some() {
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
                    requested_from: s.requested_from.map(|t| t.to_string()),
                    requested_to: s.requested_to.map(|t| t.to_string()),
                    note: note.to_string(),
                });
            }
            _ => return fail(line, None, "unexpected line after the checkpoint"),
        }
    }
}

/// The newest checkpoint in `kept` (one saved note, or an anchor file of many in any order) that one of this
/// ledger's signers signed: the export must reach it and prove it grew from it.
fn older_checkpoint(kept: &str, v: &Verifier) -> Result<Checkpoint, String> {
    crate::audit::anchor::split_notes(kept)
        .iter()
        .filter_map(|note| {
            v.signers
                .entries()
                .iter()
                .find_map(|signer| Checkpoint::verify_note(note, &signer.key).ok())
        })
        .max_by_key(|checkpoint| checkpoint.size)
        .ok_or_else(|| {
            "the kept checkpoint is not signed by any of this ledger's signers".to_string()
        })
}
