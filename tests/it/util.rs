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
