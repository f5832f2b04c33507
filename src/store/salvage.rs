//! Reading what survives of a damaged embedded log, for `keyledger store salvage`: the events from the first on,
//! in order, up to the first damage — through sled when it still opens (a copy of its files, so the damaged
//! log is never written), or straight from the segment files' self-describing frames when it does not.

use super::sled_segments::{FrameKind, FRAME_HEADER, FRAME_MAGIC, FRAME_TRAILER};
use super::sled_units::{block_first, block_header, decode_block, dictionary_id};
use super::{LogStore, SledStore, StoreError, StoreIter, StoreResult, StoredRecord};
use crate::chain::{chain_hash, Hash32, GENESIS_PREV};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where a block's newest intact frame lies.
#[derive(Clone, Debug)]
struct FramePlace {
    path: PathBuf,
    offset: u64,
    len: u32,
}

/// The frames found by reading every segment file from its start.
#[derive(Default)]
struct FrameScan {
    blocks: BTreeMap<u64, FramePlace>,
    dictionaries: HashMap<[u8; 32], Vec<u8>>,
    /// Where reading a segment stopped before its end (damage or a cut).
    damage: Vec<String>,
}

/// How the events are read: through sled while it is usable, else from the segments' frames.
pub struct SalvageSource {
    sled: Option<SledStore>,
    /// Why sled is not read (it did not open, or it held fewer events than the sealed blocks).
    sled_problem: Option<String>,
    scan: FrameScan,
}

impl SalvageSource {
    /// Opens the log in `log_dir` for reading only: its sled files are copied into `scratch` first (sled writes
    /// when it opens), its segments are read in place.
    pub fn open(log_dir: &Path, scratch: &Path) -> StoreResult<Self> {
        copy_tree(log_dir, scratch, "segments")?;
        let segments = log_dir.join("segments");
        // sled would start an empty log over missing files: that is damage too, not an empty ledger.
        let opened = super::sled_files::check_files(scratch)
            .and_then(|()| SledStore::open_for_salvage(scratch, &segments));
        let (sled, sled_problem) = match opened {
            Ok(store) => (Some(store), None),
            Err(error) => (None, Some(format!("it did not open: {error}"))),
        };
        Ok(Self {
            sled,
            sled_problem,
            scan: scan_frames(&segments)?,
        })
    }

    /// Events in the segments' blocks from block 0 without a gap: what a salvage can reach without sled.
    pub fn sealed_events(&self) -> u64 {
        self.scan.contiguous_blocks() * super::BLOCK_EVENTS
    }

    /// Whether the events are read through sled.
    pub fn reads_sled(&self) -> bool {
        self.sled.is_some()
    }

    /// Reads the segments from now on: sled gave fewer events than they hold (it fell back to an older state).
    pub fn give_up_sled(&mut self, why: String) {
        self.sled = None;
        self.sled_problem = Some(why);
    }

    /// The events from seq 1 on, in order; an error where reading stopped.
    pub fn records(&self) -> StoreIter<'_, StoredRecord> {
        match &self.sled {
            Some(store) => store.scan(1, u64::MAX),
            None => Box::new(self.scan.records()),
        }
    }

    /// The damaged log's sled, while it is read: its side entries (checkpoints, signers) come with it; the
    /// segments alone have none.
    pub fn store(&self) -> Option<&dyn LogStore> {
        self.sled.as_ref().map(|store| store as &dyn LogStore)
    }

    /// What was read and what could not be (a sentence for the report).
    pub fn describe(&self) -> String {
        match (&self.sled, &self.sled_problem) {
            (Some(_), _) => "sled opened: the events were read through it".into(),
            (None, problem) => {
                let mut text = format!(
                    "sled was not usable ({}): the events were read from {} sealed block(s) in the segment \
                     files, and the events after the last sealed block (up to 1,023, kept in sled) are lost",
                    problem.as_deref().unwrap_or("unknown"),
                    self.scan.blocks.len()
                );
                for damage in &self.scan.damage {
                    text.push_str("; ");
                    text.push_str(damage);
                }
                text
            }
        }
    }
}

/// Copies the tree under `from` into `to`, leaving out the entry of `from` named `skip`.
fn copy_tree(from: &Path, to: &Path, skip: &str) -> StoreResult<()> {
    let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", from.display()));
    std::fs::create_dir_all(to).map_err(io)?;
    for entry in std::fs::read_dir(from).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_name() == skip {
            continue;
        }
        if entry.file_type().map_err(io)?.is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()), "")?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).map_err(io)?;
        }
    }
    Ok(())
}

/// Reads every segment's frames from the start; a frame that does not parse or check ends that segment.
fn scan_frames(dir: &Path) -> StoreResult<FrameScan> {
    let mut scan = FrameScan::default();
    for (id, path) in super::sled_segment_files::list(dir)? {
        let bytes = std::fs::read(&path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        let mut at = 0usize;
        while at < bytes.len() {
            match parse_frame(&bytes[at..]) {
                Some((kind, block, payload)) => {
                    let offset = (at + FRAME_HEADER) as u64;
                    match kind {
                        FrameKind::Dictionary => {
                            scan.dictionaries
                                .insert(dictionary_id(payload), payload.to_vec());
                        }
                        FrameKind::Block => {
                            // A later frame of the same block is a rewrite (pruning): it wins.
                            scan.blocks.insert(
                                block,
                                FramePlace {
                                    path: path.clone(),
                                    offset,
                                    len: payload.len() as u32,
                                },
                            );
                        }
                        // Tail chunks live in the journal, not among the segments.
                        FrameKind::Postings | FrameKind::Tail => {}
                    }
                    at += FRAME_HEADER + payload.len() + FRAME_TRAILER;
                }
                None => {
                    scan.damage.push(format!(
                        "segment {id} is damaged or cut at byte {at} of {}",
                        bytes.len()
                    ));
                    break;
                }
            }
        }
    }
    Ok(scan)
}

/// `(kind, block, payload)` of the frame at the start of `bytes`, if it is whole and its checksum holds.
fn parse_frame(bytes: &[u8]) -> Option<(FrameKind, u64, &[u8])> {
    if bytes.len() < FRAME_HEADER || &bytes[..4] != FRAME_MAGIC {
        return None;
    }
    let kind = FrameKind::from_byte(bytes[4])?;
    let block = u64::from_be_bytes(bytes[5..13].try_into().ok()?);
    let len = u32::from_be_bytes(bytes[13..17].try_into().ok()?) as usize;
    let payload = bytes.get(FRAME_HEADER..FRAME_HEADER + len)?;
    let sha = bytes.get(FRAME_HEADER + len..FRAME_HEADER + len + FRAME_TRAILER)?;
    (<[u8; 32]>::from(Sha256::digest(payload)) == sha).then_some((kind, block, payload))
}

impl FrameScan {
    /// Blocks 0, 1, … present without a gap.
    fn contiguous_blocks(&self) -> u64 {
        self.blocks
            .keys()
            .zip(0u64..)
            .take_while(|(block, expected)| *block == expected)
            .count() as u64
    }

    /// The blocks' events from block 0 on; stops with an error at the first missing or undecodable block.
    fn records(&self) -> impl Iterator<Item = StoreResult<StoredRecord>> + Send + '_ {
        let mut next_block = 0u64;
        let mut pending: std::vec::IntoIter<StoredRecord> = Vec::new().into_iter();
        let mut stopped = false;
        std::iter::from_fn(move || loop {
            if let Some(record) = pending.next() {
                return Some(Ok(record));
            }
            if stopped {
                return None;
            }
            let Some(place) = self.blocks.get(&next_block) else {
                stopped = true;
                // The end of the sealed blocks, or a block lost in the middle: either way reading stops here.
                if self.blocks.range(next_block..).next().is_some() {
                    return Some(Err(StoreError::Corrupt(format!(
                        "block {next_block} (events {}..) is in no segment",
                        block_first(next_block)
                    ))));
                }
                return None;
            };
            match self.decode(next_block, place) {
                Ok(records) => pending = records.into_iter(),
                Err(error) => {
                    stopped = true;
                    return Some(Err(error));
                }
            }
            next_block += 1;
        })
    }

    fn decode(&self, block: u64, place: &FramePlace) -> StoreResult<Vec<StoredRecord>> {
        let unit = format!("block {block} (events {}..)", block_first(block));
        let file = std::fs::File::open(&place.path)
            .map_err(|e| StoreError::Corrupt(format!("{unit}: {e}")))?;
        let mut bytes = vec![0u8; place.len as usize];
        file.read_exact_at(&mut bytes, place.offset)
            .map_err(|e| StoreError::Corrupt(format!("{unit}: {e}")))?;
        let header = block_header(&bytes, &unit)?;
        let dictionary = if header.dictionary == super::sled_units::NO_DICTIONARY {
            None
        } else {
            Some(self.dictionaries.get(&header.dictionary).ok_or_else(|| {
                StoreError::Corrupt(format!("{unit} names a dictionary no segment holds"))
            })?)
        };
        decode_block(&bytes, dictionary.map(Vec::as_slice), &unit)
    }
}

/// Follows the chain record by record: each must be the next seq and hash from its predecessor.
#[derive(Debug)]
pub struct ChainFollower {
    prev: Hash32,
    next: u64,
}

impl Default for ChainFollower {
    fn default() -> Self {
        Self {
            prev: GENESIS_PREV,
            next: 1,
        }
    }
}

impl ChainFollower {
    /// Accepts `record` if it continues the chain; otherwise says why not.
    pub fn accept(&mut self, record: &StoredRecord) -> Result<(), String> {
        if record.seq != self.next {
            return Err(format!(
                "event {} is missing (next stored is {})",
                self.next, record.seq
            ));
        }
        if chain_hash(&self.prev, &record.body) != record.hash {
            return Err(format!(
                "event {} does not chain from event {}",
                record.seq,
                record.seq - 1
            ));
        }
        self.prev = record.hash;
        self.next += 1;
        Ok(())
    }

    /// How many records were accepted.
    pub fn accepted(&self) -> u64 {
        self.next - 1
    }
}
