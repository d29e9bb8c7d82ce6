//! Wall-clock time for lease expiry, injectable so tests can expire a lease without sleeping.
//!
//! Time is read in Rust and passed into SQL as milliseconds, so the SQL is the same for every
//! backend. Where several agents share a store (PostgreSQL) "now" must be one clock for all of them,
//! or an agent whose clock runs ahead by more than a lease's ttl sees healthy leases as expired and
//! steals them: there [`ServerClock`] follows the database server's clock.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of "now" in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// This machine's wall clock, shifted by `offset_ms` (0 but in tests that play a skewed machine:
/// the agent's hidden `--clock-offset-ms`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock {
    pub offset_ms: i64,
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        // A clock before 1970 or past year 292 million is not worth an error path: clamp instead.
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        ms.saturating_add(self.offset_ms)
    }
}

/// The database server's clock: read now and then (`set`) and carried forward in between by this
/// process's monotonic clock, so a step of the local wall clock changes nothing either.
#[derive(Debug)]
pub struct ServerClock {
    /// The server's time in ms and the local instant it was true at.
    read: Mutex<(i64, Instant)>,
}

impl ServerClock {
    pub fn new(server_ms: i64, at: Instant) -> Self {
        Self { read: Mutex::new((server_ms, at)) }
    }

    /// Records a fresh reading of the server's clock.
    pub fn set(&self, server_ms: i64, at: Instant) {
        *self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (server_ms, at);
    }
}

impl Clock for ServerClock {
    fn now_ms(&self) -> i64 {
        let (ms, at) = *self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ms.saturating_add(duration_ms(Instant::now().saturating_duration_since(at)))
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicI64,
}

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self { now_ms: AtomicI64::new(now_ms) }
    }

    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(duration_ms(by), Ordering::SeqCst);
    }

    pub fn set(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// A duration in whole milliseconds, saturating (a TTL of centuries is simply "forever").
pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_clock_moves_with_the_monotonic_clock() {
        let start = Instant::now();
        let clock = ServerClock::new(1_000_000, start);
        let first = clock.now_ms();
        assert!((1_000_000..1_000_100).contains(&first));
        std::thread::sleep(Duration::from_millis(20));
        assert!(clock.now_ms() >= first + 20);
        clock.set(5_000_000, Instant::now());
        assert!((5_000_000..5_000_100).contains(&clock.now_ms()), "a new reading replaces the old");
    }
}
