//! Snapshot bodies as each format stored them, written independently of the crate's own encoder so that tests
//! can read, forge and down-convert them (docs/FORMAT.md §4).
#![allow(dead_code)]

use keyledger::datadir::{DataDir, KeySource};
use keyledger::projection::Projections;
use keyledger::time::LedgerTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The fields of a snapshot body: format 2's one MessagePack map, and what format 3's sections hold.
#[derive(Serialize, Deserialize)]
pub struct Body {
    pub seq: u64,
    pub hash: String,
    pub time: LedgerTime,
    pub origin: Option<String>,
    pub signers: Vec<(String, u64)>,
    pub frontier_root: String,
    pub latest_checkpoint: Option<String>,
    pub projections: Projections,
}

/// A format-3 body's first section.
#[derive(Deserialize)]
struct Facts {
    seq: u64,
    hash: String,
    time: LedgerTime,
    origin: Option<String>,
    signers: Vec<(String, u64)>,
    frontier_root: String,
    latest_checkpoint: Option<String>,
    applied_seq: u64,
}

/// The MessagePack of each section of a format-3 body (u32 BE length ‖ zstd frame, five times).
pub fn sections(mut body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((length, rest)) = body.split_first_chunk::<4>() {
        let length = u32::from_be_bytes(*length) as usize;
        out.push(zstd::stream::decode_all(&rest[..length]).unwrap());
        body = &rest[length..];
    }
    out
}

/// A format-3 body from the MessagePack of its sections.
pub fn pack_sections(sections: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for section in sections {
        let compressed = zstd::bulk::compress(section, 3).unwrap();
        out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    out
}

/// The fields of a stored format-3 body.
pub fn body_of(stored: &[u8]) -> Body {
    let parts = sections(stored);
    let facts: Facts = rmp_serde::from_slice(&parts[0]).unwrap();
    Body {
        seq: facts.seq,
        hash: facts.hash,
        time: facts.time,
        origin: facts.origin,
        signers: facts.signers,
        frontier_root: facts.frontier_root,
        latest_checkpoint: facts.latest_checkpoint,
        projections: Projections::from_parts(
            rmp_serde::from_slice(&parts[1]).unwrap(),
            rmp_serde::from_slice(&parts[2]).unwrap(),
            rmp_serde::from_slice(&parts[3]).unwrap(),
            facts.applied_seq,
            rmp_serde::from_slice(&parts[4]).unwrap(),
        ),
    }
}

/// The JSON header of `stored`, the body of `body`, signed by the ledger's key under `keyledger/snapshot/v<N>`.
pub fn signed_header(dir: &DataDir, format: u8, body: &Body, stored: &[u8]) -> Vec<u8> {
    let signer = dir.load_signer(&KeySource::Default).unwrap();
    let mut hasher = Sha256::new();
    hasher.update(format!("keyledger/snapshot/v{format}\n").as_bytes());
    hasher.update(stored);
    serde_json::to_vec(&serde_json::json!({
        "format": format!("keyledger-snapshot/{format}"),
        "seq": body.seq,
        "hash": body.hash,
        "signer": signer.id().to_string(),
        "signature": hex::encode(signer.sign_hash(&hasher.finalize().into()).unwrap()),
    }))
    .unwrap()
}
