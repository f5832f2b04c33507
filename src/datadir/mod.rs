//! The data directory: where the log, the ledger's identity and (by default) its signing key live, how `init`
//! creates them, and where the signing key is taken from (environment, a file path, or the directory).
//! Every open checks the log against the identity pinned in `ledger.json` ([`pin`]).

mod config_file;
mod pin;
pub mod rotation;
mod rotation_token;

use crate::chain::{parse_public_key_hex, LedgerSigner};
use crate::clock::SharedClock;
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Actor, EventData, LedgerInitialized};
use crate::ledger::{AppendEvents, Ledger, Startup};
use crate::store::{LogStore, SledStore};
use crate::time::LedgerTime;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

/// Environment variable holding the signing key seed itself (64 hex digits), e.g. injected by a secrets manager.
pub const SIGNING_KEY_ENV: &str = "KEYLEDGER_SIGNING_KEY";
/// Environment variable naming a file that holds the seed.
pub const SIGNING_KEY_FILE_ENV: &str = "KEYLEDGER_SIGNING_KEY_FILE";

/// The ledger's identity, written by `init` to `ledger.json` (no secrets).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LedgerIdentity {
    pub ledger_id: Uuid,
    /// The checkpoint origin line, e.g. `keyledger.local/<ledger id>`.
    pub origin: String,
    pub created_at: LedgerTime,
    /// Hex of the first signer's public key: the trust anchor for verifiers.
    pub public_key: String,
    pub signer_id: String,
    /// Hex of the hash of event 1 (`ledger.initialized`): the log must start with exactly this event.
    /// Absent only in directories written before the pin existed, which open refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis_hash: Option<String>,
}

/// Where the signing key comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KeySource {
    /// `KEYLEDGER_SIGNING_KEY`, else `KEYLEDGER_SIGNING_KEY_FILE`, else `<data>/signing.key`.
    #[default]
    Default,
    File(PathBuf),
}

/// Paths inside a data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
    clock: SharedClock,
    /// How a PostgreSQL store is opened: as the writer, a standby (`serve --standby`) or a follower.
    pg_role: crate::store::PgRole,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            clock: crate::clock::system(),
            pg_role: crate::store::PgRole::Writer,
        }
    }

    /// The same directory, whose store opens wait while another writer holds it (PostgreSQL only).
    pub fn waiting_for_writer(mut self) -> Self {
        self.pg_role = crate::store::PgRole::Standby;
        self
    }

    /// Opens the ledger as a read-only follower of the writer (`serve --follower`, PostgreSQL only): no signing
    /// key is needed, the log is checked with the public keys it names and `signing.pub`.
    pub fn open_follower(&self) -> LedgerResult<Ledger> {
        if self.config()?.store.is_none() {
            return Err(LedgerError::Config(
                "a follower needs the log in PostgreSQL (store = \"postgres://…\" in keyledger.toml): the \
                 embedded store belongs to one process"
                    .into(),
            ));
        }
        let following = Self {
            root: self.root.clone(),
            clock: self.clock.clone(),
            pg_role: crate::store::PgRole::Follower,
        };
        let store = following.open_store()?;
        Ledger::open_follower(
            store,
            vec![self.anchor_public_key()?],
            self.config()?.rules(),
            self.clock.clone(),
        )
    }

    /// The same directory, with ledgers it opens taking time from `clock` (tests move it by hand).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db_path(&self) -> PathBuf {
        self.root.join("log")
    }

    pub fn key_path(&self) -> PathBuf {
        self.root.join("signing.key")
    }

    pub fn public_key_path(&self) -> PathBuf {
        self.root.join("signing.pub")
    }

    /// Optional analysis configuration (anomaly thresholds, rotation defaults).
    pub fn config_path(&self) -> PathBuf {
        self.root.join("keyledger.toml")
    }

    pub fn config(&self) -> LedgerResult<crate::config::AnalysisConfig> {
        crate::config::AnalysisConfig::load(&self.config_path())
    }

    pub fn identity_path(&self) -> PathBuf {
        self.root.join("ledger.json")
    }

    pub fn is_initialized(&self) -> bool {
        self.identity_path().exists() || self.db_path().exists()
    }

    pub fn identity(&self) -> LedgerResult<LedgerIdentity> {
        let path = self.identity_path();
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && self.db_path().exists() {
                LedgerError::PinMismatch(format!(
                    "{} is missing but {} holds a log: the identity that pins its genesis was removed",
                    path.display(),
                    self.db_path().display()
                ))
            } else if e.kind() == std::io::ErrorKind::NotFound {
                LedgerError::Config(format!(
                    "{} is not a keyledger data directory (no ledger.json); run `keyledger init` first",
                    self.root.display()
                ))
            } else {
                LedgerError::io(format!("reading {}", path.display()), e)
            }
        })?;
        serde_json::from_str(&text)
            .map_err(|e| LedgerError::Config(format!("{}: {e}", path.display())))
    }

    /// The trust anchor: the first signer's public key from `signing.pub`.
    pub fn anchor_public_key(&self) -> LedgerResult<VerifyingKey> {
        let path = self.public_key_path();
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && self.identity_path().exists() {
                LedgerError::PinMismatch(format!(
                    "{} is missing: the ledger's first public key (its trust anchor) was removed; restore it from a copy kept elsewhere",
                    path.display()
                ))
            } else {
                LedgerError::io(format!("reading {}", path.display()), e)
            }
        })?;
        parse_public_key_hex(&text)
            .map_err(|e| LedgerError::Config(format!("{}: {e}", path.display())))
    }

    /// Loads the signing key from the given source, or opens it on the PKCS#11 token `[signer]` names.
    pub fn load_signer(&self, source: &KeySource) -> LedgerResult<LedgerSigner> {
        let signer = self.config()?.signer;
        if signer.is_pkcs11() && matches!(source, KeySource::Default) {
            return open_token(&signer, false);
        }
        let (text, origin) = match source {
            KeySource::File(path) => (read_key_file(path)?, path.display().to_string()),
            KeySource::Default => {
                if let Ok(seed) = std::env::var(SIGNING_KEY_ENV) {
                    (zeroize::Zeroizing::new(seed), SIGNING_KEY_ENV.to_string())
                } else if let Ok(path) = std::env::var(SIGNING_KEY_FILE_ENV) {
                    (read_key_file(Path::new(&path))?, path)
                } else {
                    let path = self.key_path();
                    (read_key_file(&path)?, path.display().to_string())
                }
            }
        };
        LedgerSigner::from_seed_hex(&text)
            .map_err(|e| LedgerError::Config(format!("{origin}: {e}")))
    }

    /// Creates a new ledger: the directory, the signing key (unless `external` is given, which is then not
    /// written to disk), `signing.pub`, the `ledger.initialized` event and, once that event is durable,
    /// `ledger.json` pinning its hash. Refuses to touch an existing ledger.
    pub fn init(&self, external: Option<LedgerSigner>) -> LedgerResult<(Ledger, LedgerIdentity)> {
        if self.is_initialized() {
            return Err(LedgerError::Config(format!(
                "{} already holds a ledger; refusing to overwrite it",
                self.root.display()
            )));
        }
        fs::create_dir_all(&self.root)
            .map_err(|e| LedgerError::io(format!("creating {}", self.root.display()), e))?;
        let token = self.config()?.signer;
        let signer = match external {
            Some(signer) => signer,
            // The key is generated on the token (or an existing one by that label is used); no key file.
            None if token.is_pkcs11() => open_token(&token, true)?,
            None => {
                let signer = LedgerSigner::generate();
                let seed = signer.seed_hex().ok_or_else(|| {
                    LedgerError::Config("a generated key is held in memory".into())
                })?;
                write_private_file(&self.key_path(), seed.as_bytes())?;
                signer
            }
        };
        let ledger_id = Uuid::now_v7();
        let mut identity = LedgerIdentity {
            ledger_id,
            origin: format!("keyledger.local/{ledger_id}"),
            created_at: self.clock.now(),
            public_key: signer.public_key_hex(),
            signer_id: signer.id().to_string(),
            genesis_hash: None,
        };
        write_new_file(
            &self.public_key_path(),
            format!("{}\n", identity.public_key).as_bytes(),
            0o644,
        )?;
        let store = self.open_backend()?;
        if store.head()?.is_some() {
            return Err(LedgerError::Config(
                "the configured store already holds a ledger's events; give this ledger its own database".into(),
            ));
        }
        let ledger = Ledger::open_with_clock(
            store,
            vec![signer],
            self.config()?.ledger_settings(),
            self.clock.clone(),
        )?;
        ledger.submit_blocking(AppendEvents {
            actor: Actor::local_operator(),
            request_id: None,
            events: vec![EventData::LedgerInitialized(LedgerInitialized {
                ledger_id,
                origin: identity.origin.clone(),
                public_key: identity.public_key.clone(),
                signer_id: identity.signer_id.clone(),
            })],
        })?;
        let genesis = ledger
            .store()
            .get(1)?
            .ok_or_else(|| LedgerError::PinMismatch("the genesis event was not stored".into()))?;
        identity.genesis_hash = Some(hex::encode(genesis.hash));
        let json =
            serde_json::to_vec_pretty(&identity).map_err(|e| LedgerError::Config(e.to_string()))?;
        write_new_file(&self.identity_path(), &json, 0o644)?;
        sync_dir(&self.root)?;
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok((ledger, identity))
    }

    /// Opens an initialized ledger with the signing key from `source` (or, after a signer rotation that was
    /// interrupted before keyledger.toml and its key files were brought into line, with the pending new key, and
    /// finishes it: see [`rotation`]).
    pub fn open(&self, source: &KeySource) -> LedgerResult<Ledger> {
        self.open_with(source, Startup::Full)
    }

    /// [`DataDir::open`], building the projections as `startup` says (`serve` starts from the snapshot).
    pub fn open_with(&self, source: &KeySource, startup: Startup) -> LedgerResult<Ledger> {
        let store = self.open_store()?;
        let config = self.config()?;
        let mut settings = config.ledger_settings();
        if config.personal.commit {
            settings.personal_vault = Some(self.root.join("personal"));
        }
        let (candidates, unloaded) = rotation::candidates(self, source)?;
        let ledger =
            Ledger::open_with_startup(store, candidates, settings, self.clock.clone(), startup)
                .map_err(|error| match (error, unloaded) {
                    // No pending key is current either: the configured key's own error says what is wrong.
                    (LedgerError::Config(_), Some(unloaded)) => unloaded,
                    (error, _) => error,
                })?;
        rotation::finish_if_pending(self, source, ledger.signer_public_hex())?;
        Ok(ledger)
    }

    /// Opens the store only, for reading and verifying without the signing key. Refuses (exit 3) a log that is
    /// missing, empty or not the one `ledger.json` pins, and a `signing.pub` that is not the pinned anchor.
    pub fn open_store(&self) -> LedgerResult<Arc<dyn LogStore>> {
        let identity = self.identity()?;
        pin::check_anchor_file(self, &identity)?;
        if self.config()?.store.is_none() && !self.db_path().is_dir() {
            return Err(LedgerError::PinMismatch(format!(
                "the log directory {} is missing, but ledger.json pins genesis {}: the log was deleted",
                self.db_path().display(),
                identity.genesis_hash.as_deref().unwrap_or("(none)")
            )));
        }
        let store = self.open_backend_existing()?;
        pin::check_genesis(&identity, store.as_ref())?;
        Ok(store)
    }

    /// The store keyledger.toml names: PostgreSQL for a `store` URL, else the embedded sled log.
    fn open_backend(&self) -> LedgerResult<Arc<dyn LogStore>> {
        let config = self.config()?;
        Ok(match config.store {
            Some(url) => Arc::new(crate::store::PgStore::open_as(&url, self.pg_role)?),
            None if self.pg_role == crate::store::PgRole::Standby => {
                return Err(LedgerError::Config(
                    "a standby needs the log in PostgreSQL (store = \"postgres://…\" in keyledger.toml): the embedded \
                     store lives on one machine"
                        .into(),
                ))
            }
            None => Arc::new(SledStore::open_with_cache(&self.db_path(), config.storage)?),
        })
    }

    /// [`DataDir::open_backend`] for a log that must exist already: sled's files are checked before it opens them.
    fn open_backend_existing(&self) -> LedgerResult<Arc<dyn LogStore>> {
        let config = self.config()?;
        match config.store {
            None if self.pg_role != crate::store::PgRole::Standby => Ok(Arc::new(
                SledStore::open_existing_with_cache(&self.db_path(), config.storage)?,
            )),
            _ => self.open_backend(),
        }
    }
}

fn read_key_file(path: &Path) -> LedgerResult<zeroize::Zeroizing<String>> {
    fs::read_to_string(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| LedgerError::io(format!("reading signing key {}", path.display()), e))
}

/// Writes a file readable only by its owner (0600), refusing to replace an existing one.
pub fn write_private_file(path: &Path, contents: &[u8]) -> LedgerResult<()> {
    write_new_file(path, contents, 0o600)
}

/// Makes a directory's entries (files created or renamed in it) durable.
pub fn sync_dir(path: &Path) -> LedgerResult<()> {
    fs::File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| LedgerError::io(format!("syncing directory {}", path.display()), e))
}

fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> LedgerResult<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let context = || format!("writing {}", path.display());
    let mut file = options
        .open(path)
        .map_err(|e| LedgerError::io(context(), e))?;
    file.write_all(contents)
        .map_err(|e| LedgerError::io(context(), e))?;
    file.sync_all().map_err(|e| LedgerError::io(context(), e))
}

/// The signing key on the PKCS#11 token `config` names (generated there first with `create`).
fn open_token(config: &crate::token::SignerConfig, create: bool) -> LedgerResult<LedgerSigner> {
    crate::token::TokenKey::open(config, create)
        .map(LedgerSigner::from_token)
        .map_err(|e| LedgerError::Config(e.to_string()))
}
