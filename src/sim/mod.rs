//! The GitLab REST API simulator: an axum server over in-memory state seeded from a JSON
//! [`Fixture`], reproducing the mirror-related behaviour in docs/gitlab-behaviour.md (pull and push
//! mirror APIs, masking, permissions, pagination, rate limits, Silent Mode), with fault knobs.
//!
//! It is written from the fact sheet with its own payload shapes and does not use the client
//! in `src/gitlab`, so the two cannot drift together unnoticed. Its answers are held to
//! GitLab's own JSON Schemas, OpenAPI documents and doc examples by `tests/it/contract.rs`
//! (`docs/gitlab-contract.md`); [`ROUTES`] lists every route it serves.
//!
//! Besides `/api/v4`, the simulator answers three control endpoints that exist only here, never
//! on a real GitLab: `GET /__sim/requests` (the request log), `GET /__sim/state` (a
//! [`StateSnapshot`], stored credentials included) and `PUT /__sim/faults` (a JSON [`Faults`],
//! e.g. `{"rate_limit_per_minute": 10, "rate_limit_shape": "application", "seed": 1}`). They
//! need no token and are never subject to faults.
//!
//! Choices where GitLab's behaviour is only inferred (docs/gitlab-behaviour.md "\[I\]") are marked `[I]`
//! in comments. The main ones: remote hosts the fixture does not list behave as public
//! repositories that accept any credentials; an SCP-like URL is refused with the scheme
//! message; the `validate_pull_mirror_url` probe on `PUT …/mirror/pull` is off unless the
//! fixture turns it on; the old `PUT /projects/:id` probe refuses `ssh://` and credentials the
//! remote does not accept (422); Silent Mode makes triggered updates do nothing.

mod faults;
pub mod fixture;
mod generate;
mod routes;
mod server;
pub mod state;
pub(crate) mod urls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub use fixture::Fixture;
pub use generate::generate;
pub use routes::{ROUTES, Route, find_route};
pub use state::StateSnapshot;

/// Errors reading a fixture.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The file could not be read.
    #[error("cannot read fixture {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid fixture.
    #[error("invalid fixture {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The fixture is inconsistent (unknown ids, duplicates).
    #[error("invalid fixture: {0}")]
    Invalid(String),
}

/// Which 429 answer a rate limit gives (docs/gitlab-behaviour.md §6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitShape {
    /// Rack::Attack: plain text `Retry later` with `Retry-After` and `RateLimit-*` headers.
    #[default]
    Throttle,
    /// Application limit: JSON `{"message":{"error":"This endpoint has been requested too
    /// many times. Try again later."}}` and no headers at all.
    Application,
    /// Alternate between the two, starting with `Throttle`.
    Alternate,
}

/// Fault knobs. All random choices come from one generator seeded with `seed`, drawn in
/// request arrival order, so a sequential client sees the same faults every run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added latency per API request.
    pub latency_ms: u64,
    /// Fraction of API requests answered with a 500, 502 or 503.
    pub error_rate: f64,
    /// Fraction of API requests whose connection is closed without any answer.
    pub drop_rate: f64,
    /// Requests per minute per token (or per client address without a token).
    pub rate_limit_per_minute: Option<u32>,
    /// The shape of the 429 answers.
    pub rate_limit_shape: RateLimitShape,
    /// Answer every API call with a 302 to this origin (e.g. `https://other.example`).
    pub redirect_to: Option<String>,
    /// After this many successful write requests (counted from when these faults were set),
    /// every further write hangs forever, so a test can kill a client at an exact point.
    pub write_stall_after: Option<u32>,
    /// Projects (by id) whose mirror endpoints (`…/mirror/pull`, `…/remote_mirrors…`) answer
    /// 500 forever, as GitLab does when it cannot decrypt a project's import data (after a
    /// change of its secrets). The project lists still show them.
    pub broken_projects: Vec<u64>,
    /// Projects (by id) deleted mid-run: every `/projects/:id…` endpoint answers 404
    /// "Project Not Found" while the project lists still show them.
    pub vanished_projects: Vec<u64>,
    /// Seed for the random choices.
    pub seed: u64,
}

/// An extra credential a remote git host accepts (for example a test's canary service token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteAccept {
    /// The remote host, e.g. `github.com`.
    pub host: String,
    /// Username; `None` accepts any username with this password.
    pub user: Option<String>,
    /// Password; `None` accepts `user` alone (a token as the username).
    pub password: Option<String>,
}

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The instance.
    pub fixture: Fixture,
    /// Fault knobs.
    pub faults: Faults,
    /// Override the fixture's GitLab version (e.g. `17.5.0` has no `PUT …/mirror/pull`).
    pub gitlab_version: Option<String>,
    /// A triggered mirror update finishes (or fails) in the background after this long.
    pub update_delay_ms: u64,
    /// Extra credentials remotes accept.
    pub remote_accepts: Vec<RemoteAccept>,
}

impl SimOptions {
    /// Options for a fixture with no faults and a 50 ms update delay.
    pub fn new(fixture: Fixture) -> SimOptions {
        SimOptions {
            fixture,
            faults: Faults::default(),
            gitlab_version: None,
            update_delay_ms: 50,
            remote_accepts: Vec::new(),
        }
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Path (percent-encoded as received).
    pub path: String,
    /// Raw query string (tokens in it are redacted).
    pub(crate) query: Option<String>,
    /// Status answered; 0 when the connection was dropped or the request stalled.
    pub status: u16,
    /// The `Sudo` header, if any.
    pub sudo: Option<String>,
    /// Username behind the token (before `Sudo`), if the token was valid.
    pub(crate) user: Option<String>,
    /// RFC 3339 arrival time.
    pub(crate) at: String,
}

/// A running simulator.
pub struct SimHandle {
    base_url: url::Url,
    admin_token: String,
    maintainer_token: String,
    shared: Arc<state::Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT/` (no `/api/v4`).
    pub fn base_url(&self) -> url::Url {
        self.base_url.clone()
    }

    /// A token of an admin user with the `api` and `sudo` scopes (simulator-only value).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A token of a non-admin user with the `api` scope (simulator-only value).
    pub fn maintainer_token(&self) -> &str {
        &self.maintainer_token
    }

    /// Every request so far, in arrival order.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// The whole state, stored credentials included.
    pub fn snapshot(&self) -> StateSnapshot {
        self.shared.lock().snapshot()
    }

    /// Replace the fault knobs. The random generator is re-seeded with `f.seed`, and the
    /// rate-limit windows and the write count behind `write_stall_after` start again from zero.
    pub fn set_faults(&self, f: Faults) {
        faults::set(&mut self.shared.lock(), f);
    }

    /// Stop serving. Requests still hanging (stalls) are abandoned after a short grace time.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(std::time::Duration::from_secs(1), &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// Tokens the handle reports: the first admin token with `api`, the first non-admin one.
fn pick_tokens(fixture: &Fixture) -> (String, String) {
    let usable = |t: &&fixture::Token| !t.revoked && t.scopes.iter().any(|s| s == "api");
    let is_admin = |t: &fixture::Token| {
        fixture.users.iter().any(|u| u.id == t.user_id && u.is_admin && u.state == "active")
    };
    let admin = fixture.tokens.iter().filter(usable).find(|t| is_admin(t));
    let maintainer = fixture.tokens.iter().filter(usable).find(|t| !is_admin(t));
    (
        admin.map(|t| t.token.clone()).unwrap_or_default(),
        maintainer.map(|t| t.token.clone()).unwrap_or_default(),
    )
}

fn external_url(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

fn build(opts: SimOptions, addr: SocketAddr) -> Arc<state::Shared> {
    let st = state::State::new(
        opts.fixture,
        opts.faults,
        opts.gitlab_version,
        opts.remote_accepts,
        external_url(addr),
    );
    Arc::new(state::Shared { state: Mutex::new(st), update_delay_ms: opts.update_delay_ms })
}

/// Start a simulator on `127.0.0.1:0`, served on the current tokio runtime.
pub async fn start(opts: SimOptions) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (admin_token, maintainer_token) = pick_tokens(&opts.fixture);
    let shared = build(opts, addr);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serving = Arc::clone(&shared);
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.await;
        };
        if let Err(e) = server::serve_shared(listener, serving, stop).await {
            tracing::error!("simulator stopped: {e}");
        }
    });
    let base_url = url::Url::parse(&format!("{}/", external_url(addr)))
        .expect("an http://ip:port/ URL always parses");
    Ok(SimHandle { base_url, admin_token, maintainer_token, shared, shutdown: Some(tx), task })
}

/// Serve a simulator on an already-bound listener until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, opts: SimOptions) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let shared = build(opts, addr);
    server::serve_shared(listener, shared, std::future::pending()).await
}

/// The admin and maintainer tokens a fixture provides (what [`SimHandle`] reports).
pub fn fixture_tokens(fixture: &Fixture) -> (String, String) {
    pick_tokens(fixture)
}
