//! Witnessed checkpoints: a quorum of witness keys, the check that a note carries enough verifying cosignatures
//! (exports, `verify-export --witness-key`), and the online check behind `audit verify --witnessed`, which asks
//! each configured witness about the log's newest checkpoint: a witness that cosigned a larger tree, or a history
//! the log does not continue, shows the log was cut or rewritten, with no anchor kept by the operator.

use super::checkpoint::Checkpoint;
use super::cosignature::{NamedKey, COSIGNATURE_V1};
use super::cosigned::cosigners;
use super::witness_client::{Outcome, WitnessClient, WitnessConfig, WitnessPolicy};
use crate::store::LogStore;
use serde::Serialize;

/// The witnesses whose cosignatures count, and how many make a checkpoint witnessed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WitnessQuorum {
    pub witnesses: Vec<NamedKey>,
    pub quorum: usize,
}

/// Why a checkpoint is not witnessed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WitnessedError {
    #[error(
        "witness quorum not met: {have} of the {need} cosignatures required verify ({cosigners})"
    )]
    QuorumNotMet {
        have: usize,
        need: usize,
        cosigners: String,
    },
    #[error("{0}")]
    BadKey(String),
}

impl WitnessQuorum {
    /// From keyledger.toml's `[[witnesses]]` and `[witness_policy]` (empty when no witness is configured).
    pub fn from_config(
        witnesses: &[WitnessConfig],
        policy: &WitnessPolicy,
    ) -> Result<Self, String> {
        let witnesses = witnesses
            .iter()
            .map(WitnessConfig::named_key)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            quorum: if witnesses.is_empty() {
                0
            } else {
                policy.quorum
            },
            witnesses,
        })
    }

    /// From verifier keys given on a command line; the quorum defaults to all of them.
    pub fn from_vkeys(vkeys: &[String], quorum: Option<usize>) -> Result<Self, WitnessedError> {
        let witnesses = vkeys
            .iter()
            .map(|vkey| {
                NamedKey::parse_vkey(vkey, COSIGNATURE_V1)
                    .map_err(|e| WitnessedError::BadKey(format!("--witness-key {vkey}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let quorum = quorum.unwrap_or(witnesses.len());
        if !(1..=witnesses.len()).contains(&quorum) {
            return Err(WitnessedError::BadKey(format!(
                "--quorum {quorum} is outside 1..={} (the witness keys given)",
                witnesses.len()
            )));
        }
        Ok(Self { witnesses, quorum })
    }

    /// Whether any witness is configured.
    pub fn is_set(&self) -> bool {
        !self.witnesses.is_empty()
    }

    /// The names of the witnesses whose cosignature of `note` verifies, when they make the quorum.
    pub fn check_note(&self, note: &str) -> Result<Vec<String>, WitnessedError> {
        let names: Vec<String> = cosigners(note, &self.witnesses)
            .into_iter()
            .map(|w| w.name.clone())
            .collect();
        if names.len() >= self.quorum.max(1) {
            Ok(names)
        } else {
            Err(WitnessedError::QuorumNotMet {
                have: names.len(),
                need: self.quorum.max(1),
                cosigners: if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                },
            })
        }
    }
}

/// What one witness said about the log's newest checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct WitnessAnswer {
    pub witness: String,
    /// `cosigned`, `conflict` or `failed`.
    pub outcome: &'static str,
    pub detail: String,
}

/// The online witnessed check of a log.
#[derive(Clone, Debug, Serialize)]
pub struct WitnessedLog {
    pub size: u64,
    pub quorum: usize,
    pub answers: Vec<WitnessAnswer>,
}

impl WitnessedLog {
    pub fn cosigned(&self) -> usize {
        self.answers
            .iter()
            .filter(|a| a.outcome == "cosigned")
            .count()
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &WitnessAnswer> {
        self.answers.iter().filter(|a| a.outcome == "conflict")
    }

    /// Passed: no witness holds a conflicting history and the quorum cosigned.
    pub fn is_ok(&self) -> bool {
        self.conflicts().next().is_none() && self.cosigned() >= self.quorum.max(1)
    }
}

/// Submits `note` (the log's newest checkpoint, of the tree `store` holds) to every configured witness. A witness
/// that cosigned more events than the log has, or another history, answers with a conflict.
pub fn ask_witnesses(
    store: &dyn LogStore,
    note: &str,
    witnesses: &[WitnessConfig],
    policy: &WitnessPolicy,
) -> Result<WitnessedLog, String> {
    let size = Checkpoint::parse_note(note)
        .map_err(|e| e.to_string())?
        .0
        .size;
    let mut answers = Vec::new();
    for config in witnesses {
        let mut client = WitnessClient::new(config, policy)?;
        let (outcome, detail) = match client.submit(store, note) {
            Outcome::Cosigned { timestamp, .. } => {
                ("cosigned", format!("cosigned at time {timestamp}"))
            }
            Outcome::Conflict { reason } => ("conflict", reason),
            Outcome::Failed { reason } => ("failed", reason),
        };
        answers.push(WitnessAnswer {
            witness: client.name().to_string(),
            outcome,
            detail,
        });
    }
    Ok(WitnessedLog {
        size,
        quorum: policy.quorum,
        answers,
    })
}
