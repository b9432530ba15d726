//! The apply journal: an append-only JSON-lines file that records, for every plan row, what
//! `apply` is about to write (an *intent*), the durable facts learnt along the way (*steps*,
//! such as the id of a newly created push mirror) and how the row ended (an *outcome*).
//!
//! Every entry is one line, written with a single `write_all`, then flushed and `fsync`ed
//! before [`Journal::record`] returns, so a crash, Ctrl-C or `kill -9` loses nothing that was
//! acknowledged. One writer thread owns the file, so lines never interleave however many
//! rows are applied concurrently. An OS lock on the open file (see `lock`) keeps a second
//! `apply` off the same journal, whatever path it is reached by.
//!
//! Replaying the file ([`load`]) gives a [`JournalState`]: which rows are finished, which
//! were in flight when the previous run died, and for push mirrors which replacement was
//! already created, so a rerun repairs instead of duplicating.
//!
//! Resume rule: a row is finished (skipped on rerun) only when its last outcome is
//! `applied` or `already-applied`. Rows that ended `failed`, `drifted` or `skipped` are
//! attempted again (apply re-reads the live mirror first, so the drift check still protects
//! them). `apply --dry-run` opens no journal: it only reads an existing one, records nothing,
//! and so can never make a later real run skip a row; a `dry-run` outcome found in a journal
//! never counts as finished.
//!
//! The journal never holds a credential: URLs are stored without userinfo, free-text
//! details are masked, and [`Journal::record`] refuses any entry that still contains
//! userinfo. This module does not read the plan or talk to GitLab.
//!
//! A journal of *another* plan whose rows all ended (no intent without an outcome: a finished
//! run, or one that stopped between rows) is archived next to itself as
//! `<journal>.<UTC time>` and a new one started, so re-planning to the same file (token
//! rotation) just works; one with a row in flight is refused, since only its own plan can
//! repair that row.
//!
//! The parts: `entry` is the on-disk schema, `replay` reads a file back and decides what a
//! rerun does, `lock` keeps a second `apply` away, `scrub` keeps credentials out, and
//! `error` names what can go wrong. This file holds the writer: [`Journal`] and its thread.

mod entry;
mod error;
mod lock;
mod replay;
mod scrub;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

// `Entry`, `Resume` and `JournalError` stay public because public items name them
// (`Journal::record`, `Entry::Resume`, `Journal::open`); `tests/it` names the rest.
pub use entry::Entry;
pub(crate) use entry::Header;
pub(crate) use entry::{FORMAT_VERSION, TOOL, now_rfc3339};
pub use entry::{
    Intent, JournalStep, Outcome, OutcomeEntry, Resume, StepKind, WriteStep, sha256_hex,
};
pub(crate) use error::JournalError;
pub use lock::lock_path;
pub(crate) use replay::JournalState;
use replay::Tail;
pub use replay::{PushRepair, RowState, load};
use scrub::encode;

struct WriteRequest {
    line: String,
    ack: oneshot::Sender<Result<(), String>>,
}

/// Write one line durably: a single `write_all`, then flush and fsync.
fn write_line(file: &mut File, line: &[u8]) -> io::Result<()> {
    file.write_all(line)?;
    file.flush()?;
    file.sync_data()
}

/// The writer thread: the only code that writes entries to the file. After a failed write
/// the file may end in a partial line, so every later entry is refused.
fn writer_loop(mut file: File, requests: mpsc::Receiver<WriteRequest>) {
    let mut failed: Option<String> = None;
    while let Ok(request) = requests.recv() {
        let result = match &failed {
            Some(first) => Err(format!("an earlier write failed: {first}")),
            None => write_line(&mut file, request.line.as_bytes()).map_err(|e| {
                failed = Some(e.to_string());
                e.to_string()
            }),
        };
        // The caller may have stopped waiting; the entry is written either way.
        let _ = request.ack.send(result);
    }
}

/// An open journal. Cheap to share by reference between concurrent row tasks. The writer
/// thread owns the file, and with it the lock: both go when the journal is dropped.
pub struct Journal {
    path: PathBuf,
    sender: Option<mpsc::Sender<WriteRequest>>,
    writer: Option<JoinHandle<()>>,
    took_over: Option<u32>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish_non_exhaustive()
    }
}

/// What a journal file held when it was read for a plan.
#[derive(Debug)]
enum Found {
    /// No file, an empty one, or only a cut-short first line: start afresh.
    Nothing,
    /// A journal of this plan.
    Same(JournalState),
    /// A journal of another plan whose rows all ended: archive it.
    Other(JournalState),
}

/// A journal read (and, for a real run, locked) before the confirmation: what earlier runs
/// did, and what opening it will do. Nothing is created or written until
/// [`open`](PreparedJournal::open), so a declined run leaves no journal behind.
#[derive(Debug)]
pub(crate) struct PreparedJournal {
    path: PathBuf,
    plan_path: PathBuf,
    plan_sha256: String,
    /// The locked file, when it existed and a lock was asked for.
    file: Option<File>,
    found: Found,
    took_over: Option<u32>,
}

/// Refuse anything but a regular file (a FIFO would block the open, a device would swallow
/// the entries).
fn check_regular(path: &Path) -> Result<bool, JournalError> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(true),
        Ok(_) => Err(JournalError::NotAFile { path: path.to_owned() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => {
            Err(JournalError::Io { action: "cannot read journal", path: path.to_owned(), source })
        }
    }
}

/// Open the journal for appending (creating it when `create`), take its lock and read what it
/// holds, through the locked file itself.
fn open_locked(path: &Path, create: bool) -> Result<Option<(File, Vec<u8>)>, JournalError> {
    let io_err = |action, source| JournalError::Io { action, path: path.to_owned(), source };
    if !check_regular(path)? && !create {
        return Ok(None);
    }
    let mut file = match OpenOptions::new().read(true).append(true).create(create).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
        Err(e) => return Err(io_err("cannot open journal", e)),
    };
    if !file.metadata().map_err(|e| io_err("cannot read journal", e))?.is_file() {
        return Err(JournalError::NotAFile { path: path.to_owned() });
    }
    lock::lock(&file, path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| io_err("cannot read journal", e))?;
    Ok(Some((file, bytes)))
}

/// What a journal's bytes mean for the plan hashing to `plan_sha256`.
fn classify(bytes: &[u8], path: &Path, plan_sha256: &str) -> Result<Found, JournalError> {
    let state = replay::parse(bytes, path)?;
    let Some(header) = state.header.as_ref() else { return Ok(Found::Nothing) };
    if header.plan_sha256 == plan_sha256 {
        return Ok(Found::Same(state));
    }
    if !state.in_flight().is_empty() {
        return Err(JournalError::OtherPlan {
            journal: path.to_owned(),
            plan_path: header.plan_path.clone(),
            journal_plan_sha256: header.plan_sha256.clone(),
            plan_sha256: plan_sha256.to_owned(),
        });
    }
    Ok(Found::Other(state))
}

/// `<journal>.<UTC time>`, with `-2`, `-3`… when that name is taken.
fn archive_path(path: &Path) -> PathBuf {
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .unwrap_or_else(|_| "old".to_owned());
    let mut n = 1;
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{stamp}"));
        if n > 1 {
            name.push(format!("-{n}"));
        }
        let candidate = PathBuf::from(name);
        if fs::symlink_metadata(&candidate).is_err() {
            return candidate;
        }
        n += 1;
    }
}

impl PreparedJournal {
    /// What earlier runs of this plan recorded (empty for a new or archived journal).
    pub(crate) fn state(&self) -> JournalState {
        match &self.found {
            Found::Same(state) => state.clone(),
            Found::Nothing | Found::Other(_) => JournalState::empty(),
        }
    }

    /// Whether this is a journal of this plan that an earlier run left (a resume).
    pub(crate) fn is_resume(&self) -> bool {
        matches!(self.found, Found::Same(_))
    }

    /// For a journal of another plan whose rows all ended: the plan path its header names.
    pub(crate) fn other_plan(&self) -> Option<&str> {
        match &self.found {
            Found::Other(state) => state.header.as_ref().map(|h| h.plan_path.as_str()),
            Found::Nothing | Found::Same(_) => None,
        }
    }

    /// Open the journal for writing: resume this plan's journal (cutting an incomplete last
    /// line and appending a `resume` line), or archive another plan's finished one and start
    /// afresh, or start a new one (with a header). Returns the journal, what earlier runs
    /// recorded, and where another plan's journal was archived.
    pub(crate) fn open(self) -> Result<(Journal, JournalState, Option<PathBuf>), JournalError> {
        let PreparedJournal { path, plan_path, plan_sha256, file, found, took_over } = self;
        let io_err = |action, source| JournalError::Io { action, path: path.clone(), source };
        // Read again through a locked file: a dry-run preview locks nothing, and a file that
        // did not exist then may exist now.
        let (mut file, found) = match (file, found) {
            (Some(file), found) => (file, found),
            (None, _) => {
                let (file, bytes) = open_locked(&path, true)?.expect("created");
                let found = classify(&bytes, &path, &plan_sha256)?;
                (file, found)
            }
        };
        let mut archived = None;
        let state = match found {
            Found::Same(state) => {
                // Put the next entry on its own line: drop a cut-short last line, or end a
                // whole one that lost its newline.
                match state.tail {
                    Tail::Dropped(bytes) => {
                        tracing::warn!(
                            "journal {}: ignoring an incomplete last line ({bytes} bytes) left by an interrupted write",
                            path.display()
                        );
                        file.set_len(state.valid_len)
                            .map_err(|e| io_err("cannot repair journal", e))?;
                    }
                    Tail::MissingNewline => {
                        write_line(&mut file, b"\n")
                            .map_err(|e| io_err("cannot repair journal", e))?;
                    }
                    Tail::Clean => {}
                }
                let resume = Resume {
                    plan_sha256: plan_sha256.clone(),
                    started_at: now_rfc3339(),
                    tool: TOOL.to_owned(),
                    dropped_bytes: state.dropped_tail_bytes(),
                };
                write_line(&mut file, encode(resume.into())?.as_bytes())
                    .map_err(|e| io_err("cannot write journal", e))?;
                state
            }
            Found::Other(_) => {
                // Move the finished journal aside while still holding its lock, then start a
                // new file under the name.
                let to = archive_path(&path);
                fs::rename(&path, &to).map_err(|e| io_err("cannot archive journal", e))?;
                archived = Some(to);
                let (new, bytes) = open_locked(&path, true)?.expect("created");
                if !matches!(classify(&bytes, &path, &plan_sha256)?, Found::Nothing) {
                    // Another run started a journal under the name in between.
                    return Err(JournalError::InUse { path });
                }
                drop(std::mem::replace(&mut file, new));
                start_afresh(&mut file, &path, &plan_path, &plan_sha256, true)?
            }
            Found::Nothing => start_afresh(&mut file, &path, &plan_path, &plan_sha256, true)?,
        };

        let (sender, requests) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("glmirror-journal".to_owned())
            .spawn(move || writer_loop(file, requests))
            .map_err(|e| io_err("cannot start the journal writer for", e))?;
        let journal = Journal { path, sender: Some(sender), writer: Some(writer), took_over };
        Ok((journal, state, archived))
    }
}

/// Write the header of a new journal (truncating what is there first when `truncate`).
fn start_afresh(
    file: &mut File,
    path: &Path,
    plan_path: &Path,
    plan_sha256: &str,
    truncate: bool,
) -> Result<JournalState, JournalError> {
    let io_err = |action, source| JournalError::Io { action, path: path.to_owned(), source };
    if truncate {
        file.set_len(0).map_err(|e| io_err("cannot write journal", e))?;
    }
    let header = Header {
        version: FORMAT_VERSION,
        plan_sha256: plan_sha256.to_owned(),
        plan_path: plan_path.display().to_string(),
        started_at: now_rfc3339(),
        tool: TOOL.to_owned(),
    };
    write_line(file, encode(header.clone().into())?.as_bytes())
        .map_err(|e| io_err("cannot write journal", e))?;
    sync_dir(journal_dir(path));
    let mut state = JournalState::empty();
    state.header = Some(header);
    state.entries = 1;
    Ok(state)
}

fn journal_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl Journal {
    /// Read the journal at `path` for the plan whose bytes hash to `plan_sha256` (see
    /// [`sha256_hex`]) before anything is written: with `lock`, an existing file is opened
    /// and locked now (a second `apply` is refused before it confirms anything); without it
    /// (a dry run) it is only read. A journal of another plan with a row in flight is
    /// refused ([`JournalError::OtherPlan`]). For a real run the journal's directory must
    /// exist.
    pub(crate) fn prepare(
        path: &Path,
        plan_path: &Path,
        plan_sha256: &str,
        lock: bool,
    ) -> Result<PreparedJournal, JournalError> {
        let dir = journal_dir(path);
        if lock && !dir.is_dir() {
            return Err(JournalError::NoDirectory { path: path.to_owned(), dir: dir.to_owned() });
        }
        // A dry run changes no file, not even an old release's stale lock file.
        let took_over = if lock { lock::clear_legacy_lock(path)? } else { None };
        let (file, found) = if lock {
            match open_locked(path, false)? {
                Some((file, bytes)) => {
                    let found = classify(&bytes, path, plan_sha256)?;
                    (Some(file), found)
                }
                None => (None, Found::Nothing),
            }
        } else if check_regular(path)? {
            (
                None,
                classify(
                    &fs::read(path).map_err(|source| JournalError::Io {
                        action: "cannot read journal",
                        path: path.to_owned(),
                        source,
                    })?,
                    path,
                    plan_sha256,
                )?,
            )
        } else {
            (None, Found::Nothing)
        };
        Ok(PreparedJournal {
            path: path.to_owned(),
            plan_path: plan_path.to_owned(),
            plan_sha256: plan_sha256.to_owned(),
            file,
            found,
            took_over,
        })
    }

    /// Open (or create) the journal at `path` for the plan whose bytes hash to
    /// `plan_sha256`: [`prepare`](Journal::prepare) with a lock, then
    /// [`PreparedJournal::open`]. Returns the journal and what the earlier runs recorded.
    pub fn open(
        path: &Path,
        plan_path: &Path,
        plan_sha256: &str,
    ) -> Result<(Journal, JournalState), JournalError> {
        let (journal, state, _) = Journal::prepare(path, plan_path, plan_sha256, true)?.open()?;
        Ok((journal, state))
    }

    /// The pid of a dead glmirror 0.1 process whose lock file was removed, if any.
    pub(crate) fn took_over_stale_lock(&self) -> Option<u32> {
        self.took_over
    }

    /// Record one entry; returns once it is on disk (written, flushed, fsynced).
    ///
    /// Free-text `detail` fields are masked first; an entry that still holds URL
    /// credentials anywhere is refused with [`JournalError::Credentials`] and not written.
    /// After a failed write every later call fails too (the file may end mid-line).
    pub async fn record(&self, entry: impl Into<Entry>) -> Result<(), JournalError> {
        let line = encode(entry.into())?;
        let closed = || JournalError::Closed { path: self.path.clone() };
        let (ack, done) = oneshot::channel();
        // The sender is only taken when the journal is dropped.
        let sender = self.sender.as_ref().ok_or_else(closed)?;
        sender.send(WriteRequest { line, ack }).map_err(|_| closed())?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(JournalError::Write { path: self.path.clone(), message }),
            Err(_) => Err(closed()),
        }
    }

    /// Stop the writer (after the entries already sent); its file, and so the lock, close.
    fn shutdown(&mut self) {
        drop(self.sender.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Make a newly created file's directory entry durable (best effort; not every platform
/// can open a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::Arc;

    use crate::error::AppError;
    use crate::plan::{MirrorType, RowKey};

    pub(super) const PLAN_SHA: &str =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    pub(super) fn open(dir: &Path) -> (Journal, JournalState) {
        Journal::open(&dir.join("plan.journal"), Path::new("plan.csv"), PLAN_SHA).expect("opens")
    }

    /// The key of a project's pull mirror.
    pub(super) fn pull(project_id: u64) -> RowKey {
        RowKey { project_id, mirror_type: MirrorType::Pull, mirror_id: None }
    }

    /// The key of one push mirror of a project.
    pub(super) fn push(project_id: u64, mirror_id: u64) -> RowKey {
        RowKey { project_id, mirror_type: MirrorType::Push, mirror_id: Some(mirror_id) }
    }

    pub(super) fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path).expect("read").lines().map(str::to_owned).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_produce_whole_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = open(dir.path());
        let journal = Arc::new(journal);
        let mut tasks = Vec::new();
        for task in 0..50u64 {
            let journal = Arc::clone(&journal);
            tasks.push(tokio::spawn(async move {
                for n in 0..20u64 {
                    let key = push(task, n);
                    // A long URL makes torn writes likelier if lines could interleave.
                    let url = format!("https://example.com/{}/r.git", "x".repeat(200 + n as usize));
                    journal.record(Intent::new(key, WriteStep::PushCreate, url)).await.expect("ok");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let journal = Arc::into_inner(journal).expect("last reference");
        drop(journal);
        let path = dir.path().join("plan.journal");
        let text = lines(&path);
        assert_eq!(text.len(), 1 + 50 * 20);
        for line in &text {
            serde_json::from_str::<Entry>(line).expect("every line is one whole entry");
        }
        let state = load(&path).expect("loads");
        assert_eq!(state.in_flight().len(), 50 * 20);
    }

    #[tokio::test]
    async fn truncated_last_line_is_ignored_and_repaired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, _) = open(dir.path());
        journal.record(OutcomeEntry::new(pull(1), Outcome::Applied, "ok")).await.expect("ok");
        drop(journal);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        let fragment = br#"{"kind":"outcome","project_id":2,"mirror_ty"#;
        f.write_all(fragment).expect("write");
        drop(f);

        let state = load(&path).expect("a cut-short last line is tolerated");
        assert_eq!(state.entries(), 2);
        assert_eq!(state.dropped_tail_bytes(), fragment.len() as u64);
        assert!(state.row(&pull(2)).is_none());

        let (journal, state) = open(dir.path());
        assert!(state.should_skip(&pull(1)));
        journal.record(OutcomeEntry::new(pull(2), Outcome::Applied, "")).await.expect("ok");
        drop(journal);
        let text = lines(&path);
        assert_eq!(text.len(), 4, "{text:#?}");
        assert!(text[2].contains(r#""kind":"resume""#));
        assert!(text[2].contains(&format!(r#""dropped_bytes":{}"#, fragment.len())));
        let state = load(&path).expect("loads after repair");
        assert!(state.should_skip(&pull(2)));
        assert_eq!(state.resumes(), 1);
    }

    #[tokio::test]
    async fn whole_last_line_without_newline_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, _) = open(dir.path());
        drop(journal);
        let line =
            encode(OutcomeEntry::new(pull(5), Outcome::Applied, "").into()).expect("encodes");
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(line.trim_end().as_bytes()).expect("write");
        drop(f);
        let (journal, state) = open(dir.path());
        assert!(state.should_skip(&pull(5)));
        drop(journal);
        let text = lines(&path);
        assert_eq!(text.len(), 3);
        assert!(text[2].contains(r#""kind":"resume""#));
    }

    #[tokio::test]
    async fn refuses_an_unfinished_journal_of_another_plan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, _) = open(dir.path());
        let url = "https://github.com/org/r.git";
        journal.record(Intent::new(pull(1), WriteStep::PullUpdate, url)).await.expect("ok");
        drop(journal);
        let before = fs::read(&path).expect("read");
        let other = "f".repeat(64);
        let err = Journal::open(&path, Path::new("new.csv"), &other).expect_err("other plan");
        let JournalError::OtherPlan { journal, plan_path, .. } = &err else {
            panic!("wrong error {err:?}");
        };
        assert_eq!(journal, &path);
        assert_eq!(plan_path, "plan.csv");
        assert!(err.hint().expect("hint").contains("--journal"));
        assert_eq!(AppError::from(err).exit_code(), crate::error::ExitCode::Usage);
        assert_eq!(fs::read(&path).expect("read"), before, "nothing written");
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1, "nothing archived");
    }

    #[tokio::test]
    async fn a_finished_journal_of_another_plan_is_archived() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, _) = open(dir.path());
        let url = "https://github.com/org/r.git";
        journal.record(Intent::new(pull(1), WriteStep::PullUpdate, url)).await.expect("ok");
        journal.record(OutcomeEntry::new(pull(1), Outcome::Failed, "no")).await.expect("ok");
        drop(journal);
        let before = fs::read(&path).expect("read");
        let other = "f".repeat(64);
        let prepared = Journal::prepare(&path, Path::new("new.csv"), &other, false).expect("ok");
        assert_eq!(prepared.other_plan(), Some("plan.csv"));
        assert!(!prepared.is_resume());
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1, "a preview moves nothing");
        let (journal, state, archived) = prepared.open().expect("opens");
        assert!(state.row(&pull(1)).is_none(), "a new journal");
        drop(journal);
        let archived = archived.expect("archived");
        let name = archived.file_name().expect("name").to_string_lossy().into_owned();
        assert!(name.starts_with("plan.journal.") && name.ends_with('Z'), "{name}");
        assert_eq!(fs::read(&archived).expect("archive"), before);
        let state = load(&path).expect("loads");
        assert_eq!(state.header().expect("header").plan_sha256, other);
        // A second archive in the same second gets another name.
        drop(
            Journal::prepare(&path, Path::new("p"), PLAN_SHA, true)
                .expect("ok")
                .open()
                .expect("ok"),
        );
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 3);
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nope").join("plan.journal");
        let err = Journal::open(&path, Path::new("p"), PLAN_SHA).expect_err("no dir");
        assert!(matches!(err, JournalError::NoDirectory { .. }), "{err:?}");
        assert!(!dir.path().join("nope").exists(), "not created");
    }

    #[tokio::test]
    async fn a_failed_write_stops_later_writes() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        let file = OpenOptions::new().append(true).open("/dev/full").expect("open /dev/full");
        let (sender, requests) = mpsc::channel();
        let writer = std::thread::spawn(move || writer_loop(file, requests));
        let journal = Journal {
            path: PathBuf::from("/dev/full"),
            sender: Some(sender),
            writer: Some(writer),
            took_over: None,
        };
        let first = journal.record(OutcomeEntry::new(pull(1), Outcome::Applied, "")).await;
        assert!(matches!(first, Err(JournalError::Write { .. })), "{first:?}");
        let second = journal.record(OutcomeEntry::new(pull(2), Outcome::Applied, "")).await;
        let Err(JournalError::Write { message, .. }) = second else { panic!("{second:?}") };
        assert!(message.contains("earlier write failed"));
    }

    #[test]
    fn empty_or_cut_short_first_line_starts_afresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        fs::write(&path, br#"{"kind":"hea"#).expect("write");
        let (journal, state) = open(dir.path());
        assert_eq!(state.entries(), 1);
        drop(journal);
        let text = lines(&path);
        assert_eq!(text.len(), 1);
        assert!(text[0].starts_with(r#"{"kind":"header""#));
    }
}
