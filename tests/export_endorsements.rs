//! FORMAT.md §9: every `ledger.signer_rotated` event outside an export's window must be carried as an endorsement,
//! also when it is the boundary event itself (issue 28, case 13). A window between two rotations whose
//! endorsement lines were removed is refused, naming the missing endorsement.

mod common;

use keyledger::audit::export::{write_export, ExportRequest};
use keyledger::audit::verify_export::verify_export;
use keyledger::chain::LedgerSigner;
use keyledger::event::{Actor, EventData, SignerRotated};
use keyledger::ledger::{AppendEvents, Ledger};
use keyledger::store::SledStore;
use keyledger::time::LedgerTime;
use std::sync::Arc;

fn submit(ledger: &Ledger, events: Vec<EventData>) {
    ledger
        .submit_blocking(AppendEvents {
            actor: Actor::System,
            request_id: None,
            events,
        })
        .unwrap();
}

fn uses(ledger: &Ledger, tag: &str, n: usize) {
    submit(
        ledger,
        (0..n)
            .map(|i| common::used(None, &format!("{tag}-{i}")))
            .collect(),
    );
}

/// Rotates the signer of `ledger` (closing it) and reopens the log with the new key.
fn rotate(ledger: Ledger, dir: &keyledger::datadir::DataDir) -> Ledger {
    let new = LedgerSigner::generate();
    submit(
        &ledger,
        vec![EventData::SignerRotated(SignerRotated {
            new_public_key: new.public_key_hex(),
            new_signer_id: new.id().to_string(),
            reason: None,
        })],
    );
    drop(ledger);
    let store = Arc::new(SledStore::open(&dir.db_path()).unwrap());
    Ledger::open(
        store,
        LedgerSigner::from_seed_hex(&new.seed_hex().unwrap()).unwrap(),
    )
    .unwrap()
}

#[test]
fn a_window_between_two_rotations_needs_both_endorsements() {
    let (_tmp, dir, ledger) = common::fresh_ledger();
    uses(&ledger, "first-key", 5);
    let ledger = rotate(ledger, &dir);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let from = LedgerTime::now();
    uses(&ledger, "second-key", 7);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let to = LedgerTime::now();
    let ledger = rotate(ledger, &dir);
    uses(&ledger, "third-key", 3);
    let identity = dir.identity().unwrap();
    let (checkpoint, note) = ledger.checkpoint_blocking().unwrap();
    let mut out = Vec::new();
    let request = ExportRequest {
        from: Some(from),
        to: Some(to),
        ..Default::default()
    };
    write_export(
        ledger.store().as_ref(),
        &request,
        &checkpoint,
        &note,
        &identity.public_key,
        &mut out,
        None,
    )
    .unwrap();
    let anchor = dir.anchor_public_key().unwrap();
    let text = String::from_utf8(out).unwrap();
    let genuine = verify_export(text.as_bytes(), anchor, None).unwrap();
    assert_eq!(genuine.events, 7, "the window is the second key's events");
    let boundaries = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"boundary\""))
        .count();
    let endorsements = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"endorsement\""))
        .count();
    assert_eq!((boundaries, endorsements), (2, 2), "{text}");

    for dropped in ["endorsement", "both"] {
        let mut seen = 0;
        let forged: String = text
            .split_inclusive('\n')
            .filter(|line| {
                if !line.contains("\"kind\":\"endorsement\"") {
                    return true;
                }
                seen += 1;
                dropped == "endorsement" && seen == 2
            })
            .collect();
        let failure = verify_export(forged.as_bytes(), anchor, None)
            .expect_err("a window without its endorsements is refused");
        assert!(
            failure.to_string().contains("endorsement"),
            "{dropped}: {failure}"
        );
    }
}
