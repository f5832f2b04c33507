//! The ledger's Merkle tree as C2SP `tlog-tiles` (c2sp.org/tlog-tiles), so that any tlog client, monitor or mirror
//! can follow it: `GET /v1/tlog/checkpoint` (the signed checkpoint note), `GET /v1/tlog/tile/<L>/<N>[.p/<W>]`
//! (the stored tiles, hashes of tree level 8·L) and `GET /v1/tlog/tile/entries/<N>[.p/<W>]` (entry bundles).
//!
//! An entry is the event's 32-byte hash, not its body: its leaf hash is SHA-256(0x00 ‖ event hash), as in the
//! tree, and bodies (which hold client IPs and user agents) stay behind `/v1/events` and its scopes
//! (THREAT_MODEL.md). A tile at a given width never changes, so tiles are served as immutable.

use super::auth::{Audit, Authenticated};
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::audit::merkle::leaf_hash;
use crate::audit::tiles::{read_tile, TILE_WIDTH};
use crate::checked::CheckedReader;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Tile levels a tree of 2^64 leaves can have (8 tree levels each).
const MAX_TILE_LEVEL: u32 = 8;

/// A tile a path names.
#[derive(Debug, PartialEq, Eq)]
pub struct TilePath {
    /// `None` for an entry bundle.
    pub level: Option<u32>,
    pub index: u64,
    /// `Some(W)` for a partial tile of W hashes (1..=255).
    pub width: Option<u64>,
}

/// `N` as the path writes it: three-digit elements, all but the last prefixed with `x` (1234067 is
/// `x001/x234/067`).
pub fn encode_index(index: u64) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// Parses `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`; only the canonical spelling is accepted.
pub fn parse_tile_path(path: &str) -> Option<TilePath> {
    let (main, width) = match path.split_once(".p/") {
        Some((main, width)) => {
            let width: u64 = width.parse().ok().filter(|w| (1..TILE_WIDTH).contains(w))?;
            (main, Some(width))
        }
        None => (path, None),
    };
    let (first, rest) = main.split_once('/')?;
    let level = match first {
        "entries" => None,
        digits => Some(
            digits
                .parse::<u32>()
                .ok()
                .filter(|l| *l < MAX_TILE_LEVEL && l.to_string() == digits)?,
        ),
    };
    let mut index: u64 = 0;
    for element in rest.split('/') {
        let digits = element.strip_prefix('x').unwrap_or(element);
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    (encode_index(index) == rest).then_some(TilePath {
        level,
        index,
        width,
    })
}

fn not_found(what: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
}

/// `GET /v1/tlog/checkpoint`: the newest signed checkpoint note (covering every durable event) or, when witnesses
/// are configured, the newest checkpoint their quorum cosigned, with the cosignatures (503 before the first).
pub async fn checkpoint(
    State(state): State<AppState>,
    _: Authenticated<Audit>,
) -> ApiResult<Response> {
    let note = if state.witnessing.is_set() {
        match witnessed_checkpoint(&state).await? {
            Some((_, note)) => note,
            None => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_witnessed",
                    format!(
                        "no checkpoint has been cosigned by {} of the configured witnesses yet",
                        state.witnessing.quorum
                    ),
                ))
            }
        }
    } else {
        state.ledger.checkpoint().await?.1
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// The newest kept checkpoint the configured witness quorum cosigned, if any (none without witnesses: the store
/// is not read).
pub async fn witnessed_checkpoint(
    state: &AppState,
) -> ApiResult<Option<(crate::audit::checkpoint::Checkpoint, String)>> {
    if !state.witnessing.is_set() {
        return Ok(None);
    }
    let ledger = state.ledger.clone();
    let quorum = state.witnessing.clone();
    let found = tokio::task::spawn_blocking(move || {
        crate::audit::cosigned::newest_witnessed(
            ledger.store().as_ref(),
            &quorum.witnesses,
            quorum.quorum,
        )
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(found)
}

/// `GET /v1/tlog/tile/{path}`: a hash tile or an entry bundle.
pub async fn tile(
    State(state): State<AppState>,
    _: Authenticated<Audit>,
    Path(path): Path<String>,
) -> ApiResult<Response> {
    let tile = parse_tile_path(&path).ok_or_else(|| {
        ApiError::bad_request(
            "path",
            "not a tile path: <L>/<N>[.p/<W>] or entries/<N>[.p/<W>], N in three-digit elements (x001/234)",
        )
    })?;
    let ledger = state.ledger.clone();
    let bytes = tokio::task::spawn_blocking(move || read(&ledger, &tile))
        .await
        .map_err(ApiError::internal)??;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        bytes,
    )
        .into_response())
}

fn read(ledger: &crate::ledger::Ledger, tile: &TilePath) -> ApiResult<Vec<u8>> {
    let width = tile.width.unwrap_or(TILE_WIDTH);
    let first = tile
        .index
        .checked_mul(TILE_WIDTH)
        .ok_or_else(|| not_found("no such tile".into()))?;
    let store = ledger.store();
    match tile.level {
        Some(level) => {
            let mut stored = read_tile(store.as_ref(), level, tile.index)?.unwrap_or_default();
            let want = width as usize * 32;
            if level == 0 && stored.len() < want && first + width <= ledger.durable_seq() {
                // The writer keeps the partial leaf tile in memory only: its leaves are the events' hashes.
                stored = event_hashes(store.as_ref(), first, width)?
                    .iter()
                    .flat_map(leaf_hash)
                    .collect();
            }
            if stored.len() < want {
                return Err(not_found(format!(
                    "tile {level}/{} holds {} hashes, not {width}",
                    encode_index(tile.index),
                    stored.len() / 32
                )));
            }
            Ok(stored[..want].to_vec())
        }
        None => {
            // Leaf i is event i + 1; only durable events are served.
            let end = first + width;
            if end > ledger.durable_seq() {
                return Err(not_found(format!(
                    "entries {}..{end} are not all recorded yet",
                    first
                )));
            }
            Ok(event_hashes(store.as_ref(), first, width)?
                .iter()
                .flat_map(|hash| [&32u16.to_be_bytes()[..], hash].concat())
                .collect())
        }
    }
}

/// The hashes of the events of leaves `first .. first + width` (leaf i is event i + 1), each record checked.
fn event_hashes(
    store: &dyn crate::store::LogStore,
    first: u64,
    width: u64,
) -> crate::error::LedgerResult<Vec<crate::chain::Hash32>> {
    CheckedReader::new(store)
        .scan(first + 1, first + width + 1)
        .map(|record| record.map(|r| r.hash))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_are_read_only_in_their_canonical_form() {
        assert_eq!(encode_index(1_234_067), "x001/x234/067");
        assert_eq!(encode_index(5), "005");
        let tile = |level, index, width| {
            Some(TilePath {
                level,
                index,
                width,
            })
        };
        assert_eq!(
            parse_tile_path("0/x001/x234/067"),
            tile(Some(0), 1_234_067, None)
        );
        assert_eq!(parse_tile_path("1/005.p/7"), tile(Some(1), 5, Some(7)));
        assert_eq!(parse_tile_path("entries/000"), tile(None, 0, None));
        for bad in [
            "0/5",
            "0/x000/005",
            "0/005.p/0",
            "0/005.p/256",
            "9/000",
            "01/000",
            "0/005/",
            "0/00a",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }
}
