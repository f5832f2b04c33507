//! The served tlog-tiles and checkpoint note (issue 29) read by implementations nobody here wrote: Go's
//! `golang.org/x/mod/sumdb/{note,tlog}` (tests/go/tlogcheck, built from Debian's golang-golang-x-mod-dev) and
//! Cloudflare's `tlog_tiles` crate with its `signed_note` sibling. Each verifies the checkpoint note, rebuilds the
//! tree from the served entry bundles alone, reads the hash tiles through its own authenticating tile reader,
//! byte-compares every tile a client of the checkpoint and of the sizes 1, 255, 256, 257 and 65,537 fetches with
//! the tile it computes itself, and checks record and tree proofs; a wrong note key, an altered note and a
//! flipped tile byte are refused.

mod common;
#[path = "common/server.rs"]
mod server;

use keyledger::audit::checkpoint::verifier_key;
use reqwest::StatusCode;
use server::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's golang-golang-x-mod-dev puts the packages the Go checker imports (built with GOPATH mode).
const GOPATH: &str = "/usr/share/gocode";
const TILE_HEIGHT: u8 = 8;
/// The older tree sizes checked besides each checkpoint's own (first and second tile levels, partial and full).
const SIZES: [u64; 5] = [1, 255, 256, 257, 65_537];

/// Grows the log to at least `size` events.
async fn grow_to(s: &Server, size: u64) {
    let ledger = s.ledger.clone();
    tokio::task::spawn_blocking(move || {
        let have = ledger.durable_seq();
        common::append_from_four_ips(&ledger, size.saturating_sub(have));
    })
    .await
    .unwrap();
    assert!(s.ledger.durable_seq() >= size);
}

async fn get(s: &Server, path: &str) -> Vec<u8> {
    let response = client()
        .get(format!("{}{path}", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.bytes().await.unwrap().to_vec()
}

/// The served ledger's note verifier key, from its identity and anchor key (not from the server's answers).
fn ledger_vkey(s: &Server) -> String {
    verifier_key(&s.dir.identity().unwrap().origin, &s.anchor)
}

/// A verifier key of the same name but another Ed25519 key.
fn other_vkey(s: &Server) -> String {
    let other = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    verifier_key(&s.dir.identity().unwrap().origin, &other.verifying_key())
}

/// Stops the server, then closes the ledger off the async workers (as tests/tlog_tiles.rs does).
async fn shut_down(s: Server) {
    let ledger = s.ledger.clone();
    drop(s);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    tokio::task::spawn_blocking(move || drop(ledger))
        .await
        .unwrap();
}

// ---- Go: golang.org/x/mod/sumdb/{note,tlog} ----

/// Builds tests/go/tlogcheck into `dir`; `None` (a reported skip) where `go` or Debian's x/mod sources are missing.
fn build_go_checker(dir: &Path) -> Option<PathBuf> {
    let go = Command::new("go").arg("version").output();
    if !go.as_ref().is_ok_and(|out| out.status.success()) {
        common::skip(
            "go",
            "`go` is not installed (apt-get install golang-go golang-golang-x-mod-dev)",
        );
        return None;
    }
    let tlog = Path::new(GOPATH).join("src/golang.org/x/mod/sumdb/tlog");
    if !tlog.join("tile.go").is_file() {
        common::skip(
            "golang-golang-x-mod-dev",
            &format!(
                "{} is missing (apt-get install golang-golang-x-mod-dev)",
                tlog.display()
            ),
        );
        return None;
    }
    let out = dir.join("tlogcheck");
    let mut build = Command::new("go");
    build
        .args(["build", "-o"])
        .arg(&out)
        .arg("./tests/go/tlogcheck")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "");
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        build.env("GOCACHE", dir.join("go-cache"));
    }
    let built = build.output().expect("run go build");
    assert!(
        built.status.success(),
        "go build tests/go/tlogcheck failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(out)
}

/// Runs the Go checker against the server; returns whether it succeeded, its stdout and its stderr.
async fn run_go(
    bin: &Path,
    s: &Server,
    vkey: &str,
    sizes: &[u64],
    flags: &[&str],
) -> (bool, String, String) {
    let sizes = sizes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut command = Command::new(bin);
    command
        .args(["-base", &s.base, "-vkey", vkey, "-sizes", &sizes])
        .args(flags)
        .env("TLOGCHECK_TOKEN", &s.admin);
    let out = tokio::task::spawn_blocking(move || command.output().expect("run tlogcheck"))
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the Go checker, asserts it passed, and returns its summary.
async fn go_passes(bin: &Path, s: &Server, vkey: &str, sizes: &[u64]) -> serde_json::Value {
    let (ok, stdout, stderr) = run_go(bin, s, vkey, sizes, &[]).await;
    assert!(ok, "tlogcheck failed:\n{stdout}\n{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    let size = summary["size"].as_u64().unwrap();
    assert!(size >= *sizes.iter().max().unwrap(), "{summary}");
    let mut checked: Vec<u64> = sizes.to_vec();
    checked.push(size);
    assert_eq!(
        summary["sizes"],
        serde_json::json!(checked),
        "every size was checked"
    );
    assert_eq!(summary["entries"].as_u64(), Some(size), "{summary}");
    assert!(summary["record_proofs"].as_u64().unwrap() >= 2 * checked.len() as u64);
    assert_eq!(summary["tree_proofs"].as_u64(), Some(sizes.len() as u64));
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_tiles_match_go_sumdb_tlog() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(bin) = build_go_checker(tmp.path()) else {
        return;
    };
    let s = start().await;
    let vkey = ledger_vkey(&s);

    // A tree of a little over 257 events: one full level-0 tile, then partial tiles at both levels.
    grow_to(&s, 257).await;
    let summary = go_passes(&bin, &s, &vkey, &SIZES[..4]).await;
    // 255 widths of tile 0/000 (sizes 1..255 read its partial versions), the full one, level 1's and the rest.
    assert!(
        summary["tiles_compared"].as_u64().unwrap() >= 257,
        "{summary}"
    );

    // Refusals: a note key of another key, a note altered after signing, a flipped byte in tile 0/000.
    let (ok, _, stderr) = run_go(&bin, &s, &other_vkey(&s), &[], &[]).await;
    assert!(!ok, "a note checked with another key was accepted");
    assert!(
        stderr.contains("checkpoint note does not verify"),
        "{stderr}"
    );
    let (ok, _, stderr) = run_go(&bin, &s, &vkey, &[], &["-tamper-note"]).await;
    assert!(!ok, "an altered note was accepted");
    assert!(
        stderr.contains("checkpoint note does not verify"),
        "{stderr}"
    );
    // The flip (leaf 128 of tile 0/000): x/mod 0.7.0's TileHashReader refuses it at most sizes ("downloaded
    // inconsistent tile") but returns the forged hash unauthenticated at some (259, 263, 300, 511…: when two of the
    // tree hash's subtrees share a tile it skips authenticating a full tile), where the check against the served
    // entries catches it.
    let (ok, _, stderr) = run_go(&bin, &s, &vkey, &[], &["-tamper-tile"]).await;
    assert!(!ok, "a flipped tile byte was accepted");
    assert!(
        stderr.contains("downloaded inconsistent tile")
            || stderr.contains("level-0 tile hash 128 is"),
        "{stderr}"
    );

    // A second tile level: 65,537 events and more.
    grow_to(&s, 65_537).await;
    let summary = go_passes(&bin, &s, &vkey, &SIZES).await;
    assert!(summary["size"].as_u64().unwrap() > 65_537, "{summary}");
    eprintln!("tlogcheck: {summary}");
    shut_down(s).await;
}

// ---- Rust: Cloudflare's tlog_tiles (with signed_note for the note) ----

/// A `tlog_tiles::TileReader` over the served tiles (fetched from a blocking thread through the runtime).
struct HttpTiles<'a> {
    s: &'a Server,
    runtime: tokio::runtime::Handle,
    cache: RefCell<HashMap<String, Vec<u8>>>,
    /// Flip one byte of tile 0/000 as it arrives.
    tamper: bool,
}

impl HttpTiles<'_> {
    /// keyledger's path of a hash tile: the crate's `tile/8/L/N[.p/W]` without the height element.
    fn path(tile: &tlog_tiles::Tile) -> String {
        let go = tile.path();
        let rest = go
            .strip_prefix(&format!("tile/{TILE_HEIGHT}/"))
            .expect("a tile of height 8");
        assert!(!tile.is_data(), "data tiles are not served");
        format!("/v1/tlog/tile/{rest}")
    }

    fn fetch(&self, tile: &tlog_tiles::Tile) -> Vec<u8> {
        let path = Self::path(tile);
        if let Some(data) = self.cache.borrow().get(&path) {
            return data.clone();
        }
        let mut data = self.runtime.block_on(get(self.s, &path));
        if self.tamper && tile.level() == 0 && tile.level_index() == 0 {
            let middle = data.len() / 2;
            data[middle] ^= 1;
        }
        self.cache.borrow_mut().insert(path, data.clone());
        data
    }
}

impl tlog_tiles::TileReader for HttpTiles<'_> {
    fn height(&self) -> u8 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        Ok(tiles.iter().map(|tile| self.fetch(tile)).collect())
    }

    fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
}

/// Stored hashes the crate computed from the record hashes.
struct Memory(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for Memory {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                self.0
                    .get(i as usize)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// Proves record `i` (hash `record`) in the tree of size `t` and root `th` from `r`, and checks the proof; a
/// wrong record hash must not check.
fn prove_inclusion<R: tlog_tiles::HashReader>(
    t: u64,
    th: tlog_tiles::Hash,
    r: &R,
    i: u64,
    record: tlog_tiles::Hash,
) {
    let proof = tlog_tiles::prove_record(t, i, r).unwrap();
    tlog_tiles::check_record(&proof, t, th, i, record).unwrap();
    let other = tlog_tiles::record_hash(b"not the event");
    assert!(tlog_tiles::check_record(&proof, t, th, i, other).is_err());
}

/// What the crate checked for one checkpoint.
#[derive(Debug)]
struct CrateReport {
    size: u64,
    tiles_compared: usize,
    record_proofs: usize,
}

/// The served checkpoint verified with `signed_note` and parsed with `tlog_tiles`; then every check of the Go
/// checker, with the crate. Runs on a blocking thread (the tile reader waits for the runtime).
fn check_with_crate(
    s: &Server,
    runtime: tokio::runtime::Handle,
    vkey: &str,
    sizes: &[u64],
) -> CrateReport {
    use signed_note::{Note, StandardVerifier, VerifierList};
    use tlog_tiles::{
        check_tree, prove_tree, record_hash, stored_hash_index, stored_hashes_for_record_hash,
        tree_hash, Checkpoint, HashReader, Tile, TileHashReader,
    };

    let note = runtime.block_on(get(s, "/v1/tlog/checkpoint"));
    let known = VerifierList::new(vec![Box::new(StandardVerifier::new(vkey).unwrap())]);
    let parsed = Note::from_bytes(&note).unwrap();
    let (verified, unverified) = parsed.verify(&known).expect("the note verifies");
    assert_eq!((verified.len(), unverified.len()), (1, 0));
    let checkpoint = Checkpoint::from_bytes(parsed.text()).expect("a c2sp checkpoint body");
    assert_eq!(checkpoint.origin(), s.dir.identity().unwrap().origin);
    assert_eq!(checkpoint.extension(), "");
    let (size, root) = (checkpoint.size(), *checkpoint.hash());
    assert!(size >= *sizes.iter().max().unwrap());

    // The tree rebuilt from the served entry bundles alone (each entry: u16 length ‖ the event's hash).
    let mut records = Vec::with_capacity(size as usize);
    for n in 0..size.div_ceil(256) {
        let width = (size - n * 256).min(256) as u32;
        let tile = Tile::new(TILE_HEIGHT, 0, n, width, false);
        let path = HttpTiles::path(&tile).replace("/tile/0/", "/tile/entries/");
        let bundle = runtime.block_on(get(s, &path));
        assert_eq!(bundle.len(), width as usize * 34, "{path}");
        for entry in bundle.chunks(34) {
            assert_eq!(entry[..2], [0, 32], "{path}");
            records.push(record_hash(&entry[2..]));
        }
    }
    let mut memory = Memory(Vec::new());
    for (n, record) in records.iter().enumerate() {
        let stored = stored_hashes_for_record_hash(n as u64, *record, &memory).unwrap();
        memory.0.extend(stored);
    }
    assert_eq!(
        tree_hash(size, &memory).unwrap(),
        root,
        "the tree of the served entries has the signed root"
    );

    // The tiles, through the crate's authenticating reader: the root, and every leaf is its entry's record hash.
    let reader = HttpTiles {
        s,
        runtime: runtime.clone(),
        cache: RefCell::new(HashMap::new()),
        tamper: false,
    };
    let tiled = TileHashReader::new(size, root, &reader);
    assert_eq!(tree_hash(size, &tiled).unwrap(), root);
    let level0: Vec<u64> = (0..size).map(|i| stored_hash_index(0, i)).collect();
    assert!(tiled.read_hashes(&level0).unwrap() == records);

    let mut checked = sizes.to_vec();
    checked.push(size);
    let mut compared = std::collections::HashSet::new();
    let mut record_proofs = 0;
    for &old in &checked {
        // Every tile a client of this size fetches, byte for byte the tile the crate computes.
        for tile in Tile::new_tiles(TILE_HEIGHT, 0, old) {
            let path = HttpTiles::path(&tile);
            if compared.insert(path.clone()) {
                let want = tile.read_data(&memory).unwrap();
                assert!(reader.fetch(&tile) == want, "size {old}: {path} differs");
            }
        }
        // Its root, through its own (partial) tiles, and consistent with the checkpoint.
        let old_root = tree_hash(old, &memory).unwrap();
        assert_eq!(tree_hash(old, &tiled).unwrap(), old_root);
        let tiled_old = TileHashReader::new(old, old_root, &reader);
        assert_eq!(tree_hash(old, &tiled_old).unwrap(), old_root);
        if old < size {
            let proof = prove_tree(size, old, &tiled).unwrap();
            check_tree(&proof, size, root, old, old_root).unwrap();
            let mut wrong = old_root;
            wrong.0[0] ^= 1;
            assert!(check_tree(&proof, size, root, old, wrong).is_err());
        }
        // Inclusion proofs at the ends and tile edges, in this tree and in the checkpoint's.
        let mut indexes = vec![0, 255, 256, 257, old / 2, old.saturating_sub(1)];
        indexes.retain(|&i| i < old);
        indexes.dedup();
        for i in indexes {
            prove_inclusion(old, old_root, &tiled_old, i, records[i as usize]);
            prove_inclusion(size, root, &tiled, i, records[i as usize]);
            record_proofs += 2;
        }
    }

    // A flipped byte in tile 0/000 is refused by the crate's reader.
    let tampered = HttpTiles {
        s,
        runtime,
        cache: RefCell::new(HashMap::new()),
        tamper: true,
    };
    let tiled = TileHashReader::new(size, root, &tampered);
    match tiled.read_hashes(&level0[128..129]) {
        Err(tlog_tiles::Error::InconsistentTile) => {}
        // At some sizes (259, 263, 300, 511…) tlog_tiles 0.2.0, like x/mod 0.7.0 whose reader it ports, skips
        // authenticating the tile and returns the forged hash: the served entry's record hash tells it apart.
        Ok(forged) => assert!(forged != records[128..129], "size {size}"),
        Err(e) => panic!("size {size}: {e}"),
    }
    let full = Tile::new(TILE_HEIGHT, 0, 0, 256, false);
    assert!(tampered.fetch(&full) != full.read_data(&memory).unwrap());
    // A note checked with another key is not verified.
    let other = VerifierList::new(vec![Box::new(
        StandardVerifier::new(&other_vkey(s)).unwrap(),
    )]);
    assert!(Note::from_bytes(&note).unwrap().verify(&other).is_err());

    CrateReport {
        size,
        tiles_compared: compared.len(),
        record_proofs,
    }
}

async fn crate_passes(s: &std::sync::Arc<Server>, sizes: &[u64]) -> CrateReport {
    let (s, vkey, sizes) = (s.clone(), ledger_vkey(s), sizes.to_vec());
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || check_with_crate(&s, runtime, &vkey, &sizes))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_tiles_match_tlog_tiles_crate() {
    let s = std::sync::Arc::new(start().await);
    grow_to(&s, 257).await;
    let report = crate_passes(&s, &SIZES[..4]).await;
    // The crate's Tile::new_tiles names only the widest partial tile of a level (Go's NewTiles names every width):
    // 0/000.p/1, 0/000.p/255, 0/000, 1/000.p/1, 0/001.p/1 and the checkpoint's 0/001.p/W.
    assert!(
        report.size > 257 && report.tiles_compared >= 6,
        "{report:?}"
    );
    grow_to(&s, 65_537).await;
    let report = crate_passes(&s, &SIZES).await;
    assert!(
        report.size > 65_537 && report.record_proofs >= 12,
        "{report:?}"
    );
    eprintln!("tlog_tiles: {report:?}");
    let s = std::sync::Arc::try_unwrap(s).unwrap_or_else(|_| panic!("the server is still shared"));
    shut_down(s).await;
}
