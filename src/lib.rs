//! keyledger: an audit-first API-key ledger. Every key action and every key use is an event appended to an
//! embedded log, SHA-256 hash-chained to the one before and Ed25519-signed; projections replayed from the log
//! give current state, usage and anomalies.
//!
//! # Floors
//!
//! Imports run one way: a module uses only modules on floors below its own, never one beside it or above it,
//! and no two files import each other, directly or round a circle (tests/house.rs checks both on every
//! `cargo test`). Lowest first:
//!
//! 0. [`time`], [`canonical`], [`secret`], [`token`], [`personal`]: instants, canonical JSON, secret material, a
//!    signing key on a PKCS#11 token, commitments to personal fields and the day keys that seal their values
//! 1. [`clock`], [`event`]: the time source, event types and their canonical bodies
//! 2. [`chain`], [`metrics`]: hashes and signatures; counters
//! 3. [`signers`]: which key signed which events
//! 4. [`store`]: the log behind the `LogStore` trait (sled, PostgreSQL)
//! 5. [`error`]: the library's error type
//! 6. [`checked`]: reads that check what they return
//! 7. [`query`], [`incident`]: index lookups and incident windows
//! 8. [`projection`]: state derived from events, and the rules it applies
//! 9. [`audit`]: checkpoints, the Merkle tree, exports and verification
//! 10. [`ledger`]: the single writer, replay, snapshots, archival
//! 11. [`keys`]: key commands and their guards
//! 12. [`alerts`], [`gateway`], [`console`], [`witness`]: webhooks, forward-auth rules, the console's files, a
//!     witness that cosigns other logs' checkpoints
//! 13. [`api`], [`monitor`]: the HTTP API; an independent monitor of a served ledger's checkpoints and tiles
//! 14. [`config`]: keyledger.toml, composed from each module's own section
//! 15. [`datadir`]: a data directory's files, keys and store
//! 16. [`cli`]: the command line and the demo

pub mod alerts;
pub mod api;
pub mod audit;
pub mod canonical;
pub mod chain;
pub mod checked;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod datadir;
pub mod error;
pub mod event;
pub mod gateway;
pub mod incident;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod monitor;
pub mod personal;
pub mod projection;
pub mod query;
pub mod secret;
pub mod signers;
pub mod store;
pub mod time;
pub mod token;
pub mod witness;

pub use error::{LedgerError, LedgerResult};
