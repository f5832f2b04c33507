//! Auditing the log: full or ranged verification of the chain, signatures and indexes.

pub mod anchor;
pub mod checkpoint;
pub mod export;
pub mod merkle;
pub mod tree;
pub mod verify;
pub mod verify_export;
mod verify_indexes;

pub use verify::{verify_log, Problem, ProblemKind, VerifyRange, VerifyReport};
