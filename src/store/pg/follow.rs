//! The PostgreSQL pieces of leading and following: the roles a process opens the store in, the writer's
//! advertised address (`kl_leader`), and a follower's wait for the writer's commit notices (LISTEN).

use super::{backend, PgStore, StoreResult, APPENDED_CHANNEL};
use fallible_iterator::FallibleIterator;
use postgres::NoTls;
use std::time::Duration;

/// How a process opens a PostgreSQL store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgRole {
    /// Takes the writer lock at once, or is refused (`InUse`).
    Writer,
    /// Waits for the writer lock, then writes.
    Standby,
    /// Reads only, any number of them, beside the writer.
    Follower,
}

impl PgStore {
    /// Blocks until the writer's next commit notice or `timeout`; drains every notice already queued. The
    /// listening session is opened (and LISTEN issued) on first use, and again after it is lost.
    pub(super) fn wait_for_notice(&self, timeout: Duration) -> StoreResult<()> {
        let inner = self.inner()?;
        let mut slot = inner
            .listener
            .lock()
            .map_err(|_| backend("listener lock poisoned"))?;
        if slot.is_none() {
            let mut client = inner.config.connect(NoTls).map_err(backend)?;
            client
                .batch_execute(&format!("LISTEN {APPENDED_CHANNEL}"))
                .map_err(backend)?;
            *slot = Some(client);
            // Anything committed before LISTEN took effect is found by the caller's next catch-up read.
            return Ok(());
        }
        let Some(client) = slot.as_mut() else {
            return Ok(());
        };
        let waited = {
            let mut notices = client.notifications();
            let first = notices.timeout_iter(timeout).next();
            first.and_then(|_| {
                let mut pending = notices.iter();
                while pending.next()?.is_some() {}
                Ok(())
            })
        };
        if let Err(error) = waited {
            *slot = None;
            return Err(backend(error));
        }
        if client.is_closed() {
            *slot = None;
        }
        Ok(())
    }

    /// Records `address` as where writes go (called by the writer once it listens).
    pub(super) fn advertise(&self, address: &str) -> StoreResult<()> {
        let mut writer = self.writer()?;
        writer
            .execute(
                "INSERT INTO kl_leader VALUES (1, $1, now()) ON CONFLICT (id) DO UPDATE \
                 SET address = excluded.address, since = excluded.since",
                &[&address],
            )
            .map_err(backend)?;
        Ok(())
    }
}
