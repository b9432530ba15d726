//! The apply executor: runs the plan's `update` rows concurrently, one row at a time per task,
//! journaling each GitLab write before it is sent and each row's outcome after, and turns
//! per-row failures into outcomes (only journal failures end the run). The pull and push
//! write paths are in `pull.rs` and `push.rs`, their decisions in `pull_steps.rs` and
//! `push_steps.rs`, the pure comparisons in `matching.rs`; the decisions made here (how a
//! stopped row ends, what a `--verify` reading means, who sends which credentials) are pure
//! functions at the end of this file, with table tests. What a row produces (`RowResult`,
//! `Prior`, `WriteAnswer`) is plain data in `results.rs`, which the steps share.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::apply::interrupt::Interrupt;
use crate::apply::journal::{self, Journal, JournalState, OutcomeEntry, RowState};
use crate::apply::matching::is_https;
use crate::apply::probe_guard::{ApplyProbe, guarded};
use crate::apply::pull_steps::other_mirror_user;
use crate::apply::results::{MAX_RESENDS, Prior, RowResult, WriteAnswer};
use crate::credentials::Credentials;
use crate::error::AppError;
use crate::gitlab::{GitLabClient, GitLabError};
use crate::inventory::{Preflight, ReadContext};
use crate::plan::{self, MirrorType, Outcome, PlanRow, ReportRow, RowKey};
use crate::redact::mask_userinfo;
use crate::rewrite::{self, Action, NewAuth};

/// Why a row's work stopped early: a GitLab failure or a refusal ends the row, a journal
/// failure ends the run.
pub(crate) enum RowStop {
    GitLab(GitLabError),
    Refused(String),
    Journal(AppError),
}

impl From<GitLabError> for RowStop {
    fn from(e: GitLabError) -> Self {
        RowStop::GitLab(e)
    }
}

/// The settings of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExecSettings {
    /// Write nothing; say what would be written.
    pub(crate) dry_run: bool,
    /// After writing, wait for each mirror's update and record the result.
    pub(crate) verify: bool,
    /// How long `verify` waits for one mirror.
    pub(crate) verify_timeout: Duration,
}

/// Shared state of one apply run.
pub(crate) struct Exec {
    pub(crate) client: GitLabClient,
    pub(crate) pre: Preflight,
    pub(crate) creds: Credentials,
    pub(crate) journal: Option<Journal>,
    pub(crate) settings: ExecSettings,
    pub(crate) users: ReadContext,
    pub(crate) interrupt: Interrupt,
    /// The probe before each service-credential write (`None`: `--no-probe`, or no such
    /// rows).
    pub(crate) probe: Option<ApplyProbe>,
    /// Push mirrors created or adopted as replacements in this run, or recorded as one in
    /// its journal, by (project, mirror id).
    claimed: Mutex<HashSet<(u64, u64)>>,
    /// The newest push-mirror id the plan names, per project (see `push.rs`).
    newest_planned: HashMap<u64, u64>,
}

/// Apply `rows` (the plan's `update` rows an earlier run has not finished), at most
/// `concurrency` at a time; returns each row's result by key.
pub(crate) async fn apply_rows(
    exec: Arc<Exec>,
    rows: &[&PlanRow],
    state: &JournalState,
    concurrency: usize,
    progress: &indicatif::ProgressBar,
) -> Result<HashMap<RowKey, (RowResult, OffsetDateTime)>, AppError> {
    let mut results = HashMap::new();
    let mut stream = futures::stream::iter(rows.iter().map(|row| {
        let exec = exec.clone();
        let prior = Prior::of(state, &row.key());
        let row = (*row).clone();
        async move {
            let result = exec.apply_row(&row, prior).await?;
            Ok::<_, AppError>((row.key(), result))
        }
    }))
    .buffer_unordered(concurrency);
    while let Some(done) = stream.next().await {
        progress.inc(1);
        let (key, result) = done?;
        results.insert(key, (result, OffsetDateTime::now_utc()));
    }
    Ok(results)
}

/// The report: every plan row with this run's result, or what an earlier run recorded, or
/// why it was not worked on.
pub(crate) fn report_rows(
    rows: &[PlanRow],
    mut results: HashMap<RowKey, (RowResult, OffsetDateTime)>,
    state: &JournalState,
) -> Vec<ReportRow> {
    rows.iter()
        .map(|row| {
            let key = row.key();
            match results.remove(&key) {
                Some((r, finished_at)) => ReportRow {
                    row: row.clone(),
                    outcome: r.outcome,
                    outcome_detail: r.detail,
                    verified_status: r.verified,
                    finished_at,
                },
                None => not_applied(row, state.row(&key)),
            }
        })
        .collect()
}

/// The report line of a row that was not worked on in this run.
pub(crate) fn not_applied(row: &PlanRow, earlier: Option<RowState>) -> ReportRow {
    let (outcome, detail) = match (row.action, earlier) {
        (Action::Update, Some(RowState::Finished { outcome, detail })) if outcome.is_final() => {
            (outcome, format!("recorded by an earlier run: {detail}"))
        }
        (Action::Update, _) => {
            (Outcome::Skipped, "not started: the run was interrupted; rerun to resume".into())
        }
        (action, _) => (Outcome::Skipped, format!("planned as {}", action.code())),
    };
    ReportRow {
        row: row.clone(),
        outcome,
        outcome_detail: detail,
        verified_status: String::new(),
        finished_at: OffsetDateTime::now_utc(),
    }
}

impl Exec {
    /// A new run's state.
    pub(crate) fn new(
        client: GitLabClient,
        pre: Preflight,
        creds: Credentials,
        journal: Option<Journal>,
        settings: ExecSettings,
        interrupt: Interrupt,
    ) -> Exec {
        Exec {
            client,
            pre,
            creds,
            journal,
            settings,
            users: ReadContext::default(),
            interrupt,
            probe: None,
            claimed: Mutex::default(),
            newest_planned: HashMap::new(),
        }
    }

    /// What the plan and the journal say about push mirrors: the newest id the plan names per
    /// project (every row, whatever its action), and the replacements earlier runs with this
    /// journal made (they are this plan's own, not another run's).
    pub(crate) fn knowing(mut self, plan: &[PlanRow], state: &JournalState) -> Exec {
        self.newest_planned = newest_planned(plan);
        let claimed = self.claimed.get_mut().expect("claims lock is never poisoned");
        claimed.extend(state.recorded_replacements());
        self
    }

    /// The newest push-mirror id the plan names for a project.
    pub(crate) fn newest_planned_push_mirror(&self, project_id: u64) -> Option<u64> {
        self.newest_planned.get(&project_id).copied()
    }

    /// Whether a push mirror is this run's (or this journal's) replacement for some row.
    pub(crate) fn is_claimed(&self, project_id: u64, mirror_id: u64) -> bool {
        self.claimed
            .lock()
            .expect("claims lock is never poisoned")
            .contains(&(project_id, mirror_id))
    }

    /// Probe a row's service credentials right before its write. `Ok(code)`: write (the
    /// code when the row was probed); `Err(result)`: do not write, end the row with this.
    pub(crate) async fn probe_before_write(
        &self,
        row: &PlanRow,
    ) -> Result<Option<crate::probe::ProbeCode>, RowResult> {
        let Some(guard) = self.probe.as_ref() else { return Ok(None) };
        guarded(guard.before_write(row).await, self.settings.dry_run)
    }

    /// Probe every service-credential write first ([`crate::apply::probe_guard`]).
    pub(crate) fn with_probe(mut self, probe: Option<ApplyProbe>) -> Exec {
        self.probe = probe;
        self
    }

    /// Apply one row; per-row failures become outcomes, only journal failures are fatal.
    pub(crate) async fn apply_row(
        &self,
        row: &PlanRow,
        prior: Prior,
    ) -> Result<RowResult, AppError> {
        let key = row.key();
        if self.interrupt.is_requested() {
            return Ok(RowResult::skipped("not started: interrupted; rerun to resume"));
        }
        let attempt = match row.mirror_type {
            MirrorType::Pull => self.apply_pull(row, &key, prior).await,
            MirrorType::Push => self.apply_push(row, &key, prior).await,
        };
        let result = match attempt {
            Ok(done) => done,
            Err(stop) => stopped(stop)?,
        };
        if !self.settings.dry_run
            && let Some(j) = &self.journal
        {
            j.record(OutcomeEntry::new(key, result.outcome, &result.detail)).await?;
        }
        Ok(result)
    }

    /// Append an entry to the journal (none in a dry run).
    pub(crate) async fn record(&self, entry: impl Into<journal::Entry>) -> Result<(), RowStop> {
        if let Some(j) = &self.journal {
            j.record(entry).await.map_err(|e| RowStop::Journal(e.into()))?;
        }
        Ok(())
    }

    /// The credentials a row sends: (auth_user, auth_password), raw — the pair the probe
    /// proves too ([`Credentials::service_pair`]).
    pub(crate) fn credentials_for(&self, row: &PlanRow) -> Option<(SecretString, SecretString)> {
        // The plan checks already refused anything else; this is the second lock on the door.
        if !sends_service_credentials(row) {
            return None;
        }
        self.creds.service_pair(&row.new_url)
    }

    /// The row's `new_url` with its credentials in the userinfo, percent-encoded (the old
    /// pull-mirror API and push mirrors take credentials only that way).
    pub(crate) fn credentialed_url(&self, row: &PlanRow) -> SecretString {
        match self.credentials_for(row) {
            Some((user, password)) => {
                let (user, token) = if password.expose_secret().is_empty() {
                    (None, &user)
                } else {
                    (Some(user.expose_secret()), &password)
                };
                rewrite::authenticated_url(&row.new_url, user, token)
            }
            None => SecretString::from(row.new_url.clone()),
        }
    }

    /// A push mirror stores the credentials of its URL without decoding them and encodes them
    /// again when it pushes (`app/models/remote_mirror.rb`; see docs/gitlab-behaviour.md), so
    /// any percent-encoded character would reach the remote double-encoded. Only credentials
    /// made of RFC 3986 unreserved characters (what tokens and service usernames usually are)
    /// survive; refuse the rest.
    pub(crate) fn push_credentials_survive(&self, row: &PlanRow) -> bool {
        self.credentials_for(row).is_none_or(|(user, password)| {
            survive_push_encoding(user.expose_secret(), password.expose_secret())
        })
    }

    /// The client to write with: `Sudo` as the planned mirror user when it is not the caller.
    pub(crate) fn client_for(&self, row: &PlanRow) -> GitLabClient {
        match other_mirror_user(row, &self.pre.user.username) {
            Some(user) => self.client.with_sudo(user),
            None => self.client.clone(),
        }
    }

    /// Claim a push mirror as one row's replacement; false when another row of this run
    /// already has it (two rows of a project may share a target URL).
    pub(crate) fn claim(&self, project_id: u64, mirror_id: u64) -> bool {
        self.claimed.lock().expect("claims lock is never poisoned").insert((project_id, mirror_id))
    }

    /// `--verify`: poll a mirror's `(update_status, last_error)` until its update finished or
    /// failed, or `--verify-timeout` passed, backing off from 250 ms to 5 s.
    pub(crate) async fn poll_until_done<F, Fut>(&self, absent: &str, mut read: F) -> String
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<UpdateState>, GitLabError>>,
    {
        let deadline = Instant::now() + self.settings.verify_timeout;
        let mut wait = Duration::from_millis(250);
        loop {
            if let Some(verified) = verify_reading(read().await, absent) {
                return verified;
            }
            if Instant::now() + wait > deadline {
                return "timeout".into();
            }
            tokio::time::sleep(wait).await;
            wait = next_wait(wait);
        }
    }
}

/// The newest push-mirror id the plan names per project (every row, whatever its action).
pub(crate) fn newest_planned(plan: &[PlanRow]) -> HashMap<u64, u64> {
    let mut newest = HashMap::new();
    for row in plan {
        if let Some(id) = row.mirror_id {
            let n = newest.entry(row.project_id).or_insert(id);
            *n = (*n).max(id);
        }
    }
    newest
}

/// The result of a row whose work stopped early; a journal failure ends the run.
pub(crate) fn stopped(stop: RowStop) -> Result<RowResult, AppError> {
    match stop {
        RowStop::Journal(e) => Err(e),
        RowStop::GitLab(e) => Ok(RowResult::failed(mask_userinfo(&e.to_string()))),
        RowStop::Refused(why) => Ok(RowResult::failed(why)),
    }
}

/// Whether a row sends the service credentials: `new_auth=service` to an https URL, nothing
/// else.
pub(crate) fn sends_service_credentials(row: &PlanRow) -> bool {
    row.new_auth == Some(NewAuth::Service) && is_https(&row.new_url)
}

/// Whether a push mirror URL keeps these credentials as they are: only when percent-encoding
/// changes neither (RFC 3986 unreserved characters only).
pub(crate) fn survive_push_encoding(user: &str, password: &str) -> bool {
    [user, password].iter().all(|part| rewrite::encode_userinfo_part(part) == **part)
}

/// A write whose answer was lost may be sent again (DELETE, which is idempotent): only an
/// ambiguous outcome, at most [`MAX_RESENDS`] times.
pub(crate) fn may_resend(e: &GitLabError, resends: u32) -> bool {
    WriteAnswer::of(e) == WriteAnswer::Ambiguous && resends < MAX_RESENDS
}

/// A mirror's `(update_status, last_error)`, as `--verify` reads it.
pub(crate) type UpdateState = (Option<String>, Option<String>);

/// One `--verify` reading of a mirror's `(update_status, last_error)`: `Some` ends the wait
/// with the report's `verified_status`, `None` waits on (the update is still running).
pub(crate) fn verify_reading(
    read: Result<Option<UpdateState>, GitLabError>,
    absent: &str,
) -> Option<String> {
    match read {
        Ok(Some((status, error))) => match status.as_deref() {
            Some("finished") => Some("finished".into()),
            Some("failed") => {
                let err = error.as_deref().map(plan::normalize_last_error).unwrap_or_default();
                Some(format!("failed: {err}"))
            }
            _ => None,
        },
        Ok(None) => Some(absent.into()),
        Err(e) => Some(format!("unknown: {}", mask_userinfo(&e.to_string()))),
    }
}

/// The next `--verify` poll interval: doubling, at most 5 s.
pub(crate) fn next_wait(wait: Duration) -> Duration {
    (wait * 2).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::row::tests::sample_row;

    fn ambiguous() -> GitLabError {
        GitLabError::Ambiguous {
            method: "DELETE".into(),
            path: "/projects/1/remote_mirrors/5".into(),
            detail: "HTTP 500".into(),
        }
    }

    fn http(status: u16, body: &str) -> GitLabError {
        GitLabError::Http {
            method: "POST".into(),
            path: "/projects/1/remote_mirrors".into(),
            status,
            body: body.into(),
        }
    }

    #[test]
    fn a_definite_refusal_is_not_an_ambiguous_outcome() {
        assert_eq!(WriteAnswer::of(&ambiguous()), WriteAnswer::Ambiguous);
        assert_eq!(WriteAnswer::of(&http(400, "url is blocked")), WriteAnswer::Refused);
        assert_eq!(WriteAnswer::of(&http(404, "")), WriteAnswer::Refused);
        let dropped = GitLabError::Connection {
            method: "PUT".into(),
            path: "/projects/1".into(),
            detail: "connection refused".into(),
            tls: false,
        };
        assert_eq!(WriteAnswer::of(&dropped), WriteAnswer::Refused, "never sent");
        // Only an ambiguous outcome is sent again, at most MAX_RESENDS times.
        let cases = [
            (ambiguous(), 0, true),
            (ambiguous(), MAX_RESENDS - 1, true),
            (ambiguous(), MAX_RESENDS, false),
            (http(403, ""), 0, false),
        ];
        for (e, resends, want) in cases {
            assert_eq!(may_resend(&e, resends), want, "{e} {resends}");
        }
    }

    #[test]
    fn a_stopped_row_fails_with_the_reason_masked_and_a_journal_failure_ends_the_run() {
        let r = stopped(RowStop::GitLab(http(422, "bad https://u:tok@github.com/a"))).unwrap();
        assert_eq!(r.outcome, Outcome::Failed);
        assert!(r.detail.starts_with("POST /projects/1/remote_mirrors: HTTP 422"), "{}", r.detail);
        assert!(!r.detail.contains("tok@"), "{}", r.detail);
        let r = stopped(RowStop::Refused("the planned mirror user svc no longer exists".into()));
        let r = r.unwrap();
        assert_eq!(
            (r.outcome, r.detail.as_str()),
            (Outcome::Failed, "the planned mirror user svc no longer exists")
        );
        assert!(stopped(RowStop::Journal(AppError::fatal("disk full"))).is_err());
    }

    #[test]
    fn a_verify_reading_ends_the_wait_or_not() {
        let read = |status: Option<&str>, error: Option<&str>| {
            Ok(Some((status.map(str::to_owned), error.map(str::to_owned))))
        };
        let cases = [
            (read(Some("finished"), None), Some("finished")),
            (
                read(Some("failed"), Some("13:fetch remote:\n Authentication failed\n")),
                Some("failed: 13:fetch remote: Authentication failed"),
            ),
            (read(Some("failed"), None), Some("failed: ")),
            (read(Some("started"), None), None),
            (read(Some("to_retry"), Some("x")), None),
            (read(None, None), None),
            (Ok(None), Some("not mirrored")),
        ];
        for (i, (reading, want)) in cases.into_iter().enumerate() {
            assert_eq!(verify_reading(reading, "not mirrored").as_deref(), want, "case {i}");
        }
        let got = verify_reading(Err(http(500, "https://u:secret@host/x")), "absent").unwrap();
        assert!(got.starts_with("unknown: POST"), "{got}");
        assert!(!got.contains("secret"), "{got}");
        // The backoff doubles up to 5 s.
        let mut wait = Duration::from_millis(250);
        let mut seen = Vec::new();
        for _ in 0..7 {
            wait = next_wait(wait);
            seen.push(wait.as_millis());
        }
        assert_eq!(seen, [500, 1000, 2000, 4000, 5000, 5000, 5000]);
    }

    #[test]
    fn only_service_rows_to_https_send_the_credentials() {
        let mut row = sample_row(1, MirrorType::Pull, None);
        row.new_url = "https://github.com/acme/api.git".into();
        let cases = [
            (Some(NewAuth::Service), "https://github.com/a.git", true),
            (Some(NewAuth::Service), "HTTPS://github.com/a.git", true),
            (Some(NewAuth::Service), "http://github.com/a.git", false),
            (Some(NewAuth::Service), "ssh://git@github.com/a.git", false),
            (Some(NewAuth::None), "https://github.com/a.git", false),
            (Some(NewAuth::Unchanged), "https://github.com/a.git", false),
            (None, "https://github.com/a.git", false),
        ];
        for (auth, url, want) in cases {
            row.new_auth = auth;
            row.new_url = url.into();
            assert_eq!(sends_service_credentials(&row), want, "{auth:?} {url}");
        }
    }

    #[test]
    fn push_credentials_survive_only_unreserved_characters() {
        let cases = [
            ("svc", "glpat-AbC_123.x~y", true),
            ("glpat-abc", "", true),
            ("svc@corp", "tok", false),
            ("svc", "to/ken", false),
            ("svc", "p%41ss", false),
            ("s v c", "tok", false),
        ];
        for (user, password, want) in cases {
            assert_eq!(survive_push_encoding(user, password), want, "{user:?} {password:?}");
        }
    }

    #[test]
    fn the_newest_planned_push_mirror_is_per_project_over_every_row() {
        let mut skip = sample_row(1, MirrorType::Push, Some(9));
        skip.action = Action::Skip;
        let rows = [
            sample_row(1, MirrorType::Push, Some(5)),
            skip,
            sample_row(1, MirrorType::Push, Some(7)),
            sample_row(2, MirrorType::Push, Some(3)),
            sample_row(3, MirrorType::Pull, None),
        ];
        let newest = newest_planned(&rows);
        assert_eq!(newest.get(&1), Some(&9), "a skipped row counts too");
        assert_eq!(newest.get(&2), Some(&3));
        assert_eq!(newest.get(&3), None);
    }

    #[test]
    fn a_row_not_worked_on_says_why() {
        let mut update = sample_row(1, MirrorType::Pull, None);
        update.action = Action::Update;
        let finished = |outcome| RowState::Finished { outcome, detail: "applied".into() };
        let cases = [
            (
                &update,
                Some(finished(Outcome::Applied)),
                Outcome::Applied,
                "recorded by an earlier run: applied",
            ),
            (
                &update,
                Some(finished(Outcome::AlreadyApplied)),
                Outcome::AlreadyApplied,
                "recorded by an earlier run: applied",
            ),
            (
                &update,
                Some(finished(Outcome::Failed)),
                Outcome::Skipped,
                "not started: the run was interrupted; rerun to resume",
            ),
            (
                &update,
                None,
                Outcome::Skipped,
                "not started: the run was interrupted; rerun to resume",
            ),
        ];
        for (i, (row, earlier, outcome, detail)) in cases.into_iter().enumerate() {
            let r = not_applied(row, earlier);
            assert_eq!((r.outcome, r.outcome_detail.as_str()), (outcome, detail), "case {i}");
        }
        let skip = sample_row(2, MirrorType::Pull, None);
        let r = not_applied(&skip, Some(finished(Outcome::Applied)));
        assert_eq!((r.outcome, r.outcome_detail.as_str()), (Outcome::Skipped, "planned as skip"));
    }
}
