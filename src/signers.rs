//! The chain of signers: which Ed25519 key signs which events, learned from `ledger.initialized` and
//! `ledger.signer_rotated` events (each new key endorsed by the one before it).

use crate::chain::{parse_public_key_hex, SignerId};
use crate::event::{Event, EventData};
use ed25519_dalek::VerifyingKey;

/// One signer and the first seq it signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerEntry {
    pub id: SignerId,
    pub key: VerifyingKey,
    pub from_seq: u64,
}

/// Why an event's signer statement is unacceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignerError {
    #[error("event names an invalid public key")]
    BadKey,
    #[error("signer id {stated} does not match its public key ({actual})")]
    IdMismatch { stated: String, actual: String },
    #[error("ledger.initialized appears after the first event")]
    LateGenesis,
}

/// Signers in the order they took over. The first is the ledger's trust anchor.
#[derive(Clone, Debug, Default)]
pub struct SignerRegistry {
    entries: Vec<SignerEntry>,
}

impl SignerRegistry {
    /// A registry that trusts `anchor` from seq 1 (what an offline verifier starts from).
    pub fn anchored(anchor: VerifyingKey) -> Self {
        Self {
            entries: vec![SignerEntry {
                id: SignerId::of(&anchor),
                key: anchor,
                from_seq: 1,
            }],
        }
    }

    /// The registry as `(public key hex, first seq)` pairs, for persisting it (ledger::snapshot).
    pub fn to_persisted(&self) -> Vec<(String, u64)> {
        self.entries
            .iter()
            .map(|entry| (hex::encode(entry.key.as_bytes()), entry.from_seq))
            .collect()
    }

    /// Reads [`SignerRegistry::to_persisted`] back; `None` if a key is malformed.
    pub fn from_persisted(entries: &[(String, u64)]) -> Option<Self> {
        let entries = entries
            .iter()
            .map(|(key, from_seq)| {
                let key = parse_public_key_hex(key).ok()?;
                Some(SignerEntry {
                    id: SignerId::of(&key),
                    key,
                    from_seq: *from_seq,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { entries })
    }

    pub fn entries(&self) -> &[SignerEntry] {
        &self.entries
    }

    /// The signer in force for the event after the last one observed.
    pub fn current(&self) -> Option<&SignerEntry> {
        self.entries.last()
    }

    /// The signer that must have signed `seq`.
    pub fn signer_for(&self, seq: u64) -> Option<&SignerEntry> {
        self.entries
            .iter()
            .rev()
            .find(|entry| entry.from_seq <= seq)
    }

    /// Learns from an event that has already been checked against the current signer: a rotation makes its new
    /// key the signer from the next seq on; a genesis event anchors an empty registry.
    pub fn observe(&mut self, event: &Event) -> Result<(), SignerError> {
        match &event.data {
            EventData::LedgerInitialized(init) => {
                if event.seq != 1 {
                    return Err(SignerError::LateGenesis);
                }
                if self.entries.is_empty() {
                    let key =
                        parse_public_key_hex(&init.public_key).map_err(|_| SignerError::BadKey)?;
                    check_id(&key, &init.signer_id)?;
                    self.entries.push(SignerEntry {
                        id: SignerId::of(&key),
                        key,
                        from_seq: 1,
                    });
                }
                Ok(())
            }
            EventData::SignerRotated(rotation) => {
                let key = parse_public_key_hex(&rotation.new_public_key)
                    .map_err(|_| SignerError::BadKey)?;
                check_id(&key, &rotation.new_signer_id)?;
                self.entries.push(SignerEntry {
                    id: SignerId::of(&key),
                    key,
                    from_seq: event.seq + 1,
                });
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn check_id(key: &VerifyingKey, stated: &str) -> Result<(), SignerError> {
    let actual = SignerId::of(key).to_string();
    if actual == stated {
        Ok(())
    } else {
        Err(SignerError::IdMismatch {
            stated: stated.to_string(),
            actual,
        })
    }
}
