//! What the writer's channel carries: a job (a command with its reply channel, type-erased so one channel
//! carries every command type), planned in a batch and answered once the batch is durable or has failed.

use super::checkpointer::SignedCheckpoint;
use super::command::{Command, PlanContext};
use crate::error::{LedgerError, LedgerResult};
use tokio::sync::oneshot;

/// A command with its reply channel, type-erased so one channel carries every command type.
pub(crate) trait Job: Send {
    /// Plans the command; returns whether it emitted events.
    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> bool;
    /// Answers the caller: `write_error` is set when the batch could not be made durable.
    fn finish(self: Box<Self>, write_error: Option<&str>);
    /// Whether this job asks for a checkpoint covering everything written before it.
    fn wants_checkpoint(&self) -> bool {
        false
    }
    /// Hands the job the checkpoint its batch ends with (given only to jobs that asked).
    fn take_checkpoint(&mut self, _checkpoint: &SignedCheckpoint) {}
}

pub(crate) struct PendingCommand<C: Command> {
    pub command: C,
    pub planned: Option<LedgerResult<C::Output>>,
    pub emitted: bool,
    pub reply: oneshot::Sender<LedgerResult<C::Output>>,
}

impl<C: Command> Job for PendingCommand<C> {
    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> bool {
        let before = ctx.staged.len();
        self.planned = Some(self.command.plan(ctx));
        self.emitted = ctx.staged.len() > before;
        self.emitted
    }

    fn finish(self: Box<Self>, write_error: Option<&str>) {
        let answer = match (write_error, self.emitted, self.planned) {
            (Some(message), true, _) | (Some(message), false, None) => {
                Err(LedgerError::WriteFailed(message.to_string()))
            }
            (_, _, Some(planned)) => planned,
            (None, _, None) => Err(LedgerError::WriterStopped),
        };
        // A caller that stopped waiting is not an error for the ledger.
        let _ = self.reply.send(answer);
    }
}
