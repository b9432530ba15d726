//! Test helpers: a clean-environment command builder for the real binary.

use std::process::Command;

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

/// The `glmirror` binary with a clean environment.
pub fn glmirror() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_glmirror"));
    for name in CLEARED_ENV {
        cmd.env_remove(name);
    }
    cmd
}

use std::path::{Path, PathBuf};
use std::process::Output;

use glmirror::sim::{self, Fixture, LoggedRequest, RemoteAccept, SimHandle, SimOptions};

/// A service token that must never appear in any output or file.
pub const CANARY: &str = "ghp_CANARY0service0token0must0never0leak";

/// One test's world: a simulator (in this process, on its own runtime), a temporary
/// working directory, and commands pointed at both.
pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub sim: Option<SimHandle>,
    pub dir: tempfile::TempDir,
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
        let sim = rt.block_on(sim::start(opts)).expect("simulator starts");
        Env { rt, sim: Some(sim), dir: tempfile::tempdir().expect("tempdir") }
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
