//! Auditing the log: full or ranged verification of the chain, signatures and indexes.

pub mod anchor;
pub mod anchor_check;
pub mod checkpoint;
pub mod cosignature;
pub mod cosigned;
pub mod export;
mod export_lines;
pub mod merkle;
mod problem;
pub mod rotations;
mod tile_read;
pub mod tiles;
pub mod tree;
pub mod verify;
pub mod verify_export;
mod verify_indexes;
mod verify_rollups;
mod verify_tree;
mod verify_walk;
pub mod witness_client;
pub mod witnessed;

pub use problem::{Problem, ProblemKind, VerifyRange, VerifyReport};
pub use verify::verify_log;
