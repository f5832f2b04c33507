//! Sections written into a data directory's keyledger.toml before `init`: where the log lives (`--store`) and
//! where the signing key is (`--signer pkcs11`).

use super::DataDir;
use crate::error::{LedgerError, LedgerResult};
use std::fs;

impl DataDir {
    /// Records in keyledger.toml that the log lives at `url` (PostgreSQL), before `init`.
    pub fn set_store(&self, url: &str) -> LedgerResult<()> {
        fs::create_dir_all(&self.root)
            .map_err(|e| LedgerError::io(format!("creating {}", self.root.display()), e))?;
        let path = self.config_path();
        let existing = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(LedgerError::io(format!("reading {}", path.display()), e)),
        };
        if self.config()?.store.is_some() {
            return Err(LedgerError::Config(format!(
                "{} already names a store",
                path.display()
            )));
        }
        // A top-level key must come before the first [section].
        let line = format!("store = {}\n", toml::Value::String(url.to_string()));
        fs::write(&path, format!("{line}{existing}"))
            .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))?;
        self.config().map(|_| ())
    }

    /// Writes a `[signer]` section for `signer` into keyledger.toml (refusing to replace one), before `init`.
    pub fn set_signer(&self, signer: &crate::token::SignerConfig) -> LedgerResult<()> {
        fs::create_dir_all(&self.root)
            .map_err(|e| LedgerError::io(format!("creating {}", self.root.display()), e))?;
        let path = self.config_path();
        if self.config()?.signer != crate::token::SignerConfig::default() {
            return Err(LedgerError::Config(format!(
                "{} already has a [signer] section",
                path.display()
            )));
        }
        signer.validate().map_err(LedgerError::Config)?;
        let section = toml::to_string(&std::collections::BTreeMap::from([("signer", signer)]))
            .map_err(|e| LedgerError::Config(e.to_string()))?;
        let existing = fs::read_to_string(&path).unwrap_or_default();
        fs::write(&path, format!("{existing}\n{section}"))
            .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))?;
        self.config().map(|_| ())
    }
}
