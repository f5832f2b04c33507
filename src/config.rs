//! keyledger.toml, composed: each section belongs to the module it configures (the store, the projections'
//! rules, the ledger's checkpoints and snapshots, the anchor, the HTTP API, the gateway rules, the alerts); this
//! file only puts them together, loads the file and checks it. Read from `<data>/keyledger.toml` when present;
//! every field is optional and documented with its default in docs/ANOMALIES.md and docs/OPERATIONS.md.

use crate::alerts::AlertsConfig;
use crate::api::conventions::HttpConfig;
use crate::audit::anchor::AnchorConfig;
use crate::audit::witness_client::{WitnessConfig, WitnessPolicy};
use crate::error::{LedgerError, LedgerResult};
use crate::gateway::AuthzConfig;
use crate::ledger::settings::{CheckpointConfig, LedgerSettings, SnapshotConfig};
use crate::projection::AnalysisRules;
pub use crate::projection::{AnomalyConfig, RotationDefaults};
use crate::store::StorageConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Where the log lives: absent for the embedded sled store in `<data>/log`, or a PostgreSQL URL
    /// (`postgres://user@host/db`; the password from $KEYLEDGER_PG_PASSWORD or the file named by
    /// $KEYLEDGER_PG_PASSWORD_FILE, never in this file).
    pub store: Option<String>,
    /// The embedded store's read cache.
    pub storage: StorageConfig,
    /// Where the signing key is: a file (the default) or a PKCS#11 token (issue 30).
    pub signer: crate::token::SignerConfig,
    pub anomaly: AnomalyConfig,
    pub rotation: RotationDefaults,
    pub checkpoints: CheckpointConfig,
    pub snapshots: SnapshotConfig,
    pub anchor: AnchorConfig,
    /// Witnesses (c2sp.org/tlog-witness) each new checkpoint is submitted to (issue 29).
    pub witnesses: Vec<WitnessConfig>,
    pub witness_policy: WitnessPolicy,
    pub http: HttpConfig,
    pub authz: AuthzConfig,
    /// Webhook sinks and the notice period of time-based alerts (issue 15).
    pub alerts: AlertsConfig,
    pub personal: crate::ledger::settings::PersonalConfig,
}

impl AnalysisConfig {
    /// The rules the projections apply.
    pub fn rules(&self) -> AnalysisRules {
        AnalysisRules {
            anomaly: self.anomaly.clone(),
            rotation: self.rotation.clone(),
        }
    }

    /// What the ledger takes from the file.
    pub fn ledger_settings(&self) -> LedgerSettings {
        LedgerSettings {
            rules: self.rules(),
            checkpoints: self.checkpoints.clone(),
            snapshots: self.snapshots.clone(),
            anchor: self.anchor.clone(),
            witnesses: self.witnesses.clone(),
            witness_policy: self.witness_policy.clone(),
            personal_vault: None,
        }
    }

    /// Checks ranges the types cannot express; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(store) = &self.store {
            if !(store.starts_with("postgres://") || store.starts_with("postgresql://")) {
                return Err(format!("store = {store:?}: only postgres:// URLs are supported (leave it out for the embedded store)"));
            }
            if store.split("://").nth(1).is_some_and(|rest| {
                rest.split('@').next().is_some_and(|c| c.contains(':')) && rest.contains('@')
            }) {
                return Err("store: put no password in keyledger.toml; use $KEYLEDGER_PG_PASSWORD or $KEYLEDGER_PG_PASSWORD_FILE".into());
            }
        }
        self.anomaly.validate()?;
        self.rotation.validate()?;
        self.authz.compile()?;
        self.alerts.validate()?;
        self.http.validate()?;
        self.storage.validate()?;
        self.signer.validate()?;
        crate::audit::witness_client::validate(&self.witnesses, &self.witness_policy)?;
        if !(1..=86_400).contains(&self.checkpoints.interval_secs) {
            return Err(format!(
                "checkpoints.interval_secs = {} is outside 1..=86400",
                self.checkpoints.interval_secs
            ));
        }
        if !(1..=86_400).contains(&self.snapshots.interval_secs) {
            return Err(format!(
                "snapshots.interval_secs = {} is outside 1..=86400",
                self.snapshots.interval_secs
            ));
        }
        if self
            .anchor
            .command
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err("anchor.command is empty".into());
        }
        if self
            .anchor
            .read_command
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err("anchor.read_command is empty".into());
        }
        Ok(())
    }

    /// Reads the file if it exists; defaults otherwise. Unknown fields are refused by name.
    pub fn load(path: &Path) -> LedgerResult<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let config: Self = toml::from_str(&text)
                    .map_err(|e| LedgerError::Config(format!("{}: {e}", path.display())))?;
                config
                    .validate()
                    .map_err(|e| LedgerError::Config(format!("{}: {e}", path.display())))?;
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(LedgerError::io(format!("reading {}", path.display()), e)),
        }
    }
}
