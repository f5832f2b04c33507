//! Key lifecycle commands: create, update, rotate (with an overlap window), revoke, suspend, reactivate and the
//! expiry sweep. Each checks its rules against the writer's key state and appends its events.

use super::{guards, validate};
use crate::error::{LedgerError, LedgerResult};
use crate::event::{
    Actor, EventData, KeyConfig, KeyCreated, KeyPatch, KeyRotated, KeyStatusChange, KeySuspended,
    KeyUpdated,
};
use crate::ledger::{Command, PlanContext};
use crate::projection::{KeyRecord, KeyStatus};
use crate::secret::Secret;
use crate::time::LedgerTime;
use uuid::Uuid;

/// Who asks, for the record.
#[derive(Clone, Debug)]
pub struct Requester {
    pub actor: Actor,
    pub request_id: Option<String>,
}

impl Requester {
    pub fn new(actor: Actor, request_id: Option<String>) -> Self {
        Self { actor, request_id }
    }
}

/// A new key and its secret, which is shown once and never stored.
#[derive(Debug)]
pub struct IssuedKey {
    pub key: KeyRecord,
    pub secret: Secret,
    pub seq: u64,
}

fn key_for_change<'s>(
    ctx: &'s PlanContext<'_>,
    key_id: &Uuid,
    verb: &str,
) -> LedgerResult<&'s KeyRecord> {
    let key = ctx
        .state()
        .get(key_id)
        .ok_or_else(|| LedgerError::not_found(format!("key {key_id}")))?;
    match key.status_at(ctx.now()) {
        KeyStatus::Revoked => Err(LedgerError::conflict(
            "key_revoked",
            format!("key {key_id} is revoked; a revoked key cannot be {verb}"),
        )),
        KeyStatus::Retired => Err(LedgerError::conflict(
            "key_retired",
            format!("key {key_id} was retired by rotation; it cannot be {verb}"),
        )),
        KeyStatus::Expired => Err(LedgerError::conflict(
            "key_expired",
            format!("key {key_id} has expired; it cannot be {verb}"),
        )),
        KeyStatus::Active | KeyStatus::Suspended => Ok(key),
    }
}

/// The key's record as it stands after this command's events.
pub(super) fn record_of(ctx: &PlanContext<'_>, key_id: &Uuid) -> LedgerResult<KeyRecord> {
    ctx.state()
        .get(key_id)
        .cloned()
        .ok_or_else(|| LedgerError::not_found(format!("key {key_id}")))
}

fn emit_created(
    ctx: &mut PlanContext<'_>,
    who: &Requester,
    config: KeyConfig,
    rotated_from: Option<Uuid>,
) -> LedgerResult<IssuedKey> {
    let secret = Secret::generate(&config.environment);
    let key_id = Uuid::now_v7();
    let data = EventData::KeyCreated(KeyCreated {
        key_id,
        prefix: secret.public_prefix(),
        secret_sha256: secret.hash_hex(),
        config,
        rotated_from,
    });
    let seq = ctx
        .emit(who.actor.clone(), who.request_id.clone(), data)?
        .seq;
    let key = ctx
        .state()
        .get(&key_id)
        .cloned()
        .ok_or_else(|| LedgerError::not_found(format!("key {key_id}")))?;
    Ok(IssuedKey { key, secret, seq })
}

/// Creates a key from a validated configuration.
pub struct CreateKey {
    pub who: Requester,
    pub config: KeyConfig,
}

impl CreateKey {
    /// Validates the configuration before it reaches the writer.
    pub fn new(who: Requester, config: &KeyConfig) -> LedgerResult<Self> {
        Ok(Self {
            who,
            config: validate::config(config)?,
        })
    }
}

impl Command for CreateKey {
    type Output = IssuedKey;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<IssuedKey> {
        if self.config.expires_at.is_some_and(|at| at <= ctx.now()) {
            return Err(LedgerError::invalid("expires_at", "must be in the future"));
        }
        guards::may_grant(ctx, &self.who.actor, &self.config.scopes)?;
        guards::name_free(ctx, &self.config.environment, &self.config.name)?;
        emit_created(ctx, &self.who, self.config.clone(), None)
    }
}

/// Changes what may change; `name` and `environment` may not (a key's identity), so they are not in the patch.
pub struct UpdateKey {
    pub who: Requester,
    pub key_id: Uuid,
    pub changes: KeyPatch,
}

impl UpdateKey {
    pub fn new(who: Requester, key_id: Uuid, changes: &KeyPatch) -> LedgerResult<Self> {
        Ok(Self {
            who,
            key_id,
            changes: validate::patch(changes)?,
        })
    }
}

impl Command for UpdateKey {
    type Output = KeyRecord;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<KeyRecord> {
        let key = key_for_change(ctx, &self.key_id, "updated")?;
        if self.changes.expires_at.is_some_and(|at| at <= ctx.now()) {
            return Err(LedgerError::invalid(
                "expires_at",
                "must be in the future (revoke the key to stop it now)",
            ));
        }
        let now = ctx.now();
        let loses_admin =
            key.is_usable_admin(now) && !key.patched(&self.changes).is_usable_admin(now);
        if loses_admin {
            guards::not_self(
                &self.who.actor,
                self.key_id,
                "cannot_remove_own_admin",
                "remove ledger:admin from",
            )?;
            guards::an_admin_remains(ctx, &[self.key_id])?;
        }
        if let Some(scopes) = &self.changes.scopes {
            guards::may_grant(ctx, &self.who.actor, scopes)?;
        }
        let data = EventData::KeyUpdated(KeyUpdated {
            key_id: self.key_id,
            changes: self.changes.clone(),
        });
        ctx.emit(self.who.actor.clone(), self.who.request_id.clone(), data)?;
        record_of(ctx, &self.key_id)
    }
}

/// Longest overlap window a rotation may have: 30 days.
pub const MAX_OVERLAP_SECONDS: u32 = 30 * 24 * 3600;

/// Replaces a key with a new one of the same configuration; the old one works until the overlap ends.
pub struct RotateKey {
    pub who: Requester,
    pub key_id: Uuid,
    pub overlap_seconds: u32,
}

impl Command for RotateKey {
    type Output = IssuedKey;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<IssuedKey> {
        if self.overlap_seconds > MAX_OVERLAP_SECONDS {
            return Err(LedgerError::invalid(
                "overlap_seconds",
                format!("at most {MAX_OVERLAP_SECONDS} (30 days)"),
            ));
        }
        // Rotating its own key would retire the caller's credential (at once without an overlap), as revoking
        // or suspending it would: refused alike.
        guards::not_self(
            &self.who.actor,
            self.key_id,
            "cannot_rotate_own_key",
            "rotate",
        )?;
        let old = key_for_change(ctx, &self.key_id, "rotated")?;
        if let Some(successor) = old.rotated_to {
            return Err(LedgerError::conflict(
                "already_rotated",
                format!("key {} was already rotated to {successor}", self.key_id),
            ));
        }
        let config = KeyConfig::clone(&old.config);
        guards::may_grant(ctx, &self.who.actor, &config.scopes)?;
        let now = ctx.now();
        let issued = emit_created(ctx, &self.who, config, Some(self.key_id))?;
        let data = EventData::KeyRotated(KeyRotated {
            key_id: self.key_id,
            new_key_id: issued.key.key_id,
            overlap_seconds: self.overlap_seconds,
            old_key_retires_at: now.plus_secs(i64::from(self.overlap_seconds)),
        });
        ctx.emit(self.who.actor.clone(), self.who.request_id.clone(), data)?;
        Ok(issued)
    }
}

/// Revokes a key for good. A request may not revoke the key it authenticates with.
pub struct RevokeKey {
    pub who: Requester,
    pub key_id: Uuid,
    pub reason: Option<String>,
}

impl Command for RevokeKey {
    type Output = KeyRecord;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<KeyRecord> {
        if self.who.actor.key_id() == Some(self.key_id) {
            return Err(LedgerError::conflict(
                "cannot_revoke_own_key",
                "a request may not revoke the key it authenticates with; use another admin key",
            ));
        }
        let key = ctx
            .state()
            .get(&self.key_id)
            .ok_or_else(|| LedgerError::not_found(format!("key {}", self.key_id)))?;
        if key.recorded_status == KeyStatus::Revoked {
            return Err(LedgerError::conflict(
                "key_revoked",
                format!("key {} is already revoked", self.key_id),
            ));
        }
        let reason = self.reason.as_deref().map(validate_reason).transpose()?;
        guards::an_admin_remains(ctx, &[self.key_id])?;
        let data = EventData::KeyRevoked(KeyStatusChange {
            key_id: self.key_id,
            reason,
        });
        ctx.emit(self.who.actor.clone(), self.who.request_id.clone(), data)?;
        record_of(ctx, &self.key_id)
    }
}

pub(super) fn validate_reason(reason: &str) -> LedgerResult<String> {
    let trimmed = reason.trim();
    if trimmed.chars().count() > 512 || trimmed.chars().any(char::is_control) {
        return Err(LedgerError::invalid(
            "reason",
            "at most 512 characters, no control characters",
        ));
    }
    Ok(trimmed.to_string())
}

/// Suspends an active key, until a time or until reactivated.
pub struct SuspendKey {
    pub who: Requester,
    pub key_id: Uuid,
    pub until: Option<LedgerTime>,
    pub reason: Option<String>,
}

impl Command for SuspendKey {
    type Output = KeyRecord;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<KeyRecord> {
        guards::not_self(
            &self.who.actor,
            self.key_id,
            "cannot_suspend_own_key",
            "suspend",
        )?;
        let key = key_for_change(ctx, &self.key_id, "suspended")?;
        if key.status_at(ctx.now()) == KeyStatus::Suspended {
            return Err(LedgerError::conflict(
                "key_suspended",
                format!("key {} is already suspended", self.key_id),
            ));
        }
        if self.until.is_some_and(|until| until <= ctx.now()) {
            return Err(LedgerError::invalid("until", "must be in the future"));
        }
        let reason = self.reason.as_deref().map(validate_reason).transpose()?;
        guards::an_admin_remains(ctx, &[self.key_id])?;
        let data = EventData::KeySuspended(KeySuspended {
            key_id: self.key_id,
            reason,
            until: self.until,
        });
        ctx.emit(self.who.actor.clone(), self.who.request_id.clone(), data)?;
        record_of(ctx, &self.key_id)
    }
}

/// Reactivates a suspended key.
pub struct ReactivateKey {
    pub who: Requester,
    pub key_id: Uuid,
    pub reason: Option<String>,
}

impl Command for ReactivateKey {
    type Output = KeyRecord;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<KeyRecord> {
        let key = key_for_change(ctx, &self.key_id, "reactivated")?;
        if key.status_at(ctx.now()) != KeyStatus::Suspended {
            return Err(LedgerError::conflict(
                "key_not_suspended",
                format!("key {} is not suspended", self.key_id),
            ));
        }
        let reason = self.reason.as_deref().map(validate_reason).transpose()?;
        let data = EventData::KeyReactivated(KeyStatusChange {
            key_id: self.key_id,
            reason,
        });
        ctx.emit(self.who.actor.clone(), self.who.request_id.clone(), data)?;
        record_of(ctx, &self.key_id)
    }
}
