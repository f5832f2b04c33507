//! API-key secrets: their format (product and environment prefix, random body, checksum), generation from the OS
//! RNG, hashing, the public prefix kept for identification, and constant-time comparison.
//!
//! Format: `kl_<env>_<body><check>` where `<env>` is 1–16 of `[a-z0-9]`, `<body>` is 30 base62 characters from
//! the OS RNG (178 bits) and `<check>` is the CRC32 of everything before it, as 6 base62 digits (most significant
//! first). Regex for secret scanners: `\bkl_[a-z0-9]{1,16}_[0-9A-Za-z]{36}\b`. Only the public prefix
//! (`kl_<env>_` and the first 8 body characters, which leaves 130 bits unknown) and SHA-256 of the whole secret
//! string are ever stored.

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The regular expression a secret scanner can use to recognise keyledger secrets.
pub const SECRET_REGEX: &str = r"\bkl_[a-z0-9]{1,16}_[0-9A-Za-z]{36}\b";
const PRODUCT: &str = "kl";
const BODY_LEN: usize = 30;
const CHECK_LEN: usize = 6;
/// Body characters that are part of the public prefix.
const PUBLIC_BODY_CHARS: usize = 8;
const MAX_ENV_LEN: usize = 16;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a presented string is not a keyledger secret. The message never repeats the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    #[error("not a keyledger key: expected kl_<env>_<36 characters>")]
    Shape,
    #[error("key checksum does not match (mistyped or truncated key)")]
    Checksum,
}

/// A secret in memory: zeroed on drop, never printed by `Debug`.
pub struct Secret(Zeroizing<String>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}…)", self.public_prefix())
    }
}

/// The SHA-256 of a secret string: what the log stores and lookups use.
pub type SecretHash = [u8; 32];

impl Secret {
    /// A new secret for the given environment, from the operating system's RNG.
    pub fn generate(environment: &str) -> Self {
        let env = env_label(environment);
        let mut text = String::with_capacity(4 + env.len() + BODY_LEN + CHECK_LEN);
        text.push_str(PRODUCT);
        text.push('_');
        text.push_str(&env);
        text.push('_');
        let mut filled = 0;
        let mut bytes = Zeroizing::new([0u8; 64]);
        while filled < BODY_LEN {
            OsRng.fill_bytes(bytes.as_mut());
            // Rejection sampling keeps the characters uniform: 248 = 4 × 62.
            for byte in bytes.iter().filter(|b| **b < 248) {
                if filled == BODY_LEN {
                    break;
                }
                text.push(BASE62[usize::from(*byte % 62)] as char);
                filled += 1;
            }
        }
        let check = checksum(&text);
        text.push_str(&check);
        Secret(Zeroizing::new(text))
    }

    /// Parses a presented secret, checking shape and checksum before any lookup.
    pub fn parse(text: &str) -> Result<Self, SecretFormatError> {
        check_format(text)?;
        Ok(Secret(Zeroizing::new(text.to_string())))
    }

    /// The secret itself, for showing once to whoever created or rotated the key.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        hash_secret(&self.0)
    }

    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash())
    }

    /// `kl_<env>_` plus the first 8 body characters.
    pub fn public_prefix(&self) -> String {
        public_prefix_of(&self.0).unwrap_or_default()
    }
}

/// SHA-256 of the secret string's UTF-8 bytes.
pub fn hash_secret(text: &str) -> SecretHash {
    Sha256::digest(text.as_bytes()).into()
}

/// Constant-time equality of two secret hashes.
pub fn hashes_equal(a: &SecretHash, b: &SecretHash) -> bool {
    a.ct_eq(b).into()
}

/// Checks shape and checksum without keeping the text.
pub fn check_format(text: &str) -> Result<(), SecretFormatError> {
    let rest = text.strip_prefix("kl_").ok_or(SecretFormatError::Shape)?;
    let (env, tail) = rest.split_once('_').ok_or(SecretFormatError::Shape)?;
    let env_ok = !env.is_empty()
        && env.len() <= MAX_ENV_LEN
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !env_ok
        || tail.len() != BODY_LEN + CHECK_LEN
        || !tail.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(SecretFormatError::Shape);
    }
    let (without_check, check) = text.split_at(text.len() - CHECK_LEN);
    if checksum(without_check)
        .as_bytes()
        .ct_eq(check.as_bytes())
        .into()
    {
        Ok(())
    } else {
        Err(SecretFormatError::Checksum)
    }
}

/// True when `text` holds a keyledger secret anywhere: `kl_<env>_` and the 36 characters after it pass
/// [`check_format`] (shape and checksum), whatever surrounds them. Fields that are stored, echoed or logged
/// (names, owners, scopes, metadata, request ids) refuse such text; the checksum keeps look-alikes such as
/// documentation examples acceptable.
pub fn contains_secret(text: &str) -> bool {
    text.match_indices("kl_").any(|(at, _)| {
        let Some(env_len) = text[at + 3..].find('_') else {
            return false;
        };
        let end = at + 3 + env_len + 1 + BODY_LEN + CHECK_LEN;
        text.get(at..end)
            .is_some_and(|candidate| check_format(candidate).is_ok())
    })
}

/// The public prefix of a well-formed secret.
pub fn public_prefix_of(text: &str) -> Option<String> {
    let rest = text.strip_prefix("kl_")?;
    let (env, tail) = rest.split_once('_')?;
    let visible = tail.get(..PUBLIC_BODY_CHARS)?;
    Some(format!("kl_{env}_{visible}"))
}

/// The environment as it appears in a secret: lower-case letters and digits only, at most 16.
pub fn env_label(environment: &str) -> String {
    let label: String = environment
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(MAX_ENV_LEN)
        .collect();
    if label.is_empty() {
        "default".into()
    } else {
        label
    }
}

fn checksum(text: &str) -> String {
    let mut value = u64::from(crc32fast::hash(text.as_bytes()));
    let mut digits = [b'0'; CHECK_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|b| *b as char).collect()
}

/// Parses a 64-hex-digit SHA-256 (a leaked secret's hash, as GitHub's audit log carries it).
pub fn parse_hash_hex(text: &str) -> Option<SecretHash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text.trim().to_ascii_lowercase(), &mut hash).ok()?;
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_look_as_documented() {
        let secret = Secret::generate("Production");
        let text = secret.expose().to_string();
        assert!(text.starts_with("kl_production_"), "{text}");
        assert_eq!(text.len(), "kl_production_".len() + 36);
        assert!(Secret::parse(&text).is_ok());
        assert_eq!(secret.public_prefix().len(), "kl_production_".len() + 8);
        assert!(text.starts_with(&secret.public_prefix()));
        assert_ne!(
            Secret::generate("production").expose(),
            text,
            "two secrets differ"
        );
    }

    #[test]
    fn typos_and_foreign_strings_are_rejected_before_lookup() {
        let text = Secret::generate("staging").expose().to_string();
        let mut typo = text.clone().into_bytes();
        let at = "kl_staging_".len() + 3;
        typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            Secret::parse(std::str::from_utf8(&typo).unwrap()).err(),
            Some(SecretFormatError::Checksum)
        );
        assert_eq!(
            Secret::parse(&text[..text.len() - 1]).err(),
            Some(SecretFormatError::Shape)
        );
        assert_eq!(
            Secret::parse("ghp_abcdefghijklmnopqrstuvwxyz0123456789").err(),
            Some(SecretFormatError::Shape)
        );
        assert_eq!(
            Secret::parse("kl_Prod_abc").err(),
            Some(SecretFormatError::Shape)
        );
    }

    #[test]
    fn secrets_are_found_inside_other_text_but_look_alikes_are_not() {
        let text = Secret::generate("production").expose().to_string();
        for holder in [
            text.clone(),
            format!("req-{text}"),
            format!("{text}.2"),
            format!("xkl_{text}"),
            format!("note: {text} é"),
        ] {
            assert!(contains_secret(&holder), "{holder}");
        }
        let mut typo = text.clone().into_bytes();
        let at = typo.len() - 1;
        typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
        for other in [
            String::from_utf8(typo).unwrap(),
            text[..text.len() - 1].to_string(),
            format!("kl_prod_{}", "A".repeat(36)),
            "kl_".into(),
            "kl_é_".into(),
            "team-billing".into(),
        ] {
            assert!(!contains_secret(&other), "{other}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::generate("dev");
        let shown = format!("{secret:?}");
        assert!(!shown.contains(secret.expose()));
        assert!(shown.contains(&secret.public_prefix()));
    }

    #[test]
    fn hashes_compare_and_parse() {
        let secret = Secret::generate("dev");
        assert!(hashes_equal(&secret.hash(), &hash_secret(secret.expose())));
        assert_eq!(
            parse_hash_hex(&secret.hash_hex().to_uppercase()),
            Some(secret.hash())
        );
        assert_eq!(parse_hash_hex("xyz"), None);
    }
}
