//! Integrity that cannot be fooled (issue 10): a wiped, cut or foreign log is refused; every writer path stores
//! checkpoints; a kept anchor catches truncation; reads refuse forged records; corruption is reported, never a
//! panic; signer rotation survives a crash; a failing store stops the ledger with nothing acknowledged lost.

mod common;

use keyledger::audit::{anchor, anchor_check, verify_log, VerifyRange};
use keyledger::chain::LedgerSigner;
use keyledger::datadir::{rotation, DataDir, KeySource};
use keyledger::event::{Actor, EventData, SignerRotated};
use keyledger::ledger::{AppendEvents, Ledger};
use keyledger::store::{
    AppendBatch, Head, LogStore, SledStore, StoreError, StoreIter, StoreResult, StoredRecord,
};
use keyledger::time::LedgerTime;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

fn cli(data: &Path, args: &[&str]) -> (i32, String) {
    common::run_cli(data, args)
}

fn append_uses(ledger: &Ledger, n: usize, per_batch: usize) {
    for start in (0..n).step_by(per_batch) {
        let events = (start..(start + per_batch).min(n))
            .map(|i| common::used(Some(Uuid::from_u128(i as u128 % 5 + 1)), &format!("u{i}")))
            .collect();
        ledger
            .submit_blocking(AppendEvents {
                actor: Actor::System,
                request_id: None,
                events,
            })
            .expect("append");
    }
}

/// A ledger whose `keyledger.toml` sends every checkpoint to an anchor file outside the data directory.
fn anchored_ledger(events: usize) -> (tempfile::TempDir, DataDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let anchor_file = tmp.path().join("elsewhere.anchors");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("keyledger.toml"),
        format!("[anchor]\nfile = {:?}\n", anchor_file.display().to_string()),
    )
    .unwrap();
    let dir = DataDir::new(&root);
    let (ledger, _) = dir.init(None).unwrap();
    append_uses(&ledger, events, 37);
    drop(ledger);
    (tmp, dir, anchor_file)
}

#[test]
fn wiped_log_is_refused_and_nothing_appends_to_it() {
    let (tmp, dir) = common::ledger_with_uses(5, &[Uuid::from_u128(1)]);
    std::fs::remove_dir_all(dir.db_path()).unwrap();
    let (code, text) = cli(dir.root(), &["audit", "verify"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("missing"), "{text}");
    let (code, text) = cli(
        dir.root(),
        &[
            "key", "create", "--name", "x", "--env", "dev", "--owner", "o", "--scope", "a",
        ],
    );
    assert_eq!(code, 3, "no command appends to a wiped log: {text}");
    // An empty log (the directory recreated) is refused the same way.
    drop(SledStore::open(&dir.db_path()).unwrap());
    let (code, text) = cli(dir.root(), &["audit", "verify"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("no event 1"), "{text}");
    drop(tmp);
}

#[test]
fn a_replaced_public_key_or_foreign_log_is_found_at_open() {
    let (tmp, dir) = common::ledger_with_uses(3, &[Uuid::from_u128(1)]);
    let (_other_tmp, other, _) = anchored_ledger(3);
    std::fs::write(
        dir.public_key_path(),
        format!("{}\n", LedgerSigner::generate().public_key_hex()),
    )
    .unwrap();
    let err = dir
        .open(&KeySource::Default)
        .err()
        .expect("replaced signing.pub");
    assert_eq!(err.code(), "log_corrupt", "{err}");
    // Restore the key file, then put another ledger's log in place.
    let identity = dir.identity().unwrap();
    std::fs::write(dir.public_key_path(), format!("{}\n", identity.public_key)).unwrap();
    std::fs::remove_dir_all(dir.db_path()).unwrap();
    common::copy_dir(&other.db_path(), &dir.db_path());
    let (code, text) = cli(dir.root(), &["events"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("genesis"), "{text}");
    drop(tmp);
}

#[test]
fn cli_and_api_written_ledgers_carry_checkpoints() {
    // A ledger written through the library's writer (what `serve` uses): 1,024-multiples plus the shutdown one.
    let (tmp, dir) = common::ledger_with_uses(2_100, &[Uuid::from_u128(1)]);
    let store = dir.open_store().unwrap();
    let report = common::assert_verifies(store.as_ref(), &dir);
    assert_eq!(
        report.checkpoints_checked, 3,
        "1024, 2048 and the one at shutdown (2101)"
    );
    drop(store);
    // A ledger written by CLI commands alone: each command's clean shutdown leaves a checkpoint of its head.
    let root = tmp.path().join("cli");
    let (code, text) = cli(&root, &["init"]);
    assert_eq!(code, 0, "{text}");
    for name in ["a", "b"] {
        let (code, text) = cli(
            &root,
            &[
                "key", "create", "--name", name, "--env", "dev", "--owner", "o", "--scope", "s",
            ],
        );
        assert_eq!(code, 0, "{text}");
    }
    let (code, text) = cli(&root, &["audit", "verify", "--json"]);
    assert_eq!(code, 0, "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&text[..text.rfind('}').unwrap() + 1]).unwrap();
    assert!(
        report["checkpoints_checked"].as_u64().unwrap() >= 1,
        "{text}"
    );
    // Only the newest checkpoint that is not a multiple of 1,024 is kept.
    let store = DataDir::new(&root).open_store().unwrap();
    assert_eq!(
        keyledger::audit::checkpoint::stored_checkpoints(store.as_ref())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn read_only_commands_refuse_a_forged_record() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    assert_eq!(cli(&root, &["init"]).0, 0);
    let (code, text) = cli(
        &root,
        &[
            "key", "create", "--name", "svc", "--env", "dev", "--owner", "o", "--scope", "s",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{text}");
    let dir = DataDir::new(&root);
    let store = SledStore::open(&dir.db_path()).unwrap();
    // Find the key.created of the bootstrap admin and swap its secret_sha256 (sled's own checksums stay valid).
    let (seq, mut record) = (1..=store.head().unwrap().unwrap().seq)
        .map(|seq| (seq, store.get(seq).unwrap().unwrap()))
        .find(|(_, r)| String::from_utf8_lossy(&r.body).contains("\"key.created\""))
        .expect("a key.created event");
    let body = String::from_utf8(record.body.clone()).unwrap();
    let at = body.find("\"secret_sha256\":\"").unwrap() + 17;
    let mut forged = body.into_bytes();
    forged[at] = if forged[at] == b'a' { b'b' } else { b'a' };
    record.body = forged;
    store.tamper_replace_record(&record).unwrap();
    drop(store);
    let key_id = {
        let value: serde_json::Value =
            serde_json::from_str(text.lines().find(|l| l.starts_with('{')).unwrap_or("{}"))
                .unwrap_or_default();
        value["key"]["id"]
            .as_str()
            .or(value["id"].as_str())
            .unwrap_or("00000000-0000-0000-0000-000000000000")
            .to_string()
    };
    for args in [vec!["key", "list"], vec!["events"], vec!["audit", "verify"]] {
        let (code, out) = cli(&root, &args);
        assert_eq!(code, 3, "{args:?} must refuse: {out}");
        assert!(
            out.contains(&format!("seq {seq}")),
            "{args:?} names the seq: {out}"
        );
        assert!(
            !out.contains("\"secret_sha256\""),
            "{args:?} shows no forged data: {out}"
        );
    }
    let (code, out) = cli(&root, &["history", &key_id]);
    assert_ne!(code, 0, "{out}");
}

#[test]
fn truncation_sweep_with_an_anchor_has_no_silent_loss_and_no_panic() {
    let (tmp, dir, anchor_file) = anchored_ledger(3_000);
    let kept = std::fs::read_to_string(&anchor_file).unwrap();
    assert!(
        anchor::split_notes(&kept).len() >= 3,
        "the writer anchored its checkpoints"
    );
    let identity = dir.identity().unwrap();
    let db = dir.db_path().join("db");
    let size = std::fs::metadata(&db).unwrap().len();
    // Read from a copy: opening sled writes to its files, and the sweep cuts copies of them as they are.
    let head = {
        let probe = tmp.path().join("head-probe");
        common::copy_dir(dir.root(), &probe);
        let head = DataDir::new(&probe)
            .open_store()
            .unwrap()
            .head()
            .unwrap()
            .unwrap()
            .seq;
        std::fs::remove_dir_all(&probe).unwrap();
        head
    };
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    for cut in 0..57u64 {
        let percent = 5 + cut * 90 / 56;
        let copy_root = tmp.path().join(format!("cut-{cut}"));
        common::copy_dir(dir.root(), &copy_root);
        let copy = DataDir::new(&copy_root);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.db_path().join("db"))
            .unwrap();
        // Off sled's 512 KiB segment boundaries: a cut exactly on one can remove only segments that no longer
        // hold live data (the log is then whole, and verifies), which happens with a small log.
        file.set_len(size * percent / 100 + 4_099).unwrap();
        drop(file);
        let verdict =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match copy.open_store() {
                Err(e) => {
                    assert_eq!(e.code(), "log_corrupt", "cut at {percent}%: {e}");
                    "refused at open"
                }
                Ok(store) => {
                    let report = verify_log(
                        store.as_ref(),
                        copy.anchor_public_key().unwrap(),
                        VerifyRange::default(),
                        None,
                    )
                    .unwrap();
                    if !report.is_ok() {
                        return "verify found it";
                    }
                    match anchor_check::check_log_against(
                        store.as_ref(),
                        copy.anchor_public_key().unwrap(),
                        &identity.origin,
                        &kept,
                    ) {
                        Err(e) => {
                            assert_eq!(e.code(), "log_corrupt");
                            "the anchor caught it"
                        }
                        // Every event is there: the cut took only derived entries of the last write (the
                        // shutdown's checkpoint of the open hour's usage cells), which the next open rebuilds.
                        Ok(_) if store.head().unwrap().map(|h| h.seq) == Some(head) => "whole",
                        Ok(_) => "silent loss",
                    }
                }
            }))
            .unwrap_or("panic");
        *outcomes.entry(verdict).or_default() += 1;
        std::fs::remove_dir_all(&copy_root).unwrap();
    }
    eprintln!("truncation sweep: {outcomes:?}");
    assert_eq!(outcomes.get("silent loss"), None, "{outcomes:?}");
    assert_eq!(outcomes.get("panic"), None, "{outcomes:?}");
}

#[test]
fn a_truncated_panicking_store_is_exit_3_from_the_cli() {
    let (tmp, dir, anchor_file) = anchored_ledger(3_000);
    let db = dir.db_path().join("db");
    let size = std::fs::metadata(&db).unwrap().len();
    let head = SledStore::open(&dir.db_path())
        .unwrap()
        .head()
        .unwrap()
        .unwrap()
        .seq;
    let whole = format!("events 1..={head} verify");
    let mut codes = Vec::new();
    for percent in [10, 30, 50, 70, 90] {
        let root = tmp.path().join(format!("t{percent}"));
        common::copy_dir(dir.root(), &root);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(root.join("log/db"))
            .unwrap();
        // Off sled's 512 KiB segment boundaries: a cut exactly on one can remove only segments that no longer
        // hold live data (the log is then whole, and verifies), which happens with a small log.
        file.set_len(size * percent / 100 + 4_099).unwrap();
        drop(file);
        let (code, text) = cli(
            &root,
            &["audit", "verify", "--anchor", anchor_file.to_str().unwrap()],
        );
        assert!(!text.contains("panicked"), "{percent}%: {text}");
        // sled's file holds the indexes and the tail's places, not the events (the journal and the segments
        // do): a cut that removes only space sled no longer uses leaves the whole log, which verifies.
        assert!(
            code == 3 || (code == 0 && text.contains(&whole)),
            "{percent}%: exit {code}: {text}"
        );
        codes.push(code);
    }
    assert!(
        codes.iter().filter(|c| **c == 3).count() >= 3,
        "most cuts are exit 3: {codes:?}"
    );
}

#[test]
fn an_anchor_catches_a_tail_cut_with_its_checkpoints() {
    let (tmp, dir, anchor_file) = anchored_ledger(1_500);
    let store = SledStore::open(&dir.db_path()).unwrap();
    let head = store.head().unwrap().unwrap().seq;
    // Cut the last 600 events the careful way: records and a rewritten head (the cut is inside sealed block 0,
    // events 1..=1024), then the stored checkpoints above the cut.
    let keep = head - 600;
    store.tamper_cut_after(keep).unwrap();
    assert_eq!(store.head().unwrap().unwrap().seq, keep);
    assert!(store.get(keep + 1).unwrap().is_none());
    let above: Vec<Vec<u8>> = keyledger::audit::checkpoint::stored_checkpoints(&store)
        .unwrap()
        .into_iter()
        .filter(|(size, _)| *size > keep)
        .map(|(size, _)| keyledger::audit::checkpoint::checkpoint_key(size))
        .collect();
    assert!(!above.is_empty());
    store.remove_side(&above).unwrap();
    // The careful way also removes the rollups, as if the log predated them: the packed rollups of a closed hour
    // would still count the cut events (the open hour's, where these events are, live only in the writer's
    // memory).
    let rollups: Vec<Vec<u8>> = store
        .scan_side(b"rollup/")
        .map(|entry| entry.unwrap().0)
        .collect();
    store.remove_side(&rollups).unwrap();
    drop(store);
    let (code, text) = cli(dir.root(), &["audit", "verify"]);
    assert_eq!(
        code, 0,
        "without an anchor this cut is invisible (documented): {text}"
    );
    let (code, text) = cli(
        dir.root(),
        &["audit", "verify", "--anchor", anchor_file.to_str().unwrap()],
    );
    assert_eq!(code, 3, "{text}");
    assert!(text.contains(&format!("holds {keep} events")), "{text}");
    drop(tmp);
}

#[test]
fn a_rotation_batched_with_other_events_leaves_a_ledger_that_reopens() {
    let (tmp, dir, ledger) = common::fresh_ledger();
    let new = LedgerSigner::generate();
    let outcomes: Vec<bool> = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..16)
            .map(|i| {
                let ledger = &ledger;
                let new = &new;
                scope.spawn(move || {
                    let data = if i == 8 {
                        EventData::SignerRotated(SignerRotated {
                            new_public_key: new.public_key_hex(),
                            new_signer_id: new.id().to_string(),
                            reason: None,
                        })
                    } else {
                        common::used(None, &format!("t{i}"))
                    };
                    (0..20)
                        .map(|_| {
                            ledger
                                .submit_blocking(AppendEvents {
                                    actor: Actor::System,
                                    request_id: None,
                                    events: vec![data.clone()],
                                })
                                .is_ok()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        senders
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect()
    });
    assert!(
        outcomes.iter().any(|ok| !ok),
        "commands after the rotation are refused"
    );
    drop(ledger);
    let store: Arc<dyn LogStore> = Arc::new(SledStore::open(&dir.db_path()).unwrap());
    let reopened = Ledger::open(
        store,
        LedgerSigner::from_seed_hex(&new.seed_hex().unwrap()).unwrap(),
    )
    .expect("no event after the rotation was signed by the retired key");
    common::assert_verifies(reopened.store().as_ref(), &dir);
    drop(tmp);
}

#[test]
fn a_crash_inside_rotate_signer_leaves_a_ledger_that_opens() {
    let (tmp, dir, ledger) = common::fresh_ledger();
    append_uses(&ledger, 10, 5);
    drop(ledger);
    // Crash after the new key is on disk but before the rotation committed: the old key stays in force.
    drop(rotation::prepare(&dir).unwrap());
    let ledger = dir
        .open(&KeySource::Default)
        .expect("opens with the old key");
    assert!(
        !dir.root().join("signing.key.next").exists(),
        "the stale pending key was discarded"
    );
    // Crash after the rotation committed but before the key files moved.
    let new = rotation::prepare(&dir).unwrap();
    rotation::commit(&ledger, &new, None).unwrap();
    drop(ledger);
    let ledger = dir
        .open(&KeySource::Default)
        .expect("opens with the pending new key");
    assert_eq!(ledger.signer_public_hex(), new.public_key_hex());
    append_uses(&ledger, 3, 3);
    drop(ledger);
    assert_eq!(
        dir.load_signer(&KeySource::Default)
            .unwrap()
            .public_key_hex(),
        new.public_key_hex()
    );
    let (code, text) = cli(dir.root(), &["audit", "verify"]);
    assert_eq!(code, 0, "{text}");
    drop(tmp);
}

/// A store that fails its Nth `write_batch` or `sync`, to drive the writer's fail-stop path.
struct FaultyStore {
    inner: SledStore,
    writes: AtomicU64,
    syncs: AtomicU64,
    fail_write_at: u64,
    fail_sync_at: u64,
}

impl LogStore for FaultyStore {
    fn write_batch(&self, batch: &AppendBatch) -> StoreResult<()> {
        if self.writes.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_write_at {
            return Err(StoreError::Backend("injected write failure".into()));
        }
        self.inner.write_batch(batch)
    }
    fn sync(&self) -> StoreResult<()> {
        if self.syncs.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_sync_at {
            return Err(StoreError::Backend("injected fsync failure".into()));
        }
        self.inner.sync()
    }
    fn head(&self) -> StoreResult<Option<Head>> {
        self.inner.head()
    }
    fn last_record(&self) -> StoreResult<Option<StoredRecord>> {
        self.inner.last_record()
    }
    fn get(&self, seq: u64) -> StoreResult<Option<StoredRecord>> {
        self.inner.get(seq)
    }
    fn scan(&self, from: u64, to: u64) -> StoreIter<'_, StoredRecord> {
        self.inner.scan(from, to)
    }
    fn first_seq_at_or_after(&self, time: LedgerTime) -> StoreResult<u64> {
        self.inner.first_seq_at_or_after(time)
    }
    fn key_seqs(&self, key: Uuid, from: u64, to: u64) -> StoreIter<'_, u64> {
        self.inner.key_seqs(key, from, to)
    }
    fn key_seqs_rev(&self, key: Uuid, from: u64, to: u64) -> StoreIter<'_, u64> {
        self.inner.key_seqs_rev(key, from, to)
    }
    fn key_index(&self) -> StoreIter<'_, (Uuid, u64)> {
        self.inner.key_index()
    }
    fn lifecycle_seqs(&self, from: u64, to: u64) -> StoreIter<'_, u64> {
        self.inner.lifecycle_seqs(from, to)
    }
    fn time_index(&self) -> StoreIter<'_, (LedgerTime, u64)> {
        self.inner.time_index()
    }
    fn attribute_seqs(&self, digest: [u8; 16], from: u64, to: u64) -> StoreIter<'_, u64> {
        self.inner.attribute_seqs(digest, from, to)
    }
    fn attribute_index(&self) -> StoreIter<'_, ([u8; 16], u64)> {
        self.inner.attribute_index()
    }
    fn get_side(&self, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        self.inner.get_side(key)
    }
    fn scan_side(&self, prefix: &[u8]) -> StoreIter<'_, (Vec<u8>, Vec<u8>)> {
        self.inner.scan_side(prefix)
    }
    fn put_side(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> StoreResult<()> {
        self.inner.put_side(entries)
    }
    fn remove_side(&self, keys: &[Vec<u8>]) -> StoreResult<()> {
        self.inner.remove_side(keys)
    }
    fn size_on_disk(&self) -> StoreResult<u64> {
        self.inner.size_on_disk()
    }
    fn prune_archived(&self, through: u64, keep: &[u64]) -> StoreResult<u64> {
        self.inner.prune_archived(through, keep)
    }
}

fn fail_stop_round(fail_write_at: u64, fail_sync_at: u64) {
    let (tmp, dir, ledger) = common::fresh_ledger();
    drop(ledger);
    let store = Arc::new(FaultyStore {
        inner: SledStore::open(&dir.db_path()).unwrap(),
        writes: AtomicU64::new(0),
        syncs: AtomicU64::new(0),
        fail_write_at,
        fail_sync_at,
    });
    let ledger = Ledger::open(store, dir.load_signer(&KeySource::Default).unwrap()).unwrap();
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..30 {
        match ledger.submit_blocking(AppendEvents {
            actor: Actor::System,
            request_id: None,
            events: vec![common::used(None, &format!("f{i}"))],
        }) {
            Ok(seqs) => acknowledged.extend(seqs),
            Err(e) => {
                assert_eq!(e.code(), "write_failed", "{e}");
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0 && ledger.failure().is_some(),
        "the injected fault stopped the ledger"
    );
    assert!(acknowledged.len() < 30);
    drop(ledger);
    let ledger = dir
        .open(&KeySource::Default)
        .expect("the ledger reopens cleanly");
    for seq in &acknowledged {
        assert!(
            ledger.store().get(*seq).unwrap().is_some(),
            "acknowledged seq {seq} survived"
        );
    }
    common::assert_verifies(ledger.store().as_ref(), &dir);
    drop(tmp);
}

#[test]
fn fail_stop_under_an_injected_write_fault() {
    fail_stop_round(6, u64::MAX);
}

#[test]
fn fail_stop_under_an_injected_fsync_fault() {
    fail_stop_round(u64::MAX, 6);
}

#[test]
fn an_anchor_command_receives_every_checkpoint_on_its_standard_input() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let shipped = tmp.path().join("shipped.notes");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("keyledger.toml"),
        format!(
            "[checkpoints]\ninterval_secs = 3600\n[anchor]\ncommand = \"cat >> '{}'\"\n",
            shipped.display()
        ),
    )
    .unwrap();
    let dir = DataDir::new(&root);
    let (ledger, identity) = dir.init(None).unwrap();
    append_uses(&ledger, 1_100, 50);
    drop(ledger);
    let text = std::fs::read_to_string(&shipped).unwrap();
    let sizes: Vec<u64> = anchor::split_notes(&text)
        .iter()
        .map(|note| {
            keyledger::audit::checkpoint::Checkpoint::parse_note(note)
                .unwrap()
                .0
                .size
        })
        .collect();
    assert_eq!(
        sizes,
        vec![1024, 1101],
        "the 1,024 one and the one at shutdown"
    );
    let store = dir.open_store().unwrap();
    let kept = anchor_check::check_log_against(
        store.as_ref(),
        dir.anchor_public_key().unwrap(),
        &identity.origin,
        &text,
    )
    .unwrap();
    assert_eq!(kept, 1101);
}
