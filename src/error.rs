//! The top-level error type, exit codes, and the mapping between them.
//!
//! Modules return their own typed errors (`ConfigError`, `PlanError`, `JournalError`,
//! `GitLabError`); `AppError` wraps them, and this file is the one place that decides the exit
//! code and the hint of each. Messages never contain a token: secrets are `SecretString`s and
//! URLs in messages go through `redact::mask_userinfo`.

use std::path::PathBuf;

use crate::apply::journal::JournalError;

/// Process exit codes, as documented in the README's "Exit codes" section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success, or nothing to do.
    Success,
    /// Fatal error: nothing more was attempted.
    Fatal,
    /// Usage error: bad flags, or a plan file that does not validate.
    Usage,
    /// Finished, but some rows failed or drifted (or `status` found unhealthy mirrors).
    RowsFailed,
    /// Interrupted (journal flushed; rerunning resumes).
    Interrupted,
}

impl ExitCode {
    /// The numeric process status.
    pub(crate) fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Fatal => 1,
            ExitCode::Usage => 2,
            ExitCode::RowsFailed => 3,
            ExitCode::Interrupted => 130,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// Everything that can end a command early.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The user asked for something that cannot work (bad flag value, bad plan file, …).
    #[error("{message}")]
    Usage {
        /// One line, no trailing period needed.
        message: String,
        /// A next step, printed on its own line.
        hint: Option<String>,
    },
    /// Something went wrong that is not the user's input (GitLab unreachable, I/O, …).
    #[error("{message}")]
    Fatal {
        /// One line.
        message: String,
        /// A next step, printed on its own line.
        hint: Option<String>,
    },
    /// Reading or writing a local file failed.
    #[error("{action} {}: {source}", crate::redact::path_excerpt(path))]
    Io {
        /// What was being done ("cannot read", "cannot write").
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A GitLab API call failed.
    #[error(transparent)]
    GitLab(#[from] crate::gitlab::GitLabError),
    /// Arguments, environment or a configuration file cannot work.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A plan file cannot be used (always before any write).
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// The apply journal cannot be opened, read or written.
    #[error(transparent)]
    Journal(#[from] crate::apply::journal::JournalError),
}

impl AppError {
    /// A usage error without a hint.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        AppError::Usage { message: message.into(), hint: None }
    }

    /// A usage error with a hint line.
    pub(crate) fn usage_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        AppError::Usage { message: message.into(), hint: Some(hint.into()) }
    }

    /// A fatal error without a hint.
    pub(crate) fn fatal(message: impl Into<String>) -> Self {
        AppError::Fatal { message: message.into(), hint: None }
    }

    /// A fatal error with a hint line.
    pub(crate) fn fatal_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        AppError::Fatal { message: message.into(), hint: Some(hint.into()) }
    }

    /// An I/O error on a file.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        AppError::Io { action, path: path.into(), source }
    }

    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            AppError::Usage { .. } | AppError::Plan(_) => ExitCode::Usage,
            AppError::Config(crate::config::ConfigError::Invalid { .. }) => ExitCode::Usage,
            AppError::Config(crate::config::ConfigError::Read { .. }) => ExitCode::Fatal,
            // A journal that is not this plan's, or a path that cannot hold one, is the
            // user's input; everything else (lock, disk, format) is not.
            AppError::Journal(
                JournalError::OtherPlan { .. }
                | JournalError::NoDirectory { .. }
                | JournalError::NotAFile { .. },
            ) => ExitCode::Usage,
            AppError::Fatal { .. }
            | AppError::Io { .. }
            | AppError::GitLab(_)
            | AppError::Journal(_) => ExitCode::Fatal,
        }
    }

    /// Whether this is stdout closed by the reader (`glmirror status | head`): not an error
    /// worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, AppError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The hint line to print under the error, if a fix is known.
    pub fn hint(&self) -> Option<String> {
        match self {
            AppError::Usage { hint, .. } | AppError::Fatal { hint, .. } => hint.clone(),
            AppError::GitLab(e) => e.hint(),
            AppError::Config(e) => e.hint().map(str::to_owned),
            AppError::Plan(e) => e.hint.clone(),
            AppError::Journal(e) => e.hint(),
            AppError::Io { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_spec() {
        assert_eq!(ExitCode::Success.code(), 0);
        assert_eq!(ExitCode::Fatal.code(), 1);
        assert_eq!(ExitCode::Usage.code(), 2);
        assert_eq!(ExitCode::RowsFailed.code(), 3);
        assert_eq!(ExitCode::Interrupted.code(), 130);
    }

    #[test]
    fn errors_map_to_codes() {
        assert_eq!(AppError::usage("x").exit_code(), ExitCode::Usage);
        assert_eq!(AppError::fatal("x").exit_code(), ExitCode::Fatal);
        let io = AppError::io("cannot read", "/nope", std::io::ErrorKind::NotFound.into());
        assert_eq!(io.exit_code(), ExitCode::Fatal);
        assert_eq!(AppError::usage_hint("x", "do y").hint().as_deref(), Some("do y"));
    }

    #[test]
    fn journal_errors_map_to_codes_and_keep_their_hints() {
        let cases: Vec<(JournalError, ExitCode)> = vec![
            (JournalError::NotAFile { path: "/j".into() }, ExitCode::Usage),
            (JournalError::NoDirectory { path: "/d/j".into(), dir: "/d".into() }, ExitCode::Usage),
            (
                JournalError::Io {
                    action: "cannot read",
                    path: "/j".into(),
                    source: std::io::ErrorKind::PermissionDenied.into(),
                },
                ExitCode::Fatal,
            ),
            (JournalError::LockUnreadable { lock: "/j.lock".into() }, ExitCode::Fatal),
        ];
        for (err, code) in cases {
            let hint = err.hint();
            let message = err.to_string();
            let app = AppError::from(err);
            assert_eq!(app.exit_code(), code, "{message}");
            assert_eq!(app.hint(), hint, "{message}");
            assert_eq!(app.to_string(), message);
        }
    }
}
