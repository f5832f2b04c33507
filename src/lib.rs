//! keyledger: an audit-first API-key ledger. Every key action and every key use is an event appended to an
//! embedded log, SHA-256 hash-chained to the one before and Ed25519-signed; projections replayed from the log
//! give current state, usage and anomalies.
//!
//! Layout: [`event`] (types and canonical bodies) → [`chain`] (hashes, signatures) → [`store`] (the log on
//! sled, behind a trait) → [`ledger`] (the single writer, replay) → [`projection`] (state derived from events)
//! → [`audit`] (verification) → `cli` (the command line).

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
pub mod projection;
pub mod query;
pub mod secret;
pub mod signers;
pub mod store;
pub mod time;

pub use error::{LedgerError, LedgerResult};
