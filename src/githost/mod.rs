//! A stand-in for the git hosts mirrors point at (GitHub, GitLab, Bitbucket Cloud, a plain
//! git server), reachable the way a user's network reaches them: real `git http-backend`
//! (CGI) behind an HTTPS listener on 127.0.0.1 with a certificate generated at start, and a
//! small CONNECT proxy for `HTTPS_PROXY` that tunnels `github.com:443` and the other served
//! names to it, so TLS names stay real and nothing leaves the machine.
//!
//! Each virtual host answers in its host's style ([`HostStyle`]; docs/remote-probe.md lists
//! the answers): Basic auth against per-repository access lists, push only with write
//! access, dumb-HTTP repositories, a repository reached only through a 301, an SSO page,
//! scripted answers ([`Scripted`]: 5xx, 429, bans), GitLab's failed-login ban, and the
//! token-watch endpoints (`api.github.com/user`, `/api/v3/user`,
//! `/api/v4/personal_access_tokens/self`). It counts requests, and requests in flight, per
//! host, and records every proxy CONNECT.
//!
//! Used by the tests and by `demo`; it needs `git` on `PATH` ([`find_git`]). Tokens it is
//! given are test values, kept as `SecretString`s; its logs hold no credentials.

pub mod fixture;
mod proxy;
mod repos;
pub mod scenario;
mod serve;
mod tls;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::probe::{Clock, SystemClock};

pub(crate) use proxy::ConnectRecord;

/// Errors starting the stand-in.
#[derive(Debug, thiserror::Error)]
pub enum GitHostError {
    /// `git` (with `git http-backend`) is not usable.
    #[error("git is not available: {0}")]
    Git(String),
    /// The options are inconsistent.
    #[error("invalid git host setup: {0}")]
    Spec(String),
    /// Certificates could not be made.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// A listener or a directory could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// How a virtual host answers what it does not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStyle {
    /// github.com and GitHub Enterprise: 401 for a bad token, 404 for a repository the
    /// account cannot see or that does not exist, 403 for a push without write access. On
    /// `github.com`, `api.github.com` is served too; on any other name, `/api/v3/user`.
    GitHub,
    /// GitLab: 301 for a path without `.git` (before authentication), 401 for bad
    /// credentials and for a service account that cannot see the project, 404 for a person
    /// who cannot see it, 403 for scope or push refusals, the failed-login ban, and
    /// `/api/v4/personal_access_tokens/self`.
    GitLab,
    /// Bitbucket Cloud: 401 for a bad token, no access and a missing repository alike.
    Bitbucket,
    /// git's own http-backend behind Basic auth: 401, 403 (no access), 404 (missing).
    Plain,
}

/// What a repository holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoContent {
    /// One commit on `main`.
    Commit,
    /// No commits (an empty repository).
    Empty,
    /// One commit, served as dumb HTTP (static files after `git update-server-info`).
    Dumb,
    /// Not here any more: a 301 to this path on the same host (a renamed repository).
    Moved {
        /// The new repository path, e.g. `acme/new-name.git`.
        to: String,
    },
    /// An SSO or login wall: 200 with an HTML page for every request.
    LoginPage,
}

/// Whether a token is still accepted (an `expires_at` in the past also rejects it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Accepted.
    Active,
    /// Revoked.
    Revoked,
}

/// An account with a token on one virtual host.
#[derive(Debug, Clone)]
pub struct AccountSpec {
    /// The name access lists use (also the API login).
    pub(crate) name: String,
    /// The Basic username it needs; `None`: any non-empty username (and, on GitHub, the
    /// token as username with an empty password).
    pub(crate) username: Option<String>,
    /// The token (the Basic password).
    pub(crate) token: SecretString,
    /// Active or revoked.
    pub(crate) state: TokenState,
    /// When the token stops working.
    pub(crate) expires_at: Option<OffsetDateTime>,
    /// Scopes (GitHub `X-OAuth-Scopes`, GitLab scopes). Empty: all. On GitLab, pull needs
    /// one of `read_repository`, `write_repository`, `read_api`, `api`; push needs
    /// `write_repository` or `api`.
    pub(crate) scopes: Vec<String>,
    /// GitLab: a service account or bot, which gets 401 for a project it cannot see.
    pub(crate) service_account: bool,
}

impl AccountSpec {
    /// An active account that accepts any username.
    pub fn new(name: &str, token: &SecretString) -> AccountSpec {
        AccountSpec {
            name: name.to_owned(),
            username: None,
            token: token.clone(),
            state: TokenState::Active,
            expires_at: None,
            scopes: Vec::new(),
            service_account: false,
        }
    }

    /// Require this Basic username.
    pub(crate) fn username(mut self, user: &str) -> Self {
        self.username = Some(user.to_owned());
        self
    }

    /// Mark it a GitLab service account.
    pub fn service_account(mut self) -> Self {
        self.service_account = true;
        self
    }

    /// Set the scopes.
    pub(crate) fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }
}

/// A repository on one virtual host.
#[derive(Debug, Clone)]
pub struct RepoSpec {
    /// The path as in the URL, e.g. `acme/api.git`. One `*` stands for any single segment
    /// part (`bulk/*.git`), all such paths sharing one repository.
    pub(crate) path: String,
    /// What it holds.
    pub(crate) content: RepoContent,
    /// Anyone may read it.
    pub(crate) public: bool,
    /// Accounts that may read.
    pub(crate) read: Vec<String>,
    /// Accounts that may read and write.
    pub(crate) write: Vec<String>,
    /// Store it in this shared repository (one per name and host, created once), so many
    /// repositories cost one `git init`; `None`: its own. Specs sharing one must have the
    /// same content.
    pub(crate) shared: Option<String>,
}

impl RepoSpec {
    /// A private repository nobody may read yet.
    pub fn new(path: &str, content: RepoContent) -> RepoSpec {
        RepoSpec {
            path: path.to_owned(),
            content,
            public: false,
            read: Vec::new(),
            write: Vec::new(),
            shared: None,
        }
    }

    /// Store it in the shared repository `name` (see [`RepoSpec::shared`]).
    pub(crate) fn shared_as(mut self, name: &str) -> Self {
        self.shared = Some(name.to_owned());
        self
    }

    /// The directory (under its host's) that holds it.
    fn backing(&self) -> String {
        match &self.shared {
            Some(name) => format!("__shared__/{}.git", backing_dir(name).replace('/', "_")),
            None => backing_dir(&self.path),
        }
    }

    /// Let these accounts read.
    pub fn read(mut self, accounts: &[&str]) -> Self {
        self.read.extend(accounts.iter().map(|s| (*s).to_owned()));
        self
    }

    /// Let these accounts read and write.
    pub(crate) fn write(mut self, accounts: &[&str]) -> Self {
        self.write.extend(accounts.iter().map(|s| (*s).to_owned()));
        self
    }

    /// Make it readable by anyone.
    pub(crate) fn public(mut self) -> Self {
        self.public = true;
        self
    }
}

/// One virtual host.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// Its DNS name (also in the certificate).
    pub(crate) name: String,
    /// How it answers.
    pub(crate) style: HostStyle,
    /// Whether it speaks protocol v2 when asked (`false`: old servers, always v0).
    pub(crate) v2: bool,
    /// Accounts.
    pub(crate) accounts: Vec<AccountSpec>,
    /// Repositories.
    pub(crate) repos: Vec<RepoSpec>,
    /// GitLab style: ban (403 on everything for an hour) after this many failed logins in 3
    /// minutes. GitLab.com uses 30; `None`: no ban.
    pub ban_after: Option<usize>,
}

impl HostSpec {
    /// A host with no accounts or repositories, speaking v2.
    pub fn new(name: &str, style: HostStyle) -> HostSpec {
        HostSpec {
            name: name.to_owned(),
            style,
            v2: true,
            accounts: Vec::new(),
            repos: Vec::new(),
            ban_after: None,
        }
    }

    /// Add an account.
    pub fn account(mut self, a: AccountSpec) -> Self {
        self.accounts.push(a);
        self
    }

    /// Add a repository.
    pub fn repo(mut self, r: RepoSpec) -> Self {
        self.repos.push(r);
        self
    }
}

/// Everything the stand-in serves.
#[derive(Debug, Clone)]
pub struct GitHostOptions {
    /// The virtual hosts.
    pub hosts: Vec<HostSpec>,
    /// The clock for GitLab's ban window (share a manual clock with a prober in tests).
    pub clock: Arc<dyn Clock>,
    /// Added before every answer (to make concurrency observable).
    pub latency: Duration,
}

impl GitHostOptions {
    /// These hosts, on the real clock, without added latency.
    pub fn new(hosts: Vec<HostSpec>) -> GitHostOptions {
        GitHostOptions { hosts, clock: Arc::new(SystemClock::new()), latency: Duration::ZERO }
    }
}

/// A scripted answer, served instead of the normal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripted {
    /// HTTP status.
    pub(crate) status: u16,
    /// `Content-Type`.
    pub(crate) content_type: Option<String>,
    /// Body.
    pub(crate) body: String,
    /// Extra headers.
    pub(crate) headers: Vec<(String, String)>,
}

impl Scripted {
    /// An empty answer with this status.
    pub fn status(status: u16) -> Scripted {
        Scripted { status, content_type: None, body: String::new(), headers: Vec::new() }
    }

    /// With a text/plain body.
    pub fn text(mut self, body: &str) -> Self {
        self.content_type = Some("text/plain; charset=utf-8".into());
        self.body = body.to_owned();
        self
    }

    /// With an HTML body.
    pub fn html(mut self, body: &str) -> Self {
        self.content_type = Some("text/html; charset=utf-8".into());
        self.body = body.to_owned();
        self
    }

    /// With a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// GitLab's failed-login ban: a bare `403 Forbidden`.
    pub fn gitlab_ban() -> Scripted {
        Scripted::status(403).text("Forbidden\n")
    }
}

/// Access an account gets to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// None.
    None,
    /// Read.
    Read,
    /// Read and write.
    Write,
}

/// How a request authenticated (never the credentials themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSeen {
    /// No `Authorization` or `PRIVATE-TOKEN`.
    None,
    /// `Authorization: Basic`.
    Basic,
    /// `Authorization: Bearer` or `token`.
    Bearer,
    /// `PRIVATE-TOKEN`.
    PrivateToken,
    /// Something else.
    Other,
}

/// One request the stand-in answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Virtual host.
    pub host: String,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: Option<String>,
    /// Status answered.
    pub(crate) status: u16,
    /// How it authenticated.
    pub auth: AuthSeen,
    /// The `Git-Protocol` header.
    pub git_protocol: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

/// Counters for one virtual host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Requests answered or in progress.
    pub requests: usize,
    /// Requests in progress now.
    pub in_flight: usize,
    /// The most requests in progress at once.
    pub max_in_flight: usize,
    /// 401 answers to requests that carried credentials.
    pub failed_logins: usize,
    /// Answers per status.
    pub statuses: BTreeMap<u16, usize>,
}

#[derive(Debug)]
struct HostRt {
    spec: HostSpec,
    failures: VecDeque<Duration>,
    banned_until: Option<Duration>,
    scripts: Vec<(String, VecDeque<Scripted>)>,
}

#[derive(Debug, Default)]
struct State {
    hosts: BTreeMap<String, HostRt>,
    stats: BTreeMap<String, HostStats>,
    in_flight_total: usize,
    max_in_flight_total: usize,
    log: Vec<RequestRecord>,
    connects: Vec<ConnectRecord>,
}

/// State shared by the listener, the proxy and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    latency: Duration,
    git: PathBuf,
    root: PathBuf,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `name` is one of the served host names.
    fn serves(&self, name: &str) -> bool {
        let st = self.lock();
        st.hosts.contains_key(name)
            || (name == "api.github.com" && st.hosts.contains_key("github.com"))
    }

    fn record_connect(&self, target: String, allowed: bool) {
        self.lock().connects.push(ConnectRecord { target, allowed });
    }
}

/// The directory for a repository path (a `*` pattern maps to one shared directory).
fn backing_dir(path: &str) -> String {
    path.replace('*', "__any__")
}

/// A running stand-in.
#[derive(Debug)]
pub struct GitHost {
    shared: Arc<Shared>,
    proxy_addr: SocketAddr,
    ca_pem: String,
    names: Vec<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for GitHost {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Find a usable `git` with `git http-backend`: `Ok(path)` of the git binary, or why not.
pub fn find_git() -> Result<PathBuf, GitHostError> {
    let git = PathBuf::from("git");
    let out = std::process::Command::new(&git)
        .arg("--exec-path")
        .output()
        .map_err(|e| GitHostError::Git(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(GitHostError::Git("`git --exec-path` failed".into()));
    }
    let exec = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !exec.join("git-http-backend").exists() {
        return Err(GitHostError::Git(format!("no git-http-backend in {}", exec.display())));
    }
    Ok(git)
}

/// Start the stand-in on 127.0.0.1, served on the current tokio runtime: repositories are
/// created (with `git`), the certificate generated, the HTTPS listener and the proxy bound.
pub async fn start(opts: GitHostOptions) -> Result<GitHost, GitHostError> {
    let git = find_git()?;
    let mut names: Vec<String> = Vec::new();
    for h in &opts.hosts {
        let name = h.name.to_ascii_lowercase();
        if names.contains(&name) || name.is_empty() || name.contains(['/', ':', '@', ' ']) {
            return Err(GitHostError::Spec(format!("bad or duplicate host name {name:?}")));
        }
        names.push(name);
    }
    if names.iter().any(|n| n == "github.com") && !names.iter().any(|n| n == "api.github.com") {
        names.push("api.github.com".into());
    }
    let dir = tempfile::tempdir().map_err(|source| GitHostError::Io {
        what: "cannot make a temporary directory".into(),
        source,
    })?;
    let root = dir.path().to_path_buf();
    {
        let git = git.clone();
        let root = root.clone();
        let hosts = opts.hosts.clone();
        tokio::task::spawn_blocking(move || repos::create_all(&git, &root, &hosts))
            .await
            .map_err(|e| GitHostError::Git(format!("repository setup panicked: {e}")))??;
    }
    let (ca_pem, config) = tls::server_config(&names)?;
    let bind = |what: &'static str| async move {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|source| GitHostError::Io { what: format!("cannot bind the {what}"), source })
    };
    let https = bind("HTTPS listener").await?;
    let proxy = bind("proxy").await?;
    let io = |what: &'static str| move |source| GitHostError::Io { what: what.into(), source };
    let https_addr = https.local_addr().map_err(io("HTTPS listener address"))?;
    let proxy_addr = proxy.local_addr().map_err(io("proxy address"))?;

    let mut state = State::default();
    for h in opts.hosts {
        let name = h.name.to_ascii_lowercase();
        state.hosts.insert(
            name,
            HostRt { spec: h, failures: VecDeque::new(), banned_until: None, scripts: Vec::new() },
        );
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        clock: opts.clock,
        latency: opts.latency,
        git,
        root,
    });
    let (listener, accept_task) =
        tls::TlsListener::new(https, config).map_err(io("TLS listener"))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = serve::router(Arc::clone(&shared));
    let serve_task = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::error!("git host stand-in stopped: {e}");
        }
    });
    let proxy_task = proxy::spawn(proxy, Arc::clone(&shared), https_addr);
    Ok(GitHost {
        shared,
        proxy_addr,
        ca_pem,
        names,
        shutdown: Some(tx),
        tasks: vec![accept_task, serve_task, proxy_task],
        _dir: dir,
    })
}

impl GitHost {
    /// `http://127.0.0.1:PORT`, for `HTTPS_PROXY`.
    pub fn proxy_url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}", self.proxy_addr))
            .expect("an http://ip:port URL parses")
    }

    /// The CA certificate (PEM) that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Write the CA PEM to `path` (for `--ca-cert` or `GIT_SSL_CAINFO`).
    pub fn write_ca_pem(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.ca_pem)
    }

    /// Every host name served (and in the certificate).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Environment for a `git` child process that must reach the stand-in: the proxy, the
    /// CA, no user configuration and no prompts.
    pub fn git_env(&self, ca_path: &Path, home: &Path) -> Vec<(String, String)> {
        let proxy = self.proxy_url().to_string();
        vec![
            ("https_proxy".into(), proxy.clone()),
            ("HTTPS_PROXY".into(), proxy),
            ("no_proxy".into(), String::new()),
            ("NO_PROXY".into(), String::new()),
            ("GIT_SSL_CAINFO".into(), ca_path.display().to_string()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_TERMINAL_PROMPT".into(), "0".into()),
            ("HOME".into(), home.display().to_string()),
            ("XDG_CONFIG_HOME".into(), home.display().to_string()),
        ]
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// Counters for one host name (zero when it was never asked).
    pub fn host_stats(&self, host: &str) -> HostStats {
        self.shared.lock().stats.get(host).cloned().unwrap_or_default()
    }

    /// The most requests in progress at once, over all hosts.
    pub fn max_in_flight_total(&self) -> usize {
        self.shared.lock().max_in_flight_total
    }

    /// Every request the proxy saw, in order.
    pub fn connects(&self) -> Vec<ConnectRecord> {
        self.shared.lock().connects.clone()
    }

    /// Forget the counters, the request log and the proxy records.
    pub fn reset_stats(&self) {
        let mut st = self.shared.lock();
        st.stats.clear();
        st.log.clear();
        st.connects.clear();
        st.max_in_flight_total = st.in_flight_total;
    }

    /// Answer the next requests under `path_prefix` on `host` with `answers`, in order, then
    /// normally again.
    pub fn script(&self, host: &str, path_prefix: &str, answers: Vec<Scripted>) {
        let mut st = self.shared.lock();
        if let Some(h) = st.hosts.get_mut(host) {
            h.scripts.push((path_prefix.to_owned(), answers.into()));
        }
    }

    /// Change an account's access to a repository (the path as in its [`RepoSpec`]).
    pub fn set_access(&self, host: &str, repo: &str, account: &str, access: Access) {
        let mut st = self.shared.lock();
        let Some(h) = st.hosts.get_mut(host) else { return };
        let Some(r) = h.spec.repos.iter_mut().find(|r| r.path == repo) else { return };
        r.read.retain(|a| a != account);
        r.write.retain(|a| a != account);
        match access {
            Access::None => {}
            Access::Read => r.read.push(account.to_owned()),
            Access::Write => r.write.push(account.to_owned()),
        }
    }

    /// Change an account's token state and expiry.
    pub fn set_token(
        &self,
        host: &str,
        account: &str,
        state: TokenState,
        expires_at: Option<OffsetDateTime>,
    ) {
        let mut st = self.shared.lock();
        let Some(h) = st.hosts.get_mut(host) else { return };
        if let Some(a) = h.spec.accounts.iter_mut().find(|a| a.name == account) {
            a.state = state;
            a.expires_at = expires_at;
        }
    }

    /// Stop serving.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::task::yield_now().await;
    }
}
