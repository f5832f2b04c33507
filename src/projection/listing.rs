//! Listings shared by the HTTP API and the CLI: anomalies within a window, each with its key's name.

use super::anomaly::Anomaly;
use super::KeyState;
use crate::time::LedgerTime;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An anomaly as listed: the finding plus the name of the key it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyListing {
    #[serde(flatten)]
    pub anomaly: Anomaly,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
}

/// The anomalies whose window ends in `[from, to)`, optionally of one key, oldest first.
pub fn list_anomalies(
    found: &[Anomaly],
    keys: &KeyState,
    key: Option<Uuid>,
    from: Option<LedgerTime>,
    to: Option<LedgerTime>,
) -> Vec<AnomalyListing> {
    found
        .iter()
        .filter(|a| {
            key.is_none_or(|k| a.finding.key_id == Some(k))
                && from.is_none_or(|t| a.finding.window_end >= t)
                && to.is_none_or(|t| a.finding.window_end < t)
        })
        .map(|a| AnomalyListing {
            key_name: a
                .finding
                .key_id
                .and_then(|k| keys.get(&k))
                .map(|k| k.config.name.clone()),
            anomaly: a.clone(),
        })
        .collect()
}
