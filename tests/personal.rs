//! Committed personal fields (issue 31, in progress): with `[personal] commit = true`, a `key.used` event's body
//! holds commitments instead of the caller's address and user agent, and the values are sealed beside it under
//! their day's key.

mod common;

use keyledger::datadir::{DataDir, KeySource};
use keyledger::event::personal_fields::{reveal, Openings};
use keyledger::event::{Event, EventData};
use keyledger::personal::vault::Vault;
use keyledger::store::personal_side;

#[test]
fn a_committed_use_keeps_its_address_out_of_the_body_and_sealed_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    std::fs::create_dir_all(dir.root()).unwrap();
    std::fs::write(dir.config_path(), "[personal]\ncommit = true\n").unwrap();
    let (ledger, _) = dir.init(None).unwrap();
    drop(ledger);
    let ledger = dir.open(&KeySource::Default).unwrap();
    common::append_uses(&ledger, Some(uuid::Uuid::from_u128(5)), 3, 4);
    drop(ledger);

    let store = dir.open_store().unwrap();
    let vault = Vault::new(dir.root().join("personal"));
    let mut committed = 0;
    for record in store.scan(1, u64::MAX) {
        let record = record.unwrap();
        let text = String::from_utf8_lossy(&record.body).to_string();
        assert!(!text.contains("198.51.100.7"), "seq {}: {text}", record.seq);
        let mut event = Event::decode(&record.body).unwrap();
        let EventData::KeyUsed(used) = &mut event.data else {
            continue;
        };
        assert!(used.committed.is_some() && used.ip.is_none());
        let sealed = personal_side::sealed_for(store.as_ref(), record.seq)
            .unwrap()
            .expect("a sealed opening beside every committed use");
        let plain = vault
            .open(&record.seq.to_be_bytes(), &sealed)
            .unwrap()
            .expect("its day key is there");
        let openings: Openings = serde_json::from_slice(&plain).unwrap();
        reveal(used, &openings).unwrap();
        assert_eq!(used.ip.as_deref(), Some("198.51.100.7"));
        committed += 1;
    }
    assert_eq!(committed, 12);
    drop(store);
    let (code, out) = common::run_cli(dir.root(), &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
}
