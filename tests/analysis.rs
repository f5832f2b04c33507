//! Anomaly rules fire on streams built to trip them and stay silent just under their thresholds; live anomalies
//! equal replayed ones byte for byte (also across a restart); an action suspends the key on the record, once;
//! reports and usage read what the log says.

mod common;

use keyledger::config::AnomalyConfig;
use keyledger::datadir::KeySource;
use keyledger::event::*;
use keyledger::keys::{CreateKey, Requester, RotateKey, VerifyKey};
use keyledger::ledger::replay_log;
use keyledger::projection::anomaly::AnomalyState;
use keyledger::projection::reports::{report, ReportKind};
use keyledger::projection::KeyStatus;
use keyledger::time::LedgerTime;
use uuid::Uuid;

const KEY: Uuid = Uuid::from_u128(0xabc);

fn t0() -> LedgerTime {
    LedgerTime::parse("2026-11-02T10:00:00Z").unwrap()
}

fn use_at(seq: u64, time: LedgerTime, key: Option<Uuid>, ip: &str, outcome: VerifyCode) -> Event {
    Event {
        seq,
        time,
        id: Uuid::from_u128(seq as u128),
        actor: Actor::System,
        request_id: None,
        data: EventData::KeyUsed(KeyUsed {
            key_id: key,
            prefix: None,
            outcome,
            ip: Some(ip.into()),
            user_agent: None,
            scope: None,
            project: None,
            gateway_ip: None,
            overlap: false,
            method: None,
            path: None,
            committed: None,
        }),
    }
}

/// Rules that fired over the stream.
fn fired(events: &[Event]) -> Vec<String> {
    let mut state = AnomalyState::new(AnomalyConfig::default());
    events
        .iter()
        .flat_map(|e| state.apply(e, None))
        .map(|a| a.rule)
        .collect()
}

fn count(rules: &[String], rule: &str) -> usize {
    rules.iter().filter(|r| *r == rule).count()
}

#[test]
fn distinct_ips_in_an_hour() {
    let stream = |n: u64| {
        (0..n)
            .map(|i| {
                use_at(
                    i + 1,
                    t0().plus_secs(i as i64 * 60),
                    Some(KEY),
                    &format!("10.0.{i}.1"),
                    VerifyCode::Valid,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(count(&fired(&stream(6)), "distinct_ips"), 1);
    assert_eq!(count(&fired(&stream(5)), "distinct_ips"), 0);
}

#[test]
fn rate_over_the_keys_own_baseline() {
    let stream = |spike: u64| {
        let mut events = Vec::new();
        let mut seq = 0;
        for bucket in 0..12i64 {
            for i in 0..20 {
                seq += 1;
                events.push(use_at(
                    seq,
                    t0().plus_secs(bucket * 300 + i),
                    Some(KEY),
                    "10.0.0.1",
                    VerifyCode::Valid,
                ));
            }
        }
        for i in 0..spike {
            seq += 1;
            events.push(use_at(
                seq,
                t0().plus_secs(12 * 300 + i as i64),
                Some(KEY),
                "10.0.0.1",
                VerifyCode::Valid,
            ));
        }
        events
    };
    assert_eq!(count(&fired(&stream(61)), "rate_spike"), 1);
    assert_eq!(count(&fired(&stream(60)), "rate_spike"), 0);
}

#[test]
fn denied_share_over_ten_percent() {
    let stream = |denied: u64| {
        (0..20)
            .map(|i| {
                use_at(
                    i + 1,
                    t0().plus_secs(i as i64),
                    Some(KEY),
                    "10.0.0.1",
                    if i < denied {
                        VerifyCode::InsufficientScope
                    } else {
                        VerifyCode::Valid
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(count(&fired(&stream(3)), "denied_rate"), 1);
    assert_eq!(count(&fired(&stream(2)), "denied_rate"), 0);
}

#[test]
fn first_use_from_a_new_network_after_warm_up() {
    let stream = |warm: u64, last_ip: &str| {
        let mut events: Vec<Event> = (0..warm)
            .map(|i| {
                use_at(
                    i + 1,
                    t0().plus_secs(i as i64),
                    Some(KEY),
                    &format!("10.1.1.{}", i % 4 + 1),
                    VerifyCode::Valid,
                )
            })
            .collect();
        events.push(use_at(
            warm + 1,
            t0().plus_secs(warm as i64 + 1),
            Some(KEY),
            last_ip,
            VerifyCode::Valid,
        ));
        events
    };
    assert_eq!(count(&fired(&stream(101, "192.0.2.7")), "new_network"), 1);
    assert_eq!(
        count(&fired(&stream(101, "10.1.1.200")), "new_network"),
        0,
        "same /24"
    );
    assert_eq!(
        count(&fired(&stream(50, "192.0.2.7")), "new_network"),
        0,
        "still warming up"
    );
}

#[test]
fn use_at_an_hour_never_used_before() {
    let stream = |hour: i64| {
        let mut events: Vec<Event> = (0..9)
            .map(|day| {
                use_at(
                    day as u64 + 1,
                    t0().plus_secs(day * 86_400),
                    Some(KEY),
                    "10.0.0.1",
                    VerifyCode::Valid,
                )
            })
            .collect();
        events.push(use_at(
            10,
            t0().plus_secs(9 * 86_400 + (hour - 10) * 3600),
            Some(KEY),
            "10.0.0.1",
            VerifyCode::Valid,
        ));
        events
    };
    assert_eq!(count(&fired(&stream(3)), "unusual_hour"), 1);
    assert_eq!(count(&fired(&stream(10)), "unusual_hour"), 0);
}

#[test]
fn any_attempt_with_a_dead_key_and_probing_bursts() {
    assert_eq!(
        count(
            &fired(&[use_at(1, t0(), Some(KEY), "10.0.0.1", VerifyCode::Revoked)]),
            "dead_key_use"
        ),
        1
    );
    assert_eq!(
        count(
            &fired(&[use_at(1, t0(), Some(KEY), "10.0.0.1", VerifyCode::Valid)]),
            "dead_key_use"
        ),
        0
    );
    let probe = |n: u64| {
        (0..n)
            .map(|i| {
                use_at(
                    i + 1,
                    t0().plus_secs(i as i64),
                    None,
                    "203.0.113.9",
                    VerifyCode::NotFound,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(count(&fired(&probe(21)), "probing"), 1);
    assert_eq!(count(&fired(&probe(20)), "probing"), 0);
}

#[test]
fn live_anomalies_equal_replayed_ones_and_the_action_is_recorded_once() {
    let (_tmp, dir, ledger) = common::fresh_ledger();
    let who = Requester::new(Actor::System, None);
    let config = KeyConfig {
        name: "ci".into(),
        owner: "platform".into(),
        scopes: vec!["deploy".into()],
        environment: "staging".into(),
        ..Default::default()
    };
    let issued = ledger
        .submit_blocking(CreateKey::new(who.clone(), &config).unwrap())
        .unwrap();
    for i in 0..8 {
        let ip = format!("203.0.113.{}", 10 + i).parse().ok();
        ledger
            .submit_blocking(VerifyKey::new(issued.secret.expose(), ip, None, None))
            .unwrap();
    }
    // The action runs after its batch is durable; wait until the suspension is on the record.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while ledger
        .projections()
        .keys
        .get(&issued.key.key_id)
        .unwrap()
        .status_at(LedgerTime::now())
        != KeyStatus::Suspended
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the key was not suspended"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let after = ledger
        .submit_blocking(VerifyKey::new(
            issued.secret.expose(),
            "203.0.113.10".parse().ok(),
            None,
            None,
        ))
        .unwrap();
    assert_eq!(after.code, VerifyCode::Suspended);
    common::wait_for_findings(&ledger);
    let listed = ledger.anomalies(None, None, None).unwrap();
    let live = serde_json::to_string(&listed).unwrap();
    assert!(live.contains("distinct_ips"));
    assert_eq!(
        listed.len() as u64,
        ledger.projections().anomalies.found(),
        "every finding is on the record"
    );
    let mut replayed = replay_log(ledger.store().as_ref(), None, None).unwrap();
    assert_eq!(
        replayed.projections.anomalies,
        ledger.projections().anomalies
    );
    assert!(
        replayed.projections.take_actions().is_empty(),
        "nothing left to record"
    );
    drop(ledger);
    let reopened = dir.open(&KeySource::Default).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(
        live,
        serde_json::to_string(&reopened.anomalies(None, None, None).unwrap()).unwrap(),
        "same after a restart"
    );
    let recorded = keyledger::keys::key_history(
        reopened.store().as_ref(),
        issued.key.key_id,
        reopened.durable_seq(),
    )
    .unwrap();
    assert_eq!(
        recorded
            .iter()
            .filter(|e| e.type_name() == "anomaly.detected")
            .count(),
        1,
        "the action is not repeated on restart"
    );
    assert_eq!(
        recorded
            .iter()
            .filter(|e| e.type_name() == "key.suspended" && e.actor == Actor::System)
            .count(),
        1
    );
}

#[test]
fn reports_find_overlap_stragglers_and_rotation_due() {
    let (_tmp, _dir, ledger) = common::fresh_ledger();
    let who = Requester::new(Actor::System, None);
    let config = KeyConfig {
        name: "billing".into(),
        owner: "team-billing".into(),
        scopes: vec!["pay".into()],
        environment: "production".into(),
        ..Default::default()
    };
    let old = ledger
        .submit_blocking(CreateKey::new(who.clone(), &config).unwrap())
        .unwrap();
    ledger
        .submit_blocking(RotateKey {
            who,
            key_id: old.key.key_id,
            overlap_seconds: 600,
        })
        .unwrap();
    ledger
        .submit_blocking(VerifyKey::new(
            old.secret.expose(),
            "10.9.9.9".parse().ok(),
            None,
            None,
        ))
        .unwrap();
    let p = ledger.projections();
    let now = LedgerTime::now();
    let stragglers = report(&p, &ReportKind::Overlap, now);
    assert_eq!(stragglers.len(), 1);
    assert_eq!(stragglers[0].overlap_ips.get("10.9.9.9"), Some(&1));
    let later = now.plus_secs(89 * 86_400);
    let due = report(&p, &ReportKind::Rotation, later);
    assert_eq!(
        due.len(),
        1,
        "the new production key is due within 14 days of its 90"
    );
    assert!(due[0].finding.contains("due"), "{}", due[0].finding);
    let overdue = report(&p, &ReportKind::Rotation, now.plus_secs(100 * 86_400));
    assert!(overdue[0].finding.contains("overdue"));
    let owner = report(&p, &ReportKind::Owner("team-billing".into()), now);
    assert_eq!(owner.len(), 2);
    assert_eq!(
        report(
            &p,
            &ReportKind::Stale { days: 30 },
            now.plus_secs(31 * 86_400)
        )
        .len(),
        1,
        "the new key was never used"
    );
}
