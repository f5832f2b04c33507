//! Where the ledger's notion of "now" comes from: the system clock in production, a clock the caller moves in
//! tests, so that suspensions, expiry, overlaps and anomaly windows are tested without sleeping.

use crate::time::LedgerTime;
use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of the current time. The writer never lets event times go backwards whatever a clock says.
pub trait Clock: Send + Sync + Debug + 'static {
    fn now(&self) -> LedgerTime;
}

/// The shared handle the ledger keeps.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock (UTC).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> LedgerTime {
        LedgerTime::now()
    }
}

/// The system clock as a shared handle.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until it is moved: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    pub fn starting_at(time: LedgerTime) -> Arc<Self> {
        Arc::new(Self {
            micros: AtomicI64::new(time.as_micros()),
        })
    }

    pub fn set(&self, time: LedgerTime) {
        self.micros.store(time.as_micros(), Ordering::SeqCst);
    }

    pub fn advance_secs(&self, secs: i64) {
        self.advance_micros(secs.saturating_mul(1_000_000));
    }

    pub fn advance_micros(&self, micros: i64) {
        self.micros.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> LedgerTime {
        LedgerTime::from_micros(self.micros.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = LedgerTime::parse("2026-11-24T02:10:00Z").unwrap();
        let clock = ManualClock::starting_at(start);
        assert_eq!(clock.now(), start);
        clock.advance_secs(90);
        assert_eq!(clock.now(), start.plus_secs(90));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}
