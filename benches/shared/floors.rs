//! Floors of the machine measured in the same run as a benchmark, shared by the benches that compare with them.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rayon::prelude::*;
use std::time::Instant;

/// Signatures per second ed25519-dalek's batch verification checks on all cores.
pub fn batch_verify_floor_two_cores() -> f64 {
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let public: VerifyingKey = key.verifying_key();
    let messages: Vec<[u8; 32]> = (0..65_536u32).map(|i| [(i % 251) as u8; 32]).collect();
    let signatures: Vec<Signature> = messages.iter().map(|m| key.sign(m)).collect();
    let started = Instant::now();
    messages
        .par_chunks(256)
        .zip(signatures.par_chunks(256))
        .for_each(|(m, s)| {
            let refs: Vec<&[u8]> = m.iter().map(|x| x.as_slice()).collect();
            let keys = vec![public; m.len()];
            ed25519_dalek::verify_batch(&refs, s, &keys).expect("valid batch");
        });
    messages.len() as f64 / started.elapsed().as_secs_f64()
}
