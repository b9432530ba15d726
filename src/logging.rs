//! Logging setup: `tracing` to stderr, never stdout (stdout carries data only).
//!
//! `-q` shows errors only, default warnings, `-v` info, `-vv` debug, `-vvv` trace.
//! `GLMIRROR_LOG` overrides `RUST_LOG`, which overrides the flags. `NO_COLOR` is respected.
//! Every line goes through the scrubber (`redact::scrub`) on its way to stderr, so a log
//! line quoting GitLab's text never shows a token glmirror holds or a URL's credentials.

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// stderr, scrubbed: each formatted event is one `write` call (the fmt layer formats a whole
/// event into a buffer first), which is scrubbed as a whole before it is written.
#[derive(Clone, Copy, Default)]
pub(crate) struct ScrubbedStderr;

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().lock().write_all(crate::redact::scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedStderr
    }
}

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
        .with_writer(ScrubbedStderr)
        .with_ansi(color)
        .with_target(verbose > 0)
        .without_time()
        .try_init();
}
