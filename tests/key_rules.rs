//! Every field a key's configuration can change is enforced on the very next verification, live and after a
//! restart; time-based rules follow the ledger's clock (moved by the test, never slept on).

mod common;

use common::{clocked_ledger, create_key, key_config, operator, verify_as};
use keyledger::clock::Clock;
use keyledger::datadir::KeySource;
use keyledger::event::{ClearableField, KeyPatch, VerifyCode};
use keyledger::keys::*;
use keyledger::projection::KeyStatus;

fn update(ledger: &keyledger::ledger::Ledger, key: uuid::Uuid, patch: KeyPatch) {
    ledger
        .submit_blocking(UpdateKey::new(operator(), key, &patch).expect("valid patch"))
        .expect("updated");
}

#[test]
fn ip_allowlist_narrowed_by_update_is_enforced_live_and_after_restart() {
    let (_tmp, dir, ledger, _clock) = clocked_ledger();
    let mut config = key_config("billing", &["payments:read"]);
    config.ip_allowlist = vec!["10.0.0.0/8".into()];
    let issued = create_key(&ledger, &config);
    let secret = issued.secret.expose().to_string();
    assert_eq!(
        verify_as(&ledger, &secret, "10.2.0.1", None, None).code,
        VerifyCode::Valid
    );
    update(
        &ledger,
        issued.key.key_id,
        KeyPatch {
            ip_allowlist: Some(vec!["10.1.0.0/16".into()]),
            ..Default::default()
        },
    );
    assert_eq!(
        verify_as(&ledger, &secret, "10.2.0.1", None, None).code,
        VerifyCode::IpNotAllowed,
        "the narrowed list is enforced at once"
    );
    assert_eq!(
        verify_as(&ledger, &secret, "10.1.2.3", None, None).code,
        VerifyCode::Valid
    );
    drop(ledger);
    let ledger = dir.open(&KeySource::Default).unwrap();
    assert_eq!(
        verify_as(&ledger, &secret, "10.2.0.1", None, None).code,
        VerifyCode::IpNotAllowed,
        "and after a restart"
    );
    update(
        &ledger,
        issued.key.key_id,
        KeyPatch {
            clear: vec![ClearableField::IpAllowlist],
            ..Default::default()
        },
    );
    assert_eq!(
        verify_as(&ledger, &secret, "192.0.2.1", None, None).code,
        VerifyCode::Valid,
        "a cleared list allows every address"
    );
}

#[test]
fn every_changeable_field_is_enforced_on_the_next_verification() {
    let (_tmp, _dir, ledger, clock) = clocked_ledger();
    let issued = create_key(&ledger, &key_config("svc", &["payments:*"]));
    let (id, secret) = (issued.key.key_id, issued.secret.expose().to_string());
    let check = |scope: &str, project: Option<&str>| {
        verify_as(&ledger, &secret, "10.0.0.1", Some(scope), project).code
    };
    assert_eq!(check("payments:refunds", None), VerifyCode::Valid);
    update(
        &ledger,
        id,
        KeyPatch {
            scopes: Some(vec!["payments:read".into()]),
            ..Default::default()
        },
    );
    assert_eq!(
        check("payments:refunds", None),
        VerifyCode::InsufficientScope
    );
    update(
        &ledger,
        id,
        KeyPatch {
            project_ids: Some(vec!["proj-7".into()]),
            ..Default::default()
        },
    );
    assert_eq!(
        check("payments:read", None),
        VerifyCode::ProjectNotAllowed,
        "a bound key needs a project"
    );
    assert_eq!(
        check("payments:read", Some("proj-8")),
        VerifyCode::ProjectNotAllowed
    );
    assert_eq!(check("payments:read", Some("proj-7")), VerifyCode::Valid);
    update(
        &ledger,
        id,
        KeyPatch {
            rate_limit_per_minute: Some(1),
            ..Default::default()
        },
    );
    assert_eq!(check("payments:read", Some("proj-7")), VerifyCode::Valid);
    let limited = verify_as(
        &ledger,
        &secret,
        "10.0.0.1",
        Some("payments:read"),
        Some("proj-7"),
    );
    assert_eq!(limited.code, VerifyCode::RateLimited);
    assert_eq!(
        limited.retry_after_secs,
        Some(60),
        "one use a minute: the next one in a minute"
    );
    update(
        &ledger,
        id,
        KeyPatch {
            clear: vec![ClearableField::RateLimitPerMinute],
            ..Default::default()
        },
    );
    assert_eq!(check("payments:read", Some("proj-7")), VerifyCode::Valid);
    let expiry = clock.now().plus_secs(3600);
    update(
        &ledger,
        id,
        KeyPatch {
            expires_at: Some(expiry),
            ..Default::default()
        },
    );
    clock.advance_secs(3600);
    assert_eq!(check("payments:read", Some("proj-7")), VerifyCode::Expired);
    clock.set(expiry.plus_secs(-10));
    // The ledger's time never runs backwards; a new key shows an expiry can also be cleared before it bites.
    let other = create_key(&ledger, &key_config("svc-2", &["read"]));
    update(
        &ledger,
        other.key.key_id,
        KeyPatch {
            expires_at: Some(clock.now().plus_secs(7200)),
            ..Default::default()
        },
    );
    update(
        &ledger,
        other.key.key_id,
        KeyPatch {
            clear: vec![ClearableField::ExpiresAt],
            ..Default::default()
        },
    );
    clock.advance_secs(10 * 86_400);
    assert_eq!(
        verify_as(&ledger, other.secret.expose(), "10.0.0.1", None, None).code,
        VerifyCode::Valid
    );
}

#[test]
fn suspension_overlap_and_expiry_follow_the_ledgers_clock() {
    let (_tmp, _dir, ledger, clock) = clocked_ledger();
    let issued = create_key(&ledger, &key_config("svc", &["read"]));
    let id = issued.key.key_id;
    let secret = issued.secret.expose().to_string();
    ledger
        .submit_blocking(SuspendKey {
            who: operator(),
            key_id: id,
            until: Some(clock.now().plus_secs(60)),
            reason: Some("investigating".into()),
        })
        .unwrap();
    clock.advance_secs(59);
    assert_eq!(
        verify_as(&ledger, &secret, "10.0.0.1", None, None).code,
        VerifyCode::Suspended
    );
    clock.advance_secs(2);
    assert_eq!(
        verify_as(&ledger, &secret, "10.0.0.1", None, None).code,
        VerifyCode::Valid,
        "the suspension ended by itself"
    );
    let successor = ledger
        .submit_blocking(RotateKey {
            who: operator(),
            key_id: id,
            overlap_seconds: 30,
        })
        .unwrap();
    let during = verify_as(&ledger, &secret, "10.0.0.1", None, None);
    assert_eq!((during.code, during.overlap), (VerifyCode::Valid, true));
    clock.advance_secs(31);
    assert_eq!(
        verify_as(&ledger, &secret, "10.0.0.1", None, None).code,
        VerifyCode::Retired
    );
    let mut expiring = key_config("short-lived", &["read"]);
    expiring.expires_at = Some(clock.now().plus_secs(120));
    let short = create_key(&ledger, &expiring);
    clock.advance_secs(121);
    assert_eq!(
        verify_as(&ledger, short.secret.expose(), "10.0.0.1", None, None).code,
        VerifyCode::Expired
    );
    let swept = ledger
        .submit_blocking(SweepExpired { who: operator() })
        .unwrap();
    assert_eq!(swept, vec![short.key.key_id]);
    assert!(ledger
        .submit_blocking(SweepExpired { who: operator() })
        .unwrap()
        .is_empty());
    let state = ledger.projections();
    assert_eq!(
        state
            .keys
            .get(&successor.key.key_id)
            .unwrap()
            .status_at(clock.now()),
        KeyStatus::Active
    );
}

#[test]
fn a_denied_use_of_a_rotated_key_is_not_an_overlap_use() {
    let (_tmp, _dir, ledger, _clock) = clocked_ledger();
    let old = create_key(&ledger, &key_config("svc", &["read"]));
    ledger
        .submit_blocking(RotateKey {
            who: operator(),
            key_id: old.key.key_id,
            overlap_seconds: 3600,
        })
        .unwrap();
    ledger
        .submit_blocking(RevokeKey {
            who: operator(),
            key_id: old.key.key_id,
            reason: Some("leaked".into()),
        })
        .unwrap();
    let answer = verify_as(&ledger, old.secret.expose(), "10.0.0.1", None, None);
    assert_eq!(answer.code, VerifyCode::Revoked);
    assert!(!answer.overlap, "a refused key is not 'working until…'");
    assert_eq!(answer.retires_at, None);
}

#[test]
fn a_zero_divisor_or_out_of_range_value_in_keyledger_toml_is_refused_naming_the_field() {
    let (_tmp, dir, ledger, _clock) = clocked_ledger();
    drop(ledger);
    for (text, field) in [
        (
            "[anomaly]\nrate_bucket_secs = 0\n",
            "anomaly.rate_bucket_secs",
        ),
        (
            "[anomaly]\nrate_baseline_buckets = 0\n",
            "anomaly.rate_baseline_buckets",
        ),
        (
            "[anomaly]\ndenied_percent = 101\n",
            "anomaly.denied_percent",
        ),
        (
            "[anomaly]\nsuspend_on = [\"nonsense\"]\n",
            "anomaly.suspend_on",
        ),
        (
            "[rotation]\nproduction_days = 0\n",
            "rotation.production_days",
        ),
        (
            "[http]\ncors_origins = [\"console.example/\"]\n",
            "http.cors_origins",
        ),
        (
            "[storage]\nblock_cache_mib = 0\n",
            "storage.block_cache_mib",
        ),
    ] {
        std::fs::write(dir.config_path(), text).unwrap();
        let error = dir.open(&KeySource::Default).err().expect("refused");
        assert!(
            error.to_string().contains(field),
            "{text}: the error names {field}: {error}"
        );
    }
    std::fs::write(dir.config_path(), "[anomaly]\nrate_bucket_secs = 60\n").unwrap();
    assert!(dir.open(&KeySource::Default).is_ok());
}
