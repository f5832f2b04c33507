//! Tampering with the stored log is detected and located: changed bodies, removed, swapped and inserted events,
//! foreign signatures, misdirected index entries, and a tampered tail that the ledger refuses to open.

mod common;

use common::ledger_with_uses;
use keyledger::audit::{verify_log, ProblemKind, VerifyRange, VerifyReport};
use keyledger::chain::{chain_hash, LedgerSigner};
use keyledger::datadir::{DataDir, KeySource};
use keyledger::store::{LogStore, SledStore, StoredRecord};
use uuid::Uuid;

const EVENTS: usize = 40;

fn keys() -> Vec<Uuid> {
    (1..=4u128).map(Uuid::from_u128).collect()
}

fn tampered(tamper: impl FnOnce(&SledStore)) -> (VerifyReport, DataDir) {
    let (tmp, dir) = ledger_with_uses(EVENTS, &keys());
    let store = SledStore::open(&dir.db_path()).unwrap();
    tamper(&store);
    let anchor = dir.anchor_public_key().unwrap();
    let report = verify_log(&store, anchor, VerifyRange::default(), None).unwrap();
    drop(store);
    std::mem::forget(tmp); // keep the directory for the optional reopen check; the OS cleans /tmp
    (report, dir)
}

fn put(store: &SledStore, record: &StoredRecord) {
    store
        .raw_tree()
        .insert(SledStore::raw_event_key(record.seq), record.encode())
        .unwrap();
}

fn first(report: &VerifyReport) -> (u64, ProblemKind) {
    let problem = report.first_problem().expect("tampering must be detected");
    (problem.seq, problem.kind)
}

#[test]
fn untouched_log_verifies() {
    let (report, _) = tampered(|_| {});
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.events_checked, EVENTS as u64 + 1);
    assert_eq!(report.signatures_checked, EVENTS as u64 + 1);
}

#[test]
fn changed_body_byte_is_located() {
    let (report, dir) = tampered(|store| {
        let mut record = store.get(10).unwrap().unwrap();
        let at = record.body.windows(3).position(|w| w == b"use").unwrap();
        record.body[at] = b'U';
        put(store, &record);
    });
    assert_eq!(first(&report), (10, ProblemKind::BodyChanged));
    // The ledger refuses to open on a log whose chain is broken.
    let err = dir.open(&KeySource::Default).err().expect("open must fail");
    assert!(err.to_string().contains("seq 10"), "{err}");
}

#[test]
fn removed_event_is_a_gap() {
    let (report, _) = tampered(|store| {
        store
            .raw_tree()
            .remove(SledStore::raw_event_key(20))
            .unwrap();
    });
    assert_eq!(first(&report), (20, ProblemKind::Gap));
}

#[test]
fn swapped_events_are_located_at_the_first() {
    let (report, _) = tampered(|store| {
        let mut a = store.get(15).unwrap().unwrap();
        let mut b = store.get(16).unwrap().unwrap();
        std::mem::swap(&mut a.seq, &mut b.seq);
        put(store, &a);
        put(store, &b);
    });
    assert_eq!(first(&report).0, 15);
}

#[test]
fn inserted_event_is_located() {
    let (report, _) = tampered(|store| {
        let head = store.head().unwrap().unwrap().seq;
        // Shift 31.. up by one and forge a new seq 31 that chains correctly but cannot carry the ledger's signature.
        for seq in (31..=head).rev() {
            let mut record = store.get(seq).unwrap().unwrap();
            record.seq = seq + 1;
            put(store, &record);
        }
        let previous = store.get(30).unwrap().unwrap();
        let template = store.get(32).unwrap().unwrap();
        let body = String::from_utf8(template.body.clone())
            .unwrap()
            .replace("use-", "forged-")
            .into_bytes();
        let hash = chain_hash(&previous.hash, &body);
        let forger = LedgerSigner::generate();
        let forged = StoredRecord {
            seq: 31,
            hash,
            signature: forger.sign_hash(&hash),
            body,
            ..template
        };
        put(store, &forged);
    });
    assert_eq!(first(&report), (31, ProblemKind::BadSignature));
}

#[test]
fn signature_by_another_key_is_located() {
    let forger = LedgerSigner::generate();
    let (report, _) = tampered(|store| {
        let mut record = store.get(12).unwrap().unwrap();
        record.signature = forger.sign_hash(&record.hash);
        put(store, &record);
    });
    assert_eq!(first(&report), (12, ProblemKind::BadSignature));
    let (report, _) = tampered(|store| {
        let mut record = store.get(13).unwrap().unwrap();
        record.signature = forger.sign_hash(&record.hash);
        record.signer = forger.id();
        put(store, &record);
    });
    assert_eq!(first(&report), (13, ProblemKind::UnknownSigner));
}

#[test]
fn index_entry_pointing_at_the_wrong_seq_is_located() {
    let key = keys()[1];
    // Events 2.. use keys round-robin: seq 3 concerns keys[1], seq 5 concerns keys[3].
    let (report, _) = tampered(|store| {
        store
            .raw_tree()
            .remove(SledStore::raw_key_index_key(&key, 3))
            .unwrap();
        store
            .raw_tree()
            .insert(SledStore::raw_key_index_key(&key, 5), &[])
            .unwrap();
    });
    let (seq, kind) = first(&report);
    assert_eq!((seq, kind), (3, ProblemKind::IndexMismatch));
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.seq == 5 && p.kind == ProblemKind::IndexMismatch),
        "the stray entry is reported too: {:?}",
        report.problems
    );
}

#[test]
fn a_missing_lifecycle_entry_is_named_by_its_event() {
    // Whole-log verification compares index digests and reads the events again only when they differ.
    let (report, _) = tampered(|store| {
        store
            .raw_tree()
            .remove(SledStore::raw_lifecycle_key(1))
            .unwrap();
    });
    assert!(
        report.problems.iter().any(|p| p.seq == 1
            && p.kind == ProblemKind::IndexMismatch
            && p.detail.contains("lifecycle index has no entry")),
        "{:?}",
        report.problems
    );
}

#[test]
fn cut_tail_behind_the_head_is_detected() {
    let (report, dir) = tampered(|store| {
        let head = store.head().unwrap().unwrap().seq;
        store
            .raw_tree()
            .remove(SledStore::raw_event_key(head))
            .unwrap();
    });
    assert_eq!(first(&report).1, ProblemKind::HeadMismatch);
    assert!(dir.open(&KeySource::Default).is_err());
}

#[test]
fn ranged_verification_checks_only_the_range_but_links_into_it() {
    let (tmp, dir) = ledger_with_uses(EVENTS, &keys());
    let store = SledStore::open(&dir.db_path()).unwrap();
    let mut record = store.get(5).unwrap().unwrap();
    record.body[3] ^= 0x01;
    put(&store, &record);
    let anchor = dir.anchor_public_key().unwrap();
    let later = verify_log(
        &store,
        anchor,
        VerifyRange {
            from: 10,
            to: Some(20),
        },
        None,
    )
    .unwrap();
    assert!(later.is_ok(), "{:?}", later.problems);
    assert_eq!(later.events_checked, 11);
    let covering = verify_log(
        &store,
        anchor,
        VerifyRange {
            from: 3,
            to: Some(8),
        },
        None,
    )
    .unwrap();
    assert_eq!(first(&covering), (5, ProblemKind::BodyChanged));
    drop(tmp);
}

#[test]
fn a_cut_tail_with_a_rewritten_head_is_caught_by_the_stored_checkpoints() {
    let (tmp, dir, ledger) = common::fresh_ledger();
    let events = (0..1100)
        .map(|i| common::used(None, &format!("e{i}")))
        .collect();
    ledger
        .submit_blocking(keyledger::ledger::AppendEvents {
            actor: keyledger::event::Actor::System,
            request_id: None,
            events,
        })
        .unwrap();
    drop(ledger);
    let store = SledStore::open(&dir.db_path()).unwrap();
    let head = store.head().unwrap().unwrap().seq;
    for seq in 1000..=head {
        store
            .raw_tree()
            .remove(SledStore::raw_event_key(seq))
            .unwrap();
    }
    // A careful attacker also rewrites the head so that it names the new last event.
    let last = store.get(999).unwrap().unwrap();
    let mut head_value = 999u64.to_be_bytes().to_vec();
    head_value.extend_from_slice(&last.hash);
    head_value.extend_from_slice(&last.time.as_micros().to_be_bytes());
    store.raw_tree().insert(b"h", head_value).unwrap();
    let report = common::verify_report(&store, &dir);
    let problem = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::CheckpointMismatch)
        .expect("cut tail detected");
    assert_eq!(problem.seq, 1000);
    assert!(
        problem.detail.contains("tail was cut"),
        "{}",
        problem.detail
    );
    drop(tmp);
}
