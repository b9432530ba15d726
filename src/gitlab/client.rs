//! `GitLabClient`: one pooled HTTPS client for the GitLab REST API (v4), with the token in a
//! sensitive header, no redirects, retries, rate-limit pacing and counters shared by clones.
//!
//! Retry rules live in [`super::rate_limit`]. In short: reads retry 429, 5xx and connection
//! trouble; writes retry only 429, 502/503/504 and failed connects, and report a 500 or a
//! connection lost after sending as [`GitLabError::Ambiguous`], because the change may have
//! been applied (the caller re-reads the state instead of writing twice).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::Stream;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::error::{BODY_EXCERPT_CHARS, GitLabError, sanitize_excerpt};
use super::model::{
    ApplicationSettings, ImportUrlUpdate, Metadata, Project, ProjectQuery, PullMirror,
    PullMirrorUpdate, RemoteMirror, RemoteMirrorCreate, RemoteMirrorUpdate, TokenSelf, User,
};
use super::pagination::{PageMode, paginate};
use super::rate_limit::{
    Decision, MethodKind, Outcome, PacingState, RetryPolicy, ServerHints, decide, pacing_delay,
};
use crate::redact::mask_userinfo;

/// Page size for list endpoints (GitLab's maximum).
pub const PER_PAGE: u32 = 100;

/// How to reach GitLab.
pub struct ClientConfig {
    /// Base URL of the instance, e.g. `https://gitlab.example.com/` (no `/api/v4`).
    pub base_url: Url,
    /// API token, sent as `PRIVATE-TOKEN`.
    pub token: SecretString,
    /// Extra PEM root certificate(s) to trust (`--ca-cert`).
    pub ca_cert: Option<PathBuf>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Run every request as this user (`Sudo` header; admin token with `sudo` scope).
    pub sudo: Option<String>,
}

impl ClientConfig {
    /// A config with the defaults: 30 s timeout, 6 attempts, no CA, no sudo.
    pub fn new(base_url: Url, token: SecretString) -> Self {
        ClientConfig {
            base_url,
            token,
            ca_cert: None,
            timeout: Duration::from_secs(30),
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
            .field("max_attempts", &self.max_attempts)
            .field("sudo", &self.sudo)
            .finish()
    }
}

/// Knobs most callers leave alone: backoff timing, pacing and connect timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// First backoff step (doubles per attempt, full jitter).
    pub base_delay: Duration,
    /// Longest single wait (backoff, `Retry-After`, pacing).
    pub max_delay: Duration,
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

/// A response read to the end.
pub(crate) struct RawResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
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

/// Describe a transport error without its URL: kind, then the source chain.
fn transport_detail(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "response body cut off"
    } else {
        "no response"
    };
    let mut parts = vec![kind.to_owned()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    sanitize_excerpt(&parts.join(": "), 300)
}

fn classify_transport(e: &reqwest::Error, detail: &str) -> Outcome {
    let lower = detail.to_ascii_lowercase();
    // rustls speaks of certificates, handshakes, alerts and corrupt records (a plain-HTTP
    // server answered a TLS hello); none of these heals by retrying.
    const TLS_WORDS: [&str; 7] = [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "invalidcontenttype",
        "alert",
        "ssl",
    ];
    if TLS_WORDS.iter().any(|w| lower.contains(w)) {
        Outcome::TlsFailed
    } else if e.is_connect() {
        Outcome::ConnectFailed
    } else {
        Outcome::NoResponse
    }
}

/// Admission through the pacer; releases the in-flight slot when dropped.
struct PaceGuard<'a>(&'a Mutex<PacingState>);

impl Drop for PaceGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).finish();
    }
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
    pub fn base_url(&self) -> &Url {
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
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.api.clone();
        url.path_segments_mut()
            .expect("checked in new(): http(s) URLs have paths")
            .extend(segments);
        url
    }

    /// The path below `/api/v4` of a request URL, for messages (never the query).
    fn api_path(&self, url: &Url) -> String {
        let path = url.path();
        match path.strip_prefix(&self.inner.api_prefix) {
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => path.to_owned(),
        }
    }

    pub(crate) fn protocol_error(&self, method: &str, url: &Url, detail: String) -> GitLabError {
        self.inner.counters.errors.fetch_add(1, Ordering::Relaxed);
        GitLabError::Protocol { method: method.to_owned(), path: self.api_path(url), detail }
    }

    /// Sanitize a response body for an error, scrubbing the API token and the request's own
    /// secrets should GitLab echo them.
    fn excerpt(&self, body: &[u8], secrets: &[SecretString]) -> String {
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
    fn uncount_error(&self) {
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
            tokio::time::sleep(wait).await;
        }
        guard
    }

    /// Send one request with retries; returns a 2xx response, or the classified error.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<RequestBody>,
    ) -> Result<RawResponse, GitLabError> {
        let result = self.send_inner(&method, url, body).await;
        if result.is_err() {
            self.inner.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn send_inner(
        &self,
        method: &Method,
        url: &Url,
        body: Option<RequestBody>,
    ) -> Result<RawResponse, GitLabError> {
        let path = self.api_path(url);
        let secrets: &[SecretString] = body.as_ref().map_or(&[], |b| &b.secrets);
        let kind = if *method == Method::GET || *method == Method::HEAD {
            MethodKind::Read
        } else {
            MethodKind::Write
        };
        if let Sudo::Invalid = self.sudo {
            return Err(GitLabError::Config(
                "the sudo username contains invalid characters".into(),
            ));
        }
        let counters = &self.inner.counters;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let guard = self.pace().await;
            let mut request = self.inner.http.request(method.clone(), url.clone());
            if let Sudo::As(user) = &self.sudo {
                request = request.header("Sudo", user.clone());
            }
            if let Some(body) = &body {
                request = request.header(CONTENT_TYPE, "application/json").body(body.bytes.clone());
            }
            counters.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%method, %path, attempt, "GitLab request");
            let result = async {
                let response = request.send().await?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>(RawResponse { status, headers, body: body.to_vec() })
            }
            .await;
            let now = now_ms();
            let (outcome, hints, response, transport) = match result {
                Ok(response) => {
                    let hints = ServerHints::from_headers(&response.headers, now);
                    self.inner.pacing.lock().unwrap_or_else(|p| p.into_inner()).observe(&hints);
                    (Outcome::Status(response.status.as_u16()), hints, Some(response), None)
                }
                Err(e) => {
                    let detail = transport_detail(&e);
                    (classify_transport(&e, &detail), ServerHints::default(), None, Some(detail))
                }
            };
            drop(guard);
            if outcome == Outcome::Status(429) {
                counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            let jitter = rand::random::<f64>();
            let decision = decide(&self.inner.retry, kind, outcome, &hints, attempt, now, jitter);
            match decision {
                Decision::RetryAfter(wait) => {
                    counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        %method, %path, attempt, ?outcome, wait_ms = wait.as_millis() as u64,
                        "retrying GitLab request"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Decision::Ambiguous => {
                    let detail = match (&response, transport) {
                        (Some(r), _) => {
                            let body = self.excerpt(&r.body, secrets);
                            if body.is_empty() {
                                format!("HTTP {}", r.status.as_u16())
                            } else {
                                format!("HTTP {}: {body}", r.status.as_u16())
                            }
                        }
                        (None, Some(detail)) => detail,
                        (None, None) => "no response".to_owned(),
                    };
                    tracing::warn!(%method, %path, %detail, "GitLab write with unknown outcome");
                    return Err(GitLabError::Ambiguous {
                        method: method.to_string(),
                        path,
                        detail,
                    });
                }
                Decision::Done | Decision::GiveUp => {}
            }
            return match (response, transport) {
                (Some(r), _) if r.status.is_success() => Ok(r),
                (Some(r), _) if r.status.is_redirection() => Err(GitLabError::Redirect {
                    method: method.to_string(),
                    path,
                    status: r.status.as_u16(),
                    location: self.redirect_target(url, &r.headers),
                }),
                (Some(r), _) => Err(GitLabError::Http {
                    method: method.to_string(),
                    path,
                    status: r.status.as_u16(),
                    body: self.excerpt(&r.body, secrets),
                }),
                (None, detail) => Err(GitLabError::Connection {
                    method: method.to_string(),
                    path,
                    detail: detail.unwrap_or_else(|| "no response".to_owned()),
                    tls: outcome == Outcome::TlsFailed,
                }),
            };
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

    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, GitLabError> {
        let response = self.send(Method::GET, &url, None).await?;
        self.decode(&Method::GET, &url, &response.body)
    }

    /// `GET` that maps some error statuses to `None`.
    async fn get_optional<T: DeserializeOwned>(
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

    pub(crate) async fn get_page<T: DeserializeOwned>(
        &self,
        url: &Url,
    ) -> Result<(Vec<T>, HeaderMap), GitLabError> {
        let response = self.send(Method::GET, url, None).await?;
        let items = self.decode(&Method::GET, url, &response.body)?;
        Ok((items, response.headers))
    }

    async fn write_json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<RequestBody>,
    ) -> Result<T, GitLabError> {
        let response = self.send(method.clone(), &url, body).await?;
        self.decode(&method, &url, &response.body)
    }

    // ----- instance and caller --------------------------------------------------------------

    /// `GET /metadata` (`doc/api/metadata.md`), falling back to `GET /version` on 404 (older
    /// GitLab), where `enterprise` is inferred from a `-ee` version suffix.
    #[tracing::instrument(skip_all)]
    pub async fn metadata(&self) -> Result<Metadata, GitLabError> {
        match self.get_json::<Metadata>(self.url(&["metadata"])).await {
            Err(e) if e.is_not_found() => {
                self.uncount_error();
                let mut meta: Metadata = self.get_json(self.url(&["version"])).await?;
                meta.enterprise = meta.version.to_ascii_lowercase().contains("-ee");
                Ok(meta)
            }
            other => other,
        }
    }

    /// `GET /user`: the token's user (`is_admin` only present for admins).
    #[tracing::instrument(skip_all)]
    pub async fn current_user(&self) -> Result<User, GitLabError> {
        self.get_json(self.url(&["user"])).await
    }

    /// `GET /personal_access_tokens/self` (15.5+); `None` where the endpoint does not exist
    /// (404 on old GitLab).
    #[tracing::instrument(skip_all)]
    pub async fn token_self(&self) -> Result<Option<TokenSelf>, GitLabError> {
        self.get_optional(self.url(&["personal_access_tokens", "self"]), GitLabError::is_not_found)
            .await
    }

    /// `GET /application/settings` (admins only).
    #[tracing::instrument(skip_all)]
    pub async fn application_settings(&self) -> Result<ApplicationSettings, GitLabError> {
        self.get_json(self.url(&["application", "settings"])).await
    }

    // ----- projects -----------------------------------------------------------------------

    /// Every project visible to the token, by ascending id, with keyset pagination
    /// (`doc/api/rest/_index.md#keyset-based-pagination`). Lazy: one page in memory.
    pub fn projects(
        &self,
        q: ProjectQuery,
    ) -> impl Stream<Item = Result<Project, GitLabError>> + Send + '_ {
        let mut url = self.url(&["projects"]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs
                .append_pair("pagination", "keyset")
                .append_pair("order_by", "id")
                .append_pair("sort", "asc")
                .append_pair("per_page", &PER_PAGE.to_string());
            if let Some(level) = q.min_access_level {
                pairs.append_pair("min_access_level", &level.to_string());
            }
            if let Some(archived) = q.archived {
                pairs.append_pair("archived", if archived { "true" } else { "false" });
            }
        }
        paginate(self, url, PageMode::Keyset)
    }

    /// The projects of a group (`group` is an id or a full path), optionally with its
    /// subgroups; shared projects are excluded so each project appears once, in its home
    /// group. Offset pagination (`doc/api/groups.md`: no keyset here).
    pub fn group_projects(
        &self,
        group: &str,
        include_subgroups: bool,
    ) -> impl Stream<Item = Result<Project, GitLabError>> + Send + '_ {
        let mut url = self.url(&["groups", group, "projects"]);
        url.query_pairs_mut()
            .append_pair("include_subgroups", if include_subgroups { "true" } else { "false" })
            .append_pair("with_shared", "false")
            .append_pair("order_by", "id")
            .append_pair("sort", "asc")
            .append_pair("per_page", &PER_PAGE.to_string());
        paginate(self, url, PageMode::Offset)
    }

    /// `GET /projects/:id` by numeric id or full path (`group/sub/project`, URL-encoded).
    #[tracing::instrument(skip_all, fields(project = %id_or_path))]
    pub async fn project(&self, id_or_path: &str) -> Result<Project, GitLabError> {
        self.get_json(self.url(&["projects", id_or_path.trim_matches('/')])).await
    }

    // ----- pull mirrors (EE) --------------------------------------------------------------

    /// `GET /projects/:id/mirror/pull` (`doc/api/project_pull_mirroring.md`); `None` when
    /// GitLab answers 400 "The project is not mirrored".
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn pull_mirror(&self, project_id: u64) -> Result<Option<PullMirror>, GitLabError> {
        let id = project_id.to_string();
        self.get_optional(self.url(&["projects", &id, "mirror", "pull"]), |e| {
            e.status() == Some(400) && e.body().contains("not mirrored")
        })
        .await
    }

    /// `PUT /projects/:id/mirror/pull` (17.6+): set URL and credentials (sent raw, in the
    /// JSON body) and any flags given. The caller becomes the mirror user; GitLab starts an
    /// update. The body is never logged.
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn update_pull_mirror(
        &self,
        project_id: u64,
        req: &PullMirrorUpdate,
    ) -> Result<PullMirror, GitLabError> {
        let id = project_id.to_string();
        let body = secret_body(
            &PullMirrorBody {
                url: &req.url,
                auth_user: req.auth_user.as_ref().map(Secret),
                auth_password: req.auth_password.as_ref().map(Secret),
                enabled: req.enabled,
                mirror_trigger_builds: req.mirror_trigger_builds,
                only_mirror_protected_branches: req.only_mirror_protected_branches,
                mirror_overwrites_diverged_branches: req.mirror_overwrites_diverged_branches,
                mirror_branch_regex: req.mirror_branch_regex.as_deref(),
            },
            [req.auth_user.as_ref(), req.auth_password.as_ref()].into_iter().flatten(),
        )?;
        self.write_json(Method::PUT, self.url(&["projects", &id, "mirror", "pull"]), Some(body))
            .await
    }

    /// The deprecated pull-mirror path before 17.6: `PUT /projects/:id` with `import_url`
    /// (userinfo percent-encoded), `mirror` and flags (`doc/api/projects.md`). GitLab drops
    /// the mirror attributes silently without `admin_mirror`, and probes the URL (422 when
    /// unreachable): re-read the project afterwards.
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn update_project_import_url(
        &self,
        project_id: u64,
        req: &ImportUrlUpdate,
    ) -> Result<Project, GitLabError> {
        let id = project_id.to_string();
        let body = secret_body(
            &ImportUrlBody {
                import_url: Secret(&req.import_url),
                mirror: req.mirror,
                mirror_user_id: req.mirror_user_id,
                mirror_trigger_builds: req.mirror_trigger_builds,
                only_mirror_protected_branches: req.only_mirror_protected_branches,
                mirror_overwrites_diverged_branches: req.mirror_overwrites_diverged_branches,
                mirror_branch_regex: req.mirror_branch_regex.as_deref(),
            },
            [&req.import_url],
        )?;
        self.write_json(Method::PUT, self.url(&["projects", &id]), Some(body)).await
    }

    /// `POST /projects/:id/mirror/pull`: ask GitLab to update the mirror now. GitLab answers
    /// 200 even when it only defers the update (cool-down, update already due).
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn trigger_pull_mirror(&self, project_id: u64) -> Result<(), GitLabError> {
        let id = project_id.to_string();
        self.send(Method::POST, &self.url(&["projects", &id, "mirror", "pull"]), None).await?;
        Ok(())
    }

    // ----- push mirrors -------------------------------------------------------------------

    /// Every push mirror of a project (`GET /projects/:id/remote_mirrors`, all pages).
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn remote_mirrors(&self, project_id: u64) -> Result<Vec<RemoteMirror>, GitLabError> {
        use futures::TryStreamExt;
        let id = project_id.to_string();
        let mut url = self.url(&["projects", &id, "remote_mirrors"]);
        url.query_pairs_mut().append_pair("per_page", &PER_PAGE.to_string());
        paginate(self, url, PageMode::Offset).try_collect().await
    }

    /// One push mirror (14.10+); `None` on 404.
    #[tracing::instrument(skip_all, fields(project_id = project_id, mirror_id = mirror_id))]
    pub async fn remote_mirror(
        &self,
        project_id: u64,
        mirror_id: u64,
    ) -> Result<Option<RemoteMirror>, GitLabError> {
        let (id, mid) = (project_id.to_string(), mirror_id.to_string());
        self.get_optional(
            self.url(&["projects", &id, "remote_mirrors", &mid]),
            GitLabError::is_not_found,
        )
        .await
    }

    /// `POST /projects/:id/remote_mirrors`: create a push mirror (credentials in `url`).
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn create_remote_mirror(
        &self,
        project_id: u64,
        req: &RemoteMirrorCreate,
    ) -> Result<RemoteMirror, GitLabError> {
        let id = project_id.to_string();
        let body = secret_body(
            &RemoteMirrorBody {
                url: Secret(&req.url),
                enabled: req.enabled,
                auth_method: req.auth_method.as_deref(),
                keep_divergent_refs: req.keep_divergent_refs,
                only_protected_branches: req.only_protected_branches,
                mirror_branch_regex: req.mirror_branch_regex.as_deref(),
            },
            [&req.url],
        )?;
        self.write_json(Method::POST, self.url(&["projects", &id, "remote_mirrors"]), Some(body))
            .await
    }

    /// `PUT /projects/:id/remote_mirrors/:mirror_id`: change settings (never the URL).
    #[tracing::instrument(skip_all, fields(project_id = project_id, mirror_id = mirror_id))]
    pub async fn update_remote_mirror(
        &self,
        project_id: u64,
        mirror_id: u64,
        req: &RemoteMirrorUpdate,
    ) -> Result<RemoteMirror, GitLabError> {
        let (id, mid) = (project_id.to_string(), mirror_id.to_string());
        let body = secret_body(req, [])?;
        self.write_json(
            Method::PUT,
            self.url(&["projects", &id, "remote_mirrors", &mid]),
            Some(body),
        )
        .await
    }

    /// `DELETE /projects/:id/remote_mirrors/:mirror_id`. Idempotent: a 404 (already gone,
    /// e.g. deleted before a crash) counts as success, so a resumed apply can repeat it.
    #[tracing::instrument(skip_all, fields(project_id = project_id, mirror_id = mirror_id))]
    pub async fn delete_remote_mirror(
        &self,
        project_id: u64,
        mirror_id: u64,
    ) -> Result<(), GitLabError> {
        let (id, mid) = (project_id.to_string(), mirror_id.to_string());
        match self
            .send(Method::DELETE, &self.url(&["projects", &id, "remote_mirrors", &mid]), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => {
                self.uncount_error();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /projects/:id/remote_mirrors/:mirror_id/sync`: push now (204; GitLab may defer).
    #[tracing::instrument(skip_all, fields(project_id = project_id, mirror_id = mirror_id))]
    pub async fn sync_remote_mirror(
        &self,
        project_id: u64,
        mirror_id: u64,
    ) -> Result<(), GitLabError> {
        let (id, mid) = (project_id.to_string(), mirror_id.to_string());
        self.send(
            Method::POST,
            &self.url(&["projects", &id, "remote_mirrors", &mid, "sync"]),
            None,
        )
        .await?;
        Ok(())
    }

    // ----- users --------------------------------------------------------------------------

    /// `GET /users/:id`; `None` on 404.
    #[tracing::instrument(skip_all, fields(user_id = id))]
    pub async fn user(&self, id: u64) -> Result<Option<User>, GitLabError> {
        let id = id.to_string();
        self.get_optional(self.url(&["users", &id]), GitLabError::is_not_found).await
    }

    /// `GET /users?username=NAME`: the user with exactly this username, if any.
    #[tracing::instrument(skip_all)]
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, GitLabError> {
        let mut url = self.url(&["users"]);
        url.query_pairs_mut().append_pair("username", username);
        let users: Vec<User> = self.get_json(url).await?;
        Ok(users.into_iter().find(|u| u.username.eq_ignore_ascii_case(username)))
    }
}

fn sudo_header(username: &str) -> Result<HeaderValue, GitLabError> {
    HeaderValue::from_str(username.trim())
        .map_err(|_| GitLabError::Config("the sudo username contains invalid characters".into()))
}

// ----- request bodies with secrets -------------------------------------------------------

/// A secret that serializes as its plain value. Only [`secret_body`] serializes these, into
/// the request body bytes; nothing else (logs, errors, Debug) ever sees the value.
struct Secret<'a>(&'a SecretString);

impl Serialize for Secret<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose_secret())
    }
}

/// A serialized JSON request body, with the secrets it holds (to scrub them out of any
/// error text GitLab sends back).
pub(crate) struct RequestBody {
    bytes: Vec<u8>,
    secrets: Vec<SecretString>,
}

/// Serialize a request body that holds secrets (wrapped in [`Secret`]). Mirror credentials
/// are exposed only here, into the bytes that go straight to the HTTP body, and in
/// [`scrub_secrets`].
fn secret_body<'a, T: Serialize>(
    body: &T,
    secrets: impl IntoIterator<Item = &'a SecretString>,
) -> Result<RequestBody, GitLabError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|_| GitLabError::Config("cannot encode the request body".to_owned()))?;
    Ok(RequestBody { bytes, secrets: secrets.into_iter().cloned().collect() })
}

/// Replace every occurrence of a (non-trivial) secret in `text` with `[REDACTED]`.
fn scrub_secrets(mut text: String, secrets: &[SecretString]) -> String {
    for secret in secrets {
        let value = secret.expose_secret();
        // Very short values (e.g. a one-letter user) would shred the text, and reveal little.
        if value.len() >= 4 && text.contains(value) {
            text = text.replace(value, "[REDACTED]");
        }
    }
    text
}

#[derive(Serialize)]
struct PullMirrorBody<'a> {
    /// Empty when only flags change: GitLab then keeps the URL and stored credentials.
    #[serde(skip_serializing_if = "str::is_empty")]
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_user: Option<Secret<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_password: Option<Secret<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror_trigger_builds: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    only_mirror_protected_branches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror_overwrites_diverged_branches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror_branch_regex: Option<&'a str>,
}

#[derive(Serialize)]
struct ImportUrlBody<'a> {
    import_url: Secret<'a>,
    mirror: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror_user_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror_trigger_builds: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    only_mirror_protected_branches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror_overwrites_diverged_branches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror_branch_regex: Option<&'a str>,
}

#[derive(Serialize)]
struct RemoteMirrorBody<'a> {
    url: Secret<'a>,
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_divergent_refs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    only_protected_branches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror_branch_regex: Option<&'a str>,
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
    fn secret_bodies_carry_the_raw_values() {
        let user = SecretString::from("svc@corp");
        let pass = SecretString::from("p@ss:w/rd");
        let body = PullMirrorBody {
            url: "https://h/x.git",
            auth_user: Some(Secret(&user)),
            auth_password: Some(Secret(&pass)),
            enabled: None,
            mirror_trigger_builds: Some(true),
            only_mirror_protected_branches: None,
            mirror_overwrites_diverged_branches: None,
            mirror_branch_regex: None,
        };
        let body = secret_body(&body, [&user, &pass]).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"url":"https://h/x.git","auth_user":"svc@corp",
                "auth_password":"p@ss:w/rd","mirror_trigger_builds":true})
        );
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let secrets = [SecretString::from("glpat-CANARYsrc"), SecretString::from("ab")];
        let text = scrub_secrets("bad password glpat-CANARYsrc for ab".to_owned(), &secrets);
        assert_eq!(text, "bad password [REDACTED] for ab");
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
        let req = RemoteMirrorCreate {
            url: SecretString::from("https://u:glpat-CANARY-x@h/y.git"),
            enabled: true,
            auth_method: None,
            keep_divergent_refs: None,
            only_protected_branches: None,
            mirror_branch_regex: None,
        };
        assert!(!format!("{req:?}").contains("CANARY"));
    }
}
