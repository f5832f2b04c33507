//! The writer's own jobs, beside the callers' commands: a checkpoint asked for, a wake-up to record follow-up
//! actions, and the recording of an action a projection asked for (`anomaly.detected`, then a suspension).

use super::checkpointer::SignedCheckpoint;
use super::command::{Command, PlanContext};
use super::job::{Job, PendingCommand};
use crate::error::{LedgerError, LedgerResult};
use crate::event::{Actor, EventData, KeySuspended};
use crate::projection::{KeyStatus, PendingAction};
use tokio::sync::oneshot;

/// Asks the writer for a checkpoint covering everything written before it, answered once it is durable.
pub(crate) struct CheckpointJob {
    pub checkpoint: Option<SignedCheckpoint>,
    pub reply: oneshot::Sender<LedgerResult<SignedCheckpoint>>,
}

impl Job for CheckpointJob {
    fn plan(&mut self, _ctx: &mut PlanContext<'_>) -> bool {
        false
    }

    fn finish(self: Box<Self>, write_error: Option<&str>) {
        let answer = match (write_error, self.checkpoint) {
            (Some(message), _) => Err(LedgerError::WriteFailed(message.to_string())),
            (None, Some(checkpoint)) => Ok(checkpoint),
            (None, None) => Err(LedgerError::Config(
                "the log has no ledger.initialized event to name its checkpoints".into(),
            )),
        };
        let _ = self.reply.send(answer);
    }

    fn wants_checkpoint(&self) -> bool {
        true
    }

    fn take_checkpoint(&mut self, checkpoint: &SignedCheckpoint) {
        self.checkpoint = Some(checkpoint.clone());
    }
}

/// An empty job that only wakes the writer so it picks up follow-up actions.
pub(crate) struct WakeJob;

impl Job for WakeJob {
    fn plan(&mut self, _ctx: &mut PlanContext<'_>) -> bool {
        false
    }
    fn finish(self: Box<Self>, _write_error: Option<&str>) {}
}

pub(crate) fn action_job(action: PendingAction) -> Box<dyn Job> {
    let (reply, _) = oneshot::channel();
    Box::new(PendingCommand {
        command: RecordAction(action),
        planned: None,
        emitted: false,
        reply,
    })
}

/// Records an action a projection asked for: `anomaly.detected`, then the suspension if the key is still active.
struct RecordAction(PendingAction);

impl Command for RecordAction {
    type Output = ();

    fn plan(&mut self, ctx: &mut PlanContext<'_>) -> LedgerResult<()> {
        let now = ctx.now();
        let action = &self.0;
        let mut anomaly = action.anomaly.clone();
        let suspend = action
            .suspend_for_secs
            .zip(action.anomaly.key_id)
            .filter(|(_, key_id)| {
                ctx.state()
                    .get(key_id)
                    .is_some_and(|key| key.status_at(now) == KeyStatus::Active)
            });
        // Never lock everyone out: the last usable admin key is flagged, not suspended.
        let suspend = match suspend {
            Some((_, key_id)) if ctx.state().an_admin_remains(now, &[key_id]).is_err() => {
                anomaly.action = Some("alert_only (the last active ledger:admin key)".into());
                None
            }
            other => other,
        };
        ctx.emit(Actor::System, None, EventData::AnomalyDetected(anomaly))?;
        if let Some((secs, key_id)) = suspend {
            let data = EventData::KeySuspended(KeySuspended {
                key_id,
                reason: Some(format!(
                    "anomaly {} ({})",
                    action.anomaly.anomaly_id, action.anomaly.rule
                )),
                until: Some(now.plus_secs(i64::from(secs))),
            });
            ctx.emit(Actor::System, None, data)?;
        }
        Ok(())
    }
}

/// How far behind the head a finding left unrecorded at open may be and still be recorded then.
const LATE_FINDING_SECS: i64 = 3600;

/// The findings a replay at open left unrecorded that are recorded now: those made within the last hour of the
/// log (a process that stopped between a batch and its findings). Older ones come from rules that changed since
/// the events were judged (the snapshot was built under other rules, so the whole log was judged again); the
/// log keeps what was decided when it was written, so they are dropped, and counted in the log.
pub(crate) fn late_findings(
    actions: Vec<PendingAction>,
    head: Option<crate::store::Head>,
) -> Vec<PendingAction> {
    let Some(head) = head else {
        return actions;
    };
    let since = head.time.plus_secs(-LATE_FINDING_SECS);
    let total = actions.len();
    let kept: Vec<PendingAction> = actions
        .into_iter()
        .filter(|action| action.anomaly.window_end >= since)
        .collect();
    if kept.len() < total {
        tracing::warn!(
            dropped = total - kept.len(),
            "findings of the [anomaly] rules over events older than an hour before the head were not recorded: \
             the rules changed since those events were judged"
        );
    }
    kept
}
