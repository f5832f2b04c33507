//! The hash chain and its signatures: domain-separated SHA-256 links, the ledger's Ed25519 signer and signer ids.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// Prefix of every chain hash input, so that a chain hash can never be mistaken for any other SHA-256 use.
pub const CHAIN_DOMAIN: &[u8] = b"keyledger/event/v1\n";

/// A SHA-256 digest.
pub type Hash32 = [u8; 32];

/// What the first event chains from.
pub const GENESIS_PREV: Hash32 = [0u8; 32];

/// `SHA-256(CHAIN_DOMAIN ‖ prev ‖ body)`.
pub fn chain_hash(prev: &Hash32, body: &[u8]) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update(CHAIN_DOMAIN);
    hasher.update(prev);
    hasher.update(body);
    hasher.finalize().into()
}

/// Why key material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyMaterialError {
    #[error("signing key must be 64 hex characters (a 32-byte Ed25519 seed)")]
    BadSeed,
    #[error("public key must be 64 hex characters (a 32-byte Ed25519 public key)")]
    BadPublicKey,
}

/// Identifies a signing key: the first 8 bytes of SHA-256 of its 32-byte public key, written as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignerId(pub [u8; 8]);

impl SignerId {
    pub fn of(public: &VerifyingKey) -> Self {
        let digest = Sha256::digest(public.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        SignerId(id)
    }
}

impl fmt::Display for SignerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SignerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerId({self})")
    }
}

/// The ledger's signing key: in memory (its seed zeroed on drop and never printed) or on a PKCS#11 token.
pub struct LedgerSigner {
    key: SignerKey,
    id: SignerId,
}

enum SignerKey {
    Memory(Box<SigningKey>),
    Token(std::sync::Arc<crate::token::TokenKey>),
}

/// Why a signature could not be made (only a token can fail to sign).
#[derive(Debug, thiserror::Error)]
#[error("the signing key could not sign: {0}")]
pub struct SignError(#[from] pub crate::token::TokenError);

impl fmt::Debug for LedgerSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerSigner({})", self.id)
    }
}

impl LedgerSigner {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        Self::from_key(SigningKey::generate(&mut rand_core::OsRng))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_key(SigningKey::from_bytes(seed))
    }

    /// Parses the key file's text: 64 hex digits of the seed, surrounding whitespace ignored.
    pub fn from_seed_hex(text: &str) -> Result<Self, KeyMaterialError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| KeyMaterialError::BadSeed)?;
        Ok(Self::from_seed(&seed))
    }

    fn from_key(key: SigningKey) -> Self {
        let id = SignerId::of(&key.verifying_key());
        Self {
            key: SignerKey::Memory(Box::new(key)),
            id,
        }
    }

    /// The key on a PKCS#11 token.
    pub fn from_token(token: crate::token::TokenKey) -> Self {
        let id = SignerId::of(&token.public_key());
        Self {
            key: SignerKey::Token(std::sync::Arc::new(token)),
            id,
        }
    }

    /// The seed as key-file text, for a key held in memory (`None` for a token's, which never leaves it).
    /// Callers write it only to a 0600 file.
    pub fn seed_hex(&self) -> Option<Zeroizing<String>> {
        match &self.key {
            SignerKey::Memory(key) => Some(Zeroizing::new(hex::encode(key.to_bytes()))),
            SignerKey::Token(_) => None,
        }
    }

    /// A second handle on the same key (for a thread that signs besides the writer, e.g. snapshots).
    pub(crate) fn duplicate(&self) -> Self {
        let key = match &self.key {
            SignerKey::Memory(key) => SignerKey::Memory(key.clone()),
            SignerKey::Token(token) => SignerKey::Token(token.clone()),
        };
        Self { key, id: self.id }
    }

    pub fn id(&self) -> SignerId {
        self.id
    }

    pub fn public_key(&self) -> VerifyingKey {
        match &self.key {
            SignerKey::Memory(key) => key.verifying_key(),
            SignerKey::Token(token) => token.public_key(),
        }
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key().as_bytes())
    }

    /// Whether the key is on a PKCS#11 token.
    pub fn on_token(&self) -> bool {
        matches!(self.key, SignerKey::Token(_))
    }

    /// Signs arbitrary bytes (checkpoint notes).
    pub fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        match &self.key {
            SignerKey::Memory(key) => Ok(key.sign(message).to_bytes()),
            SignerKey::Token(token) => Ok(token.sign(message)?),
        }
    }

    /// After a failure to sign: reopens a token's key and proves it signs again (a key in memory cannot fail).
    pub fn recover(&self) -> Result<(), SignError> {
        match &self.key {
            SignerKey::Memory(_) => Ok(()),
            SignerKey::Token(token) => {
                token.reopen()?;
                token.sign(b"keyledger signer probe")?;
                Ok(())
            }
        }
    }

    /// Signs an event hash: the signature is over the 32 raw hash bytes.
    pub fn sign_hash(&self, hash: &Hash32) -> Result<[u8; 64], SignError> {
        self.sign_message(hash)
    }
}

/// Parses 64 hex digits into an Ed25519 public key.
pub fn parse_public_key_hex(text: &str) -> Result<VerifyingKey, KeyMaterialError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| KeyMaterialError::BadPublicKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyMaterialError::BadPublicKey)
}

/// Checks one signature strictly (rejects weak keys and non-canonical signatures).
pub fn verify_hash_signature(public: &VerifyingKey, hash: &Hash32, signature: &[u8; 64]) -> bool {
    public
        .verify_strict(hash, &Signature::from_bytes(signature))
        .is_ok()
}

/// A signature to check: the event's seq, its hash, its signature and the key of the signer in force.
pub type PendingSignature = (u64, Hash32, [u8; 64], VerifyingKey);

/// Checks signatures in batches on all cores; returns the lowest seq whose signature does not verify (a failing
/// batch is re-checked one by one, strictly).
pub fn first_bad_signature(pending: &[PendingSignature]) -> Option<u64> {
    use rayon::prelude::*;
    pending
        .par_chunks(256)
        .filter_map(|batch| {
            let messages: Vec<&[u8]> = batch
                .iter()
                .map(|(_, hash, _, _)| hash.as_slice())
                .collect();
            let signatures: Vec<Signature> = batch
                .iter()
                .map(|(_, _, sig, _)| Signature::from_bytes(sig))
                .collect();
            let keys: Vec<VerifyingKey> = batch.iter().map(|(_, _, _, key)| *key).collect();
            if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                return None;
            }
            batch
                .iter()
                .find(|(_, hash, sig, key)| !verify_hash_signature(key, hash, sig))
                .map(|(seq, _, _, _)| *seq)
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_hash_depends_on_every_input() {
        let a = chain_hash(&GENESIS_PREV, b"{}");
        assert_ne!(a, chain_hash(&[1u8; 32], b"{}"));
        assert_ne!(a, chain_hash(&GENESIS_PREV, b"{ }"));
        let mut plain = Sha256::new();
        plain.update(GENESIS_PREV);
        plain.update(b"{}");
        assert_ne!(
            a,
            <Hash32>::from(plain.finalize()),
            "domain tag must change the hash"
        );
    }

    #[test]
    fn signatures_verify_only_for_their_hash_and_key() {
        let signer = LedgerSigner::generate();
        let other = LedgerSigner::generate();
        let hash = chain_hash(&GENESIS_PREV, b"body");
        let sig = signer.sign_hash(&hash).unwrap();
        assert!(verify_hash_signature(&signer.public_key(), &hash, &sig));
        assert!(!verify_hash_signature(&other.public_key(), &hash, &sig));
        let mut other_hash = hash;
        other_hash[0] ^= 1;
        assert!(!verify_hash_signature(
            &signer.public_key(),
            &other_hash,
            &sig
        ));
    }

    #[test]
    fn seed_hex_round_trips_and_bad_text_is_refused() {
        let signer = LedgerSigner::generate();
        let again = LedgerSigner::from_seed_hex(&signer.seed_hex().unwrap()).unwrap();
        assert_eq!(again.public_key(), signer.public_key());
        assert_eq!(again.id(), signer.id());
        assert!(LedgerSigner::from_seed_hex("abc").is_err());
        assert!(parse_public_key_hex(&signer.public_key_hex()).is_ok());
    }
}
