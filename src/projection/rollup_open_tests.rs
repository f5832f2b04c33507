//! Unit tests of the open hour's cells in memory: packing at the hour's close, publishing after a write, and
//! snapshots that later counting does not change.

use super::*;
use crate::event::{Actor, KeyUsed, VerifyCode};
use crate::projection::rollup::Cell;
use crate::time::LedgerTime;
use uuid::Uuid;

const HOUR: i64 = 493_000;

fn used(ip: &str) -> KeyUsed {
    KeyUsed {
        key_id: Some(Uuid::from_u128(7)),
        prefix: None,
        outcome: VerifyCode::Valid,
        ip: Some(ip.into()),
        user_agent: Some("curl/8".into()),
        scope: Some("read".into()),
        project: None,
        gateway_ip: None,
        overlap: false,
        method: None,
        path: None,
        committed: None,
    }
}

fn event(seq: u64, hour: i64, minute: i64, data: EventData) -> Event {
    Event {
        seq,
        time: LedgerTime::from_micros(hour * rollup::HOUR_MICROS + minute * 60_000_000),
        id: Uuid::from_u128(u128::from(seq)),
        actor: Actor::System,
        request_id: None,
        data,
    }
}

fn revoked() -> EventData {
    EventData::KeyRevoked(crate::event::KeyStatusChange {
        key_id: Uuid::from_u128(7),
        reason: None,
    })
}

fn use_at(seq: u64, hour: i64, minute: i64, ip: &str) -> Event {
    event(seq, hour, minute, EventData::KeyUsed(used(ip)))
}

/// The packed cells of `dim` in `hour` among `side`, decoded.
fn packed(side: &[(Vec<u8>, Vec<u8>)], hour: i64, dim: Dim) -> Option<Vec<(String, Cell)>> {
    let key = rollup::packed_key(hour, dim);
    side.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| rollup::decode_packed(v).expect("packed cells decode"))
}

fn writer_with(events: &[Event]) -> RollupWriter {
    let mut writer = RollupWriter::new(None);
    let mut batch = AppendBatch::default();
    writer.pack_closed(events.iter(), &mut batch);
    assert!(batch.side.is_empty(), "nothing closes within one hour");
    writer.publish(events.iter(), (events.last().map_or(0, |e| e.seq), [0; 32]));
    writer
}

#[test]
fn a_batch_within_the_open_hour_packs_nothing_and_is_counted_in_memory() {
    let events = [
        use_at(1, HOUR, 1, "198.51.100.1"),
        use_at(2, HOUR, 2, "198.51.100.2"),
    ];
    let writer = writer_with(&events);
    let open = writer.shared();
    assert_eq!(open.hour(), Some(HOUR));
    let ips: usize = open
        .shards_of(HOUR, Dim::Ip)
        .unwrap()
        .iter()
        .map(|s| s.len())
        .sum();
    assert_eq!(ips, 2);
    assert!(open.shards_of(HOUR + 1, Dim::Ip).is_none());
}

#[test]
fn the_batch_that_starts_a_later_hour_packs_the_open_hour_with_its_own_uses_of_it() {
    let mut writer = writer_with(&[use_at(1, HOUR, 1, "198.51.100.1")]);
    let batch_events = [
        use_at(2, HOUR, 59, "198.51.100.2"),
        use_at(3, HOUR + 1, 0, "198.51.100.3"),
        // An hour that starts and ends within the batch, then the new open hour two hours on.
        use_at(4, HOUR + 1, 1, "198.51.100.3"),
        use_at(5, HOUR + 3, 0, "198.51.100.9"),
    ];
    let mut batch = AppendBatch::default();
    writer.pack_closed(batch_events.iter(), &mut batch);
    assert_eq!(
        batch.side.len(),
        8,
        "two closed hours, four dimensions each"
    );
    let first = packed(&batch.side, HOUR, Dim::Key).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1.total, 2);
    assert_eq!(first[0].1.ips.len(), 2);
    let second = packed(&batch.side, HOUR + 1, Dim::Ip).unwrap();
    assert_eq!(
        second,
        vec![("198.51.100.3".to_string(), {
            let mut cell = Cell::default();
            cell.add(Dim::Ip, batch_events[1].time, &used("198.51.100.3"));
            cell.add(Dim::Ip, batch_events[2].time, &used("198.51.100.3"));
            cell
        })]
    );
    // Before the write, readers still see the open hour as it was.
    let open = writer.shared();
    assert_eq!(open.hour(), Some(HOUR));
    writer.publish(
        batch_events.iter(),
        (batch_events.last().map_or(0, |e| e.seq), [0; 32]),
    );
    assert_eq!(open.hour(), Some(HOUR + 3));
    let cells: Vec<_> = open
        .shards_of(HOUR + 3, Dim::Ip)
        .unwrap()
        .iter()
        .flat_map(|s| {
            s.iter()
                .map(|(g, c)| (g.clone(), c.total))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(cells, vec![("198.51.100.9".to_string(), 1)]);
}

#[test]
fn a_lifecycle_event_of_a_later_hour_closes_the_open_hour() {
    let mut writer = writer_with(&[use_at(1, HOUR, 1, "198.51.100.1")]);
    let later = [event(2, HOUR + 2, 0, revoked())];
    let mut batch = AppendBatch::default();
    writer.pack_closed(later.iter(), &mut batch);
    assert_eq!(batch.side.len(), 4);
    writer.publish(later.iter(), (later.last().map_or(0, |e| e.seq), [0; 32]));
    let open = writer.shared();
    assert_eq!(open.hour(), Some(HOUR + 2));
    assert!(open
        .shards_of(HOUR + 2, Dim::Key)
        .unwrap()
        .iter()
        .all(|s| s.is_empty()));
}

#[test]
fn a_readers_snapshot_does_not_change_when_the_writer_counts_on() {
    let mut writer = writer_with(&[use_at(1, HOUR, 1, "198.51.100.1")]);
    let snapshot = writer.shared().shards_of(HOUR, Dim::Key).unwrap();
    let more = [use_at(2, HOUR, 2, "198.51.100.2")];
    writer.publish(more.iter(), (more.last().map_or(0, |e| e.seq), [0; 32]));
    let total = |shards: &[Arc<Shard>]| -> u64 {
        shards
            .iter()
            .flat_map(|s| s.values())
            .map(|c| c.total)
            .sum()
    };
    assert_eq!(total(&snapshot), 1);
    assert_eq!(
        total(&writer.shared().shards_of(HOUR, Dim::Key).unwrap()),
        2
    );
}

#[test]
fn counting_an_hour_from_events_skips_other_hours_and_lifecycle_events() {
    let events = vec![
        use_at(1, HOUR - 1, 59, "198.51.100.1"),
        use_at(2, HOUR, 0, "198.51.100.2"),
        event(3, HOUR, 1, revoked()),
        use_at(4, HOUR, 2, "198.51.100.2"),
        use_at(5, HOUR + 1, 0, "198.51.100.3"),
    ];
    let (cells, uses) = count_hour(
        HourCells::new(HOUR),
        events.into_iter().map(Ok),
        Some(Dim::Ip),
    )
    .unwrap();
    assert_eq!(uses, 2);
    let ips: Vec<_> = cells
        .cells(Dim::Ip)
        .map(|(g, c)| (g.clone(), c.total))
        .collect();
    assert_eq!(ips, vec![("198.51.100.2".to_string(), 2)]);
    assert_eq!(
        cells.cells(Dim::Key).count(),
        0,
        "only the dimension asked for"
    );
}
