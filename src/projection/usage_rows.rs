//! The rows of a usage report while they are counted: a compact tally per group, keyed by the group as the open
//! hour's cells in memory spell it where they are the source (no copy per group), and at the end the busiest rows
//! completed into [`UsageRow`]s. A report may count hundreds of thousands of groups, so a tally holds no
//! allocation of its own unless it must remember IPs.

use super::rollup::{Cell, Dim};
use super::KeyState;
use crate::event::{KeyUsed, VerifyCode};
use crate::time::LedgerTime;
use serde::Serialize;
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use uuid::Uuid;

/// What to group a window's usage by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Key,
    Ip,
    #[value(name = "user_agent", alias = "user-agent")]
    UserAgent,
    Scope,
    Owner,
}

impl GroupBy {
    /// The name used in queries, flags and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Key => "key",
            GroupBy::Ip => "ip",
            GroupBy::UserAgent => "user_agent",
            GroupBy::Scope => "scope",
            GroupBy::Owner => "owner",
        }
    }
}

/// Usage of one group within a window.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct UsageRow {
    pub group: String,
    /// The key's name, when rows are grouped by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub total: u64,
    pub allowed: u64,
    pub denied: BTreeMap<VerifyCode, u64>,
    pub first: Option<LedgerTime>,
    pub last: Option<LedgerTime>,
    pub distinct_ips: usize,
    /// `distinct_ips` is a lower bound: in some hour this group was used from more than 64 IPs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub distinct_ips_capped: bool,
}

/// A row while it is being counted: what every row needs inline, what few rows need boxed, so that the rows of
/// a busy hour (one per IP) stay small.
#[derive(Default)]
pub(super) struct Tally {
    total: u64,
    allowed: u64,
    /// Times of the first and last use (µs), once `total` > 0.
    first: i64,
    last: i64,
    /// Denials: the first code and its count inline (a row seldom sees two), any other code by its place in
    /// `VerifyCode::ALL`, allocated when one comes.
    denied: Option<(VerifyCode, u64)>,
    denied_more: Option<Box<[u64; VerifyCode::ALL.len()]>>,
    /// The IPs seen; never kept for the ip dimension, whose row's only IP is its group.
    ips: Option<Box<IpSet>>,
    capped: bool,
}

/// A row's distinct IPs, boxed in [`Tally`] for the tally's size (a set is 48 bytes inline, a box 8), not for
/// the set's contents, which are on the heap either way.
#[derive(Default)]
struct IpSet(HashSet<String>);

impl Tally {
    fn count(&mut self, uses: u64, allowed: u64, first: i64, last: i64) {
        if self.total == 0 {
            (self.first, self.last) = (first, last);
        }
        self.total += uses;
        self.allowed += allowed;
        self.first = self.first.min(first);
        self.last = self.last.max(last);
    }

    fn deny(&mut self, code: VerifyCode, count: u64) {
        match &mut self.denied {
            None => self.denied = Some((code, count)),
            Some((first, n)) if *first == code => *n += count,
            Some(_) => {
                if let Some(place) = VerifyCode::ALL.iter().position(|c| *c == code) {
                    self.denied_more.get_or_insert_with(Box::default)[place] += count;
                }
            }
        }
    }

    fn ips(&mut self) -> &mut HashSet<String> {
        &mut self.ips.get_or_insert_with(Box::default).0
    }

    /// Counts one use.
    pub(super) fn add_use(&mut self, dim: Dim, time: LedgerTime, used: &KeyUsed) {
        let valid = used.outcome == VerifyCode::Valid;
        self.count(1, u64::from(valid), time.as_micros(), time.as_micros());
        if !valid {
            self.deny(used.outcome, 1);
        }
        if let Some(ip) = used.ip.as_ref().filter(|_| dim != Dim::Ip) {
            let ips = self.ips();
            if !ips.contains(ip) {
                ips.insert(ip.clone());
            }
        }
    }

    /// Counts a cell: the uses of the group within one hour.
    pub(super) fn add_cell(&mut self, dim: Dim, cell: &Cell) {
        self.count(cell.total, cell.allowed, cell.first, cell.last);
        for (code, count) in &cell.denied {
            self.deny(*code, *count);
        }
        if dim != Dim::Ip && !cell.ips.is_empty() {
            self.ips().extend(cell.ips.iter().cloned());
        }
        self.capped |= cell.more_ips;
    }

    fn into_row(self, group: String, dim: Dim) -> UsageRow {
        let distinct_ips = match dim {
            Dim::Ip => usize::from(group != "(none)"),
            _ => self.ips.as_ref().map_or(0, |ips| ips.0.len()),
        };
        let time = |micros| (self.total > 0).then(|| LedgerTime::from_micros(micros));
        let mut denied: BTreeMap<VerifyCode, u64> = self.denied.into_iter().collect();
        if let Some(more) = self.denied_more {
            for (code, count) in VerifyCode::ALL.into_iter().zip(*more) {
                if count > 0 {
                    *denied.entry(code).or_default() += count;
                }
            }
        }
        UsageRow {
            group,
            name: None,
            total: self.total,
            allowed: self.allowed,
            denied,
            first: time(self.first),
            last: time(self.last),
            distinct_ips,
            distinct_ips_capped: self.capped,
        }
    }
}

/// The rows of one report while they are being counted; `'a` is what the keys and the open hour's cells in
/// memory live for.
pub(super) struct Rows<'a> {
    keys: &'a KeyState,
    group_by: GroupBy,
    dim: Dim,
    rows: HashMap<Cow<'a, str>, Tally>,
}

impl<'a> Rows<'a> {
    pub(super) fn new(keys: &'a KeyState, group_by: GroupBy, dim: Dim) -> Self {
        Self {
            keys,
            group_by,
            dim,
            rows: HashMap::new(),
        }
    }

    /// Room for `more` rows at once (growing the map would hash every group again).
    pub(super) fn reserve(&mut self, more: usize) {
        self.rows.reserve(more);
    }

    /// The owner a key group is counted under.
    fn owner_of(&self, key_group: &str) -> Cow<'a, str> {
        let keys: &'a KeyState = self.keys;
        key_group
            .parse::<Uuid>()
            .ok()
            .and_then(|k| keys.get(&k))
            .map_or(Cow::Borrowed("(no key)"), |k| {
                Cow::Borrowed(k.config.owner.as_str())
            })
    }

    /// The row of a group spelled by a cell that outlives the report (the open hour's, in memory).
    pub(super) fn row_of(&mut self, dim_group: &'a str) -> &mut Tally {
        let group = match self.group_by {
            GroupBy::Owner => self.owner_of(dim_group),
            _ => Cow::Borrowed(dim_group),
        };
        self.rows.entry(group).or_default()
    }

    /// The row of a group read from a use or a stored cell: its name is copied only when the row is new.
    pub(super) fn row(&mut self, dim_group: &str) -> &mut Tally {
        if self.group_by == GroupBy::Owner {
            let owner = self.owner_of(dim_group);
            return self.rows.entry(owner).or_default();
        }
        if !self.rows.contains_key(dim_group) {
            return self
                .rows
                .entry(Cow::Owned(dim_group.to_string()))
                .or_default();
        }
        self.rows
            .get_mut(dim_group)
            .expect("the row is present: contains_key said so just above")
    }

    /// The `top` busiest rows (ties by group), busiest first, completed: group, name and distinct IPs.
    pub(super) fn busiest(self, top: usize) -> Vec<UsageRow> {
        // The best `top` so far, the worst of them on top of the heap: no sort of every row.
        let mut best: BinaryHeap<Reverse<(u64, Reverse<&str>)>> = BinaryHeap::new();
        for (group, row) in &self.rows {
            let rank = (row.total, Reverse(group.as_ref()));
            if best.len() < top {
                best.push(Reverse(rank));
            } else if best.peek().is_some_and(|Reverse(worst)| rank > *worst) {
                best.pop();
                best.push(Reverse(rank));
            }
        }
        let chosen: Vec<String> = best
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse((_, Reverse(group)))| group.to_string())
            .collect();
        let (mut rows, keys, dim) = (self.rows, self.keys, self.dim);
        chosen
            .into_iter()
            .filter_map(|group| rows.remove(group.as_str()).map(|tally| (group, tally)))
            .map(|(group, tally)| {
                let mut row = tally.into_row(group, dim);
                if self.group_by == GroupBy::Key {
                    row.name = row
                        .group
                        .parse::<Uuid>()
                        .ok()
                        .and_then(|id| keys.get(&id))
                        .map(|k| k.config.name.clone());
                }
                row
            })
            .collect()
    }
}
