//! Archival (issue 13): `audit archive --before T -o FILE` writes the older events as a verifiable export and
//! removes them from the live store; the archive verifies offline, the remaining ledger verifies, reopens to the
//! same state, exports and proves what remains, accepts new events, archives again, and says clearly when a
//! question reaches into the archive.

mod common;
#[path = "common/process.rs"]
mod process;

use common::run_cli;
use keyledger::datadir::{DataDir, KeySource};
use keyledger::event::Actor;
use keyledger::keys::{Requester, RevokeKey};
use keyledger::ledger::keys_as_of;
use keyledger::ledger::{replay_log, AppendEvents, Ledger, Startup, StartupCheck};
use keyledger::projection::Projections;
use keyledger::time::LedgerTime;
use std::path::Path;
use uuid::Uuid;

fn uses(ledger: &Ledger, key: Uuid, count: usize) {
    for chunk in 0..count / 500 {
        let events = (0..500)
            .map(|n| common::used(Some(key), &format!("c{chunk}-{n}")))
            .collect();
        ledger
            .submit_blocking(AppendEvents {
                actor: Actor::System,
                request_id: Some(format!("req-{chunk}")),
                events,
            })
            .unwrap();
    }
}

fn instant() -> LedgerTime {
    std::thread::sleep(std::time::Duration::from_millis(20));
    let t = LedgerTime::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    t
}

fn ok(data: &Path, args: &[&str]) -> String {
    let (code, out) = run_cli(data, args);
    assert_eq!(code, 0, "keyledger {args:?}: {out}");
    out
}

/// Three phases of traffic with two instants between them; returns the instants and the state at the end.
fn three_phases(dir: &DataDir) -> (LedgerTime, LedgerTime, LedgerTime, Projections) {
    let ledger = dir.init(None).unwrap().0;
    let early = common::create_key(&ledger, &common::key_config("early", &["read"]))
        .key
        .key_id;
    uses(&ledger, early, 1000);
    let inside = instant();
    uses(&ledger, early, 2000);
    let first_cut = instant();
    let late = common::create_key(&ledger, &common::key_config("late", &["read"]))
        .key
        .key_id;
    ledger
        .submit_blocking(RevokeKey {
            who: Requester::new(Actor::local_operator(), None),
            key_id: early,
            reason: None,
        })
        .unwrap();
    uses(&ledger, late, 2500);
    let second_cut = instant();
    uses(&ledger, late, 500);
    let full = replay_log(ledger.store().as_ref(), None, None).unwrap();
    (inside, first_cut, second_cut, full.projections)
}

#[test]
fn archived_events_leave_a_ledger_that_verifies_reopens_and_archives_again() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = DataDir::new(&data);
    let (inside, first_cut, second_cut, before) = three_phases(&dir);
    let public = data.join("signing.pub").display().to_string();
    let first = tmp.path().join("archive-1.jsonl");
    let first_file = first.display().to_string();

    let out = ok(
        &data,
        &[
            "audit",
            "archive",
            "--before",
            &first_cut.to_string(),
            "-o",
            &first_file,
        ],
    );
    assert!(out.contains("archived events 1..=2048"), "{out}");
    let out = ok(
        &data,
        &[
            "audit",
            "verify-export",
            &first_file,
            "--public-key",
            &public,
        ],
    );
    assert!(out.contains("2048"), "{out}");
    let out = ok(&data, &["audit", "verify"]);
    assert!(out.starts_with("OK: events 2049..="), "{out}");

    // The state is what the whole log gave, whether rebuilt from the base or started from the snapshot.
    let ledger = dir.open(&KeySource::Default).unwrap();
    assert_eq!(*ledger.projections(), before);
    drop(ledger);
    let ledger = dir
        .open_with(&KeySource::Default, Startup::Snapshot)
        .unwrap();
    assert_eq!(*ledger.projections(), before);
    process::wait_until("the startup check passes", || {
        ledger.startup_check() == StartupCheck::Passed
    });

    // Questions about archived events say so, naming the file; what remains still answers.
    let store = ledger.store().clone();
    let err = keys_as_of(store.as_ref(), inside, ledger.durable_seq()).unwrap_err();
    assert_eq!(err.code(), "archived");
    assert!(err.to_string().contains(&first_file), "{err}");
    let (state, _) = keys_as_of(store.as_ref(), second_cut, ledger.durable_seq()).unwrap();
    assert_eq!(
        state.len(),
        2,
        "both keys, the early one from the archived base"
    );
    let later_uses = tmp.path().join("later.jsonl");
    drop((store, ledger));
    let (code, out) = run_cli(
        &data,
        &[
            "audit",
            "export",
            "--from",
            &inside.to_string(),
            "-o",
            "/dev/null",
        ],
    );
    assert_ne!(code, 0);
    assert!(out.contains("archived"), "{out}");
    ok(
        &data,
        &[
            "audit",
            "export",
            "--from",
            &second_cut.to_string(),
            "-o",
            &later_uses.display().to_string(),
        ],
    );
    ok(
        &data,
        &[
            "audit",
            "verify-export",
            &later_uses.display().to_string(),
            "--public-key",
            &public,
        ],
    );
    ok(&data, &["audit", "prove", "4000"]);
    let (code, out) = run_cli(&data, &["audit", "prove", "100"]);
    assert_ne!(code, 0, "{out}");

    // New events chain on; a second archive continues from the first.
    let ledger = dir.open(&KeySource::Default).unwrap();
    uses(&ledger, Uuid::from_u128(9), 500);
    drop(ledger);
    let second = tmp.path().join("archive-2.jsonl").display().to_string();
    let out = ok(
        &data,
        &[
            "audit",
            "archive",
            "--before",
            &second_cut.to_string(),
            "-o",
            &second,
        ],
    );
    assert!(out.contains("archived events 2049..=5120"), "{out}");
    ok(
        &data,
        &["audit", "verify-export", &second, "--public-key", &public],
    );
    ok(&data, &["audit", "verify"]);
    let (code, out) = run_cli(
        &data,
        &[
            "audit",
            "archive",
            "--before",
            &second_cut.to_string(),
            "-o",
            &tmp.path().join("again").display().to_string(),
        ],
    );
    assert_ne!(code, 0);
    assert!(out.contains("nothing to archive"), "{out}");
    let ledger = dir.open(&KeySource::Default).unwrap();
    assert_eq!(
        ledger.projections().keys,
        before.keys,
        "no key changed since"
    );
    let rebuilt = replay_log(ledger.store().as_ref(), None, None).unwrap();
    assert_eq!(*ledger.projections(), rebuilt.projections);
}
