//! The pin: `ledger.json` names the ledger id, the trust anchor and the hash of event 1. A log that is missing,
//! empty or starts with anything else is refused before any command reads or appends to it, and so is a
//! `signing.pub` that is not the pinned anchor.

use super::{DataDir, LedgerIdentity};
use crate::chain::{chain_hash, GENESIS_PREV};
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Event, EventData};
use crate::store::LogStore;

/// `signing.pub` must hold the public key `ledger.json` pins.
pub(super) fn check_anchor_file(dir: &DataDir, identity: &LedgerIdentity) -> LedgerResult<()> {
    let anchor = dir.anchor_public_key()?;
    let on_disk = hex::encode(anchor.as_bytes());
    if on_disk != identity.public_key {
        return Err(LedgerError::PinMismatch(format!(
            "{} holds {on_disk}, but ledger.json pins the trust anchor {}: the public key was replaced",
            dir.public_key_path().display(),
            identity.public_key
        )));
    }
    Ok(())
}

/// The log's first event must be the `ledger.initialized` whose hash `ledger.json` pins.
pub(super) fn check_genesis(identity: &LedgerIdentity, store: &dyn LogStore) -> LedgerResult<()> {
    let Some(pinned) = identity.genesis_hash.as_deref() else {
        return Err(LedgerError::PinMismatch(
            "ledger.json does not pin a genesis hash (it was written by a keyledger before 0.2); \
             verify the log with `audit verify` from that version and re-initialise"
                .into(),
        ));
    };
    let Some(genesis) = store.get(1)? else {
        let head = store.head()?.map_or(0, |h| h.seq);
        return Err(LedgerError::PinMismatch(format!(
            "the log holds no event 1 (head: {head}), but ledger.json pins genesis {pinned}: \
             the log was wiped, truncated or replaced"
        )));
    };
    let found = hex::encode(genesis.hash);
    if found != pinned {
        return Err(LedgerError::PinMismatch(format!(
            "event 1 has hash {found}, but ledger.json pins genesis {pinned}: this is not the log this \
             directory was created with"
        )));
    }
    if chain_hash(&GENESIS_PREV, &genesis.body) != genesis.hash {
        return Err(LedgerError::Corrupt {
            seq: 1,
            problem: "hash does not match the body: the genesis event was changed".into(),
        });
    }
    let event =
        Event::decode(&genesis.body).map_err(|source| LedgerError::Decode { seq: 1, source })?;
    match &event.data {
        EventData::LedgerInitialized(init)
            if init.ledger_id == identity.ledger_id && init.public_key == identity.public_key =>
        {
            Ok(())
        }
        EventData::LedgerInitialized(init) => Err(LedgerError::PinMismatch(format!(
            "event 1 initialises ledger {} with key {}, but ledger.json pins ledger {} with key {}",
            init.ledger_id, init.public_key, identity.ledger_id, identity.public_key
        ))),
        other => Err(LedgerError::PinMismatch(format!(
            "event 1 is {}, not ledger.initialized",
            other.type_name()
        ))),
    }
}
