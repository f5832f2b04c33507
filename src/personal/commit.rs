//! Commitments to personal values: `SHA-256("keyledger/personal/v1\n" ‖ field ‖ "\n" ‖ salt ‖ value)`, with a
//! fresh 16-byte salt per value from the operating system's generator.
//!
//! Why a salted hash and not an HMAC under a kept key: the values are small spaces (the IPv4 space is 2^32, a
//! known /16 is 65,536 guesses), so whoever can compute the commitment function can find the value by trying
//! them all. With a 128-bit salt that is erased with the value, nobody can compute it after the erasure — not the
//! operator either — so the erasure is real; an HMAC under a key that is kept would only move the dictionary
//! attack to whoever holds the key. The price: once a value and its salt are erased, "did 203.0.113.7 use this
//! key?" cannot be answered from the commitment even by someone who supplies the address. While the opening
//! exists, it can (the opening is checked against the commitment in the signed body).

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The personal fields of a `key.used` event, in the order the format lists them.
pub const FIELDS: [&str; 3] = ["ip", "gateway_ip", "user_agent"];
pub const SALT_LEN: usize = 16;
const DOMAIN: &[u8] = b"keyledger/personal/v1\n";

/// A commitment: the SHA-256 above.
pub type Commitment = [u8; 32];

/// What opens a commitment: the salt and the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    /// 32 lower-case hex digits.
    pub salt: String,
    pub value: String,
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Personal data stays out of logs and panics.
        f.write_str("Opening(…)")
    }
}

/// Why an opening does not open a commitment.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpeningError {
    #[error("the salt is not {SALT_LEN} bytes of hex")]
    BadSalt,
    #[error("the value and salt do not open the commitment to {0}")]
    Mismatch(&'static str),
}

/// The commitment of `field` to `value` under `salt`.
pub fn commitment(field: &str, salt: &[u8; SALT_LEN], value: &str) -> Commitment {
    let mut hash = Sha256::new();
    hash.update(DOMAIN);
    hash.update(field.as_bytes());
    hash.update(b"\n");
    hash.update(salt);
    hash.update(value.as_bytes());
    hash.finalize().into()
}

impl Opening {
    /// A fresh salt for `value`, and the commitment it opens.
    pub fn new(field: &'static str, value: &str) -> (Self, Commitment) {
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let opening = Opening {
            salt: hex::encode(salt),
            value: value.to_string(),
        };
        (opening, commitment(field, &salt, value))
    }

    /// Checks that this opens `committed` as the value of `field`.
    pub fn check(&self, field: &'static str, committed: &Commitment) -> Result<(), OpeningError> {
        let mut salt = [0u8; SALT_LEN];
        hex::decode_to_slice(&self.salt, &mut salt).map_err(|_| OpeningError::BadSalt)?;
        let computed = commitment(field, &salt, &self.value);
        // Constant time: a caller trying values must learn nothing from how long a refusal takes.
        match subtle::ConstantTimeEq::ct_eq(&computed[..], &committed[..]).into() {
            true => Ok(()),
            false => Err(OpeningError::Mismatch(field)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opening_opens_its_commitment_and_nothing_else() {
        let (opening, committed) = Opening::new("ip", "203.0.113.7");
        assert_eq!(opening.check("ip", &committed), Ok(()));
        // The same value as another field, another value with the same salt, a changed salt: all refused.
        assert_eq!(
            opening.check("gateway_ip", &committed),
            Err(OpeningError::Mismatch("gateway_ip"))
        );
        let forged = Opening {
            value: "203.0.113.8".into(),
            ..opening.clone()
        };
        assert_eq!(
            forged.check("ip", &committed),
            Err(OpeningError::Mismatch("ip"))
        );
        let mut salt = opening.salt.clone().into_bytes();
        salt[0] = if salt[0] == b'0' { b'1' } else { b'0' };
        let resalted = Opening {
            salt: String::from_utf8(salt).unwrap(),
            ..opening.clone()
        };
        assert_eq!(
            resalted.check("ip", &committed),
            Err(OpeningError::Mismatch("ip"))
        );
        let short = Opening {
            salt: "00".into(),
            ..opening
        };
        assert_eq!(short.check("ip", &committed), Err(OpeningError::BadSalt));
    }

    #[test]
    fn two_commitments_to_one_value_differ() {
        let (_, first) = Opening::new("ip", "198.51.100.1");
        let (_, second) = Opening::new("ip", "198.51.100.1");
        assert_ne!(
            first, second,
            "a fresh salt per value: equal values do not link"
        );
    }

    /// The dictionary attack the salt defeats: every address of the known /16 hashed the way the commitment is,
    /// with any salt but the erased one (here: the all-zero salt, and no salt at all), matches nothing; with the
    /// salt, the same search finds the address at once. So after the salt is erased the search space is the
    /// salt's 2^128, not the /16's 2^16.
    #[test]
    fn a_whole_slash_16_without_the_salt_finds_nothing() {
        let (opening, committed) = Opening::new("ip", "203.0.113.7");
        let zero = [0u8; SALT_LEN];
        let mut found_without = 0;
        let mut found_with = Vec::new();
        let mut salt = [0u8; SALT_LEN];
        hex::decode_to_slice(&opening.salt, &mut salt).unwrap();
        for high in 0..=255u8 {
            for low in 0..=255u8 {
                let guess = format!("203.0.{high}.{low}");
                let unsalted: [u8; 32] = Sha256::digest(guess.as_bytes()).into();
                if commitment("ip", &zero, &guess) == committed || unsalted == committed {
                    found_without += 1;
                }
                if commitment("ip", &salt, &guess) == committed {
                    found_with.push(guess);
                }
            }
        }
        assert_eq!(found_without, 0);
        assert_eq!(found_with, vec!["203.0.113.7".to_string()]);
    }
}
