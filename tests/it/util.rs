//! Test helpers: a clean-environment command builder for the real binary, and one test's
//! world ([`Env`]): the GitLab simulator and, for every source host, the git host stand-in
//! behind its CONNECT proxy.
//!
//! No test sends a token to a real host. Every command gets `HTTPS_PROXY` (and the other
//! proxy variables) pointing at a local proxy: [`Env`]'s stand-in, which serves the fixture's
//! git hosts and refuses (and records) anything else, or, for commands built without an
//! `Env`, [`refusing_proxy`], which refuses everything. Loopback addresses (the simulator)
//! are reached directly by glmirror itself.

use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Environment variables every test clears, so the developer's own settings never leak in.
pub const CLEARED_ENV: &[&str] = &[
    "GITLAB_URL",
    "GITLAB_HOST",
    "CI_SERVER_URL",
    "GITLAB_TOKEN",
    "GITLAB_PRIVATE_TOKEN",
    "MIRROR_TOKEN",
    "GLMIRROR_LOG",
    "RUST_LOG",
    "NO_COLOR",
];

/// The proxy variables every command gets (pointing at a local proxy, never the developer's).
const PROXY_ENV: &[&str] = &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

/// The `glmirror` binary with a clean environment, its proxy set to [`refusing_proxy`].
pub fn glmirror() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_glmirror"));
    for name in CLEARED_ENV {
        cmd.env_remove(name);
    }
    with_proxy(&mut cmd, &refusing_proxy());
    cmd
}

/// Point every proxy variable at `proxy` and clear `NO_PROXY`.
fn with_proxy(cmd: &mut Command, proxy: &str) {
    for name in PROXY_ENV {
        cmd.env(name, proxy);
    }
    for name in ["HTTP_PROXY", "http_proxy"] {
        cmd.env_remove(name);
    }
    cmd.env("NO_PROXY", "").env("no_proxy", "");
}

/// A local HTTP proxy (one per test binary) that answers every request with 403 and
/// records its target: where a command's traffic goes when no stand-in serves it.
pub fn refusing_proxy() -> String {
    static PROXY: OnceLock<String> = OnceLock::new();
    PROXY
        .get_or_init(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            std::thread::spawn(move || {
                for conn in listener.incoming().flatten() {
                    std::thread::spawn(move || refuse(conn));
                }
            });
            format!("http://{addr}")
        })
        .clone()
}

/// Every target [`refusing_proxy`] refused so far (all tests of this binary).
pub fn refused_targets() -> Vec<String> {
    REFUSED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

static REFUSED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn refuse(mut conn: std::net::TcpStream) {
    use std::io::{Read, Write};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let first = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_owned();
    let target = first.split_whitespace().nth(1).unwrap_or("").to_owned();
    REFUSED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(target);
    let _ =
        conn.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

/// Whether `git` (with http-backend) is usable for the stand-in; without it, say the test is
/// skipped — or fail when `GLMIRROR_REQUIRE_GIT=1` (CI sets it).
pub fn git_or_skip(test: &str) -> bool {
    match glmirror::githost::find_git() {
        Ok(_) => true,
        Err(e) if std::env::var("GLMIRROR_REQUIRE_GIT").as_deref() == Ok("1") => {
            panic!("{test}: GLMIRROR_REQUIRE_GIT=1 but {e}")
        }
        Err(e) => {
            eprintln!("skipping {test}: {e} (set GLMIRROR_REQUIRE_GIT=1 to make this a failure)");
            false
        }
    }
}

use std::path::{Path, PathBuf};
use std::process::Output;

use glmirror::githost::{self, GitHost};
use glmirror::sim::{self, Fixture, LoggedRequest, RemoteAccept, SimHandle, SimOptions};

/// A service token that must never appear in any output or file.
pub const CANARY: &str = "ghp_CANARY0service0token0must0never0leak";

/// One test's world: a simulator (in this process, on its own runtime), the git host
/// stand-in for the fixture's remote hosts (derived from the same fixture, so both agree on
/// who may read what; it also accepts the simulator's `remote_accepts`, the canary first, as
/// account `svc`), a temporary working directory, and commands pointed at all three.
///
/// Without `git` (and without `GLMIRROR_REQUIRE_GIT=1`) there is no stand-in: commands get
/// the refusing proxy, `apply` gets `--no-probe` and `plan` loses `--probe`, with a note.
pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub sim: Option<SimHandle>,
    pub git: Option<GitHost>,
    pub dir: tempfile::TempDir,
    /// The stand-in's CA (`--ca-cert`), outside `dir`.
    aux: tempfile::TempDir,
}

impl Env {
    /// The demo fixture; github.com accepts [`CANARY`] as token-as-username.
    pub fn demo() -> Env {
        Env::with(|_| {})
    }

    /// The demo fixture with options adjusted by `adjust`.
    pub fn with(adjust: impl FnOnce(&mut SimOptions)) -> Env {
        let mut opts = SimOptions::new(Fixture::demo());
        opts.update_delay_ms = 20;
        opts.remote_accepts.push(RemoteAccept {
            host: "github.com".into(),
            user: Some(CANARY.into()),
            password: None,
        });
        adjust(&mut opts);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let hosts = githost::fixture::from_fixture(&opts.fixture, &opts.remote_accepts);
        let aux = tempfile::tempdir().expect("tempdir");
        let git = git_or_skip("the git host stand-in (probes run with --no-probe)").then(|| {
            let host = rt.block_on(githost::start(hosts)).expect("the git host stand-in starts");
            host.write_ca_pem(&aux.path().join("ca.pem")).expect("write CA");
            host
        });
        let sim = rt.block_on(sim::start(opts)).expect("simulator starts");
        Env { rt, sim: Some(sim), git, dir: tempfile::tempdir().expect("tempdir"), aux }
    }

    /// The stand-in (tests that need it call [`git_or_skip`] first).
    pub fn githost(&self) -> &GitHost {
        self.git.as_ref().expect("the git host stand-in runs (git is on PATH)")
    }

    /// The stand-in's CA file.
    pub fn ca(&self) -> PathBuf {
        self.aux.path().join("ca.pem")
    }

    /// Point `cmd` at the stand-in for `args`: its proxy in the environment and its CA as
    /// `--ca-cert` (unless `args` gives one), or, without a stand-in, the refusing proxy and
    /// no probes. Returns the arguments to pass.
    pub fn reach(&self, cmd: &mut Command, args: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        match &self.git {
            Some(g) => {
                with_proxy(cmd, g.proxy_url().as_str());
                if !args.contains(&"--ca-cert") {
                    out.splice(0..0, ["--ca-cert".to_owned(), self.ca().display().to_string()]);
                }
            }
            None => {
                with_proxy(cmd, &refusing_proxy());
                out.retain(|a| a != "--probe");
                if args.first() == Some(&"apply") {
                    out.push("--no-probe".into());
                }
            }
        }
        out
    }

    pub fn sim(&self) -> &SimHandle {
        self.sim.as_ref().expect("simulator running")
    }

    pub fn base_url(&self) -> String {
        self.sim().base_url().to_string()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `glmirror ARGS` in the test directory, against the simulator, as its admin, with the
    /// canary as the service token.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = glmirror();
        let args = self.reach(&mut cmd, args);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("GITLAB_URL", self.base_url())
            .env("GITLAB_TOKEN", self.sim().admin_token())
            .env("MIRROR_TOKEN", CANARY);
        cmd
    }

    /// Run and check that the canary is in neither stdout nor stderr.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("glmirror runs");
        assert_no_canary(&out);
        out
    }

    /// Requests that could change state.
    pub fn writes(&self) -> Vec<LoggedRequest> {
        self.sim().request_log().into_iter().filter(|r| r.method != "GET").collect()
    }

    /// Every file in the test directory is free of the canary.
    pub fn assert_files_clean(&self) {
        for entry in walk(self.dir.path()) {
            let bytes = std::fs::read(&entry).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "canary token found in {}",
                entry.display()
            );
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Neither stdout nor stderr carries the canary.
pub fn assert_no_canary(out: &Output) {
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains(CANARY), "canary token leaked in output:\n{text}");
}

/// stdout and stderr as text, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
