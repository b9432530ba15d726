//! [`JournalError`]: what can go wrong with a journal, and the hint shown for each case (`crate::error`
//! decides the exit code).

use std::io;
use std::path::PathBuf;

use super::FORMAT_VERSION;

/// Errors from opening, reading or writing a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("{action} {}: {source}", crate::redact::path_excerpt(path))]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The journal's directory does not exist (it is not created for you).
    #[error(
        "journal {}: directory {} does not exist",
        crate::redact::path_excerpt(path),
        crate::redact::path_excerpt(dir)
    )]
    NoDirectory {
        /// The journal path.
        path: PathBuf,
        /// Its missing directory.
        dir: PathBuf,
    },
    /// The journal was written for another plan file.
    #[error(
        "journal {} belongs to another plan ({plan_path}, sha256 {}…), not this one (sha256 {}…)",
        crate::redact::path_excerpt(journal),
        short(journal_plan_sha256),
        short(plan_sha256)
    )]
    OtherPlan {
        /// The journal path.
        journal: PathBuf,
        /// The plan path recorded in the journal header.
        plan_path: String,
        /// The plan hash recorded in the journal header.
        journal_plan_sha256: String,
        /// The hash of the plan given now.
        plan_sha256: String,
    },
    /// A complete line that is not a valid entry.
    #[error("{}:{line}: corrupt journal entry: {message}", crate::redact::path_excerpt(path))]
    Corrupt {
        /// The journal path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The header names a format this version cannot read.
    #[error(
        "{}: journal format version {version} is not supported (this glmirror writes {FORMAT_VERSION})",
        crate::redact::path_excerpt(path)
    )]
    UnsupportedVersion {
        /// The journal path.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// An entry still contained URL credentials; it was not written.
    #[error(
        "refusing to write a journal entry for {row} with credentials in field `{field}` (nothing was written)"
    )]
    Credentials {
        /// The row (or `journal header`).
        row: String,
        /// The JSON field that held them.
        field: String,
    },
    /// Another process (or another open in this one) holds the lock on the journal file.
    #[error("journal {} is in use by another `glmirror apply`", crate::redact::path_excerpt(path))]
    InUse {
        /// The journal path.
        path: PathBuf,
    },
    /// The journal path is not a regular file (a FIFO, a device, a directory).
    #[error("journal {} is not a regular file", crate::redact::path_excerpt(path))]
    NotAFile {
        /// The journal path.
        path: PathBuf,
    },
    /// A live process holds the lock file an older glmirror (0.1) kept next to the journal.
    #[error(
        "journal is in use by another glmirror process (pid {pid}, lock file {})",
        crate::redact::path_excerpt(lock)
    )]
    Locked {
        /// The lock file.
        lock: PathBuf,
        /// The pid written in it.
        pid: u32,
    },
    /// The lock file exists but does not hold a pid.
    #[error("lock file {} exists but does not name a process", crate::redact::path_excerpt(lock))]
    LockUnreadable {
        /// The lock file.
        lock: PathBuf,
    },
    /// Writing an entry failed; the journal accepts no more entries in this run.
    #[error("cannot write journal {}: {message}", crate::redact::path_excerpt(path))]
    Write {
        /// The journal path.
        path: PathBuf,
        /// The OS error, or the earlier one that stopped the writer.
        message: String,
    },
    /// The journal was closed (its writer is gone).
    #[error("journal {} is closed", crate::redact::path_excerpt(path))]
    Closed {
        /// The journal path.
        path: PathBuf,
    },
    /// An entry could not be serialized (a bug).
    #[error("cannot encode a journal entry: {0}")]
    Encode(#[from] serde_json::Error),
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

impl JournalError {
    /// A next step for the user, if one is known.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            JournalError::NoDirectory { dir, .. } => Some(format!(
                "create {} first, or pass another --journal path",
                crate::redact::path_excerpt(dir)
            )),
            JournalError::OtherPlan { journal, .. } => Some(format!(
                "that plan's run stopped in the middle of a row, which only that plan can \
                 repair: rerun apply with that plan to finish it, or use another --journal; \
                 delete {} only once its plan is abandoned",
                crate::redact::path_excerpt(journal)
            )),
            JournalError::InUse { .. } => Some(
                "wait for the other `glmirror apply` to finish: the lock goes away with that \
                 process, however it ends"
                    .to_owned(),
            ),
            JournalError::NotAFile { .. } => {
                Some("pass --journal a path to a regular file (or a new one)".to_owned())
            }
            JournalError::Corrupt { .. } => Some(
                "the journal was edited or damaged: restore that line; without the journal, \
                 plan again before applying (an old plan would see its applied rows as drifted, \
                 and a push mirror caught between create and delete would be replaced twice)"
                    .to_owned(),
            ),
            JournalError::Locked { lock, .. } => Some(format!(
                "an older glmirror may be applying with this journal: wait for it to finish; if \
                 no such process is running, delete {}",
                crate::redact::path_excerpt(lock)
            )),
            JournalError::LockUnreadable { lock } => Some(format!(
                "if no `glmirror apply` is running on this journal, delete {}",
                crate::redact::path_excerpt(lock)
            )),
            JournalError::Credentials { .. } | JournalError::Encode(_) => {
                Some("this is a bug in glmirror; please report it".to_owned())
            }
            JournalError::Write { .. } => Some(
                "the entries before the failure are safe; fix the disk problem and rerun \
                 `glmirror apply` to resume"
                    .to_owned(),
            ),
            JournalError::Io { .. }
            | JournalError::UnsupportedVersion { .. }
            | JournalError::Closed { .. } => None,
        }
    }
}
