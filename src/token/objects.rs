//! The token's objects: finding the token by label, the key pair by label, reading an Ed25519 public key, and
//! generating a key pair that never leaves the token.

use super::{pkcs11, TokenError};
use cryptoki::context::Pkcs11;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use ed25519_dalek::VerifyingKey;

/// DER of the curve OID 1.3.101.112 (id-Ed25519, RFC 8410), the EC parameters of an Ed25519 key.
const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];

pub(super) fn find_token(context: &Pkcs11, label: &str) -> Result<Slot, TokenError> {
    for slot in context
        .get_slots_with_token()
        .map_err(pkcs11("listing slots"))?
    {
        let info = context
            .get_token_info(slot)
            .map_err(pkcs11("reading token info"))?;
        if info.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(TokenError::Config(format!(
        "no token labelled {label:?} in the module"
    )))
}

pub(super) fn find_key(
    session: &Session,
    label: &str,
) -> Result<Option<(ObjectHandle, VerifyingKey)>, TokenError> {
    let find = |class| {
        session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(pkcs11("finding the key"))
    };
    let (private, public) = (
        find(ObjectClass::PRIVATE_KEY)?,
        find(ObjectClass::PUBLIC_KEY)?,
    );
    match (private.as_slice(), public.as_slice()) {
        ([], []) => Ok(None),
        ([key], [public]) => Ok(Some((*key, public_key(session, *public)?))),
        _ => Err(TokenError::Config(format!(
            "the token holds {} private and {} public Ed25519 keys labelled {label:?}: one of each expected",
            private.len(),
            public.len()
        ))),
    }
}

/// CKA_EC_POINT: a DER OCTET STRING around the 32-byte key (SoftHSM), or the bare 32 bytes (PKCS#11 3.0 readers).
fn public_key(session: &Session, handle: ObjectHandle) -> Result<VerifyingKey, TokenError> {
    let attributes = session
        .get_attributes(handle, &[AttributeType::EcPoint])
        .map_err(pkcs11("reading the public key"))?;
    let point = attributes
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(point) => Some(point),
            _ => None,
        })
        .ok_or_else(|| TokenError::Config("the public key has no CKA_EC_POINT".into()))?;
    let raw = match point.as_slice() {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        bare if bare.len() == 32 => bare,
        _ => {
            return Err(TokenError::Config(format!(
                "the public key is not an Ed25519 point ({} bytes; an Ed448 key?)",
                point.len()
            )))
        }
    };
    let bytes: [u8; 32] = raw
        .try_into()
        .map_err(|_| TokenError::Config("an Ed25519 key is 32 bytes".into()))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| TokenError::Config("the token's public key is not a valid Ed25519 key".into()))
}

pub(super) fn generate(
    session: &Session,
    label: &str,
) -> Result<(ObjectHandle, VerifyingKey), TokenError> {
    let label = label.as_bytes().to_vec();
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(ED25519_PARAMS.to_vec()),
        Attribute::Label(label.clone()),
    ];
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label),
    ];
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &public_template,
            &private_template,
        )
        .map_err(pkcs11(
            "generating an Ed25519 key pair (CKM_EC_EDWARDS_KEY_PAIR_GEN)",
        ))?;
    Ok((private, public_key(session, public)?))
}
