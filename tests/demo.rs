//! The demo does what it says: the leaked key is found, revoked and refused afterwards, stragglers and the
//! probing burst are on the record, and the chain verifies.

#[path = "common/skip.rs"]
mod skip;

use keyledger::cli::demo::run_demo;
use keyledger::event::VerifyCode;

#[test]
fn demo_backs_every_claim_it_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("demo");
    let mut output = Vec::new();
    let summary = run_demo(&root, 3_000, &mut output).unwrap();
    let text = String::from_utf8(output).unwrap();
    assert!(summary.leaked_key_revoked);
    assert_eq!(summary.leaked_after_revoke, Some(VerifyCode::Revoked));
    assert!(
        summary.leaked_distinct_ips >= 30,
        "the leaked key was used from many IPs: {}",
        summary.leaked_distinct_ips
    );
    assert!(summary.stragglers > 0);
    assert!(summary.probing_attempts >= 50);
    assert!(summary.chain_verified);
    assert!(
        summary.export_verified,
        "the exported incident window verified offline"
    );
    for rule in ["distinct_ips", "dead_key_use", "probing"] {
        assert!(
            summary.anomaly_rules.iter().any(|r| r == rule),
            "{rule} not raised: {:?}",
            summary.anomaly_rules
        );
    }
    assert!(
        summary.leaked_auto_suspended,
        "the leaked key was suspended by the distinct-IP rule"
    );
    assert!(summary.events as usize > summary.uses);
    assert!(
        text.contains("the very next use of that secret: revoked"),
        "{text}"
    );
    assert!(text.contains("OK:"), "{text}");
    // Issue 15: the leaked key's alerts reached the tour's webhook receiver, signed.
    for kind in ["anomaly.detected", "key.suspended", "key.revoked"] {
        assert!(
            summary.leaked_alerts.iter().any(|k| k == kind),
            "{kind} alert missing: {:?}\n{text}",
            summary.leaked_alerts
        );
    }
    // Issue 17: with nginx installed the tour puts it in front of a service; without, it says it skipped.
    match keyledger::cli::demo::nginx::find_binary() {
        Some(_) => {
            let run = summary.gateway.expect("the gateway step ran");
            assert_eq!(
                (run.allowed, run.wrong_scope, run.revoked, run.recorded),
                (200, 403, 401, 3)
            );
            assert!(
                text.contains("X-Keyledger-Key-Name: storefront-web"),
                "{text}"
            );
        }
        None => {
            skip::skip(
                "nginx",
                "nginx is not installed: the tour's gateway step was skipped",
            );
            assert!(text.contains("skipped: nginx is not installed"), "{text}");
        }
    }
    // Issue 29: the writer's checkpoints were cosigned by the tour's witness; a rewritten copy of the ledger (same
    // key and origin) was refused by the witness and reported as a fork by a monitor that had verified the ledger.
    assert!(
        summary.witnessed_size.is_some_and(|size| size > 0),
        "{text}"
    );
    match &summary.fork {
        Some(fork) => {
            assert!(fork.forged > fork.verified, "{fork:?}");
            assert!(fork.witness_answer.starts_with("conflict: "), "{fork:?}");
            assert!(
                fork.witness_answer
                    .contains("refused the consistency proof"),
                "the witness judged the other history itself: {fork:?}"
            );
            let finding = fork.finding.as_deref().unwrap_or_default();
            assert!(finding.starts_with("monitor: FORK at size"), "{fork:?}");
        }
        None => assert!(
            std::env::var("KEYLEDGER_TEST_PG").is_ok(),
            "the rewritten copy was skipped on the embedded store: {text}"
        ),
    }
    // Every side entry the tour left (tiles, checkpoints, rollups, snapshots, alert deliveries...) lies in a
    // namespace of the one table, store::side_keys.
    let store = keyledger::datadir::DataDir::new(&root)
        .open_store()
        .unwrap();
    let mut namespaces = std::collections::BTreeSet::new();
    for entry in store.scan_side(b"") {
        let (key, _) = entry.unwrap();
        let namespace = keyledger::store::side_keys::namespace_of(&key).unwrap_or_else(|| {
            panic!(
                "side entry {:?} lies outside store::side_keys",
                String::from_utf8_lossy(&key)
            )
        });
        namespaces.insert(namespace.owner);
    }
    for owner in [
        "audit::tiles",
        "audit::checkpoint",
        "audit::cosigned",
        "projection::rollup",
        "alerts::deliveries",
    ] {
        assert!(
            namespaces.contains(owner),
            "{owner} kept nothing: {namespaces:?}"
        );
    }
    // The ledger closed while the witness still answered: its closing checkpoint is cosigned too.
    let (newest, _) = keyledger::audit::export::newest_stored_checkpoint(store.as_ref()).unwrap();
    let cosigned = keyledger::audit::cosigned::cosigned_notes(store.as_ref()).unwrap();
    assert_eq!(cosigned.last().map(|(size, _)| *size), Some(newest.size));
    drop(store);
    // A second demo into the same directory is refused rather than mixing ledgers.
    assert!(run_demo(&root, 10, &mut Vec::new()).is_err());
}

#[test]
fn a_missing_dependency_is_a_skip_on_a_bare_machine_and_a_failure_where_all_are_required() {
    skip::skip_unless(false, "nginx", "not installed");
    let failed = std::panic::catch_unwind(|| skip::skip_unless(true, "nginx", "not installed"));
    let message = failed.expect_err("a required dependency that is missing fails the test");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.contains("nginx is required here (KEYLEDGER_REQUIRE_ALL=1) but not installed"),
        "{text}"
    );
}
