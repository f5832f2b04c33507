//! Witness cosignatures of checkpoints, C2SP `tlog-cosignature` (cosignature/v1, Ed25519), and the C2SP verifier
//! keys (`vkey`) that name the keys: a log's note key (type 0x01) and a witness's cosigning key (type 0x04).
//!
//! A cosignature is a note signature line `— <witness name> base64(key id ‖ timestamp u64 BE ‖ Ed25519
//! signature)` over `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's note body. The key id is
//! SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[:4]. A witness that cosigns states that, at that time, this was the
//! largest tree of the log it had seen consistent with everything it saw before.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type of an Ed25519 signed-note key (a log's checkpoint key).
pub const NOTE_ED25519: u8 = 0x01;
/// Signature type of an Ed25519 cosignature/v1 key (a witness's key).
pub const COSIGNATURE_V1: u8 = 0x04;

/// Why a verifier key or a cosignature is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CosignatureError {
    #[error("not a verifier key (name+keyid+base64 key): {0}")]
    BadVerifierKey(&'static str),
    #[error("the cosignature line is malformed: {0}")]
    Malformed(&'static str),
    #[error("the cosignature by {0} does not verify")]
    BadSignature(String),
}

/// A key as a C2SP verifier key names it: its name, signature type and Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedKey {
    pub name: String,
    pub kind: u8,
    pub key: VerifyingKey,
}

impl NamedKey {
    pub fn new(name: &str, kind: u8, key: VerifyingKey) -> Self {
        Self {
            name: name.to_string(),
            kind,
            key,
        }
    }

    /// SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4].
    pub fn key_id(&self) -> [u8; 4] {
        let mut hasher = Sha256::new();
        hasher.update(self.name.as_bytes());
        hasher.update([b'\n', self.kind]);
        hasher.update(self.key.as_bytes());
        let digest = hasher.finalize();
        [digest[0], digest[1], digest[2], digest[3]]
    }

    /// `<name>+<hex key id>+<base64(type ‖ public key)>`.
    pub fn to_vkey(&self) -> String {
        let mut material = vec![self.kind];
        material.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id()),
            B64.encode(material)
        )
    }

    /// Parses a verifier key of type `kind`; the key id it carries must be the one its name and key give.
    pub fn parse_vkey(vkey: &str, kind: u8) -> Result<Self, CosignatureError> {
        let bad = CosignatureError::BadVerifierKey;
        // The name holds no '+'; the base64 key may.
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("three parts joined by '+' expected"));
        };
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
            return Err(bad("the name is empty or holds a space or '+'"));
        }
        let material = B64
            .decode(material)
            .map_err(|_| bad("the key is not base64"))?;
        match material.split_first() {
            Some((found, _)) if *found != kind => {
                return Err(bad(if kind == COSIGNATURE_V1 {
                    "not a cosignature/v1 key (type 0x04)"
                } else {
                    "not an Ed25519 note key (type 0x01)"
                }))
            }
            None => return Err(bad("the key is empty")),
            _ => {}
        }
        let key: [u8; 32] = material[1..]
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 public key"))?;
        let named = Self::new(name, kind, key);
        if hex::encode(named.key_id()) != id.to_ascii_lowercase() {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(named)
    }
}

/// The message a cosignature/v1 signs over a note body.
fn signed_message(timestamp: u64, body: &str) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// A cosignature/v1 line (newline included) by the witness `name` with `key`, over a checkpoint's note body.
pub fn cosign(key: &SigningKey, name: &str, body: &str, timestamp: u64) -> String {
    let witness = NamedKey::new(name, COSIGNATURE_V1, key.verifying_key());
    let signature = key.sign(signed_message(timestamp, body).as_bytes());
    let mut blob = witness.key_id().to_vec();
    blob.extend_from_slice(&timestamp.to_be_bytes());
    blob.extend_from_slice(&signature.to_bytes());
    format!("\u{2014} {name} {}\n", B64.encode(blob))
}

/// The timestamp of `witness`'s cosignature among the signature `lines` of a note whose body is `body`; `None`
/// when no line carries its name and key id, an error when such a line does not verify.
pub fn verify_cosignature(
    witness: &NamedKey,
    body: &str,
    lines: &str,
) -> Result<Option<u64>, CosignatureError> {
    let want = witness.key_id();
    for line in lines.lines() {
        let Some((name, blob)) = line
            .strip_prefix("\u{2014} ")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        let Ok(blob) = B64.decode(blob) else { continue };
        if name != witness.name || blob.len() < 4 || blob[..4] != want {
            continue;
        }
        if blob.len() != 4 + 8 + 64 {
            return Err(CosignatureError::Malformed("a cosignature/v1 is 76 bytes"));
        }
        let timestamp = u64::from_be_bytes(blob[4..12].try_into().unwrap_or_default());
        if timestamp > i64::MAX as u64 {
            return Err(CosignatureError::Malformed(
                "the timestamp exceeds 2^63 - 1",
            ));
        }
        let signature = Signature::from_slice(&blob[12..])
            .map_err(|_| CosignatureError::Malformed("not an Ed25519 signature"))?;
        return witness
            .key
            .verify_strict(signed_message(timestamp, body).as_bytes(), &signature)
            .map(|_| Some(timestamp))
            .map_err(|_| CosignatureError::BadSignature(witness.name.clone()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn witness() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn a_cosignature_verifies_and_a_changed_body_or_time_does_not() {
        let body = "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let line = cosign(&witness(), "w.example/1", body, 1_679_315_147);
        let key = NamedKey::new("w.example/1", COSIGNATURE_V1, witness().verifying_key());
        assert_eq!(
            verify_cosignature(&key, body, &line),
            Ok(Some(1_679_315_147))
        );
        let other = body.replace('5', "6");
        assert!(verify_cosignature(&key, &other, &line).is_err());
        // Another witness's line is not this one's.
        let stranger = NamedKey::new("w.example/2", COSIGNATURE_V1, witness().verifying_key());
        assert_eq!(verify_cosignature(&stranger, body, &line), Ok(None));
        // The same key as a note key (type 0x01) has another key id: the line is not its.
        let note_key = NamedKey::new("w.example/1", NOTE_ED25519, witness().verifying_key());
        assert_eq!(verify_cosignature(&note_key, body, &line), Ok(None));
    }

    /// The example of c2sp.org/signed-note and Go's golang.org/x/mod/sumdb/note (example_test.go): its verifier key
    /// reads with the key id it states, its signature line verifies over its text, and its malformed keys do not.
    #[test]
    fn the_signed_note_example_key_and_signature_verify() {
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
        let line = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";
        let key = NamedKey::parse_vkey(vkey, NOTE_ED25519).unwrap();
        assert_eq!(key.name, "PeterNeumann");
        assert_eq!(hex::encode(key.key_id()), "c74f20a3");
        assert_eq!(key.to_vkey(), vkey);
        let blob = B64.decode(line).unwrap();
        assert_eq!(blob[..4], key.key_id());
        let signature = Signature::from_slice(&blob[4..]).unwrap();
        assert!(key.key.verify_strict(text.as_bytes(), &signature).is_ok());
        assert!(key
            .key
            .verify_strict(b"another text\n", &signature)
            .is_err());
        // Go's badKey cases: a key of the wrong length and an unknown algorithm, each with its key hash adjusted.
        for bad in [
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(NamedKey::parse_vkey(bad, NOTE_ED25519).is_err(), "{bad}");
        }
    }

    #[test]
    fn verifier_keys_round_trip_and_a_wrong_type_or_id_is_refused() {
        let key = NamedKey::new("w.example/1", COSIGNATURE_V1, witness().verifying_key());
        let vkey = key.to_vkey();
        assert_eq!(NamedKey::parse_vkey(&vkey, COSIGNATURE_V1), Ok(key.clone()));
        assert!(NamedKey::parse_vkey(&vkey, NOTE_ED25519).is_err());
        // Keys whose base64 holds a '+' read too (the name never does).
        for seed in 0..64u8 {
            let key = SigningKey::from_bytes(&[seed; 32]).verifying_key();
            let named = NamedKey::new("w.example/1", COSIGNATURE_V1, key);
            assert_eq!(
                NamedKey::parse_vkey(&named.to_vkey(), COSIGNATURE_V1),
                Ok(named)
            );
        }
        let forged = vkey.replacen("w.example/1", "w.example/9", 1);
        assert!(NamedKey::parse_vkey(&forged, COSIGNATURE_V1).is_err());
        let note = NamedKey::new("example.com/log", NOTE_ED25519, witness().verifying_key());
        assert_eq!(
            note.to_vkey(),
            super::super::checkpoint::verifier_key("example.com/log", &witness().verifying_key())
        );
    }
}
