//! The client side of C2SP `tlog-witness`: `[[witnesses]]` in keyledger.toml, and one submission of a checkpoint
//! to one witness (`POST <url>/add-checkpoint` with a consistency proof from the size the witness last cosigned).
//! The writer's witnessing thread and `audit verify --witnessed` both submit through [`WitnessClient::submit`].
//!
//! A witness that answers 409 with a size this log has passed is asked once more from that size (it just had not
//! seen what this client thought); a size larger than the checkpoint's, a second 409 at the same size, or a
//! consistency proof it refuses (422) is a conflict: the witness cosigned a history this log does not continue.
//! A conflict is never retried.

use super::checkpoint::Checkpoint;
use super::cosignature::{verify_cosignature, NamedKey, COSIGNATURE_V1};
use super::merkle::consistency_proof;
use super::tree::StoredTree;
use crate::store::LogStore;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The content type of a witness's 409 body (its size).
const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// One `[[witnesses]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// A label for logs and metrics; the verifier key's name when left out (and it must match when given).
    pub name: Option<String>,
    /// The witness's base URL; the client posts to `<url>/add-checkpoint`.
    pub url: String,
    /// The witness's cosignature/v1 verifier key: `<name>+<hex key id>+<base64(0x04 ‖ public key)>`.
    pub key: String,
}

/// `[witness_policy]`: when a checkpoint counts as witnessed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WitnessPolicy {
    /// Cosignatures from this many of the configured witnesses make a checkpoint witnessed.
    pub quorum: usize,
    /// Seconds one submission may take (connect, send, answer).
    pub timeout_secs: u64,
}

impl Default for WitnessPolicy {
    fn default() -> Self {
        Self {
            quorum: 1,
            timeout_secs: 10,
        }
    }
}

impl WitnessConfig {
    /// The witness's cosigning key, checked against `name` when one is given.
    pub fn named_key(&self) -> Result<NamedKey, String> {
        let key = NamedKey::parse_vkey(&self.key, COSIGNATURE_V1)
            .map_err(|e| format!("witnesses.key {:?}: {e}", self.key))?;
        if let Some(name) = &self.name {
            if *name != key.name {
                return Err(format!(
                    "witnesses.name {name:?} is not the name in its key ({:?})",
                    key.name
                ));
            }
        }
        Ok(key)
    }
}

/// Checks `[[witnesses]]` and `[witness_policy]` together; the error names the field.
pub fn validate(witnesses: &[WitnessConfig], policy: &WitnessPolicy) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for witness in witnesses {
        let key = witness.named_key()?;
        if !(witness.url.starts_with("http://") || witness.url.starts_with("https://")) {
            return Err(format!(
                "witnesses.url {:?}: give an http:// or https:// URL",
                witness.url
            ));
        }
        if !names.insert(key.name.clone()) {
            return Err(format!("witnesses: {:?} is listed twice", key.name));
        }
    }
    if !witnesses.is_empty() && !(1..=witnesses.len()).contains(&policy.quorum) {
        return Err(format!(
            "witness_policy.quorum = {} is outside 1..={} (the witnesses listed)",
            policy.quorum,
            witnesses.len()
        ));
    }
    if !(1..=300).contains(&policy.timeout_secs) {
        return Err(format!(
            "witness_policy.timeout_secs = {} is outside 1..=300",
            policy.timeout_secs
        ));
    }
    Ok(())
}

/// What one submission came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The witness cosigned: its cosignature line (verified) and the size it now holds.
    Cosigned { line: String, timestamp: u64 },
    /// The witness holds a history this log does not continue (a fork, a cut or a rollback); never retried.
    Conflict { reason: String },
    /// Unreachable, refused for another reason, or an answer that did not verify: tried again later.
    Failed { reason: String },
}

/// A witness as the log talks to it.
pub struct WitnessClient {
    pub key: NamedKey,
    url: String,
    http: reqwest::blocking::Client,
    /// The size this client believes the witness holds for the log (0 before the first answer).
    pub known_size: u64,
}

impl WitnessClient {
    pub fn new(config: &WitnessConfig, policy: &WitnessPolicy) -> Result<Self, String> {
        let key = config.named_key()?;
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(policy.timeout_secs))
            .build()
            .map_err(|e| format!("witness {}: {e}", key.name))?;
        Ok(Self {
            key,
            url: format!("{}/add-checkpoint", config.url.trim_end_matches('/')),
            http,
            known_size: 0,
        })
    }

    pub fn name(&self) -> &str {
        &self.key.name
    }

    /// Submits `note` (a checkpoint of this log, whose tree `store` holds) and returns what came of it.
    pub fn submit(&mut self, store: &dyn LogStore, note: &str) -> Outcome {
        let (checkpoint, body, _) = match Checkpoint::parse_note(note) {
            Ok(parsed) => parsed,
            Err(e) => {
                return Outcome::Failed {
                    reason: format!("not a checkpoint: {e}"),
                }
            }
        };
        let mut retried_from = None;
        loop {
            let old = self.known_size;
            if old > checkpoint.size {
                return Outcome::Conflict {
                    reason: format!(
                        "the witness has cosigned a tree of {old} events, larger than this log's checkpoint of {}: the log was cut or rolled back",
                        checkpoint.size
                    ),
                };
            }
            let proof = match consistency_proof(&StoredTree { store }, old, checkpoint.size) {
                Ok(proof) => proof,
                Err(e) => {
                    return Outcome::Failed {
                        reason: format!("the consistency proof from {old}: {e}"),
                    }
                }
            };
            match self.post(&request_body(old, &proof, note)) {
                Err(reason) => return Outcome::Failed { reason },
                Ok(Answer::Cosigned(lines)) => {
                    return match verify_cosignature(&self.key, &body, &lines) {
                        Ok(Some(timestamp)) => {
                            self.known_size = checkpoint.size;
                            let line = lines
                                .lines()
                                .find(|l| l.contains(&format!("\u{2014} {} ", self.key.name)))
                                .map(|l| format!("{l}\n"))
                                .unwrap_or_default();
                            Outcome::Cosigned { line, timestamp }
                        }
                        Ok(None) => Outcome::Failed {
                            reason: "the answer holds no cosignature by the configured key".into(),
                        },
                        Err(e) => Outcome::Failed {
                            reason: e.to_string(),
                        },
                    };
                }
                Ok(Answer::Size(size)) => {
                    if retried_from == Some(size) || size == old {
                        return Outcome::Conflict {
                            reason: format!(
                                "the witness holds another tree of {size} events than this log (a fork)"
                            ),
                        };
                    }
                    self.known_size = size;
                    retried_from = Some(size);
                }
                Ok(Answer::ProofRefused(text)) => {
                    return Outcome::Conflict {
                        reason: format!(
                            "the witness refused the consistency proof from {old} to {}: this log's history differs from what it cosigned ({text})",
                            checkpoint.size
                        ),
                    }
                }
            }
        }
    }

    fn post(&self, body: &str) -> Result<Answer, String> {
        let response = self
            .http
            .post(&self.url)
            .body(body.to_string())
            .send()
            .map_err(|e| format!("{}: {e}", self.url))?;
        let status = response.status().as_u16();
        let size_body = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(SIZE_CONTENT_TYPE.as_bytes()));
        let text = response
            .text()
            .map_err(|e| format!("{}: reading the answer: {e}", self.url))?;
        let text_line = text.trim().chars().take(200).collect::<String>();
        match status {
            200 => Ok(Answer::Cosigned(text)),
            409 if size_body => text
                .trim()
                .parse()
                .map(Answer::Size)
                .map_err(|_| format!("409 with a size that is not a number: {text_line:?}")),
            422 => Ok(Answer::ProofRefused(text_line)),
            404 => Err(format!(
                "404: the witness does not follow this log ({text_line})"
            )),
            403 => Err(format!(
                "403: the witness does not trust this log's key ({text_line})"
            )),
            other => Err(format!("{other}: {text_line}")),
        }
    }
}

enum Answer {
    Cosigned(String),
    Size(u64),
    ProofRefused(String),
}

/// `old <size>`, the proof's hashes in base64 one per line, a blank line, the note (c2sp.org/tlog-witness).
pub fn request_body(old: u64, proof: &[crate::chain::Hash32], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&B64.encode(hash));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}
