//! Ctrl-C and SIGTERM during `apply`: the first signal asks the run to stop after the rows
//! in flight; the second exits at once with status 130.
//!
//! Exiting at once loses nothing: every journal entry is durable before `record` returns,
//! so a rerun resumes from the journal. This module only sets a flag and wakes waiters;
//! deciding what "stop" means (start no new rows, finish the report) is the executor's job.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

/// The line printed to stderr on the first signal.
pub const STOP_MESSAGE: &str =
    "glmirror: stopping after the rows in flight; press Ctrl-C again to exit now";

/// What a signal should do, given how many came before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignalAction {
    /// First signal: stop starting rows, finish the ones in flight.
    Stop,
    /// A later signal: exit now with status 130.
    ExitNow,
}

/// A shared "please stop" flag, set by Ctrl-C/SIGTERM (see [`Interrupt::install`]) or by
/// [`Interrupt::request`]. Clones share the flag.
#[derive(Debug, Clone)]
pub struct Interrupt {
    signals: Arc<AtomicUsize>,
    flag: Arc<watch::Sender<bool>>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Self::new()
    }
}

impl Interrupt {
    /// A flag that no signal sets (until [`install`](Self::install) is used); tests and
    /// embedders call [`request`](Self::request) themselves.
    pub(crate) fn new() -> Self {
        let (flag, _) = watch::channel(false);
        Interrupt { signals: Arc::new(AtomicUsize::new(0)), flag: Arc::new(flag) }
    }

    /// Listen for Ctrl-C (SIGINT) and, on Unix, SIGTERM. Must be called inside a Tokio
    /// runtime. Once installed, the process no longer dies on the first signal: the
    /// second one calls `std::process::exit(130)`.
    pub fn install() -> std::io::Result<Self> {
        let interrupt = Self::new();
        let listener = interrupt.clone();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            // Registered here, not in the task, so a failure is reported to the caller and
            // no signal can arrive unhandled after we return.
            let mut int = signal(SignalKind::interrupt())?;
            let mut term = signal(SignalKind::terminate())?;
            tokio::spawn(async move {
                loop {
                    let got = tokio::select! {
                        s = int.recv() => s,
                        s = term.recv() => s,
                    };
                    if got.is_none() {
                        break;
                    }
                    listener.on_signal();
                }
            });
        }
        #[cfg(not(unix))]
        {
            tokio::spawn(async move {
                while tokio::signal::ctrl_c().await.is_ok() {
                    listener.on_signal();
                }
            });
        }
        Ok(interrupt)
    }

    fn on_signal(&self) {
        if self.request() == SignalAction::ExitNow {
            eprintln!("glmirror: interrupted again; exiting now (the journal is up to date)");
            std::process::exit(130);
        }
    }

    /// Count one stop request, as a signal would (without exiting): the first prints
    /// [`STOP_MESSAGE`] to stderr, sets the flag and wakes every [`requested`] waiter.
    /// Returns what a signal handler should do next.
    ///
    /// [`requested`]: Self::requested
    pub(crate) fn request(&self) -> SignalAction {
        if self.signals.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!("{STOP_MESSAGE}");
            self.flag.send_replace(true);
            SignalAction::Stop
        } else {
            SignalAction::ExitNow
        }
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        *self.flag.borrow()
    }

    /// Wait until a stop is requested (returns at once if it already was).
    pub async fn requested(&self) {
        let mut rx = self.flag.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn first_request_stops_second_exits() {
        let interrupt = Interrupt::new();
        assert!(!interrupt.is_requested());
        let waiter = {
            let i = interrupt.clone();
            tokio::spawn(async move { i.requested().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(interrupt.request(), SignalAction::Stop);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("waiter woken")
            .expect("task");
        assert!(interrupt.is_requested());
        assert_eq!(interrupt.request(), SignalAction::ExitNow);
        // A waiter that arrives late returns at once.
        tokio::time::timeout(Duration::from_secs(5), interrupt.requested())
            .await
            .expect("already requested");
    }

    #[tokio::test]
    async fn clones_share_the_flag() {
        let a = Interrupt::new();
        let b = a.clone();
        b.request();
        assert!(a.is_requested());
        let other = Interrupt::new();
        assert!(!other.is_requested());
    }
}
