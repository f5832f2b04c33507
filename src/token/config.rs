//! `[signer]` in keyledger.toml: which kind of key signs, and for a PKCS#11 token where it is and where its PIN
//! comes from (never keyledger.toml).

use super::TokenError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Where the PIN comes from when `pin_file` is not set.
pub const PIN_ENV: &str = "KEYLEDGER_PKCS11_PIN";

/// `[signer]` in keyledger.toml: where the signing key is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignerConfig {
    /// `file` (the default: `signing.key` or `$KEYLEDGER_SIGNING_KEY[_FILE]`) or `pkcs11`.
    pub kind: SignerKind,
    /// The PKCS#11 module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so.
    pub module: Option<PathBuf>,
    /// The token's label.
    pub token_label: Option<String>,
    /// The key's label (CKA_LABEL) on the token.
    pub key_label: Option<String>,
    /// A file holding the user PIN; without it, `$KEYLEDGER_PKCS11_PIN`.
    pub pin_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignerKind {
    #[default]
    File,
    Pkcs11,
}

impl SignerConfig {
    pub fn is_pkcs11(&self) -> bool {
        self.kind == SignerKind::Pkcs11
    }

    /// Checks that a `pkcs11` signer names its module, token and key.
    pub fn validate(&self) -> Result<(), String> {
        if self.is_pkcs11() {
            for (field, missing) in [
                ("module", self.module.is_none()),
                ("token_label", self.token_label.is_none()),
                ("key_label", self.key_label.is_none()),
            ] {
                if missing {
                    return Err(format!("signer.{field} is required with kind = \"pkcs11\""));
                }
            }
        } else if self.module.is_some() || self.token_label.is_some() || self.key_label.is_some() {
            return Err(
                "signer.module, token_label and key_label apply to kind = \"pkcs11\" only".into(),
            );
        }
        Ok(())
    }

    pub(super) fn field<'a>(
        &self,
        value: &'a Option<String>,
        name: &str,
    ) -> Result<&'a str, TokenError> {
        value
            .as_deref()
            .ok_or_else(|| TokenError::Config(format!("{name} is required")))
    }

    /// The PIN and where it came from.
    pub(super) fn pin(&self) -> Result<(Zeroizing<String>, String), TokenError> {
        match &self.pin_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| {
                    (
                        Zeroizing::new(text.trim_end().to_string()),
                        path.display().to_string(),
                    )
                })
                .map_err(|e| TokenError::Config(format!("pin_file {}: {e}", path.display()))),
            None => std::env::var(PIN_ENV)
                .map(|pin| (Zeroizing::new(pin), format!("${PIN_ENV}")))
                .map_err(|_| {
                    TokenError::Config(format!(
                        "the token's PIN is not given: set ${PIN_ENV} or signer.pin_file"
                    ))
                }),
        }
    }
}
