//! The Merkle tree against RFC 6962 test data from an independent implementation, exhaustive proof checks on
//! trees of a few hundred leaves (every byte of a proof matters), and the store-backed tree and checkpoints of a
//! real ledger.

mod common;

use keyledger::audit::checkpoint::{stored_checkpoints, Checkpoint, CHECKPOINT_EVERY};
use keyledger::audit::merkle::*;
use keyledger::audit::tree::{stored_root, Frontier, StoredTree};
use keyledger::chain::Hash32;
use keyledger::event::Actor;
use keyledger::ledger::AppendEvents;
use serde_json::Value;

fn h(text: &str) -> Hash32 {
    hex::decode(text).unwrap().try_into().unwrap()
}

fn hashes(value: &Value) -> Vec<Hash32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| h(v.as_str().unwrap()))
        .collect()
}

#[test]
fn roots_and_proofs_match_rfc6962_reference_data() {
    let data: Value = serde_json::from_str(include_str!("../fixtures/rfc6962.json")).unwrap();
    let leaves: Vec<Hash32> = data["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| leaf_hash_of(&hex::decode(l.as_str().unwrap()).unwrap()))
        .collect();
    let tree = MemoryLeaves(leaves);
    for (size, want) in hashes(&data["roots"]).iter().enumerate() {
        assert_eq!(
            &root(&tree, size as u64).unwrap(),
            want,
            "root of size {size}"
        );
    }
    for case in data["inclusion"].as_array().unwrap() {
        let (index, size) = (
            case["index"].as_u64().unwrap(),
            case["size"].as_u64().unwrap(),
        );
        assert_eq!(
            inclusion_proof(&tree, index, size).unwrap(),
            hashes(&case["proof"])
        );
    }
    for case in data["consistency"].as_array().unwrap() {
        let (old, new) = (case["old"].as_u64().unwrap(), case["new"].as_u64().unwrap());
        assert_eq!(
            consistency_proof(&tree, old, new).unwrap(),
            hashes(&case["proof"])
        );
    }
}

#[test]
fn every_proof_verifies_and_any_changed_byte_fails() {
    let leaves: Vec<Hash32> = (0..130u32)
        .map(|i| leaf_hash_of(&i.to_be_bytes()))
        .collect();
    let tree = MemoryLeaves(leaves.clone());
    let roots: Vec<Hash32> = (0..=130).map(|n| root(&tree, n).unwrap()).collect();
    for size in 1..=130u64 {
        for index in 0..size {
            let proof = inclusion_proof(&tree, index, size).unwrap();
            assert!(
                verify_inclusion(
                    index,
                    size,
                    &leaves[index as usize],
                    &proof,
                    &roots[size as usize]
                ),
                "({index}, {size})"
            );
            if index + 1 < size {
                assert!(!verify_inclusion(
                    index + 1,
                    size,
                    &leaves[index as usize],
                    &proof,
                    &roots[size as usize]
                ));
            }
            for (at, byte) in [(0usize, 0usize), (proof.len().saturating_sub(1), 31)] {
                if let Some(mut bad) = (!proof.is_empty()).then(|| proof.clone()) {
                    bad[at][byte] ^= 1;
                    assert!(!verify_inclusion(
                        index,
                        size,
                        &leaves[index as usize],
                        &bad,
                        &roots[size as usize]
                    ));
                }
            }
        }
        for old in 1..=size {
            let proof = consistency_proof(&tree, old, size).unwrap();
            assert!(
                verify_consistency(
                    old,
                    size,
                    &roots[old as usize],
                    &roots[size as usize],
                    &proof
                ),
                "({old}, {size})"
            );
            for at in 0..proof.len() {
                let mut bad = proof.clone();
                bad[at][at % 32] ^= 0x80;
                assert!(
                    !verify_consistency(
                        old,
                        size,
                        &roots[old as usize],
                        &roots[size as usize],
                        &bad
                    ),
                    "({old}, {size}) byte {at}"
                );
            }
            if old < size {
                assert!(!verify_consistency(
                    old,
                    size,
                    &roots[old as usize - 1],
                    &roots[size as usize],
                    &proof
                ));
            }
        }
    }
}

#[test]
fn the_stored_tree_and_frontier_agree_with_an_in_memory_tree_and_checkpoints_are_kept() {
    let (_tmp, dir, ledger) = common::fresh_ledger();
    let count = CHECKPOINT_EVERY as usize + 300;
    let events = (0..count)
        .map(|i| common::used(None, &format!("e{i}")))
        .collect();
    ledger
        .submit_blocking(AppendEvents {
            actor: Actor::System,
            request_id: None,
            events,
        })
        .unwrap();
    let store = ledger.store().as_ref();
    let size = ledger.durable_seq();
    let leaves: Vec<Hash32> = store
        .scan(1, size + 1)
        .map(|r| leaf_hash(&r.unwrap().hash))
        .collect();
    let memory = MemoryLeaves(leaves);
    let stored = StoredTree { store };
    for n in [1, 2, 15, 16, 17, 1000, CHECKPOINT_EVERY, size] {
        assert_eq!(
            stored_root(store, n).unwrap(),
            root(&memory, n).unwrap(),
            "size {n}"
        );
        assert_eq!(
            inclusion_proof(&stored, n / 2, n).unwrap(),
            inclusion_proof(&memory, n / 2, n).unwrap()
        );
        assert_eq!(
            consistency_proof(&stored, n / 3 + 1, size).unwrap(),
            consistency_proof(&memory, n / 3 + 1, size).unwrap()
        );
    }
    assert_eq!(
        Frontier::load(store, size).unwrap().root(),
        root(&memory, size).unwrap()
    );
    let checkpoints = stored_checkpoints(store).unwrap();
    assert_eq!(checkpoints.len(), 1);
    let (cp_size, note) = &checkpoints[0];
    let public = dir.anchor_public_key().unwrap();
    let checkpoint = Checkpoint::verify_note(note, &public).unwrap();
    assert_eq!(
        (checkpoint.size, *cp_size),
        (CHECKPOINT_EVERY, CHECKPOINT_EVERY)
    );
    assert_eq!(checkpoint.root, root(&memory, CHECKPOINT_EVERY).unwrap());
    let forged = note.replacen(
        &CHECKPOINT_EVERY.to_string(),
        &(CHECKPOINT_EVERY - 1).to_string(),
        1,
    );
    assert!(Checkpoint::verify_note(&forged, &public).is_err());
}
