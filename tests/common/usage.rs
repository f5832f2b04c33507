//! Helpers of the usage rollup suites (`usage_rollups`, `usage_open_hour`): ledgers with three keys and uses
//! along a few dimensions, usage reports from the writer and from a reader without it, and the same rows counted
//! from the events themselves. Included with `#[path]` beside `mod common`.
#![allow(dead_code)]

use crate::common;
use keyledger::datadir::{DataDir, KeySource};
use keyledger::event::{Actor, EventData, KeyConfig, KeyUsed, VerifyCode};
use keyledger::ledger::{AppendEvents, Ledger};
use keyledger::projection::rollup::{hour_of, hour_start};
use keyledger::projection::usage::{usage_report, GroupBy, UsageReport};
use keyledger::query::EventFilter;
use keyledger::time::LedgerTime;
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

pub const IPS: [&str; 5] = [
    "198.51.100.1",
    "198.51.100.2",
    "203.0.113.7",
    "203.0.113.8",
    "2001:db8::1",
];
pub const AGENTS: [&str; 3] = ["curl/8.5.0", "python-requests/2.32", "billing/2.1"];
pub const SCOPES: [&str; 2] = ["orders:read", "orders:write"];
pub const GROUPINGS: [GroupBy; 5] = [
    GroupBy::Key,
    GroupBy::Ip,
    GroupBy::UserAgent,
    GroupBy::Scope,
    GroupBy::Owner,
];

/// One use: key (index 3 = none), IP (index 5 = none), agent, scope, denied.
pub type Use = (usize, usize, usize, usize, bool);

pub fn event(keys: &[Uuid], (key, ip, agent, scope, denied): Use) -> EventData {
    let key_id = keys.get(key).copied();
    EventData::KeyUsed(KeyUsed {
        key_id,
        prefix: None,
        outcome: match (key_id, denied) {
            (None, _) => VerifyCode::NotFound,
            (Some(_), true) => VerifyCode::InsufficientScope,
            (Some(_), false) => VerifyCode::Valid,
        },
        ip: IPS.get(ip).map(|ip| ip.to_string()),
        user_agent: Some(AGENTS[agent].into()),
        scope: Some(SCOPES[scope].into()),
        project: None,
        gateway_ip: None,
        overlap: false,
        method: None,
        path: None,
        committed: None,
    })
}

pub fn append(ledger: &Ledger, keys: &[Uuid], uses: &[Use]) {
    ledger
        .submit_blocking(AppendEvents {
            actor: Actor::System,
            request_id: None,
            events: uses.iter().map(|u| event(keys, *u)).collect(),
        })
        .expect("append");
}

/// Three keys with two owners.
pub fn keys(ledger: &Ledger) -> Vec<Uuid> {
    ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let config = KeyConfig {
                owner: if i == 0 { "team-a" } else { "team-b" }.into(),
                ..common::key_config(name, &["orders:read"])
            };
            common::create_key(ledger, &config).key.key_id
        })
        .collect()
}

/// What a row must say, counted from the events themselves.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expected {
    pub total: u64,
    pub allowed: u64,
    pub denied: BTreeMap<VerifyCode, u64>,
    pub first: Option<LedgerTime>,
    pub last: Option<LedgerTime>,
    pub distinct_ips: usize,
}

pub fn count_events(
    ledger: &Ledger,
    from: Option<LedgerTime>,
    to: Option<LedgerTime>,
    group_by: GroupBy,
) -> BTreeMap<String, Expected> {
    let projections = ledger.projections();
    let store = ledger.store();
    let head = store.head().unwrap().map_or(0, |h| h.seq);
    let mut rows: BTreeMap<String, (Expected, HashSet<String>)> = BTreeMap::new();
    for record in store.scan(1, head + 1) {
        let record = record.unwrap();
        let event = keyledger::event::Event::decode(&record.body).unwrap();
        let EventData::KeyUsed(used) = &event.data else {
            continue;
        };
        if from.is_some_and(|f| event.time < f) || to.is_some_and(|t| event.time >= t) {
            continue;
        }
        let none = |s: &Option<String>| s.clone().unwrap_or_else(|| "(none)".into());
        let group = match group_by {
            GroupBy::Key => used.key_id.map_or("(no key)".into(), |k| k.to_string()),
            GroupBy::Ip => none(&used.ip),
            GroupBy::UserAgent => none(&used.user_agent),
            GroupBy::Scope => none(&used.scope),
            GroupBy::Owner => used
                .key_id
                .and_then(|k| projections.keys.get(&k))
                .map_or("(no key)".into(), |k| k.config.owner.clone()),
        };
        let (row, ips) = rows.entry(group).or_default();
        row.total += 1;
        if used.outcome == VerifyCode::Valid {
            row.allowed += 1;
        } else {
            *row.denied.entry(used.outcome).or_default() += 1;
        }
        row.first.get_or_insert(event.time);
        row.last = Some(event.time);
        ips.extend(used.ip.clone());
    }
    rows.into_iter()
        .map(|(group, (mut row, ips))| {
            row.distinct_ips = ips.len();
            (group, row)
        })
        .collect()
}

/// The report of a reader without the writer (a follower, the CLI): the open hour counted from its events.
pub fn reader_report(ledger: &Ledger, filter: &EventFilter, group_by: GroupBy) -> UsageReport {
    let keys = ledger.projections().keys.clone();
    usage_report(
        ledger.store().as_ref(),
        &keys,
        filter,
        ledger.durable_seq(),
        group_by,
        1000,
    )
    .expect("usage report")
}

/// The rows of a report, every field compared.
pub fn rows_json(report: &UsageReport) -> serde_json::Value {
    serde_json::to_value(&report.rows).unwrap()
}

/// The writer's report (the open hour from its cells in memory) in the shape of [`Expected`], and how many hours
/// came from rollups. A reader without the writer must answer the same rows.
pub fn report(
    ledger: &Ledger,
    filter: &EventFilter,
    group_by: GroupBy,
) -> (BTreeMap<String, Expected>, u64) {
    let report = ledger
        .usage_report(filter, group_by, 1000)
        .expect("usage report");
    assert_eq!(
        rows_json(&report),
        rows_json(&reader_report(ledger, filter, group_by)),
        "a reader without the writer answers {group_by:?} over {filter:?} the same"
    );
    let rows = report
        .rows
        .into_iter()
        .map(|row| {
            assert!(!row.distinct_ips_capped);
            let expected = Expected {
                total: row.total,
                allowed: row.allowed,
                denied: row.denied,
                first: row.first,
                last: row.last,
                distinct_ips: row.distinct_ips,
            };
            (row.group, expected)
        })
        .collect();
    (rows, report.rollup_hours)
}

pub fn reopen(dir: &DataDir, ledger: Ledger) -> Ledger {
    drop(ledger);
    dir.open(&KeySource::Default).expect("reopen")
}

/// Rollup side entries of every kind (open-hour cells, packed hours, the marker).
pub fn rollup_entries(ledger: &Ledger) -> usize {
    ledger.store().scan_side(b"rollup/").count()
}

/// Every grouping's rows over `filter`, from the writer, as the rows of a count of the events.
pub fn all_groupings(ledger: &Ledger, filter: &EventFilter) -> Vec<BTreeMap<String, Expected>> {
    GROUPINGS
        .iter()
        .map(|group_by| {
            let (rows, _) = report(ledger, filter, *group_by);
            assert_eq!(
                rows,
                count_events(ledger, filter.from, filter.to, *group_by),
                "{group_by:?} over {filter:?} equals a count of the events"
            );
            rows
        })
        .collect()
}

pub fn window(from: Option<LedgerTime>, to: Option<LedgerTime>) -> EventFilter {
    EventFilter {
        from,
        to,
        ..Default::default()
    }
}

/// Uses in three closed hours, then in the open one up to its middle; returns the open hour's start.
pub fn uses_over_hours(
    ledger: &Ledger,
    keys: &[Uuid],
    clock: &keyledger::clock::ManualClock,
) -> LedgerTime {
    for round in 0..24usize {
        clock.advance_secs(600);
        append(
            ledger,
            keys,
            &[
                (round % 4, round % 6, round % 3, round % 2, round % 5 == 0),
                ((round + 1) % 4, (round + 2) % 6, 0, 1, false),
            ],
        );
    }
    hour_start(hour_of(ledger.store().head().unwrap().unwrap().time))
}

/// Every grouping's rows over `filter`, from the writer (the reader without it must agree).
pub fn writer_rows(ledger: &Ledger, filter: &EventFilter) -> Vec<BTreeMap<String, Expected>> {
    GROUPINGS
        .iter()
        .map(|group_by| report(ledger, filter, *group_by).0)
        .collect()
}
