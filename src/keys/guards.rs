//! The rules that protect the ledger from its own users: no self-suspension or self-demotion, always one
//! administrator left, no key that grants more of the ledger than its issuer holds, one live key per name and
//! environment. Each refusal is a 409 (or 403) with a stable code.

use crate::error::{LedgerError, LedgerResult};
use crate::event::Actor;
use crate::ledger::PlanContext;
use crate::projection::{KeyRecord, KeyStatus};
use uuid::Uuid;

use crate::projection::scope;

/// Refuses a change that would leave no usable `ledger:admin` key, when there is one now. `losing` lists the
/// keys that stop being usable administrators through the change.
pub fn an_admin_remains(ctx: &PlanContext<'_>, losing: &[Uuid]) -> LedgerResult<()> {
    ctx.state().an_admin_remains(ctx.now(), losing)
}

/// A request may not revoke, suspend or demote the key it authenticates with (the CLI operator has no key).
pub fn not_self(actor: &Actor, key_id: Uuid, code: &'static str, what: &str) -> LedgerResult<()> {
    if actor.key_id() == Some(key_id) {
        return Err(LedgerError::conflict(
            code,
            format!(
                "a request may not {what} the key it authenticates with; use another admin key"
            ),
        ));
    }
    Ok(())
}

/// A key may hand out keyledger's own scopes (`ledger:…`, `ledger:*`, `*`) only if it holds them itself; any
/// other scope is the administrator's to grant. The CLI operator on the server is not limited.
pub fn may_grant(ctx: &PlanContext<'_>, actor: &Actor, scopes: &[String]) -> LedgerResult<()> {
    let Some(issuer) = actor.key_id().and_then(|id| ctx.state().get(&id)) else {
        return Ok(());
    };
    match scopes
        .iter()
        .find(|s| scope::reaches_ledger(s) && !scope::covers(&issuer.config.scopes, s))
    {
        Some(excess) => Err(LedgerError::Forbidden {
            code: "scope_not_held",
            message: format!(
                "the key making this request does not hold {excess:?}; a key may grant keyledger's own \
                 scopes only if it holds them"
            ),
        }),
        None => Ok(()),
    }
}

/// Whether a key still holds its name: it is not revoked, expired or retired, and was not replaced by rotation
/// (its successor carries the name on).
fn holds_name(key: &KeyRecord, ctx: &PlanContext<'_>) -> bool {
    key.rotated_to.is_none()
        && matches!(
            key.status_at(ctx.now()),
            KeyStatus::Active | KeyStatus::Suspended
        )
}

/// Names are unique among the live keys of an environment.
pub fn name_free(ctx: &PlanContext<'_>, environment: &str, name: &str) -> LedgerResult<()> {
    match ctx
        .state()
        .named(environment, name)
        .find(|k| k.config.environment == environment && k.config.name == name && holds_name(k, ctx))
    {
        Some(taken) => Err(LedgerError::conflict(
            "name_taken",
            format!(
                "key {} is already named {name:?} in {environment}; choose another name or revoke it first",
                taken.key_id
            ),
        )),
        None => Ok(()),
    }
}
