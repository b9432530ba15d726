//! Replaying a journal file into a [`JournalState`]: which rows are finished, which were in
//! flight when a run died, and what a push row's earlier attempt already did
//! ([`PushRepair`]). The resume rules of the module documentation live here.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::{
    Entry, FORMAT_VERSION, Header, Intent, JournalError, JournalStep, Outcome, OutcomeEntry,
    StepKind, WriteStep,
};
use crate::plan::{MirrorType, RowKey};

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
        steps: Vec<JournalStep>,
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
    Step(JournalStep),
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
pub(super) enum Tail {
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
    pub(super) header: Option<Header>,
    resumes: usize,
    pub(super) entries: usize,
    rows: BTreeMap<RowKey, RowRecord>,
    /// Length of the file up to and including the last complete entry.
    pub(super) valid_len: u64,
    pub(super) tail: Tail,
}

impl JournalState {
    /// A journal with nothing in it (a first run, or a dry run without a journal).
    pub(crate) fn empty() -> Self {
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
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
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
        if key.mirror_type != MirrorType::Push || self.should_skip(key) {
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

    /// Every push mirror the journal records as a replacement some row made, as
    /// (project id, mirror id).
    pub(crate) fn recorded_replacements(&self) -> Vec<(u64, u64)> {
        let mut found = Vec::new();
        for (key, record) in &self.rows {
            for event in &record.events {
                let id = match event {
                    RowEvent::Intent(i) => i.new_mirror_id,
                    RowEvent::Step(s) => s.new_mirror_id,
                };
                found.extend(id.map(|id| (key.project_id, id)));
            }
        }
        found
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

/// Replay journal bytes read from `path` (named in errors).
pub(super) fn parse(bytes: &[u8], path: &Path) -> Result<JournalState, JournalError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;

    use crate::apply::journal::tests::{PLAN_SHA, open, pull, push};
    use crate::apply::journal::{Journal, encode, lock_path};

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
        let step = encode(JournalStep::new(pull(1), StepKind::PullUpdated).into()).expect("e");
        let outcome =
            encode(OutcomeEntry::new(pull(1), Outcome::Applied, "").into()).expect("encodes");
        // No header first.
        let err = parse(outcome.as_bytes(), p).expect_err("no header");
        assert!(matches!(err, JournalError::Corrupt { line: 1, .. }));
        // A step with no intent is accepted (a written journal must always load again).
        let state = parse(format!("{header}{step}").as_bytes(), p).expect("orphan step");
        assert_eq!(state.row(&pull(1)), None);
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
    async fn a_dry_run_outcome_finishes_nothing() {
        // apply records nothing in a dry run; should such an outcome reach a journal anyway,
        // the row is still done on the next real run.
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = open(dir.path());
        journal
            .record(OutcomeEntry::new(pull(1), Outcome::DryRun, "would update"))
            .await
            .expect("ok");
        drop(journal);
        let state = load(&dir.path().join("plan.journal")).expect("loads");
        assert!(!state.should_skip(&pull(1)));
    }

    #[tokio::test]
    async fn replay_gives_finished_in_flight_and_absent_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let url = "https://github.com/a/b.git";
        let (journal, _) = open(dir.path());
        let done = pull(1);
        let already = pull(2);
        let drifted = pull(3);
        let pull_crash = pull(4);
        let push_crash_created = push(5, 50);
        let push_crash_before_id = push(6, 60);
        let push_failed_delete = push(7, 70);
        let push_done = push(8, 80);
        let records: Vec<Entry> = vec![
            Intent::new(done.clone(), WriteStep::PullUpdate, url).into(),
            OutcomeEntry::new(done.clone(), Outcome::Applied, "").into(),
            OutcomeEntry::new(already.clone(), Outcome::AlreadyApplied, "").into(),
            OutcomeEntry::new(drifted.clone(), Outcome::Drifted, "url changed").into(),
            Intent::new(pull_crash.clone(), WriteStep::PullUpdate, url).into(),
            Intent::new(push_crash_created.clone(), WriteStep::PushCreate, url).into(),
            JournalStep::push_created(push_crash_created.clone(), 51).into(),
            Intent::new(push_crash_before_id.clone(), WriteStep::PushCreate, url).into(),
            Intent::new(push_failed_delete.clone(), WriteStep::PushCreate, url).into(),
            JournalStep::push_created(push_failed_delete.clone(), 71).into(),
            Intent::new(push_failed_delete.clone(), WriteStep::PushDeleteOld, url)
                .with_new_mirror_id(71)
                .into(),
            OutcomeEntry::new(push_failed_delete.clone(), Outcome::Failed, "DELETE 500").into(),
            Intent::new(push_done.clone(), WriteStep::PushCreate, url).into(),
            JournalStep::push_created(push_done.clone(), 81).into(),
            Intent::new(push_done.clone(), WriteStep::PushDeleteOld, url).into(),
            JournalStep::new(push_done.clone(), StepKind::PushOldDeleted).into(),
            OutcomeEntry::new(push_done.clone(), Outcome::Applied, "").into(),
        ];
        for r in records {
            journal.record(r).await.expect("ok");
        }
        drop(journal);
        let state = load(&path).expect("loads");

        assert_eq!(
            state.row(&done),
            Some(RowState::Finished { outcome: Outcome::Applied, detail: String::new() })
        );
        assert!(state.should_skip(&done) && state.should_skip(&already));
        assert!(!state.should_skip(&drifted));
        assert!(!state.should_skip(&pull_crash));
        assert!(!state.should_skip(&pull(99)));
        assert_eq!(state.row(&pull(99)), None);
        assert_eq!(state.push_repair(&push(99, 1)), None);

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
        let key = push(5, 50);
        let url = "https://github.com/a/b.git";
        let (journal, _) = open(dir.path());
        journal.record(Intent::new(key.clone(), WriteStep::PushCreate, url)).await.expect("ok");
        journal.record(JournalStep::push_created(key.clone(), 51)).await.expect("ok");
        drop(journal);
        // Second run: repairs by deleting the old mirror only.
        let (journal, state) = open(dir.path());
        let repair = state.push_repair(&key).expect("repair");
        assert_eq!(repair.replacement_id, Some(51));
        journal
            .record(Intent::new(key.clone(), WriteStep::PushDeleteOld, url).with_new_mirror_id(51))
            .await
            .expect("ok");
        journal.record(JournalStep::new(key.clone(), StepKind::PushOldDeleted)).await.expect("ok");
        drop(journal);
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
}
