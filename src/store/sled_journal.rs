//! The tail journal: the chunks of events since the last sealed block, in small append-only files beside sled
//! (`log/journal/`), with sled keeping only where each chunk lies and its first event's time.
//!
//! Every event passes through the tail once. As sled values the chunks were most of what sled wrote (each commit
//! rewrote the node holding the newest chunks), and the dead versions sled keeps grew its file with every event
//! written (docs/PERFORMANCE.md). A chunk is appended and fsynced before the sled commit that names it, as a
//! sealed block is; bytes a crash left past the committed end are never named. A journal file that no chunk
//! names is removed at a later seal, once the commit that stopped naming it is surely durable.

use super::sled_journal_refs::{encode_ref, ref_location};
use super::sled_keys::{backend, seq_key, TAIL};
use super::sled_segments::{encode_end, Frame, FrameKind};
use super::sled_store::SledStore;
use super::sled_units::{split_tail, tail_name};
use super::StoreResult;
use std::borrow::Cow;
use std::collections::BTreeSet;

/// In the `log` tree: the newest journal file and its committed end.
pub(super) const JOURNAL_END: &[u8] = b"J";
impl SledStore {
    /// A tail chunk's bytes from its sled value: read from the journal and checked against its SHA-256, or the value
    /// itself (a chunk written before the journal).
    pub(super) fn tail_bytes<'a>(&self, first: u64, value: &'a [u8]) -> StoreResult<Cow<'a, [u8]>> {
        match ref_location(value) {
            Some(location) => Ok(Cow::Owned(self.journal.read(&location, &tail_name(first))?)),
            None => Ok(Cow::Borrowed(value)),
        }
    }

    /// Appends the encoded `chunks` (first seq, bytes) to the journal, durably, and puts in `writes` where each
    /// lies and the journal's new committed end, for one sled commit.
    pub(super) fn journal_tails(
        &self,
        writes: &mut sled::Batch,
        chunks: &[(u64, Vec<u8>)],
    ) -> StoreResult<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let frames: Vec<Frame<'_>> = chunks
            .iter()
            .map(|(first, bytes)| Frame {
                kind: FrameKind::Tail,
                block: *first,
                payload: bytes,
            })
            .collect();
        let (locations, (segment, end)) = self.journal.append(&frames)?;
        for ((first, bytes), location) in chunks.iter().zip(locations) {
            let (time, _, _) = split_tail(bytes, &tail_name(*first))?;
            writes.insert(&seq_key(TAIL, *first), encode_ref(time, &location));
        }
        writes.insert(JOURNAL_END, &encode_end(segment, end));
        Ok(())
    }

    /// Removes the journal files no tail chunk names, after making sled's state durable, so that no crash can bring
    /// back a chunk in a removed file. Called at each seal: a file is removed one seal after its last chunk was.
    pub(super) fn trim_journal(&self) -> StoreResult<u64> {
        self.flush_all()?;
        let mut named = BTreeSet::new();
        for item in self.tree.scan_prefix([TAIL]) {
            let (_, value) = item.map_err(backend)?;
            if let Some(location) = ref_location(&value) {
                named.insert(location.segment);
            }
        }
        self.journal.remove_unreferenced(&named)
    }

    /// Bytes of the journal files.
    pub(super) fn journal_bytes_on_disk(&self) -> u64 {
        self.journal.bytes_on_disk()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_journal_refs::ref_time;
    use crate::store::sled_test_records::{append, record};
    use crate::store::sled_units::encode_tail;
    use crate::store::LogStore;

    fn journal_files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir.join("journal")).map_or(0, |d| d.count())
    }

    #[test]
    fn tail_chunks_lie_in_the_journal_and_its_files_go_once_their_blocks_are_sealed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SledStore::open(tmp.path()).unwrap();
        for batch in 0..100 {
            append(&store, 1 + batch * 50, 50);
        }
        let refs: Vec<_> = store
            .tree
            .scan_prefix([TAIL])
            .map(|item| item.unwrap().1)
            .collect();
        assert!(!refs.is_empty());
        assert!(
            refs.iter().all(|value| ref_time(value).is_some()),
            "every chunk is journaled"
        );
        // 5,000 events wrote some 40 files of 64 KiB; those of the sealed blocks are gone.
        let files = journal_files(tmp.path());
        assert!((1..=3).contains(&files), "{files} journal files");
        drop(store);
        let store = SledStore::open(tmp.path()).unwrap();
        let read: Vec<_> = store.scan(1, u64::MAX).map(Result::unwrap).collect();
        assert_eq!(read, (1..=5000).map(record).collect::<Vec<_>>());
        assert_eq!(
            store.first_seq_at_or_after(record(4990).time).unwrap(),
            4990
        );
    }

    #[test]
    fn a_chunk_kept_in_sled_as_before_the_journal_still_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SledStore::open(tmp.path()).unwrap();
        append(&store, 1, 10);
        let records: Vec<_> = (1..=10).map(record).collect();
        store
            .tree
            .insert(seq_key(TAIL, 1), encode_tail(&records, Vec::new()))
            .unwrap();
        assert_eq!(store.get(7).unwrap(), Some(record(7)));
        assert_eq!(store.first_seq_at_or_after(record(1).time).unwrap(), 1);
    }

    #[test]
    fn a_layout_4_log_with_its_tail_in_sled_reads_and_seals_it_with_new_chunks_in_the_journal() {
        use crate::store::sled_keys::{LAYOUT, LAYOUT_CURRENT, LAYOUT_TILE_FILES};
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(tmp.path()).unwrap();
            for batch in 0..15 {
                append(&store, 1 + batch * 100, 100);
            }
            // As layout 4 kept them: each chunk's bytes as its sled value, no journal.
            let chunks: Vec<_> = store
                .tree
                .scan_prefix([TAIL])
                .map(|item| item.unwrap())
                .collect();
            assert_eq!(chunks.len(), 5, "events 1025..=1500 in five chunks");
            for (key, value) in chunks {
                let first = crate::store::sled_keys::be_u64(&key[1..]).unwrap();
                let bytes = store.tail_bytes(first, &value).unwrap().into_owned();
                store.tree.insert(key, bytes).unwrap();
            }
            store.tree.remove(JOURNAL_END).unwrap();
            store.tree.insert(LAYOUT, &[LAYOUT_TILE_FILES]).unwrap();
            store.flush_all().unwrap();
        }
        std::fs::remove_dir_all(tmp.path().join("journal")).unwrap();
        let store = SledStore::open(tmp.path()).unwrap();
        assert_eq!(
            store.tree.get(LAYOUT).unwrap().unwrap().as_ref(),
            [LAYOUT_CURRENT]
        );
        let all = |store: &SledStore| -> Vec<u64> {
            store.scan(1, u64::MAX).map(|r| r.unwrap().seq).collect()
        };
        assert_eq!(all(&store), (1..=1500).collect::<Vec<_>>());
        assert_eq!(
            store.first_seq_at_or_after(record(1200).time).unwrap(),
            1200
        );
        for batch in 15..21 {
            append(&store, 1 + batch * 100, 100);
        }
        assert_eq!(all(&store), (1..=2100).collect::<Vec<_>>());
        assert_eq!(
            store.unit_counts().0,
            2,
            "the inline chunks were sealed into block 1"
        );
        assert!(store
            .tree
            .scan_prefix([TAIL])
            .all(|item| ref_time(&item.unwrap().1).is_some()));
    }

    #[test]
    fn a_journal_cut_below_its_committed_end_refuses_to_open() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SledStore::open(tmp.path()).unwrap();
        append(&store, 1, 10);
        drop(store);
        let file = std::fs::read_dir(tmp.path().join("journal"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let len = std::fs::metadata(&file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len - 10)
            .unwrap();
        let refused = SledStore::open(tmp.path())
            .err()
            .expect("a cut journal is refused");
        assert!(refused.to_string().contains("journal"), "{refused}");
    }
}
