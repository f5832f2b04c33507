//! Listings shared by the HTTP API and the CLI: anomalies within a window, each with its key's name, read from
//! the `anomaly.detected` events in the log (through the key's postings, or the lifecycle index).

use super::anomaly::Anomaly;
use super::KeyState;
use crate::checked::CheckedReader;
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData};
use crate::store::LogStore;
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

/// The anomalies recorded up to `durable_seq` whose window ends in `[from, to)`, optionally of one key, oldest
/// first. A finding is recorded after the use that made it, so the read starts at `from`.
pub fn list_anomalies(
    store: &dyn LogStore,
    key: Option<Uuid>,
    from: Option<LedgerTime>,
    to: Option<LedgerTime>,
    durable_seq: u64,
) -> LedgerResult<Vec<Anomaly>> {
    let start = match from {
        Some(from) => store.first_seq_at_or_after(from)?,
        None => 1,
    };
    let end = durable_seq.saturating_add(1).max(start);
    let seqs = match key {
        Some(key) => store.key_seqs(key, start, end),
        None => store.lifecycle_seqs(start, end),
    };
    let mut reader = CheckedReader::new(store);
    let mut found = Vec::new();
    for seq in seqs {
        let record = reader.get_indexed(seq?)?;
        // Most lifecycle events are something else: skip them without decoding.
        if !record.body.windows(16).any(|w| w == b"anomaly.detected") {
            continue;
        }
        let event = Event::decode(&record.body).map_err(|source| LedgerError::Decode {
            seq: record.seq,
            source,
        })?;
        let EventData::AnomalyDetected(finding) = event.data else {
            continue;
        };
        let in_window = key.is_none_or(|k| finding.key_id == Some(k))
            && from.is_none_or(|t| finding.window_end >= t)
            && to.is_none_or(|t| finding.window_end < t);
        if in_window {
            found.push(Anomaly {
                finding,
                seq: event.seq,
            });
        }
    }
    Ok(found)
}

/// `found`, each with the name of the key it concerns.
pub fn named(found: Vec<Anomaly>, keys: &KeyState) -> Vec<AnomalyListing> {
    found
        .into_iter()
        .map(|anomaly| AnomalyListing {
            key_name: anomaly
                .finding
                .key_id
                .and_then(|k| keys.get(&k))
                .map(|k| k.config.name.clone()),
            anomaly,
        })
        .collect()
}
