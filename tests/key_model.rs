//! Random histories of create, update, rotate, suspend, reactivate, revoke, time passing and verification,
//! checked against a plain reference model of the rules written here from the documented semantics (not the
//! projection's code): every command's acceptance and every verification's outcome, live, after a restart and
//! after a full replay.

mod common;
#[path = "key_model/model.rs"]
mod model;

use model::ModelKey;

use keyledger::clock::Clock;
use keyledger::datadir::KeySource;
use keyledger::event::{ClearableField, KeyPatch, VerifyCode};
use keyledger::keys::*;
use keyledger::ledger::{replay_log, Ledger};
use keyledger::projection::KeyStatus;
use keyledger::secret::Secret;
use proptest::prelude::*;

const SCOPE_SETS: [&[&str]; 4] = [
    &["read"],
    &["payments:*"],
    &["*"],
    &["read", "payments:read"],
];
const REQUIRED: [Option<&str>; 5] = [
    None,
    Some("read"),
    Some("payments:read"),
    Some("payments:refunds:write"),
    Some("write"),
];
const ALLOW: [&[&str]; 4] = [
    &[],
    &["10.0.0.0/8"],
    &["10.1.0.0/16"],
    &["192.0.2.0/24", "10.1.2.3/32"],
];
const IPS: [&str; 4] = ["10.1.2.3", "10.2.0.1", "192.0.2.9", "203.0.113.5"];
const PROJECT_SETS: [&[&str]; 3] = [&[], &["shop"], &["shop", "blog"]];
const PROJECTS: [Option<&str>; 4] = [None, Some("shop"), Some("blog"), Some("wiki")];
const RATES: [Option<u32>; 4] = [None, Some(1), Some(2), Some(60)];

#[derive(Clone, Debug)]
enum Change {
    Scopes(usize),
    Allow(usize),
    Projects(usize),
    Rate(usize),
    ExpiresIn(i64),
    Clear(ClearableField),
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        scopes: usize,
        allow: usize,
        projects: usize,
        rate: usize,
    },
    Update(usize, Change),
    Rotate(usize, u32),
    Revoke(usize),
    Suspend(usize, Option<i64>),
    Reactivate(usize),
    Advance(i64),
    Verify {
        key: usize,
        ip: usize,
        scope: usize,
        project: usize,
        known: bool,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0..4usize).prop_map(Change::Scopes),
        (0..4usize).prop_map(Change::Allow),
        (0..3usize).prop_map(Change::Projects),
        (1..4usize).prop_map(Change::Rate),
        (-5..120i64).prop_map(Change::ExpiresIn),
        prop::sample::select(vec![
            ClearableField::IpAllowlist,
            ClearableField::ProjectIds,
            ClearableField::RateLimitPerMinute,
            ClearableField::ExpiresAt,
        ])
        .prop_map(Change::Clear),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..4usize, 0..4usize, 0..3usize, 0..4usize)
            .prop_map(|(scopes, allow, projects, rate)| Op::Create { scopes, allow, projects, rate }),
        3 => (0..8usize, change()).prop_map(|(k, c)| Op::Update(k, c)),
        1 => (0..8usize, prop::sample::select(vec![0u32, 30, 600])).prop_map(|(k, o)| Op::Rotate(k, o)),
        1 => (0..8usize).prop_map(Op::Revoke),
        1 => (0..8usize, prop::option::of(1..90i64)).prop_map(|(k, u)| Op::Suspend(k, u)),
        1 => (0..8usize).prop_map(Op::Reactivate),
        2 => prop::sample::select(vec![1i64, 20, 61, 400]).prop_map(Op::Advance),
        6 => (0..8usize, 0..4usize, 0..5usize, 0..4usize, prop::bool::weighted(0.9))
            .prop_map(|(key, ip, scope, project, known)| Op::Verify { key, ip, scope, project, known }),
    ]
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

struct Run {
    ledger: Ledger,
    clock: std::sync::Arc<keyledger::clock::ManualClock>,
    model: Vec<ModelKey>,
    names: usize,
}

impl Run {
    fn now(&self) -> i64 {
        self.clock.now().as_micros()
    }

    /// The rule that some administrator always remains: `i` may stop being one only if another is left (or
    /// there was none to begin with).
    fn an_admin_remains_without(&self, i: usize, now: i64) -> bool {
        let admins: Vec<usize> = (0..self.model.len())
            .filter(|&k| self.model[k].usable_admin(now))
            .collect();
        admins.is_empty() || admins.iter().any(|&k| k != i)
    }

    fn check_verify(
        &mut self,
        i: usize,
        ip: &str,
        scope: Option<&str>,
        project: Option<&str>,
        known: bool,
    ) -> Result<(), TestCaseError> {
        let now = self.now();
        let presented = if known {
            self.model[i].secret.clone()
        } else {
            Secret::generate("production").expose().to_string()
        };
        let answer = common::verify_as(&self.ledger, &presented, ip, scope, project);
        let (code, overlap) = if known {
            self.model[i].verify(now, ip, scope, project)
        } else {
            (VerifyCode::NotFound, false)
        };
        prop_assert_eq!(
            (answer.code, answer.overlap),
            (code, overlap),
            "key {} ip {} scope {:?} project {:?}",
            i,
            ip,
            scope,
            project
        );
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = self.now();
        let pick = |i: usize, n: usize| (n > 0).then(|| i % n);
        match op.clone() {
            Op::Create {
                scopes,
                allow,
                projects,
                rate,
            } => {
                let mut config =
                    common::key_config(&format!("k{}", self.names), SCOPE_SETS[scopes]);
                self.names += 1;
                config.ip_allowlist = strings(ALLOW[allow]);
                config.project_ids = strings(PROJECT_SETS[projects]);
                config.rate_limit_per_minute = RATES[rate];
                let issued = common::create_key(&self.ledger, &config);
                self.model.push(ModelKey {
                    id: issued.key.key_id,
                    secret: issued.secret.expose().to_string(),
                    scopes: config.scopes.clone(),
                    allow: config.ip_allowlist.clone(),
                    projects: config.project_ids.clone(),
                    rate: config.rate_limit_per_minute,
                    expires_at: None,
                    revoked: false,
                    suspended: None,
                    rotated: false,
                    retires_at: None,
                    tat: 0,
                });
            }
            Op::Update(i, change) => {
                let Some(i) = pick(i, self.model.len()) else {
                    return Ok(());
                };
                let mut patch = KeyPatch::default();
                let mut expected = self.model[i].clone();
                let mut valid_input = true;
                match change {
                    Change::Scopes(s) => {
                        patch.scopes = Some(strings(SCOPE_SETS[s]));
                        expected.scopes = strings(SCOPE_SETS[s]);
                    }
                    Change::Allow(a) => {
                        patch.ip_allowlist = Some(strings(ALLOW[a]));
                        expected.allow = strings(ALLOW[a]);
                    }
                    Change::Projects(p) => {
                        patch.project_ids = Some(strings(PROJECT_SETS[p]));
                        expected.projects = strings(PROJECT_SETS[p]);
                    }
                    Change::Rate(r) => {
                        patch.rate_limit_per_minute = RATES[r];
                        expected.rate = RATES[r];
                    }
                    Change::ExpiresIn(secs) => {
                        let at = now + secs * 1_000_000;
                        patch.expires_at = Some(keyledger::time::LedgerTime::from_micros(at));
                        expected.expires_at = Some(at);
                        valid_input = at > now;
                    }
                    Change::Clear(field) => {
                        patch.clear = vec![field];
                        match field {
                            ClearableField::IpAllowlist => expected.allow.clear(),
                            ClearableField::ProjectIds => expected.projects.clear(),
                            ClearableField::RateLimitPerMinute => expected.rate = None,
                            _ => expected.expires_at = None,
                        }
                    }
                }
                let accepted = UpdateKey::new(common::operator(), self.model[i].id, &patch)
                    .and_then(|command| self.ledger.submit_blocking(command))
                    .is_ok();
                let loses_admin = self.model[i].usable_admin(now) && !expected.usable_admin(now);
                let should = self.model[i].changeable(now)
                    && valid_input
                    && (!loses_admin || self.an_admin_remains_without(i, now));
                prop_assert_eq!(accepted, should, "update {:?} of key {}", patch, i);
                if accepted {
                    self.model[i] = expected;
                }
            }
            Op::Rotate(i, overlap) => {
                let Some(i) = pick(i, self.model.len()) else {
                    return Ok(());
                };
                let result = self.ledger.submit_blocking(RotateKey {
                    who: common::operator(),
                    key_id: self.model[i].id,
                    overlap_seconds: overlap,
                });
                let should = self.model[i].changeable(now) && !self.model[i].rotated;
                prop_assert_eq!(result.is_ok(), should, "rotate key {}", i);
                if let Ok(issued) = result {
                    let old = &mut self.model[i];
                    old.rotated = true;
                    old.retires_at = Some(now + i64::from(overlap) * 1_000_000);
                    // A successor starts active, whatever the state of the key it replaces.
                    let successor = ModelKey {
                        id: issued.key.key_id,
                        secret: issued.secret.expose().to_string(),
                        rotated: false,
                        retires_at: None,
                        suspended: None,
                        tat: 0,
                        ..old.clone()
                    };
                    self.model.push(successor);
                }
            }
            Op::Revoke(i) => {
                let Some(i) = pick(i, self.model.len()) else {
                    return Ok(());
                };
                let accepted = self
                    .ledger
                    .submit_blocking(RevokeKey {
                        who: common::operator(),
                        key_id: self.model[i].id,
                        reason: None,
                    })
                    .is_ok();
                let should = !self.model[i].revoked
                    && (!self.model[i].usable_admin(now) || self.an_admin_remains_without(i, now));
                prop_assert_eq!(accepted, should, "revoke key {}", i);
                if accepted {
                    self.model[i].revoked = true;
                }
            }
            Op::Suspend(i, until) => {
                let Some(i) = pick(i, self.model.len()) else {
                    return Ok(());
                };
                let until_at = until.map(|secs| now + secs * 1_000_000);
                let accepted = self
                    .ledger
                    .submit_blocking(SuspendKey {
                        who: common::operator(),
                        key_id: self.model[i].id,
                        until: until_at.map(keyledger::time::LedgerTime::from_micros),
                        reason: None,
                    })
                    .is_ok();
                let should = self.model[i].status(now) == KeyStatus::Active
                    && (!self.model[i].usable_admin(now) || self.an_admin_remains_without(i, now));
                prop_assert_eq!(accepted, should, "suspend key {}", i);
                if accepted {
                    self.model[i].suspended = Some(until_at);
                }
            }
            Op::Reactivate(i) => {
                let Some(i) = pick(i, self.model.len()) else {
                    return Ok(());
                };
                let accepted = self
                    .ledger
                    .submit_blocking(ReactivateKey {
                        who: common::operator(),
                        key_id: self.model[i].id,
                        reason: None,
                    })
                    .is_ok();
                prop_assert_eq!(
                    accepted,
                    self.model[i].status(now) == KeyStatus::Suspended,
                    "reactivate key {}",
                    i
                );
                if accepted {
                    self.model[i].suspended = None;
                }
            }
            Op::Advance(secs) => self.clock.advance_secs(secs),
            Op::Verify {
                key,
                ip,
                scope,
                project,
                known,
            } => {
                let Some(i) = pick(key, self.model.len()) else {
                    return Ok(());
                };
                self.check_verify(i, IPS[ip], REQUIRED[scope], PROJECTS[project], known)?;
            }
        }
        Ok(())
    }

    /// Every key's status, and one verification of each, must match the model.
    fn check_all(&mut self) -> Result<(), TestCaseError> {
        let now = self.clock.now();
        for i in 0..self.model.len() {
            let status = self
                .ledger
                .projections()
                .keys
                .get(&self.model[i].id)
                .map(|k| k.status_at(now));
            prop_assert_eq!(
                status,
                Some(self.model[i].status(now.as_micros())),
                "status of key {}",
                i
            );
            self.check_verify(i, IPS[0], Some("read"), Some("shop"), true)?;
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn the_ledger_follows_the_reference_model_live_after_restart_and_on_replay(ops in prop::collection::vec(op(), 1..60)) {
        let (_tmp, dir, ledger, clock) = common::clocked_ledger();
        let mut run = Run { ledger, clock, model: Vec::new(), names: 0 };
        for op in &ops {
            run.apply(op)?;
        }
        run.check_all()?;
        let replayed = replay_log(run.ledger.store().as_ref(), None, None).unwrap();
        let now = run.clock.now();
        for key in &run.model {
            let live = run.ledger.projections().keys.get(&key.id).cloned();
            let again = replayed.projections.keys.get(&key.id).cloned();
            prop_assert_eq!(live.as_ref().map(|k| (&k.config, k.status_at(now), k.rate_tat)), again.as_ref().map(|k| (&k.config, k.status_at(now), k.rate_tat)));
        }
        let Run { ledger, clock, model, names } = run;
        drop(ledger);
        let reopened = dir.open(&KeySource::Default).unwrap();
        let mut run = Run { ledger: reopened, clock, model, names };
        run.check_all()?;
    }
}
