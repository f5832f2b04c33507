//! Where the store keeps the public keys that signer rotations introduce: one side entry per rotation, by seq.

use crate::error::LedgerResult;
use crate::store::side_keys::SIGNERS;
use crate::store::LogStore;

/// Side-entry key under which the public key introduced by a signer rotation at `seq` is kept.
pub(crate) fn signer_side_key(seq: u64) -> Vec<u8> {
    let mut key = SIGNERS.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The seqs of the signer rotations the store records (their side entries), ascending.
pub(crate) fn rotation_seqs(store: &dyn LogStore) -> LedgerResult<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in store.scan_side(SIGNERS) {
        let (key, _) = entry?;
        if let Some(seq) = key
            .get(SIGNERS.len()..)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        {
            seqs.push(seq);
        }
    }
    Ok(seqs)
}
