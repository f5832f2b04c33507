//! What verification reports: the problems found (the seq, what kind, in words) and the counts of what was checked.

use serde::{Deserialize, Serialize};

/// What is wrong at a seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The stored hash is not SHA-256(domain ‖ previous hash ‖ body): the body was changed, or the event before
    /// it is not the one it was chained to. In a sealed block, which stores hashes implied by the bodies: the
    /// body's hash is not the leaf the Merkle tree recorded and the signature fails over it.
    BodyChanged,
    /// A seq is missing.
    Gap,
    /// An event sits at a seq other than its own, or its time runs backwards.
    Reorder,
    BadSignature,
    UnknownSigner,
    /// An index entry is missing, or points at an event it does not describe.
    IndexMismatch,
    /// The head disagrees with the newest event.
    HeadMismatch,
    /// The record or body cannot be decoded.
    Malformed,
    /// A stored checkpoint does not match the log (tail cut, or history rewritten), or its signature is bad.
    CheckpointMismatch,
    /// The store itself cannot be read from here on (its files are damaged).
    StorageCorrupt,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub seq: u64,
    pub kind: ProblemKind,
    pub detail: String,
}

/// The seqs to verify (inclusive); `to = None` means up to the head.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyRange {
    pub from: u64,
    pub to: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyReport {
    pub from_seq: u64,
    pub to_seq: u64,
    pub events_checked: u64,
    pub signatures_checked: u64,
    pub index_entries_checked: u64,
    pub checkpoints_checked: u64,
    /// Stored Merkle hashes (in tiles, or old `merkle/` node entries) compared with the tree recomputed from the
    /// event hashes.
    pub merkle_nodes_checked: u64,
    /// Events 1..=this were archived (`keyledger audit archive`): verification starts after them, from the
    /// recorded hash and checkpoint of the prefix. 0 when nothing was archived.
    #[serde(default)]
    pub archived_through: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn first_problem(&self) -> Option<&Problem> {
        self.problems.first()
    }
}

pub(crate) fn problem(seq: u64, kind: ProblemKind, detail: &str) -> Problem {
    Problem {
        seq,
        kind,
        detail: detail.to_string(),
    }
}
