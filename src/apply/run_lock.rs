//! One run of a plan's rows on one GitLab at a time, whatever journal each run uses: before it
//! talks to GitLab, `apply` takes an OS advisory lock (through `fs4`) on a file in a per-user
//! lock directory (`$XDG_RUNTIME_DIR/glmirror`, else `glmirror-<uid>` in the temporary
//! directory), named after a [`lock_key`]: the instance as GitLab names itself (the origin of
//! the rows' `web_url`) and the sorted keys of the `update` rows. So a copy of the plan saved
//! with other line endings or rows in another order, or the same plan run with the GitLab URL
//! spelled another way, meets the same lock; so does another `--journal`, or the same journal
//! through a symlink. The second run is refused before it confirms or writes anything.
//!
//! The lock belongs to the open file, so it goes away with the process however that ends:
//! there is no stale lock to take over. The files stay (a few bytes each; removing a lock file
//! while another process may be opening it would let two runs hold "the" lock); they hold the
//! holder's pid and paths, for the message a refused run shows.
//!
//! This covers runs by one user on one machine, of the same rows. Overlapping plans, and runs
//! by other users or on other machines, share no lock. For push rows `push.rs` is the guard: a
//! push mirror to the target that appeared after planning makes the row `drifted`, and a copy
//! another run made at the same moment is found by the re-read after the create (which
//! narrows that race, it does not close it). A pull row is re-read before its write; two runs
//! writing the same planned target at once write the same values.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::plan::PlanRow;
use crate::rewrite::Action;

/// A held run lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: File,
}

/// What two runs must not do at once: write these `update` rows on this instance. The
/// instance is the origin of the rows' `web_url` (how GitLab names itself, whatever URL
/// `apply` was given), else the given URL; lowercase, without a trailing `/`. The rows are
/// their keys, sorted, so the plan's bytes, line endings and row order do not matter.
pub(crate) fn lock_key(rows: &[PlanRow], gitlab_url: &str) -> String {
    let instance = crate::plan::csv_io::plan_instance_base(rows)
        .unwrap_or_else(|| gitlab_url.to_owned())
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let mut keys: Vec<String> = rows
        .iter()
        .filter(|r| r.action == Action::Update)
        .map(|r| {
            let key = r.key();
            format!("{} {} {}", key.project_id, key.mirror_type, key.mirror_id.unwrap_or(0))
        })
        .collect();
    keys.sort();
    let digest = Sha256::digest(format!("{instance}\n{}", keys.join("\n")));
    format!("{instance} {}", hex::encode(&digest.as_slice()[..16]))
}

/// The lock file of a [`lock_key`].
fn lock_file(dir: &Path, key: &str) -> PathBuf {
    let digest = Sha256::digest(key.as_bytes());
    dir.join(format!("apply-{}.lock", hex::encode(&digest.as_slice()[..16])))
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

/// Take the run lock of a [`lock_key`], without waiting: a run holding it refuses this one
/// (exit 1), naming what the holder wrote in the file.
pub(crate) fn acquire(
    dir: &Path,
    key: &str,
    plan: &Path,
    journal: &Path,
) -> Result<RunLock, AppError> {
    prepare_dir(dir)?;
    let path = lock_file(dir, key);
    let instance = key.split_once(' ').map_or(key, |(instance, _)| instance);
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
                    "another glmirror is applying the rows of {} on {instance} ({})",
                    crate::redact::excerpt(&plan.display().to_string(), 200),
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
    use crate::plan::MirrorType;
    use crate::plan::row::tests::sample_row;

    fn rows() -> Vec<PlanRow> {
        let mut rows = vec![
            sample_row(7, MirrorType::Pull, None),
            sample_row(9, MirrorType::Push, Some(3)),
            sample_row(11, MirrorType::Pull, None),
        ];
        for r in &mut rows {
            r.action = Action::Update;
        }
        rows[2].action = Action::Skip;
        rows
    }

    #[test]
    fn the_key_names_the_instance_and_the_update_rows_only() {
        let rows = rows();
        let key = lock_key(&rows, "http://127.0.0.1:8080/");
        let base = crate::plan::csv_io::plan_instance_base(&rows).expect("web_url ends with path");
        assert!(key.starts_with(&format!("{} ", base.to_ascii_lowercase())), "{key}");
        // Another spelling of the GitLab URL, another row order: the same key.
        let mut reordered = rows.clone();
        reordered.reverse();
        assert_eq!(lock_key(&reordered, "http://localhost:8080"), key);
        // A skipped row is not part of it; another update row is.
        let mut skipped = rows.clone();
        skipped[2].reason = "edited".into();
        assert_eq!(lock_key(&skipped, "x"), key);
        let mut more = rows.clone();
        more[2].action = Action::Update;
        assert_ne!(lock_key(&more, "x"), key);
        // Without rows, the given URL names the instance.
        assert_eq!(
            lock_key(&[], "HTTPS://GitLab.example.com/").split(' ').next(),
            Some("https://gitlab.example.com")
        );
    }

    #[test]
    fn one_holder_per_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let locks = dir.path().join("locks");
        let (plan, journal) = (Path::new("plan.csv"), Path::new("plan.journal"));
        let key = lock_key(&rows(), "https://gitlab.example.com/");
        let held = acquire(&locks, &key, plan, journal).expect("free");
        let err = acquire(&locks, &key, Path::new("copy.csv"), Path::new("other.journal"))
            .expect_err("held");
        let shown = format!("{err} {:?}", err.hint());
        assert!(shown.contains("another glmirror is applying the rows of copy.csv"), "{shown}");
        assert!(shown.contains(&format!("pid {}, plan plan.csv", std::process::id())), "{shown}");
        // Other rows are another lock.
        let other = lock_key(&rows()[..1], "https://gitlab.example.com");
        drop(acquire(&locks, &other, plan, journal).expect("free"));
        drop(held);
        drop(acquire(&locks, &key, plan, journal).expect("released"));
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let locks = dir.path().join("locks");
        fs::create_dir(&locks).expect("mkdir");
        fs::set_permissions(&locks, fs::Permissions::from_mode(0o777)).expect("chmod");
        let err =
            acquire(&locks, "https://h 00", Path::new("p"), Path::new("j")).expect_err("refused");
        assert!(err.to_string().contains("not yours alone"), "{err}");
    }
}
