//! What the ledger takes from keyledger.toml: the analysis rules its projections apply, how often the writer
//! stores checkpoints and snapshots, where the latest checkpoint is anchored, and which witnesses cosign it.

use crate::audit::anchor::AnchorConfig;
use crate::audit::witness_client::{WitnessConfig, WitnessPolicy};
use crate::projection::AnalysisRules;
use serde::{Deserialize, Serialize};

/// The ledger's settings; `config::AnalysisConfig::ledger_settings` composes them from the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerSettings {
    pub rules: AnalysisRules,
    pub checkpoints: CheckpointConfig,
    pub snapshots: SnapshotConfig,
    pub anchor: AnchorConfig,
    /// Witnesses each new checkpoint is submitted to, and when a checkpoint counts as witnessed.
    pub witnesses: Vec<WitnessConfig>,
    pub witness_policy: WitnessPolicy,
    /// Where the day keys of committed personal fields live (`<data>/personal`), when `[personal] commit` is on.
    pub personal_vault: Option<std::path::PathBuf>,
}

/// `[personal]`: whether new `key.used` events commit to their personal fields (docs/FORMAT.md, body version 2)
/// instead of carrying them, so that the values can be erased later.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersonalConfig {
    pub commit: bool,
}

/// When the writer signs and stores checkpoints besides every 1,024 events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// A checkpoint at least this often (seconds) while events arrive; 1..=86400.
    pub interval_secs: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self { interval_secs: 60 }
    }
}

/// How often a serving ledger persists its projection state, so that the next start replays only the tail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Seconds between snapshots while events arrive (one is also written at clean shutdown); 1..=86400.
    pub interval_secs: u64,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self { interval_secs: 300 }
    }
}
