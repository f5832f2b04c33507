//! Commands over many keys at once: offboarding an owner, and the sweep that records expiries.

use super::commands::{record_of, validate_reason, Requester};
use super::guards;
use crate::error::{LedgerError, LedgerResult};
use crate::event::{EventData, KeyStatusChange};
use crate::ledger::{Command, PlanContext};
use crate::projection::{KeyRecord, KeyStatus};
use uuid::Uuid;

/// Offboarding: revokes every key of an owner that still works or could work again (active or suspended), one
/// `key.revoked` each, and returns them. Refused as a whole if it would revoke the requester's own key or the
/// last administrator.
pub struct RevokeOwnerKeys {
    pub who: Requester,
    pub owner: String,
    pub reason: Option<String>,
}

impl Command for RevokeOwnerKeys {
    type Output = Vec<KeyRecord>;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<Vec<KeyRecord>> {
        let owner = self.owner.trim();
        if owner.is_empty() {
            return Err(LedgerError::invalid("owner", "must not be empty"));
        }
        if crate::secret::contains_secret(owner) {
            // Never echoed: the "no such owner" answer would print it back.
            return Err(LedgerError::invalid(
                "owner",
                "holds a keyledger secret (kl_…); treat that key as exposed and rotate it",
            ));
        }
        let reason = self.reason.as_deref().map(validate_reason).transpose()?;
        let now = ctx.now();
        let mut doomed: Vec<(u64, Uuid)> = ctx
            .state()
            .iter()
            .filter(|k| {
                k.config.owner == owner
                    && matches!(k.status_at(now), KeyStatus::Active | KeyStatus::Suspended)
            })
            .map(|k| (k.created_seq, k.key_id))
            .collect();
        doomed.sort_unstable();
        let ids: Vec<Uuid> = doomed.into_iter().map(|(_, id)| id).collect();
        for id in &ids {
            guards::not_self(&self.who.actor, *id, "cannot_revoke_own_key", "revoke")?;
        }
        guards::an_admin_remains(ctx, &ids)?;
        let mut revoked = Vec::with_capacity(ids.len());
        for key_id in ids {
            let data = EventData::KeyRevoked(KeyStatusChange {
                key_id,
                reason: reason.clone(),
            });
            ctx.emit(self.who.actor.clone(), self.who.request_id.clone(), data)?;
            revoked.push(record_of(ctx, &key_id)?);
        }
        Ok(revoked)
    }
}

/// Records `key.expired` for every key past its `expires_at` that has no such event yet. Verification already
/// refuses those keys; the sweep puts the expiry on the record. Returns the keys it expired.
pub struct SweepExpired {
    pub who: Requester,
}

impl Command for SweepExpired {
    type Output = Vec<Uuid>;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<Vec<Uuid>> {
        let now = ctx.now();
        let mut due: Vec<Uuid> = ctx
            .state()
            .iter()
            .filter(|key| {
                matches!(
                    key.recorded_status,
                    KeyStatus::Active | KeyStatus::Suspended
                ) && key.config.expires_at.is_some_and(|at| at <= now)
            })
            .map(|key| key.key_id)
            .collect();
        due.sort_unstable();
        for key_id in &due {
            let data = EventData::KeyExpired(KeyStatusChange {
                key_id: *key_id,
                reason: Some("expires_at reached".into()),
            });
            ctx.emit(self.who.actor.clone(), self.who.request_id.clone(), data)?;
        }
        Ok(due)
    }
}
