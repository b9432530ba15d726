//! Keeping a second `apply` away from a journal: an OS advisory lock (`flock` on Unix,
//! `LockFileEx` on Windows, through the `fs4` crate) on the open journal file itself. Every
//! path that reaches the file — another spelling, a symlink, a hard link — meets the same
//! lock, and the lock goes away with the process however it ends (exit, crash, `kill -9`), so
//! there is never a stale lock to take over.
//!
//! glmirror 0.1 used a lock file `<journal>.lock` holding its pid instead. Such a file is still
//! honoured, so that an older glmirror that is running is never joined: one naming a live
//! process refuses the run; one whose process is gone is removed with a warning (taking over
//! that stale lock); one that names no process is left alone and refuses the run.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::JournalError;

/// The lock file glmirror 0.1 kept next to a journal: `<journal>.lock`. This version never
/// creates one.
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

/// Take the journal's lock on its open file, without waiting: another process (or another
/// open of the same file in this one) holding it is [`JournalError::InUse`].
pub(crate) fn lock(file: &File, journal: &Path) -> Result<(), JournalError> {
    match fs4::FileExt::try_lock(file) {
        Ok(()) => Ok(()),
        Err(fs4::TryLockError::WouldBlock) => Err(JournalError::InUse { path: journal.to_owned() }),
        Err(fs4::TryLockError::Error(source)) => Err(JournalError::Io {
            action: "cannot lock journal",
            path: journal.to_owned(),
            source,
        }),
    }
}

/// Deal with a `<journal>.lock` left by glmirror 0.1: none, or a dead process's (removed;
/// its pid is returned), is fine; a live process's, or one that names no process, refuses.
pub(crate) fn clear_legacy_lock(journal: &Path) -> Result<Option<u32>, JournalError> {
    let path = lock_path(journal);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(JournalError::Io { action: "cannot read lock file", path, source });
        }
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Err(JournalError::LockUnreadable { lock: path });
    };
    if pid_alive(pid) {
        return Err(JournalError::Locked { lock: path, pid });
    }
    tracing::warn!(
        "removing the stale lock {} of process {pid}, which is no longer running",
        path.display()
    );
    match fs::remove_file(&path) {
        Ok(()) => Ok(Some(pid)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Some(pid)),
        Err(source) => {
            Err(JournalError::Io { action: "cannot remove stale lock file", path, source })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::journal::Journal;
    use crate::apply::journal::tests::{PLAN_SHA, open};

    #[test]
    fn lock_is_exclusive_released_and_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, _) = open(dir.path());
        assert!(!lock_path(&path).exists(), "no lock file");
        let err = Journal::open(&path, Path::new("plan.csv"), PLAN_SHA).expect_err("held");
        assert!(matches!(&err, JournalError::InUse { .. }), "{err:?}");
        assert!(err.hint().expect("hint").contains("wait"));
        drop(journal);
        drop(open(dir.path()));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_or_another_spelling_meets_the_same_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, _) = open(dir.path());
        let link = dir.path().join("other.journal");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        let spelled = dir.path().join(".").join("plan.journal");
        for other in [&link, &spelled] {
            let err = Journal::open(other, Path::new("plan.csv"), PLAN_SHA).expect_err("held");
            assert!(matches!(&err, JournalError::InUse { .. }), "{}: {err:?}", other.display());
        }
        drop(journal);
        // A process another test spawns at this moment holds a copy of every descriptor (and
        // so of the lock) until its exec closes them: allow that instant to pass.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match Journal::open(&link, Path::new("plan.csv"), PLAN_SHA) {
                Ok(again) => break drop(again),
                Err(JournalError::InUse { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("free again: {e:?}"),
            }
        }
    }

    #[test]
    fn a_dead_process_lock_file_is_removed_and_a_garbage_one_refuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let lock = lock_path(&path);
        // Above Linux's largest pid_max (2^22), so no such process can exist.
        fs::write(&lock, "999999999\n").expect("write");
        if cfg!(target_os = "linux") {
            let (journal, _) = open(dir.path());
            assert_eq!(journal.took_over_stale_lock(), Some(999_999_999));
            assert!(!lock.exists());
            drop(journal);
        }
        fs::write(&lock, "garbage").expect("write");
        let err = Journal::open(&path, Path::new("p"), PLAN_SHA).expect_err("unreadable");
        assert!(matches!(err, JournalError::LockUnreadable { .. }));
        assert!(lock.exists(), "an unreadable lock is left alone");
    }

    #[test]
    fn lock_file_of_a_live_process_is_respected() {
        // A live process that is not us (an older glmirror, say): init. Spawning one would
        // hand it a copy of the other tests' open journals, and of their locks, for an instant.
        if !cfg!(target_os = "linux") || !Path::new("/proc/1").exists() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        fs::write(lock_path(&path), "1\n").expect("write");
        let err = Journal::open(&path, Path::new("p"), PLAN_SHA).expect_err("held by pid 1");
        assert!(matches!(&err, JournalError::Locked { pid: 1, .. }), "{err:?}");
        assert!(lock_path(&path).exists(), "a live process's lock file is left alone");
    }
}
