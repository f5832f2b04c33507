//! Exports prove themselves offline: a window verifies with only the first public key, and every kind of
//! tampering with the file is caught at the right line — changed body, removed, inserted or swapped lines, a
//! changed signature, a forged checkpoint, a cut tail, and a log that does not extend a checkpoint kept earlier.
//! Signer rotation round-trips, including an export spanning it.

mod common;

use keyledger::audit::checkpoint::Checkpoint;
use keyledger::audit::export::{write_export, ExportRequest};
use keyledger::audit::verify_export::{verify_export, ExportFailure};
use keyledger::audit::{verify_log, VerifyRange};
use keyledger::chain::LedgerSigner;
use keyledger::datadir::{DataDir, KeySource};
use keyledger::event::{Actor, EventData, SignerRotated};
use keyledger::ledger::{AppendEvents, Ledger};
use keyledger::store::SledStore;
use keyledger::time::LedgerTime;
use std::sync::Arc;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: DataDir,
    ledger: Ledger,
    /// Times between the three batches: the window is [t1, t2).
    t1: LedgerTime,
    t2: LedgerTime,
}

fn append(ledger: &Ledger, tag: &str, n: usize) {
    let events = (0..n)
        .map(|i| {
            common::used(
                Some(uuid::Uuid::from_u128(i as u128 % 3 + 1)),
                &format!("{tag}-{i}"),
            )
        })
        .collect();
    ledger
        .submit_blocking(AppendEvents {
            actor: Actor::System,
            request_id: None,
            events,
        })
        .unwrap();
}

fn pause() -> LedgerTime {
    std::thread::sleep(std::time::Duration::from_millis(3));
    let t = LedgerTime::now();
    std::thread::sleep(std::time::Duration::from_millis(3));
    t
}

fn fixture() -> Fixture {
    let (tmp, dir, ledger) = common::fresh_ledger();
    append(&ledger, "before", 40);
    let t1 = pause();
    append(&ledger, "inside", 120);
    let t2 = pause();
    append(&ledger, "after", 30);
    Fixture {
        _tmp: tmp,
        dir,
        ledger,
        t1,
        t2,
    }
}

fn export(f: &Fixture, request: &ExportRequest) -> String {
    let identity = f.dir.identity().unwrap();
    let store = f.ledger.store().as_ref();
    let (checkpoint, note) = f.ledger.checkpoint_blocking().unwrap();
    let mut out = Vec::new();
    write_export(
        store,
        request,
        &checkpoint,
        &note,
        &identity.public_key,
        &mut out,
        None,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

fn window(f: &Fixture) -> ExportRequest {
    ExportRequest {
        from: Some(f.t1),
        to: Some(f.t2),
        consistency_from: None,
        first_seq: None,
    }
}

fn check(
    f: &Fixture,
    text: &str,
    older: Option<&str>,
) -> Result<keyledger::audit::verify_export::ExportCheck, ExportFailure> {
    verify_export(text.as_bytes(), f.dir.anchor_public_key().unwrap(), older)
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn join(lines: &[String]) -> String {
    lines.join("\n") + "\n"
}

/// Index (0-based) of the n-th event line.
fn event_line(lines: &[String], n: usize) -> usize {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"kind\":\"event\""))
        .nth(n)
        .unwrap()
        .0
}

#[test]
fn a_window_export_verifies_with_only_the_first_public_key() {
    let f = fixture();
    let text = export(&f, &window(&f));
    let result = check(&f, &text, None).unwrap();
    assert_eq!(result.events, 120);
    assert_eq!((result.from_seq, result.to_seq), (42, 161));
    assert_eq!(result.tree_size, f.ledger.durable_seq());
    let whole = export(&f, &ExportRequest::default());
    assert_eq!(
        check(&f, &whole, None).unwrap().events,
        f.ledger.durable_seq()
    );
}

#[test]
fn every_kind_of_tampering_is_caught_at_its_line() {
    let f = fixture();
    let good = lines(&export(&f, &window(&f)));
    let at = event_line(&good, 10);
    let line_no = at as u64 + 1;

    let mut changed = good.clone();
    changed[at] = changed[at].replace("inside-", "INSIDE-");
    assert_eq!(
        check(&f, &join(&changed), None).unwrap_err().line,
        line_no,
        "changed body"
    );

    let mut removed = good.clone();
    removed.remove(at);
    assert_eq!(
        check(&f, &join(&removed), None).unwrap_err().line,
        line_no,
        "removed line: the next one no longer links"
    );

    let mut inserted = good.clone();
    inserted.insert(at, good[at - 1].clone());
    assert_eq!(
        check(&f, &join(&inserted), None).unwrap_err().line,
        line_no,
        "inserted (duplicated) line"
    );

    let mut swapped = good.clone();
    swapped.swap(at, at + 1);
    assert_eq!(
        check(&f, &join(&swapped), None).unwrap_err().line,
        line_no,
        "swapped lines"
    );

    let mut resigned = good.clone();
    let value: serde_json::Value = serde_json::from_str(&good[at]).unwrap();
    let signature = value["signature"].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if signature.starts_with('0') { "1" } else { "0" },
        &signature[1..]
    );
    resigned[at] = resigned[at].replace(signature, &flipped);
    let failure = check(&f, &join(&resigned), None).unwrap_err();
    assert_eq!(failure.line, line_no, "changed signature: {failure}");

    let cp = good
        .iter()
        .position(|l| l.contains("\"kind\":\"checkpoint\""))
        .unwrap();
    let mut forged = good.clone();
    let size = f.ledger.durable_seq();
    forged[cp] = forged[cp].replace(&format!("\\n{size}\\n"), &format!("\\n{}\\n", size + 5));
    assert_eq!(
        check(&f, &join(&forged), None).unwrap_err().line,
        cp as u64 + 1,
        "altered checkpoint"
    );
    let mut foreign = good.clone();
    let other = LedgerSigner::generate();
    let origin = f.dir.identity().unwrap().origin;
    let fake = Checkpoint {
        origin,
        size,
        root: [7; 32],
    }
    .sign(&other)
    .unwrap();
    foreign[cp] = serde_json::json!({ "kind": "checkpoint", "note": fake }).to_string();
    assert_eq!(
        check(&f, &join(&foreign), None).unwrap_err().line,
        cp as u64 + 1,
        "checkpoint by another key"
    );

    let cut = join(&good[..good.len() - 1]);
    assert!(
        check(&f, &cut, None)
            .unwrap_err()
            .problem
            .contains("cut short"),
        "missing end line"
    );
    let cut_events = join(&[&good[..at], &good[cp..]].concat());
    assert!(
        check(&f, &cut_events, None).is_err(),
        "events cut from the window's tail"
    );
}

#[test]
fn an_export_must_extend_the_checkpoint_the_reader_kept() {
    let f = fixture();
    let signer = f.dir.load_signer(&KeySource::Default).unwrap();
    let origin = f.dir.identity().unwrap().origin;
    let (kept, kept_note) = f.ledger.checkpoint_blocking().unwrap();
    append(&f.ledger, "later", 25);
    let request = ExportRequest {
        consistency_from: Some(kept.size),
        ..window(&f)
    };
    let text = export(&f, &request);
    assert_eq!(
        check(&f, &text, Some(&kept_note)).unwrap().consistency_from,
        Some(kept.size)
    );
    // The reader's checkpoint says the first `kept.size` events had another root: history was rewritten.
    let rewritten = Checkpoint {
        origin: origin.clone(),
        size: kept.size,
        root: [9; 32],
    }
    .sign(&signer)
    .unwrap();
    assert!(check(&f, &text, Some(&rewritten))
        .unwrap_err()
        .problem
        .contains("rewritten"));
    // A kept checkpoint larger than the exported log: its tail was cut.
    let bigger = Checkpoint {
        origin,
        size: f.ledger.durable_seq() + 10,
        root: [1; 32],
    }
    .sign(&signer)
    .unwrap();
    assert!(check(&f, &text, Some(&bigger))
        .unwrap_err()
        .problem
        .contains("cut"));
    // Without the consistency proof the kept checkpoint cannot be honoured.
    let plain = export(&f, &window(&f));
    assert!(check(&f, &plain, Some(&kept_note)).is_err());
}

#[test]
fn signer_rotation_round_trip_and_an_export_spanning_it() {
    let (tmp, dir, ledger) = common::fresh_ledger();
    append(&ledger, "old-key", 20);
    let new = LedgerSigner::generate();
    let rotation = EventData::SignerRotated(SignerRotated {
        new_public_key: new.public_key_hex(),
        new_signer_id: new.id().to_string(),
        reason: None,
    });
    ledger
        .submit_blocking(AppendEvents {
            actor: Actor::System,
            request_id: None,
            events: vec![rotation],
        })
        .unwrap();
    let refused = ledger.submit_blocking(AppendEvents {
        actor: Actor::System,
        request_id: None,
        events: vec![common::used(None, "x")],
    });
    assert!(
        refused.is_err(),
        "the old key signs nothing after its rotation"
    );
    drop(ledger);
    let old = dir.load_signer(&KeySource::Default).unwrap();
    let store = Arc::new(SledStore::open(&dir.db_path()).unwrap());
    assert!(
        Ledger::open(store.clone(), old).is_err(),
        "the retired key cannot reopen the ledger"
    );
    let ledger = Ledger::open(
        store,
        LedgerSigner::from_seed_hex(&new.seed_hex().unwrap()).unwrap(),
    )
    .unwrap();
    append(&ledger, "new-key", 20);
    let report = verify_log(
        ledger.store().as_ref(),
        dir.anchor_public_key().unwrap(),
        VerifyRange::default(),
        None,
    )
    .unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let identity = dir.identity().unwrap();
    let (checkpoint, note) = ledger.checkpoint_blocking().unwrap();
    let mut out = Vec::new();
    write_export(
        ledger.store().as_ref(),
        &ExportRequest::default(),
        &checkpoint,
        &note,
        &identity.public_key,
        &mut out,
        None,
    )
    .unwrap();
    let result = verify_export(out.as_slice(), dir.anchor_public_key().unwrap(), None).unwrap();
    assert_eq!(result.events, ledger.durable_seq());
    // A window after the rotation needs the endorsement carried in the export.
    let from = LedgerTime::now();
    append(&ledger, "late", 5);
    let (checkpoint, note) = ledger.checkpoint_blocking().unwrap();
    let mut out = Vec::new();
    write_export(
        ledger.store().as_ref(),
        &ExportRequest {
            from: Some(from),
            ..Default::default()
        },
        &checkpoint,
        &note,
        &identity.public_key,
        &mut out,
        None,
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&out).contains("\"kind\":\"endorsement\""));
    assert_eq!(
        verify_export(out.as_slice(), dir.anchor_public_key().unwrap(), None)
            .unwrap()
            .events,
        5
    );
    drop(tmp);
}

/// Each forged-export case of issue 10: the verifier must refuse it, naming why.
fn refused(f: &Fixture, text: &str, why: &str) -> ExportFailure {
    let failure = check(f, text, None).expect_err(why);
    eprintln!("{why}: {failure}");
    failure
}

#[test]
fn forged_empty_window_with_an_earlier_requested_from_is_refused() {
    let f = fixture();
    let future = LedgerTime::parse("2099-01-01T00:00:00.000000Z").unwrap();
    let text = export(
        &f,
        &ExportRequest {
            from: Some(future),
            ..Default::default()
        },
    );
    let genuine = check(&f, &text, None).unwrap();
    assert_eq!(genuine.events, 0);
    assert!(
        text.contains("\"kind\":\"boundary\""),
        "an empty tail export carries the event before it"
    );
    let forged = text.replacen(
        "2099-01-01T00:00:00.000000Z",
        "2000-01-01T00:00:00.000000Z",
        1,
    );
    let failure = refused(&f, &forged, "no events since 2000");
    assert!(
        failure.problem.contains("inside the requested range"),
        "{failure}"
    );
}

#[test]
fn null_requested_range_must_cover_the_whole_log() {
    let f = fixture();
    let text = export(&f, &window(&f));
    let mut lines = lines(&text);
    let header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let (from, to) = (
        header["requested_from"].as_str().unwrap().to_string(),
        header["requested_to"].as_str().unwrap().to_string(),
    );
    lines[0] = lines[0]
        .replace(&format!("\"{from}\""), "null")
        .replace(&format!("\"{to}\""), "null");
    lines.retain(|l| !l.contains("\"kind\":\"boundary\""));
    let failure = refused(&f, &join(&lines), "a window with a null range");
    assert_eq!(failure.line, 1, "{failure}");
    assert!(failure.problem.contains("null"), "{failure}");
}

#[test]
fn duplicate_member_names_are_refused() {
    let f = fixture();
    let mut lines = lines(&export(&f, &window(&f)));
    let at = event_line(&lines, 3);
    lines[at] = lines[at].replacen("\"body\":{", "\"body\":{\"type\":\"key.revoked\",", 1);
    let failure = refused(&f, &join(&lines), "a body with a duplicate member");
    assert_eq!(failure.line, at as u64 + 1);
    assert!(failure.problem.contains("duplicate"), "{failure}");
}

#[test]
fn unknown_members_are_refused() {
    let f = fixture();
    let mut lines = lines(&export(&f, &window(&f)));
    let at = event_line(&lines, 2);
    lines[at] = lines[at].replacen("{", "{\"note\":\"x\",", 1);
    let failure = refused(&f, &join(&lines), "an unknown member");
    assert_eq!(failure.line, at as u64 + 1);
    assert!(failure.problem.contains("unknown member"), "{failure}");
}

#[test]
fn a_foreign_header_anchor_is_refused() {
    let f = fixture();
    let text = export(&f, &window(&f));
    let ours = hex::encode(f.dir.anchor_public_key().unwrap().as_bytes());
    let other = LedgerSigner::generate().public_key_hex();
    let failure = refused(&f, &text.replacen(&ours, &other, 1), "a foreign anchor");
    assert_eq!(failure.line, 1);
}

#[test]
fn event_times_outside_the_requested_range_are_refused() {
    let f = fixture();
    let text = export(&f, &window(&f));
    let mut lines = lines(&text);
    let last_event = lines[event_line(&lines, 119)].clone();
    let value: serde_json::Value = serde_json::from_str(&last_event).unwrap();
    let last_time = value["body"]["time"].as_str().unwrap().to_string();
    let header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let to = header["requested_to"].as_str().unwrap().to_string();
    lines[0] = lines[0].replace(&to, &last_time);
    let failure = refused(&f, &join(&lines), "the last event at requested_to");
    assert!(
        failure.problem.contains("outside the requested range"),
        "{failure}"
    );
}

#[test]
fn a_cut_file_is_reported_at_its_real_line() {
    let f = fixture();
    let lines = lines(&export(&f, &window(&f)));
    let kept = lines.len() - 2;
    let failure = refused(&f, &join(&lines[..kept]), "a cut file");
    assert_eq!(failure.line, kept as u64 + 1, "{failure}");
    assert!(failure.problem.contains("cut short"), "{failure}");
    let crlf = join(&lines).replace('\n', "\r\n");
    assert!(refused(&f, &crlf, "CRLF lines").problem.contains("CR"));
}

/// Lines are read and parsed in batches of 1,024 on every core: a bad line far past the first batch is still
/// reported at its own line, with the reason the in-order check gives.
#[test]
fn tampering_past_the_first_read_batch_is_caught_at_its_line() {
    let (_tmp, dir, ledger) = common::fresh_ledger();
    append(&ledger, "long", 2600);
    let f = Fixture {
        _tmp,
        dir,
        ledger,
        t1: LedgerTime::now(),
        t2: LedgerTime::now(),
    };
    let whole = export(&f, &ExportRequest::default());
    assert_eq!(check(&f, &whole, None).unwrap().events, 2601);
    let lines = lines(&whole);

    let mut changed = lines.clone();
    let at = event_line(&changed, 2100);
    changed[at] = changed[at].replacen("long-", "lonG-", 1);
    let failure = refused(&f, &join(&changed), "a body changed in the third batch");
    assert_eq!(failure.line, at as u64 + 1, "{failure}");
    assert!(failure.problem.contains("body was changed"), "{failure}");

    let mut swapped = lines.clone();
    let at = event_line(&swapped, 1500);
    swapped.swap(at, at + 1);
    let failure = refused(
        &f,
        &join(&swapped),
        "two events swapped in the second batch",
    );
    assert_eq!(failure.line, at as u64 + 1, "{failure}");
    assert!(failure.problem.contains("prev_hash"), "{failure}");

    let mut cut = join(&lines);
    cut.truncate(cut.len() - 1);
    let failure = refused(&f, &cut, "the last line without its line feed");
    assert_eq!(failure.line, lines.len() as u64, "{failure}");
    assert!(failure.problem.contains("cut short"), "{failure}");
}
