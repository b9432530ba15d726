//! The error of turning arguments, environment and configuration files into requests. It
//! says what is wrong and, where a fix is known, how to fix it; `crate::error` decides the
//! exit code.

use std::path::PathBuf;

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that cannot work (bad flag, bad file contents, missing setting).
    #[error("{message}")]
    Invalid {
        /// One line.
        message: String,
        /// A next step, printed on its own line.
        hint: Option<String>,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", crate::redact::path_excerpt(path))]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// A bad value, without a hint.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ConfigError::Invalid { message: message.into(), hint: None }
    }

    /// A bad value, with a hint line.
    pub(crate) fn invalid_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        ConfigError::Invalid { message: message.into(), hint: Some(hint.into()) }
    }

    /// A file that could not be read.
    pub(crate) fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConfigError::Read { path: path.into(), source }
    }

    /// The hint line, if a fix is known.
    pub(crate) fn hint(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { hint, .. } => hint.as_deref(),
            ConfigError::Read { .. } => None,
        }
    }
}
