//! Tampering with the stored log is detected and located: changed bodies, removed, swapped and inserted events,
//! foreign signatures, misdirected index entries, and a tampered tail that the ledger refuses to open. Each case
//! runs on a small log (every event in the unsealed tail) and, where it matters, on one whose tampered events sit
//! inside sealed zstd blocks (docs/FORMAT.md, "Stored layout").

mod common;

use common::ledger_with_uses;
use keyledger::audit::{verify_log, ProblemKind, VerifyRange, VerifyReport};
use keyledger::chain::{chain_hash, LedgerSigner};
use keyledger::datadir::{DataDir, KeySource};
use keyledger::store::{LogStore, SledStore, StoredRecord, BLOCK_EVENTS};
use std::path::PathBuf;
use std::sync::OnceLock;
use uuid::Uuid;

/// Events of the small log: the genesis and these uses all sit in unsealed tail chunks.
const EVENTS: usize = 40;
/// Events of the large log: seqs 1..=2048 are sealed into blocks 0 and 1, the rest (2049..=2101) are tail chunks.
const SEALED_EVENTS: usize = 2_100;

fn keys() -> Vec<Uuid> {
    (1..=4u128).map(Uuid::from_u128).collect()
}

/// A closed ledger of the genesis plus `events` uses (one per batch), in a directory the caller may damage. The
/// large log takes a while to write, so it is written once and each test tampers with its own copy.
fn ledger(events: usize) -> DataDir {
    if events != SEALED_EVENTS {
        let (tmp, dir) = ledger_with_uses(events, &keys());
        std::mem::forget(tmp); // keep the directory for the optional reopen check; the OS cleans /tmp
        return dir;
    }
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let (tmp, dir) = ledger_with_uses(SEALED_EVENTS, &keys());
        let store = SledStore::open(&dir.db_path()).unwrap();
        assert_eq!(
            store.unit_counts().0,
            2,
            "seqs 1..=2048 are sealed into blocks"
        );
        drop(store);
        std::mem::forget(tmp);
        dir.root().to_path_buf()
    });
    let copy = tempfile::tempdir().unwrap().keep().join("data");
    common::copy_dir(template, &copy);
    DataDir::new(copy)
}

fn tampered_in(events: usize, tamper: impl FnOnce(&SledStore)) -> (VerifyReport, DataDir) {
    let dir = ledger(events);
    let store = SledStore::open(&dir.db_path()).unwrap();
    tamper(&store);
    let anchor = dir.anchor_public_key().unwrap();
    let report = verify_log(&store, anchor, VerifyRange::default(), None).unwrap();
    drop(store);
    (report, dir)
}

fn put(store: &SledStore, record: &StoredRecord) {
    store.tamper_replace_record(record).unwrap();
}

fn first(report: &VerifyReport) -> (u64, ProblemKind) {
    let problem = report.first_problem().expect("tampering must be detected");
    (problem.seq, problem.kind)
}

/// Whether `seq` sits in a sealed block of the large log (blocks 0 and 1), not in its tail.
fn sealed(seq: u64) -> bool {
    seq <= 2 * BLOCK_EVENTS
}

#[test]
fn untouched_log_verifies() {
    for events in [EVENTS, SEALED_EVENTS] {
        let (report, _) = tampered_in(events, |_| {});
        assert!(report.is_ok(), "{events}: {:?}", report.problems);
        assert_eq!(report.events_checked, events as u64 + 1);
        assert_eq!(report.signatures_checked, events as u64 + 1);
    }
}

fn changed_body_byte_is_located_in(events: usize, seq: u64) {
    let (report, dir) = tampered_in(events, |store| {
        let mut record = store.get(seq).unwrap().unwrap();
        let at = record.body.windows(3).position(|w| w == b"use").unwrap();
        record.body[at] = b'U';
        put(store, &record);
    });
    assert_eq!(first(&report), (seq, ProblemKind::BodyChanged));
    // The ledger refuses to open on a log whose chain is broken.
    let err = dir.open(&KeySource::Default).err().expect("open must fail");
    assert!(err.to_string().contains(&format!("seq {seq}")), "{err}");
}

#[test]
fn changed_body_byte_is_located() {
    changed_body_byte_is_located_in(EVENTS, 10);
}

#[test]
fn changed_body_byte_in_a_sealed_block_is_located() {
    assert!(sealed(10) && sealed(1500));
    changed_body_byte_is_located_in(SEALED_EVENTS, 10);
    changed_body_byte_is_located_in(SEALED_EVENTS, 1500);
}

fn removed_event_is_a_gap_in(events: usize, seq: u64) {
    let (report, _) = tampered_in(events, |store| {
        store.tamper_remove_record(seq).unwrap();
        assert!(store.get(seq).unwrap().is_none());
    });
    let at_block_start = events == SEALED_EVENTS && (seq - 1) % BLOCK_EVENTS == 0;
    if !at_block_start {
        assert_eq!(
            first(&report),
            (seq, ProblemKind::Gap),
            "{:?}",
            report.problems
        );
        return;
    }
    // A sealed block's time-directory entry names its first stored event, so the careful rewrite of a block whose
    // first event is gone re-files it under the next one: that entry is then one event further than the
    // 1,024-event stride from the previous block's, and the time-index check, which sorts first, reports a
    // removed entry from the previous block's start. The gap itself is still named at its seq.
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.seq == seq && p.kind == ProblemKind::Gap),
        "{:?}",
        report.problems
    );
    let before: Vec<_> = report.problems.iter().filter(|p| p.seq < seq).collect();
    assert!(
        before.iter().all(|p| p.kind == ProblemKind::IndexMismatch
            && p.detail.contains(&format!(
                "time index has no entry for events {}..={seq}",
                seq - BLOCK_EVENTS + 1
            ))),
        "{:?}",
        report.problems
    );
}

#[test]
fn removed_event_is_a_gap() {
    removed_event_is_a_gap_in(EVENTS, 20);
}

#[test]
fn removed_event_in_a_sealed_block_is_a_gap() {
    // The middle of block 0, and the first and last events of block 1 (its neighbours in other units).
    for seq in [700, 1025, 2048] {
        assert!(sealed(seq));
        removed_event_is_a_gap_in(SEALED_EVENTS, seq);
    }
}

fn swapped_events_are_located_at_the_first_in(events: usize, at: u64) {
    let (report, _) = tampered_in(events, |store| {
        let mut a = store.get(at).unwrap().unwrap();
        let mut b = store.get(at + 1).unwrap().unwrap();
        std::mem::swap(&mut a.seq, &mut b.seq);
        put(store, &a);
        put(store, &b);
    });
    assert_eq!(first(&report).0, at);
}

#[test]
fn swapped_events_are_located_at_the_first() {
    swapped_events_are_located_at_the_first_in(EVENTS, 15);
}

#[test]
fn swapped_events_in_sealed_blocks_are_located_at_the_first() {
    // Inside block 0, and across the boundary of blocks 0 and 1.
    swapped_events_are_located_at_the_first_in(SEALED_EVENTS, 15);
    swapped_events_are_located_at_the_first_in(SEALED_EVENTS, BLOCK_EVENTS);
}

fn inserted_event_is_located_in(events: usize, at: u64, kind: ProblemKind) {
    let (report, _) = tampered_in(events, |store| {
        let head = store.head().unwrap().unwrap().seq;
        // Shift at.. up by one and forge a new event at `at` that chains correctly but cannot carry the ledger's
        // signature.
        for seq in (at..=head).rev() {
            let mut record = store.get(seq).unwrap().unwrap();
            record.seq = seq + 1;
            put(store, &record);
        }
        let previous = store.get(at - 1).unwrap().unwrap();
        let template = store.get(at + 1).unwrap().unwrap();
        let body = String::from_utf8(template.body.clone())
            .unwrap()
            .replace("use-", "forged-")
            .into_bytes();
        let hash = chain_hash(&previous.hash, &body);
        let forger = LedgerSigner::generate();
        let forged = StoredRecord {
            seq: at,
            hash,
            signature: forger.sign_hash(&hash).unwrap(),
            body,
            ..template
        };
        put(store, &forged);
    });
    assert_eq!(first(&report), (at, kind), "{:?}", report.problems);
}

#[test]
fn inserted_event_is_located() {
    inserted_event_is_located_in(EVENTS, 31, ProblemKind::BadSignature);
}

#[test]
fn inserted_event_in_a_sealed_block_is_located() {
    // Near the end of block 1, so that only ~60 events shift (2048 moves into the tail). The forged event's hash
    // is not the leaf the stored tree holds for its seq (its tile is full), so it is named as a changed body.
    assert!(sealed(2040));
    inserted_event_is_located_in(SEALED_EVENTS, 2040, ProblemKind::BodyChanged);
}

fn signature_by_another_key_is_located_in(events: usize, seq: u64) {
    let forger = LedgerSigner::generate();
    let (report, _) = tampered_in(events, |store| {
        let mut record = store.get(seq).unwrap().unwrap();
        record.signature = forger.sign_hash(&record.hash).unwrap();
        put(store, &record);
    });
    assert_eq!(first(&report), (seq, ProblemKind::BadSignature));
    let (report, _) = tampered_in(events, |store| {
        let mut record = store.get(seq + 1).unwrap().unwrap();
        record.signature = forger.sign_hash(&record.hash).unwrap();
        record.signer = forger.id();
        put(store, &record);
    });
    assert_eq!(first(&report), (seq + 1, ProblemKind::UnknownSigner));
}

#[test]
fn signature_by_another_key_is_located() {
    signature_by_another_key_is_located_in(EVENTS, 12);
}

#[test]
fn signature_by_another_key_in_a_sealed_block_is_located() {
    assert!(sealed(1300));
    signature_by_another_key_is_located_in(SEALED_EVENTS, 1300);
}

/// Removes the posting of `keys()[1]` at `missing` and files it at `stray` instead.
fn index_entry_pointing_at_the_wrong_seq_is_located_in(events: usize, missing: u64, stray: u64) {
    let key = keys()[1];
    // Events 2.. use keys round-robin: seq s concerns keys[(s - 2) % 4].
    assert_eq!((missing - 2) % 4, 1, "seq {missing} concerns keys[1]");
    assert_ne!((stray - 2) % 4, 1, "seq {stray} does not concern keys[1]");
    let (report, _) = tampered_in(events, |store| {
        store.tamper_key_posting(&key, missing, false).unwrap();
        store.tamper_key_posting(&key, stray, true).unwrap();
    });
    let (seq, kind) = first(&report);
    assert_eq!((seq, kind), (missing, ProblemKind::IndexMismatch));
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.seq == stray && p.kind == ProblemKind::IndexMismatch),
        "the stray entry is reported too: {:?}",
        report.problems
    );
}

#[test]
fn index_entry_pointing_at_the_wrong_seq_is_located() {
    // Seq 3 concerns keys[1], seq 5 concerns keys[3].
    index_entry_pointing_at_the_wrong_seq_is_located_in(EVENTS, 3, 5);
}

#[test]
fn index_entry_pointing_at_the_wrong_seq_in_sealed_blocks_is_located() {
    // The missing entry in block 0's postings, the stray one in block 1's (seq 1025 concerns keys[3]).
    assert!(sealed(1023) && sealed(1025));
    index_entry_pointing_at_the_wrong_seq_is_located_in(SEALED_EVENTS, 1023, 1025);
}

fn a_missing_lifecycle_entry_is_named_by_its_event_in(events: usize) {
    // Whole-log verification compares index digests and reads the events again only when they differ. The only
    // lifecycle event of these logs is the genesis: in the small log it is a tail chunk's, in the large one block
    // 0's.
    let (report, _) = tampered_in(events, |store| {
        store.tamper_remove_lifecycle_posting(1).unwrap();
        assert_eq!(store.lifecycle_seqs(1, u64::MAX).count(), 0);
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
fn a_missing_lifecycle_entry_is_named_by_its_event() {
    a_missing_lifecycle_entry_is_named_by_its_event_in(EVENTS);
}

#[test]
fn a_missing_lifecycle_entry_in_a_sealed_block_is_named_by_its_event() {
    a_missing_lifecycle_entry_is_named_by_its_event_in(SEALED_EVENTS);
}

/// Removes every event from `cut_from` to the head, leaving the head naming one that is gone.
fn cut_tail_behind_the_head_is_detected_in(events: usize, cut_from: Option<u64>) {
    let (report, dir) = tampered_in(events, |store| {
        let head = store.head().unwrap().unwrap().seq;
        for seq in cut_from.unwrap_or(head)..=head {
            store.tamper_remove_record(seq).unwrap();
        }
    });
    assert_eq!(first(&report).1, ProblemKind::HeadMismatch);
    assert!(dir.open(&KeySource::Default).is_err());
}

#[test]
fn cut_tail_behind_the_head_is_detected() {
    // The head record itself.
    cut_tail_behind_the_head_is_detected_in(EVENTS, None);
}

#[test]
fn cut_tail_into_a_sealed_block_behind_the_head_is_detected() {
    // The large log's head is a tail chunk's: cut from inside block 1 to it, so the newest stored event is a
    // sealed block's.
    assert!(sealed(2000));
    cut_tail_behind_the_head_is_detected_in(SEALED_EVENTS, Some(2000));
}

fn ranged_verification_checks_only_the_range_but_links_into_it_in(events: usize, base: u64) {
    let dir = ledger(events);
    let store = SledStore::open(&dir.db_path()).unwrap();
    let mut record = store.get(base + 5).unwrap().unwrap();
    record.body[3] ^= 0x01;
    put(&store, &record);
    let anchor = dir.anchor_public_key().unwrap();
    let later = verify_log(
        &store,
        anchor,
        VerifyRange {
            from: base + 10,
            to: Some(base + 20),
        },
        None,
    )
    .unwrap();
    assert_eq!(later.events_checked, 11);
    if events == SEALED_EVENTS && sealed(base + 5) {
        // A sealed block stores no hash that follows from the one before (docs/FORMAT.md §4): the range's hashes
        // follow from the changed body, so its first event is named, as chained from a changed event.
        assert_eq!(first(&later), (base + 10, ProblemKind::BodyChanged));
    } else {
        assert!(later.is_ok(), "{:?}", later.problems);
    }
    let covering = verify_log(
        &store,
        anchor,
        VerifyRange {
            from: base + 3,
            to: Some(base + 8),
        },
        None,
    )
    .unwrap();
    assert_eq!(first(&covering), (base + 5, ProblemKind::BodyChanged));
}

#[test]
fn ranged_verification_checks_only_the_range_but_links_into_it() {
    ranged_verification_checks_only_the_range_but_links_into_it_in(EVENTS, 0);
}

#[test]
fn ranged_verification_inside_a_sealed_block_checks_only_the_range_but_links_into_it() {
    assert!(sealed(1400 + 20));
    ranged_verification_checks_only_the_range_but_links_into_it_in(SEALED_EVENTS, 1400);
}

/// Cuts every event after `keep` and rewrites the head to name `keep`, as a careful attacker would; the stored
/// checkpoints above the cut (left in place) name the events that are gone.
fn a_cut_tail_with_a_rewritten_head_is_caught_in(dir: &DataDir, keep: u64) {
    let store = SledStore::open(&dir.db_path()).unwrap();
    let head = store.head().unwrap().unwrap().seq;
    assert!(keep < head);
    store.tamper_cut_after(keep).unwrap();
    assert_eq!(store.head().unwrap().unwrap().seq, keep);
    assert_eq!(store.last_record().unwrap().unwrap().seq, keep);
    assert!(store.get(keep + 1).unwrap().is_none());
    let report = common::verify_report(&store, dir);
    let problem = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::CheckpointMismatch)
        .expect("cut tail detected");
    assert_eq!(problem.seq, keep + 1, "{:?}", report.problems);
    assert!(
        problem.detail.contains("tail was cut"),
        "{}",
        problem.detail
    );
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
    // Seqs 1..=1024 are sealed into block 0, 1025..=1101 are one tail chunk: the cut is inside block 0.
    a_cut_tail_with_a_rewritten_head_is_caught_in(&dir, 999);
    drop(tmp);
}

#[test]
fn a_cut_tail_into_block_1_with_a_rewritten_head_is_caught_by_the_stored_checkpoints() {
    // Inside block 1: its later events and every tail chunk go.
    assert!(sealed(1500));
    a_cut_tail_with_a_rewritten_head_is_caught_in(&ledger(SEALED_EVENTS), 1500);
}
