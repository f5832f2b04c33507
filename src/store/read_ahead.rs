//! Whole-log reads with the reading on a thread of its own: the next chunks of records are read (and, from the
//! sled store, decompressed) while the caller checks or writes the current one.

use super::{LogStore, StoreError, StoredRecord};
use crate::chain::Hash32;
use std::sync::mpsc::{sync_channel, Receiver};

/// Chunks read ahead of the one being consumed: two keep the reader busy without holding much more than a chunk.
const DEPTH: usize = 2;

/// One chunk of consecutive records, or the error that ended the reading (after the records read before it).
pub type Chunk = Result<Vec<StoredRecord>, StoreError>;

/// Calls `consume` with the records of seqs `from..to` in chunks of up to `chunk` records, read on another thread.
/// The iterator ends after the last record or after an `Err` (records before a failure arrive first). When
/// `consume` returns early, the reader stops at its next chunk.
pub fn with_read_ahead<R>(
    store: &dyn LogStore,
    from: u64,
    to: u64,
    chunk: usize,
    consume: impl FnOnce(&mut dyn Iterator<Item = Chunk>) -> R,
) -> R {
    let chunk = chunk.max(1);
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel::<Chunk>(DEPTH);
        scope.spawn(move || {
            let mut records = store.scan(from, to.max(from));
            loop {
                let mut read = Vec::with_capacity(chunk);
                let mut failure = None;
                for item in records.by_ref().take(chunk) {
                    match item {
                        Ok(record) => read.push(record),
                        Err(error) => {
                            failure = Some(error);
                            break;
                        }
                    }
                }
                let ended = read.len() < chunk || failure.is_some();
                if !read.is_empty() && sender.send(Ok(read)).is_err() {
                    return;
                }
                if let Some(error) = failure {
                    let _ = sender.send(Err(error));
                    return;
                }
                if ended {
                    return;
                }
            }
        });
        let mut chunks = Chunks { receiver };
        // The receiver is dropped with `chunks` when `consume` returns, so a reader still sending stops there.
        consume(&mut chunks)
    })
}

struct Chunks {
    receiver: Receiver<Chunk>,
}

impl Iterator for Chunks {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        self.receiver.recv().ok()
    }
}

/// The hash record `i` of `chunk` links to: the one before it in the chunk, or `first_prev` (the hash of the
/// record before the chunk) for the first.
pub fn link_before<'a>(chunk: &'a [StoredRecord], i: usize, first_prev: &'a Hash32) -> &'a Hash32 {
    match i.checked_sub(1) {
        Some(before) => &chunk[before].hash,
        None => first_prev,
    }
}
