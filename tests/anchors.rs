//! Checkpoints kept outside the data directory (issue 28, cases 1 and 2): `verify-export --checkpoint FILE`
//! holds an export to the newest note of an anchor file whatever its order, `audit verify --anchor` checks every
//! note, and no writer (CLI or `serve`) opens a log that is behind its anchor, so a cut cannot regrow over it.

mod common;
#[path = "common/process.rs"]
mod process;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the CLI on `data`, failing the test unless it exits 0; returns its output.
fn ok(data: &Path, args: &[&str]) -> String {
    let (code, text) = common::run_cli(data, args);
    assert_eq!(code, 0, "keyledger {args:?}: {text}");
    text
}

fn create_keys(data: &Path, names: std::ops::Range<usize>) {
    for i in names {
        ok(
            data,
            &[
                "key",
                "create",
                "--name",
                &format!("k{i}"),
                "--env",
                "production",
                "--owner",
                "team-a",
                "--scope",
                "a:read",
            ],
        );
    }
}

fn anchor_config(data: &Path, anchor_file: &Path) {
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(
        data.join("keyledger.toml"),
        format!("[anchor]\nfile = {:?}\n", anchor_file.display().to_string()),
    )
    .unwrap();
}

fn head(data: &Path) -> u64 {
    let text = ok(data, &["audit", "verify"]);
    let events = text
        .split("..=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    events.unwrap_or_else(|| panic!("a head in {text}"))
}

/// A ledger anchored to a file beside it: 3 events backed up (the copy), then grown to `grown` events.
struct Anchored {
    tmp: tempfile::TempDir,
    data: PathBuf,
    backup: PathBuf,
    anchor_file: PathBuf,
    backup_size: u64,
    size: u64,
}

fn anchored(more_keys: usize) -> Anchored {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let anchor_file = tmp.path().join("ledger.anchors");
    anchor_config(&data, &anchor_file);
    ok(&data, &["init"]);
    create_keys(&data, 0..2);
    let backup = tmp.path().join("backup");
    common::copy_dir(&data, &backup);
    let backup_size = head(&data);
    create_keys(&data, 2..2 + more_keys);
    let size = head(&data);
    assert!(size > backup_size + 1);
    Anchored {
        tmp,
        data,
        backup,
        anchor_file,
        backup_size,
        size,
    }
}

/// The backup restored into a directory whose writer anchors to another file, grown by `keys` keys; returns it.
fn regrown_backup(a: &Anchored, keys: usize) -> (PathBuf, PathBuf) {
    let restored = a.tmp.path().join("restored");
    common::copy_dir(&a.backup, &restored);
    let other_anchor = a.tmp.path().join("other.anchors");
    anchor_config(&restored, &other_anchor);
    create_keys(&restored, 100..100 + keys);
    (restored, other_anchor)
}

fn verify_export(a: &Anchored, export: &Path, kept: &Path) -> (i32, String) {
    common::run_cli(
        &a.data,
        &[
            "audit",
            "verify-export",
            export.to_str().unwrap(),
            "--public-key",
            a.data.join("signing.pub").to_str().unwrap(),
            "--checkpoint",
            kept.to_str().unwrap(),
        ],
    )
}

fn reversed_notes(a: &Anchored) -> PathBuf {
    let text = std::fs::read_to_string(&a.anchor_file).unwrap();
    let mut notes = keyledger::audit::anchor::split_notes(&text);
    assert!(notes.len() >= 4, "one note per command: {notes:?}");
    notes.reverse();
    let path = a.tmp.path().join("reversed.anchors");
    std::fs::write(&path, notes.concat()).unwrap();
    path
}

#[test]
fn verify_export_holds_an_export_to_the_newest_note_of_an_anchor_file_in_any_order() {
    let a = anchored(3);
    let reversed = reversed_notes(&a);
    // A genuine export made as OPERATIONS.md says: a consistency proof from the newest anchored size.
    let full = a.tmp.path().join("full.jsonl");
    let newest = a.size.to_string();
    ok(
        &a.data,
        &[
            "audit",
            "export",
            "--consistency-from",
            &newest,
            "-o",
            full.to_str().unwrap(),
        ],
    );
    for kept in [&a.anchor_file, &reversed] {
        let (code, text) = verify_export(&a, &full, kept);
        assert_eq!(
            code,
            0,
            "a genuine export passes with {}: {text}",
            kept.display()
        );
    }
    // A window of it, made the same way.
    let window = a.tmp.path().join("window.jsonl");
    ok(
        &a.data,
        &[
            "audit",
            "export",
            "--from",
            "-1h",
            "--consistency-from",
            &newest,
            "-o",
            window.to_str().unwrap(),
        ],
    );
    let (code, text) = verify_export(&a, &window, &reversed);
    assert_eq!(code, 0, "a genuine window passes: {text}");

    // A restored backup that lost anchored events, exported as it is where no anchor is configured: shorter
    // than the newest note.
    std::fs::remove_file(a.backup.join("keyledger.toml")).unwrap();
    let cut = a.tmp.path().join("cut.jsonl");
    ok(
        &a.backup,
        &[
            "audit",
            "export",
            "--consistency-from",
            "2",
            "-o",
            cut.to_str().unwrap(),
        ],
    );
    for kept in [&a.anchor_file, &reversed] {
        let (code, text) = verify_export(&a, &cut, kept);
        assert_eq!(
            code,
            3,
            "a cut backup is refused with {}: {text}",
            kept.display()
        );
        assert!(text.contains(&format!("has {} events", a.size)), "{text}");
    }
    // The same backup regrown past the newest note, proving only that it grew from the oldest note.
    let (restored, _) = regrown_backup(&a, 4);
    assert!(head(&restored) > a.size);
    let regrown = a.tmp.path().join("regrown.jsonl");
    ok(
        &restored,
        &[
            "audit",
            "export",
            "--consistency-from",
            "2",
            "-o",
            regrown.to_str().unwrap(),
        ],
    );
    let (code, text) = verify_export(&a, &regrown, &a.anchor_file);
    assert_eq!(code, 3, "a regrown backup is refused: {text}");
    assert!(text.contains(&format!("size {}", a.size)), "{text}");
    // And asked to prove it grew from the newest note, it cannot.
    ok(
        &restored,
        &[
            "audit",
            "export",
            "--consistency-from",
            &newest,
            "-o",
            regrown.to_str().unwrap(),
        ],
    );
    let (code, text) = verify_export(&a, &regrown, &reversed);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("rewritten"), "{text}");
}

#[test]
fn a_writer_refuses_a_log_behind_its_anchor_through_the_cli() {
    let a = anchored(3);
    let before = std::fs::read_to_string(&a.anchor_file).unwrap();
    std::fs::remove_dir_all(&a.data).unwrap();
    common::copy_dir(&a.backup, &a.data);
    let (code, text) = common::run_cli(
        &a.data,
        &[
            "key",
            "create",
            "--name",
            "late",
            "--env",
            "production",
            "--owner",
            "team-a",
            "--scope",
            "a:read",
        ],
    );
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains(&format!("holds {} events", a.backup_size))
            && text.contains(&format!("kept size {}", a.size)),
        "names the held and the kept size: {text}"
    );
    assert_eq!(head(&a.data), a.backup_size, "nothing was appended");
    assert_eq!(
        std::fs::read_to_string(&a.anchor_file).unwrap(),
        before,
        "nothing was anchored"
    );
}

#[test]
fn serve_refuses_a_log_behind_its_anchor_before_it_answers_anyone() {
    let a = anchored(3);
    std::fs::remove_dir_all(&a.data).unwrap();
    common::copy_dir(&a.backup, &a.data);
    let port = process::free_port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("--data")
        .arg(&a.data)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env_remove("KEYLEDGER_SIGNING_KEY")
        .env_remove("KEYLEDGER_SIGNING_KEY_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("serve kept running on a log behind its anchor");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(text.contains(&format!("kept size {}", a.size)), "{text}");
    assert!(
        !text.contains("serving"),
        "it never announced itself: {text}"
    );
}

#[test]
fn audit_verify_anchor_checks_every_note_and_names_the_first_contradiction() {
    let a = anchored(3);
    // An older build let the restored backup regrow and kept anchoring: its notes follow the genuine ones.
    let (restored, other_anchor) = regrown_backup(&a, 5);
    let regrown_size = head(&restored);
    assert!(regrown_size > a.size);
    let mut mixed = std::fs::read_to_string(&a.anchor_file).unwrap();
    mixed.push_str(&std::fs::read_to_string(&other_anchor).unwrap());
    let mixed_file = a.tmp.path().join("mixed.anchors");
    std::fs::write(&mixed_file, mixed).unwrap();
    let (code, text) = common::run_cli(
        &restored,
        &["audit", "verify", "--anchor", mixed_file.to_str().unwrap()],
    );
    assert_eq!(
        code, 3,
        "the newest note agrees, an older one does not: {text}"
    );
    let first_lost = a.backup_size + 1;
    assert!(
        text.contains(&format!("first {first_lost} events do not have the root")),
        "names the first contradiction: {text}"
    );
    // The genuine log against the genuine anchor: every note holds.
    let text = ok(
        &a.data,
        &[
            "audit",
            "verify",
            "--anchor",
            a.anchor_file.to_str().unwrap(),
        ],
    );
    let notes =
        keyledger::audit::anchor::split_notes(&std::fs::read_to_string(&a.anchor_file).unwrap())
            .len();
    assert!(
        text.contains(&format!("({notes} notes, the newest of {} events)", a.size)),
        "{text}"
    );
    // The regrown log against its own, newer notes alone passes: only the kept history can tell.
    ok(
        &restored,
        &[
            "audit",
            "verify",
            "--anchor",
            other_anchor.to_str().unwrap(),
        ],
    );
}
