//! Logging setup: `tracing` to stderr, never stdout (stdout carries data only).
//!
//! `-q` shows errors only, default warnings, `-v` info, `-vv` debug, `-vvv` trace.
//! `GLMIRROR_LOG` overrides `RUST_LOG`, which overrides the flags. `NO_COLOR` is respected.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. Safe to call once per process.
pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = std::env::var("GLMIRROR_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(verbose > 0)
        .without_time()
        .try_init();
}
