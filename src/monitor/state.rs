//! What a monitor has verified, kept in `<state>/monitor-state.json`: the ledger's origin, the size and root of
//! the last checkpoint it verified, and that tree's right edge. Replaced atomically (written beside, fsynced,
//! renamed over, directory fsynced), so a kill at any moment leaves the old state or the new one.

use super::frontier::Frontier;
use super::MonitorError;
use crate::chain::Hash32;
use crate::time::LedgerTime;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "monitor-state.json";

/// A verified tree: its checkpoint's origin and root, and its right edge (which holds its size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorState {
    pub origin: String,
    pub root: Hash32,
    pub frontier: Frontier,
}

impl MonitorState {
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }
}

/// The file's shape: hashes in hex.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    origin: String,
    size: u64,
    root: String,
    /// The right edge's subtree roots, largest first.
    frontier: Vec<String>,
    /// When this state was verified (for people; not read back).
    verified_at: LedgerTime,
}

/// The directory holding a monitor's state.
pub struct StateDir {
    root: PathBuf,
}

fn decode_hash(text: &str) -> Option<Hash32> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn path(&self) -> PathBuf {
        self.root.join(STATE_FILE)
    }

    fn error(&self, message: impl Into<String>) -> MonitorError {
        MonitorError::State {
            path: self.path(),
            message: message.into(),
        }
    }

    /// The saved state; `None` before the first verified checkpoint. A file whose right edge does not give its
    /// root is refused (it was damaged or edited).
    pub fn load(&self) -> Result<Option<MonitorState>, MonitorError> {
        let text = match fs::read_to_string(self.path()) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(e.to_string())),
        };
        let saved: Saved = serde_json::from_str(&text).map_err(|e| self.error(e.to_string()))?;
        let root =
            decode_hash(&saved.root).ok_or_else(|| self.error("root is not 64 hex digits"))?;
        let nodes = saved
            .frontier
            .iter()
            .map(|h| decode_hash(h))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.error("a frontier hash is not 64 hex digits"))?;
        let frontier = Frontier::restore(saved.size, nodes)
            .ok_or_else(|| self.error("the frontier does not fit the size"))?;
        if frontier.root() != root {
            return Err(self.error(
                "the frontier does not give the saved root: the file was damaged or edited",
            ));
        }
        Ok(Some(MonitorState {
            origin: saved.origin,
            root,
            frontier,
        }))
    }

    /// Replaces the saved state atomically.
    pub fn store(&self, state: &MonitorState) -> Result<(), MonitorError> {
        let saved = Saved {
            origin: state.origin.clone(),
            size: state.size(),
            root: hex::encode(state.root),
            frontier: state.frontier.nodes().iter().map(hex::encode).collect(),
            verified_at: LedgerTime::now(),
        };
        let mut text =
            serde_json::to_string_pretty(&saved).map_err(|e| self.error(e.to_string()))?;
        text.push('\n');
        fs::create_dir_all(&self.root).map_err(|e| self.error(e.to_string()))?;
        let path = self.path();
        let temporary = self.root.join(format!("{STATE_FILE}.tmp"));
        let written = fs::File::create(&temporary).and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
        written.map_err(|e| self.error(format!("writing {}: {e}", temporary.display())))?;
        fs::rename(&temporary, &path).map_err(|e| self.error(format!("replacing it: {e}")))?;
        sync_dir(&self.root).map_err(|e| self.error(format!("syncing its directory: {e}")))
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
