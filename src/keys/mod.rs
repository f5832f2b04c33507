//! API keys: lifecycle commands, input validation, the verification hot path, and lookups (by id, by leaked
//! secret or its hash, a key's history, listing with filters, state as of a past time).

pub mod bulk;
pub mod commands;
pub mod guards;
pub mod validate;
mod validate_policy;
mod validate_text;
pub mod verify;
pub mod view;

pub use bulk::*;
pub use commands::*;
pub use verify::{check_request, decide, Decision, Request, VerifyAnswer, VerifyKey};

use crate::error::{LedgerError, LedgerResult};
use crate::event::Event;
use crate::projection::scope;
use crate::projection::{KeyRecord, KeyState, KeyStatus};
use crate::secret::{self, SecretHash};
use crate::store::LogStore;
use crate::time::LedgerTime;
use serde::Deserialize;
use uuid::Uuid;

/// Every scope of keyledger's own API: what the bootstrap and recovery admin keys hold.
pub const ADMIN_KEY_SCOPES: [&str; 4] = [
    scope::LEDGER_ADMIN,
    scope::LEDGER_READ,
    scope::LEDGER_AUDIT,
    scope::LEDGER_VERIFY,
];

/// The configuration of an administrator key issued from the server's command line (init, recovery), owned by
/// the local operator, in the `keyledger` environment.
pub fn admin_key_config(name: &str, description: &str) -> crate::event::KeyConfig {
    crate::event::KeyConfig {
        name: name.into(),
        description: description.into(),
        owner: match crate::event::Actor::local_operator() {
            crate::event::Actor::Operator { name } => name,
            _ => "operator".into(),
        },
        scopes: ADMIN_KEY_SCOPES.map(String::from).to_vec(),
        environment: "keyledger".into(),
        ..Default::default()
    }
}

/// Filters for listing keys; all given filters must match.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFilter {
    pub environment: Option<String>,
    pub owner: Option<String>,
    pub status: Option<KeyStatus>,
    pub project: Option<String>,
    pub scope: Option<String>,
}

impl KeyFilter {
    pub fn matches(&self, key: &KeyRecord, now: LedgerTime) -> bool {
        self.environment
            .as_ref()
            .is_none_or(|env| &key.config.environment == env)
            && self
                .owner
                .as_ref()
                .is_none_or(|owner| &key.config.owner == owner)
            && self
                .status
                .is_none_or(|status| key.status_at(now) == status)
            && self
                .project
                .as_ref()
                .is_none_or(|p| key.config.project_ids.contains(p))
            && self
                .scope
                .as_ref()
                .is_none_or(|s| key.config.scopes.contains(s))
    }
}

/// Keys matching the filter that were created after event `after`, oldest first, at most `limit` of them: a page
/// reads the keys it returns (and those the filter skips), not every key.
pub fn list_keys(
    state: &KeyState,
    filter: &KeyFilter,
    now: LedgerTime,
    after: u64,
    limit: Option<usize>,
) -> Vec<KeyRecord> {
    state
        .created_after(after)
        .filter(|key| filter.matches(key, now))
        .take(limit.unwrap_or(usize::MAX))
        .cloned()
        .collect()
}

/// A leaked secret, or only its SHA-256 hex, to the hash that identifies its key.
pub fn hash_of_leak(secret_or_hash: &str) -> LedgerResult<SecretHash> {
    let text = secret_or_hash.trim();
    if let Some(hash) = secret::parse_hash_hex(text).filter(|_| text.len() == 64) {
        return Ok(hash);
    }
    secret::check_format(text).map_err(|e| LedgerError::invalid("secret", e.to_string()))?;
    Ok(secret::hash_secret(text))
}

/// Every event concerning a key, in seq order, up to `durable_seq`.
pub fn key_history(
    store: &dyn LogStore,
    key_id: Uuid,
    durable_seq: u64,
) -> LedgerResult<Vec<Event>> {
    let mut reader = crate::checked::CheckedReader::new(store);
    store
        .key_seqs(key_id, 1, durable_seq + 1)
        .map(|seq| {
            let seq = seq?;
            let record = reader.get_indexed(seq)?;
            Event::decode(&record.body).map_err(|source| LedgerError::Decode { seq, source })
        })
        .collect()
}
