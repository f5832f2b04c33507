//! The deadline index of time-based alerts (`alerts::deadlines`): over random keys, policies, changes and sweep
//! times it raises what the full walk (`alerts::time_alerts`) raises, at the same sweeps; at 100,000 keys a sweep
//! visits only the keys that are due.

use keyledger::alerts::deadlines::Deadlines;
use keyledger::alerts::{time_alerts, Alert};
use keyledger::event::{
    Actor, Event, EventData, KeyConfig, KeyCreated, KeyPatch, KeyRotated, KeyStatusChange,
    KeySuspended, RotationPolicy,
};
use keyledger::projection::Projections;
use keyledger::projection::{AnalysisRules, RotationDefaults};
use keyledger::time::LedgerTime;
use proptest::prelude::*;
use std::collections::BTreeMap;
use uuid::Uuid;

const LEDGER: &str = "keyledger.test/deadlines";
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// A projection fed with hand-made events, remembering which keys each event changed.
struct Model {
    projections: Projections,
    seq: u64,
    now: LedgerTime,
    keys: Vec<Uuid>,
    changed: Vec<Uuid>,
}

impl Model {
    fn new(rotation: RotationDefaults, now: LedgerTime) -> Model {
        let rules = AnalysisRules {
            rotation,
            ..AnalysisRules::default()
        };
        Model {
            projections: Projections::new(rules),
            seq: 0,
            now,
            keys: Vec::new(),
            changed: Vec::new(),
        }
    }

    fn apply(&mut self, at: LedgerTime, data: EventData) {
        self.seq += 1;
        let event = Event {
            seq: self.seq,
            time: at,
            id: Uuid::from_u128(u128::from(self.seq)),
            actor: Actor::System,
            request_id: None,
            data,
        };
        self.changed
            .extend(event.data.key_ids().into_iter().flatten());
        self.projections.apply(&event);
    }

    fn create(&mut self, at: LedgerTime, config: KeyConfig, rotated_from: Option<Uuid>) -> Uuid {
        let key_id = Uuid::from_u128(0x1000_0000 + self.keys.len() as u128);
        self.keys.push(key_id);
        let data = EventData::KeyCreated(KeyCreated {
            key_id,
            prefix: format!("kl_test_{}", self.keys.len()),
            secret_sha256: format!("{:064x}", self.keys.len()),
            config,
            rotated_from,
        });
        self.apply(at, data);
        key_id
    }

    fn key(&self, index: usize) -> Option<Uuid> {
        (!self.keys.is_empty()).then(|| self.keys[index % self.keys.len()])
    }
}

fn key_config(name: String, production: bool) -> KeyConfig {
    KeyConfig {
        name,
        description: String::new(),
        owner: "team".into(),
        scopes: vec!["read".into()],
        environment: if production { "production" } else { "live" }.into(),
        project_ids: Vec::new(),
        expires_at: None,
        metadata: BTreeMap::new(),
        ip_allowlist: Vec::new(),
        rate_limit_per_minute: None,
        rotation_policy: None,
        anomaly_policy: None,
    }
}

#[derive(Clone, Debug)]
struct KeySpec {
    age_hours: i64,
    production: bool,
    policy: Option<(u32, u32)>,
    expires_in_hours: Option<i64>,
}

#[derive(Clone, Debug)]
enum Op {
    Wait(i64),
    Sweep,
    /// A sweep whose alerts could not be queued: nothing fired.
    FailedSweep,
    Create(KeySpec),
    Rotate(usize, u32),
    Revoke(usize),
    Suspend(usize, Option<i64>),
    Reactivate(usize),
    Expire(usize),
    Policy(usize, Option<(u32, u32)>),
    Expiry(usize, Option<i64>),
    Rename(usize),
}

fn policy() -> impl Strategy<Value = Option<(u32, u32)>> {
    proptest::option::of((1u32..60, 0u32..20))
}

fn key_spec() -> impl Strategy<Value = KeySpec> {
    (
        0i64..(120 * 24),
        any::<bool>(),
        policy(),
        proptest::option::of(-(40i64 * 24)..(90 * 24)),
    )
        .prop_map(
            |(age_hours, production, policy, expires_in_hours)| KeySpec {
                age_hours,
                production,
                policy,
                expires_in_hours,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let index = 0usize..64;
    prop_oneof![
        6 => (0i64..(15 * 24)).prop_map(Op::Wait),
        6 => Just(Op::Sweep),
        1 => Just(Op::FailedSweep),
        2 => key_spec().prop_map(Op::Create),
        1 => (index.clone(), 0u32..(3 * 86_400)).prop_map(|(i, o)| Op::Rotate(i, o)),
        1 => index.clone().prop_map(Op::Revoke),
        1 => (index.clone(), proptest::option::of(1i64..(20 * 24))).prop_map(|(i, u)| Op::Suspend(i, u)),
        1 => index.clone().prop_map(Op::Reactivate),
        1 => index.clone().prop_map(Op::Expire),
        1 => (index.clone(), policy()).prop_map(|(i, p)| Op::Policy(i, p)),
        1 => (index.clone(), proptest::option::of(-(10i64 * 24)..(60 * 24))).prop_map(|(i, e)| Op::Expiry(i, e)),
        1 => index.prop_map(Op::Rename),
    ]
}

fn create_from(model: &mut Model, spec: &KeySpec, at: LedgerTime) {
    let mut config = key_config(format!("key-{}", model.keys.len()), spec.production);
    config.rotation_policy = spec
        .policy
        .map(|(every_days, notify_days_before)| RotationPolicy {
            every_days,
            notify_days_before,
        });
    config.expires_at = spec.expires_in_hours.map(|h| model.now.plus_secs(h * HOUR));
    model.create(at, config, None);
}

fn patch(model: &mut Model, key_id: Uuid, changes: KeyPatch) {
    let data = EventData::KeyUpdated(keyledger::event::KeyUpdated { key_id, changes });
    model.apply(model.now, data);
}

/// Applies one change of a key (not a wait or a sweep).
fn change(model: &mut Model, op: &Op) {
    let now = model.now;
    let status = |key_id| KeyStatusChange {
        key_id,
        reason: None,
    };
    match op {
        Op::Create(spec) => create_from(model, spec, now),
        Op::Rotate(i, overlap) => {
            let Some(old) = model.key(*i) else { return };
            let Some(config) = model
                .projections
                .keys
                .get(&old)
                .map(|k| KeyConfig::clone(&k.config))
            else {
                return;
            };
            if model
                .projections
                .keys
                .get(&old)
                .is_some_and(|k| k.rotated_to.is_some())
            {
                return;
            }
            let new = model.create(now, config, Some(old));
            let data = EventData::KeyRotated(KeyRotated {
                key_id: old,
                new_key_id: new,
                overlap_seconds: *overlap,
                old_key_retires_at: now.plus_secs(i64::from(*overlap)),
            });
            model.apply(now, data);
        }
        Op::Revoke(i) => {
            if let Some(k) = model.key(*i) {
                model.apply(now, EventData::KeyRevoked(status(k)));
            }
        }
        Op::Suspend(i, until) => {
            if let Some(key_id) = model.key(*i) {
                let data = EventData::KeySuspended(KeySuspended {
                    key_id,
                    reason: None,
                    until: until.map(|h| now.plus_secs(h * HOUR)),
                });
                model.apply(now, data);
            }
        }
        Op::Reactivate(i) => {
            if let Some(k) = model.key(*i) {
                model.apply(now, EventData::KeyReactivated(status(k)));
            }
        }
        Op::Expire(i) => {
            if let Some(k) = model.key(*i) {
                model.apply(now, EventData::KeyExpired(status(k)));
            }
        }
        Op::Policy(i, policy) => {
            if let Some(k) = model.key(*i) {
                let changes = KeyPatch {
                    // `every_days: 0` removes the policy (the defaults apply again).
                    rotation_policy: Some(policy.map_or(
                        RotationPolicy {
                            every_days: 0,
                            notify_days_before: 0,
                        },
                        |(every_days, notify_days_before)| RotationPolicy {
                            every_days,
                            notify_days_before,
                        },
                    )),
                    ..KeyPatch::default()
                };
                patch(model, k, changes);
            }
        }
        Op::Expiry(i, expiry) => {
            if let Some(k) = model.key(*i) {
                let changes = match expiry {
                    Some(h) => KeyPatch {
                        expires_at: Some(now.plus_secs(h * HOUR)),
                        ..KeyPatch::default()
                    },
                    None => KeyPatch {
                        clear: vec![keyledger::event::ClearableField::ExpiresAt],
                        ..KeyPatch::default()
                    },
                };
                patch(model, k, changes);
            }
        }
        Op::Rename(i) => {
            if let Some(k) = model.key(*i) {
                let changes = KeyPatch {
                    description: Some(format!("changed at {now}")),
                    owner: Some(format!("owner-{}", model.seq)),
                    ..KeyPatch::default()
                };
                patch(model, k, changes);
            }
        }
        Op::Wait(_) | Op::Sweep | Op::FailedSweep => {}
    }
}

/// Each alert by id with the sweep that first raised it (and queued it).
type Fired = BTreeMap<String, (usize, Alert)>;

fn record(fired: &mut Fired, sweep: usize, alerts: Vec<Alert>) {
    for alert in alerts {
        fired.entry(alert.id.clone()).or_insert((sweep, alert));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_index_raises_what_the_full_walk_raises_at_the_same_sweeps(
        initial in proptest::collection::vec(key_spec(), 0..8),
        ops in proptest::collection::vec(op(), 1..60),
        defaults in (1u32..40, 1u32..60, 0u32..15),
        expiry_notice_days in 0u32..20,
    ) {
        let start: LedgerTime = "2026-01-01T00:00:00Z".parse().unwrap();
        let (production_days, default_days, notify_days_before) = defaults;
        let rotation = RotationDefaults { production_days, default_days, notify_days_before };
        let mut model = Model::new(rotation, start);
        for spec in &initial {
            let at = start.plus_secs(-spec.age_hours * HOUR);
            create_from(&mut model, spec, at);
        }
        model.changed.clear();
        let mut index = Deadlines::build(&model.projections, start, expiry_notice_days, LEDGER);
        let (mut reference, mut indexed) = (Fired::new(), Fired::new());
        for (sweep, op) in ops.iter().chain([&Op::Sweep]).enumerate() {
            let now = model.now;
            match op {
                Op::Wait(hours) => model.now = now.plus_secs(hours * HOUR),
                Op::Sweep | Op::FailedSweep => {
                    let walked = time_alerts(&model.projections, now, expiry_notice_days, LEDGER);
                    index.changed(&model.projections, model.changed.drain(..), now);
                    let swept = index.sweep(&model.projections, now);
                    if matches!(op, Op::FailedSweep) {
                        index.revisit(swept.iter().filter_map(|a| a.key.as_ref().map(|k| k.key_id)), now);
                    } else {
                        record(&mut reference, sweep, walked);
                        record(&mut indexed, sweep, swept);
                    }
                }
                other => change(&mut model, other),
            }
        }
        prop_assert_eq!(indexed, reference);
    }
}

/// 100,000 keys (created an hour apart by the second, so that their deadlines are too): a sweep with nothing due
/// visits no key, a sweep with k keys due visits k keys, and every alert fires once, as the full walk has it.
#[test]
fn with_100_000_keys_a_sweep_visits_only_the_keys_that_are_due() {
    const KEYS: i64 = 100_000;
    const OLD: i64 = 50;
    let t0: LedgerTime = "2026-01-01T00:00:00Z".parse().unwrap();
    // Non-production keys: rotation every 180 days, notice 14 days before.
    let mut model = Model::new(RotationDefaults::default(), t0);
    for i in 0..OLD {
        // Created 200 days ago: already overdue when the index is built.
        model.create(
            t0.plus_secs(-200 * DAY + i),
            key_config(format!("old-{i}"), false),
            None,
        );
    }
    for i in 0..KEYS {
        model.create(t0.plus_secs(i), key_config(format!("key-{i}"), false), None);
    }
    let built_at = t0.plus_secs(2 * DAY);
    let mut index = Deadlines::build(&model.projections, built_at, 14, LEDGER);
    assert_eq!(index.len() as i64, KEYS + OLD);
    let notice_of_first = t0.plus_secs(166 * DAY);
    let mut raised: Vec<String> = Vec::new();
    let mut walked = std::collections::BTreeSet::new();
    let sweeps: [(LedgerTime, u64); 6] = [
        // The overdue keys, once.
        (built_at, OLD as u64),
        // Nothing due.
        (built_at.plus_secs(HOUR), 0),
        (notice_of_first.plus_secs(-1), 0),
        // The notices of the first 1,000 keys.
        (notice_of_first.plus_secs(999), 1_000),
        (notice_of_first.plus_secs(999), 0),
        // Every deadline has passed: each key once (the first 1,000 for their deadline, the others for the
        // notice they were filed under, which finds them overdue).
        (t0.plus_secs(180 * DAY + KEYS), KEYS as u64),
    ];
    for (now, due) in sweeps {
        let before = index.visited();
        let alerts = index.sweep(&model.projections, now);
        assert_eq!(index.visited() - before, due, "keys visited at {now}");
        raised.extend(alerts.into_iter().map(|a| a.id));
        walked.extend(
            time_alerts(&model.projections, now, 14, LEDGER)
                .into_iter()
                .map(|a| a.id),
        );
    }
    let unique: std::collections::BTreeSet<String> = raised.iter().cloned().collect();
    assert_eq!(unique.len(), raised.len(), "no alert raised twice");
    assert_eq!(unique, walked, "the alerts of the full walk");
    // 50 overdue at start, 1,000 notices, then 100,000 overdue: each key raised what was in force once.
    assert_eq!(raised.len() as i64, OLD + 1_000 + KEYS);
    assert!(index.is_empty(), "nothing more is to come for these keys");
}
