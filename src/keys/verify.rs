//! The verification hot path: from a presented secret, client IP, project and required scope to one stable
//! outcome code, recorded as a durable `key.used` event before the answer.

use crate::error::LedgerResult;
use crate::event::{Actor, EventData, KeyUsed, VerifyCode};
use crate::ledger::{Command, PlanContext};
use crate::projection::{KeyState, KeyStatus};
use crate::secret::{self, SecretHash};
use crate::time::LedgerTime;
use serde::Serialize;
use std::net::IpAddr;
use uuid::Uuid;

/// What was decided about one presentation of a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub code: VerifyCode,
    pub key_id: Option<Uuid>,
    /// The key was replaced by rotation and is inside its overlap window.
    pub overlap: bool,
}

pub const MAX_REQUIRED_SCOPE: usize = 128;
pub const MAX_USER_AGENT: usize = 512;
pub const MAX_PROJECT: usize = 64;

/// The limits on what a verification request records, the same for the API and the CLI: the required scope (at
/// most 128 bytes), the user agent (512) and the project (1-64), none with control characters.
pub fn check_request(
    scope: Option<&str>,
    user_agent: Option<&str>,
    project: Option<&str>,
) -> crate::error::LedgerResult<()> {
    let fields = [
        ("scope", scope, 1, MAX_REQUIRED_SCOPE),
        ("user_agent", user_agent, 0, MAX_USER_AGENT),
        ("project", project, 1, MAX_PROJECT),
    ];
    for (field, value, min, max) in fields {
        if let Some(value) = value {
            if value.len() < min || value.len() > max || value.chars().any(char::is_control) {
                return Err(crate::error::LedgerError::invalid(
                    field,
                    format!("{min}-{max} bytes, no control characters"),
                ));
            }
        }
    }
    Ok(())
}

/// What a verification asks about the presented key besides its secret.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    pub ip: Option<IpAddr>,
    pub scope: Option<&'a str>,
    pub project: Option<&'a str>,
}

/// The in-process check, without the append: lookup by hash, then status, expiry, scope, project, IP allowlist
/// and rate limit, in that order, all read from the key's current configuration. `hash` is `None` when the
/// secret failed the format check.
pub fn decide(
    state: &KeyState,
    hash: Option<&SecretHash>,
    request: Request<'_>,
    now: LedgerTime,
) -> Decision {
    let Some(hash) = hash else {
        return Decision {
            code: VerifyCode::BadFormat,
            key_id: None,
            overlap: false,
        };
    };
    let Some(key) = state
        .by_secret_hash(hash)
        .filter(|key| secret::hashes_equal(&key.secret_sha256, hash))
    else {
        return Decision {
            code: VerifyCode::NotFound,
            key_id: None,
            overlap: false,
        };
    };
    let code = match key.status_at(now) {
        KeyStatus::Revoked => VerifyCode::Revoked,
        KeyStatus::Expired => VerifyCode::Expired,
        KeyStatus::Retired => VerifyCode::Retired,
        KeyStatus::Suspended => VerifyCode::Suspended,
        KeyStatus::Active => {
            if request.scope.is_some_and(|scope| !key.grants_scope(scope)) {
                VerifyCode::InsufficientScope
            } else if !key.project_allowed(request.project) {
                VerifyCode::ProjectNotAllowed
            } else if !key.ip_allowed(request.ip) {
                VerifyCode::IpNotAllowed
            } else if key.rate_limited_at(now) {
                VerifyCode::RateLimited
            } else {
                VerifyCode::Valid
            }
        }
    };
    Decision {
        code,
        key_id: Some(key.key_id),
        overlap: code.is_allowed() && key.in_overlap_at(now),
    }
}

/// The answer to a verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct VerifyAnswer {
    pub valid: bool,
    pub code: VerifyCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The key was replaced by rotation and works only until `retires_at` (only on an allowed answer).
    pub overlap: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retires_at: Option<LedgerTime>,
    /// The presented key's rate limit after this use (keys with a limit only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<crate::projection::RateStatus>,
    /// When the answer is `rate_limited`: seconds until the key's limit lets a use through again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// The seq of the `key.used` event that records this answer.
    pub seq: u64,
}

/// Verifies a presented secret and records the outcome. Build it with [`VerifyKey::new`], which checks the
/// format and hashes the secret on the caller's thread, so the writer only looks up and decides.
#[derive(Debug)]
pub struct VerifyKey {
    pub actor: Actor,
    pub request_id: Option<String>,
    hash: Option<SecretHash>,
    prefix: Option<String>,
    pub ip: Option<IpAddr>,
    pub scope: Option<String>,
    pub project: Option<String>,
    pub user_agent: Option<String>,
    /// Set when a gateway asks on behalf of a client: the gateway's own address.
    pub gateway_ip: Option<IpAddr>,
    /// The original request's method and path, when a gateway forwards it (`/v1/authz`).
    pub method: Option<String>,
    pub path: Option<String>,
}

impl VerifyKey {
    pub fn new(
        presented: &str,
        ip: Option<IpAddr>,
        scope: Option<String>,
        user_agent: Option<String>,
    ) -> Self {
        let well_formed = secret::check_format(presented).is_ok();
        Self {
            actor: Actor::System,
            request_id: None,
            hash: well_formed.then(|| secret::hash_secret(presented)),
            prefix: if well_formed {
                secret::public_prefix_of(presented)
            } else {
                None
            },
            ip,
            scope,
            project: None,
            user_agent,
            gateway_ip: None,
            method: None,
            path: None,
        }
    }

    /// The verification guards this request of the client's (recorded in `key.used`).
    pub fn for_request(mut self, method: Option<String>, path: Option<String>) -> Self {
        self.method = method;
        self.path = path;
        self
    }

    pub fn by(mut self, actor: Actor, request_id: Option<String>) -> Self {
        self.actor = actor;
        self.request_id = request_id;
        self
    }

    /// The verification is for this project (a key bound to projects must list it).
    pub fn for_project(mut self, project: Option<String>) -> Self {
        self.project = project;
        self
    }

    /// Decides without recording: what [`Command::plan`] would answer now.
    pub fn decide(&self, state: &KeyState, now: LedgerTime) -> Decision {
        let request = Request {
            ip: self.ip,
            scope: self.scope.as_deref(),
            project: self.project.as_deref(),
        };
        decide(state, self.hash.as_ref(), request, now)
    }
}

impl Command for VerifyKey {
    type Output = VerifyAnswer;

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<VerifyAnswer> {
        let decision = self.decide(ctx.state(), ctx.now());
        let key = decision.key_id.and_then(|id| ctx.state().get(&id));
        let mut answer = VerifyAnswer {
            valid: decision.code.is_allowed(),
            code: decision.code,
            key_id: decision.key_id,
            name: key.map(|k| k.config.name.clone()),
            owner: key.map(|k| k.config.owner.clone()),
            environment: key.map(|k| k.config.environment.clone()),
            scopes: key.map(|k| k.config.scopes.clone()).unwrap_or_default(),
            overlap: decision.overlap,
            retires_at: key.and_then(|k| k.retires_at).filter(|_| decision.overlap),
            retry_after_secs: key
                .filter(|_| decision.code == VerifyCode::RateLimited)
                .and_then(|k| k.retry_after_secs(ctx.now())),
            rate_limit: None,
            seq: 0,
        };
        let event = EventData::KeyUsed(KeyUsed {
            key_id: decision.key_id,
            prefix: self.prefix.take(),
            outcome: decision.code,
            ip: self.ip.map(|ip| ip.to_string()),
            user_agent: self.user_agent.take(),
            scope: self.scope.take(),
            project: self.project.take(),
            gateway_ip: self.gateway_ip.map(|ip| ip.to_string()),
            overlap: decision.overlap,
            method: self.method.take(),
            path: self.path.take(),
            committed: None,
        });
        let recorded = ctx.emit(self.actor.clone(), self.request_id.take(), event)?;
        let (seq, at) = (recorded.seq, recorded.time);
        answer.seq = seq;
        answer.rate_limit = decision
            .key_id
            .and_then(|id| ctx.state().get(&id))
            .and_then(|k| k.rate_status(at));
        Ok(answer)
    }
}
