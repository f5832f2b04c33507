//! A writer killed at each step of sealing a block (frames written, frames fsynced, sled's transaction applied
//! but not flushed), or of writing a tail chunk to the journal, leaves a ledger that opens, verifies, and goes on: the crash is injected with
//! `KEYLEDGER_FAILPOINT` in a child process that runs this file's own writer test (docs/FORMAT.md "Segments").

mod common;

use keyledger::datadir::{DataDir, KeySource};
use keyledger::store::{LogStore, SledStore, BLOCK_EVENTS};
use std::path::Path;

/// Where the child writes; unset, the writer test uses a temporary directory of its own.
const CHILD_DIR: &str = "KEYLEDGER_CRASH_TEST_DIR";
const WRITER_TEST: &str = "a_writer_seals_four_blocks_and_verifies";
/// Uses per batch: a seal happens every ~10 batches, and never on a batch boundary of the block.
const PER_BATCH: usize = 100;
const BATCHES: usize = 42;

fn write_uses(root: &Path, batches: usize) {
    let dir = DataDir::new(root);
    let ledger = if dir.is_initialized() {
        dir.open(&KeySource::Default).expect("the writer opens")
    } else {
        dir.init(None).expect("init").0
    };
    common::append_uses(&ledger, None, batches, PER_BATCH);
}

#[test]
fn a_writer_seals_four_blocks_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::env::var_os(CHILD_DIR).map_or_else(|| tmp.path().join("data"), Into::into);
    write_uses(&root, BATCHES);
    // Reached only without a failpoint (or in a child whose failpoint lies past the run).
    let (code, text) = common::run_cli(&root, &["audit", "verify"]);
    assert_eq!(code, 0, "{text}");
    let store = SledStore::open(&root.join("log")).unwrap();
    assert_eq!(
        store.unit_counts().0 as u64,
        (BATCHES * PER_BATCH) as u64 / BLOCK_EVENTS
    );
}

/// Runs the writer test in a child that aborts at the `nth` time it reaches `step`; returns the data directory.
fn killed_at(step: &str, nth: u32, tmp: &Path) -> std::path::PathBuf {
    let root = tmp.join("data");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", WRITER_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, &root)
        .env("KEYLEDGER_FAILPOINT", format!("{step}:{nth}"))
        .env_remove("KEYLEDGER_SIGNING_KEY")
        .env_remove("KEYLEDGER_SIGNING_KEY_FILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        !status.success() && status.code().is_none(),
        "the child must die by a signal at {step}:{nth}: {status}"
    );
    root
}

/// After the kill: the ledger verifies, its head lies within the seal's batch, a new writer finishes the run,
/// and everything verifies again with every block sealed.
/// `uncommitted`: the kill left frames in a segment that sled never recorded.
fn survives(step: &str, nth: u32, uncommitted: bool) {
    let uncommitted = uncommitted && step.starts_with("seal-");
    let tmp = tempfile::tempdir().unwrap();
    let root = killed_at(step, nth, tmp.path());
    // Opening never cuts or removes segment bytes, committed or not.
    let before = segment_bytes(&root);
    drop(SledStore::open(&root.join("log")).unwrap());
    assert_eq!(
        segment_bytes(&root),
        before,
        "opening changed the segments at {step}:{nth}"
    );
    let (code, text) = common::run_cli(&root, &["audit", "verify"]);
    assert_eq!(code, 0, "after a kill at {step}:{nth}: {text}");
    let head = {
        let store = SledStore::open(&root.join("log")).unwrap();
        let head = store.head().unwrap().unwrap().seq;
        let seqs: Vec<u64> = store.scan(1, u64::MAX).map(|r| r.unwrap().seq).collect();
        assert_eq!(seqs, (1..=head).collect::<Vec<_>>(), "{step}:{nth}");
        head
    };
    // The genesis plus whole batches: the batch whose seal was cut is either all there or not at all.
    assert_eq!(
        (head - 1) % PER_BATCH as u64,
        0,
        "head {head} at {step}:{nth}"
    );
    // A seal step's nth is the nth seal; a journal step's the nth commit (init's first, one per batch after).
    let sealing_batch = match step.starts_with("seal-") {
        true => u64::from(nth) * BLOCK_EVENTS / PER_BATCH as u64,
        false => u64::from(nth).saturating_sub(2),
    };
    assert!(
        (head - 1) / PER_BATCH as u64 >= sealing_batch.saturating_sub(1),
        "head {head} lost batches before the seal at {step}:{nth}"
    );
    let done = ((head - 1) / PER_BATCH as u64) as usize;
    write_uses(&root, BATCHES - done);
    let (code, text) = common::run_cli(&root, &["audit", "verify"]);
    assert_eq!(code, 0, "after resuming from {step}:{nth}: {text}");
    if uncommitted {
        // The frames the kill left uncommitted stay in their segment; the blocks sealed after go to a new one.
        assert!(segment_files(&root) >= 2, "at {step}:{nth}");
    }
    let store = SledStore::open(&root.join("log")).unwrap();
    assert_eq!(
        store.head().unwrap().unwrap().seq,
        1 + (BATCHES * PER_BATCH) as u64
    );
    assert_eq!(
        store.unit_counts().0 as u64,
        (BATCHES * PER_BATCH) as u64 / BLOCK_EVENTS
    );
}

fn segment_files(root: &Path) -> usize {
    std::fs::read_dir(root.join("log").join("segments"))
        .unwrap()
        .count()
}

fn segment_bytes(root: &Path) -> u64 {
    std::fs::read_dir(root.join("log").join("segments"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_kill_after_the_first_seals_frames_are_written_loses_nothing_committed() {
    survives("seal-frames-written", 1, true);
}

#[test]
fn a_kill_after_a_seals_frames_are_fsynced_but_not_recorded_in_sled_loses_nothing_committed() {
    survives("seal-frames-synced", 1, true);
    survives("seal-frames-synced", 3, true);
}

#[test]
fn a_kill_while_a_tail_chunk_is_written_to_the_journal_loses_nothing_committed() {
    // Batch 4 (no seal), batch 11 (the one that seals block 0), batch 31 (seals block 2).
    for nth in [5, 12, 32] {
        survives("journal-frames-written", nth, true);
    }
}

#[test]
fn a_kill_after_a_tail_chunk_is_fsynced_but_not_recorded_in_sled_loses_nothing_committed() {
    for nth in [5, 12] {
        survives("journal-frames-synced", nth, true);
    }
}

#[test]
fn a_kill_after_sleds_transaction_before_its_flush_loses_nothing_committed() {
    survives("seal-committed", 1, false);
    survives("seal-committed", 2, false);
}
