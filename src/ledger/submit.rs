//! Asking the writer: [`Ledger::submit`] and [`Ledger::checkpoint`] (async and blocking) send a job holding a
//! reply channel to the single writer thread and wait for its answer; a follower, which has no writer, refuses.

use super::checkpointer::SignedCheckpoint;
use super::command::Command;
use super::job::{Job, PendingCommand};
use super::writer_jobs::CheckpointJob;
use super::Ledger;
use crate::error::{LedgerError, LedgerResult};
use tokio::sync::oneshot;

impl Ledger {
    /// A signed checkpoint covering every event written so far, made by the writer and durable before it is
    /// returned (the newest stored one when nothing was written since).
    /// On a follower: the newest stored checkpoint it has checked.
    pub async fn checkpoint(&self) -> LedgerResult<SignedCheckpoint> {
        if let Some(status) = &self.follower {
            return status.latest_checkpoint().ok_or_else(|| self.read_only());
        }
        self.ask(checkpoint_job).await
    }

    /// Blocking form of [`Ledger::checkpoint`].
    pub fn checkpoint_blocking(&self) -> LedgerResult<SignedCheckpoint> {
        if let Some(status) = &self.follower {
            return status.latest_checkpoint().ok_or_else(|| self.read_only());
        }
        self.ask_blocking(checkpoint_job)
    }

    /// Submits a command and waits until its events are durable (or it was refused).
    pub async fn submit<C: Command>(&self, command: C) -> LedgerResult<C::Output> {
        self.ask(|reply| command_job(command, reply)).await
    }

    /// Blocking form of [`Ledger::submit`], for threads outside an async runtime (CLI, tests, benchmarks).
    /// Inside a multi-threaded tokio runtime it blocks in place; on a current-thread runtime it refuses.
    pub fn submit_blocking<C: Command>(&self, command: C) -> LedgerResult<C::Output> {
        self.ask_blocking(|reply| command_job(command, reply))
    }

    /// Sends the job `make` builds around a reply channel to the writer and waits for the answer.
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Box<dyn Job>) -> LedgerResult<T> {
        if self.follower.is_some() {
            return Err(self.read_only());
        }
        let (reply, answer) = oneshot::channel();
        let sender = self.commands.as_ref().ok_or(LedgerError::WriterStopped)?;
        sender
            .send(make(reply))
            .await
            .map_err(|_| LedgerError::WriterStopped)?;
        answer.await.map_err(|_| LedgerError::WriterStopped)?
    }

    /// Blocking form of [`Ledger::ask`] (see [`Ledger::submit_blocking`] for where it may be called).
    fn ask_blocking<T>(&self, make: impl FnOnce(Reply<T>) -> Box<dyn Job>) -> LedgerResult<T> {
        if self.follower.is_some() {
            return Err(self.read_only());
        }
        let wait = || {
            let (reply, answer) = oneshot::channel();
            let sender = self.commands.as_ref().ok_or(LedgerError::WriterStopped)?;
            sender
                .blocking_send(make(reply))
                .map_err(|_| LedgerError::WriterStopped)?;
            answer
                .blocking_recv()
                .map_err(|_| LedgerError::WriterStopped)?
        };
        match tokio::runtime::Handle::try_current() {
            Err(_) => wait(),
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            Ok(_) => Err(LedgerError::Config(
                "a blocking call cannot wait on a current-thread runtime; use the async form"
                    .into(),
            )),
        }
    }
}

/// Where the writer sends a job's answer.
type Reply<T> = oneshot::Sender<LedgerResult<T>>;

fn command_job<C: Command>(command: C, reply: Reply<C::Output>) -> Box<dyn Job> {
    Box::new(PendingCommand {
        command,
        planned: None,
        emitted: false,
        reply,
    })
}

fn checkpoint_job(reply: Reply<SignedCheckpoint>) -> Box<dyn Job> {
    Box::new(CheckpointJob {
        checkpoint: None,
        reply,
    })
}
