//! `GitLabClient`: one pooled HTTPS client for the GitLab REST API (v4), with the token in a
//! sensitive header, no redirects, retries, rate-limit pacing and counters shared by clones.
//!
//! Construction, the `Sudo` identity, the shared counters and the send loop live here; the
//! endpoint methods are in [`super::endpoints`], request bodies in `body`.
//!
//! One request is a loop of `attempt`s: each paces, sends and classifies, and
//! lets [`super::rate_limit::decide`] rule on the answer; the loop sleeps between attempts and
//! `to_error` turns a final failure into a [`GitLabError`]. In short: reads retry 429, 5xx and
//! connection trouble; writes retry only 429, 503 and failed connects, and report a 500, 502,
//! 504 or a connection lost after sending as [`GitLabError::Ambiguous`], because the change
//! may have been applied (the caller re-reads the state instead of writing twice).
//!
//! Reading a response within its size limits and naming transport failures are in
//! `transport`. Size: about 780 lines of code, everything left reads or builds the private
//! `Inner` (pool, pacing, counters, token header); splitting further would spread that
//! struct's invariants over several files.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use super::body::{RequestBody, scrub_secrets};
use super::error::{BODY_EXCERPT_CHARS, GitLabError, sanitize_excerpt};
use super::rate_limit::{
    Attempt, Decision, MethodKind, PacingState, RetryPolicy, ServerHints, decide, pacing_delay,
};
use super::transport::{
    RawResponse, ReadError, classify_transport, read_response, too_large_detail, transport_detail,
};
use crate::redact::mask_userinfo;

/// How to reach GitLab.
pub struct ClientConfig {
    /// Base URL of the instance, e.g. `https://gitlab.example.com/` (no `/api/v4`).
    pub base_url: Url,
    /// API token, sent as `PRIVATE-TOKEN`.
    pub token: SecretString,
    /// Extra PEM root certificate(s) to trust (`--ca-cert`).
    pub ca_cert: Option<PathBuf>,
    /// Timeout of one attempt (connect, send, and the whole answer).
    pub timeout: Duration,
    /// The most time one request may take with all its attempts and waits: no retry starts
    /// (or waits) past it, so a server that never answers is given up on in bounded time.
    pub total_timeout: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Run every request as this user (`Sudo` header; admin token with `sudo` scope).
    pub sudo: Option<String>,
}

impl ClientConfig {
    /// A config with the defaults: 30 s per attempt, 6 attempts within 2 minutes, no CA, no
    /// sudo.
    pub fn new(base_url: Url, token: SecretString) -> Self {
        ClientConfig {
            base_url,
            token,
            ca_cert: None,
            timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            max_attempts: RetryPolicy::default().max_attempts,
            sudo: None,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &mask_userinfo(self.base_url.as_str()))
            .field("token", &"[REDACTED]")
            .field("ca_cert", &self.ca_cert)
            .field("timeout", &self.timeout)
            .field("total_timeout", &self.total_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("sudo", &self.sudo)
            .finish()
    }
}

/// Knobs most callers leave alone: backoff timing, pacing, connect timeout, and when a wait is
/// worth telling the user about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// First backoff step (doubles per attempt, full jitter).
    pub base_delay: Duration,
    /// Longest single backoff or pacing wait.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a longer one fails the request at once.
    pub max_retry_after: Duration,
    /// A wait (before a retry, for pacing, or for an answer that did not come) this long or
    /// longer is logged at the default level: what, how long and why.
    pub announce_wait: Duration,
    /// Requests the caller runs in parallel (`--concurrency`); pacing starts when fewer than
    /// this many (or 10% of the limit) remain in the rate-limit window.
    pub concurrency: u32,
    /// TCP+TLS connect timeout.
    pub connect_timeout: Duration,
}

impl Tuning {
    /// Default tuning for a caller running `concurrency` requests at once.
    pub fn with_concurrency(concurrency: u32) -> Self {
        Tuning { concurrency: concurrency.max(1), ..Tuning::default() }
    }
}

impl Default for Tuning {
    fn default() -> Self {
        let retry = RetryPolicy::default();
        Tuning {
            base_delay: retry.base_delay,
            max_delay: retry.max_delay,
            max_retry_after: retry.max_retry_after,
            announce_wait: Duration::from_secs(5),
            concurrency: 4,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters shared by all clones of a client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent (attempts, retries included).
    pub requests: u64,
    /// Attempts that were retried.
    pub retries: u64,
    /// 429 responses received.
    pub rate_limited: u64,
    /// Calls that ended in an error (after retries).
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    errors: AtomicU64,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    api: Url,
    api_prefix: String,
    /// The token header value, kept only to scrub an echoed token out of error bodies.
    token_header: HeaderValue,
    retry: RetryPolicy,
    pacing: Mutex<PacingState>,
    counters: Counters,
    /// See [`ClientConfig::total_timeout`].
    total_timeout: Duration,
    /// See [`Tuning::announce_wait`].
    announce_wait: Duration,
    /// When a pacing wait was last logged (epoch ms), so concurrent requests waiting for the
    /// same window log one line, not one each.
    pacing_announced_ms: AtomicU64,
}

/// A GitLab REST API client. Cheap to clone; clones share the connection pool, the rate-limit
/// pacing and the counters.
#[derive(Clone)]
pub struct GitLabClient {
    inner: Arc<Inner>,
    sudo: Sudo,
}

/// Who requests run as.
#[derive(Clone, Debug)]
enum Sudo {
    /// The token's own user.
    Myself,
    /// Another user, through the `Sudo` header.
    As(HeaderValue),
    /// A username that cannot be sent: every request is refused locally.
    Invalid,
}

impl std::fmt::Debug for GitLabClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitLabClient")
            .field("base_url", &self.inner.base.as_str())
            .field("sudo", &self.sudo)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Admission through the pacer; releases the in-flight slot when dropped.
struct PaceGuard<'a>(&'a Mutex<PacingState>);

impl Drop for PaceGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).finish();
    }
}

/// One logical request, the same for each of its attempts.
struct Call<'a> {
    method: &'a Method,
    url: &'a Url,
    body: Option<&'a RequestBody>,
    kind: MethodKind,
    /// The API path, for logs and errors.
    path: String,
}

impl<'a> Call<'a> {
    fn new(method: &'a Method, url: &'a Url, body: Option<&'a RequestBody>, path: String) -> Self {
        let kind = if *method == Method::GET || *method == Method::HEAD {
            MethodKind::Read
        } else {
            MethodKind::Write
        };
        // Only ever shown: at most 200 characters of it, so a huge argument stays short.
        let path = crate::redact::excerpt(&path, 200);
        Call { method, url, body, kind, path }
    }

    /// The body's secrets, to scrub out of any error text.
    fn secrets(&self) -> &'a [SecretString] {
        self.body.map_or(&[], |b| &b.secrets)
    }
}

/// The final attempt of a request: how it ended and what the policy made of it.
struct Reply {
    outcome: Attempt,
    decision: Decision,
    /// The response read to the end, or what went wrong in transport (masked, no URL).
    response: Result<RawResponse, String>,
}

impl GitLabClient {
    /// Build a client with default [`Tuning`].
    pub fn new(cfg: ClientConfig) -> Result<Self, GitLabError> {
        Self::with_tuning(cfg, Tuning::default())
    }

    /// Build a client with explicit backoff/pacing settings (tests use millisecond delays).
    pub fn with_tuning(cfg: ClientConfig, tuning: Tuning) -> Result<Self, GitLabError> {
        let base = cfg.base_url;
        if !base.username().is_empty() || base.password().is_some() {
            return Err(GitLabError::Config("the GitLab URL must not contain credentials".into()));
        }
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {}
            "http" => {
                return Err(GitLabError::Config(format!(
                    "refusing plain http:// for {}: the token would travel in clear text",
                    base.host_str().unwrap_or("")
                )));
            }
            other => return Err(GitLabError::Config(format!("unsupported URL scheme {other}:"))),
        }
        let mut api = base.clone();
        api.set_query(None);
        api.set_fragment(None);
        api.path_segments_mut()
            .map_err(|()| GitLabError::Config("the GitLab URL cannot be a base".into()))?
            .pop_if_empty()
            .extend(["api", "v4"]);
        let api_prefix = api.path().to_owned();

        // Whatever reaches an output from now on is scrubbed of it.
        crate::redact::register_secret(&cfg.token);
        // The one place the API token is exposed: into a header value marked sensitive, so
        // reqwest/hyper never print it.
        let mut token_header = HeaderValue::from_str(cfg.token.expose_secret()).map_err(|_| {
            GitLabError::Config("the GitLab token contains invalid characters".into())
        })?;
        token_header.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("PRIVATE-TOKEN", token_header.clone());

        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("glmirror/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout)
            .connect_timeout(tuning.connect_timeout.min(cfg.timeout));
        if is_loopback(&base) {
            // A GitLab on this machine is never reached through a proxy (the proxy's loopback
            // is not ours); other hosts follow the system proxy settings.
            builder = builder.no_proxy();
        }
        if let Some(path) = &cfg.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                GitLabError::Config(format!("cannot read --ca-cert {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                GitLabError::Config(format!(
                    "--ca-cert {}: not a PEM certificate ({e})",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(GitLabError::Config(format!(
                    "--ca-cert {}: no PEM certificate found",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| GitLabError::Config(format!("cannot build the HTTP client: {e}")))?;
        let sudo = match cfg.sudo.as_deref() {
            Some(user) => Sudo::As(sudo_header(user)?),
            None => Sudo::Myself,
        };
        let retry = RetryPolicy {
            max_attempts: cfg.max_attempts.max(1),
            base_delay: tuning.base_delay,
            max_delay: tuning.max_delay,
            max_retry_after: tuning.max_retry_after,
        };
        let pacing = PacingState::new(u64::from(tuning.concurrency), tuning.max_delay);
        Ok(GitLabClient {
            inner: Arc::new(Inner {
                http,
                base,
                api,
                api_prefix,
                token_header,
                retry,
                pacing: Mutex::new(pacing),
                counters: Counters::default(),
                total_timeout: cfg.total_timeout,
                announce_wait: tuning.announce_wait,
                pacing_announced_ms: AtomicU64::new(0),
            }),
            sudo,
        })
    }

    /// The same client (pool, pacing, counters) acting as `username` through the `Sudo`
    /// header (admin token with the `sudo` scope, `doc/api/rest/authentication.md`).
    ///
    /// A username that cannot be sent as a header (control characters) yields a client whose
    /// every request fails with [`GitLabError::Config`], never one acting as someone else;
    /// [`GitLabClient::try_with_sudo`] reports that up front.
    pub fn with_sudo(&self, username: &str) -> Self {
        let sudo = sudo_header(username).map_or(Sudo::Invalid, Sudo::As);
        GitLabClient { inner: Arc::clone(&self.inner), sudo }
    }

    /// Like [`GitLabClient::with_sudo`], but refuses a username that cannot be a header.
    pub fn try_with_sudo(&self, username: &str) -> Result<Self, GitLabError> {
        Ok(GitLabClient { inner: Arc::clone(&self.inner), sudo: Sudo::As(sudo_header(username)?) })
    }

    /// The user requests run as, when it is not the token's own user.
    pub fn sudo_user(&self) -> Option<&str> {
        match &self.sudo {
            Sudo::As(v) => v.to_str().ok(),
            Sudo::Myself | Sudo::Invalid => None,
        }
    }

    /// The base URL the client was built with.
    pub(crate) fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// A snapshot of the shared counters.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    // ----- URL and error helpers ---------------------------------------------------------

    /// `…/api/v4/<segments>`, each segment percent-encoded (a `/` in a project path becomes
    /// `%2F`, as `GET /projects/:id` wants).
    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.api.clone();
        url.path_segments_mut()
            .expect("checked in new(): http(s) URLs have paths")
            .extend(segments);
        url
    }

    /// The path below `/api/v4` of a request URL, for messages (never the query).
    pub(super) fn api_path(&self, url: &Url) -> String {
        let path = url.path();
        match path.strip_prefix(&self.inner.api_prefix) {
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => path.to_owned(),
        }
    }

    pub(super) fn protocol_error(&self, method: &str, url: &Url, detail: String) -> GitLabError {
        self.inner.counters.errors.fetch_add(1, Ordering::Relaxed);
        GitLabError::Protocol { method: method.to_owned(), path: self.api_path(url), detail }
    }

    /// Sanitize a response body for an error, scrubbing the API token and the request's own
    /// secrets should GitLab echo them.
    pub(super) fn excerpt(&self, body: &[u8], secrets: &[SecretString]) -> String {
        let mut text = String::from_utf8_lossy(body).into_owned();
        if let Ok(token) = self.inner.token_header.to_str()
            && !token.is_empty()
        {
            text = text.replace(token, "[REDACTED]");
        }
        sanitize_excerpt(&scrub_secrets(text, secrets), BODY_EXCERPT_CHARS)
    }

    /// A call turned an error status into "absent" (`None`, idempotent delete): it is not an
    /// error for the statistics.
    pub(super) fn uncount_error(&self) {
        self.inner.counters.errors.fetch_sub(1, Ordering::Relaxed);
    }

    fn redirect_target(&self, url: &Url, headers: &HeaderMap) -> String {
        let Some(location) = headers.get(LOCATION).and_then(|v| v.to_str().ok()) else {
            return "(no Location header)".to_owned();
        };
        match url.join(location) {
            Ok(mut target) => {
                // The query may hold secrets (`private_token=`): show only that there was one.
                let had_query = target.query().is_some();
                target.set_query(None);
                target.set_fragment(None);
                let shown = if had_query { format!("{target}?…") } else { target.to_string() };
                sanitize_excerpt(&shown, BODY_EXCERPT_CHARS)
            }
            Err(_) => {
                sanitize_excerpt(location.split('?').next().unwrap_or(""), BODY_EXCERPT_CHARS)
            }
        }
    }

    // ----- the request loop ----------------------------------------------------------------

    async fn pace(&self) -> PaceGuard<'_> {
        let wait = {
            let mut state = self.inner.pacing.lock().unwrap_or_else(|p| p.into_inner());
            pacing_delay(&mut state, now_ms())
        };
        let guard = PaceGuard(&self.inner.pacing);
        if !wait.is_zero() {
            tracing::debug!(wait_ms = wait.as_millis() as u64, "pacing for the rate limit");
            let now = now_ms();
            let last = self.inner.pacing_announced_ms.load(Ordering::Relaxed);
            if wait >= self.inner.announce_wait
                && now.saturating_sub(last) >= 2 * duration_ms(self.inner.announce_wait)
                && self
                    .inner
                    .pacing_announced_ms
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    "pacing requests for GitLab's rate limit: waiting {} for the current window \
                     (RateLimit-Remaining is nearly spent)",
                    seconds(wait)
                );
            }
            tokio::time::sleep(wait).await;
        }
        guard
    }

    /// Send one request with retries; returns a 2xx response, or the classified error.
    pub(super) async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<RequestBody>,
    ) -> Result<RawResponse, GitLabError> {
        let result = self.send_inner(&method, url, body.as_ref()).await;
        if result.is_err() {
            self.inner.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// The retry loop: attempts until the policy says stop, sleeping in between.
    async fn send_inner(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&RequestBody>,
    ) -> Result<RawResponse, GitLabError> {
        if let Sudo::Invalid = self.sudo {
            return Err(GitLabError::Config(
                "the sudo username contains invalid characters".into(),
            ));
        }
        let call = Call::new(method, url, body, self.api_path(url));
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        let last = loop {
            attempt += 1;
            let attempt_started = std::time::Instant::now();
            let mut reply = self.attempt(&call, attempt).await;
            let Decision::RetryAfter(wait) = reply.decision else { break reply };
            if started.elapsed() + wait >= self.inner.total_timeout {
                // The request's time is up: no further attempt.
                reply.decision = Decision::GiveUp;
                break reply;
            }
            self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                method = %call.method, path = %call.path, attempt, outcome = ?reply.outcome,
                wait_ms = duration_ms(wait), "retrying GitLab request"
            );
            self.announce_retry(&call, &reply, attempt, attempt_started.elapsed(), wait);
            tokio::time::sleep(wait).await;
        };
        match last {
            Reply { decision: Decision::Done, response: Ok(r), .. } if r.status.is_success() => {
                Ok(r)
            }
            last => Err(self.to_error(&call, last, attempt, started.elapsed())),
        }
    }

    /// Log, at the default level, a retry the user would otherwise wait for in silence: an
    /// attempt that took long to fail (no answer within the timeout), or a long wait before
    /// the next one (`Retry-After`, backoff). One line each: what, how long, why.
    fn announce_retry(
        &self,
        call: &Call<'_>,
        reply: &Reply,
        attempt: u32,
        took: Duration,
        wait: Duration,
    ) {
        let announce = self.inner.announce_wait;
        let next = format!("attempt {} of {}", attempt + 1, self.inner.retry.max_attempts);
        let why = match (&reply.outcome, &reply.response) {
            (Attempt::Status(429), Ok(r)) => match r.headers.get("retry-after") {
                Some(v) => format!(
                    "HTTP 429, rate limited (Retry-After {})",
                    sanitize_excerpt(v.to_str().unwrap_or("?"), 40)
                ),
                None => "HTTP 429, rate limited".to_owned(),
            },
            (Attempt::Status(status), _) => format!("HTTP {status}"),
            (_, Err(detail)) => detail.clone(),
            (_, Ok(_)) => "no usable answer".to_owned(),
        };
        if took >= announce && matches!(reply.outcome, Attempt::NoResponse | Attempt::ConnectFailed)
        {
            tracing::warn!(
                "{} {}: no answer within {} ({why}); retrying ({next})",
                call.method,
                call.path,
                seconds(took)
            );
        } else if wait >= announce {
            tracing::warn!(
                "{} {}: {why}: waiting {} before retrying ({next})",
                call.method,
                call.path,
                seconds(wait)
            );
        }
    }

    /// One attempt: wait for the pacer, send, read the whole answer, classify it, and let
    /// [`decide`] rule. A [`Decision::RetryAfter`] asks the loop to try again after the wait;
    /// anything else is final (a success, a final error status, exhausted retries, a wait
    /// too long to honour, or an ambiguous write).
    async fn attempt(&self, call: &Call<'_>, attempt: u32) -> Reply {
        let counters = &self.inner.counters;
        let guard = self.pace().await;
        let request = self.build(call);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(method = %call.method, path = %call.path, attempt, "GitLab request");
        let result = read_response(request).await;
        let now = now_ms();
        let (outcome, hints, response) = match result {
            Ok(response) => {
                let hints = ServerHints::from_headers(&response.headers, now);
                self.inner.pacing.lock().unwrap_or_else(|p| p.into_inner()).observe(&hints);
                (Attempt::Status(response.status.as_u16()), hints, Ok(response))
            }
            Err(ReadError::Transport(e)) => {
                let detail = transport_detail(&e);
                (classify_transport(&e, &detail), ServerHints::default(), Err(detail))
            }
            Err(ReadError::TooLarge) => {
                (Attempt::TooLarge, ServerHints::default(), Err(too_large_detail()))
            }
        };
        drop(guard);
        if outcome == Attempt::Status(429) {
            counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let jitter = rand::random::<f64>();
        let decision = decide(&self.inner.retry, call.kind, outcome, &hints, attempt, now, jitter);
        Reply { outcome, decision, response }
    }

    /// The HTTP request of one attempt: the `Sudo` header and the JSON body, if any.
    fn build(&self, call: &Call<'_>) -> reqwest::RequestBuilder {
        let mut request = self.inner.http.request(call.method.clone(), call.url.clone());
        if let Sudo::As(user) = &self.sudo {
            request = request.header("Sudo", user.clone());
        }
        if let Some(body) = call.body {
            request = request.header(CONTENT_TYPE, "application/json").body(body.bytes.clone());
        }
        request
    }

    /// The error for a final answer that is not a success, after `attempts` attempts that took
    /// `elapsed` in all.
    fn to_error(
        &self,
        call: &Call<'_>,
        last: Reply,
        attempts: u32,
        elapsed: Duration,
    ) -> GitLabError {
        let method = call.method.to_string();
        let path = call.path.clone();
        if let Decision::WaitTooLong(wait) = last.decision {
            return GitLabError::WaitTooLong {
                method,
                path,
                status: match last.outcome {
                    Attempt::Status(s) => s,
                    _ => 429,
                },
                wait_secs: wait.as_secs(),
                max_secs: self.inner.retry.max_retry_after.as_secs(),
            };
        }
        if last.decision == Decision::Ambiguous {
            let detail = match last.response {
                Ok(r) => {
                    let body = self.excerpt(&r.body, call.secrets());
                    if body.is_empty() {
                        format!("HTTP {}", r.status.as_u16())
                    } else {
                        format!("HTTP {}: {body}", r.status.as_u16())
                    }
                }
                Err(detail) => detail,
            };
            tracing::warn!(%method, %path, %detail, "GitLab write with unknown outcome");
            return GitLabError::Ambiguous { method, path, detail };
        }
        match last.response {
            Ok(r) if r.status.is_redirection() => GitLabError::Redirect {
                method,
                path,
                status: r.status.as_u16(),
                location: self.redirect_target(call.url, &r.headers),
            },
            Ok(r) => GitLabError::Http {
                method,
                path,
                status: r.status.as_u16(),
                body: self.excerpt(&r.body, call.secrets()),
            },
            Err(detail) if last.outcome == Attempt::TooLarge => {
                GitLabError::Protocol { method, path, detail }
            }
            Err(detail) => GitLabError::Connection {
                method,
                path,
                detail: if attempts > 1 {
                    format!("{detail} (gave up after {attempts} attempts in {})", seconds(elapsed))
                } else {
                    detail
                },
                tls: last.outcome == Attempt::TlsFailed,
            },
        }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &Url,
        body: &[u8],
    ) -> Result<T, GitLabError> {
        serde_json::from_slice(body).map_err(|e| {
            let detail = format!(
                "invalid JSON ({}); body starts: {}",
                sanitize_excerpt(&e.to_string(), 120),
                self.excerpt(body, &[])
            );
            self.protocol_error(method.as_str(), url, detail)
        })
    }

    pub(super) async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, GitLabError> {
        let response = self.send(Method::GET, &url, None).await?;
        self.decode(&Method::GET, &url, &response.body)
    }

    /// `GET` that maps some error statuses to `None`.
    pub(super) async fn get_optional<T: DeserializeOwned>(
        &self,
        url: Url,
        absent: impl Fn(&GitLabError) -> bool,
    ) -> Result<Option<T>, GitLabError> {
        match self.get_json(url).await {
            Ok(value) => Ok(Some(value)),
            Err(e) if absent(&e) => {
                self.uncount_error();
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn get_page<T: DeserializeOwned>(
        &self,
        url: &Url,
    ) -> Result<(Vec<T>, HeaderMap), GitLabError> {
        let response = self.send(Method::GET, url, None).await?;
        let items = self.decode(&Method::GET, url, &response.body)?;
        Ok((items, response.headers))
    }

    pub(super) async fn write_json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<RequestBody>,
    ) -> Result<T, GitLabError> {
        let response = self.send(method.clone(), &url, body).await?;
        self.decode(&method, &url, &response.body)
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `1 s`, `2.5 s`, `3 min 10 s`: a wait as a person reads it.
fn seconds(d: Duration) -> String {
    let ms = duration_ms(d);
    if ms >= 120_000 {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn sudo_header(username: &str) -> Result<HeaderValue, GitLabError> {
    HeaderValue::from_str(username.trim())
        .map_err(|_| GitLabError::Config("the sudo username contains invalid characters".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Result<GitLabClient, GitLabError> {
        GitLabClient::new(ClientConfig::new(
            Url::parse(base).unwrap(),
            SecretString::from("glpat-CANARY-unit"),
        ))
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(client("http://127.0.0.1:1/").is_ok());
        assert!(client("http://localhost:1/").is_ok());
        assert!(client("https://gitlab.example.com/").is_ok());
        let err = client("http://gitlab.example.com/").unwrap_err();
        assert!(err.to_string().contains("plain http"), "{err}");
        assert!(client("https://u:p@gitlab.example.com/").is_err());
        assert!(client("ftp://gitlab.example.com/").is_err());
    }

    #[test]
    fn urls_and_paths() {
        let c = client("https://gl.example/sub/").unwrap();
        let url = c.url(&["projects", "group/sub/proj"]);
        assert_eq!(url.as_str(), "https://gl.example/sub/api/v4/projects/group%2Fsub%2Fproj");
        assert_eq!(c.api_path(&url), "/projects/group%2Fsub%2Fproj");
        let c = client("https://gl.example/").unwrap();
        let mut url = c.url(&["projects", "12", "mirror", "pull"]);
        url.set_query(Some("private_token=SECRET"));
        assert_eq!(c.api_path(&url), "/projects/12/mirror/pull");
    }

    #[test]
    fn debug_output_has_no_token() {
        let cfg = ClientConfig::new(
            Url::parse("https://gl.example/").unwrap(),
            SecretString::from("glpat-CANARY-debug"),
        );
        assert!(!format!("{cfg:?}").contains("CANARY"));
        let c = GitLabClient::new(cfg).unwrap();
        assert!(!format!("{c:?}").contains("CANARY"));
    }
}
