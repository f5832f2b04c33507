//! The log in PostgreSQL (DESIGN.md §9): the same entries as the sled store, in tables. A batch is one
//! transaction, conditional on the head it chains from, committed on the one connection that holds the ledger's
//! advisory lock for the store's whole life: a second writer is refused, and a writer whose session (and so its
//! lock) is gone cannot commit anything. Reads use a pool. `sync` has nothing to do: a commit is durable as
//! `synchronous_commit` says (docs/OPERATIONS.md).

use super::{AppendBatch, Head, LogStore, StoreError, StoreIter, StoreResult, StoredRecord};
use crate::time::LedgerTime;
use postgres::{Client, NoTls};
use r2d2_postgres::PostgresConnectionManager;
use std::sync::Mutex;
use uuid::Uuid;

mod follow;
mod listings;
mod rows;
mod setup;
mod write;

pub use follow::PgRole;
use rows::{bigint_range, record_of, seq_of};
use setup::{check_schema, migrate, password_from_env, redact};
use write::write;

/// The advisory lock every keyledger writer of a database takes (an arbitrary constant: "keyledger").
const WRITER_LOCK: i64 = 0x6b65_796c_6564_6772;
/// The channel the writer notifies (with the new head seq) when a batch commits; followers LISTEN on it.
const APPENDED_CHANNEL: &str = "keyledger_appended";
/// Rows fetched per query while iterating.
const PAGE: i64 = 5_000;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

pub struct PgStore {
    /// Always `Some` until dropped (taken then, to close the sessions off any async runtime).
    inner: Option<Inner>,
}

struct Inner {
    /// The session holding the writer lock; every batch commits on it. `None` for a follower (read-only).
    writer: Option<Mutex<Client>>,
    pool: Pool,
    /// A follower's session listening for the writer's commit notices, opened on first wait.
    listener: Mutex<Option<Client>>,
    config: postgres::Config,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a synchronous client blocks on its own runtime, which may not happen on an async worker thread.
        if let Some(inner) = self.inner.take() {
            off_runtime(move || {
                // The server frees a session's advisory lock only when its backend exits, a moment after the
                // client hangs up; unlocking first frees the writer lock by the time this store is dropped.
                if let Some(writer) = &inner.writer {
                    let mut session = writer.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = session.execute("SELECT pg_advisory_unlock($1)", &[&WRITER_LOCK]);
                }
                drop(inner)
            });
        }
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("PostgreSQL: {e}"))
}

/// Runs blocking PostgreSQL work off any tokio runtime: the synchronous client drives its own runtime, which may
/// not be started from a thread that is already inside one.
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn i64_of(value: u64) -> StoreResult<i64> {
    i64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("seq {value} exceeds PostgreSQL's bigint")))
}

/// Tries the writer lock for up to a second: a writer that just stopped in another process may have hung up
/// without unlocking (a kill), and its backend frees the lock only once it notices.
fn try_writer_lock(session: &mut postgres::Client) -> StoreResult<bool> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let locked: bool = session
            .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK])
            .map_err(backend)?
            .get(0);
        if locked || std::time::Instant::now() >= deadline {
            return Ok(locked);
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

impl PgStore {
    /// Connects, applies pending migrations and takes the writer lock; `InUse` when another writer holds it.
    pub fn open(url: &str) -> StoreResult<PgStore> {
        Self::open_as(url, PgRole::Writer)
    }

    /// Opens the store in `role`: the writer (lock taken at once, or refused), a standby (waits for the lock: it
    /// takes over the moment the current writer's session ends, by a clean stop or by its death), or a follower
    /// (no lock, never writes, needs the schema the writer migrated).
    pub fn open_as(url: &str, role: PgRole) -> StoreResult<PgStore> {
        off_runtime(|| {
            let mut config: postgres::Config = url.parse().map_err(backend)?;
            if config.get_password().is_none() {
                if let Some(password) = password_from_env()? {
                    config.password(password);
                }
            }
            let mut session = config.connect(NoTls).map_err(backend)?;
            let writer = match role {
                PgRole::Follower => {
                    check_schema(&mut session)?;
                    None
                }
                PgRole::Writer | PgRole::Standby => {
                    let locked: bool = if role == PgRole::Standby {
                        session
                            .execute("SELECT pg_advisory_lock($1)", &[&WRITER_LOCK])
                            .map_err(backend)?;
                        true
                    } else {
                        try_writer_lock(&mut session)?
                    };
                    if !locked {
                        return Err(StoreError::InUse(std::path::PathBuf::from(redact(url))));
                    }
                    migrate(&mut session)?;
                    Some(Mutex::new(session))
                }
            };
            let pool = r2d2::Pool::builder()
                .max_size(8)
                .build(PostgresConnectionManager::new(config.clone(), NoTls))
                .map_err(backend)?;
            Ok(PgStore {
                inner: Some(Inner {
                    writer,
                    pool,
                    listener: Mutex::new(None),
                    config,
                }),
            })
        })
    }

    /// The writer's session; `ReadOnly` on a follower.
    fn writer(&self) -> StoreResult<std::sync::MutexGuard<'_, Client>> {
        self.inner()?
            .writer
            .as_ref()
            .ok_or(StoreError::ReadOnly)?
            .lock()
            .map_err(|_| backend("writer lock poisoned"))
    }

    fn inner(&self) -> StoreResult<&Inner> {
        self.inner
            .as_ref()
            .ok_or_else(|| backend("the store is closed"))
    }

    fn read<T: Send>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> StoreResult<T> {
        off_runtime(|| {
            let mut client = self.inner()?.pool.get().map_err(backend)?;
            work(&mut client).map_err(backend)
        })
    }
}

impl LogStore for PgStore {
    fn write_batch(&self, batch: &AppendBatch) -> StoreResult<()> {
        off_runtime(|| {
            let mut writer = self.writer()?;
            write(&mut writer, batch)
        })
    }

    fn sync(&self) -> StoreResult<()> {
        Ok(())
    }

    fn head(&self) -> StoreResult<Option<Head>> {
        let row = self.read(|c| c.query_opt("SELECT seq, hash, time_us FROM kl_head", &[]))?;
        row.map(|row| {
            let hash: Vec<u8> = row.get(1);
            Ok(Head {
                seq: row.get::<_, i64>(0) as u64,
                hash: hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("head hash is not 32 bytes".into()))?,
                time: LedgerTime::from_micros(row.get(2)),
            })
        })
        .transpose()
    }

    fn last_record(&self) -> StoreResult<Option<StoredRecord>> {
        let row = self.read(|c| {
            c.query_opt(
                "SELECT seq, record FROM kl_events ORDER BY seq DESC LIMIT 1",
                &[],
            )
        })?;
        row.map(|row| record_of(&row).map(|(_, r)| r)).transpose()
    }

    fn get(&self, seq: u64) -> StoreResult<Option<StoredRecord>> {
        let Ok(key) = i64::try_from(seq) else {
            return Ok(None);
        };
        let row = self
            .read(|c| c.query_opt("SELECT seq, record FROM kl_events WHERE seq = $1", &[&key]))?;
        row.map(|row| record_of(&row).map(|(_, r)| r)).transpose()
    }

    fn scan(&self, from: u64, to: u64) -> StoreIter<'_, StoredRecord> {
        let (from, to) = bigint_range(from, to);
        self.paged(
            "SELECT seq, record FROM kl_events WHERE seq > $1 AND seq < $3 ORDER BY seq LIMIT $2",
            from - 1,
            vec![Box::new(to)],
            record_of,
        )
    }

    fn first_seq_at_or_after(&self, time: LedgerTime) -> StoreResult<u64> {
        let micros = time.as_micros();
        let row = self.read(|c| {
            c.query_opt(
                "SELECT seq FROM kl_events WHERE time_us >= $1 ORDER BY time_us, seq LIMIT 1",
                &[&micros],
            )
        })?;
        match row {
            Some(row) => Ok(row.get::<_, i64>(0) as u64),
            None => Ok(self.head()?.map_or(1, |head| head.seq + 1)),
        }
    }

    fn key_seqs(&self, key: Uuid, from: u64, to: u64) -> StoreIter<'_, u64> {
        let (from, to) = bigint_range(from, to);
        self.paged(
            "SELECT seq FROM kl_key_index WHERE seq > $1 AND key_id = $3 AND seq < $4 ORDER BY seq LIMIT $2",
            from - 1,
            vec![Box::new(key), Box::new(to)],
            seq_of,
        )
    }

    fn key_seqs_rev(&self, key: Uuid, from: u64, to: u64) -> StoreIter<'_, u64> {
        let (from, to) = bigint_range(from, to);
        self.paged(
            "SELECT seq FROM kl_key_index WHERE seq < $1 AND key_id = $3 AND seq >= $4 ORDER BY seq DESC LIMIT $2",
            to,
            vec![Box::new(key), Box::new(from)],
            seq_of,
        )
    }

    fn key_index(&self) -> StoreIter<'_, (Uuid, u64)> {
        self.list_key_index()
    }

    fn lifecycle_seqs(&self, from: u64, to: u64) -> StoreIter<'_, u64> {
        let (from, to) = bigint_range(from, to);
        self.paged(
            "SELECT seq FROM kl_lifecycle_index WHERE seq > $1 AND seq < $3 ORDER BY seq LIMIT $2",
            from - 1,
            vec![Box::new(to)],
            seq_of,
        )
    }

    fn time_index(&self) -> StoreIter<'_, (LedgerTime, u64)> {
        self.list_time_index()
    }

    fn attribute_seqs(&self, digest: [u8; 16], from: u64, to: u64) -> StoreIter<'_, u64> {
        let (from, to) = bigint_range(from, to);
        self.paged(
            "SELECT seq FROM kl_attribute_index WHERE seq > $1 AND digest = $3 AND seq < $4 ORDER BY seq LIMIT $2",
            from - 1,
            vec![Box::new(digest.to_vec()), Box::new(to)],
            seq_of,
        )
    }

    fn attribute_index(&self) -> StoreIter<'_, ([u8; 16], u64)> {
        self.list_attribute_index()
    }

    fn get_side(&self, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        let key = key.to_vec();
        let row =
            self.read(|c| c.query_opt("SELECT value FROM kl_side WHERE key = $1", &[&key]))?;
        Ok(row.map(|row| row.get(0)))
    }

    fn scan_side(&self, prefix: &[u8]) -> StoreIter<'_, (Vec<u8>, Vec<u8>)> {
        self.scan_side_from(prefix, prefix)
    }

    fn scan_side_from(&self, prefix: &[u8], from: &[u8]) -> StoreIter<'_, (Vec<u8>, Vec<u8>)> {
        self.list_side(prefix, from)
    }

    fn put_side(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> StoreResult<()> {
        self.write_batch(&AppendBatch {
            side: entries.to_vec(),
            ..Default::default()
        })
    }

    fn remove_side(&self, keys: &[Vec<u8>]) -> StoreResult<()> {
        self.write_batch(&AppendBatch {
            side_removals: keys.to_vec(),
            ..Default::default()
        })
    }

    fn size_on_disk(&self) -> StoreResult<u64> {
        let row = self.read(|c| {
            c.query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                 WHERE c.relname LIKE 'kl\\_%' AND c.relkind = 'r' AND pg_table_is_visible(c.oid)",
                &[],
            )
        })?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn wait_for_appends(&self, timeout: std::time::Duration) -> StoreResult<()> {
        off_runtime(|| self.wait_for_notice(timeout))
    }

    fn advertise_writer(&self, address: &str) -> StoreResult<()> {
        off_runtime(|| self.advertise(address))
    }

    fn advertised_writer(&self) -> StoreResult<Option<String>> {
        self.read(|c| c.query_opt("SELECT address FROM kl_leader", &[]))
            .map(|row| row.map(|row| row.get(0)))
    }

    fn prune_archived(&self, through: u64, keep: &[u64]) -> StoreResult<u64> {
        let through = i64_of(through)?;
        let keep: Vec<i64> = keep.iter().map(|s| *s as i64).collect();
        off_runtime(|| {
            let mut writer = self.writer()?;
            let mut tx = writer.transaction().map_err(backend)?;
            let removed = tx
                .execute(
                    "DELETE FROM kl_events WHERE seq <= $1 AND NOT (seq = ANY($2))",
                    &[&through, &keep],
                )
                .map_err(backend)?;
            for table in [
                "kl_key_index",
                "kl_time_index",
                "kl_lifecycle_index",
                "kl_attribute_index",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE seq <= $1"), &[&through])
                    .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(removed)
        })
    }
}
