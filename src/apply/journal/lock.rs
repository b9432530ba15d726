//! The journal's lock file, `<journal>.lock`: it holds the pid of the `apply` that has the
//! journal open, keeps a second one away, and is taken over once its process is gone.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::JournalError;

/// The path of a journal's lock file: `<journal>.lock`.
pub fn lock_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Whether a process with this pid exists. Linux: `/proc/<pid>`; elsewhere there is no
/// std way to ask, so every pid is assumed alive (a stale lock must then be deleted by hand).
fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") { Path::new("/proc").join(pid.to_string()).exists() } else { true }
}

/// An exclusive lock on a journal: `<journal>.lock` holding this process's pid, created with
/// `create_new`. Removed when dropped.
#[derive(Debug)]
pub(crate) struct LockFile {
    path: PathBuf,
    took_over: Option<u32>,
}

impl LockFile {
    /// Take the lock for `journal`. A lock whose process is gone is taken over (with a
    /// warning); a live one is an error.
    ///
    /// Two processes taking over the same stale lock in the same instant could both
    /// succeed; that needs a dead run plus two simultaneous restarts, and is accepted.
    pub(crate) fn acquire(journal: &Path) -> Result<LockFile, JournalError> {
        let path = lock_path(journal);
        let io_err = |action, source| JournalError::Io { action, path: path.clone(), source };
        let mut took_over = None;
        for _ in 0..3 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let pid = format!("{}\n", std::process::id());
                    let written = file.write_all(pid.as_bytes()).and_then(|()| file.sync_data());
                    if let Err(e) = written {
                        let _ = fs::remove_file(&path);
                        return Err(io_err("cannot write lock file", e));
                    }
                    return Ok(LockFile { path, took_over });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let text = match fs::read_to_string(&path) {
                        Ok(text) => text,
                        // Released between our two calls: try again.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_err("cannot read lock file", e)),
                    };
                    let Ok(pid) = text.trim().parse::<u32>() else {
                        return Err(JournalError::LockUnreadable { lock: path });
                    };
                    if pid_alive(pid) {
                        return Err(JournalError::Locked { lock: path, pid });
                    }
                    tracing::warn!(
                        "taking over the stale lock {} of process {pid}, which is no longer running",
                        path.display()
                    );
                    took_over = Some(pid);
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_err("cannot remove stale lock file", e)),
                    }
                }
                Err(e) => return Err(io_err("cannot create lock file", e)),
            }
        }
        Err(io_err("cannot create lock file", io::Error::other("it keeps reappearing")))
    }

    /// The pid of a dead process whose stale lock was taken over, if any.
    pub(crate) fn took_over(&self) -> Option<u32> {
        self.took_over
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Only remove the file if it is still ours.
        let ours = fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .is_some_and(|pid| pid == std::process::id());
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::journal::Journal;
    use crate::apply::journal::tests::{PLAN_SHA, open};

    #[test]
    fn lock_is_exclusive_and_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, _) = open(dir.path());
        let lock = lock_path(&path);
        assert_eq!(
            fs::read_to_string(&lock).expect("lock exists").trim(),
            std::process::id().to_string()
        );
        let err = Journal::open(&path, Path::new("plan.csv"), PLAN_SHA).expect_err("held");
        assert!(matches!(&err, JournalError::Locked { pid, .. } if *pid == std::process::id()));
        assert!(err.hint().expect("hint").contains("delete"));
        drop(journal);
        assert!(!lock.exists());
        drop(open(dir.path()));
    }

    #[test]
    fn stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let lock = lock_path(&path);
        // Above Linux's largest pid_max (2^22), so no such process can exist.
        fs::write(&lock, "999999999\n").expect("write");
        if cfg!(target_os = "linux") {
            let (journal, _) = open(dir.path());
            assert_eq!(journal.took_over_stale_lock(), Some(999_999_999));
            assert_eq!(
                fs::read_to_string(&lock).expect("lock").trim(),
                std::process::id().to_string()
            );
            drop(journal);
            assert!(!lock.exists());
        }
        fs::write(&lock, "garbage").expect("write");
        let err = Journal::open(&path, Path::new("p"), PLAN_SHA).expect_err("unreadable");
        assert!(matches!(err, JournalError::LockUnreadable { .. }));
        assert!(lock.exists(), "an unreadable lock is left alone");
    }

    #[tokio::test]
    async fn lock_of_a_live_process_is_respected() {
        // A real, live child process that is not us.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        fs::write(lock_path(&path), format!("{}\n", child.id())).expect("write");
        let result = Journal::open(&path, Path::new("p"), PLAN_SHA);
        child.kill().expect("kill");
        child.wait().expect("reap");
        let err = result.expect_err("held by a live process");
        assert!(matches!(&err, JournalError::Locked { pid, .. } if *pid == child.id()));
    }
}
