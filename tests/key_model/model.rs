//! The reference model: the documented key rules over plain data, written without the projection's code.

use keyledger::event::VerifyCode;
use keyledger::projection::KeyStatus;
use uuid::Uuid;

const MINUTE: i64 = 60_000_000;

/// The rules, as documented, over plain data. Times are microseconds.
#[derive(Clone, Debug)]
pub struct ModelKey {
    pub id: Uuid,
    pub secret: String,
    pub scopes: Vec<String>,
    pub allow: Vec<String>,
    pub projects: Vec<String>,
    pub rate: Option<u32>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub suspended: Option<Option<i64>>,
    pub rotated: bool,
    pub retires_at: Option<i64>,
    pub tat: i64,
}

fn v4(text: &str) -> u32 {
    text.split('.')
        .fold(0, |acc, part| (acc << 8) | part.parse::<u32>().unwrap())
}

fn in_net(ip: &str, net: &str) -> bool {
    let (base, bits) = net.split_once('/').unwrap();
    let bits: u32 = bits.parse().unwrap();
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    v4(ip) & mask == v4(base) & mask
}

fn scope_grants(held: &str, required: &str) -> bool {
    held == required
        || held == "*"
        || (held.ends_with(":*") && required.starts_with(&held[..held.len() - 1]))
}

impl ModelKey {
    pub fn status(&self, now: i64) -> KeyStatus {
        if self.revoked {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            KeyStatus::Expired
        } else if self.retires_at.is_some_and(|at| at <= now) {
            KeyStatus::Retired
        } else if matches!(self.suspended, Some(None))
            || matches!(self.suspended, Some(Some(u)) if u > now)
        {
            KeyStatus::Suspended
        } else {
            KeyStatus::Active
        }
    }

    /// Could authenticate an administrator: active, not replaced by rotation, granting ledger:admin, unbound.
    pub fn usable_admin(&self, now: i64) -> bool {
        self.status(now) == KeyStatus::Active
            && !self.rotated
            && self.scopes.iter().any(|s| scope_grants(s, "ledger:admin"))
            && self.projects.is_empty()
    }

    pub fn changeable(&self, now: i64) -> bool {
        matches!(self.status(now), KeyStatus::Active | KeyStatus::Suspended)
    }

    pub fn verify(
        &mut self,
        now: i64,
        ip: &str,
        scope: Option<&str>,
        project: Option<&str>,
    ) -> (VerifyCode, bool) {
        let code = match self.status(now) {
            KeyStatus::Revoked => VerifyCode::Revoked,
            KeyStatus::Expired => VerifyCode::Expired,
            KeyStatus::Retired => VerifyCode::Retired,
            KeyStatus::Suspended => VerifyCode::Suspended,
            KeyStatus::Active => {
                let rate_limited = self.rate.is_some_and(|limit| {
                    let interval = MINUTE / i64::from(limit);
                    self.tat.max(now) - now > MINUTE - interval
                });
                if scope.is_some_and(|s| !self.scopes.iter().any(|h| scope_grants(h, s))) {
                    VerifyCode::InsufficientScope
                } else if !self.projects.is_empty()
                    && !project.is_some_and(|p| self.projects.iter().any(|x| x == p))
                {
                    VerifyCode::ProjectNotAllowed
                } else if !self.allow.is_empty() && !self.allow.iter().any(|net| in_net(ip, net)) {
                    VerifyCode::IpNotAllowed
                } else if rate_limited {
                    VerifyCode::RateLimited
                } else {
                    VerifyCode::Valid
                }
            }
        };
        if code == VerifyCode::Valid {
            if let Some(limit) = self.rate {
                self.tat = self.tat.max(now) + MINUTE / i64::from(limit);
            }
        }
        let overlap =
            code == VerifyCode::Valid && self.rotated && self.retires_at.is_some_and(|at| at > now);
        (code, overlap)
    }
}
