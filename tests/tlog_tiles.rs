//! The Merkle tree served as C2SP tlog-tiles (issue 29): every tile and entry bundle a client would fetch for the
//! served checkpoint holds exactly the hashes computed here from the events' hashes, at the first sizes and at
//! 255, 256, 257 and 65,537 (a second tile level); full tiles are immutable; bad and missing tiles are refused.

mod common;
#[path = "common/server.rs"]
mod server;

use keyledger::api::tlog::encode_index;
use keyledger::audit::checkpoint::Checkpoint;
use keyledger::audit::merkle::{leaf_hash, range_hash, MemoryLeaves};
use keyledger::chain::Hash32;
use reqwest::StatusCode;
use server::*;

async fn get(s: &Server, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let response = client()
        .get(format!("{}{path}", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string());
    (status, cache, response.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_tiles_hold_the_hashes_of_the_served_checkpoint() {
    let s = start().await;
    let ledger = s.ledger.clone();
    let start_size = ledger.durable_seq();
    {
        let ledger = ledger.clone();
        tokio::task::spawn_blocking(move || {
            common::append_from_four_ips(&ledger, 65_537 - start_size)
        })
        .await
        .unwrap();
    }
    // The served checkpoint (its request is itself recorded first, so it covers at least 65,538 events).
    let (status, _, note) = get(&s, "/v1/tlog/checkpoint").await;
    assert_eq!(status, StatusCode::OK);
    let (checkpoint, _, _) = Checkpoint::parse_note(std::str::from_utf8(&note).unwrap()).unwrap();
    assert!(checkpoint.size > 65_537, "{}", checkpoint.size);
    let leaves: Vec<Hash32> = ledger
        .store()
        .scan(1, checkpoint.size + 1)
        .map(|record| leaf_hash(&record.unwrap().hash))
        .collect();
    let tree = MemoryLeaves(leaves.clone());
    assert_eq!(
        range_hash(&tree, 0, checkpoint.size).unwrap(),
        checkpoint.root
    );
    // Every tile a client of a tree of each size fetches (requests add events; tiles of a size never change).
    for size in [1, 255, 256, 257, 65_537, checkpoint.size] {
        // At level L, the complete hashes of tree level 8·L.
        let mut level = 0u32;
        loop {
            let span = 256u64.pow(level);
            let hashes = size / span;
            if hashes == 0 {
                break;
            }
            for index in 0..hashes.div_ceil(256) {
                let width = (hashes - index * 256).min(256);
                let path = match width {
                    256 => format!("/v1/tlog/tile/{level}/{}", encode_index(index)),
                    w => format!("/v1/tlog/tile/{level}/{}.p/{w}", encode_index(index)),
                };
                let (status, cache, bytes) = get(&s, &path).await;
                assert_eq!(status, StatusCode::OK, "{path}");
                assert_eq!(
                    cache.as_deref(),
                    Some("public, max-age=31536000, immutable")
                );
                let want: Vec<u8> = (index * 256..index * 256 + width)
                    .flat_map(|i| range_hash(&tree, i * span, (i + 1) * span).unwrap())
                    .collect();
                assert!(bytes == want, "size {size}: {path} differs");
                if level == 0 && (index == 0 || width < 256) {
                    // The entry bundle: each entry (u16 length ‖ event hash) hashes to the tile's leaf.
                    let entries = path.replace("/tile/0/", "/tile/entries/");
                    let (status, _, bundle) = get(&s, &entries).await;
                    assert_eq!(status, StatusCode::OK, "{entries}");
                    assert_eq!(bundle.len(), width as usize * 34);
                    for (n, entry) in bundle.chunks(34).enumerate() {
                        assert_eq!(entry[..2], [0, 32]);
                        let hash: Hash32 = entry[2..].try_into().unwrap();
                        assert_eq!(leaf_hash(&hash), leaves[(index * 256) as usize + n]);
                    }
                }
            }
            level += 1;
        }
    }
    let size = ledger.durable_seq();
    // A tile wider than the tree, a bad path, and no key.
    let beyond = format!("/v1/tlog/tile/0/{}", encode_index(size / 256 + 1));
    assert_eq!(get(&s, &beyond).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&s, "/v1/tlog/tile/0/x000/001").await.0,
        StatusCode::BAD_REQUEST
    );
    let anonymous = client()
        .get(format!("{}/v1/tlog/tile/0/000", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // The server stops first; the ledger (its snapshot written at close) is then closed off the async workers.
    drop(s);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    tokio::task::spawn_blocking(move || drop(ledger))
        .await
        .unwrap();
}
