//! Hourly usage rollups (issue 13): usage over any window, answered from the rollups written with the events,
//! equals a count of the events themselves, for every grouping, across restarts mid-hour and after the rollups of
//! an older log are rebuilt at open; a reader without the writer (the open hour counted from its events) answers
//! the same as the writer (the open hour from its cells in memory). More on the open hour in `usage_open_hour`.

mod common;
#[path = "common/usage.rs"]
mod usage;

use keyledger::ledger::Ledger;
use keyledger::projection::rollup::{PACKED_PREFIX, ROLLUP_MARKER, ROLLUP_PREFIX};
use keyledger::projection::usage::{usage_report, GroupBy};
use keyledger::query::EventFilter;
use keyledger::time::LedgerTime;
use proptest::prelude::*;
use usage::*;

/// A step of history: move the clock, maybe reopen the ledger, then append a batch of uses.
#[derive(Clone, Debug)]
struct Step {
    advance_secs: i64,
    reopen: bool,
    uses: Vec<Use>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        (0..8i64).prop_map(|n| n * 300),
        prop::bool::weighted(0.1),
        prop::collection::vec(
            (0..4usize, 0..6usize, 0..3usize, 0..2usize, any::<bool>()),
            1..6,
        ),
    )
        .prop_map(|(advance_secs, reopen, uses)| Step {
            advance_secs,
            reopen,
            uses,
        })
}

fn at(start: LedgerTime, offset_secs: Option<i64>) -> Option<LedgerTime> {
    offset_secs.map(|secs| start.plus_secs(secs))
}

/// Every grouping over every window equals a count of the events.
fn assert_windows_match(
    ledger: &Ledger,
    start: LedgerTime,
    windows: &[(Option<i64>, Option<i64>)],
) {
    for (from, to) in windows {
        let (from, to) = (at(start, *from), at(start, *to));
        let filter = EventFilter {
            from,
            to,
            ..Default::default()
        };
        for group_by in GROUPINGS {
            let (rows, hours) = report(ledger, &filter, group_by);
            let expected = count_events(ledger, from, to, group_by);
            assert_eq!(rows, expected, "{group_by:?} over {from:?}..{to:?}");
            if from.is_none() && to.is_none() && !expected.is_empty() {
                assert!(hours > 0, "a whole-log report reads rollups");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Rollups written batch by batch (across reopens mid-hour) answer exactly what the events say, for windows
    /// cut anywhere and windows on hour boundaries.
    #[test]
    fn rollup_answers_equal_a_count_of_the_events(
        steps in prop::collection::vec(step(), 1..30),
        windows in prop::collection::vec(
            (prop::option::of(-2..100i64), prop::option::of(0..130i64), any::<bool>()),
            1..5,
        ),
    ) {
        let (_tmp, dir, mut ledger, clock) = common::clocked_ledger();
        let keys = keys(&ledger);
        let start = ledger.store().head().unwrap().unwrap().time;
        for step in &steps {
            clock.advance_secs(step.advance_secs);
            if step.reopen {
                ledger = reopen(&dir, ledger);
            }
            append(&ledger, &keys, &step.uses);
        }
        // Half of the windows on hour boundaries (the ledger starts at 02:10).
        let windows: Vec<(Option<i64>, Option<i64>)> = windows
            .into_iter()
            .map(|(from, to, aligned)| {
                // Steps of five minutes, so that windows often end exactly at an event's time.
                let align = |n: i64| {
                    let secs = n * 300;
                    if aligned { (secs + 600).div_euclid(3600) * 3600 - 600 } else { secs }
                };
                (from.map(align), to.map(align))
            })
            .collect();
        let mut all = windows.clone();
        all.push((None, None));
        assert_windows_match(&ledger, start, &all);
        // One key's usage is read through its own index, by any grouping.
        let filter = EventFilter { key_id: Some(keys[1]), ..Default::default() };
        let (rows, hours) = report(&ledger, &filter, GroupBy::Ip);
        prop_assert_eq!(hours, 0);
        let total: u64 = rows.values().map(|r| r.total).sum();
        let expected: u64 = steps.iter().flat_map(|s| &s.uses).filter(|u| u.0 == 1).count() as u64;
        prop_assert_eq!(total, expected);
    }
}

/// A log written before rollups existed (no marker), or whose rebuild was interrupted (no marker, some cells wrong),
/// gets its rollups counted again from the events at the next open.
#[test]
fn rollups_are_rebuilt_at_open_when_the_marker_is_missing() {
    let (_tmp, dir, ledger, clock) = common::clocked_ledger();
    let keys = keys(&ledger);
    let start = ledger.store().head().unwrap().unwrap().time;
    for round in 0..40usize {
        clock.advance_secs(700);
        append(
            &ledger,
            &keys,
            &[(round % 4, round % 6, round % 3, round % 2, round % 5 == 0)],
        );
    }
    let windows = [
        (None, None),
        (Some(1_000), Some(20_000)),
        (Some(3_000), None),
    ];
    let before: Vec<_> = GROUPINGS
        .iter()
        .map(|g| report(&ledger, &EventFilter::default(), *g).0)
        .collect();
    let store = ledger.store().clone();
    let cells: Vec<Vec<u8>> = store
        .scan_side(PACKED_PREFIX)
        .map(|entry| entry.unwrap().0)
        .collect();
    assert!(
        cells.len() > 10,
        "packed rollups were written: {}",
        cells.len()
    );
    // An interrupted rebuild: the marker gone, half the cells gone, one cell wrong.
    let mut removed = vec![ROLLUP_MARKER.to_vec()];
    removed.extend(cells.iter().step_by(2).cloned());
    store.remove_side(&removed).unwrap();
    store
        .put_side(&[(
            cells[1].clone(),
            br#"{"n":999,"a":999,"f":0,"l":0}"#.to_vec(),
        )])
        .unwrap();
    drop(store);
    let ledger = reopen(&dir, ledger);
    assert!(ledger.store().get_side(ROLLUP_MARKER).unwrap().is_some());
    let after: Vec<_> = GROUPINGS
        .iter()
        .map(|g| report(&ledger, &EventFilter::default(), *g).0)
        .collect();
    assert_eq!(before, after);
    assert_windows_match(&ledger, start, &windows);
}

/// A window cut inside an hour reads only the uses of that hour's straddling groups; a window on hour boundaries
/// reads no event at all.
#[test]
fn whole_hours_are_answered_without_reading_events() {
    let (_tmp, _dir, ledger, clock) = common::clocked_ledger();
    let keys = keys(&ledger);
    let start = LedgerTime::parse("2026-11-24T03:00:00Z").unwrap();
    clock.set(start);
    for minute in 0..180 {
        append(&ledger, &keys, &[(minute % 3, minute % 5, 0, 0, false)]);
        clock.advance_secs(60);
    }
    let aligned = EventFilter {
        from: Some(start),
        to: Some(start.plus_secs(2 * 3600)),
        ..Default::default()
    };
    let keys_now = ledger.projections().keys.clone();
    let store = ledger.store().as_ref();
    let whole = usage_report(
        store,
        &keys_now,
        &aligned,
        ledger.durable_seq(),
        GroupBy::Ip,
        10,
    )
    .unwrap();
    assert_eq!((whole.events_scanned, whole.rollup_hours), (0, 2));
    assert_eq!(whole.rows.iter().map(|r| r.total).sum::<u64>(), 120);
    let cut = EventFilter {
        from: Some(start.plus_secs(30 * 60)),
        ..aligned
    };
    let report = usage_report(
        store,
        &keys_now,
        &cut,
        ledger.durable_seq(),
        GroupBy::Ip,
        10,
    )
    .unwrap();
    assert_eq!(report.rows.iter().map(|r| r.total).sum::<u64>(), 90);
    assert!(
        report.events_scanned <= 30,
        "only the cut half hour is read: {}",
        report.events_scanned
    );
}

/// `audit verify` counts every hour's rollups again from its events: an edited cell, and a cell for an hour in
/// which no key was used, are named as index mismatches.
#[test]
fn audit_verify_names_edited_and_stray_rollup_cells() {
    let (_tmp, dir, ledger, clock) = common::clocked_ledger();
    let keys = keys(&ledger);
    for round in 0..30usize {
        clock.advance_secs(500);
        append(&ledger, &keys, &[(round % 3, round % 5, 0, 0, false)]);
    }
    let store = ledger.store().clone();
    common::assert_verifies(store.as_ref(), &dir);
    let (key, value) = store
        .scan_side(PACKED_PREFIX)
        .nth(3)
        .expect("a closed hour's packed cells")
        .unwrap();
    let json = zstd::bulk::decompress(&value, 1 << 20).unwrap();
    let mut cells: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let cell = &mut cells[0][1];
    cell["n"] = serde_json::json!(cell["n"].as_u64().unwrap() + 1);
    let edited = zstd::bulk::compress(&serde_json::to_vec(&cells).unwrap(), 3).unwrap();
    store.put_side(&[(key.clone(), edited)]).unwrap();
    let anchor = dir.anchor_public_key().unwrap();
    let report =
        keyledger::audit::verify_log(store.as_ref(), anchor, Default::default(), None).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .detail
            .contains("usage rollup of the hour"),
        "{:?}",
        report.problems
    );
    // Restored, then a cell in an hour long before any use.
    store.put_side(&[(key, value)]).unwrap();
    let mut stray = ROLLUP_PREFIX.to_vec();
    stray.extend_from_slice(&((400_000u64) ^ (1 << 63)).to_be_bytes());
    stray.extend_from_slice(b"i203.0.113.99");
    store
        .put_side(&[(stray, br#"{"n":5,"a":5,"f":0,"l":0}"#.to_vec())])
        .unwrap();
    let report =
        keyledger::audit::verify_log(store.as_ref(), anchor, Default::default(), None).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].detail.contains("no key was used then"),
        "{:?}",
        report.problems
    );
}
