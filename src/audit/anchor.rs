//! Anchors: checkpoints kept outside the data directory. The writer hands every new checkpoint, once it is
//! durable in the log, to an [`AnchorSink`] that appends it to a file (on another mount) and/or pipes it to a
//! command (shipping it to object storage or a SIEM). `audit verify --anchor` and `verify-export --checkpoint`
//! read such a file back and check the ledger against the checkpoints in it (audit/anchor_check.rs): a ledger
//! shorter than, or inconsistent with, a kept checkpoint was cut or rewritten.
//!
//! The file is the signed notes concatenated, each exactly as signed (docs/FORMAT.md §8).

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

/// `[anchor]` in `keyledger.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnchorConfig {
    /// Append every new checkpoint note to this file (fsynced), ideally on another mount or host.
    pub file: Option<PathBuf>,
    /// Run this with `sh -c` for every new checkpoint, the note on its standard input.
    pub command: Option<String>,
    /// Run this with `sh -c` when a writer opens: its standard output is the notes kept so far (what `command`
    /// shipped, read back). Without it (and without `file`), a writer cannot check its log against the anchor.
    pub read_command: Option<String>,
}

impl AnchorConfig {
    pub fn is_set(&self) -> bool {
        self.file.is_some() || self.command.is_some()
    }

    /// The notes kept so far, read back from `file` (a missing file holds none yet) and `read_command`;
    /// `None` when neither is configured. An unreadable file or a failing command is an error.
    pub fn read_kept(&self) -> Result<Option<String>, String> {
        if self.file.is_none() && self.read_command.is_none() {
            return Ok(None);
        }
        let mut kept = String::new();
        if let Some(path) = &self.file {
            match std::fs::read(path) {
                // Whole notes only, so a torn last note cannot run into what the command prints.
                Ok(bytes) => kept.push_str(&split_notes(&String::from_utf8_lossy(&bytes)).concat()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("anchor.file {}: {e}", path.display())),
            }
        }
        if let Some(command) = &self.read_command {
            let output = Command::new("sh")
                .arg("-c")
                .arg(command)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("anchor.read_command {command}: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "anchor.read_command {command}: exited with {}",
                    output.status
                ));
            }
            kept.push_str(&String::from_utf8_lossy(&output.stdout));
        }
        Ok(Some(kept))
    }
}

/// Deliveries that failed in this process, whichever ledger made them: a CLI command exits non-zero when its
/// checkpoint could not be anchored.
static FAILED_IN_PROCESS: AtomicU64 = AtomicU64::new(0);

/// How many checkpoints this process could not anchor.
pub fn failures_in_this_process() -> u64 {
    FAILED_IN_PROCESS.load(Ordering::Relaxed)
}

/// Delivers notes on a thread of its own, so a slow command never holds up the flusher.
pub struct AnchorSink {
    notes: mpsc::Sender<String>,
    pub failures: Arc<AtomicU64>,
}

impl AnchorSink {
    /// Starts the delivery thread, counting failed deliveries in `failures`; `None` when no anchor is configured.
    pub fn start(
        config: &AnchorConfig,
        failures: Arc<AtomicU64>,
    ) -> std::io::Result<Option<(Self, std::thread::JoinHandle<()>)>> {
        if !config.is_set() {
            return Ok(None);
        }
        let (notes, inbox) = mpsc::channel::<String>();
        let counted = failures.clone();
        let config = config.clone();
        let handle = std::thread::Builder::new()
            .name("keyledger-anchor".into())
            .spawn(move || {
                for note in inbox {
                    if let Err(error) = deliver(&config, &note) {
                        counted.fetch_add(1, Ordering::Relaxed);
                        FAILED_IN_PROCESS.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(%error, "could not anchor a checkpoint outside the data directory");
                    }
                }
            })?;
        Ok(Some((Self { notes, failures }, handle)))
    }

    pub fn send(&self, note: String) {
        // The thread ends only when this sender is dropped; a send cannot fail before that.
        let _ = self.notes.send(note);
    }
}

fn deliver(config: &AnchorConfig, note: &str) -> Result<(), String> {
    if let Some(path) = &config.file {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.write_all(note.as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(command) = &config.command {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{command}: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(note.as_bytes())
                .map_err(|e| format!("{command}: {e}"))?;
        }
        let status = child.wait().map_err(|e| format!("{command}: {e}"))?;
        if !status.success() {
            return Err(format!("{command}: exited with {status}"));
        }
    }
    Ok(())
}

/// Splits an anchor file (or a single note) into its notes. A torn last note (no signature line) is dropped.
pub fn split_notes(text: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let mut current = String::new();
    let mut in_signatures = false;
    let mut body_lines = 0;
    for line in text.split_inclusive('\n') {
        let signature = line.starts_with("\u{2014} ");
        if in_signatures && !signature {
            notes.push(std::mem::take(&mut current));
            in_signatures = false;
            body_lines = 0;
        }
        if signature && body_lines >= 4 {
            in_signatures = true;
        } else {
            body_lines += 1;
        }
        current.push_str(line);
    }
    if in_signatures && current.ends_with('\n') {
        notes.push(current);
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_concatenated_notes_and_drops_a_torn_tail() {
        let a = "o\n1\nAAAA\n\n\u{2014} o sig1\n";
        let b = "o\n2\nBBBB\n\n\u{2014} o sig2\n\u{2014} w sig3\n";
        let torn = "o\n3\nCC";
        let text = format!("{a}{b}{torn}");
        assert_eq!(split_notes(&text), vec![a.to_string(), b.to_string()]);
        assert_eq!(split_notes(a), vec![a.to_string()]);
        assert!(split_notes("o\n1\nAAAA\n\n").is_empty());
    }
}
