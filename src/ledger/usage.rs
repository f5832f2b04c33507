//! Usage reports and anomaly listings of an open ledger. Usage: closed hours from the stored rollups, the open hour from the writer's cells
//! in memory (a follower, which has no writer, counts that hour from its events; so does a failed ledger, whose
//! cells may count a batch that was never made durable).

use super::Ledger;
use crate::error::LedgerResult;
use crate::projection::listing::{list_anomalies, named, AnomalyListing};
use crate::projection::usage::{usage_report_with, GroupBy, UsageReport};
use crate::projection::KeyState;
use crate::query::EventFilter;
use crate::time::LedgerTime;
use uuid::Uuid;

impl Ledger {
    /// Usage within `filter`'s window, grouped, busiest first, at most `top` rows (see
    /// [`crate::projection::usage::usage_report`]).
    pub fn usage_report(
        &self,
        filter: &EventFilter,
        group_by: GroupBy,
        top: usize,
    ) -> LedgerResult<UsageReport> {
        // Only rows by key (their names) and by owner read the keys: no copy of every key for the others.
        let keys = match group_by {
            GroupBy::Key | GroupBy::Owner => self.projections().keys.clone(),
            GroupBy::Ip | GroupBy::UserAgent | GroupBy::Scope => KeyState::default(),
        };
        let open = self
            .shared
            .stopped()
            .is_none()
            .then_some(&self.shared.open_hour);
        usage_report_with(
            self.store().as_ref(),
            &keys,
            filter,
            self.durable_seq(),
            group_by,
            top,
            open,
        )
    }

    /// The anomalies recorded whose window ends in `[from, to)`, optionally of one key (see
    /// [`crate::projection::listing::list_anomalies`]).
    pub fn anomalies(
        &self,
        key: Option<Uuid>,
        from: Option<LedgerTime>,
        to: Option<LedgerTime>,
    ) -> LedgerResult<Vec<AnomalyListing>> {
        let found = list_anomalies(self.store().as_ref(), key, from, to, self.durable_seq())?;
        Ok(named(found, &self.projections().keys))
    }
}
