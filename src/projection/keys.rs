//! The key-state projection: every key's configuration, status and links, replayed from key events.

pub use super::key_record::{KeyRecord, KeyStatus, RateStatus};
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData, VerifyCode};
use crate::time::LedgerTime;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// One key with the fields its public form leaves out (for comparing states, e.g. live against replayed).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SnapshotEntry {
    pub key: KeyRecord,
    pub secret_sha256: String,
    pub rate_tat: i64,
}

impl From<KeyState> for Vec<SnapshotEntry> {
    fn from(state: KeyState) -> Self {
        state.snapshot_entries()
    }
}

impl From<Vec<SnapshotEntry>> for KeyState {
    fn from(entries: Vec<SnapshotEntry>) -> Self {
        let mut state = KeyState::default();
        for entry in entries {
            let mut key = entry.key;
            // A malformed hash cannot match any secret; leave it zeroed (as `apply` does).
            let _ = hex::decode_to_slice(&entry.secret_sha256, &mut key.secret_sha256);
            key.rate_tat = entry.rate_tat;
            key.refresh_derived();
            state.by_hash.insert(key.secret_sha256, key.key_id);
            state.name_key(&key.config.environment, &key.config.name, key.key_id);
            let id = key.key_id;
            state.created_order.push((key.created_seq, id));
            state.keys.insert(id, key);
            state.refresh_admin(id);
        }
        state.created_order.sort_unstable();
        state
    }
}

/// All keys, with a lookup by secret hash for verification. Persisted as its [`SnapshotEntry`] list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(into = "Vec<SnapshotEntry>", from = "Vec<SnapshotEntry>")]
pub struct KeyState {
    keys: HashMap<Uuid, KeyRecord>,
    by_hash: HashMap<[u8; 32], Uuid>,
    /// Every key ever given a name in an environment, so that checking a new name costs O(1), not O(keys).
    /// Sorted ids, almost always one: a vector costs a tenth of a one-entry BTreeSet's node.
    by_name: HashMap<(String, String), Vec<Uuid>>,
    /// Keys that may be usable administrators (granting `ledger:admin`, bound to no project, not revoked, expired,
    /// retired or rotated away), so that the last-admin guard looks at these, not at every key.
    admins: BTreeSet<Uuid>,
    /// Every key by the seq of its creation, ascending: a page of the key list reads its keys, not every key.
    created_order: Vec<(u64, Uuid)>,
}

impl KeyState {
    pub fn get(&self, key_id: &Uuid) -> Option<&KeyRecord> {
        self.keys.get(key_id)
    }

    /// The key whose secret has this SHA-256, if any.
    pub fn by_secret_hash(&self, hash: &[u8; 32]) -> Option<&KeyRecord> {
        self.by_hash.get(hash).and_then(|id| self.keys.get(id))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &KeyRecord> {
        self.keys.values()
    }

    /// The keys created after event `after`, oldest first.
    pub fn created_after(&self, after: u64) -> impl Iterator<Item = &KeyRecord> {
        let from = self.created_order.partition_point(|(seq, _)| *seq <= after);
        self.created_order[from..]
            .iter()
            .filter_map(|(_, id)| self.keys.get(id))
    }

    /// The keys that were ever named `name` in `environment` (whatever their status now).
    pub fn named<'a>(
        &'a self,
        environment: &str,
        name: &str,
    ) -> impl Iterator<Item = &'a KeyRecord> + 'a {
        self.by_name
            .get(&(environment.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|id| self.keys.get(id))
    }

    /// The keys that may be usable administrators at some time (see [`KeyRecord::is_usable_admin`] for now).
    pub fn admin_candidates(&self) -> impl Iterator<Item = &KeyRecord> {
        self.admins.iter().filter_map(|id| self.keys.get(id))
    }

    /// Refuses a change at `now` that would leave no usable `ledger:admin` key, when there is one now. `losing`
    /// lists the keys that stop being usable administrators through the change.
    pub fn an_admin_remains(&self, now: LedgerTime, losing: &[Uuid]) -> LedgerResult<()> {
        let loses_one = losing
            .iter()
            .any(|id| self.get(id).is_some_and(|k| k.is_usable_admin(now)));
        if !loses_one {
            // Most changes concern service keys: nothing to look through.
            return Ok(());
        }
        let mut admins = self.admin_candidates().filter(|k| k.is_usable_admin(now));
        let Some(first) = admins.next() else {
            // No administrator to lose (e.g. a ledger administered only from the CLI).
            return Ok(());
        };
        let remains = std::iter::once(first)
            .chain(admins)
            .any(|k| !losing.contains(&k.key_id));
        if remains {
            return Ok(());
        }
        Err(LedgerError::conflict(
            "last_admin_key",
            "this change would leave no active ledger:admin key; issue another admin key first \
             (or, locked out already, run `keyledger admin recover` on the server)",
        ))
    }

    fn refresh_admin(&mut self, key_id: Uuid) {
        let candidate = self.keys.get(&key_id).is_some_and(|key| {
            !matches!(
                key.recorded_status,
                KeyStatus::Revoked | KeyStatus::Expired | KeyStatus::Retired
            ) && key.rotated_to.is_none()
                && key.config.project_ids.is_empty()
                && key.grants_scope(crate::projection::scope::LEDGER_ADMIN)
        });
        if candidate {
            self.admins.insert(key_id);
        } else {
            self.admins.remove(&key_id);
        }
    }

    fn name_key(&mut self, environment: &str, name: &str, key_id: Uuid) {
        let ids = self
            .by_name
            .entry((environment.to_string(), name.to_string()))
            .or_default();
        if let Err(at) = ids.binary_search(&key_id) {
            ids.insert(at, key_id);
        }
    }

    /// Events apply in seq order, so a creation almost always goes at the end; the search keeps the order whatever
    /// the caller does.
    fn order_created(&mut self, seq: u64, key_id: Uuid) {
        match self.created_order.last() {
            Some(last) if *last >= (seq, key_id) => {
                let at = self
                    .created_order
                    .partition_point(|entry| *entry < (seq, key_id));
                self.created_order.insert(at, (seq, key_id));
            }
            _ => self.created_order.push((seq, key_id)),
        }
    }

    /// Sets a key's last allowed use (for states rebuilt from lifecycle events only).
    pub fn set_last_use(&mut self, key_id: Uuid, at: LedgerTime, ip: Option<String>) {
        if let Some(key) = self.keys.get_mut(&key_id) {
            key.last_used_at = Some(at);
            key.last_used_ip = ip;
        }
    }

    /// Every key with the fields its public form leaves out: a complete, comparable picture of the state.
    pub fn snapshot_entries(&self) -> Vec<SnapshotEntry> {
        self.keys
            .values()
            .map(|key| SnapshotEntry {
                key: key.clone(),
                secret_sha256: hex::encode(key.secret_sha256),
                rate_tat: key.rate_tat,
            })
            .collect()
    }

    pub fn apply(&mut self, event: &Event) {
        self.apply_event(event);
        if event.data.is_lifecycle() {
            for key_id in event.key_ids().into_iter().flatten() {
                self.refresh_admin(key_id);
            }
        }
    }

    fn apply_event(&mut self, event: &Event) {
        let at = event.time;
        match &event.data {
            EventData::KeyCreated(created) => {
                let mut hash = [0u8; 32];
                // A malformed hash in a verified log cannot match any secret; leave it zeroed.
                let _ = hex::decode_to_slice(&created.secret_sha256, &mut hash);
                self.by_hash.insert(hash, created.key_id);
                let replaced = self.keys.insert(
                    created.key_id,
                    KeyRecord {
                        key_id: created.key_id,
                        prefix: created.prefix.clone(),
                        secret_sha256: hash,
                        config: Arc::new(created.config.clone()),
                        recorded_status: KeyStatus::Active,
                        created_at: at,
                        created_seq: event.seq,
                        updated_at: at,
                        suspended_until: None,
                        status_reason: None,
                        revoked_at: None,
                        rotated_from: created.rotated_from,
                        rotated_to: None,
                        retires_at: None,
                        last_rotated_at: None,
                        last_used_at: None,
                        last_used_ip: None,
                        rate_tat: 0,
                        allow_nets: Vec::new(),
                    },
                );
                if let Some(key) = self.keys.get_mut(&created.key_id) {
                    key.refresh_derived();
                }
                if let Some(replaced) = replaced {
                    let entry = (replaced.created_seq, created.key_id);
                    if let Ok(at) = self.created_order.binary_search(&entry) {
                        self.created_order.remove(at);
                    }
                }
                self.order_created(event.seq, created.key_id);
                self.name_key(
                    &created.config.environment,
                    &created.config.name,
                    created.key_id,
                );
            }
            EventData::KeyUpdated(update) => {
                self.with_key(update.key_id, at, |key| key.apply_patch(&update.changes))
            }
            EventData::KeyRotated(rotation) => {
                self.with_key(rotation.key_id, at, |key| {
                    key.rotated_to = Some(rotation.new_key_id);
                    key.retires_at = Some(rotation.old_key_retires_at);
                    key.last_rotated_at = Some(at);
                });
                self.with_key(rotation.new_key_id, at, |key| {
                    key.last_rotated_at = Some(at)
                });
            }
            EventData::KeyRevoked(change) => self.with_key(change.key_id, at, |key| {
                key.recorded_status = KeyStatus::Revoked;
                key.revoked_at = Some(at);
                key.status_reason = change.reason.clone();
            }),
            EventData::KeySuspended(suspension) => self.with_key(suspension.key_id, at, |key| {
                key.recorded_status = KeyStatus::Suspended;
                key.suspended_until = suspension.until;
                key.status_reason = suspension.reason.clone();
            }),
            EventData::KeyReactivated(change) => self.with_key(change.key_id, at, |key| {
                key.recorded_status = KeyStatus::Active;
                key.suspended_until = None;
                key.status_reason = change.reason.clone();
            }),
            EventData::KeyExpired(change) => self.with_key(change.key_id, at, |key| {
                key.recorded_status = KeyStatus::Expired;
                key.status_reason = change.reason.clone();
            }),
            EventData::KeyUsed(used) => {
                if let Some(key) = used.key_id.and_then(|id| self.keys.get_mut(&id)) {
                    if used.outcome == VerifyCode::Valid {
                        key.record_allowed_use(at);
                        key.last_used_at = Some(at);
                        key.last_used_ip = used.ip.clone();
                    }
                }
                // A key use whose actor is a key (a gateway's verification) is also an allowed use of that key:
                // it authenticated the request, so its rate limit and last use move too.
                let gateway = event.actor.key_id().filter(|id| used.key_id != Some(*id));
                if let Some(gateway) = gateway.and_then(|id| self.keys.get_mut(&id)) {
                    gateway.record_allowed_use(at);
                    gateway.last_used_at = Some(at);
                    gateway.last_used_ip = used.gateway_ip.clone();
                }
            }
            EventData::PolicySet(_)
            | EventData::AnomalyDetected(_)
            | EventData::LedgerInitialized(_)
            | EventData::SignerRotated(_) => {}
        }
    }

    /// The one path by which an event changes a key: whatever changed, what verification derives from the
    /// configuration is recomputed, so no derived copy can go stale.
    fn with_key(&mut self, key_id: Uuid, at: LedgerTime, change: impl FnOnce(&mut KeyRecord)) {
        if let Some(key) = self.keys.get_mut(&key_id) {
            let named = (key.config.environment.clone(), key.config.name.clone());
            change(key);
            key.refresh_derived();
            key.updated_at = at;
            if named != (key.config.environment.clone(), key.config.name.clone()) {
                let (environment, name) = (key.config.environment.clone(), key.config.name.clone());
                self.name_key(&environment, &name, key_id);
            }
        }
    }
}
