//! The rules that protect the ledger from its users: no self-lockout, an administrator always left, scopes by
//! grammar and by holder, unique names, offboarding in one step, and anomaly actions that never suspend a
//! gateway or administrator unless its own policy says so.

mod common;

use common::{as_key, clocked_ledger, create_key, key_config, operator, refusal_code, verify_as};
use keyledger::event::{AnomalyPolicy, KeyPatch, VerifyCode};
use keyledger::keys::*;
use keyledger::ledger::{replay_log, Ledger};
use keyledger::projection::KeyStatus;
use uuid::Uuid;

fn admin(ledger: &Ledger, name: &str) -> Uuid {
    create_key(ledger, &key_config(name, &["ledger:admin", "ledger:read"]))
        .key
        .key_id
}

fn suspend(ledger: &Ledger, who: Requester, key_id: Uuid) -> keyledger::LedgerResult<()> {
    ledger
        .submit_blocking(SuspendKey {
            who,
            key_id,
            until: None,
            reason: None,
        })
        .map(|_| ())
}

fn revoke(ledger: &Ledger, who: Requester, key_id: Uuid) -> keyledger::LedgerResult<()> {
    ledger
        .submit_blocking(RevokeKey {
            who,
            key_id,
            reason: None,
        })
        .map(|_| ())
}

fn set_scopes(
    ledger: &Ledger,
    who: Requester,
    key_id: Uuid,
    scopes: &[&str],
) -> keyledger::LedgerResult<()> {
    let patch = KeyPatch {
        scopes: Some(scopes.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    ledger
        .submit_blocking(UpdateKey::new(who, key_id, &patch)?)
        .map(|_| ())
}

#[test]
fn a_key_cannot_suspend_itself_or_remove_its_own_admin_scope() {
    let (_tmp, _dir, ledger, _clock) = clocked_ledger();
    let a = admin(&ledger, "alice");
    let _b = admin(&ledger, "bob");
    let err = suspend(&ledger, as_key(a), a).unwrap_err();
    assert_eq!(refusal_code(err), "cannot_suspend_own_key");
    let err = set_scopes(&ledger, as_key(a), a, &["ledger:read"]).unwrap_err();
    assert_eq!(refusal_code(err), "cannot_remove_own_admin");
    let err = revoke(&ledger, as_key(a), a).unwrap_err();
    assert_eq!(refusal_code(err), "cannot_revoke_own_key");
    // Changing its own key in ways that keep it an administrator is fine; widening it is not.
    set_scopes(&ledger, as_key(a), a, &["ledger:admin", "payments:read"]).unwrap();
    let err = set_scopes(&ledger, as_key(a), a, &["ledger:*"]).unwrap_err();
    assert_eq!(refusal_code(err), "scope_not_held");
    let key = ledger.projections().keys.get(&a).cloned().unwrap();
    assert_eq!(key.status_at(ledger.now()), KeyStatus::Active);
}

#[test]
fn the_last_admin_key_cannot_be_revoked_suspended_demoted_or_bound() {
    let (_tmp, _dir, ledger, _clock) = clocked_ledger();
    let a = admin(&ledger, "alice");
    let b = admin(&ledger, "bob");
    // With two administrators, one may go.
    revoke(&ledger, as_key(a), b).unwrap();
    for error in [
        revoke(&ledger, operator(), a).unwrap_err(),
        suspend(&ledger, operator(), a).unwrap_err(),
        set_scopes(&ledger, operator(), a, &["payments:read"]).unwrap_err(),
        ledger
            .submit_blocking(
                UpdateKey::new(
                    operator(),
                    a,
                    &KeyPatch {
                        project_ids: Some(vec!["proj-1".into()]),
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
            .map(|_| ())
            .unwrap_err(),
        ledger
            .submit_blocking(RevokeOwnerKeys {
                who: operator(),
                owner: "team-a".into(),
                reason: None,
            })
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert_eq!(refusal_code(error), "last_admin_key");
    }
    // A second administrator first, then the first may go.
    let c = admin(&ledger, "carol");
    suspend(&ledger, as_key(c), a).unwrap();
    let key = ledger.projections().keys.get(&a).cloned().unwrap();
    assert_eq!(key.status_at(ledger.now()), KeyStatus::Suspended);
}

#[test]
fn names_are_unique_among_the_live_keys_of_an_environment() {
    let (_tmp, _dir, ledger, _clock) = clocked_ledger();
    let first = create_key(&ledger, &key_config("billing", &["read"]));
    let again = CreateKey::new(operator(), &key_config("billing", &["read"])).unwrap();
    assert_eq!(
        refusal_code(ledger.submit_blocking(again).unwrap_err()),
        "name_taken"
    );
    let mut staging = key_config("billing", &["read"]);
    staging.environment = "staging".into();
    create_key(&ledger, &staging);
    // Rotation hands the name to the successor; a revoked key frees it.
    let successor = ledger
        .submit_blocking(RotateKey {
            who: operator(),
            key_id: first.key.key_id,
            overlap_seconds: 60,
        })
        .unwrap();
    revoke(&ledger, operator(), successor.key.key_id).unwrap();
    create_key(&ledger, &key_config("billing", &["read"]));
}

#[test]
fn scopes_follow_the_grammar_and_ledger_scopes_are_granted_only_by_holders() {
    let (_tmp, _dir, ledger, _clock) = clocked_ledger();
    let error = CreateKey::new(operator(), &key_config("x", &["experiments.*"])).err();
    assert_eq!(error.map(refusal_code), Some("invalid_request"));
    let svc = create_key(&ledger, &key_config("svc", &["payments:*"]));
    for (scope, code) in [
        ("payments:read", VerifyCode::Valid),
        ("payments:refunds:write", VerifyCode::Valid),
        ("payments", VerifyCode::InsufficientScope),
        ("paymentsx:read", VerifyCode::InsufficientScope),
    ] {
        let answer = verify_as(&ledger, svc.secret.expose(), "10.0.0.1", Some(scope), None);
        assert_eq!(answer.code, code, "{scope}");
    }
    let narrow = create_key(&ledger, &key_config("narrow-admin", &["ledger:admin"]))
        .key
        .key_id;
    let escalate = CreateKey::new(as_key(narrow), &key_config("y", &["ledger:audit"])).unwrap();
    assert_eq!(
        refusal_code(ledger.submit_blocking(escalate).unwrap_err()),
        "scope_not_held"
    );
    let everything = CreateKey::new(as_key(narrow), &key_config("z", &["*"])).unwrap();
    assert_eq!(
        refusal_code(ledger.submit_blocking(everything).unwrap_err()),
        "scope_not_held"
    );
    // Service scopes are the administrator's to grant, and so are ledger scopes it holds.
    let ok = CreateKey::new(
        as_key(narrow),
        &key_config("w", &["payments:write", "ledger:admin"]),
    )
    .unwrap();
    ledger.submit_blocking(ok).unwrap();
}

#[test]
fn revoking_by_owner_revokes_every_live_key_of_the_owner_once() {
    let (_tmp, _dir, ledger, _clock) = clocked_ledger();
    let operator_admin = admin(&ledger, "root");
    let mut leaver = key_config("a", &["read"]);
    leaver.owner = "mallory".into();
    let k1 = create_key(&ledger, &leaver).key.key_id;
    leaver.name = "b".into();
    let k2 = create_key(&ledger, &leaver).key.key_id;
    leaver.name = "c".into();
    let k3 = create_key(&ledger, &leaver).key.key_id;
    revoke(&ledger, operator(), k3).unwrap();
    suspend(&ledger, operator(), k2).unwrap();
    let head = ledger.durable_seq();
    let revoked = ledger
        .submit_blocking(RevokeOwnerKeys {
            who: as_key(operator_admin),
            owner: "mallory".into(),
            reason: Some("left the company".into()),
        })
        .unwrap();
    let ids: Vec<Uuid> = revoked.iter().map(|k| k.key_id).collect();
    assert_eq!(ids, vec![k1, k2], "active and suspended keys, oldest first");
    assert_eq!(ledger.durable_seq(), head + 2, "one event per key");
    assert!(revoked
        .iter()
        .all(|k| k.status_reason.as_deref() == Some("left the company")));
    let again = ledger
        .submit_blocking(RevokeOwnerKeys {
            who: operator(),
            owner: "mallory".into(),
            reason: None,
        })
        .unwrap();
    assert!(again.is_empty());
}

/// Uses `secret` from `hosts` distinct addresses, then waits (bounded) for follow-up actions to be recorded.
fn use_from_hosts(ledger: &Ledger, secret: &str, hosts: u8, scope: &str) {
    for host in 1..=hosts {
        verify_as(
            ledger,
            secret,
            &format!("192.0.2.{host}"),
            Some(scope),
            None,
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut seen = ledger.durable_seq();
    // Actions are recorded by the writer right after the batch that caused them; wait until nothing more comes.
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = ledger.durable_seq();
        if now == seen || std::time::Instant::now() > deadline {
            break;
        }
        seen = now;
    }
}

#[test]
fn gateway_keys_are_never_suspended_by_default_but_a_policy_decides() {
    let (_tmp, _dir, ledger, _clock) = clocked_ledger();
    let gateway = create_key(&ledger, &key_config("gateway", &["ledger:verify"]));
    let service = create_key(&ledger, &key_config("svc", &["read"]));
    let mut strict = key_config("strict-gw", &["ledger:verify"]);
    strict.anomaly_policy = Some(AnomalyPolicy {
        suspend_on: Some(vec!["distinct_ips".into()]),
        suspend_for_secs: Some(600),
        ..Default::default()
    });
    let strict = create_key(&ledger, &strict);
    let mut tolerant = key_config("tolerant", &["read"]);
    tolerant.anomaly_policy = Some(AnomalyPolicy {
        distinct_ips_max: Some(20),
        ..Default::default()
    });
    let tolerant = create_key(&ledger, &tolerant);
    let mut quiet = key_config("quiet", &["read"]);
    quiet.anomaly_policy = Some(AnomalyPolicy {
        disabled_rules: vec!["distinct_ips".into()],
        ..Default::default()
    });
    let quiet = create_key(&ledger, &quiet);
    use_from_hosts(&ledger, gateway.secret.expose(), 7, "ledger:verify");
    use_from_hosts(&ledger, service.secret.expose(), 7, "read");
    use_from_hosts(&ledger, strict.secret.expose(), 7, "ledger:verify");
    use_from_hosts(&ledger, tolerant.secret.expose(), 7, "read");
    use_from_hosts(&ledger, quiet.secret.expose(), 7, "read");
    common::wait_for_findings(&ledger);
    let recorded = ledger.anomalies(None, None, None).unwrap();
    let now = ledger.now();
    let projections = ledger.projections();
    let status = |id: Uuid| projections.keys.get(&id).unwrap().status_at(now);
    let fired = |id: Uuid| {
        recorded.iter().any(|a| {
            a.anomaly.finding.key_id == Some(id) && a.anomaly.finding.rule == "distinct_ips"
        })
    };
    assert!(
        fired(gateway.key.key_id),
        "the gateway's spread is still reported"
    );
    assert_eq!(
        status(gateway.key.key_id),
        KeyStatus::Active,
        "but not suspended"
    );
    assert_eq!(
        status(service.key.key_id),
        KeyStatus::Suspended,
        "the default action"
    );
    assert_eq!(
        status(strict.key.key_id),
        KeyStatus::Suspended,
        "its policy asked for it"
    );
    assert!(!fired(tolerant.key.key_id), "its own threshold is 20");
    assert!(!fired(quiet.key.key_id), "the rule is disabled for it");
    let live = projections.anomalies.clone();
    drop(projections);
    let mut replayed = replay_log(ledger.store().as_ref(), None, None).unwrap();
    assert_eq!(
        live, replayed.projections.anomalies,
        "a replay applies the same policies"
    );
    assert!(
        replayed.projections.take_actions().is_empty(),
        "and finds nothing that is not on the record"
    );
}

#[test]
fn among_100k_keys_the_admin_guard_looks_only_at_the_admin_candidates() {
    use keyledger::event::{Actor, Event, EventData, KeyCreated, KeyStatusChange, KeyUpdated};
    use keyledger::projection::KeyState;
    use keyledger::time::LedgerTime;
    let mut state = KeyState::default();
    let at = LedgerTime::parse("2026-12-01T00:00:00Z").unwrap();
    let mut seq = 0u64;
    let mut apply = |state: &mut KeyState, data: EventData| {
        seq += 1;
        state.apply(&Event {
            seq,
            time: at,
            id: Uuid::from_u128(u128::from(seq)),
            actor: Actor::System,
            request_id: None,
            data,
        });
    };
    let admins = [7u128, 50_000, 99_999];
    for i in 0..100_000u128 {
        let scopes: &[&str] = if admins.contains(&i) {
            &["ledger:admin"]
        } else {
            &["orders:read"]
        };
        apply(
            &mut state,
            EventData::KeyCreated(KeyCreated {
                key_id: Uuid::from_u128(i),
                prefix: format!("kl_{i}"),
                secret_sha256: format!("{i:064x}"),
                config: key_config(&format!("svc-{i}"), scopes),
                rotated_from: None,
            }),
        );
    }
    let candidates =
        |state: &KeyState| -> Vec<Uuid> { state.admin_candidates().map(|k| k.key_id).collect() };
    assert_eq!(candidates(&state), admins.map(Uuid::from_u128).to_vec());
    // Revoked, demoted or bound to a project: no longer a candidate; granted later: a candidate.
    apply(
        &mut state,
        EventData::KeyRevoked(KeyStatusChange {
            key_id: Uuid::from_u128(7),
            reason: None,
        }),
    );
    apply(
        &mut state,
        EventData::KeyUpdated(KeyUpdated {
            key_id: Uuid::from_u128(50_000),
            changes: KeyPatch {
                project_ids: Some(vec!["p".into()]),
                ..Default::default()
            },
        }),
    );
    apply(
        &mut state,
        EventData::KeyUpdated(KeyUpdated {
            key_id: Uuid::from_u128(12),
            changes: KeyPatch {
                scopes: Some(vec!["*".into()]),
                ..Default::default()
            },
        }),
    );
    assert_eq!(
        candidates(&state),
        vec![Uuid::from_u128(12), Uuid::from_u128(99_999)]
    );
    // The candidates survive the snapshot form.
    let restored: KeyState = serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
    assert_eq!(candidates(&restored), candidates(&state));
}
