//! The remote probe: proves, from this machine, that the credentials GitLab will store can
//! read (pull) or write (push) each mirror's repository, with one smart-HTTP discovery
//! request per row, and watches the service tokens everything then depends on.
//!
//! - [`codes`]: the closed list of probe codes ([`ProbeCode`]) and host kinds ([`HostKind`]).
//! - [`classify`]: the pure reading of one answer, host-specific readings in one table.
//! - [`Prober`]: sends the requests under host protection ([`Limits`]): concurrency per host
//!   and overall, the failed-login limit, the breaker, retries.
//! - [`watch`]: the token watch (each host's own API) and its pure [`watch::verdict`].
//!
//! docs/remote-probe.md describes what is sent and why. Secrets: the username and password
//! are `SecretString`s until the `Authorization` header (marked sensitive) is built; no URL,
//! reason, log line or error here contains them, and anything a host echoes back is redacted.

pub(crate) mod classify;
pub(crate) mod clock;
pub(crate) mod codes;
mod guard;
mod request;
pub mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use url::Url;

pub use classify::TokenKnowledge;

pub(crate) use classify::Advert;
pub(crate) use clock::SystemClock;
pub use clock::{Clock, ManualClock};
pub use codes::KindConflict;
pub(crate) use codes::ProbeClass;
pub use codes::{HostKind, ProbeCode, service};
pub(crate) use guard::parse_retry_after;
pub use guard::{HostReport, Limits};
pub use request::ProxyMode;
pub(crate) use request::USER_AGENT;
pub use request::{HttpSettings, ProbeError};

use crate::rewrite::Direction;
use classify::{Answer, Asked, Redactor};
use guard::{Admission, Guard};
use request::{Clients, Failure};

/// The most of a body the probe reads.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// One row to probe: the URL GitLab will use (no userinfo), the direction, how the host's
/// answers read, and exactly the username and password GitLab will store.
pub struct ProbeTarget {
    url: Url,
    host: String,
    direction: Direction,
    kind: HostKind,
    username: SecretString,
    password: SecretString,
}

impl std::fmt::Debug for ProbeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeTarget")
            .field("url", &self.url.as_str())
            .field("direction", &self.direction)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl ProbeTarget {
    /// Check and build a target. The URL must be `https://`, without userinfo, query or
    /// fragment; the credentials are sent as they are (a token-as-username form has the token
    /// as `username` and an empty `password`).
    pub fn new(
        url: &str,
        direction: Direction,
        kind: HostKind,
        username: SecretString,
        password: SecretString,
    ) -> Result<ProbeTarget, ProbeError> {
        let shown = crate::redact::sanitize_for_terminal(&crate::redact::mask_userinfo(url));
        let bad = |why| Err(ProbeError::Target { url: shown.clone(), why });
        let Ok(parsed) = Url::parse(url) else {
            return bad("not a URL");
        };
        if parsed.scheme() != "https" {
            return bad("credentials are only ever sent over https");
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return bad("the URL carries credentials; pass the URL without them");
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return bad("the URL has a query or fragment");
        }
        let Some(host) = parsed.host_str().map(str::to_ascii_lowercase) else {
            return bad("the URL has no host");
        };
        Ok(ProbeTarget { url: parsed, host, direction, kind, username, password })
    }

    /// The host, as host protection keys it.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// What probing one row found. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// The code for the plan's `probe` column.
    pub code: ProbeCode,
    /// Why, for the plan's `reason` (terminal-safe, no secrets).
    pub reason: String,
    /// The last HTTP status, when there was an answer.
    pub(crate) status: Option<u16>,
    /// A redirect's same-origin `Location`, userinfo removed.
    pub(crate) location: Option<String>,
    /// The mirror URL a same-origin redirect points at.
    pub suggested_url: Option<String>,
    /// The redirect only adds `.git` to the URL (the `add-dot-git` fix).
    pub adds_dot_git: bool,
    /// What a smart answer said about the server.
    pub advert: Option<Advert>,
    /// Requests sent (0 when not probed).
    pub attempts: u32,
    /// Time taken, waits for host protection included.
    pub(crate) elapsed: Duration,
}

impl std::fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

/// Everything the prober is set up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    /// TLS, proxy and timeouts.
    pub http: HttpSettings,
    /// Body limit (default [`MAX_BODY`]).
    pub(crate) max_body: usize,
    /// Host protection.
    pub limits: Limits,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            http: HttpSettings::default(),
            max_body: MAX_BODY,
            limits: Limits::default(),
        }
    }
}

/// Sends probes under host protection. Cheap to clone; clones share the protection state,
/// so one `Prober` per run bounds every probe of that run, however they are scheduled.
#[derive(Debug, Clone)]
pub struct Prober {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    clients: Clients,
    guard: Guard,
    max_body: usize,
}

impl Prober {
    /// A prober on the real clock.
    pub fn new(settings: ProbeSettings) -> Result<Prober, ProbeError> {
        Prober::with_clock(settings, Arc::new(SystemClock::new()))
    }

    /// A prober whose waits (failed-login window, backoff) run on `clock`.
    pub fn with_clock(
        settings: ProbeSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Prober, ProbeError> {
        let clients = Clients::build(&settings.http, USER_AGENT)?;
        Ok(Prober {
            inner: Arc::new(Inner {
                clients,
                guard: Guard::new(settings.limits, clock),
                max_body: settings.max_body.max(1024),
            }),
        })
    }

    /// Tell host protection what the token watch found for `host`'s token. `Invalid` stops
    /// probing that host (its rows become `breaker`); `Valid` turns GitLab's 401 into
    /// `no-access-or-missing` and disables the breaker (the failed-login limit stays).
    pub fn set_token_knowledge(&self, host: &str, knowledge: TokenKnowledge) {
        self.inner.guard.set_token(&host.to_ascii_lowercase(), knowledge);
    }

    /// Host protection counters so far, sorted by host.
    pub fn host_reports(&self) -> Vec<(String, HostReport)> {
        self.inner.guard.report()
    }

    /// Probe one row: wait for host protection, send, retry what may be retried, read.
    pub async fn probe(&self, target: &ProbeTarget) -> ProbeOutcome {
        let started = Instant::now();
        let guard = &self.inner.guard;
        let host = target.host.as_str();
        let ticket = match guard.admit(host).await {
            Admission::Go(t) => t,
            Admission::Stopped(why) => {
                return ProbeOutcome {
                    code: ProbeCode::Breaker,
                    reason: why,
                    status: None,
                    location: None,
                    suggested_url: None,
                    adds_dot_git: false,
                    advert: None,
                    attempts: 0,
                    elapsed: started.elapsed(),
                };
            }
        };
        let knowledge = self.knowledge(host);
        let (mut outcome, failed_login) = self.send_with_retries(target, knowledge).await;
        outcome.elapsed = started.elapsed();
        guard.settle(ticket, host, outcome.code, failed_login);
        tracing::debug!(
            host,
            direction = ?target.direction,
            code = outcome.code.code(),
            status = outcome.status,
            attempts = outcome.attempts,
            "probe"
        );
        outcome
    }

    /// Probe many rows at once (host protection bounds them); results in input order.
    pub async fn probe_all(&self, targets: &[ProbeTarget]) -> Vec<ProbeOutcome> {
        futures::future::join_all(targets.iter().map(|t| self.probe(t))).await
    }

    fn knowledge(&self, host: &str) -> TokenKnowledge {
        self.inner.guard.token_knowledge(host)
    }

    async fn send_with_retries(
        &self,
        target: &ProbeTarget,
        knowledge: TokenKnowledge,
    ) -> (ProbeOutcome, bool) {
        let limits = self.inner.guard.limits().clone();
        let clock = Arc::clone(self.inner.guard.clock());
        let auth = match request::basic_auth(&target.host, &target.username, &target.password) {
            Ok(a) => a,
            Err(e) => return (not_sent(ProbeCode::AuthRejected, e.to_string()), false),
        };
        let redactor = Redactor::new(&target.username, &target.password);
        let client = self.inner.clients.for_url(&target.url);
        let asked = Asked {
            url: &target.url,
            direction: target.direction,
            kind: target.kind,
            token: knowledge,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = request::discover(
                client,
                &target.url,
                target.direction,
                &auth,
                self.inner.max_body,
            )
            .await;
            let (outcome, retry_after, failed_login) = match result {
                Ok(raw) => {
                    let body = redactor.redact(&raw.body);
                    let reading = classify::classify(
                        &asked,
                        &Answer {
                            status: raw.status,
                            content_type: raw.content_type.as_deref(),
                            body: &body,
                            location: raw.location.as_deref(),
                            retry_after: raw.retry_after.is_some(),
                        },
                    );
                    let outcome = ProbeOutcome {
                        code: reading.code,
                        reason: reading.reason,
                        status: Some(raw.status),
                        location: reading.location,
                        suggested_url: reading.suggested_url,
                        adds_dot_git: reading.adds_dot_git,
                        advert: reading.advert,
                        attempts,
                        elapsed: Duration::ZERO,
                    };
                    (
                        outcome,
                        raw.retry_after.as_deref().and_then(parse_retry_after),
                        raw.status == 401,
                    )
                }
                Err(Failure::Unreachable(why)) => {
                    let mut o = not_sent(ProbeCode::Unreachable, why);
                    o.attempts = attempts;
                    (o, None, false)
                }
                Err(Failure::Tls(why)) => {
                    let mut o = not_sent(ProbeCode::Tls, why);
                    o.attempts = attempts;
                    (o, None, false)
                }
            };
            let jitter = rand::random::<f64>();
            match limits.retry_delay(attempts, outcome.code, outcome.status, retry_after, jitter) {
                Some(delay) if !failed_login => {
                    tracing::debug!(
                        host = target.host,
                        code = outcome.code.code(),
                        delay_ms = delay.as_millis() as u64,
                        "probe retry"
                    );
                    clock.sleep(delay).await;
                }
                _ => {
                    let mut outcome = outcome;
                    if attempts > 1 {
                        outcome.reason = format!("{} (after {attempts} attempts)", outcome.reason);
                    }
                    return (outcome, failed_login);
                }
            }
        }
    }
}

fn not_sent(code: ProbeCode, reason: String) -> ProbeOutcome {
    ProbeOutcome {
        code,
        reason,
        status: None,
        location: None,
        suggested_url: None,
        adds_dot_git: false,
        advert: None,
        attempts: 0,
        elapsed: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_owned())
    }

    #[test]
    fn targets_refuse_what_must_not_get_credentials() {
        let make = |url: &str| {
            ProbeTarget::new(url, Direction::Pull, HostKind::GitHub, s("u"), s("ghp_CANARYsecret"))
        };
        assert!(make("https://github.com/a/b.git").is_ok());
        for bad in [
            "http://github.com/a/b.git",
            "ssh://git@github.com/a/b.git",
            "https://user:ghp_CANARYinurl@github.com/a/b.git",
            "https://github.com/a/b.git?x=1",
            "not a url",
        ] {
            let err = make(bad).expect_err(bad);
            let text = format!("{err} {err:?}");
            assert!(!text.contains("CANARY"), "{text}");
        }
        let t = make("https://GitHub.com/a/b.git").unwrap();
        assert_eq!(t.host(), "github.com");
        assert!(!format!("{t:?}").contains("CANARY"));
    }
}
