//! The one table of side-entry namespaces: every side entry any module keeps lies under one of these prefixes,
//! which says who owns it, who writes it and how the embedded store files it. Modules take their prefixes from
//! here, so a newcomer reads in one place what besides the events the store holds; the embedded store's `bulk`
//! tree and tile files follow the `Filing` column, and tests/demo.rs checks that a ledger that ran every feature
//! holds no side entry outside the table.

/// Which process path writes a namespace. Only the writer's group commits are atomic with events; the others
/// write their own entries alone. Each namespace has one such path (`audit archive` also rewrites the rollups and
/// snapshots of what it archives, with no writer running).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrittenBy {
    /// The writer thread, in the same atomic batch as the events they describe.
    GroupCommit,
    /// The writer thread, outside a group commit (snapshots at intervals and shutdown, a tile rewrite at open).
    Writer,
    /// HTTP request handlers (the idempotency layer).
    Requests,
    /// The alert outbox and its deadline watcher.
    Alerts,
    /// An operator command run while no writer runs (archive, migrate, salvage, backfills at open).
    Operator,
    /// The writer's witnessing thread, which records each cosignature a witness returns.
    Witnessing,
}

/// Where the embedded (sled) store files a namespace's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filing {
    /// The `log` tree, beside the head and the tail.
    Log,
    /// The `bulk` tree: large values written now and then.
    Bulk,
    /// Tile files beside sled (full tiles), the `log` tree for partial ones.
    Tiles,
}

/// One namespace of side entries.
#[derive(Clone, Copy, Debug)]
pub struct Namespace {
    pub prefix: &'static [u8],
    /// The module that reads and writes it.
    pub owner: &'static str,
    pub written_by: WrittenBy,
    pub filing: Filing,
    pub holds: &'static str,
}

pub const TILES: &[u8] = b"tile/";
pub const MERKLE_NODES: &[u8] = b"merkle/";
pub const CHECKPOINTS: &[u8] = b"checkpoint/";
pub const COSIGNED: &[u8] = b"cosigned/";
pub const SIGNERS: &[u8] = b"signer/";
pub const ROLLUPS: &[u8] = b"rollup/";
pub const SNAPSHOT: &[u8] = b"snapshot/";
pub const ARCHIVE_BASE: &[u8] = b"archive/base/";
pub const ARCHIVE_PREFIX: &[u8] = b"archive/prefix";
pub const INDEX_MARKERS: &[u8] = b"index/";
pub const IDEMPOTENCY: &[u8] = b"idem/";
pub const ALERTS: &[u8] = b"alerts/";
pub const PERSONAL: &[u8] = b"personal/";

/// Every namespace, each prefix at most once and none the prefix of another.
pub const NAMESPACES: &[Namespace] = &[
    Namespace {
        prefix: TILES,
        owner: "audit::tiles",
        written_by: WrittenBy::GroupCommit,
        filing: Filing::Tiles,
        holds: "the Merkle tree as C2SP tlog-tiles",
    },
    Namespace {
        prefix: MERKLE_NODES,
        owner: "audit::tree",
        written_by: WrittenBy::Writer,
        filing: Filing::Log,
        holds: "subtree roots of ledgers written before tiles (read, and removed by the tile rewrite)",
    },
    Namespace {
        prefix: CHECKPOINTS,
        owner: "audit::checkpoint",
        written_by: WrittenBy::GroupCommit,
        filing: Filing::Log,
        holds: "signed checkpoint notes, by tree size",
    },
    Namespace {
        prefix: COSIGNED,
        owner: "audit::cosigned",
        written_by: WrittenBy::Witnessing,
        filing: Filing::Log,
        holds: "checkpoint notes with the witnesses' cosignatures, by tree size",
    },
    Namespace {
        prefix: SIGNERS,
        owner: "audit::rotations",
        written_by: WrittenBy::GroupCommit,
        filing: Filing::Log,
        holds: "the public key each signer rotation introduces, by seq",
    },
    Namespace {
        prefix: PERSONAL,
        owner: "store::personal_side",
        written_by: WrittenBy::GroupCommit,
        filing: Filing::Bulk,
        holds: "each batch's sealed openings of committed personal fields (docs/FORMAT.md), by the batch's last seq",
    },
    Namespace {
        prefix: ROLLUPS,
        owner: "projection::rollup",
        written_by: WrittenBy::GroupCommit,
        filing: Filing::Bulk,
        holds: "closed hours' usage cells, their checkpoints and markers (archived hours by `audit archive`)",
    },
    Namespace {
        prefix: SNAPSHOT,
        owner: "ledger::snapshot",
        written_by: WrittenBy::Writer,
        filing: Filing::Bulk,
        holds: "the serving projection snapshot (header and body)",
    },
    Namespace {
        prefix: ARCHIVE_BASE,
        owner: "ledger::archive",
        written_by: WrittenBy::Operator,
        filing: Filing::Bulk,
        holds: "the signed base state after the archived prefix",
    },
    Namespace {
        prefix: ARCHIVE_PREFIX,
        owner: "store::archived",
        written_by: WrittenBy::Operator,
        filing: Filing::Log,
        holds: "what is remembered of the archived events",
    },
    Namespace {
        prefix: INDEX_MARKERS,
        owner: "store",
        written_by: WrittenBy::Operator,
        filing: Filing::Log,
        holds: "markers of indexes built (the attribute index)",
    },
    Namespace {
        prefix: IDEMPOTENCY,
        owner: "api::idempotency",
        written_by: WrittenBy::Requests,
        filing: Filing::Log,
        holds: "answers to writes sent with an Idempotency-Key, for replays (24 hours)",
    },
    Namespace {
        prefix: ALERTS,
        owner: "alerts::deliveries",
        written_by: WrittenBy::Alerts,
        filing: Filing::Log,
        holds: "each sink's cursor, pending and fired alerts, and the last deliveries",
    },
];

/// The namespace `key` lies in.
pub fn namespace_of(key: &[u8]) -> Option<&'static Namespace> {
    NAMESPACES.iter().find(|n| key.starts_with(n.prefix))
}

/// Prefixes the embedded store files under `filing`.
pub fn prefixes_filed(filing: Filing) -> impl Iterator<Item = &'static [u8]> {
    NAMESPACES
        .iter()
        .filter(move |n| n.filing == filing)
        .map(|n| n.prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_namespace_lies_inside_another() {
        for (i, a) in NAMESPACES.iter().enumerate() {
            for b in &NAMESPACES[i + 1..] {
                assert!(
                    !a.prefix.starts_with(b.prefix) && !b.prefix.starts_with(a.prefix),
                    "{:?} and {:?} overlap",
                    String::from_utf8_lossy(a.prefix),
                    String::from_utf8_lossy(b.prefix)
                );
            }
        }
        assert_eq!(
            namespace_of(b"alerts/cursor/ops").map(|n| n.owner),
            Some("alerts::deliveries")
        );
        assert!(namespace_of(b"stray/entry").is_none());
    }
}
