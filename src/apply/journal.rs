//! The apply journal: an append-only JSON-lines file that records, for every plan row, what
//! `apply` is about to write (an *intent*), the durable facts learnt along the way (*steps*,
//! such as the id of a newly created push mirror) and how the row ended (an *outcome*).
//!
//! Every entry is one line, written with a single `write_all`, then flushed and `fsync`ed
//! before [`Journal::record`] returns, so a crash, Ctrl-C or `kill -9` loses nothing that was
//! acknowledged. One writer thread owns the file, so lines never interleave however many
//! rows are applied concurrently. A lock file (`<journal>.lock`) keeps a second `apply` off
//! the same journal.
//!
//! Replaying the file ([`load`]) gives a [`JournalState`]: which rows are finished, which
//! were in flight when the previous run died, and for push mirrors which replacement was
//! already created, so a rerun repairs instead of duplicating.
//!
//! Resume rule: a row is finished (skipped on rerun) only when its last outcome is
//! `applied` or `already-applied`. Rows that ended `failed`, `drifted` or `skipped` are
//! attempted again (apply re-reads the live mirror first, so the drift check still protects
//! them). `--dry-run` writes no journal at all (see [`Journal::dry_run`]); a `dry-run`
//! outcome found in a journal never counts as finished.
//!
//! The journal never holds a credential: URLs are stored without userinfo, free-text
//! details are masked, and [`Journal::record`] refuses any entry that still contains
//! userinfo. This module does not read the plan or talk to GitLab.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::error::AppError;
use crate::redact::{looks_like_token, mask_userinfo};

/// The journal format version written in the header.
pub const FORMAT_VERSION: u32 = 1;

/// `glmirror <version>`, written in the header and resume lines.
pub const TOOL: &str = concat!("glmirror ", env!("CARGO_PKG_VERSION"));

/// Identifies one plan row: the same key as the plan CSV (`project_id`, `mirror_type`,
/// `mirror_id`). For a push row `mirror_id` is the id of the mirror being replaced.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowKey {
    /// GitLab project id.
    pub project_id: u64,
    /// `pull` or `push`.
    pub mirror_type: String,
    /// The push mirror id; `None` for pull mirrors.
    pub mirror_id: Option<u64>,
}

impl RowKey {
    /// The key of a project's pull mirror.
    pub fn pull(project_id: u64) -> Self {
        RowKey { project_id, mirror_type: "pull".to_owned(), mirror_id: None }
    }

    /// The key of one push mirror of a project.
    pub fn push(project_id: u64, mirror_id: u64) -> Self {
        RowKey { project_id, mirror_type: "push".to_owned(), mirror_id: Some(mirror_id) }
    }

    /// Whether this is a push mirror row.
    pub fn is_push(&self) -> bool {
        self.mirror_type == "push"
    }
}

impl fmt::Display for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mirror_id {
            Some(id) => write!(f, "project {} {} mirror {id}", self.project_id, self.mirror_type),
            None => write!(f, "project {} {} mirror", self.project_id, self.mirror_type),
        }
    }
}

/// One line of the journal. Serialized with a `kind` field naming the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Entry {
    /// First line of the file.
    Header(Header),
    /// A later run picked the journal up again.
    Resume(Resume),
    /// A GitLab write is about to happen.
    Intent(Intent),
    /// A durable fact learnt while applying a row.
    Step(Step),
    /// How a row ended.
    Outcome(OutcomeEntry),
}

/// The header: which plan this journal belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Journal format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// SHA-256 (lowercase hex) of the plan file's bytes.
    pub plan_sha256: String,
    /// The plan path as given on the command line (for messages only).
    pub plan_path: String,
    /// When the first run started (RFC 3339, UTC).
    pub started_at: String,
    /// `glmirror <version>`.
    pub tool: String,
}

/// Written when a later run resumes the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// SHA-256 of the plan (always the header's; kept for readers of the raw file).
    pub plan_sha256: String,
    /// When this run started (RFC 3339, UTC).
    pub started_at: String,
    /// `glmirror <version>`.
    pub tool: String,
    /// Bytes of an incomplete last line (a crash mid-write) removed before resuming.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The GitLab write an [`Intent`] announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteStep {
    /// Update a pull mirror (`PUT /projects/:id/mirror/pull`, or `PUT /projects/:id`).
    PullUpdate,
    /// Create the replacement push mirror (`POST /projects/:id/remote_mirrors`).
    PushCreate,
    /// Delete the replaced push mirror (`DELETE /projects/:id/remote_mirrors/:mirror_id`).
    PushDeleteOld,
    /// Restore mirror flags that GitLab changed during the update.
    RestoreFlags,
}

impl WriteStep {
    /// The code written to the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteStep::PullUpdate => "pull-update",
            WriteStep::PushCreate => "push-create",
            WriteStep::PushDeleteOld => "push-delete-old",
            WriteStep::RestoreFlags => "restore-flags",
        }
    }
}

/// Recorded before a GitLab write: which row, what is written, and to which URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The row.
    #[serde(flatten)]
    pub key: RowKey,
    /// What will be written.
    pub write: WriteStep,
    /// The target URL, without credentials (an SSH username such as `git@` may stay).
    pub new_url: String,
    /// Push rows: the mirror being replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_mirror_id: Option<u64>,
    /// Push rows, `push-delete-old`: the replacement that is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_mirror_id: Option<u64>,
    /// Push rows, `push-create`: the largest push-mirror id the project had just before the
    /// create. GitLab's ids only grow, so a replacement whose creation was never recorded
    /// (a crash) can only be a mirror with a larger id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_before: Option<u64>,
    /// When it was recorded (RFC 3339, UTC).
    pub at: String,
}

impl Intent {
    /// An intent recorded now. For push rows `old_mirror_id` defaults to the key's mirror id.
    pub fn new(key: RowKey, write: WriteStep, new_url: impl Into<String>) -> Self {
        let old_mirror_id = if key.is_push() { key.mirror_id } else { None };
        Intent {
            key,
            write,
            new_url: new_url.into(),
            old_mirror_id,
            new_mirror_id: None,
            newest_before: None,
            at: now_rfc3339(),
        }
    }

    /// Set the id of the push mirror being replaced.
    pub fn with_old_mirror_id(mut self, id: u64) -> Self {
        self.old_mirror_id = Some(id);
        self
    }

    /// Set the largest push-mirror id seen before a `push-create`.
    pub fn with_newest_before(mut self, id: Option<u64>) -> Self {
        self.newest_before = id;
        self
    }

    /// Set the id of the replacement push mirror (for `push-delete-old`).
    pub fn with_new_mirror_id(mut self, id: u64) -> Self {
        self.new_mirror_id = Some(id);
        self
    }
}

/// A durable fact learnt while applying a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// The pull mirror was written.
    PullUpdated,
    /// The replacement push mirror exists (its id is in `new_mirror_id`). Recorded before
    /// the old mirror is deleted.
    PushCreated,
    /// The replacement was read back and matches the target.
    PushConfirmed,
    /// The replaced push mirror is gone.
    PushOldDeleted,
    /// Mirror flags were restored.
    FlagsRestored,
}

/// Recorded after a write succeeded, before the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The row.
    #[serde(flatten)]
    pub key: RowKey,
    /// What happened.
    pub step: StepKind,
    /// `push-created`: the replacement's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_mirror_id: Option<u64>,
    /// Free text (masked before writing).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// When it was recorded (RFC 3339, UTC).
    pub at: String,
}

impl Step {
    /// A step recorded now.
    pub fn new(key: RowKey, step: StepKind) -> Self {
        Step { key, step, new_mirror_id: None, detail: String::new(), at: now_rfc3339() }
    }

    /// `push-created` with the replacement's id.
    pub fn push_created(key: RowKey, new_mirror_id: u64) -> Self {
        Step { new_mirror_id: Some(new_mirror_id), ..Step::new(key, StepKind::PushCreated) }
    }

    /// Attach free text.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// How a row ended: the same codes as the report's `outcome` column.
pub use crate::plan::Outcome;

/// Recorded when a row is done, whatever the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeEntry {
    /// The row.
    #[serde(flatten)]
    pub key: RowKey,
    /// The outcome code.
    pub outcome: Outcome,
    /// One line for the report (masked before writing).
    #[serde(default)]
    pub detail: String,
    /// When the row finished (RFC 3339, UTC).
    pub finished_at: String,
}

impl OutcomeEntry {
    /// An outcome recorded now.
    pub fn new(key: RowKey, outcome: Outcome, detail: impl Into<String>) -> Self {
        OutcomeEntry { key, outcome, detail: detail.into(), finished_at: now_rfc3339() }
    }
}

impl From<Header> for Entry {
    fn from(e: Header) -> Self {
        Entry::Header(e)
    }
}

impl From<Resume> for Entry {
    fn from(e: Resume) -> Self {
        Entry::Resume(e)
    }
}

impl From<Intent> for Entry {
    fn from(e: Intent) -> Self {
        Entry::Intent(e)
    }
}

impl From<Step> for Entry {
    fn from(e: Step) -> Self {
        Entry::Step(e)
    }
}

impl From<OutcomeEntry> for Entry {
    fn from(e: OutcomeEntry) -> Self {
        Entry::Outcome(e)
    }
}

impl Entry {
    /// The row this entry is about, if any.
    pub fn key(&self) -> Option<&RowKey> {
        match self {
            Entry::Header(_) | Entry::Resume(_) => None,
            Entry::Intent(e) => Some(&e.key),
            Entry::Step(e) => Some(&e.key),
            Entry::Outcome(e) => Some(&e.key),
        }
    }
}

/// Errors from opening, reading or writing a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The journal's directory does not exist (it is not created for you).
    #[error("journal {}: directory {} does not exist", path.display(), dir.display())]
    NoDirectory {
        /// The journal path.
        path: PathBuf,
        /// Its missing directory.
        dir: PathBuf,
    },
    /// The journal was written for another plan file.
    #[error(
        "journal {} belongs to another plan ({plan_path}, sha256 {}…), not this one (sha256 {}…)",
        journal.display(), short(journal_plan_sha256), short(plan_sha256)
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
    #[error("{}:{line}: corrupt journal entry: {message}", path.display())]
    Corrupt {
        /// The journal path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The header names a format this version cannot read.
    #[error("{}: journal format version {version} is not supported (this glmirror writes {FORMAT_VERSION})", path.display())]
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
    /// Another live process holds the journal's lock file.
    #[error("journal is in use by another glmirror process (pid {pid}, lock file {})", lock.display())]
    Locked {
        /// The lock file.
        lock: PathBuf,
        /// The pid written in it.
        pid: u32,
    },
    /// The lock file exists but does not hold a pid.
    #[error("lock file {} exists but does not name a process", lock.display())]
    LockUnreadable {
        /// The lock file.
        lock: PathBuf,
    },
    /// Writing an entry failed; the journal accepts no more entries in this run.
    #[error("cannot write journal {}: {message}", path.display())]
    Write {
        /// The journal path.
        path: PathBuf,
        /// The OS error, or the earlier one that stopped the writer.
        message: String,
    },
    /// The journal was closed (its writer is gone).
    #[error("journal {} is closed", path.display())]
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
    pub fn hint(&self) -> Option<String> {
        match self {
            JournalError::NoDirectory { dir, .. } => {
                Some(format!("create {} first, or pass another --journal path", dir.display()))
            }
            JournalError::OtherPlan { journal, .. } => Some(format!(
                "this journal belongs to another plan: finish that plan with it, or plan again \
                 and use a new --journal (a plan made now sees what was applied); delete {} \
                 only once its plan is finished or abandoned",
                journal.display()
            )),
            JournalError::Corrupt { .. } => Some(
                "the journal was edited or damaged: restore that line; without the journal, \
                 plan again before applying (an old plan would see its applied rows as drifted, \
                 and a push mirror caught between create and delete would be replaced twice)"
                    .to_owned(),
            ),
            JournalError::Locked { lock, .. } => Some(format!(
                "wait for the other `glmirror apply` to finish; if no such process is \
                 running, delete {}",
                lock.display()
            )),
            JournalError::LockUnreadable { lock } => Some(format!(
                "if no `glmirror apply` is running on this journal, delete {}",
                lock.display()
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

impl From<JournalError> for AppError {
    fn from(err: JournalError) -> Self {
        let hint = err.hint();
        let message = err.to_string();
        match (&err, hint) {
            (JournalError::OtherPlan { .. } | JournalError::NoDirectory { .. }, Some(h)) => {
                AppError::usage_hint(message, h)
            }
            (_, Some(h)) => AppError::fatal_hint(message, h),
            (_, None) => AppError::fatal(message),
        }
    }
}

/// The current time as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current UTC time always formats as RFC 3339")
}

/// SHA-256 of a file's bytes, lowercase hex.
pub fn plan_sha256(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// SHA-256 of bytes already in memory (hash the exact bytes that were parsed), lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------------------
// Credential check
// ---------------------------------------------------------------------------------------

/// Characters that end the "word" a URL lives in; the same set `mask_userinfo` uses.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`')
}

/// Remove plain SSH usernames (`ssh://git@host`) from `text`: they are not secrets, and
/// the plan keeps them in `new_url`. A username with a password, a path character, or the
/// shape of a token is kept, so the comparison below still catches it.
fn drop_ssh_usernames(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let scheme_start = head[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let scheme = head[scheme_start..pos].to_ascii_lowercase();
        let word_end = tail.find(ends_word).unwrap_or(tail.len());
        let word = &tail[..word_end];
        rest = tail;
        if matches!(scheme.as_str(), "ssh" | "git+ssh" | "ssh+git")
            && let Some(at) = word.rfind('@')
        {
            let user = &word[..at];
            let plain =
                !user.is_empty() && !user.contains([':', '/', '@']) && !looks_like_token(user);
            if plain {
                rest = &tail[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `text` holds the userinfo of a URL (`scheme://user[:pass]@`) that is not
/// already masked as `*****` and is not a plain SSH username.
fn has_credentials(text: &str) -> bool {
    if !text.contains("://") {
        return false;
    }
    let probe = drop_ssh_usernames(text);
    mask_userinfo(&probe) != probe
}

/// Find the first string in a JSON value that holds credentials; returns its field path.
fn find_credentials(value: &serde_json::Value, path: &str) -> Option<String> {
    match value {
        serde_json::Value::String(s) => has_credentials(s).then(|| path.to_owned()),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| find_credentials(v, &format!("{path}[{i}]")))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            find_credentials(v, &p)
        }),
        _ => None,
    }
}

/// Mask free-text fields, refuse credentials anywhere else, and serialize to one line
/// (with its trailing newline).
fn encode(mut entry: Entry) -> Result<String, JournalError> {
    // Free text may quote GitLab's error messages, which do not always mask URLs.
    match &mut entry {
        Entry::Step(s) => s.detail = mask_userinfo(&s.detail),
        Entry::Outcome(o) => o.detail = mask_userinfo(&o.detail),
        Entry::Header(_) | Entry::Resume(_) | Entry::Intent(_) => {}
    }
    let row = entry.key().map_or_else(|| "the journal header".to_owned(), ToString::to_string);
    let value = serde_json::to_value(&entry)?;
    if let Some(field) = find_credentials(&value, "") {
        return Err(JournalError::Credentials { row, field });
    }
    // Serialize the entry itself (not the value) so `kind` comes first, as documented.
    let mut line = serde_json::to_string(&entry)?;
    // Belt and braces: the serialized text itself (escaping must not hide anything).
    if has_credentials(&line) || line.contains('\n') {
        return Err(JournalError::Credentials { row, field: "(entry)".to_owned() });
    }
    line.push('\n');
    Ok(line)
}

// ---------------------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------------------

/// What a row's history says, as seen by a rerun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowState {
    /// The last thing recorded is an outcome. Only `applied`/`already-applied` make the
    /// row skipped on rerun ([`Outcome::is_final`]).
    Finished {
        /// The outcome.
        outcome: Outcome,
        /// Its detail.
        detail: String,
    },
    /// An intent was recorded and no outcome after it: the run died mid-row. The row must
    /// be re-read before anything is written.
    InFlight {
        /// The latest intent.
        intent: Intent,
        /// Every step recorded for the row since it was last finished, in order.
        steps: Vec<Step>,
    },
}

/// What a push row's journal says about its replacement, for repairing without
/// duplicating. Apply should: reuse `replacement_id` if set (never create a second one);
/// when `create_unrecorded` is set, look for a push mirror with the target URL before
/// creating; delete `old_mirror_id` if it still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushRepair {
    /// The mirror being replaced.
    pub old_mirror_id: Option<u64>,
    /// The replacement created by an earlier attempt, if its creation was recorded.
    pub replacement_id: Option<u64>,
    /// The latest `push-create` intent has no `push-created` step after it: GitLab may
    /// hold a replacement whose id was never recorded.
    pub create_unrecorded: bool,
    /// The old mirror's deletion was recorded.
    pub old_deleted: bool,
    /// From the latest `push-create` intent: the largest push-mirror id before the create.
    pub newest_before: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RowEvent {
    Intent(Intent),
    Step(Step),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RowRecord {
    /// Intents and steps since the row was last finished with a final outcome.
    events: Vec<RowEvent>,
    /// The last outcome, cleared by a later intent.
    outcome: Option<OutcomeEntry>,
}

/// How the end of the file looked when it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Ends with a newline (or is empty).
    Clean,
    /// An incomplete last line (a crash mid-write) of this many bytes, ignored.
    Dropped(u64),
    /// The last line is a complete entry that lacks its newline.
    MissingNewline,
}

/// The replayed contents of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalState {
    header: Option<Header>,
    resumes: usize,
    entries: usize,
    rows: BTreeMap<RowKey, RowRecord>,
    /// Length of the file up to and including the last complete entry.
    valid_len: u64,
    tail: Tail,
}

impl JournalState {
    /// A journal with nothing in it (a first run, or a dry run without a journal).
    pub fn empty() -> Self {
        JournalState {
            header: None,
            resumes: 0,
            entries: 0,
            rows: BTreeMap::new(),
            valid_len: 0,
            tail: Tail::Clean,
        }
    }

    /// The header, or `None` for an empty file.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// How many `resume` lines were found (earlier reruns).
    pub fn resumes(&self) -> usize {
        self.resumes
    }

    /// How many complete entries were read, header included.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Bytes of an incomplete last line that was ignored (0 if none).
    pub fn dropped_tail_bytes(&self) -> u64 {
        match self.tail {
            Tail::Dropped(n) => n,
            Tail::Clean | Tail::MissingNewline => 0,
        }
    }

    /// The state of one row, or `None` if the journal never mentions it.
    pub fn row(&self, key: &RowKey) -> Option<RowState> {
        self.rows.get(key).and_then(row_state)
    }

    /// Every row the journal mentions, in key order.
    pub fn rows(&self) -> impl Iterator<Item = (&RowKey, RowState)> + '_ {
        self.rows.iter().filter_map(|(k, r)| row_state(r).map(|s| (k, s)))
    }

    /// Rows with an intent and no outcome: the previous run died while applying them.
    pub fn in_flight(&self) -> Vec<&RowKey> {
        self.rows()
            .filter(|(_, s)| matches!(s, RowState::InFlight { .. }))
            .map(|(k, _)| k)
            .collect()
    }

    /// Whether an earlier run wrote, or tried to write, this row since it last finished for
    /// good (an intent is recorded; the row may since have ended `failed`).
    pub fn attempted(&self, key: &RowKey) -> bool {
        self.rows
            .get(key)
            .is_some_and(|r| r.events.iter().any(|e| matches!(e, RowEvent::Intent(_))))
    }

    /// Whether a rerun skips this row: its last outcome is `applied` or `already-applied`.
    pub fn should_skip(&self, key: &RowKey) -> bool {
        self.rows.get(key).and_then(|r| r.outcome.as_ref()).is_some_and(|o| o.outcome.is_final())
    }

    /// For a push row that is not finished and whose journal mentions a write, what an
    /// earlier attempt already did. `None` for pull rows, unknown rows and finished rows.
    pub fn push_repair(&self, key: &RowKey) -> Option<PushRepair> {
        if !key.is_push() || self.should_skip(key) {
            return None;
        }
        let record = self.rows.get(key)?;
        if record.events.is_empty() {
            return None;
        }
        let mut repair = PushRepair {
            old_mirror_id: key.mirror_id,
            replacement_id: None,
            create_unrecorded: false,
            old_deleted: false,
            newest_before: None,
        };
        for event in &record.events {
            match event {
                RowEvent::Intent(i) => {
                    if let Some(old) = i.old_mirror_id {
                        repair.old_mirror_id = Some(old);
                    }
                    if i.write == WriteStep::PushCreate {
                        repair.create_unrecorded = true;
                        repair.newest_before = i.newest_before;
                    }
                    if repair.replacement_id.is_none() {
                        repair.replacement_id = i.new_mirror_id;
                    }
                }
                RowEvent::Step(s) => match s.step {
                    StepKind::PushCreated => {
                        repair.create_unrecorded = false;
                        if s.new_mirror_id.is_some() {
                            repair.replacement_id = s.new_mirror_id;
                        }
                    }
                    StepKind::PushOldDeleted => repair.old_deleted = true,
                    StepKind::PullUpdated | StepKind::PushConfirmed | StepKind::FlagsRestored => {}
                },
            }
        }
        Some(repair)
    }

    /// Apply one parsed entry (line `line`) to the state.
    fn apply(&mut self, entry: Entry, path: &Path, line: usize) -> Result<(), JournalError> {
        let corrupt = |message: &str| JournalError::Corrupt {
            path: path.to_owned(),
            line,
            message: message.to_owned(),
        };
        if self.entries == 0 && !matches!(entry, Entry::Header(_)) {
            return Err(corrupt("the first entry must be the journal header"));
        }
        self.entries += 1;
        match entry {
            Entry::Header(h) => {
                if self.header.is_some() {
                    return Err(corrupt("a second header"));
                }
                if h.version != FORMAT_VERSION {
                    return Err(JournalError::UnsupportedVersion {
                        path: path.to_owned(),
                        version: h.version,
                    });
                }
                self.header = Some(h);
            }
            Entry::Resume(_) => self.resumes += 1,
            Entry::Intent(i) => {
                let record = self.rows.entry(i.key.clone()).or_default();
                if let Some(done) = record.outcome.take()
                    && done.outcome.is_final()
                {
                    record.events.clear();
                }
                record.events.push(RowEvent::Intent(i));
            }
            Entry::Step(s) => {
                // A fact stays a fact even if no intent precedes it (lenient on purpose: a
                // journal that was written must always load again).
                self.rows.entry(s.key.clone()).or_default().events.push(RowEvent::Step(s));
            }
            Entry::Outcome(o) => {
                let record = self.rows.entry(o.key.clone()).or_default();
                record.outcome = Some(o);
            }
        }
        Ok(())
    }
}

fn row_state(record: &RowRecord) -> Option<RowState> {
    if let Some(o) = &record.outcome {
        return Some(RowState::Finished { outcome: o.outcome, detail: o.detail.clone() });
    }
    let intent = record.events.iter().rev().find_map(|e| match e {
        RowEvent::Intent(i) => Some(i.clone()),
        RowEvent::Step(_) => None,
    })?;
    let steps = record
        .events
        .iter()
        .filter_map(|e| match e {
            RowEvent::Step(s) => Some(s.clone()),
            RowEvent::Intent(_) => None,
        })
        .collect();
    Some(RowState::InFlight { intent, steps })
}

/// Read and replay a journal file.
///
/// An incomplete last line (no trailing newline: a crash mid-write) is ignored; a complete
/// line that does not parse is an error naming its line number.
pub fn load(path: &Path) -> Result<JournalState, JournalError> {
    let bytes = fs::read(path).map_err(|source| JournalError::Io {
        action: "cannot read journal",
        path: path.to_owned(),
        source,
    })?;
    parse(&bytes, path)
}

fn parse(bytes: &[u8], path: &Path) -> Result<JournalState, JournalError> {
    let mut state = JournalState::empty();
    let mut offset: u64 = 0;
    for (index, segment) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let len = segment.len() as u64;
        let Some(body) = segment.strip_suffix(b"\n") else {
            // The last segment, with no newline: a write cut short. Keep it only if it is
            // a whole entry.
            let whole = std::str::from_utf8(segment)
                .ok()
                .and_then(|text| serde_json::from_str::<Entry>(text).ok());
            match whole {
                Some(entry) => {
                    state.apply(entry, path, line)?;
                    state.tail = Tail::MissingNewline;
                    offset += len;
                }
                None => state.tail = Tail::Dropped(len),
            }
            break;
        };
        let text = std::str::from_utf8(body).map_err(|_| JournalError::Corrupt {
            path: path.to_owned(),
            line,
            message: "not valid UTF-8".to_owned(),
        })?;
        if !text.trim().is_empty() {
            let entry: Entry = serde_json::from_str(text).map_err(|e| JournalError::Corrupt {
                path: path.to_owned(),
                line,
                message: e.to_string(),
            })?;
            state.apply(entry, path, line)?;
        }
        offset += len;
    }
    state.valid_len = offset;
    Ok(state)
}

// ---------------------------------------------------------------------------------------
// Lock file
// ---------------------------------------------------------------------------------------

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
pub struct LockFile {
    path: PathBuf,
    took_over: Option<u32>,
}

impl LockFile {
    /// Take the lock for `journal`. A lock whose process is gone is taken over (with a
    /// warning); a live one is an error.
    ///
    /// Two processes taking over the same stale lock in the same instant could both
    /// succeed; that needs a dead run plus two simultaneous restarts, and is accepted.
    pub fn acquire(journal: &Path) -> Result<LockFile, JournalError> {
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

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid of a dead process whose stale lock was taken over, if any.
    pub fn took_over(&self) -> Option<u32> {
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

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

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

/// An open journal. Cheap to share by reference between concurrent row tasks.
pub struct Journal {
    path: PathBuf,
    sender: Option<mpsc::Sender<WriteRequest>>,
    writer: Option<JoinHandle<()>>,
    lock: Option<LockFile>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("dry_run", &self.is_dry_run())
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Open (or create) the journal at `path` for the plan whose bytes hash to
    /// `plan_sha256` (see [`sha256_hex`], [`plan_sha256`]).
    ///
    /// Takes the lock, replays an existing file (refusing one written for another plan),
    /// cuts an incomplete last line, and appends a `resume` line; a new or empty file gets
    /// a header. Returns the journal and what the earlier runs recorded. The journal's
    /// directory must exist.
    pub fn open(
        path: &Path,
        plan_path: &Path,
        plan_sha256: &str,
    ) -> Result<(Journal, JournalState), JournalError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(JournalError::NoDirectory { path: path.to_owned(), dir: dir.to_owned() });
        }
        let lock = LockFile::acquire(path)?;
        let io_err = |action, source| JournalError::Io { action, path: path.to_owned(), source };

        let existing = match fs::metadata(path) {
            Ok(_) => Some(load(path)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("cannot read journal", e)),
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_err("cannot open journal", e))?;

        let state = match existing {
            Some(state) if state.header.is_some() => {
                let header = state.header.as_ref().expect("checked just above");
                if header.plan_sha256 != plan_sha256 {
                    return Err(JournalError::OtherPlan {
                        journal: path.to_owned(),
                        plan_path: header.plan_path.clone(),
                        journal_plan_sha256: header.plan_sha256.clone(),
                        plan_sha256: plan_sha256.to_owned(),
                    });
                }
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
                    plan_sha256: plan_sha256.to_owned(),
                    started_at: now_rfc3339(),
                    tool: TOOL.to_owned(),
                    dropped_bytes: state.dropped_tail_bytes(),
                };
                write_line(&mut file, encode(resume.into())?.as_bytes())
                    .map_err(|e| io_err("cannot write journal", e))?;
                state
            }
            // New, empty, or only a cut-short first line: start afresh.
            _ => {
                file.set_len(0).map_err(|e| io_err("cannot write journal", e))?;
                let header = Header {
                    version: FORMAT_VERSION,
                    plan_sha256: plan_sha256.to_owned(),
                    plan_path: plan_path.display().to_string(),
                    started_at: now_rfc3339(),
                    tool: TOOL.to_owned(),
                };
                write_line(&mut file, encode(header.clone().into())?.as_bytes())
                    .map_err(|e| io_err("cannot write journal", e))?;
                sync_dir(dir);
                let mut state = JournalState::empty();
                state.header = Some(header);
                state.entries = 1;
                state
            }
        };

        let (sender, requests) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("glmirror-journal".to_owned())
            .spawn(move || writer_loop(file, requests))
            .map_err(|e| io_err("cannot start the journal writer for", e))?;
        let journal = Journal {
            path: path.to_owned(),
            sender: Some(sender),
            writer: Some(writer),
            lock: Some(lock),
        };
        Ok((journal, state))
    }

    /// A journal for `--dry-run`: entries are checked (so a dry run exercises the same
    /// credential refusal) but nothing is written, and no file or lock is created. A dry
    /// run therefore never makes a later real run skip a row.
    pub fn dry_run() -> Journal {
        Journal { path: PathBuf::from("(dry run)"), sender: None, writer: None, lock: None }
    }

    /// Whether this is the no-op journal of [`Journal::dry_run`].
    pub fn is_dry_run(&self) -> bool {
        self.sender.is_none()
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid of a dead process whose stale lock was taken over when opening, if any.
    pub fn took_over_stale_lock(&self) -> Option<u32> {
        self.lock.as_ref().and_then(LockFile::took_over)
    }

    /// Record one entry; returns once it is on disk (written, flushed, fsynced).
    ///
    /// Free-text `detail` fields are masked first; an entry that still holds URL
    /// credentials anywhere is refused with [`JournalError::Credentials`] and not written.
    /// After a failed write every later call fails too (the file may end mid-line).
    pub async fn record(&self, entry: impl Into<Entry>) -> Result<(), JournalError> {
        let line = encode(entry.into())?;
        let Some(sender) = &self.sender else {
            return Ok(());
        };
        let (ack, done) = oneshot::channel();
        sender
            .send(WriteRequest { line, ack })
            .map_err(|_| JournalError::Closed { path: self.path.clone() })?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(JournalError::Write { path: self.path.clone(), message }),
            Err(_) => Err(JournalError::Closed { path: self.path.clone() }),
        }
    }

    /// Stop the writer (after the entries already sent) and release the lock.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.sender.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        drop(self.lock.take());
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
    use std::sync::Arc;

    const PLAN_SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn open(dir: &Path) -> (Journal, JournalState) {
        Journal::open(&dir.join("plan.journal"), Path::new("plan.csv"), PLAN_SHA).expect("opens")
    }

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path).expect("read").lines().map(str::to_owned).collect()
    }

    #[tokio::test]
    async fn entries_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, state) = open(dir.path());
        assert_eq!(state.entries(), 1);
        let push = RowKey::push(7, 41);
        let entries: Vec<Entry> = vec![
            Intent::new(RowKey::pull(3), WriteStep::PullUpdate, "https://github.com/a/b.git")
                .into(),
            Step::new(RowKey::pull(3), StepKind::PullUpdated).into(),
            OutcomeEntry::new(RowKey::pull(3), Outcome::Applied, "").into(),
            Intent::new(push.clone(), WriteStep::PushCreate, "ssh://git@example.com/a/b.git")
                .into(),
            Step::push_created(push.clone(), 99).with_detail("created").into(),
            Intent::new(push.clone(), WriteStep::PushDeleteOld, "ssh://git@example.com/a/b.git")
                .with_new_mirror_id(99)
                .into(),
            OutcomeEntry::new(push.clone(), Outcome::Failed, "DELETE: 500").into(),
        ];
        for e in &entries {
            journal.record(e.clone()).await.expect("recorded");
        }
        journal.close();
        assert!(!lock_path(&path).exists(), "lock released on close");

        let text = lines(&path);
        assert_eq!(text.len(), 1 + entries.len());
        let header: serde_json::Value = serde_json::from_str(&text[0]).expect("json");
        assert_eq!(header["kind"], "header");
        assert_eq!(header["version"], 1);
        assert_eq!(header["plan_sha256"], PLAN_SHA);
        assert_eq!(header["plan_path"], "plan.csv");
        assert!(header["tool"].as_str().expect("tool").starts_with("glmirror "));
        let intent: serde_json::Value = serde_json::from_str(&text[4]).expect("json");
        assert_eq!(intent["kind"], "intent");
        assert_eq!(intent["project_id"], 7);
        assert_eq!(intent["mirror_type"], "push");
        assert_eq!(intent["mirror_id"], 41);
        assert_eq!(intent["write"], "push-create");
        assert_eq!(intent["old_mirror_id"], 41);
        for (line, want) in text[1..].iter().zip(&entries) {
            let got: Entry = serde_json::from_str(line).expect("parses back");
            assert_eq!(&got, want);
        }

        let state = load(&path).expect("loads");
        assert_eq!(state.entries(), 1 + entries.len());
        assert!(state.should_skip(&RowKey::pull(3)));
        assert!(!state.should_skip(&push), "failed rows are retried");
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
                    let key = RowKey::push(task, n);
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
        let path = journal.path().to_owned();
        journal.close();
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
        journal
            .record(OutcomeEntry::new(RowKey::pull(1), Outcome::Applied, "ok"))
            .await
            .expect("ok");
        journal.close();
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        let fragment = br#"{"kind":"outcome","project_id":2,"mirror_ty"#;
        f.write_all(fragment).expect("write");
        drop(f);

        let state = load(&path).expect("a cut-short last line is tolerated");
        assert_eq!(state.entries(), 2);
        assert_eq!(state.dropped_tail_bytes(), fragment.len() as u64);
        assert!(state.row(&RowKey::pull(2)).is_none());

        let (journal, state) = open(dir.path());
        assert!(state.should_skip(&RowKey::pull(1)));
        journal.record(OutcomeEntry::new(RowKey::pull(2), Outcome::Applied, "")).await.expect("ok");
        journal.close();
        let text = lines(&path);
        assert_eq!(text.len(), 4, "{text:#?}");
        assert!(text[2].contains(r#""kind":"resume""#));
        assert!(text[2].contains(&format!(r#""dropped_bytes":{}"#, fragment.len())));
        let state = load(&path).expect("loads after repair");
        assert!(state.should_skip(&RowKey::pull(2)));
        assert_eq!(state.resumes(), 1);
    }

    #[tokio::test]
    async fn whole_last_line_without_newline_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, _) = open(dir.path());
        journal.close();
        let line = encode(OutcomeEntry::new(RowKey::pull(5), Outcome::Applied, "").into())
            .expect("encodes");
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(line.trim_end().as_bytes()).expect("write");
        drop(f);
        let (journal, state) = open(dir.path());
        assert!(state.should_skip(&RowKey::pull(5)));
        journal.close();
        let text = lines(&path);
        assert_eq!(text.len(), 3);
        assert!(text[2].contains(r#""kind":"resume""#));
    }

    #[test]
    fn corrupt_middle_line_is_rejected_with_its_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        drop(open(dir.path()));
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"kind\":\"outcome\",\"project_id\":1,\"mirror_type\":\"pull\",\"mirror_id\":null,\"outcome\":\"applied\",\"detail\":\"\",\"finished_at\":\"x\"}\n").expect("w");
        f.write_all(b"{not json}\n").expect("w");
        f.write_all(
            b"{\"kind\":\"resume\",\"plan_sha256\":\"x\",\"started_at\":\"x\",\"tool\":\"x\"}\n",
        )
        .expect("w");
        drop(f);
        let err = load(&path).expect_err("corrupt");
        assert!(matches!(err, JournalError::Corrupt { line: 3, .. }), "{err:?}");
        assert!(err.to_string().contains("plan.journal:3:"), "{err}");
        assert!(err.hint().is_some());
        // Opening refuses too, and leaves the file alone.
        let before = fs::read(&path).expect("read");
        let err = Journal::open(&path, Path::new("plan.csv"), PLAN_SHA).expect_err("refused");
        assert!(matches!(err, JournalError::Corrupt { line: 3, .. }));
        assert_eq!(fs::read(&path).expect("read"), before);
        assert!(!lock_path(&path).exists(), "lock released after a failed open");
    }

    #[test]
    fn structural_errors_are_corrupt() {
        let p = Path::new("j");
        let header = encode(
            Header {
                version: 1,
                plan_sha256: "a".into(),
                plan_path: "p".into(),
                started_at: "t".into(),
                tool: "t".into(),
            }
            .into(),
        )
        .expect("encodes");
        let step = encode(Step::new(RowKey::pull(1), StepKind::PullUpdated).into()).expect("e");
        let outcome = encode(OutcomeEntry::new(RowKey::pull(1), Outcome::Applied, "").into())
            .expect("encodes");
        // No header first.
        let err = parse(outcome.as_bytes(), p).expect_err("no header");
        assert!(matches!(err, JournalError::Corrupt { line: 1, .. }));
        // A step with no intent is accepted (a written journal must always load again).
        let state = parse(format!("{header}{step}").as_bytes(), p).expect("orphan step");
        assert_eq!(state.row(&RowKey::pull(1)), None);
        // Two headers.
        let err = parse(format!("{header}{header}").as_bytes(), p).expect_err("two headers");
        assert!(matches!(err, JournalError::Corrupt { line: 2, .. }));
        // Another version.
        let v2 = header.replace(r#""version":1"#, r#""version":2"#);
        let err = parse(v2.as_bytes(), p).expect_err("v2");
        assert!(matches!(err, JournalError::UnsupportedVersion { version: 2, .. }));
        // Invalid UTF-8 in the middle.
        let mut bytes = header.into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        bytes.extend_from_slice(outcome.as_bytes());
        let err = parse(&bytes, p).expect_err("utf8");
        assert!(matches!(err, JournalError::Corrupt { line: 2, .. }));
    }

    #[tokio::test]
    async fn refuses_a_journal_of_another_plan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        drop(open(dir.path()));
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
        assert!(!lock_path(&path).exists());
    }

    #[test]
    fn plan_hash_is_sha256_of_the_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.csv");
        fs::write(&path, b"abc").expect("write");
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(plan_sha256(&path).expect("hash"), want);
        assert_eq!(sha256_hex(b"abc"), want);
        assert!(plan_sha256(&dir.path().join("missing")).is_err());
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
    async fn refuses_entries_with_credentials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, _) = open(dir.path());
        let key = RowKey::push(1, 2);
        let bad_urls = [
            "https://glpat-CANARY0123456789@github.com/a/b.git",
            "https://svc:glpat-CANARY0123456789@github.com/a/b.git",
            "https://oauth2@gitlab.example.com/a/b.git",
            "http://u:p@h/x",
            "ssh://git:glpat-CANARY0123456789@example.com/a.git",
            "ssh://ghp_CANARY0123456789abcdef@example.com/a.git",
            "https://git@github.com/a/b.git",
        ];
        for url in bad_urls {
            let err = journal
                .record(Intent::new(key.clone(), WriteStep::PushCreate, url))
                .await
                .expect_err(url);
            assert!(matches!(&err, JournalError::Credentials { field, .. } if field == "new_url"));
            let shown = format!("{err} {err:?} {:?}", err.hint());
            assert!(!shown.contains("CANARY"), "{shown}");
        }
        // Also refused by a dry-run journal, which otherwise writes nothing.
        let err = Journal::dry_run()
            .record(Intent::new(key.clone(), WriteStep::PushCreate, bad_urls[0]))
            .await
            .expect_err("refused in dry run too");
        assert!(matches!(err, JournalError::Credentials { .. }));

        let good_urls = [
            "https://github.com/a/b.git",
            "ssh://git@example.com/a/b.git",
            "ssh://deploy@example.com:2222/a/b.git",
            "https://*****:*****@github.com/a/b.git",
        ];
        for url in good_urls {
            journal.record(Intent::new(key.clone(), WriteStep::PushCreate, url)).await.expect(url);
        }
        // Free text is masked rather than refused.
        journal
            .record(OutcomeEntry::new(
                key.clone(),
                Outcome::Failed,
                "fatal: https://svc:glpat-CANARY0123456789@github.com/a/b.git: 403",
            ))
            .await
            .expect("masked");
        journal.close();
        let text = fs::read_to_string(&path).expect("read");
        assert!(!text.contains("CANARY"), "{text}");
        assert!(text.contains("https://*****:*****@github.com/a/b.git: 403"));
        assert_eq!(text.lines().count(), 1 + good_urls.len() + 1);
    }

    #[test]
    fn credential_detection() {
        assert!(!has_credentials("plain text, a@b, no url"));
        assert!(!has_credentials("ssh://git@h/x and https://h/y"));
        assert!(has_credentials("ssh://git@h/x and https://t@h/y"));
        assert!(has_credentials("GIT+SSH://a:b@h/x"));
        assert!(!has_credentials("SSH://git@h/x"));
        assert!(has_credentials("https://h/x@y"), "an @ in a word after :// is suspect");
    }

    #[tokio::test]
    async fn dry_run_journal_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before: Vec<_> = fs::read_dir(dir.path()).expect("ls").collect();
        let journal = Journal::dry_run();
        assert!(journal.is_dry_run());
        journal
            .record(OutcomeEntry::new(RowKey::pull(1), Outcome::DryRun, "would update"))
            .await
            .expect("ok");
        drop(journal);
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), before.len());

        // Even if a dry-run outcome reaches a real journal, it finishes nothing.
        let (journal, _) = open(dir.path());
        journal
            .record(OutcomeEntry::new(RowKey::pull(1), Outcome::DryRun, "would update"))
            .await
            .expect("ok");
        journal.close();
        let state = load(&dir.path().join("plan.journal")).expect("loads");
        assert!(!state.should_skip(&RowKey::pull(1)));
    }

    #[tokio::test]
    async fn replay_gives_finished_in_flight_and_absent_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let url = "https://github.com/a/b.git";
        let (journal, _) = open(dir.path());
        let done = RowKey::pull(1);
        let already = RowKey::pull(2);
        let drifted = RowKey::pull(3);
        let pull_crash = RowKey::pull(4);
        let push_crash_created = RowKey::push(5, 50);
        let push_crash_before_id = RowKey::push(6, 60);
        let push_failed_delete = RowKey::push(7, 70);
        let push_done = RowKey::push(8, 80);
        let records: Vec<Entry> = vec![
            Intent::new(done.clone(), WriteStep::PullUpdate, url).into(),
            OutcomeEntry::new(done.clone(), Outcome::Applied, "").into(),
            OutcomeEntry::new(already.clone(), Outcome::AlreadyApplied, "").into(),
            OutcomeEntry::new(drifted.clone(), Outcome::Drifted, "url changed").into(),
            Intent::new(pull_crash.clone(), WriteStep::PullUpdate, url).into(),
            Intent::new(push_crash_created.clone(), WriteStep::PushCreate, url).into(),
            Step::push_created(push_crash_created.clone(), 51).into(),
            Intent::new(push_crash_before_id.clone(), WriteStep::PushCreate, url).into(),
            Intent::new(push_failed_delete.clone(), WriteStep::PushCreate, url).into(),
            Step::push_created(push_failed_delete.clone(), 71).into(),
            Intent::new(push_failed_delete.clone(), WriteStep::PushDeleteOld, url)
                .with_new_mirror_id(71)
                .into(),
            OutcomeEntry::new(push_failed_delete.clone(), Outcome::Failed, "DELETE 500").into(),
            Intent::new(push_done.clone(), WriteStep::PushCreate, url).into(),
            Step::push_created(push_done.clone(), 81).into(),
            Intent::new(push_done.clone(), WriteStep::PushDeleteOld, url).into(),
            Step::new(push_done.clone(), StepKind::PushOldDeleted).into(),
            OutcomeEntry::new(push_done.clone(), Outcome::Applied, "").into(),
        ];
        for r in records {
            journal.record(r).await.expect("ok");
        }
        journal.close();
        let state = load(&path).expect("loads");

        assert_eq!(
            state.row(&done),
            Some(RowState::Finished { outcome: Outcome::Applied, detail: String::new() })
        );
        assert!(state.should_skip(&done) && state.should_skip(&already));
        assert!(!state.should_skip(&drifted));
        assert!(!state.should_skip(&pull_crash));
        assert!(!state.should_skip(&RowKey::pull(99)));
        assert_eq!(state.row(&RowKey::pull(99)), None);
        assert_eq!(state.push_repair(&RowKey::push(99, 1)), None);

        match state.row(&pull_crash) {
            Some(RowState::InFlight { intent, steps }) => {
                assert_eq!(intent.write, WriteStep::PullUpdate);
                assert_eq!(intent.new_url, url);
                assert!(steps.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(state.push_repair(&pull_crash), None, "pull rows have no push repair");

        match state.row(&push_crash_created) {
            Some(RowState::InFlight { steps, .. }) => {
                assert_eq!(steps.len(), 1);
                assert_eq!(steps[0].new_mirror_id, Some(51));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            state.push_repair(&push_crash_created),
            Some(PushRepair {
                old_mirror_id: Some(50),
                replacement_id: Some(51),
                create_unrecorded: false,
                old_deleted: false,
                newest_before: None,
            })
        );
        assert_eq!(
            state.push_repair(&push_crash_before_id),
            Some(PushRepair {
                old_mirror_id: Some(60),
                replacement_id: None,
                create_unrecorded: true,
                old_deleted: false,
                newest_before: None,
            })
        );
        // A failed row keeps what its attempt learnt, so the rerun reuses mirror 71.
        assert!(matches!(
            state.row(&push_failed_delete),
            Some(RowState::Finished { outcome: Outcome::Failed, .. })
        ));
        assert_eq!(
            state.push_repair(&push_failed_delete),
            Some(PushRepair {
                old_mirror_id: Some(70),
                replacement_id: Some(71),
                create_unrecorded: false,
                old_deleted: false,
                newest_before: None,
            })
        );
        assert!(state.should_skip(&push_done));
        assert_eq!(state.push_repair(&push_done), None);

        let mut in_flight = state.in_flight();
        in_flight.sort();
        assert_eq!(in_flight, vec![&pull_crash, &push_crash_created, &push_crash_before_id]);
    }

    #[tokio::test]
    async fn resumed_attempt_continues_the_row_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = RowKey::push(5, 50);
        let url = "https://github.com/a/b.git";
        let (journal, _) = open(dir.path());
        journal.record(Intent::new(key.clone(), WriteStep::PushCreate, url)).await.expect("ok");
        journal.record(Step::push_created(key.clone(), 51)).await.expect("ok");
        journal.close();
        // Second run: repairs by deleting the old mirror only.
        let (journal, state) = open(dir.path());
        let repair = state.push_repair(&key).expect("repair");
        assert_eq!(repair.replacement_id, Some(51));
        journal
            .record(Intent::new(key.clone(), WriteStep::PushDeleteOld, url).with_new_mirror_id(51))
            .await
            .expect("ok");
        journal.record(Step::new(key.clone(), StepKind::PushOldDeleted)).await.expect("ok");
        journal.close();
        let state = load(&dir.path().join("plan.journal")).expect("loads");
        assert_eq!(
            state.push_repair(&key),
            Some(PushRepair {
                old_mirror_id: Some(50),
                replacement_id: Some(51),
                create_unrecorded: false,
                old_deleted: true,
                newest_before: None,
            })
        );
        assert_eq!(state.resumes(), 1);
    }

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
            lock: None,
        };
        let first = journal.record(OutcomeEntry::new(RowKey::pull(1), Outcome::Applied, "")).await;
        assert!(matches!(first, Err(JournalError::Write { .. })), "{first:?}");
        let second = journal.record(OutcomeEntry::new(RowKey::pull(2), Outcome::Applied, "")).await;
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
