//! The decisions of a pull-mirror row in `apply`, over plain data: what the first re-read
//! leads to (write, drift, already applied, the second half of an old-API write), which call
//! writes the row, what a re-read after a lost answer means (resend, landed, fail), whether
//! the result is confirmed, and which flags to put back. No I/O; `pull.rs` does the calls.
//! Table tests below.

use crate::apply::matching::{drift_detail, flags_changed, pull_matches, restore_flags};
use crate::apply::results::{MAX_RESENDS, Prior, RowResult, WriteAnswer, probe_note};
use crate::gitlab::PullMirrorUpdate;
use crate::plan::{self, MirrorFacts, PlanRow};

/// What the first re-read of a pull row leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PullStart<'a> {
    /// The mirror still looks as planned: (re)write it.
    Write(&'a MirrorFacts),
    /// An earlier run's old-API write landed but left the caller as mirror user: name the
    /// planned one (the second half of that write).
    NameMirrorUser(&'a MirrorFacts),
    /// Nothing to write: the row ends with this.
    Done(RowResult),
}

/// What the first re-read shows, given what was planned (`planned`: the fingerprint sealed in
/// the row) and what the journal says.
///
/// Observed state decides first: GitLab masks credentials, so a write that only changes them
/// leaves the mirror looking the same. While it still looks as planned, (re)writing is the
/// safe choice — a pull-mirror PUT of the same URL and credentials is idempotent — also after
/// a crash between the write and its journaled outcome. Only a row an earlier run was writing
/// may be found already applied; any other change since planning is drift, even one that
/// looks like the target (credentials are not visible to compare).
pub(crate) fn pull_start<'a>(
    planned: &str,
    live: Option<&'a MirrorFacts>,
    row: &PlanRow,
    prior: Prior,
    new_api: bool,
    caller: &str,
) -> PullStart<'a> {
    let Some(live) = live else {
        return PullStart::Done(RowResult::drifted("the project is no longer pull-mirrored"));
    };
    if plan::fingerprint(&live.observed()) == planned {
        return PullStart::Write(live);
    }
    if prior.attempted && pull_matches(live, row) {
        return PullStart::Done(RowResult::already_applied("an earlier run's write had landed"));
    }
    if prior.attempted && !new_api && caller_took_over(caller, live, row) {
        return PullStart::NameMirrorUser(live);
    }
    PullStart::Done(RowResult::drifted(drift_detail(live, row)))
}

/// The call that writes a pull row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullCall {
    /// `PUT /projects/:id/mirror/pull` with url and credentials (GitLab 17.6+).
    Mirror,
    /// `PUT /projects/:id/mirror/pull` with only `enabled=true`, as the planned user: GitLab
    /// keeps URL and credentials and makes the writer the mirror user.
    MirrorAsUser,
    /// `PUT /projects/:id` with `import_url` (credentials inside) before 17.6.
    ImportUrl,
    /// `PUT /projects/:id` with `mirror_user_id` alone (an administrator), before 17.6.
    MirrorUserId,
}

impl PullCall {
    /// The call for a row on this API.
    pub(crate) fn of(new_api: bool, mirror_user_only: bool) -> PullCall {
        match (new_api, mirror_user_only) {
            (true, false) => PullCall::Mirror,
            (true, true) => PullCall::MirrorAsUser,
            (false, false) => PullCall::ImportUrl,
            (false, true) => PullCall::MirrorUserId,
        }
    }

    /// How a dry run names it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            PullCall::Mirror => "PUT /projects/:id/mirror/pull",
            PullCall::MirrorAsUser => {
                "PUT /projects/:id/mirror/pull (mirror user only, as that user)"
            }
            PullCall::ImportUrl => "PUT /projects/:id (import_url)",
            PullCall::MirrorUserId => "PUT /projects/:id (mirror_user_id only)",
        }
    }

    /// A dry run's detail.
    pub(crate) fn dry_run(self, probed: Option<crate::probe::ProbeCode>) -> RowResult {
        RowResult::dry_run(format!("would call {}{}", self.describe(), probe_note(probed)))
    }
}

/// The step after a pull write that did not answer with the mirror as saved, from the
/// re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterWrite {
    /// The project is no longer pull-mirrored.
    Disappeared,
    /// The write was answered: confirm with the re-read.
    Confirm,
    /// The answer was lost and the mirror still shows the planned state: the write did not
    /// land, or it only changed credentials, which GitLab does not show. Sending it again is
    /// harmless either way.
    Resend,
    /// The answer was lost but the mirror visibly changed into the target: it landed.
    Landed,
    /// End the row with the write's error.
    Fail,
}

/// What the re-read after a write means. `resends`: how often it was sent again already.
pub(crate) fn after_write(
    answer: WriteAnswer,
    planned: &str,
    after: Option<&MirrorFacts>,
    row: &PlanRow,
    resends: u32,
) -> AfterWrite {
    let Some(after) = after else { return AfterWrite::Disappeared };
    let unchanged = plan::fingerprint(&after.observed()) == planned;
    match answer {
        WriteAnswer::Answered => AfterWrite::Confirm,
        WriteAnswer::Ambiguous if unchanged && resends < MAX_RESENDS => AfterWrite::Resend,
        WriteAnswer::Ambiguous if !unchanged && pull_matches(after, row) => AfterWrite::Landed,
        WriteAnswer::Ambiguous | WriteAnswer::Refused => AfterWrite::Fail,
    }
}

/// The mirror looks like the target except that its user is the caller, not the planned
/// user: what GitLab's old API does when a write names the current mirror user.
pub(crate) fn caller_took_over(caller: &str, live: &MirrorFacts, row: &PlanRow) -> bool {
    !row.new_mirror_user.is_empty()
        && row.new_mirror_user != caller
        && live.user_name == caller
        && pull_matches(
            &MirrorFacts { user_name: row.new_mirror_user.clone(), ..live.clone() },
            row,
        )
}

/// After an old-API write: GitLab before 17.6 makes the caller the mirror user when the write
/// names the current one (docs/gitlab-behaviour.md#old-put-project), so the planned user
/// must be named again.
pub(crate) fn needs_mirror_user_again(
    new_api: bool,
    caller: &str,
    after: &MirrorFacts,
    row: &PlanRow,
) -> bool {
    !new_api && caller_took_over(caller, after, row)
}

/// The detail of an applied pull row. The old API silently drops mirror changes the caller
/// may not make (`ee/lib/ee/api/helpers/projects_helpers.rb`), and credentials are invisible
/// on re-read: say so.
pub(crate) fn applied_detail(new_api: bool) -> &'static str {
    if new_api {
        "applied"
    } else {
        "applied through PUT /projects/:id (GitLab < 17.6 may drop mirror changes silently; \
         --verify checks the mirror syncs)"
    }
}

/// Whether the mirror after the write is the row's target; `Err`: the failed row's detail.
pub(crate) fn confirmation(
    row: &PlanRow,
    before: &MirrorFacts,
    after: &MirrorFacts,
) -> Result<(), String> {
    if !pull_matches(after, row) {
        return Err(format!(
            "GitLab accepted the write but now shows: {}",
            drift_detail(after, row)
        ));
    }
    if row.is_mirror_user_only() && !only_the_user_changed(before, after) {
        return Err(format!(
            "GitLab changed more than the mirror user: {}",
            drift_detail(after, row)
        ));
    }
    Ok(())
}

/// A mirror-user-only write changed nothing but the mirror user: the masked URL, the
/// credential kind, the enabled state and the flags are as before.
pub(crate) fn only_the_user_changed(before: &MirrorFacts, after: &MirrorFacts) -> bool {
    let (b, a) = (before.observed(), after.observed());
    b.masked_url == a.masked_url
        && b.current_auth == a.current_auth
        && b.enabled == a.enabled
        && !flags_changed(&before.flags, &after.flags)
}

/// The flags-only update that puts back what GitLab changed, when it changed any (on the
/// 17.6 API only: the old one has no such call).
pub(crate) fn flags_to_restore(
    before: &MirrorFacts,
    after: &MirrorFacts,
    new_api: bool,
) -> Option<PullMirrorUpdate> {
    (flags_changed(&before.flags, &after.flags) && new_api).then(|| restore_flags(&before.flags))
}

/// The mirror user a write must name apart from the caller (`Sudo` on the 17.6 API,
/// `mirror_user_id` on the old one): the planned one, when it is not the caller.
pub(crate) fn other_mirror_user<'a>(row: &'a PlanRow, caller: &str) -> Option<&'a str> {
    (!row.new_mirror_user.is_empty() && row.new_mirror_user != caller)
        .then_some(row.new_mirror_user.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Outcome;
    use crate::plan::facts::tests::pull_facts;
    use crate::probe::ProbeCode;
    use crate::rewrite::{Fix, NewAuth};

    const CALLER: &str = "admin";

    /// A service-credential row moving the mirror of [`pull_facts`] to svc.
    fn row() -> PlanRow {
        crate::apply::matching::tests::update_row()
    }

    /// A row that only moves the mirror user.
    fn user_only_row() -> PlanRow {
        let mut row = row();
        row.new_auth = Some(NewAuth::Unchanged);
        row.fixes = vec![Fix::MirrorUser];
        row
    }

    fn planned() -> (MirrorFacts, String) {
        let live = pull_facts();
        let fp = plan::fingerprint(&live.observed());
        (live, fp)
    }

    /// The mirror as the target would look, with this mirror user.
    fn target(user: &str) -> MirrorFacts {
        MirrorFacts {
            url: "https://*****@github.com/acme/api.git".into(),
            user_name: user.into(),
            user_id: Some(42),
            ..pull_facts()
        }
    }

    fn prior(attempted: bool) -> Prior {
        Prior { in_flight: attempted, attempted, repair: None }
    }

    fn done(step: PullStart<'_>) -> (Outcome, String) {
        match step {
            PullStart::Done(r) => (r.outcome, r.detail),
            other => panic!("not done: {other:?}"),
        }
    }

    #[test]
    fn a_mirror_as_planned_is_written_with_or_without_an_earlier_attempt() {
        let (live, fp) = planned();
        for attempted in [false, true] {
            for new_api in [false, true] {
                let step = pull_start(&fp, Some(&live), &row(), prior(attempted), new_api, CALLER);
                assert_eq!(step, PullStart::Write(&live), "attempted={attempted} {new_api}");
            }
        }
        // Mirror-user-only rows and credential-only rows too: the fingerprint decides.
        let step = pull_start(&fp, Some(&live), &user_only_row(), prior(true), true, CALLER);
        assert_eq!(step, PullStart::Write(&live));
    }

    #[test]
    fn resume_with_the_intent_recorded_and_the_state_as_planned_resends() {
        // A crash between the write and its outcome: the journal shows the intent, the mirror
        // still shows the planned state (credentials are invisible): write it again.
        let (live, fp) = planned();
        let p = Prior { in_flight: true, attempted: true, repair: None };
        assert_eq!(pull_start(&fp, Some(&live), &row(), p, true, CALLER), PullStart::Write(&live));
    }

    #[test]
    fn a_matching_target_is_already_applied_only_after_an_earlier_write() {
        let (_, fp) = planned();
        let now = target("svc");
        let (outcome, detail) =
            done(pull_start(&fp, Some(&now), &row(), prior(true), true, CALLER));
        assert_eq!(outcome, Outcome::AlreadyApplied);
        assert_eq!(detail, "an earlier run's write had landed");
        // Without an earlier write, the same mirror is someone else's change: drift.
        let (outcome, detail) =
            done(pull_start(&fp, Some(&now), &row(), prior(false), true, CALLER));
        assert_eq!(outcome, Outcome::Drifted);
        assert!(detail.starts_with("changed since planning: "), "{detail}");
        assert!(detail.contains("mirror user is now \"svc\""), "{detail}");
    }

    #[test]
    fn any_other_change_is_drift() {
        let (_, fp) = planned();
        let mut other = target("svc");
        other.url = "https://*****@github.com/acme/elsewhere.git".into();
        for attempted in [false, true] {
            let (outcome, detail) =
                done(pull_start(&fp, Some(&other), &row(), prior(attempted), false, CALLER));
            assert_eq!(outcome, Outcome::Drifted, "attempted={attempted}");
            assert!(detail.contains("url is now https://*****@github.com/acme/elsewhere.git"));
        }
        let (outcome, detail) = done(pull_start(&fp, None, &row(), prior(true), true, CALLER));
        assert_eq!(
            (outcome, detail.as_str()),
            (Outcome::Drifted, "the project is no longer pull-mirrored")
        );
    }

    #[test]
    fn an_old_api_write_that_left_the_caller_as_mirror_user_is_finished() {
        let (_, fp) = planned();
        let took_over = target(CALLER);
        let step = pull_start(&fp, Some(&took_over), &row(), prior(true), false, CALLER);
        assert_eq!(step, PullStart::NameMirrorUser(&took_over));
        // Not on the 17.6 API (it makes the Sudo user the mirror user), not without an
        // earlier write, not when the caller is the planned user.
        let (outcome, _) =
            done(pull_start(&fp, Some(&took_over), &row(), prior(true), true, CALLER));
        assert_eq!(outcome, Outcome::Drifted);
        let (outcome, _) =
            done(pull_start(&fp, Some(&took_over), &row(), prior(false), false, CALLER));
        assert_eq!(outcome, Outcome::Drifted);
        let mut mine = row();
        mine.new_mirror_user = CALLER.into();
        let (outcome, _) =
            done(pull_start(&fp, Some(&took_over), &mine, prior(true), false, CALLER));
        assert_eq!(outcome, Outcome::AlreadyApplied, "the caller is the target user");
    }

    #[test]
    fn the_call_follows_the_api_and_the_row() {
        let cases = [
            (true, false, PullCall::Mirror, "would call PUT /projects/:id/mirror/pull"),
            (
                true,
                true,
                PullCall::MirrorAsUser,
                "would call PUT /projects/:id/mirror/pull (mirror user only, as that user)",
            ),
            (false, false, PullCall::ImportUrl, "would call PUT /projects/:id (import_url)"),
            (
                false,
                true,
                PullCall::MirrorUserId,
                "would call PUT /projects/:id (mirror_user_id only)",
            ),
        ];
        for (new_api, user_only, call, detail) in cases {
            assert_eq!(PullCall::of(new_api, user_only), call);
            let r = call.dry_run(None);
            assert_eq!((r.outcome, r.detail.as_str()), (Outcome::DryRun, detail));
        }
        let r = PullCall::Mirror.dry_run(Some(ProbeCode::Ok));
        assert_eq!(r.detail, "would call PUT /projects/:id/mirror/pull (probe: ok)");
        assert!(user_only_row().is_mirror_user_only() && !row().is_mirror_user_only());
    }

    #[test]
    fn the_re_read_after_a_write_decides_resend_landed_or_fail() {
        use AfterWrite::*;
        use WriteAnswer::*;
        let (as_planned, fp) = planned();
        let landed = target("svc");
        let mut elsewhere = target("svc");
        elsewhere.url = "https://*****@github.com/x/y.git".into();
        // (answer, re-read, resends so far, expected)
        let cases = [
            (Answered, Some(&landed), 0, Confirm),
            (Answered, Some(&as_planned), 0, Confirm),
            (Answered, None, 0, Disappeared),
            (Refused, None, 0, Disappeared),
            (Ambiguous, Some(&as_planned), 0, Resend),
            (Ambiguous, Some(&as_planned), MAX_RESENDS - 1, Resend),
            (Ambiguous, Some(&as_planned), MAX_RESENDS, Fail),
            (Ambiguous, Some(&landed), 0, Landed),
            (Ambiguous, Some(&landed), MAX_RESENDS, Landed),
            (Ambiguous, Some(&elsewhere), 0, Fail),
            (Refused, Some(&as_planned), 0, Fail),
            (Refused, Some(&landed), 0, Fail),
        ];
        for (i, (answer, after, resends, want)) in cases.into_iter().enumerate() {
            assert_eq!(after_write(answer, &fp, after, &row(), resends), want, "case {i}");
        }
    }

    #[test]
    fn the_caller_taking_over_is_recognised() {
        let r = row();
        assert!(caller_took_over(CALLER, &target(CALLER), &r));
        assert!(!caller_took_over(CALLER, &target("svc"), &r), "the planned user");
        assert!(!caller_took_over(CALLER, &target("mallory"), &r), "someone else");
        let mut wrong_url = target(CALLER);
        wrong_url.url = "https://*****@github.com/x/y.git".into();
        assert!(!caller_took_over(CALLER, &wrong_url, &r), "not the target otherwise");
        let mut unplanned = row();
        unplanned.new_mirror_user = String::new();
        assert!(!caller_took_over(CALLER, &target(CALLER), &unplanned));
        assert!(needs_mirror_user_again(false, CALLER, &target(CALLER), &r));
        assert!(!needs_mirror_user_again(true, CALLER, &target(CALLER), &r));
        assert!(!needs_mirror_user_again(false, CALLER, &target("svc"), &r));
    }

    #[test]
    fn confirmation_checks_the_target_and_for_user_only_rows_nothing_else() {
        let before = pull_facts();
        assert_eq!(confirmation(&row(), &before, &target("svc")), Ok(()));
        let err = confirmation(&row(), &before, &target(CALLER)).unwrap_err();
        assert!(err.starts_with("GitLab accepted the write but now shows: "), "{err}");
        // Mirror user only: the URL and flags must stay as they were.
        let user_only = user_only_row();
        let moved = MirrorFacts { user_name: "svc".into(), user_id: Some(42), ..pull_facts() };
        assert_eq!(confirmation(&user_only, &before, &moved), Ok(()));
        let mut more = moved.clone();
        more.flags.trigger_builds = Some(true);
        let err = confirmation(&user_only, &before, &more).unwrap_err();
        assert!(err.starts_with("GitLab changed more than the mirror user: "), "{err}");
        let mut disabled = moved;
        disabled.enabled = false;
        assert!(confirmation(&user_only, &before, &disabled).is_err(), "not the target");
    }

    #[test]
    fn flags_are_restored_on_the_new_api_only_when_gitlab_changed_them() {
        let before = pull_facts();
        let mut after = target("svc");
        assert!(flags_to_restore(&before, &after, true).is_none());
        after.flags.trigger_builds = Some(true);
        let req = flags_to_restore(&before, &after, true).expect("restored");
        assert_eq!(req.flags.mirror_trigger_builds, Some(false));
        assert!(req.url.is_empty() && req.auth_user.is_none());
        assert!(flags_to_restore(&before, &after, false).is_none(), "the old API cannot");
    }

    #[test]
    fn details_and_the_other_mirror_user() {
        assert_eq!(applied_detail(true), "applied");
        assert!(applied_detail(false).starts_with("applied through PUT /projects/:id"));
        assert_eq!(other_mirror_user(&row(), CALLER), Some("svc"));
        assert_eq!(other_mirror_user(&row(), "svc"), None);
        let mut r = row();
        r.new_mirror_user = String::new();
        assert_eq!(other_mirror_user(&r, CALLER), None);
    }
}
