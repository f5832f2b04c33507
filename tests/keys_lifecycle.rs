//! The key lifecycle rules, each on its permitted path and its refused one, through a real ledger whose clock the
//! tests move (no sleeping against the real clock).

mod common;

use keyledger::clock::Clock;
use keyledger::event::{Actor, KeyConfig, KeyPatch, VerifyCode};
use keyledger::keys::*;
use keyledger::ledger::Ledger;
use keyledger::projection::KeyStatus;
use keyledger::secret::Secret;
use keyledger::LedgerError;
use std::net::IpAddr;
use uuid::Uuid;

fn who() -> Requester {
    Requester::new(
        Actor::Operator {
            name: "test".into(),
        },
        Some("req-1".into()),
    )
}

fn config() -> KeyConfig {
    KeyConfig {
        name: "billing".into(),
        owner: "team-billing".into(),
        scopes: vec!["payments:read".into(), "reports:*".into()],
        environment: "production".into(),
        ip_allowlist: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
        ..Default::default()
    }
}

fn create(ledger: &Ledger, config: &KeyConfig) -> IssuedKey {
    ledger
        .submit_blocking(CreateKey::new(who(), config).unwrap())
        .unwrap()
}

fn verify(ledger: &Ledger, secret: &Secret, ip: &str, scope: Option<&str>) -> VerifyAnswer {
    let ip: IpAddr = ip.parse().unwrap();
    ledger
        .submit_blocking(VerifyKey::new(
            secret.expose(),
            Some(ip),
            scope.map(str::to_string),
            None,
        ))
        .unwrap()
}

fn conflict_code(error: LedgerError) -> &'static str {
    match error {
        LedgerError::Conflict { code, .. } => code,
        other => panic!("expected a conflict, got {other}"),
    }
}

#[test]
fn verification_codes_cover_scope_ip_format_and_unknown_keys() {
    let (_tmp, _dir, ledger, _clock) = common::clocked_ledger();
    let issued = create(&ledger, &config());
    assert!(issued.secret.expose().starts_with("kl_production_"));
    let ok = verify(&ledger, &issued.secret, "10.9.8.7", Some("payments:read"));
    assert_eq!(
        (ok.code, ok.key_id, ok.valid),
        (VerifyCode::Valid, Some(issued.key.key_id), true)
    );
    assert_eq!(
        verify(
            &ledger,
            &issued.secret,
            "2001:db8::5",
            Some("reports:monthly")
        )
        .code,
        VerifyCode::Valid
    );
    assert_eq!(
        verify(&ledger, &issued.secret, "10.9.8.7", Some("payments:write")).code,
        VerifyCode::InsufficientScope
    );
    assert_eq!(
        verify(&ledger, &issued.secret, "192.168.1.1", None).code,
        VerifyCode::IpNotAllowed
    );
    let unknown = Secret::generate("production");
    assert_eq!(
        verify(&ledger, &unknown, "10.0.0.1", None).code,
        VerifyCode::NotFound
    );
    let mut typo = issued.secret.expose().to_string();
    typo.replace_range(20..21, if &typo[20..21] == "x" { "y" } else { "x" });
    let answer = ledger
        .submit_blocking(VerifyKey::new(&typo, None, None, None))
        .unwrap();
    assert_eq!((answer.code, answer.key_id), (VerifyCode::BadFormat, None));
    // Every answer was recorded as a key.used event before it was given.
    assert_eq!(ledger.durable_seq(), answer.seq);
}

#[test]
fn update_changes_what_may_change_and_refuses_the_rest() {
    let (_tmp, _dir, ledger, _clock) = common::clocked_ledger();
    let issued = create(&ledger, &config());
    let id = issued.key.key_id;
    let patch = KeyPatch {
        owner: Some("team-payments".into()),
        rate_limit_per_minute: Some(2),
        ..Default::default()
    };
    let updated = ledger
        .submit_blocking(UpdateKey::new(who(), id, &patch).unwrap())
        .unwrap();
    assert_eq!(updated.config.owner, "team-payments");
    assert_eq!(updated.config.rate_limit_per_minute, Some(2));
    assert_eq!(
        updated.config.environment, "production",
        "environment is not in a patch at all"
    );
    let err = UpdateKey::new(who(), id, &KeyPatch::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("nothing to update"));
    let bad = KeyPatch {
        ip_allowlist: Some(vec!["10.0.0.0/99".into()]),
        ..Default::default()
    };
    assert!(UpdateKey::new(who(), id, &bad)
        .err()
        .unwrap()
        .to_string()
        .contains("ip_allowlist"));
    let missing = UpdateKey::new(who(), Uuid::now_v7(), &patch).unwrap();
    assert!(matches!(
        ledger.submit_blocking(missing),
        Err(LedgerError::NotFound { .. })
    ));
    // Rate limit: two uses a minute, the third is refused.
    assert_eq!(
        verify(&ledger, &issued.secret, "10.0.0.1", None).code,
        VerifyCode::Valid
    );
    assert_eq!(
        verify(&ledger, &issued.secret, "10.0.0.1", None).code,
        VerifyCode::Valid
    );
    assert_eq!(
        verify(&ledger, &issued.secret, "10.0.0.1", None).code,
        VerifyCode::RateLimited
    );
}

#[test]
fn revocation_is_final_and_takes_effect_on_the_next_verification() {
    let (_tmp, _dir, ledger, clock) = common::clocked_ledger();
    let issued = create(&ledger, &config());
    let id = issued.key.key_id;
    assert!(verify(&ledger, &issued.secret, "10.0.0.1", None).valid);
    let self_revoke = RevokeKey {
        who: Requester::new(Actor::Key { key_id: id }, None),
        key_id: id,
        reason: None,
    };
    assert_eq!(
        conflict_code(ledger.submit_blocking(self_revoke).unwrap_err()),
        "cannot_revoke_own_key"
    );
    let revoked = ledger
        .submit_blocking(RevokeKey {
            who: who(),
            key_id: id,
            reason: Some("leaked".into()),
        })
        .unwrap();
    assert_eq!(revoked.status_at(clock.now()), KeyStatus::Revoked);
    assert_eq!(
        verify(&ledger, &issued.secret, "10.0.0.1", None).code,
        VerifyCode::Revoked
    );
    let again = RevokeKey {
        who: who(),
        key_id: id,
        reason: None,
    };
    assert_eq!(
        conflict_code(ledger.submit_blocking(again).unwrap_err()),
        "key_revoked"
    );
    let rotate = RotateKey {
        who: who(),
        key_id: id,
        overlap_seconds: 0,
    };
    assert_eq!(
        conflict_code(ledger.submit_blocking(rotate).unwrap_err()),
        "key_revoked"
    );
    let reactivate = ReactivateKey {
        who: who(),
        key_id: id,
        reason: None,
    };
    assert_eq!(
        conflict_code(ledger.submit_blocking(reactivate).unwrap_err()),
        "key_revoked"
    );
    let update = UpdateKey::new(
        who(),
        id,
        &KeyPatch {
            owner: Some("x".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        conflict_code(ledger.submit_blocking(update).unwrap_err()),
        "key_revoked"
    );
}

#[test]
fn suspension_blocks_until_reactivated_or_until_its_end() {
    let (_tmp, _dir, ledger, clock) = common::clocked_ledger();
    let issued = create(&ledger, &config());
    let id = issued.key.key_id;
    let reactivate = || ReactivateKey {
        who: who(),
        key_id: id,
        reason: None,
    };
    assert_eq!(
        conflict_code(ledger.submit_blocking(reactivate()).unwrap_err()),
        "key_not_suspended"
    );
    ledger
        .submit_blocking(SuspendKey {
            who: who(),
            key_id: id,
            until: None,
            reason: Some("investigating".into()),
        })
        .unwrap();
    assert_eq!(
        verify(&ledger, &issued.secret, "10.0.0.1", None).code,
        VerifyCode::Suspended
    );
    let twice = SuspendKey {
        who: who(),
        key_id: id,
        until: None,
        reason: None,
    };
    assert_eq!(
        conflict_code(ledger.submit_blocking(twice).unwrap_err()),
        "key_suspended"
    );
    ledger.submit_blocking(reactivate()).unwrap();
    assert_eq!(
        verify(&ledger, &issued.secret, "10.0.0.1", None).code,
        VerifyCode::Valid
    );
    let until = clock.now().plus_micros(400_000);
    ledger
        .submit_blocking(SuspendKey {
            who: who(),
            key_id: id,
            until: Some(until),
            reason: None,
        })
        .unwrap();
    assert_eq!(
        verify(&ledger, &issued.secret, "10.0.0.1", None).code,
        VerifyCode::Suspended
    );
    clock.advance_micros(500_000);
    assert_eq!(
        verify(&ledger, &issued.secret, "10.0.0.1", None).code,
        VerifyCode::Valid,
        "suspension ended by itself"
    );
}

#[test]
fn rotation_overlap_lets_the_old_key_work_until_the_window_ends_and_not_after() {
    let (_tmp, _dir, ledger, clock) = common::clocked_ledger();
    let old = create(&ledger, &config());
    let new = ledger
        .submit_blocking(RotateKey {
            who: who(),
            key_id: old.key.key_id,
            overlap_seconds: 1,
        })
        .unwrap();
    assert_eq!(
        new.key.config, old.key.config,
        "the new key copies the configuration"
    );
    assert_eq!(new.key.rotated_from, Some(old.key.key_id));
    let state = ledger.projections();
    assert_eq!(
        state.keys.get(&old.key.key_id).unwrap().rotated_to,
        Some(new.key.key_id)
    );
    drop(state);
    let during = verify(&ledger, &old.secret, "10.0.0.1", None);
    assert_eq!(
        (during.code, during.overlap),
        (VerifyCode::Valid, true),
        "old key works, marked as an overlap use"
    );
    let fresh = verify(&ledger, &new.secret, "10.0.0.1", None);
    assert_eq!((fresh.code, fresh.overlap), (VerifyCode::Valid, false));
    let twice = RotateKey {
        who: who(),
        key_id: old.key.key_id,
        overlap_seconds: 0,
    };
    assert_eq!(
        conflict_code(ledger.submit_blocking(twice).unwrap_err()),
        "already_rotated"
    );
    clock.advance_micros(1_100_000);
    assert_eq!(
        verify(&ledger, &old.secret, "10.0.0.1", None).code,
        VerifyCode::Retired
    );
    assert_eq!(
        verify(&ledger, &new.secret, "10.0.0.1", None).code,
        VerifyCode::Valid
    );
    // Zero overlap: the old key stops at once.
    let newest = ledger
        .submit_blocking(RotateKey {
            who: who(),
            key_id: new.key.key_id,
            overlap_seconds: 0,
        })
        .unwrap();
    assert_eq!(
        verify(&ledger, &new.secret, "10.0.0.1", None).code,
        VerifyCode::Retired
    );
    assert!(verify(&ledger, &newest.secret, "10.0.0.1", None).valid);
}

#[test]
fn expiry_refuses_at_once_and_the_sweep_records_it_once() {
    let (_tmp, _dir, ledger, clock) = common::clocked_ledger();
    let mut expiring = config();
    expiring.expires_at = Some(clock.now().plus_micros(300_000));
    let issued = create(&ledger, &expiring);
    let mut past = config();
    past.expires_at = Some(clock.now().plus_secs(-1));
    let err = ledger
        .submit_blocking(CreateKey::new(who(), &past).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("expires_at"));
    assert!(verify(&ledger, &issued.secret, "10.0.0.1", None).valid);
    clock.advance_micros(350_000);
    assert_eq!(
        verify(&ledger, &issued.secret, "10.0.0.1", None).code,
        VerifyCode::Expired
    );
    let swept = ledger
        .submit_blocking(SweepExpired {
            who: Requester::new(Actor::System, None),
        })
        .unwrap();
    assert_eq!(swept, vec![issued.key.key_id]);
    assert!(ledger
        .submit_blocking(SweepExpired {
            who: Requester::new(Actor::System, None)
        })
        .unwrap()
        .is_empty());
    let events = key_history(
        ledger.store().as_ref(),
        issued.key.key_id,
        ledger.durable_seq(),
    )
    .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.type_name() == "key.expired")
            .count(),
        1
    );
}

#[test]
fn a_leaked_secret_or_its_hash_finds_the_key() {
    let (_tmp, _dir, ledger, _clock) = common::clocked_ledger();
    let issued = create(&ledger, &config());
    let by_secret = hash_of_leak(issued.secret.expose()).unwrap();
    let by_hash = hash_of_leak(&issued.secret.hash_hex()).unwrap();
    assert_eq!(by_secret, by_hash);
    assert_eq!(
        ledger
            .projections()
            .keys
            .by_secret_hash(&by_hash)
            .unwrap()
            .key_id,
        issued.key.key_id
    );
    assert!(hash_of_leak("not-a-key").is_err());
}
