//! The attribute index (client IP and request id): written in the same batch as every event, it
//! lists exactly the events that have each value; verification locates a missing or a stray entry; a log written
//! before the index existed is filed when the writer opens it.

mod common;

use common::{assert_verifies, fresh_ledger};
use keyledger::audit::{verify_log, ProblemKind, VerifyRange};
use keyledger::datadir::{DataDir, KeySource};
use keyledger::event::attributes::{attribute_digest, Attribute};
use keyledger::event::{Actor, Event, EventData, KeyUsed, VerifyCode};
use keyledger::ledger::AppendEvents;
use keyledger::store::{has_attribute_index, LogStore, SledStore, ATTRIBUTE_INDEX_MARKER};
use std::collections::BTreeMap;
use tempfile::TempDir;
use uuid::Uuid;

const USES: usize = 60;

fn ip_of(i: usize) -> String {
    format!("203.0.113.{}", i % 5)
}

/// Uses from five IPs under seven request ids, by two gateway keys and the system.
fn ledger_with_varied_uses() -> (TempDir, DataDir) {
    let (tmp, dir, ledger) = fresh_ledger();
    let keys = [Uuid::from_u128(1), Uuid::from_u128(2)];
    for i in 0..USES {
        let actor = match i % 3 {
            0 => Actor::System,
            n => Actor::Key {
                key_id: keys[n - 1],
            },
        };
        let used = EventData::KeyUsed(KeyUsed {
            key_id: Some(keys[i % 2]),
            prefix: None,
            outcome: VerifyCode::Valid,
            ip: Some(ip_of(i)),
            user_agent: None,
            scope: Some("read".into()),
            project: None,
            gateway_ip: None,
            overlap: false,
            method: None,
            path: None,
            committed: None,
        });
        ledger
            .submit_blocking(AppendEvents {
                actor,
                request_id: Some(format!("r-{}", i % 7)),
                events: vec![used],
            })
            .expect("append");
    }
    drop(ledger);
    (tmp, dir)
}

/// What the index should hold, computed from the events themselves.
fn expected_entries(store: &dyn LogStore) -> BTreeMap<[u8; 16], Vec<u64>> {
    let mut expected: BTreeMap<[u8; 16], Vec<u64>> = BTreeMap::new();
    for record in store.scan(1, u64::MAX) {
        let record = record.unwrap();
        let event = Event::decode(&record.body).unwrap();
        for digest in event.attribute_digests() {
            expected.entry(digest).or_default().push(record.seq);
        }
    }
    expected
}

fn indexed(store: &dyn LogStore, digest: [u8; 16]) -> Vec<u64> {
    store
        .attribute_seqs(digest, 1, u64::MAX)
        .map(|seq| seq.unwrap())
        .collect()
}

fn assert_index_is_exact(store: &dyn LogStore) {
    let expected = expected_entries(store);
    for (digest, seqs) in &expected {
        assert_eq!(&indexed(store, *digest), seqs);
    }
    let stored = store.attribute_index().count();
    assert_eq!(stored, expected.values().map(Vec::len).sum::<usize>());
}

#[test]
fn each_attribute_value_lists_exactly_the_events_that_have_it() {
    let (_tmp, dir) = ledger_with_varied_uses();
    let store = SledStore::open(&dir.db_path()).unwrap();
    assert!(has_attribute_index(&store).unwrap());
    assert_index_is_exact(&store);
    let from_one_ip = indexed(&store, attribute_digest(Attribute::Ip, &ip_of(2)));
    assert_eq!(from_one_ip.len(), USES / 5);
    let one_request = indexed(&store, attribute_digest(Attribute::RequestId, "r-3"));
    assert!(!one_request.is_empty());
    assert!(indexed(&store, attribute_digest(Attribute::Ip, "192.0.2.1")).is_empty());
    assert_verifies(&store, &dir);
}

#[test]
fn verification_locates_a_missing_and_a_stray_attribute_entry() {
    let (_tmp, dir) = ledger_with_varied_uses();
    let store = SledStore::open(&dir.db_path()).unwrap();
    // Seq 5 is use i = 3 (seq 1 is the genesis, and init's admin key is seq 2): from ip_of(3).
    let ip_at_5 = attribute_digest(Attribute::Ip, &ip_of(3));
    assert!(indexed(&store, ip_at_5).contains(&5));
    store.tamper_attribute_posting(&ip_at_5, 5, false).unwrap();
    assert!(!indexed(&store, ip_at_5).contains(&5));
    let elsewhere = attribute_digest(Attribute::Ip, "192.0.2.99");
    store.tamper_attribute_posting(&elsewhere, 7, true).unwrap();
    assert_eq!(indexed(&store, elsewhere), vec![7]);
    let anchor = dir.anchor_public_key().unwrap();
    let report = verify_log(&store, anchor, VerifyRange::default(), None).unwrap();
    for seq in [5, 7] {
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.seq == seq && p.kind == ProblemKind::IndexMismatch),
            "seq {seq} is named: {:?}",
            report.problems
        );
    }
}

#[test]
fn a_log_written_before_the_index_is_filed_when_the_writer_opens_it() {
    let (_tmp, dir) = ledger_with_varied_uses();
    {
        let store = SledStore::open(&dir.db_path()).unwrap();
        let entries: Vec<_> = store.attribute_index().map(|e| e.unwrap()).collect();
        for (digest, seq) in entries {
            store.tamper_attribute_posting(&digest, seq, false).unwrap();
        }
        assert_eq!(store.attribute_index().count(), 0);
        store
            .remove_side(&[ATTRIBUTE_INDEX_MARKER.to_vec()])
            .unwrap();
        store.sync().unwrap();
        // Without the marker the index is not relied on, and the log still verifies.
        assert!(!has_attribute_index(&store).unwrap());
        assert_verifies(&store, &dir);
    }
    drop(dir.open(&KeySource::Default).expect("the writer opens"));
    let store = SledStore::open(&dir.db_path()).unwrap();
    assert!(has_attribute_index(&store).unwrap());
    assert_index_is_exact(&store);
    assert_verifies(&store, &dir);
}

/// `keyledger events` takes the API's incident filters (issue 13): each answers exactly the events that match,
/// and a filter that can never match is refused naming it.
#[test]
fn cli_events_filters_answer_exactly_the_matching_events() {
    let (_tmp, dir) = ledger_with_varied_uses();
    let store = SledStore::open(&dir.db_path()).unwrap();
    let events: Vec<Event> = store
        .scan(1, u64::MAX)
        .map(|r| Event::decode(&r.unwrap().body).unwrap())
        .collect();
    drop(store);
    let gateway = Uuid::from_u128(2);
    let cases: [(&[&str], usize); 5] = [
        (&["--ip", "203.0.113.3"], USES / 5),
        (
            &["--request-id", "r-4"],
            (0..USES).filter(|i| i % 7 == 4).count(),
        ),
        (&["--type", "ledger.initialized"], 1),
        (&["--actor", &format!("key:{gateway}")], USES / 3),
        (
            &["--ip", "203.0.113.3", "--request-id", "r-4"],
            (0..USES).filter(|i| i % 5 == 3 && i % 7 == 4).count(),
        ),
    ];
    for (filters, expected) in cases {
        let mut args = vec!["events"];
        args.extend_from_slice(filters);
        let (code, out) = common::run_cli(dir.root(), &args);
        assert_eq!(code, 0, "{filters:?}: {out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), expected, "{filters:?}: {out}");
        for line in lines {
            let event = Event::decode(line.as_bytes()).unwrap();
            assert!(
                events.contains(&event),
                "{filters:?}: an event the log holds"
            );
        }
    }
    let (code, out) = common::run_cli(dir.root(), &["events", "--ip", "not-an-ip"]);
    assert_ne!(code, 0);
    assert!(out.contains("ip: not an IP address"), "{out}");
}
