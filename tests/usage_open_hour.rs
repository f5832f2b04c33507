//! The open hour of usage rollups lives in the writer's memory: a batch within it writes no rollup entry, a
//! reopen mid-hour counts it again from its events, a restart between hours packs the closed hour exactly once, a
//! ledger left with the previous version's per-group cells opens without them, a reader without the writer
//! answers the same, and an archive cut inside the open hour keeps that hour's counts.

mod common;
#[path = "common/usage.rs"]
mod usage;

use keyledger::datadir::KeySource;
use keyledger::event::{Actor, EventData};
use keyledger::ledger::{AppendEvents, Ledger};
use keyledger::projection::rollup::{
    hour_dim_prefix, hour_of, hour_start, packed_key, Dim, ROLLUP_PREFIX,
};
use keyledger::projection::usage::{usage_report, GroupBy};
use keyledger::query::EventFilter;
use usage::*;

/// Uses within the open hour, of new groups and known ones, write no rollup side entry: the writer counts them in
/// memory, and answers from there.
#[test]
fn a_batch_of_uses_within_one_hour_writes_no_rollup_side_entry() {
    let (_tmp, _dir, ledger, clock) = common::clocked_ledger();
    let keys = keys(&ledger);
    append(&ledger, &keys, &[(0, 0, 0, 0, false)]);
    let before = rollup_entries(&ledger);
    clock.advance_secs(120);
    // New groups in every dimension, and more uses of known ones.
    append(
        &ledger,
        &keys,
        &[
            (0, 0, 0, 0, false),
            (1, 1, 1, 1, true),
            (2, 2, 2, 0, false),
            (3, 5, 0, 1, false),
        ],
    );
    assert_eq!(
        rollup_entries(&ledger),
        before,
        "no rollup side entry written"
    );
    let (rows, hours) = report(&ledger, &EventFilter::default(), GroupBy::Ip);
    assert_eq!(rows, count_events(&ledger, None, None, GroupBy::Ip));
    assert_eq!(hours, 1, "the open hour came from the writer's cells");
}

/// A ledger reopened in the middle of an hour answers every grouping over windows around that hour exactly as
/// before the reopen, and as its events say.
#[test]
fn a_ledger_reopened_mid_hour_answers_as_before_and_as_its_events() {
    let (_tmp, dir, ledger, clock) = common::clocked_ledger();
    let keys = keys(&ledger);
    let open = uses_over_hours(&ledger, &keys, &clock);
    let windows = [
        window(None, None),
        window(Some(open), None),
        window(Some(open.plus_secs(10 * 60)), None),
        window(
            Some(open.plus_secs(-90 * 60)),
            Some(open.plus_secs(15 * 60)),
        ),
    ];
    let before: Vec<_> = windows.iter().map(|w| all_groupings(&ledger, w)).collect();
    // No rollup entry holds the open hour (only the writer's checkpoint of its cells, FORMAT.md §4).
    let ledger = reopen(&dir, ledger);
    assert_eq!(ledger.store().scan_side(ROLLUP_PREFIX).count(), 0);
    for dim in Dim::ALL {
        assert!(ledger
            .store()
            .get_side(&packed_key(hour_of(open), dim))
            .unwrap()
            .is_none());
    }
    let after: Vec<_> = windows.iter().map(|w| all_groupings(&ledger, w)).collect();
    assert_eq!(before, after);
    // And it counts on from there.
    clock.advance_secs(60);
    append(&ledger, &keys, &[(2, 3, 1, 0, false)]);
    for window in &windows {
        all_groupings(&ledger, window);
    }
}

/// A ledger stopped after an hour's last event and reopened in the next hour packs that hour once, when the first
/// event of the later hour is written, with the counts its events give; reopening again packs nothing twice.
#[test]
fn a_crash_between_an_hours_last_event_and_the_next_hour_packs_that_hour_once() {
    let (_tmp, dir, ledger, clock) = common::clocked_ledger();
    let keys = keys(&ledger);
    let hour = hour_of(ledger.store().head().unwrap().unwrap().time);
    for minute in 0..5 {
        clock.advance_secs(60);
        append(
            &ledger,
            &keys,
            &[(minute % 4, minute % 6, minute % 3, 0, minute == 2)],
        );
    }
    // Down after the hour's last event, before any event of the next hour.
    drop(ledger);
    clock.set(hour_start(hour + 1).plus_secs(300));
    let ledger = dir.open(&KeySource::Default).expect("reopen");
    assert!(ledger
        .store()
        .get_side(&packed_key(hour, Dim::Key))
        .unwrap()
        .is_none());
    append(&ledger, &keys, &[(1, 1, 1, 1, false)]);
    let closed = window(Some(hour_start(hour)), Some(hour_start(hour + 1)));
    let packed_once = |ledger: &Ledger| {
        let mut prefix = packed_key(hour, Dim::Key);
        prefix.pop();
        assert_eq!(
            ledger.store().scan_side(&prefix).count(),
            4,
            "one entry per dimension"
        );
        assert_eq!(ledger.store().scan_side(ROLLUP_PREFIX).count(), 0);
        for group_by in GROUPINGS {
            let report = reader_report(ledger, &closed, group_by);
            assert_eq!(
                (report.rollup_hours, report.events_scanned),
                (1, 0),
                "read from the packed hour"
            );
        }
        all_groupings(ledger, &closed);
        all_groupings(ledger, &EventFilter::default());
    };
    packed_once(&ledger);
    // Reopened again in the later hour: nothing is packed twice.
    let ledger = reopen(&dir, ledger);
    packed_once(&ledger);
    // A closed hour left without its packed cells (as if the batch closing it had not packed it) is packed from
    // its events at the next open.
    let store = ledger.store().clone();
    store
        .remove_side(&Dim::ALL.map(|dim| packed_key(hour, dim)))
        .unwrap();
    drop(store);
    let ledger = reopen(&dir, ledger);
    packed_once(&ledger);
    common::assert_verifies(ledger.store().as_ref(), &dir);
}

/// A ledger the previous version left with per-group cells (of its open hour, and of a closed hour it had not packed
/// yet) opens without them: the closed hour is packed and the open hour counted from the events, whatever the cells
/// said.
#[test]
fn a_ledger_with_previous_version_open_hour_cells_opens_removes_them_and_answers_from_its_events() {
    let (_tmp, dir, ledger, clock) = common::clocked_ledger();
    let keys = keys(&ledger);
    let open = uses_over_hours(&ledger, &keys, &clock);
    let closed = hour_of(open) - 1;
    drop(ledger);
    // As the previous version left it: the open hour, and a closed hour it had not packed yet (it packed an hour
    // at the next use only), as one entry per group — here with counts the events do not support.
    let store = dir.open_store().unwrap();
    store
        .remove_side(&Dim::ALL.map(|dim| packed_key(closed, dim)))
        .unwrap();
    let mut cells = Vec::new();
    for hour in [closed, hour_of(open)] {
        for (dim, group) in [
            (Dim::Key, keys[0].to_string()),
            (Dim::Ip, IPS[0].to_string()),
            (Dim::UserAgent, AGENTS[1].to_string()),
            (Dim::Scope, SCOPES[0].to_string()),
        ] {
            let mut key = hour_dim_prefix(hour, dim);
            key.extend_from_slice(group.as_bytes());
            cells.push((key, br#"{"n":999,"a":999,"f":0,"l":0}"#.to_vec()));
        }
    }
    store.put_side(&cells).unwrap();
    drop(store);
    let ledger = dir.open(&KeySource::Default).expect("reopen");
    assert_eq!(
        ledger.store().scan_side(ROLLUP_PREFIX).count(),
        0,
        "removed at open"
    );
    assert!(ledger
        .store()
        .get_side(&packed_key(closed, Dim::Ip))
        .unwrap()
        .is_some());
    for filter in [
        window(None, None),
        window(Some(hour_start(closed)), Some(open)),
        window(Some(open), None),
    ] {
        all_groupings(&ledger, &filter);
    }
    common::assert_verifies(ledger.store().as_ref(), &dir);
}

/// A reader without the writer (a follower, the CLI) counts the open hour from its events and answers every
/// grouping, over windows that hold or cut that hour, exactly as the writer answers from its cells in memory.
#[test]
fn a_reader_without_the_writer_answers_the_open_hour_as_the_writer() {
    let (_tmp, dir, ledger, clock) = common::clocked_ledger();
    let keys = keys(&ledger);
    let open = uses_over_hours(&ledger, &keys, &clock);
    // One key used from more IPs within the hour than a cell remembers.
    let crowd: Vec<EventData> = (0..100)
        .map(|n| {
            let mut used = common::used(Some(keys[0]), "crowd/1");
            if let EventData::KeyUsed(u) = &mut used {
                u.ip = Some(format!("192.0.2.{n}"));
            }
            used
        })
        .collect();
    ledger
        .submit_blocking(AppendEvents {
            actor: Actor::System,
            request_id: None,
            events: crowd,
        })
        .unwrap();
    let windows = [
        window(None, None),
        window(Some(open), Some(open.plus_secs(3600))),
        window(Some(open.plus_secs(60)), None),
        window(Some(open.plus_secs(-3600)), Some(open.plus_secs(-1800))),
    ];
    for filter in &windows {
        for group_by in GROUPINGS {
            let writer = ledger.usage_report(filter, group_by, 1000).unwrap();
            let reader = reader_report(&ledger, filter, group_by);
            assert_eq!(
                rows_json(&writer),
                rows_json(&reader),
                "{group_by:?} over {filter:?}"
            );
        }
    }
    // On hour boundaries the writer reads no event; the reader counts the open hour's.
    let aligned = &windows[1];
    let writer = ledger.usage_report(aligned, GroupBy::Key, 10).unwrap();
    let reader = reader_report(&ledger, aligned, GroupBy::Key);
    assert_eq!((writer.events_scanned, writer.rollup_hours), (0, 1));
    assert_eq!(reader.rollup_hours, 0);
    assert!(reader.events_scanned > 100);
    assert!(writer.rows[0].distinct_ips_capped && reader.rows[0].distinct_ips_capped);
    // A read-only reader of the closed store (the CLI) answers the same as the writer did.
    let expected = rows_json(&writer);
    drop(ledger);
    let store = dir.open_store().unwrap();
    let durable = store.head().unwrap().unwrap().seq;
    let replayed = keyledger::ledger::replay_log(store.as_ref(), None, None).unwrap();
    let cli = usage_report(
        store.as_ref(),
        &replayed.projections.keys,
        aligned,
        durable,
        GroupBy::Key,
        10,
    )
    .unwrap();
    assert_eq!(rows_json(&cli), expected);
}

/// `audit archive` cutting inside the open hour keeps the counts of that hour's archived uses (its archived part),
/// across a reopen within the hour and into the packed cells once it closes.
#[test]
fn an_archive_cut_inside_the_open_hour_keeps_that_hours_counts() {
    let (tmp, dir, ledger, clock) = common::clocked_ledger();
    let keys = keys(&ledger);
    let open = hour_start(hour_of(ledger.now()) + 1);
    clock.set(open);
    // One use a second: archives are cut at multiples of 1,024 events, where time steps.
    for n in 0..1_200usize {
        append(&ledger, &keys, &[(n % 4, n % 6, n % 3, n % 2, n % 7 == 0)]);
        clock.advance_secs(1);
    }
    let windows = [
        window(None, None),
        window(Some(open), None),
        window(Some(open.plus_secs(1_150)), None),
    ];
    let before: Vec<_> = windows.iter().map(|w| all_groupings(&ledger, w)).collect();
    drop(ledger);
    let file = tmp.path().join("archive.jsonl").display().to_string();
    let cut = open.plus_secs(1_100).to_string();
    let (code, out) = common::run_cli(
        dir.root(),
        &["audit", "archive", "--before", &cut, "-o", &file],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("..=1024"), "{out}");
    // Reopened in the same hour: its archived uses still count (the writer's and a reader's answers agree).
    let ledger = dir.open(&KeySource::Default).expect("reopen");
    assert!(ledger.store().scan_side(b"rollup/a/").count() > 0);
    let after: Vec<_> = windows.iter().map(|w| writer_rows(&ledger, w)).collect();
    assert_eq!(before, after);
    // Once the hour closes its packed cells hold the archived part, which goes.
    clock.advance_secs(3_600);
    append(&ledger, &keys, &[(0, 0, 0, 0, false)]);
    assert_eq!(ledger.store().scan_side(b"rollup/a/").count(), 0);
    let closed = window(Some(open), Some(open.plus_secs(3_600)));
    assert_eq!(writer_rows(&ledger, &closed), before[1]);
    common::assert_verifies(ledger.store().as_ref(), &dir);
}

/// A clean shutdown leaves the writer's checkpoint of the open hour's cells, naming the last event counted; the
/// next open starts from it and counts only the events after it (shown with a checkpoint whose cells were made
/// up: the writer answers from them). A checkpoint naming an event the log does not hold is ignored, and the hour
/// is counted from its events.
#[test]
fn the_open_hour_starts_from_the_writers_checkpoint_when_it_matches_the_log() {
    use keyledger::projection::rollup_checkpoint::{encode, OPEN_CELLS_KEY};
    use keyledger::projection::rollup_open::HourCells;
    let (_tmp, dir, ledger, clock) = common::clocked_ledger();
    let keys = keys(&ledger);
    append(&ledger, &keys, &[(0, 0, 0, 0, false), (1, 1, 1, 1, true)]);
    clock.advance_secs(60);
    append(&ledger, &keys, &[(2, 2, 2, 0, false)]);
    let head = ledger.store().head().unwrap().unwrap();
    let hour_window = window(Some(hour_start(hour_of(head.time))), None);
    let before = writer_rows(&ledger, &hour_window);
    let ledger = reopen(&dir, ledger);
    let stored = ledger.store().get_side(OPEN_CELLS_KEY).unwrap();
    assert_eq!(
        stored.as_ref().map(|value| value[8..16].to_vec()),
        Some(head.seq.to_be_bytes().to_vec()),
        "the clean shutdown checkpointed the cells up to the head"
    );
    assert_eq!(writer_rows(&ledger, &hour_window), before);

    // Made-up cells under the head's true seq and hash: the next open takes them as they are.
    let mut made_up = HourCells::new(hour_of(head.time));
    let EventData::KeyUsed(fake) = event(&keys, (0, 4, 0, 0, false)) else {
        unreachable!("event() makes key uses")
    };
    made_up.add(head.time, &fake);
    let (key, value) = encode(&made_up, head.seq, &head.hash);
    ledger.store().put_side(&[(key.clone(), value)]).unwrap();
    drop(ledger);
    let ledger = dir.open(&KeySource::Default).expect("reopen");
    let rows = ledger
        .usage_report(&hour_window, GroupBy::Ip, 100)
        .expect("usage report")
        .rows;
    assert_eq!(
        rows.iter().map(|row| row.group.clone()).collect::<Vec<_>>(),
        vec![fake.ip.clone().unwrap()],
        "the writer started from the checkpoint, not from the events"
    );

    // The same cells naming a hash the log does not have: ignored, the hour is counted from its events.
    let (key, value) = encode(&made_up, head.seq, &[7u8; 32]);
    ledger.store().put_side(&[(key, value)]).unwrap();
    // Nothing was counted since the open, so the shutdown writes no checkpoint over the stale one.
    let ledger = reopen(&dir, ledger);
    assert_eq!(writer_rows(&ledger, &hour_window), before);
}
