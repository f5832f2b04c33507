//! The postings of the embedded log's stored units: the terms a posting names (a key,
//! an attribute digest, the lifecycle) and the sorted, delta-encoded runs of seqs filed under each term, with the
//! fixed-size directory that finds a term's run by binary search (docs/FORMAT.md, "Stored layout").

use super::sled_bytes::{corrupt, put_varint, Reader};
use super::StoreResult;
use uuid::Uuid;

/// What a posting names: a kind byte and 16 bytes (a key id, an attribute digest, or zeros for lifecycle).
pub type Term = [u8; 17];
const TERM_KEY: u8 = b'k';
const TERM_ATTRIBUTE: u8 = b'a';
pub const LIFECYCLE_TERM: Term = {
    let mut term = [0u8; 17];
    term[0] = b'l';
    term
};

pub fn key_term(key: &Uuid) -> Term {
    tagged(TERM_KEY, key.as_bytes())
}

pub fn attribute_term(digest: &[u8; 16]) -> Term {
    tagged(TERM_ATTRIBUTE, digest)
}

fn tagged(kind: u8, bytes: &[u8; 16]) -> Term {
    let mut term = [0u8; 17];
    term[0] = kind;
    term[1..].copy_from_slice(bytes);
    term
}

/// The key id a key term names.
pub fn term_key(term: &Term) -> Option<Uuid> {
    (term[0] == TERM_KEY).then(|| Uuid::from_bytes(body16(term)))
}

/// The digest an attribute term names.
pub fn term_attribute(term: &Term) -> Option<[u8; 16]> {
    (term[0] == TERM_ATTRIBUTE).then(|| body16(term))
}

fn body16(term: &Term) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&term[1..]);
    out
}

/// Postings sorted by term then seq: `terms u32 ‖ (term ‖ offset u32 ‖ count u32)* ‖ runs`, each run the
/// term's seqs as LEB128 deltas (the first from 0). The fixed-size directory is binary-searched.
pub fn encode_postings(mut entries: Vec<(Term, u64)>) -> Vec<u8> {
    entries.sort_unstable();
    entries.dedup();
    let mut directory: Vec<(Term, u32, u32)> = Vec::new();
    let mut runs = Vec::with_capacity(entries.len() * 2);
    let mut previous = 0u64;
    for (term, seq) in &entries {
        match directory.last_mut() {
            Some((last, _, count)) if last == term => *count += 1,
            _ => {
                directory.push((*term, runs.len() as u32, 1));
                previous = 0;
            }
        }
        put_varint(&mut runs, seq - previous);
        previous = *seq;
    }
    let mut out = Vec::with_capacity(4 + directory.len() * 25 + runs.len());
    out.extend_from_slice(&(directory.len() as u32).to_be_bytes());
    for (term, offset, count) in &directory {
        out.extend_from_slice(term);
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
    }
    out.extend_from_slice(&runs);
    out
}

const ENTRY: usize = 17 + 4 + 4;

fn directory<'a>(bytes: &'a [u8], unit: &'a str) -> StoreResult<(usize, &'a [u8], &'a [u8])> {
    let mut reader = Reader { bytes, unit };
    let terms = reader.u32()? as usize;
    let directory = reader.take(terms.saturating_mul(ENTRY))?;
    Ok((terms, directory, reader.bytes))
}

fn run(runs: &[u8], entry: &[u8], unit: &str) -> StoreResult<Vec<u64>> {
    let offset = u32::from_be_bytes([entry[17], entry[18], entry[19], entry[20]]) as usize;
    let count = u32::from_be_bytes([entry[21], entry[22], entry[23], entry[24]]) as usize;
    let mut reader = Reader {
        bytes: runs
            .get(offset..)
            .ok_or_else(|| corrupt(format!("{unit} has a posting run past its end")))?,
        unit,
    };
    let mut seqs = Vec::with_capacity(count.min(1 << 16));
    let mut seq = 0u64;
    for _ in 0..count {
        seq = seq
            .checked_add(reader.varint()?)
            .ok_or_else(|| corrupt(format!("{unit} has a posting past the largest seq")))?;
        seqs.push(seq);
    }
    Ok(seqs)
}

/// The seqs `term` has in the postings, ascending.
pub fn lookup_postings(bytes: &[u8], term: &Term, unit: &str) -> StoreResult<Vec<u64>> {
    let (terms, directory, runs) = directory(bytes, unit)?;
    let (mut low, mut high) = (0usize, terms);
    while low < high {
        let middle = (low + high) / 2;
        let entry = &directory[middle * ENTRY..(middle + 1) * ENTRY];
        match entry[..17].cmp(term.as_slice()) {
            std::cmp::Ordering::Less => low = middle + 1,
            std::cmp::Ordering::Greater => high = middle,
            std::cmp::Ordering::Equal => return run(runs, entry, unit),
        }
    }
    Ok(Vec::new())
}

/// Every posting, in term then seq order.
pub fn all_postings(bytes: &[u8], unit: &str) -> StoreResult<Vec<(Term, u64)>> {
    let (_, directory, runs) = directory(bytes, unit)?;
    let mut out = Vec::new();
    for entry in directory.chunks_exact(ENTRY) {
        let mut term = [0u8; 17];
        term.copy_from_slice(&entry[..17]);
        out.extend(run(runs, entry, unit)?.into_iter().map(|seq| (term, seq)));
    }
    Ok(out)
}
