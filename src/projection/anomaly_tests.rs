//! Property test: the counter windows find exactly what the reference model (every use kept in its window)
//! finds, on random traffic, configurations and per-key policies: same ids, rules, windows, thresholds and
//! evidence; `observed` of the two capped rules equal up to their cap (docs/ANOMALIES.md).

use super::anomaly::AnomalyState;
use super::anomaly_model::ModelState;
use super::anomaly_windows::EVIDENCE;
use super::rules::AnomalyConfig;
use crate::event::{Actor, AnomalyPolicy, Event, EventData, KeyUsed, VerifyCode};
use crate::time::LedgerTime;
use proptest::prelude::*;
use uuid::Uuid;

const IPS: [&str; 8] = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.1.7",
    "192.0.2.44",
    "203.0.113.9",
    "2001:db8:85a3::8a2e:370:7334",
    "2001:db8:85a3:1::1",
    "not an address",
];
const OUTCOMES: [VerifyCode; 5] = [
    VerifyCode::Valid,
    VerifyCode::Valid,
    VerifyCode::InsufficientScope,
    VerifyCode::Revoked,
    VerifyCode::NotFound,
];

fn config() -> impl Strategy<Value = AnomalyConfig> {
    (
        (1u64..5, 30i64..900, 10i64..120, 1u64..6, 0u64..5),
        (0u64..60, 20i64..900, 1u64..6, 0u64..4, 0i64..900),
        (0i64..7200, 1u64..6, 5i64..60, 1u64..4),
    )
        .prop_map(|(a, b, c)| {
            let (
                distinct_ips_max,
                distinct_ips_window_secs,
                rate_bucket_secs,
                baseline,
                min_volume,
            ) = a;
            let (denied_percent, denied_window_secs, denied_min_volume, warmup_uses, warmup_secs) =
                b;
            let (unusual_hour_warmup_secs, probing_max, probing_window_secs, rate_factor) = c;
            AnomalyConfig {
                distinct_ips_max,
                distinct_ips_window_secs,
                rate_factor,
                rate_bucket_secs,
                rate_baseline_buckets: baseline,
                rate_min_baseline_buckets: baseline / 2,
                rate_min_volume: min_volume + 1,
                denied_percent,
                denied_window_secs,
                denied_min_volume,
                new_network_warmup_uses: warmup_uses,
                new_network_warmup_secs: warmup_secs,
                unusual_hour_warmup_secs,
                probing_max,
                probing_window_secs,
                ..AnomalyConfig::default()
            }
        })
}

fn policy() -> impl Strategy<Value = Option<AnomalyPolicy>> {
    proptest::option::of((1u64..4, 0u64..50, 1u64..4, any::<bool>()).prop_map(
        |(max, percent, factor, quiet)| AnomalyPolicy {
            distinct_ips_max: Some(max),
            denied_percent: Some(percent),
            rate_factor: Some(factor),
            disabled_rules: if quiet {
                vec!["unusual_hour".into()]
            } else {
                Vec::new()
            },
            ..AnomalyPolicy::default()
        },
    ))
}

/// A use: (key index 0..3, ip index or none, outcome index, seconds since the previous use).
fn traffic() -> impl Strategy<Value = Vec<(usize, Option<usize>, usize, i64)>> {
    proptest::collection::vec(
        (
            0usize..3,
            proptest::option::weighted(0.95, 0usize..IPS.len()),
            0usize..OUTCOMES.len(),
            prop_oneof![8 => 0i64..20, 2 => 0i64..400, 1 => 0i64..8000],
        ),
        1..400,
    )
}

fn use_event(
    seq: u64,
    time: LedgerTime,
    key: Option<Uuid>,
    ip: Option<&str>,
    outcome: VerifyCode,
) -> Event {
    Event {
        seq,
        time,
        id: Uuid::from_u128(u128::from(seq)),
        actor: Actor::System,
        request_id: None,
        data: EventData::KeyUsed(KeyUsed {
            key_id: key,
            prefix: None,
            outcome,
            ip: ip.map(str::to_string),
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn counter_windows_find_what_the_window_model_finds(
        config in config(),
        policies in proptest::collection::vec(policy(), 3),
        uses in traffic(),
        start_micros in 0i64..86_400_000_000,
    ) {
        let keys = [Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)];
        let mut counters = AnomalyState::new(config.clone());
        let mut model = ModelState::new(config.clone());
        let mut time = LedgerTime::parse("2026-11-02T00:00:00Z").unwrap().plus_micros(start_micros);
        let mut found = 0u64;
        for (n, (key, ip, outcome, gap)) in uses.into_iter().enumerate() {
            time = time.plus_secs(gap).plus_micros(n as i64 % 7);
            let outcome = OUTCOMES[outcome];
            let key = (outcome != VerifyCode::NotFound).then_some(key);
            let event = use_event(n as u64 + 1, time, key.map(|k| keys[k]), ip.map(|i| IPS[i]), outcome);
            let policy = key.and_then(|k| policies[k].as_ref());
            let expected = model.apply(&event, policy);
            let got = counters.apply(&event, policy);
            prop_assert_eq!(expected.len(), got.len(), "findings at seq {}", event.seq);
            for (mut want, have) in expected.into_iter().zip(got) {
                let cap = match want.rule.as_str() {
                    "distinct_ips" => want.threshold + 1,
                    "probing" => (want.threshold + 1).max(EVIDENCE as u64),
                    _ => u64::MAX,
                };
                want.observed = want.observed.min(cap);
                prop_assert_eq!(want, have);
                found += 1;
            }
        }
        prop_assert_eq!(counters.found(), found);
    }
}
