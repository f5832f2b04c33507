//! The time-window flags (`--from`, `--to`, and `--key` where a command narrows to one key) that `events`,
//! `usage`, `anomalies`, `audit export` and `audit verify` flatten into their arguments.

use super::remote::window_query;
use crate::query::EventFilter;
use crate::time::LedgerTime;
use clap::Args;
use uuid::Uuid;

/// `--from` and `--to`: a window of event times, the start inclusive and the end exclusive.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct WindowArgs {
    /// Start of the window, inclusive (RFC 3339, a date, or relative like -1h).
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<LedgerTime>,
    /// End of the window, exclusive (RFC 3339, a date, now, or relative like -10m).
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<LedgerTime>,
}

impl WindowArgs {
    /// Whether `--from` or `--to` was given.
    pub fn is_set(&self) -> bool {
        self.from.is_some() || self.to.is_some()
    }

    /// The window (and `key`) as the API's `from`/`to`/`key_id` query parameters.
    pub fn query(&self, key: Option<Uuid>) -> Vec<(&'static str, String)> {
        window_query(self.from, self.to, key)
    }

    /// The window (and `key`) as a filter of the log's events.
    pub fn filter(&self, key: Option<Uuid>) -> EventFilter {
        EventFilter {
            from: self.from,
            to: self.to,
            key_id: key,
            after_seq: None,
        }
    }
}

/// `--from`, `--to` and `--key`: a window of event times narrowed to one key (`usage`, `anomalies`).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct KeyWindowArgs {
    #[command(flatten)]
    pub time: WindowArgs,
    /// Only events concerning this key (its id).
    #[arg(long)]
    pub key: Option<Uuid>,
}

impl KeyWindowArgs {
    /// The window and key as the API's `from`/`to`/`key_id` query parameters.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        self.time.query(self.key)
    }

    /// The window and key as a filter of the log's events.
    pub fn filter(&self) -> EventFilter {
        self.time.filter(self.key)
    }
}
