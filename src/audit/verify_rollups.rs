//! Verification of the hourly usage rollups: the cells of every hour are counted again from that hour's events
//! and compared with the stored ones, so that an edited rollup cannot make a usage report lie unnoticed. Every
//! closed hour is packed in the store and checked; the open hour (the head's) lives only in the writer's memory,
//! so it has nothing stored to check.

use super::problem::{Problem, ProblemKind};
use crate::event::KeyUsed;
use crate::projection::rollup::{self, Cell, Dim};
use crate::store::LogStore;
use crate::time::LedgerTime;
use std::collections::{BTreeSet, HashMap};

/// Counts the verified events hour by hour and compares each finished hour with the store.
pub(super) struct RollupCheck {
    /// Hours up to this one may hold events the check does not see (archived, or before the range).
    skip_through_hour: i64,
    hour: Option<(i64, u64)>,
    cells: HashMap<(Dim, String), Cell>,
    checked_hours: BTreeSet<i64>,
    cells_checked: u64,
    /// Mismatches, reported only when the events themselves verified (a changed or missing event changes its
    /// hour's counts too, and is the problem to report).
    found: Vec<Problem>,
}

impl RollupCheck {
    /// A check for a run verifying from `from_seq`, or `None` when the rollups do not cover that run.
    pub fn new(store: &dyn LogStore, from_seq: u64) -> crate::error::LedgerResult<Option<Self>> {
        let Some(coverage) = rollup::coverage(store)? else {
            return Ok(None);
        };
        let skip_through_hour = if coverage.from_seq >= from_seq {
            i64::MIN
        } else {
            // A log archived after its rollups were written: the first hour kept is partly in the archive.
            match store.get(from_seq)? {
                Some(record) => rollup::hour_of(record.time),
                None => return Ok(None),
            }
        };
        Ok(Some(Self {
            skip_through_hour,
            hour: None,
            cells: HashMap::new(),
            checked_hours: BTreeSet::new(),
            cells_checked: 0,
            found: Vec::new(),
        }))
    }

    /// Counts one verified `key.used` event.
    pub fn push(&mut self, store: &dyn LogStore, seq: u64, time: LedgerTime, used: &KeyUsed) {
        let hour = rollup::hour_of(time);
        if self.hour.is_some_and(|(current, _)| current != hour) {
            self.compare(store);
        }
        self.hour.get_or_insert((hour, seq));
        for dim in Dim::ALL {
            self.cells
                .entry((dim, dim.group_of(used)))
                .or_default()
                .add(dim, time, used);
        }
    }

    /// Compares the last hour (when nothing was written after the verified range), looks for cells of hours that
    /// had no use at all, and reports the mismatches unless the events had problems of their own.
    pub fn finish(mut self, store: &dyn LogStore, to: u64, problems: &mut Vec<Problem>) -> u64 {
        if problems.is_empty() {
            self.check_rest(store, to);
            problems.append(&mut self.found);
        }
        self.cells_checked
    }

    fn check_rest(&mut self, store: &dyn LogStore, to: u64) {
        let before = self.found.len();
        self.compare(store);
        // An hour is packed in the same batch as the first event of a later one: if no batch followed `to` by the
        // time the last hour's cells were read, it is the open hour (nothing stored) or its cells count exactly the
        // verified events.
        let still_at_to = store.head().ok().flatten().is_some_and(|h| h.seq == to);
        if !still_at_to {
            self.found.truncate(before);
            return;
        }
        let mut stray = BTreeSet::new();
        match rollup::stored_hours(store) {
            Ok(hours) => stray.extend(hours.into_iter().filter(|hour| {
                *hour > self.skip_through_hour && !self.checked_hours.contains(hour)
            })),
            Err(e) => self.found.push(super::problem::problem(
                to,
                ProblemKind::StorageCorrupt,
                &e.to_string(),
            )),
        }
        for hour in stray {
            self.found.push(Problem {
                seq: to,
                kind: ProblemKind::IndexMismatch,
                detail: format!(
                    "usage rollups exist for the hour from {} but no key was used then",
                    rollup::hour_start(hour)
                ),
            });
        }
    }

    fn compare(&mut self, store: &dyn LogStore) {
        let Some((hour, first_seq)) = self.hour.take() else {
            return;
        };
        let counted = std::mem::take(&mut self.cells);
        self.checked_hours.insert(hour);
        if hour <= self.skip_through_hour {
            return;
        }
        let stored: Vec<Option<HashMap<String, Cell>>> = Dim::ALL
            .into_iter()
            .map(|dim| match rollup::stored_hour_cells(store, hour, dim) {
                Ok(cells) => cells.map(|cells| cells.into_iter().collect()),
                Err(_) => Some(HashMap::from([(
                    String::from("\u{0}unreadable"),
                    Cell::default(),
                )])),
            })
            .collect();
        // The open hour's cells are kept only in the writer's memory: nothing is stored to check. (A log last
        // written by an earlier version may still hold that hour's per-group cells; those are checked.)
        let open = || {
            store
                .head()
                .ok()
                .flatten()
                .is_some_and(|head| rollup::hour_of(head.time) == hour)
        };
        if stored.iter().all(Option::is_none) && open() {
            return;
        }
        for (dim, stored) in Dim::ALL.into_iter().zip(stored) {
            let stored = stored.unwrap_or_default();
            let expected: HashMap<String, Cell> = counted
                .iter()
                .filter(|((d, _), _)| *d == dim)
                .map(|((_, group), cell)| (group.clone(), cell.clone()))
                .collect();
            self.cells_checked += stored.len() as u64;
            if stored != expected {
                let differing = expected
                    .iter()
                    .find(|(group, cell)| stored.get(*group) != Some(cell))
                    .map(|(group, _)| group.clone())
                    .or_else(|| stored.keys().find(|g| !expected.contains_key(*g)).cloned())
                    .unwrap_or_default();
                self.found.push(Problem {
                    seq: first_seq,
                    kind: ProblemKind::IndexMismatch,
                    detail: format!(
                        "the usage rollup of the hour from {} (by {}, {differing}) does not match that hour's events",
                        rollup::hour_start(hour),
                        dim.name()
                    ),
                });
            }
        }
    }
}
