//! One run of a plan on one GitLab at a time, whatever journal each run uses: before it talks
//! to GitLab, `apply` takes an OS advisory lock (through `fs4`) on a file in a per-user lock
//! directory (`$XDG_RUNTIME_DIR/glmirror`, else `glmirror-<uid>` in the temporary
//! directory), named after the SHA-256 of the plan's SHA-256 and the GitLab URL. A second run
//! of the same plan bytes against the same instance — with another `--journal`, or the same
//! journal through a symlink — is refused before it confirms or writes anything.
//!
//! The lock belongs to the open file, so it goes away with the process however that ends:
//! there is no stale lock to take over. The files stay (a few bytes each; removing a lock file
//! while another process may be opening it would let two runs hold "the" lock); they hold the
//! holder's pid and paths, for the message a refused run shows.
//!
//! This covers runs by one user on one machine. Runs by other users or on other machines are
//! caught by the last line of defence in `push.rs` (a push mirror to the target that appeared
//! after planning makes the row `drifted`).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::AppError;

/// A held run lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: File,
}

/// The lock file for a plan (by its SHA-256) on a GitLab (by its URL).
pub(crate) fn lock_file(dir: &Path, plan_sha256: &str, gitlab_url: &str) -> PathBuf {
    let key = Sha256::digest(format!("{plan_sha256}\n{}", gitlab_url.trim_end_matches('/')));
    dir.join(format!("apply-{}.lock", hex::encode(&key.as_slice()[..16])))
}

/// Create the lock directory (owner only), and refuse one another user could write to.
fn prepare_dir(dir: &Path) -> Result<(), AppError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| AppError::io("cannot create the lock directory", dir, e))?;
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| AppError::io("cannot read the lock directory", dir, e))?;
    if !meta.is_dir() {
        return Err(AppError::fatal(format!(
            "the lock directory {} is not a directory (a symlink?)",
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(unix)]
fn check_owner(dir: &Path, file: &File) -> Result<(), AppError> {
    use std::os::unix::fs::MetadataExt;
    let dir_meta = fs::metadata(dir).map_err(|e| AppError::io("cannot read", dir, e))?;
    let mine = file.metadata().map_err(|e| AppError::io("cannot read", dir, e))?.uid();
    if dir_meta.uid() != mine || dir_meta.mode() & 0o022 != 0 {
        return Err(AppError::fatal_hint(
            format!("the lock directory {} is not yours alone", dir.display()),
            "set XDG_RUNTIME_DIR to a directory only you can write, or remove that directory",
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner(_dir: &Path, _file: &File) -> Result<(), AppError> {
    Ok(())
}

/// Take the run lock of a plan on a GitLab, without waiting: a run holding it refuses this
/// one (exit 1), naming what the holder wrote in the file.
pub(crate) fn acquire(
    dir: &Path,
    plan_sha256: &str,
    gitlab_url: &str,
    plan: &Path,
    journal: &Path,
) -> Result<RunLock, AppError> {
    prepare_dir(dir)?;
    let path = lock_file(dir, plan_sha256, gitlab_url);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| AppError::io("cannot open", &path, e))?;
    check_owner(dir, &file)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = (&file).take(4096).read_to_string(&mut holder);
            let holder = holder.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(AppError::fatal_hint(
                format!(
                    "{} is being applied by another glmirror on {gitlab_url} ({})",
                    plan.display(),
                    if holder.is_empty() {
                        "its details are not known yet".to_owned()
                    } else {
                        holder
                    }
                ),
                format!(
                    "wait for that run to finish (its lock goes away with it), then rerun to \
                     resume; lock file {}",
                    path.display()
                ),
            ));
        }
        Err(fs4::TryLockError::Error(e)) => return Err(AppError::io("cannot lock", &path, e)),
    }
    let who = format!(
        "pid {}, plan {}, journal {}\n",
        std::process::id(),
        plan.display(),
        journal.display()
    );
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(who.as_bytes()))
        .and_then(|()| file.flush());
    written.map_err(|e| AppError::io("cannot write", &path, e))?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_plan_and_instance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let locks = dir.path().join("locks");
        let (plan, journal) = (Path::new("plan.csv"), Path::new("plan.journal"));
        let sha = "a".repeat(64);
        let held =
            acquire(&locks, &sha, "https://gitlab.example.com/", plan, journal).expect("free");
        let err =
            acquire(&locks, &sha, "https://gitlab.example.com", plan, Path::new("other.journal"))
                .expect_err("held");
        let shown = format!("{err} {:?}", err.hint());
        assert!(shown.contains("is being applied by another glmirror"), "{shown}");
        assert!(shown.contains(&format!("pid {}", std::process::id())), "{shown}");
        // Another plan, or another instance, is another lock.
        drop(
            acquire(&locks, &"b".repeat(64), "https://gitlab.example.com", plan, journal)
                .expect("free"),
        );
        drop(acquire(&locks, &sha, "https://other.example.com", plan, journal).expect("free"));
        drop(held);
        drop(acquire(&locks, &sha, "https://gitlab.example.com", plan, journal).expect("released"));
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let locks = dir.path().join("locks");
        fs::create_dir(&locks).expect("mkdir");
        fs::set_permissions(&locks, fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = acquire(&locks, &"a".repeat(64), "https://h", Path::new("p"), Path::new("j"))
            .expect_err("refused");
        assert!(err.to_string().contains("not yours alone"), "{err}");
    }
}
