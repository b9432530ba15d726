//! Host protection: bounded concurrency overall and per host, at most N failed logins per
//! host in any window (GitLab bans an IP after 30 in 3 minutes), the breaker after repeated
//! rejections when the token's validity is unknown, no probing of a host whose token the
//! token watch found invalid, and the retry policy.
//!
//! A probe first takes a per-host permit, then a *login slot* (requests in flight count as
//! failures until they answer, so the limit holds however many run at once), then an overall
//! permit. While a host's token is unproven, its probes run one at a time until one answer
//! shows the token is accepted: a bad token costs exactly `breaker_after` failed logins.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::classify::TokenKnowledge;
use super::clock::Clock;
use super::codes::ProbeCode;

/// Host protection limits. The defaults are documented in docs/remote-probe.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Probes in flight overall (default 8).
    pub(crate) overall: usize,
    /// Probes in flight per host (default 4).
    pub(crate) per_host: usize,
    /// Failed logins (401 answers) allowed per host in any `failed_login_window` (default
    /// 10, a third of GitLab's ban threshold).
    pub(crate) failed_logins: usize,
    /// The window for `failed_logins` (default 3 minutes).
    pub(crate) failed_login_window: Duration,
    /// Consecutive `auth-rejected` answers that stop a host whose token validity is unknown
    /// (default 3).
    pub(crate) breaker_after: u32,
    /// Retries after a transport error, 502–504 or 429 (default 2). 401/403/404 never retry.
    pub(crate) retries: u32,
    /// The longest `Retry-After` honoured, and the longest backoff (default 60 s).
    pub(crate) retry_after_cap: Duration,
    /// The first backoff when the host gave no `Retry-After` (default 500 ms, doubling).
    pub backoff_base: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            overall: 8,
            per_host: 4,
            failed_logins: 10,
            failed_login_window: Duration::from_secs(180),
            breaker_after: 3,
            retries: 2,
            retry_after_cap: Duration::from_secs(60),
            backoff_base: Duration::from_millis(500),
        }
    }
}

impl Limits {
    /// The limits with every count at least 1.
    fn sane(mut self) -> Limits {
        self.overall = self.overall.max(1);
        self.per_host = self.per_host.max(1);
        self.failed_logins = self.failed_logins.max(1);
        self.breaker_after = self.breaker_after.max(1);
        self
    }

    /// How long to wait before retry number `retry` (1-based) after `code`, or `None` when the
    /// answer must not be retried. `retry_after` is the host's `Retry-After`, already parsed.
    pub(crate) fn retry_delay(
        &self,
        retry: u32,
        code: ProbeCode,
        status: Option<u16>,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        if retry > self.retries {
            return None;
        }
        let retryable = match code {
            ProbeCode::Unreachable | ProbeCode::RateLimited => true,
            ProbeCode::ServerError => matches!(status, Some(502..=504)),
            _ => false,
        };
        if !retryable {
            return None;
        }
        if let Some(ra) = retry_after {
            return Some(ra.min(self.retry_after_cap));
        }
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let base = self.backoff_base.saturating_mul(factor);
        let jitter = self.backoff_base.mul_f64(jitter.clamp(0.0, 1.0));
        Some((base + jitter).min(self.retry_after_cap))
    }
}

/// Parse `Retry-After` in seconds (the HTTP-date form is not used by git hosts; it reads as
/// absent and the backoff applies).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[derive(Debug)]
struct HostState {
    /// Clock times of failed logins inside the window, oldest first.
    failures: VecDeque<Duration>,
    /// Admitted probes that have not answered yet.
    pending: usize,
    consecutive_rejections: u32,
    /// An answer showed the host accepts the token.
    proven: bool,
    token: TokenKnowledge,
    /// Why this host is no longer probed.
    stopped: Option<String>,
    /// Failed logins ever, and the most in any window (for tests and the summary).
    failed_total: usize,
}

#[derive(Debug)]
struct HostSlot {
    permits: Arc<Semaphore>,
    state: Mutex<HostState>,
    changed: Notify,
}

/// Per-host bookkeeping shared by every probe of one run.
#[derive(Debug)]
pub(crate) struct Guard {
    limits: Limits,
    clock: Arc<dyn Clock>,
    overall: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<HostSlot>>>,
}

/// The right to send one probe; give it back with [`Guard::settle`].
#[derive(Debug)]
pub(crate) struct Ticket {
    slot: Arc<HostSlot>,
    _host: OwnedSemaphorePermit,
    _overall: OwnedSemaphorePermit,
    settled: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            // A cancelled probe: its login slot is free again.
            lock(&self.slot.state).pending -= 1;
            self.slot.changed.notify_waiters();
        }
    }
}

/// What a host's protection says about one more probe.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Send it.
    Go(Ticket),
    /// Do not: the host is stopped, for this reason.
    Stopped(String),
}

/// A host's protection counters, for summaries and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    /// Failed logins (401 answers) this run.
    pub failed_logins: usize,
    /// Why the host was stopped, if it was.
    pub(crate) stopped: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Guard {
    pub(crate) fn new(limits: Limits, clock: Arc<dyn Clock>) -> Guard {
        let limits = limits.sane();
        Guard {
            overall: Arc::new(Semaphore::new(limits.overall)),
            limits,
            clock,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn slot(&self, host: &str) -> Arc<HostSlot> {
        let mut hosts = lock(&self.hosts);
        Arc::clone(hosts.entry(host.to_owned()).or_insert_with(|| {
            Arc::new(HostSlot {
                permits: Arc::new(Semaphore::new(self.limits.per_host)),
                state: Mutex::new(HostState {
                    failures: VecDeque::new(),
                    pending: 0,
                    consecutive_rejections: 0,
                    proven: false,
                    token: TokenKnowledge::Unknown,
                    stopped: None,
                    failed_total: 0,
                }),
                changed: Notify::new(),
            })
        }))
    }

    /// Record what the token watch found for a host. An invalid token stops the host.
    pub(crate) fn set_token(&self, host: &str, token: TokenKnowledge) {
        let slot = self.slot(host);
        {
            let mut st = lock(&slot.state);
            st.token = token;
            if token == TokenKnowledge::Invalid && st.stopped.is_none() {
                st.stopped = Some(format!(
                    "not probed: the token watch found the service token for {host} invalid"
                ));
            }
        }
        slot.changed.notify_waiters();
    }

    /// What the token watch found for a host's token.
    pub(crate) fn token_knowledge(&self, host: &str) -> TokenKnowledge {
        lock(&self.slot(host).state).token
    }

    /// Wait until one more probe of `host` is allowed.
    pub(crate) async fn admit(&self, host: &str) -> Admission {
        let slot = self.slot(host);
        let Ok(host_permit) = Arc::clone(&slot.permits).acquire_owned().await else {
            return Admission::Stopped("not probed: the probe was shut down".into());
        };
        loop {
            let notified = slot.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut st = lock(&slot.state);
                if let Some(why) = &st.stopped {
                    return Admission::Stopped(why.clone());
                }
                let now = self.clock.now();
                let window = self.limits.failed_login_window;
                while st.failures.front().is_some_and(|t| now.saturating_sub(*t) >= window) {
                    st.failures.pop_front();
                }
                let on_probation =
                    st.token == TokenKnowledge::Unknown && !st.proven && st.pending > 0;
                if st.failures.len() + st.pending < self.limits.failed_logins && !on_probation {
                    st.pending += 1;
                    break;
                }
                // Full: wait for the oldest failure to leave the window, or for a change.
                match st.failures.front() {
                    Some(oldest) if st.failures.len() + st.pending >= self.limits.failed_logins => {
                        Some(window.saturating_sub(now.saturating_sub(*oldest)))
                    }
                    _ => None,
                }
            };
            match wait {
                Some(d) => {
                    tracing::debug!(host, wait_ms = d.as_millis() as u64, "failed-login limit");
                    tokio::select! {
                        () = self.clock.sleep(d) => {}
                        () = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
        let overall = match Arc::clone(&self.overall).acquire_owned().await {
            Ok(p) => p,
            Err(_) => {
                lock(&slot.state).pending -= 1;
                return Admission::Stopped("not probed: the probe was shut down".into());
            }
        };
        Admission::Go(Ticket { slot, _host: host_permit, _overall: overall, settled: false })
    }

    /// Give a ticket back with what the host answered: `failed_login` when it answered 401 to
    /// the credentials.
    pub(crate) fn settle(
        &self,
        mut ticket: Ticket,
        host: &str,
        code: ProbeCode,
        failed_login: bool,
    ) {
        ticket.settled = true;
        let slot = Arc::clone(&ticket.slot);
        {
            let mut st = lock(&slot.state);
            st.pending -= 1;
            if failed_login {
                st.failures.push_back(self.clock.now());
                st.failed_total += 1;
            }
            match code {
                ProbeCode::AuthRejected => {
                    st.consecutive_rejections += 1;
                    if st.token == TokenKnowledge::Unknown
                        && st.consecutive_rejections >= self.limits.breaker_after
                        && st.stopped.is_none()
                    {
                        st.stopped = Some(format!(
                            "not probed: {} consecutive rejected logins on {host}, and the \
                             token's validity is unknown: check the service token",
                            st.consecutive_rejections
                        ));
                    }
                }
                ProbeCode::Banned => {
                    if st.stopped.is_none() {
                        st.stopped = Some(format!(
                            "not probed: {host} answered with its failed-login ban for this IP \
                             address (GitLab lifts it after an hour)"
                        ));
                    }
                }
                ProbeCode::Ok
                | ProbeCode::OkEmpty
                | ProbeCode::DumbHttp
                | ProbeCode::Redirect
                | ProbeCode::NoAccessOrMissing
                | ProbeCode::Forbidden
                | ProbeCode::NotFound
                | ProbeCode::NotGit => {
                    st.consecutive_rejections = 0;
                    st.proven = true;
                }
                // No verdict: the host said nothing about the token.
                ProbeCode::ServerError
                | ProbeCode::RateLimited
                | ProbeCode::Unreachable
                | ProbeCode::Tls
                | ProbeCode::Breaker => {}
            }
        }
        drop(ticket);
        slot.changed.notify_waiters();
    }

    /// Every host's counters so far.
    pub(crate) fn report(&self) -> Vec<(String, HostReport)> {
        let hosts = lock(&self.hosts);
        let mut out: Vec<_> = hosts
            .iter()
            .map(|(h, slot)| {
                let st = lock(&slot.state);
                (
                    h.clone(),
                    HostReport { failed_logins: st.failed_total, stopped: st.stopped.clone() },
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::clock::ManualClock;

    #[test]
    fn retries_only_what_may_be_retried() {
        let l = Limits::default();
        let d = |retry, code, status, ra| l.retry_delay(retry, code, status, ra, 0.0);
        type Case = (u32, ProbeCode, Option<u16>, Option<Duration>, Option<Duration>);
        let cases: [Case; 12] = [
            (1, ProbeCode::Unreachable, None, None, Some(Duration::from_millis(500))),
            (2, ProbeCode::Unreachable, None, None, Some(Duration::from_millis(1000))),
            (3, ProbeCode::Unreachable, None, None, None),
            (1, ProbeCode::ServerError, Some(502), None, Some(Duration::from_millis(500))),
            (1, ProbeCode::ServerError, Some(504), None, Some(Duration::from_millis(500))),
            (1, ProbeCode::ServerError, Some(500), None, None),
            (
                1,
                ProbeCode::RateLimited,
                Some(429),
                Some(Duration::from_secs(7)),
                Some(Duration::from_secs(7)),
            ),
            (
                1,
                ProbeCode::RateLimited,
                Some(429),
                Some(Duration::from_secs(3600)),
                Some(Duration::from_secs(60)),
            ),
            (1, ProbeCode::AuthRejected, Some(401), None, None),
            (1, ProbeCode::Forbidden, Some(403), Some(Duration::from_secs(1)), None),
            (1, ProbeCode::NoAccessOrMissing, Some(404), None, None),
            (1, ProbeCode::Tls, None, None, None),
        ];
        for (retry, code, status, ra, want) in cases {
            assert_eq!(d(retry, code, status, ra), want, "{retry} {code} {status:?}");
        }
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    fn guard(limits: Limits) -> (Guard, ManualClock) {
        let clock = ManualClock::new();
        (Guard::new(limits, Arc::new(clock.clone())), clock)
    }

    async fn go(g: &Guard, host: &str) -> Ticket {
        match g.admit(host).await {
            Admission::Go(t) => t,
            Admission::Stopped(why) => panic!("stopped: {why}"),
        }
    }

    #[tokio::test]
    async fn breaker_trips_after_three_rejections_when_validity_is_unknown() {
        let (g, _) = guard(Limits::default());
        for _ in 0..3 {
            let t = go(&g, "h").await;
            g.settle(t, "h", ProbeCode::AuthRejected, true);
        }
        match g.admit("h").await {
            Admission::Stopped(why) => assert!(why.contains("3 consecutive"), "{why}"),
            Admission::Go(_) => panic!("the breaker should have tripped"),
        }
        // Another host is unaffected.
        let t = go(&g, "other").await;
        g.settle(t, "other", ProbeCode::Ok, false);
    }

    #[tokio::test]
    async fn a_success_resets_the_breaker_and_a_valid_token_never_trips_it() {
        let (g, _) = guard(Limits::default());
        for code in [ProbeCode::AuthRejected, ProbeCode::AuthRejected, ProbeCode::Ok] {
            let t = go(&g, "h").await;
            g.settle(t, "h", code, code == ProbeCode::AuthRejected);
        }
        for _ in 0..2 {
            let t = go(&g, "h").await;
            g.settle(t, "h", ProbeCode::AuthRejected, true);
        }
        let t = go(&g, "h").await; // 2 consecutive since the success: still open
        drop(t);
        let (g, _) = guard(Limits::default());
        g.set_token("h", TokenKnowledge::Valid);
        for _ in 0..5 {
            let t = go(&g, "h").await;
            g.settle(t, "h", ProbeCode::AuthRejected, true);
        }
    }

    #[tokio::test]
    async fn invalid_token_and_ban_stop_the_host() {
        let (g, _) = guard(Limits::default());
        g.set_token("h", TokenKnowledge::Invalid);
        assert!(matches!(g.admit("h").await, Admission::Stopped(w) if w.contains("invalid")));
        let t = go(&g, "b").await;
        g.settle(t, "b", ProbeCode::Banned, false);
        assert!(matches!(g.admit("b").await, Admission::Stopped(w) if w.contains("ban")));
    }

    #[tokio::test]
    async fn failed_logins_stay_within_the_window_limit() {
        let (g, clock) = guard(Limits { failed_logins: 10, ..Limits::default() });
        g.set_token("h", TokenKnowledge::Valid);
        let window = Duration::from_secs(180);
        let mut times = Vec::new();
        for _ in 0..35 {
            let t = go(&g, "h").await;
            times.push(clock.now());
            g.settle(t, "h", ProbeCode::NoAccessOrMissing, true);
        }
        for (i, start) in times.iter().enumerate() {
            let in_window = times[i..].iter().filter(|t| **t - *start < window).count();
            assert!(in_window <= 10, "{in_window} failures within 3 minutes from {start:?}");
        }
        // 35 failures at 10 per window need at least three full windows of waiting.
        assert!(clock.now() >= window * 3, "{:?}", clock.now());
        assert_eq!(g.report()[0].1.failed_logins, 35);
    }

    #[tokio::test]
    async fn pending_probes_count_against_the_login_limit() {
        let (g, _) = guard(Limits { failed_logins: 2, per_host: 4, ..Limits::default() });
        g.set_token("h", TokenKnowledge::Valid);
        let a = go(&g, "h").await;
        let b = go(&g, "h").await;
        // A third must wait while two may still fail.
        let third = tokio::time::timeout(Duration::from_millis(50), g.admit("h")).await;
        assert!(third.is_err(), "a third login attempt was admitted");
        g.settle(a, "h", ProbeCode::Ok, false);
        let c = tokio::time::timeout(Duration::from_secs(1), g.admit("h")).await;
        assert!(matches!(c, Ok(Admission::Go(_))));
        drop(b);
    }

    #[tokio::test]
    async fn an_unproven_token_is_probed_one_at_a_time() {
        let (g, _) = guard(Limits::default());
        let first = go(&g, "h").await;
        let second = tokio::time::timeout(Duration::from_millis(50), g.admit("h")).await;
        assert!(second.is_err(), "a second probe ran before the token was proven");
        g.settle(first, "h", ProbeCode::Ok, false);
        let a = go(&g, "h").await;
        let b = go(&g, "h").await; // proven: concurrency is back
        drop((a, b));
    }

    #[tokio::test]
    async fn per_host_and_overall_limits_hold() {
        let (g, _) = guard(Limits { overall: 3, per_host: 2, ..Limits::default() });
        for h in ["a", "b"] {
            g.set_token(h, TokenKnowledge::Valid);
        }
        let a1 = go(&g, "a").await;
        let _a2 = go(&g, "a").await;
        assert!(tokio::time::timeout(Duration::from_millis(50), g.admit("a")).await.is_err());
        let _b1 = go(&g, "b").await;
        assert!(tokio::time::timeout(Duration::from_millis(50), g.admit("b")).await.is_err());
        g.settle(a1, "a", ProbeCode::Ok, false);
        assert!(tokio::time::timeout(Duration::from_secs(1), g.admit("b")).await.is_ok());
    }
}
