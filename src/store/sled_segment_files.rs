//! The segment files themselves: appending frames durably, reading a payload checked against its SHA-256, moving
//! on to a new segment past what a crash left uncommitted, and the crash injection the kill tests use.

use super::sled_segments::{Frame, Location, FRAME_MAGIC};
use super::{StoreError, StoreResult};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// What a series of segment files holds: when a new file is started, and the name of its crash-injection steps.
#[derive(Clone, Copy, Debug)]
pub(super) struct Series {
    /// A new segment is started once the current one holds this many bytes.
    roll_at: u64,
    /// The prefix of its steps' failpoint names (`seal-frames-written`, …).
    steps: &'static str,
}

/// Sealed blocks, their postings and the dictionary: kept for good, in files of 64 MiB.
pub(super) const SEALED: Series = Series {
    roll_at: 64 * 1024 * 1024,
    steps: "seal",
};

/// The tail chunks (sled_journal.rs): each dead once its block is sealed, so the files are small enough to be
/// removed soon after.
pub(super) const JOURNAL: Series = Series {
    // Unit tests roll sooner, to see files removed.
    roll_at: if cfg!(test) { 64 * 1024 } else { 1024 * 1024 },
    steps: "journal",
};

pub(super) fn segment_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(format!("{segment:08}.seg"))
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |err| StoreError::Backend(format!("{what}: {err}"))
}

/// The segment files of one log: the appending end and read handles.
pub(super) struct Segments {
    dir: PathBuf,
    series: Series,
    /// The segment being appended to and its committed end; `None` before the first frame.
    end: Mutex<(u32, u64)>,
    readers: RwLock<HashMap<u32, Arc<File>>>,
}

impl Segments {
    /// Opens the segment directory with sled's committed end (`None`: nothing committed yet). Writable stores cut
    /// what lies past the committed end (a seal that did not commit) and remove segments started after it.
    pub(super) fn open(
        dir: PathBuf,
        series: Series,
        committed: Option<(u32, u64)>,
        writable: bool,
    ) -> StoreResult<Self> {
        let (segment, end) = committed.unwrap_or((0, 0));
        // Where the next frame goes: after the committed end, unless bytes lie past it (a seal cut short, or a
        // sled that fell back to an older state). Those are never cut or removed — they may be all that is left
        // of sealed events (`store salvage` reads them) — and appending moves on to a new segment instead.
        let mut next = (segment, end);
        if writable {
            std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
            let path = segment_path(&dir, segment);
            let len = std::fs::metadata(&path).map_or(0, |meta| meta.len());
            if len < end {
                return Err(StoreError::Corrupt(format!(
                    "{} holds {len} bytes but the log committed {end} to it: the segment was cut or is missing",
                    path.display()
                )));
            }
            let newest = list(&dir)?.last().map_or(0, |(id, _)| *id);
            if len > end || newest > segment {
                tracing::warn!(
                    segment,
                    uncommitted_bytes = len - end,
                    newest_segment = newest,
                    "segments hold frames past the log's committed end; they are kept and new blocks go to a new segment"
                );
                next = (newest.max(segment), u64::MAX);
            }
        }
        Ok(Self {
            dir,
            series,
            end: Mutex::new(next),
            readers: RwLock::new(HashMap::new()),
        })
    }

    /// Appends `frames` durably (written and fsynced, the directory too when a segment is started) and returns
    /// their payloads' locations and the new committed end, for sled to record in one transaction.
    pub(super) fn append(&self, frames: &[Frame<'_>]) -> StoreResult<(Vec<Location>, (u32, u64))> {
        let mut end = self.end.lock().unwrap_or_else(|p| p.into_inner());
        let (mut segment, mut offset) = *end;
        if offset >= self.series.roll_at || (segment == 0 && offset == 0) {
            segment += 1;
            offset = 0;
        }
        let path = segment_path(&self.dir, segment);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        let mut bytes = Vec::new();
        let mut locations = Vec::with_capacity(frames.len());
        for frame in frames {
            let len = u32::try_from(frame.payload.len()).map_err(|_| {
                StoreError::Backend(format!(
                    "a frame of {} bytes is too large",
                    frame.payload.len()
                ))
            })?;
            let sha256: [u8; 32] = Sha256::digest(frame.payload).into();
            bytes.extend_from_slice(FRAME_MAGIC);
            bytes.push(frame.kind.byte());
            bytes.extend_from_slice(&frame.block.to_be_bytes());
            bytes.extend_from_slice(&len.to_be_bytes());
            locations.push(Location {
                segment,
                offset: offset + bytes.len() as u64,
                len,
                sha256,
            });
            bytes.extend_from_slice(frame.payload);
            bytes.extend_from_slice(&sha256);
        }
        file.write_all_at(&bytes, offset)
            .map_err(io(format!("appending to {}", path.display())))?;
        failpoint(&format!("{}-frames-written", self.series.steps));
        file.sync_data()
            .map_err(io(format!("syncing {}", path.display())))?;
        if offset == 0 {
            File::open(&self.dir)
                .and_then(|dir| dir.sync_all())
                .map_err(io(format!("syncing {}", self.dir.display())))?;
        }
        failpoint(&format!("{}-frames-synced", self.series.steps));
        let new_end = (segment, offset + bytes.len() as u64);
        // The end moves on before sled commits; if the commit fails the writer stops, and the next open cuts the
        // frames off again.
        *end = new_end;
        Ok((locations, new_end))
    }

    fn reader(&self, segment: u32) -> StoreResult<Arc<File>> {
        if let Some(file) = self
            .readers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&segment)
        {
            return Ok(file.clone());
        }
        let path = segment_path(&self.dir, segment);
        let file = Arc::new(File::open(&path).map_err(|err| {
            StoreError::Corrupt(format!("{} cannot be read: {err}", path.display()))
        })?);
        self.readers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(segment, file.clone());
        Ok(file)
    }

    /// The payload at `location`, not hashed: index lookups, whose every answer is an event read and checked
    /// after (whole-index listings and verification use [`Segments::read`]).
    pub(super) fn read_unhashed(&self, location: &Location, unit: &str) -> StoreResult<Vec<u8>> {
        let file = self.reader(location.segment)?;
        let mut bytes = vec![0u8; location.len as usize];
        file.read_exact_at(&mut bytes, location.offset)
            .map_err(|err| {
                StoreError::Corrupt(format!(
                    "{unit} cannot be read from segment {} at {}: {err}",
                    location.segment, location.offset
                ))
            })?;
        Ok(bytes)
    }

    /// The payload at `location`, checked against its SHA-256; `unit` names it in errors.
    pub(super) fn read(&self, location: &Location, unit: &str) -> StoreResult<Vec<u8>> {
        let bytes = self.read_unhashed(location, unit)?;
        if <[u8; 32]>::from(Sha256::digest(&bytes)) != location.sha256 {
            return Err(StoreError::Corrupt(format!(
                "{unit} in segment {} no longer matches its SHA-256: its bytes were changed",
                location.segment
            )));
        }
        Ok(bytes)
    }

    /// Overwrites bytes of a payload in place (tamper tests: damage as a disk or an editor would do it).
    pub(super) fn damage(&self, location: &Location, at: u64, byte: u8) -> StoreResult<()> {
        let path = segment_path(&self.dir, location.segment);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        file.write_all_at(&[byte], location.offset + at)
            .and_then(|()| file.sync_data())
            .map_err(io(format!("writing {}", path.display())))?;
        Ok(())
    }

    /// Removes segments no location names any more (after pruning), never the one being appended to.
    pub(super) fn remove_unreferenced(&self, referenced: &BTreeSet<u32>) -> StoreResult<u64> {
        let current = self.end.lock().unwrap_or_else(|p| p.into_inner()).0;
        let mut freed = 0;
        for (id, path) in list(&self.dir)? {
            if id != current && !referenced.contains(&id) {
                freed += std::fs::metadata(&path).map_or(0, |m| m.len());
                self.readers
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                std::fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
            }
        }
        Ok(freed)
    }

    /// Bytes of every segment file.
    pub(super) fn bytes_on_disk(&self) -> u64 {
        list(&self.dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|(_, path)| std::fs::metadata(path).ok())
            .map(|meta| meta.len())
            .sum()
    }
}

/// Crash injection for the kill tests (tests/store_crash.rs): with `KEYLEDGER_FAILPOINT=name:n` the process
/// aborts, as `kill -9` would stop it, the n-th time it reaches step `name` of a seal. Read once; unset, a
/// seal pays one relaxed load per step.
pub(super) fn failpoint(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let target = TARGET.get_or_init(|| {
        let spec = std::env::var("KEYLEDGER_FAILPOINT").ok()?;
        let (step, nth) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
        Some((step.to_string(), nth.parse().ok()?))
    });
    if let Some((step, nth)) = target {
        if step == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *nth {
            std::process::abort();
        }
    }
}

/// The segment files in `dir`, by number.
pub(super) fn list(dir: &Path) -> StoreResult<Vec<(u32, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(StoreError::Backend(format!("{}: {err}", dir.display()))),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|err| StoreError::Backend(format!("{}: {err}", dir.display())))?
            .path();
        let id = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".seg"))
            .and_then(|stem| stem.parse::<u32>().ok());
        if let Some(id) = id {
            out.push((id, path));
        }
    }
    out.sort();
    Ok(out)
}
