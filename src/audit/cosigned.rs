//! Cosigned checkpoints kept beside the checkpoints: for each checkpoint a witness cosigned, its note with every
//! cosignature line received so far appended (one per witness; a newer one replaces an older one). Kept as the
//! checkpoints are: at multiples of 1,024 as a series, otherwise only the newest. A checkpoint is *witnessed*
//! when cosignatures by `quorum` of the configured witnesses verify over its body.

use super::checkpoint::{Checkpoint, CHECKPOINT_EVERY};
use super::cosignature::{verify_cosignature, NamedKey};
use crate::error::{LedgerError, LedgerResult};
use crate::store::LogStore;

const PREFIX: &[u8] = crate::store::side_keys::COSIGNED;

fn key(size: u64) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend_from_slice(&size.to_be_bytes());
    key
}

fn size_of(key: &[u8]) -> LedgerResult<u64> {
    key.get(PREFIX.len()..)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| LedgerError::Corrupt {
            seq: 0,
            problem: "malformed cosigned checkpoint key".into(),
        })
}

/// `note` with `line` (a witness's cosignature, newline included) in place of any line by the same name.
pub fn with_cosignature(note: &str, line: &str) -> String {
    let name = line
        .strip_prefix("\u{2014} ")
        .and_then(|rest| rest.split_once(' '))
        .map_or("", |(name, _)| name);
    let prefix = format!("\u{2014} {name} ");
    let (body, signatures) = note.split_once("\n\n").unwrap_or((note, ""));
    let mut merged = format!("{body}\n\n");
    let mut lines = signatures.lines();
    // The log's own signature stays first.
    if let Some(first) = lines.next() {
        merged.push_str(first);
        merged.push('\n');
    }
    for other in lines.filter(|l| !l.starts_with(&prefix)) {
        merged.push_str(other);
        merged.push('\n');
    }
    merged.push_str(line);
    merged
}

/// Records `line` as a cosignature of `note` (a checkpoint of `size` events); returns the note as now kept.
/// Cosigned checkpoints that are neither multiples of 1,024 nor this one are dropped.
pub fn add_cosignature(
    store: &dyn LogStore,
    size: u64,
    note: &str,
    line: &str,
) -> LedgerResult<String> {
    let kept = store
        .get_side(&key(size))?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let merged = with_cosignature(kept.as_deref().unwrap_or(note), line);
    store.put_side(&[(key(size), merged.clone().into_bytes())])?;
    let mut loose = Vec::new();
    for (other, _) in cosigned_notes(store)? {
        if other != size && other % CHECKPOINT_EVERY != 0 {
            loose.push(key(other));
        }
    }
    if !loose.is_empty() {
        store.remove_side(&loose)?;
    }
    Ok(merged)
}

/// Every cosigned checkpoint kept, oldest first, with its size.
pub fn cosigned_notes(store: &dyn LogStore) -> LedgerResult<Vec<(u64, String)>> {
    let mut out = Vec::new();
    for entry in store.scan_side_from(PREFIX, PREFIX) {
        let (key, value) = entry?;
        out.push((size_of(&key)?, String::from_utf8_lossy(&value).into_owned()));
    }
    Ok(out)
}

/// The witnesses among `witnesses` whose cosignature of `note` verifies.
pub fn cosigners<'a>(note: &str, witnesses: &'a [NamedKey]) -> Vec<&'a NamedKey> {
    let Ok((_, body, lines)) = Checkpoint::parse_note(note) else {
        return Vec::new();
    };
    witnesses
        .iter()
        .filter(|w| matches!(verify_cosignature(w, &body, lines), Ok(Some(_))))
        .collect()
}

/// The newest kept checkpoint cosigned by at least `quorum` of `witnesses`, as its note with the cosignatures.
pub fn newest_witnessed(
    store: &dyn LogStore,
    witnesses: &[NamedKey],
    quorum: usize,
) -> LedgerResult<Option<(Checkpoint, String)>> {
    for (_, note) in cosigned_notes(store)?.into_iter().rev() {
        if cosigners(&note, witnesses).len() >= quorum.max(1) {
            if let Ok((checkpoint, _, _)) = Checkpoint::parse_note(&note) {
                return Ok(Some((checkpoint, note)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_cosignature_by_the_same_witness_replaces_the_older() {
        let note = "o\n5\nAAAA\n\n\u{2014} o sig\n";
        let once = with_cosignature(note, "\u{2014} w1 first\n");
        let twice = with_cosignature(&once, "\u{2014} w2 second\n");
        let again = with_cosignature(&twice, "\u{2014} w1 third\n");
        assert_eq!(
            again,
            "o\n5\nAAAA\n\n\u{2014} o sig\n\u{2014} w2 second\n\u{2014} w1 third\n"
        );
    }
}
