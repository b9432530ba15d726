//! The journal's on-disk schema: one JSON object per line, told apart by its `kind`
//! ([`Entry`]). These types *are* the format (version [`FORMAT_VERSION`]): a renamed field or
//! variant changes what journals written by earlier versions parse to.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plan::{MirrorType, RowKey};

/// The journal format version written in the header.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// `glmirror <version>`, written in the header and resume lines.
pub(crate) const TOOL: &str = concat!("glmirror ", env!("CARGO_PKG_VERSION"));

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
    Step(JournalStep),
    /// How a row ended.
    Outcome(OutcomeEntry),
}

/// The header: which plan this journal belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Journal format version (`FORMAT_VERSION` in files this glmirror writes).
    pub version: u32,
    /// SHA-256 (lowercase hex) of the plan file's bytes.
    pub plan_sha256: String,
    /// The plan path as given on the command line (for messages only).
    pub plan_path: String,
    /// When the first run started (RFC 3339, UTC).
    pub(crate) started_at: String,
    /// `glmirror <version>`.
    pub tool: String,
}

/// Written when a later run resumes the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// SHA-256 of the plan (always the header's; kept for readers of the raw file).
    pub(crate) plan_sha256: String,
    /// When this run started (RFC 3339, UTC).
    pub(crate) started_at: String,
    /// `glmirror <version>`.
    pub(crate) tool: String,
    /// Bytes of an incomplete last line (a crash mid-write) removed before resuming.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) dropped_bytes: u64,
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
    ///
    /// Part of format version 1, so it must still parse, but no glmirror so far records it:
    /// apply sends the flag restore right after `pull-updated`, with no intent of its own.
    RestoreFlags,
}

/// Recorded before a GitLab write: which row, what is written, and to which URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The row.
    #[serde(flatten)]
    pub(crate) key: RowKey,
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
    pub(crate) newest_before: Option<u64>,
    /// When it was recorded (RFC 3339, UTC).
    pub(crate) at: String,
}

impl Intent {
    /// An intent recorded now. For push rows `old_mirror_id` defaults to the key's mirror id.
    pub fn new(key: RowKey, write: WriteStep, new_url: impl Into<String>) -> Self {
        let old_mirror_id = if key.mirror_type == MirrorType::Push { key.mirror_id } else { None };
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
    pub(crate) fn with_old_mirror_id(mut self, id: u64) -> Self {
        self.old_mirror_id = Some(id);
        self
    }

    /// Set the largest push-mirror id seen before a `push-create`.
    pub(crate) fn with_newest_before(mut self, id: Option<u64>) -> Self {
        self.newest_before = id;
        self
    }

    /// Set the id of the replacement push mirror (for `push-delete-old`).
    pub(crate) fn with_new_mirror_id(mut self, id: u64) -> Self {
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
    ///
    /// Part of format version 1, so it must still parse, but no glmirror so far records it
    /// (see [`WriteStep::RestoreFlags`]).
    FlagsRestored,
}

/// Recorded after a write succeeded, before the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStep {
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

impl JournalStep {
    /// A step recorded now.
    pub fn new(key: RowKey, step: StepKind) -> Self {
        JournalStep { key, step, new_mirror_id: None, detail: String::new(), at: now_rfc3339() }
    }

    /// `push-created` with the replacement's id.
    pub(crate) fn push_created(key: RowKey, new_mirror_id: u64) -> Self {
        JournalStep {
            new_mirror_id: Some(new_mirror_id),
            ..JournalStep::new(key, StepKind::PushCreated)
        }
    }
}

/// How a row ended: the same codes as the report's `outcome` column.
pub use crate::plan::Outcome;

/// Recorded when a row is done, whatever the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeEntry {
    /// The row.
    #[serde(flatten)]
    pub(crate) key: RowKey,
    /// The outcome code.
    pub(crate) outcome: Outcome,
    /// One line for the report (masked before writing).
    #[serde(default)]
    pub(crate) detail: String,
    /// When the row finished (RFC 3339, UTC).
    pub(crate) finished_at: String,
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

impl From<JournalStep> for Entry {
    fn from(e: JournalStep) -> Self {
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
    pub(crate) fn key(&self) -> Option<&RowKey> {
        match self {
            Entry::Header(_) | Entry::Resume(_) => None,
            Entry::Intent(e) => Some(&e.key),
            Entry::Step(e) => Some(&e.key),
            Entry::Outcome(e) => Some(&e.key),
        }
    }
}

/// The current time as RFC 3339 in UTC.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current UTC time always formats as RFC 3339")
}

/// SHA-256 of bytes already in memory (hash the exact bytes that were parsed), lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::apply::journal::tests::{PLAN_SHA, lines, open, pull, push};
    use crate::apply::journal::{encode, load, lock_path};

    /// Journals glmirror 0.1.0 wrote (see `fixtures/journal/README.md`).
    const INTERRUPTED: &str = include_str!("../../../fixtures/journal/interrupted.jsonl");
    const FINISHED: &str = include_str!("../../../fixtures/journal/finished.jsonl");

    /// The fixture line that contains `needle`, with its newline.
    fn fixture_line(text: &str, needle: &str) -> String {
        let mut found = text.lines().filter(|l| l.contains(needle));
        let line = found.next().unwrap_or_else(|| panic!("no fixture line with {needle}"));
        assert!(found.next().is_none(), "{needle} is on more than one line");
        format!("{line}\n")
    }

    #[test]
    fn entries_encode_to_the_bytes_glmirror_0_1_wrote() {
        // Built the way apply builds them (only the times are the fixture's).
        let push26 = RowKey { project_id: 26, mirror_type: MirrorType::Push, mirror_id: Some(2) };
        let pull28 = RowKey { project_id: 28, mirror_type: MirrorType::Pull, mirror_id: None };
        let url = "https://gitlab.com/acme-backup/docs.git";
        let header = Header {
            version: FORMAT_VERSION,
            plan_sha256: "632122ef16ab700e8b64e80122c46811889115b0a481e5aa680f5e1e22c064ca".into(),
            plan_path: "plan.csv".into(),
            started_at: "2026-12-01T07:42:19.134927985Z".into(),
            tool: "glmirror 0.1.0".into(),
        };
        let create = Intent {
            at: "2026-12-01T07:42:19.236822498Z".into(),
            ..Intent::new(push26.clone(), WriteStep::PushCreate, url)
                .with_old_mirror_id(2)
                .with_newest_before(Some(2))
        };
        let created = JournalStep {
            at: "2026-12-01T07:42:19.239893384Z".into(),
            ..JournalStep::push_created(push26.clone(), 6)
        };
        let delete = Intent {
            at: "2026-12-01T07:42:19.596880805Z".into(),
            ..Intent::new(push26.clone(), WriteStep::PushDeleteOld, url)
                .with_old_mirror_id(2)
                .with_new_mirror_id(6)
        };
        let pull = Intent {
            at: "2026-12-01T07:42:19.599659057Z".into(),
            ..Intent::new(pull28, WriteStep::PullUpdate, "https://gitlab.com/acme-oss/ui-kit.git")
        };
        let resume = Resume {
            plan_sha256: header.plan_sha256.clone(),
            started_at: "2026-12-01T07:42:19.591006367Z".into(),
            tool: "glmirror 0.1.0".into(),
            dropped_bytes: 0,
        };
        let applied = OutcomeEntry {
            finished_at: "2026-12-01T07:42:19.032799094Z".into(),
            ..OutcomeEntry::new(push26, Outcome::Applied, "replaced by push mirror 6")
        };
        let cases: [(Entry, &str, &str); 7] = [
            (header.into(), INTERRUPTED, "07:42:19.134927985Z"),
            (create.into(), INTERRUPTED, "07:42:19.236822498Z"),
            (created.into(), INTERRUPTED, "07:42:19.239893384Z"),
            (delete.into(), INTERRUPTED, "07:42:19.596880805Z"),
            (pull.into(), INTERRUPTED, "07:42:19.599659057Z"),
            (resume.into(), INTERRUPTED, "07:42:19.591006367Z"),
            (applied.into(), FINISHED, "07:42:19.032799094Z"),
        ];
        for (entry, text, at) in cases {
            assert_eq!(encode(entry).expect("encodes"), fixture_line(text, at), "{at}");
        }

        // Every line of both fixtures reads back as an entry that writes out byte for byte.
        for line in INTERRUPTED.lines().chain(FINISHED.lines()) {
            let entry: Entry = serde_json::from_str(line).expect(line);
            assert_eq!(encode(entry).expect("encodes"), format!("{line}\n"));
        }
    }

    #[tokio::test]
    async fn entries_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, state) = open(dir.path());
        assert_eq!(state.entries(), 1);
        let push = push(7, 41);
        let entries: Vec<Entry> = vec![
            Intent::new(pull(3), WriteStep::PullUpdate, "https://github.com/a/b.git").into(),
            JournalStep::new(pull(3), StepKind::PullUpdated).into(),
            OutcomeEntry::new(pull(3), Outcome::Applied, "").into(),
            Intent::new(push.clone(), WriteStep::PushCreate, "ssh://git@example.com/a/b.git")
                .into(),
            JournalStep { detail: "created".into(), ..JournalStep::push_created(push.clone(), 99) }
                .into(),
            Intent::new(push.clone(), WriteStep::PushDeleteOld, "ssh://git@example.com/a/b.git")
                .with_new_mirror_id(99)
                .into(),
            OutcomeEntry::new(push.clone(), Outcome::Failed, "DELETE: 500").into(),
        ];
        for e in &entries {
            journal.record(e.clone()).await.expect("recorded");
        }
        drop(journal);
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
        assert!(state.should_skip(&pull(3)));
        assert!(!state.should_skip(&push), "failed rows are retried");
    }

    #[test]
    fn plan_hash_is_sha256_of_the_bytes() {
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(b"abc"), want);
    }
}
