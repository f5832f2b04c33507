//! What a witness remembers, and how it keeps it across crashes: per log (by origin), the size and root of the
//! latest checkpoint it cosigned, in one JSON file replaced atomically (written beside, fsynced, renamed over the
//! old one, the directory fsynced) before any cosignature leaves. A crash at any point leaves the old file or
//! the new one, never a mix; the witness key lives in the same directory, mode 0600.

use crate::error::{LedgerError, LedgerResult};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const STATE_FILE: &str = "witness-state.json";
const KEY_FILE: &str = "witness.key";
const NAME_FILE: &str = "witness.name";

/// The latest checkpoint cosigned for one log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cosigned {
    pub size: u64,
    /// The root hash, base64 as in the checkpoint.
    pub root: String,
}

/// Every log's latest cosigned checkpoint, by origin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessState {
    pub logs: BTreeMap<String, Cosigned>,
}

/// The witness's directory: its key and its state.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> LedgerError {
    move |e| LedgerError::io(context, e)
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory, a new witness key and the witness's name (a schema-less URL such as
    /// `witness.example.com/w1`); refuses a directory that already holds a key.
    pub fn init(&self, name: &str) -> LedgerResult<SigningKey> {
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
            return Err(LedgerError::invalid(
                "name",
                "a witness name is not empty and holds no space or '+' (e.g. witness.example.com/w1)",
            ));
        }
        fs::create_dir_all(&self.root).map_err(io(format!("creating {}", self.root.display())))?;
        let path = self.root.join(KEY_FILE);
        let key = SigningKey::generate(&mut rand_core::OsRng);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                LedgerError::conflict(
                    "witness_exists",
                    format!("{} already holds a witness key", self.root.display()),
                )
            } else {
                LedgerError::io(format!("writing {}", path.display()), e)
            }
        })?;
        file.write_all(hex::encode(key.to_bytes()).as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(io(format!("writing {}", path.display())))?;
        let name_path = self.root.join(NAME_FILE);
        fs::write(&name_path, format!("{name}\n"))
            .map_err(io(format!("writing {}", name_path.display())))?;
        self.sync()?;
        Ok(key)
    }

    /// The witness key written by [`StateDir::init`].
    pub fn key(&self) -> LedgerResult<SigningKey> {
        let path = self.root.join(KEY_FILE);
        let text = fs::read_to_string(&path).map_err(io(format!(
            "reading {} (run `keyledger witness init` first)",
            path.display()
        )))?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
            LedgerError::Config(format!("{}: not a hex Ed25519 seed", path.display()))
        })?;
        Ok(SigningKey::from_bytes(&seed))
    }

    /// The witness's name, as given to [`StateDir::init`].
    pub fn name(&self) -> LedgerResult<String> {
        let path = self.root.join(NAME_FILE);
        fs::read_to_string(&path)
            .map(|text| text.trim().to_string())
            .map_err(io(format!("reading {}", path.display())))
    }

    /// The state as last persisted (empty before the first cosignature).
    pub fn load(&self) -> LedgerResult<WitnessState> {
        let path = self.root.join(STATE_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LedgerError::Corrupt {
                seq: 0,
                problem: format!("{} is unreadable: {e}", path.display()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(WitnessState::default()),
            Err(e) => Err(LedgerError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Replaces the persisted state with `state`, durably, or fails leaving the old one.
    pub fn store(&self, state: &WitnessState) -> LedgerResult<()> {
        let path = self.root.join(STATE_FILE);
        let temporary = self.root.join(format!("{STATE_FILE}.new"));
        let context = || format!("writing {}", temporary.display());
        // Serialising a map of strings and integers cannot fail.
        let bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
        let mut file = fs::File::create(&temporary).map_err(io(context()))?;
        file.write_all(&bytes)
            .and_then(|_| file.sync_all())
            .map_err(io(context()))?;
        fs::rename(&temporary, &path).map_err(io(format!("replacing {}", path.display())))?;
        self.sync()
    }

    fn sync(&self) -> LedgerResult<()> {
        fs::File::open(&self.root)
            .and_then(|dir| dir.sync_all())
            .map_err(io(format!("syncing {}", self.root.display())))
    }
}
