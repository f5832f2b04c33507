//! Many tasks appending at once give a gap-free, verifying chain holding every event exactly once.

mod common;

use keyledger::audit::{verify_log, VerifyRange};
use keyledger::event::{Actor, Event, EventData};
use keyledger::ledger::AppendEvents;
use std::collections::HashSet;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_get_one_gap_free_verifying_chain() {
    const TASKS: usize = 64;
    const PER_TASK: usize = 40;
    let (_tmp, dir, ledger) = common::fresh_ledger();
    let ledger = Arc::new(ledger);
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let ledger = ledger.clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..PER_TASK {
                let events = vec![common::used(None, &format!("task{task}-{n}"))];
                let got = ledger
                    .submit(AppendEvents {
                        actor: Actor::System,
                        request_id: None,
                        events,
                    })
                    .await
                    .unwrap();
                seqs.extend(got);
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for handle in handles {
        seqs.extend(handle.await.unwrap());
    }
    seqs.sort_unstable();
    let expected: Vec<u64> = (2..2 + (TASKS * PER_TASK) as u64).collect();
    assert_eq!(seqs, expected, "every append got its own seq, with no gap");
    assert_eq!(ledger.durable_seq(), *expected.last().unwrap());

    let report = verify_log(
        ledger.store().as_ref(),
        dir.anchor_public_key().unwrap(),
        VerifyRange::default(),
        None,
    )
    .unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    let mut tags = HashSet::new();
    for record in ledger.store().scan(2, u64::MAX) {
        let event = Event::decode(&record.unwrap().body).unwrap();
        let EventData::KeyUsed(used) = event.data else {
            panic!("unexpected event")
        };
        assert!(
            tags.insert(used.user_agent.unwrap()),
            "an event was written twice"
        );
    }
    assert_eq!(tags.len(), TASKS * PER_TASK);
    assert!(
        ledger
            .metrics()
            .largest_batch
            .load(std::sync::atomic::Ordering::Relaxed)
            > 1,
        "appends were group-committed"
    );
}

/// Large batches are signed on a pool of the writer's own: callers blocked in `submit_blocking` on every thread
/// of rayon's global pool used to leave it none, and the ledger hung.
#[test]
fn large_appends_from_every_rayon_thread_do_not_hang_the_writer() {
    use rayon::prelude::*;
    let (_tmp, _dir, ledger) = common::fresh_ledger();
    let ledger = std::sync::Arc::new(ledger);
    let callers = rayon::current_num_threads() * 2;
    let (done, finished) = std::sync::mpsc::channel();
    let appending = ledger.clone();
    std::thread::spawn(move || {
        (0..callers).into_par_iter().for_each(|caller| {
            let events = (0..300)
                .map(|n| common::used(None, &format!("c{caller}-{n}")))
                .collect();
            appending
                .submit_blocking(keyledger::ledger::AppendEvents {
                    actor: keyledger::event::Actor::System,
                    request_id: None,
                    events,
                })
                .expect("append");
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the appends finish (the writer is not starved of signing threads)");
    assert_eq!(ledger.durable_seq(), 1 + 300 * callers as u64);
}
