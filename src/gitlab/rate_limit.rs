//! Retry and pacing policy: pure functions deciding whether to retry a request and how long
//! to wait before the next one, from statuses, `Retry-After` and `RateLimit-*` headers.
//!
//! Nothing here does I/O or reads a clock: callers pass the time and a jitter value, so the
//! rules are table-tested. Header meanings: `doc/administration/settings/user_and_ip_rate_limits.md`
//! (`RateLimit-Reset` is Unix epoch seconds, `Retry-After` is seconds); application rate limits
//! answer 429 with a JSON body and no headers (`lib/api/helpers/rate_limiter.rb`).

use std::time::Duration;

use reqwest::header::HeaderMap;

/// Backoff and attempt limits for retried requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Total attempts per request, the first included (at least 1).
    pub(crate) max_attempts: u32,
    /// Base of the exponential backoff (attempt 1 waits up to `base`, attempt 2 up to `2*base`, …).
    pub(crate) base_delay: Duration,
    /// No backoff or `RateLimit-Reset` wait is longer than this.
    pub(crate) max_delay: Duration,
    /// The longest `Retry-After` honoured (in full: waiting less only earns another 429). A
    /// server asking for more makes the request fail with [`Decision::WaitTooLong`] rather
    /// than stall the run.
    pub(crate) max_retry_after: Duration,
}

/// The default [`RetryPolicy::max_retry_after`].
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_retry_after: MAX_RETRY_AFTER,
        }
    }
}

/// Whether a request may change state on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodKind {
    /// GET/HEAD: safe to repeat.
    Read,
    /// PUT/POST/DELETE: repeating after an unknown outcome could apply a change twice.
    Write,
}

/// What happened to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// An HTTP response with this status arrived.
    Status(u16),
    /// The connection could not be established (refused, DNS, unreachable): the request
    /// certainly never reached GitLab.
    ConnectFailed,
    /// A TLS or certificate failure: retrying will not help.
    TlsFailed,
    /// The request may have been sent, but no complete response came back (connection
    /// closed, reset, timeout, truncated body).
    NoResponse,
    /// A successful response whose body is over the size limit: reading stopped. Retrying
    /// would read the same again; for a write, the change was applied.
    TooLarge,
}

/// Server hints parsed from a response's headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ServerHints {
    /// `Retry-After`, as a delay.
    pub(crate) retry_after: Option<Duration>,
    /// `RateLimit-Reset` (Unix epoch seconds on the server's clock), converted to epoch
    /// milliseconds on *our* clock: when the `Date` header shows the clocks differ by more
    /// than [`MAX_IGNORED_SKEW_MS`], the difference is taken out.
    pub(crate) reset_ms: Option<u64>,
    /// `RateLimit-Limit`.
    pub(crate) limit: Option<u64>,
    /// `RateLimit-Remaining`.
    pub(crate) remaining: Option<u64>,
}

impl ServerHints {
    /// Parse the rate-limit headers at local time `now_epoch_ms`. Malformed values are
    /// ignored. An HTTP-date `Retry-After` and `RateLimit-Reset` are server times: they are
    /// read against the server's `Date` header when the clocks clearly differ.
    pub(crate) fn from_headers(headers: &HeaderMap, now_epoch_ms: u64) -> ServerHints {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let number = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        // The server's idea of "now"; Date has 1 s resolution, so take the middle.
        let server_now_ms = text("date")
            .and_then(parse_http_date_ms)
            .map(|d| d + 500)
            .filter(|d| d.abs_diff(now_epoch_ms) > MAX_IGNORED_SKEW_MS)
            .unwrap_or(now_epoch_ms);
        let to_local = |server_ms: u64| (server_ms + now_epoch_ms).saturating_sub(server_now_ms);
        let retry_after = text("retry-after").and_then(|v| parse_retry_after(v, server_now_ms));
        ServerHints {
            retry_after,
            reset_ms: number("ratelimit-reset").map(|r| to_local(r.saturating_mul(1000))),
            limit: number("ratelimit-limit"),
            remaining: number("ratelimit-remaining"),
        }
    }
}

/// Clock differences up to this are ignored (the `Date` header has 1 s resolution).
pub(crate) const MAX_IGNORED_SKEW_MS: u64 = 2_000;

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) as epoch milliseconds.
fn parse_http_date_ms(value: &str) -> Option<u64> {
    let date =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    Some(u64::try_from(date.unix_timestamp()).ok()?.saturating_mul(1000))
}

/// `Retry-After` is either delta-seconds or an HTTP date (RFC 9110 §10.2.3), the latter
/// compared with the server's current time.
fn parse_retry_after(value: &str, server_now_ms: u64) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at_ms = parse_http_date_ms(value)?;
    Some(Duration::from_millis(at_ms.saturating_sub(server_now_ms)))
}

/// The verdict for one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Success or a final answer: hand the response to the caller.
    Done,
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Stop: a retryable failure, but attempts are exhausted.
    GiveUp,
    /// Stop: a write whose outcome is unknown; the caller must re-read the state.
    Ambiguous,
    /// Stop: the server asks to wait this long (`Retry-After`), more than
    /// [`RetryPolicy::max_retry_after`].
    WaitTooLong(Duration),
}

/// Decide what to do after attempt number `attempt` (1-based) ended in `outcome`.
///
/// - Reads retry 429, every 5xx, connection failures and missing responses.
/// - Writes retry only when the request surely was not applied: 429, 503 (GitLab or
///   its proxy refused it) and connection failures. A 500, 502, 504 or a missing response
///   after sending is [`Decision::Ambiguous`].
/// - Other statuses (2xx, 3xx, 4xx) are final: [`Decision::Done`].
/// - The wait is `Retry-After` if given, else the time until `RateLimit-Reset` if in the
///   future, else full-jitter exponential backoff (`jitter` in `[0, 1)` scales
///   `min(max_delay, base * 2^(attempt-1))`). A `Retry-After` longer than `max_retry_after`
///   is [`Decision::WaitTooLong`]; other waits are capped at `max_delay`.
pub(crate) fn decide(
    policy: &RetryPolicy,
    method: MethodKind,
    outcome: Attempt,
    hints: &ServerHints,
    attempt: u32,
    now_epoch_ms: u64,
    jitter: f64,
) -> Decision {
    let retryable = match (method, outcome) {
        (_, Attempt::Status(s)) if s < 400 => return Decision::Done,
        (_, Attempt::Status(429)) => true,
        (MethodKind::Read, Attempt::Status(s)) => (500..600).contains(&s),
        // 503: GitLab (or its proxy) refused the request. 502/504: a proxy gave up waiting,
        // and Rails may still have committed the write, so it is ambiguous, not retried.
        (MethodKind::Write, Attempt::Status(503)) => true,
        (MethodKind::Write, Attempt::Status(502 | 504)) => return Decision::Ambiguous,
        (MethodKind::Write, Attempt::Status(500)) => return Decision::Ambiguous,
        (MethodKind::Write, Attempt::Status(_)) => false,
        (_, Attempt::ConnectFailed) => true,
        (_, Attempt::TlsFailed) => false,
        (MethodKind::Read, Attempt::TooLarge) => false,
        (MethodKind::Write, Attempt::TooLarge) => return Decision::Ambiguous,
        (MethodKind::Read, Attempt::NoResponse) => true,
        (MethodKind::Write, Attempt::NoResponse) => return Decision::Ambiguous,
    };
    if !retryable {
        return Decision::Done;
    }
    if let Some(after) = hints.retry_after.filter(|&a| a > policy.max_retry_after) {
        return Decision::WaitTooLong(after);
    }
    if attempt >= policy.max_attempts.max(1) {
        return Decision::GiveUp;
    }
    // `RateLimit-Reset` says when the *quota* refills: it comes on every response once a
    // throttle is configured, so it only sets the wait of a 429. (A 500 with a reset a
    // minute away must not stall a run for a minute.)
    let hints = match outcome {
        Attempt::Status(429) => *hints,
        _ => ServerHints { reset_ms: None, ..*hints },
    };
    Decision::RetryAfter(retry_delay(policy, &hints, attempt, now_epoch_ms, jitter))
}

/// The wait before the next attempt (see [`decide`]).
pub(crate) fn retry_delay(
    policy: &RetryPolicy,
    hints: &ServerHints,
    attempt: u32,
    now_epoch_ms: u64,
    jitter: f64,
) -> Duration {
    let wait = if let Some(after) = hints.retry_after {
        return after.min(policy.max_retry_after);
    } else if let Some(reset) = hints.reset_ms.filter(|&r| r > now_epoch_ms) {
        // Whole seconds: the window may end up to a second later.
        Duration::from_millis(reset - now_epoch_ms + RESET_SLACK_MS)
    } else {
        let exp = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        let ceiling = policy.base_delay.saturating_mul(exp).min(policy.max_delay);
        ceiling.mul_f64(jitter.clamp(0.0, 1.0))
    };
    wait.min(policy.max_delay)
}

/// How much later than `RateLimit-Reset` a window may really end (the header has whole
/// seconds).
pub(crate) const RESET_SLACK_MS: u64 = 1_000;

/// Rate-limit state shared by all clones of a client, fed by response headers.
///
/// `RateLimit-Limit` is the quota, `RateLimit-Remaining` what is left in the current window,
/// `RateLimit-Reset` when the window ends. `in_flight` counts requests that were let through
/// but whose response has not been seen, because the server's `remaining` does not yet
/// include them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PacingState {
    /// Last `RateLimit-Limit` seen.
    pub(crate) limit: Option<u64>,
    /// Lowest `RateLimit-Remaining` seen for the window ending at `reset_ms`.
    pub(crate) remaining: Option<u64>,
    /// End of the current window (epoch milliseconds).
    pub(crate) reset_ms: Option<u64>,
    /// Requests admitted but not yet answered.
    pub(crate) in_flight: u64,
    /// Earliest time (epoch ms) the next paced request may start.
    pub(crate) next_slot_ms: u64,
    /// Requests the caller runs in parallel; below this many remaining, pacing starts.
    pub(crate) concurrency: u64,
    /// Longest single pacing wait.
    pub(crate) max_wait_ms: u64,
}

impl PacingState {
    /// A fresh state for a caller running `concurrency` requests at once.
    pub(crate) fn new(concurrency: u64, max_wait: Duration) -> Self {
        PacingState {
            concurrency: concurrency.max(1),
            max_wait_ms: u64::try_from(max_wait.as_millis()).unwrap_or(u64::MAX),
            ..PacingState::default()
        }
    }

    /// Record a response's rate-limit headers (and that one admitted request finished).
    pub(crate) fn observe(&mut self, hints: &ServerHints) {
        if let Some(limit) = hints.limit {
            self.limit = Some(limit);
        }
        // `RateLimit-Reset` has whole seconds and the server's window may start mid-second:
        // treat the window as lasting up to a second longer, so paced requests do not resume
        // just before the server's window has really ended.
        let reset_ms = hints.reset_ms.map(|r| r + RESET_SLACK_MS);
        if let (Some(remaining), Some(reset_ms)) = (hints.remaining, reset_ms) {
            match self.reset_ms {
                // Responses may arrive out of order: within one window keep the lowest count.
                Some(current) if current == reset_ms => {
                    self.remaining = Some(self.remaining.map_or(remaining, |r| r.min(remaining)));
                }
                Some(current) if current > reset_ms => {} // a late answer from an old window
                _ => {
                    self.reset_ms = Some(reset_ms);
                    self.remaining = Some(remaining);
                }
            }
        }
    }

    /// Note that an admitted request finished (answered or failed).
    pub(crate) fn finish(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}

/// Admit one request at `now_ms` (epoch ms): returns how long it must wait first, and counts
/// it as in flight.
///
/// With plenty of quota left, or no rate-limit headers seen, or the window already over, the
/// wait is zero. When the quota left for this window (`remaining - in_flight`) drops below
/// `max(limit / 10, concurrency)`, requests are spaced evenly over the time left until the
/// reset, so the window's budget lasts to its end; with no budget left the wait is the time
/// until the reset. Every wait is capped at `max_wait_ms` (a skewed clock must not stall us).
pub(crate) fn pacing_delay(state: &mut PacingState, now_ms: u64) -> Duration {
    state.in_flight += 1;
    let (Some(remaining), Some(reset_ms)) = (state.remaining, state.reset_ms) else {
        return Duration::ZERO;
    };
    if now_ms >= reset_ms {
        return Duration::ZERO;
    }
    let limit = state.limit.unwrap_or(0);
    let threshold = (limit / 10).max(state.concurrency);
    // This request itself is already counted in in_flight.
    let budget = remaining.saturating_sub(state.in_flight - 1);
    if budget >= threshold {
        return Duration::ZERO;
    }
    let slot = state.next_slot_ms.max(now_ms);
    let wait = if budget == 0 || slot >= reset_ms {
        reset_ms - now_ms
    } else {
        // Share what is left of the window, from this slot on, among the budget.
        state.next_slot_ms = slot + (reset_ms - slot) / budget;
        slot - now_ms
    };
    Duration::from_millis(wait.min(state.max_wait_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const P: RetryPolicy = RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(10),
        max_retry_after: Duration::from_secs(120),
    };
    const NOW: u64 = 1_700_000_000_000;

    fn none() -> ServerHints {
        ServerHints::default()
    }

    #[test]
    fn retry_decision_table() {
        use Attempt::*;
        use Decision::*;
        use MethodKind::*;
        let ms = Duration::from_millis;
        let ra = ServerHints { retry_after: Some(Duration::from_secs(3)), ..none() };
        let reset = ServerHints { reset_ms: Some(NOW + 2_000), ..none() };
        let past_reset = ServerHints { reset_ms: Some(NOW - 5_000), ..none() };
        let both = ServerHints {
            retry_after: Some(Duration::from_secs(1)),
            reset_ms: Some(NOW + 7_000),
            ..none()
        };
        let huge = ServerHints { retry_after: Some(Duration::from_secs(3600)), ..none() };
        let long = ServerHints { retry_after: Some(Duration::from_secs(90)), ..none() };
        let cap = ServerHints { retry_after: Some(Duration::from_secs(120)), ..none() };
        #[rustfmt::skip]
        let table: &[(MethodKind, Attempt, ServerHints, u32, f64, Decision)] = &[
            // Final answers.
            (Read, Status(200), none(), 1, 0.5, Done),
            (Write, Status(201), none(), 1, 0.5, Done),
            (Read, Status(302), none(), 1, 0.5, Done),
            (Read, Status(400), none(), 1, 0.5, Done),
            (Read, Status(401), none(), 1, 0.5, Done),
            (Read, Status(403), none(), 1, 0.5, Done),
            (Read, Status(404), none(), 1, 0.5, Done),
            (Write, Status(422), none(), 1, 0.5, Done),
            (Read, TlsFailed, none(), 1, 0.5, Done),
            // 429: Retry-After first, then RateLimit-Reset, then exponential with jitter.
            (Read, Status(429), ra, 1, 0.5, RetryAfter(ms(3000))),
            (Read, Status(429), reset, 1, 0.5, RetryAfter(ms(2000 + RESET_SLACK_MS))),
            (Read, Status(429), both, 1, 0.5, RetryAfter(ms(1000))),
            (Read, Status(429), past_reset, 1, 0.5, RetryAfter(ms(50))),
            (Read, Status(429), none(), 1, 0.5, RetryAfter(ms(50))),
            (Read, Status(429), none(), 3, 0.5, RetryAfter(ms(200))),
            (Read, Status(429), none(), 3, 0.0, RetryAfter(ms(0))),
            (Read, Status(429), none(), 5, 1.0, RetryAfter(ms(1600))),
            // Retry-After is honoured in full up to the cap, and beyond it not at all.
            (Read, Status(429), long, 1, 0.5, RetryAfter(ms(90_000))),
            (Read, Status(429), cap, 1, 0.5, RetryAfter(ms(120_000))),
            (Read, Status(429), huge, 1, 0.5, WaitTooLong(ms(3_600_000))),
            (Read, Status(429), huge, 6, 0.5, WaitTooLong(ms(3_600_000))),
            (Write, Status(503), huge, 1, 0.5, WaitTooLong(ms(3_600_000))),
            (Write, Status(429), ra, 1, 0.5, RetryAfter(ms(3000))),
            // 5xx: reads retry all, writes only gateway errors.
            (Read, Status(500), none(), 1, 1.0, RetryAfter(ms(100))),
            (Read, Status(502), none(), 2, 1.0, RetryAfter(ms(200))),
            (Read, Status(503), ra, 2, 1.0, RetryAfter(ms(3000))),
            (Write, Status(500), none(), 1, 0.5, Ambiguous),
            (Write, Status(502), none(), 1, 1.0, Ambiguous),
            (Write, Status(503), none(), 1, 1.0, RetryAfter(ms(100))),
            (Write, Status(504), none(), 1, 1.0, Ambiguous),
            (Write, Status(501), none(), 1, 0.5, Done),
            // Connection trouble.
            (Read, ConnectFailed, none(), 1, 1.0, RetryAfter(ms(100))),
            (Write, ConnectFailed, none(), 1, 1.0, RetryAfter(ms(100))),
            (Read, NoResponse, none(), 1, 1.0, RetryAfter(ms(100))),
            (Write, NoResponse, none(), 1, 0.5, Ambiguous),
            // Bounded attempts.
            (Read, Status(429), ra, 6, 0.5, GiveUp),
            (Read, Status(503), none(), 6, 0.5, GiveUp),
            (Write, ConnectFailed, none(), 7, 0.5, GiveUp),
            (Read, NoResponse, none(), 5, 1.0, RetryAfter(ms(1600))),
        ];
        for (i, (method, outcome, hints, attempt, jitter, want)) in table.iter().enumerate() {
            let got = decide(&P, *method, *outcome, hints, *attempt, NOW, *jitter);
            assert_eq!(got, *want, "row {i}: {method:?} {outcome:?} {hints:?} attempt {attempt}");
        }
    }

    #[test]
    fn rate_limit_reset_only_delays_a_429() {
        let policy = RetryPolicy::default();
        let now = 1_000_000;
        let hints = ServerHints { reset_ms: Some(now + 59_000), ..ServerHints::default() };
        let limited = decide(&policy, MethodKind::Read, Attempt::Status(429), &hints, 1, now, 0.0);
        assert_eq!(limited, Decision::RetryAfter(Duration::from_millis(59_000 + RESET_SLACK_MS)));
        let failed = decide(&policy, MethodKind::Read, Attempt::Status(500), &hints, 1, now, 0.5);
        assert!(
            matches!(failed, Decision::RetryAfter(d) if d < Duration::from_secs(1)),
            "a 500 backs off exponentially, not until the quota resets: {failed:?}"
        );
    }

    #[test]
    fn backoff_is_capped() {
        let got = retry_delay(&P, &none(), 40, NOW, 1.0);
        assert_eq!(got, P.max_delay);
    }

    #[test]
    fn headers_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert("Retry-After", HeaderValue::from_static("7"));
        h.insert("RateLimit-Reset", HeaderValue::from_static("1700000060"));
        h.insert("RateLimit-Limit", HeaderValue::from_static("2000"));
        h.insert("RateLimit-Remaining", HeaderValue::from_static("1999"));
        let hints = ServerHints::from_headers(&h, NOW);
        assert_eq!(hints.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(hints.reset_ms, Some(1_700_000_060_000));
        assert_eq!(hints.limit, Some(2000));
        assert_eq!(hints.remaining, Some(1999));

        let mut h = HeaderMap::new();
        // 1700000010 = Tue, 14 Nov 2023 22:13:30 GMT
        h.insert("Retry-After", HeaderValue::from_static("Tue, 14 Nov 2023 22:13:30 GMT"));
        h.insert("RateLimit-Remaining", HeaderValue::from_static("lots"));
        let hints = ServerHints::from_headers(&h, NOW);
        assert_eq!(hints.retry_after, Some(Duration::from_secs(10)));
        assert_eq!(hints.remaining, None);
    }

    #[test]
    fn server_clock_skew_is_taken_out() {
        // NOW = 2023-11-14 22:13:20 UTC. The server's clock runs 5 minutes ahead.
        let mut h = HeaderMap::new();
        h.insert("Date", HeaderValue::from_static("Tue, 14 Nov 2023 22:18:20 GMT"));
        h.insert("RateLimit-Reset", HeaderValue::from_static("1700000330")); // server now + 30 s
        h.insert("Retry-After", HeaderValue::from_static("Tue, 14 Nov 2023 22:18:30 GMT"));
        let hints = ServerHints::from_headers(&h, NOW);
        let reset = hints.reset_ms.unwrap();
        assert!(reset.abs_diff(NOW + 30_000) <= 1_000, "{}", reset as i64 - NOW as i64);
        let after = hints.retry_after.unwrap().as_millis() as u64;
        assert!(after.abs_diff(10_000) <= 1_000, "{after}");

        // Within the tolerance, nothing is corrected (Date only has whole seconds).
        let mut h = HeaderMap::new();
        h.insert("Date", HeaderValue::from_static("Tue, 14 Nov 2023 22:13:21 GMT"));
        h.insert("RateLimit-Reset", HeaderValue::from_static("1700000001"));
        let hints = ServerHints::from_headers(&h, NOW);
        assert_eq!(hints.reset_ms, Some(1_700_000_001_000));
    }

    fn state(limit: u64, remaining: u64, reset_ms: u64, in_flight: u64) -> PacingState {
        PacingState {
            limit: Some(limit),
            remaining: Some(remaining),
            reset_ms: Some(reset_ms),
            in_flight,
            next_slot_ms: 0,
            concurrency: 4,
            max_wait_ms: 60_000,
        }
    }

    #[test]
    fn pacing_table() {
        let ms = Duration::from_millis;
        #[rustfmt::skip]
        let table: &[(&str, PacingState, u64, Duration)] = &[
            ("no headers seen", PacingState::new(4, Duration::from_secs(60)), NOW, ms(0)),
            ("plenty left", state(2000, 1500, NOW + 60_000, 0), NOW, ms(0)),
            ("at 10% exactly", state(2000, 200, NOW + 60_000, 0), NOW, ms(0)),
            ("under 10%", state(2000, 100, NOW + 60_000, 0), NOW, ms(0)), // first slot is now
            ("window over", state(2000, 0, NOW, 0), NOW, ms(0)),
            ("budget gone", state(2000, 0, NOW + 30_000, 0), NOW, ms(30_000)),
            ("in flight eat budget", state(100, 3, NOW + 1_000, 3), NOW, ms(1_000)),
            ("skewed clock capped", state(100, 0, NOW + 3_600_000, 0), NOW, ms(60_000)),
            ("below concurrency", state(20, 3, NOW + 900, 0), NOW, ms(0)),
        ];
        for (name, st, now, want) in table {
            let mut st = st.clone();
            assert_eq!(pacing_delay(&mut st, *now), *want, "{name}");
        }
    }

    #[test]
    fn paced_requests_are_spread_until_reset() {
        // 5 left for the next second: the 5 requests get slots 0, 200, 400... ms apart.
        let mut st = state(100, 5, NOW + 1_000, 0);
        let waits: Vec<u64> =
            (0..5).map(|_| pacing_delay(&mut st, NOW).as_millis() as u64).collect();
        assert_eq!(waits[0], 0);
        assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
        assert!(*waits.last().unwrap() < 1_000, "{waits:?}");
        // A sixth request (budget exhausted) waits until the reset.
        assert_eq!(pacing_delay(&mut st, NOW), Duration::from_millis(1_000));
        assert_eq!(st.in_flight, 6);
        st.finish();
        assert_eq!(st.in_flight, 5);
    }

    #[test]
    fn observe_keeps_lowest_in_window_and_moves_on() {
        let mut st = PacingState::new(4, Duration::from_secs(60));
        let h = |rem, reset: u64| ServerHints {
            limit: Some(100),
            remaining: Some(rem),
            reset_ms: Some(reset * 1000),
            retry_after: None,
        };
        st.observe(&h(50, 10));
        st.observe(&h(55, 10)); // late, out of order
        assert_eq!(st.remaining, Some(50));
        st.observe(&h(99, 11)); // new window
        assert_eq!((st.remaining, st.reset_ms), (Some(99), Some(11_000 + RESET_SLACK_MS)));
        st.observe(&h(10, 10)); // stale window ignored
        assert_eq!(st.remaining, Some(99));
    }
}
