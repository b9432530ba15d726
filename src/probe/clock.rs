//! The time source host protection waits on: the real clock, or a manual one that tests
//! advance (so "at most 10 failed logins in any 3 minutes" is tested without waiting).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock with its own sleep.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Time since the clock's start.
    fn now(&self) -> Duration;
    /// Wait for `d` of this clock's time.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// The real clock (tokio's sleep).
#[derive(Debug, Clone)]
pub(crate) struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock starting now.
    pub(crate) fn new() -> SystemClock {
        SystemClock { start: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that only moves when told to, or when someone sleeps on it: `sleep(d)` advances
/// it by `d` at once. Share one between a test server and the prober to run minutes of
/// host protection in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Move the clock forward.
    pub fn advance(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.advance(d);
        Box::pin(tokio::task::yield_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_moves_on_sleep_and_advance() {
        let c = ManualClock::new();
        assert_eq!(c.now(), Duration::ZERO);
        c.sleep(Duration::from_secs(180)).await;
        c.advance(Duration::from_millis(5));
        assert_eq!(c.now(), Duration::from_millis(180_005));
        let shared = c.clone();
        shared.advance(Duration::from_secs(1));
        assert_eq!(c.now(), Duration::from_millis(181_005));
    }

    #[tokio::test]
    async fn system_clock_sleeps_for_real() {
        let c = SystemClock::new();
        let before = c.now();
        c.sleep(Duration::from_millis(20)).await;
        assert!(c.now() - before >= Duration::from_millis(20));
    }
}
