//! The files `apply` writes, checked before anything is written (to GitLab or to disk): the
//! report's directory exists and takes a new file; the plan, the journal and the report are
//! three different files once symlinks are resolved (a report written over the plan, or a
//! CSV over the journal, would lose the reviewed plan or make resuming impossible); the
//! report and the journal are regular files or new ones, never a FIFO (the open would block)
//! or a device (`/dev/null` would be replaced, or swallow the journal). Also the bounded
//! reader that keeps an oversized input from exhausting memory.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::AppError;

/// Read at most `max` bytes of `path`; `None` when it holds more. A regular file is judged
/// by its size before anything is read; anything else (a pipe, a device) is read through a
/// reader that stops one byte past `max`.
pub(crate) fn read_bounded(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let file = fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > max {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// The directory a file is (to be) created in.
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The path with every symlink resolved, also for a file that does not exist yet (its
/// directory is resolved) or a dangling symlink (its target is).
fn resolve(path: &Path) -> io::Result<PathBuf> {
    if let Ok(real) = fs::canonicalize(path) {
        return Ok(real);
    }
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match fs::read_link(&path) {
            Ok(target) => path = dir_of(&path).join(target),
            Err(_) => break,
        }
    }
    let name = path.file_name().ok_or_else(|| io::Error::other("the path names no file"))?;
    Ok(fs::canonicalize(dir_of(&path))?.join(name))
}

/// What a report or journal path may be: absent, or a regular file (through symlinks).
fn check_kind(flag: &str, path: &Path) -> Result<(), AppError> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) => Err(AppError::usage_hint(
            format!(
                "{flag} {} is not a regular file ({})",
                crate::redact::path_excerpt(path),
                if m.is_dir() { "a directory" } else { "a device, FIFO or socket" }
            ),
            format!("give {flag} the path of a regular file, or of a new one"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AppError::usage_hint(
            format!("{flag} {} cannot be used: {e}", crate::redact::path_excerpt(path)),
            format!("give {flag} the path of a regular file in an existing directory"),
        )),
    }
}

fn usage(message: String, hint: &str) -> AppError {
    AppError::usage_hint(message, hint)
}

/// Check the plan, journal and report paths of a run before anything is written. `-` as the
/// report means stdout. A dry run writes no journal, so its journal is not checked.
pub(crate) fn check(
    plan: &Path,
    journal: &Path,
    report: &Path,
    dry_run: bool,
) -> Result<(), AppError> {
    let to_stdout = report.as_os_str() == "-";
    let resolved = |flag: &str, path: &Path| {
        resolve(path).map_err(|e| {
            usage(
                format!(
                    "{flag} {}: directory {} cannot be used: {e}",
                    crate::redact::path_excerpt(path),
                    crate::redact::path_excerpt(dir_of(path))
                ),
                "create the directory first, or pass another path",
            )
        })
    };
    let plan_real = fs::canonicalize(plan).map_err(|e| AppError::io("cannot read", plan, e))?;
    if !to_stdout {
        check_kind("--report", report)?;
        let report_real = resolved("--report", report)?;
        if report_real == plan_real {
            return Err(usage(
                format!(
                    "--report {} is the plan file: the report would replace the plan",
                    crate::redact::path_excerpt(report)
                ),
                "pass --report another file (the default is the plan's name with .report.csv)",
            ));
        }
        if !dry_run && report_real == resolved("--journal", journal)? {
            return Err(usage(
                format!(
                    "--report {} and --journal {} are the same file: the report would replace \
                     the journal and resuming would be impossible",
                    crate::redact::path_excerpt(report),
                    crate::redact::path_excerpt(journal)
                ),
                "give the report and the journal different files",
            ));
        }
        // The report is written last, after every write to GitLab: make sure it can be.
        let dir = dir_of(&report_real);
        tempfile::Builder::new().prefix(".glmirror-").suffix(".tmp").tempfile_in(dir).map_err(
            |e| {
                usage(
                    format!(
                        "cannot write the report {} in {}: {e}",
                        crate::redact::path_excerpt(report),
                        crate::redact::path_excerpt(dir)
                    ),
                    "pass --report a path in a directory you can write",
                )
            },
        )?;
    }
    if !dry_run {
        check_kind("--journal", journal)?;
        if resolved("--journal", journal)? == plan_real {
            return Err(usage(
                format!("--journal {} is the plan file", crate::redact::path_excerpt(journal)),
                "pass --journal another file (the default is the plan's name with .journal)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_stop_past_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        fs::write(&path, "12345").expect("write");
        assert_eq!(read_bounded(&path, 5).expect("reads"), Some(b"12345".to_vec()));
        assert_eq!(read_bounded(&path, 4).expect("reads"), None);
        if Path::new("/dev/zero").exists() {
            assert_eq!(read_bounded(Path::new("/dev/zero"), 1024).expect("reads"), None);
        }
    }

    #[test]
    fn paths_resolve_through_symlinks_and_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = fs::canonicalize(dir.path()).expect("real");
        fs::write(real.join("plan.csv"), "x").expect("write");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("plan.csv", real.join("link")).expect("symlink");
            std::os::unix::fs::symlink("new.csv", real.join("dangling")).expect("symlink");
            assert_eq!(resolve(&real.join("link")).expect("resolves"), real.join("plan.csv"));
            assert_eq!(resolve(&real.join("dangling")).expect("resolves"), real.join("new.csv"));
        }
        assert_eq!(resolve(&real.join("absent.csv")).expect("resolves"), real.join("absent.csv"));
        assert!(resolve(&real.join("no-dir").join("x")).is_err());
    }
}
