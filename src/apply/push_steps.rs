//! The decisions of a push-mirror row in `apply`, over plain data: what the journal's record
//! of an earlier attempt leads to (finish by deleting the old mirror, already applied, a
//! replacement that does not match), what is refused before the create (drift, credentials
//! a push URL would mangle, a replacement another run made after planning), the create
//! request, what to do when its answer was lost, a copy another run made at the same moment,
//! and the confirmation before the delete.
//! No I/O; `push.rs` does the calls. Table tests below.

use secrecy::SecretString;

use crate::apply::matching::{drift_detail, push_matches, without_userinfo};
use crate::apply::results::{MAX_RESENDS, Prior, RowResult, probe_note};
use crate::gitlab::{RemoteMirror, RemoteMirrorCreate};
use crate::inventory::facts;
use crate::plan::{self, PlanRow, ProjectFacts};
use crate::probe::ProbeCode;

/// What the journal's record of an earlier attempt at a push row leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resume<'a> {
    /// No replacement from an earlier attempt: go on as for a new row.
    Fresh,
    /// The recorded replacement exists and matches the plan.
    Found(u64),
    /// A crash after the create was sent but before its id was recorded: the first of these
    /// (created after that moment, matching the target) that no other row claims is it.
    Claim(Vec<&'a RemoteMirror>),
    /// End the row with this.
    Done(RowResult),
}

/// What an earlier attempt recorded, against the push mirrors there are now. A crash between
/// create and delete leaves the replacement in place: never create a second one.
pub(crate) fn resume_push<'a>(
    prior: Prior,
    live: &'a [RemoteMirror],
    row: &PlanRow,
    old_id: u64,
) -> Resume<'a> {
    let Some(repair) = prior.repair else { return Resume::Fresh };
    let recorded = repair.replacement_id.and_then(|id| live.iter().find(|m| m.id == id));
    match recorded {
        Some(m) if push_matches(m, row) => Resume::Found(m.id),
        Some(m) => Resume::Done(RowResult::failed(format!(
            "replacement push mirror {} exists but does not match the plan; resolve by hand \
             (push mirror {old_id} was kept)",
            m.id
        ))),
        // Without the id of the newest mirror before the create, no mirror can be shown to
        // be newer.
        None if repair.create_unrecorded && prior.in_flight => match repair.newest_before {
            Some(n) => match created_after(live, row, Some(n)) {
                found if found.is_empty() => Resume::Fresh,
                found => Resume::Claim(found),
            },
            None => Resume::Fresh,
        },
        None => Resume::Fresh,
    }
}

/// With the replacement found on resume: delete the old mirror if it is still there
/// (`Ok`), or the row was done (`Err`: already applied).
pub(crate) fn resumed(new_id: u64, old_still_there: bool) -> Result<(), RowResult> {
    if old_still_there { Ok(()) } else { Err(RowResult::already_applied(replaced(new_id, false))) }
}

/// The detail of a replaced push mirror.
pub(crate) fn replaced(new_id: u64, resumed: bool) -> String {
    let resumed = if resumed { " (resumed)" } else { "" };
    format!("replaced by push mirror {new_id}{resumed}")
}

/// The checks before creating a replacement, in order: the old mirror must still exist and
/// look as planned (`planned`: the fingerprint sealed in the row), the credentials must
/// survive a push URL (`credentials_survive`), and no replacement may have appeared since
/// planning (`appeared`, see [`appeared_after_planning`]). `Ok`: the old mirror.
pub(crate) fn push_gate<'a>(
    old_id: u64,
    old: Option<&'a RemoteMirror>,
    planned: &str,
    row: &PlanRow,
    credentials_survive: bool,
    appeared: Option<u64>,
) -> Result<&'a RemoteMirror, RowResult> {
    let Some(old) = old else {
        return Err(RowResult::drifted(format!("push mirror {old_id} no longer exists")));
    };
    let facts = facts::push_facts(ProjectFacts { id: row.project_id, ..Default::default() }, old);
    if plan::fingerprint(&facts.observed()) != planned {
        return Err(RowResult::drifted(drift_detail(&facts, row)));
    }
    if !credentials_survive {
        return Err(RowResult::failed(
            "the service username or token has characters a push mirror URL would store \
             double-encoded; change this mirror in the UI",
        ));
    }
    if let Some(id) = appeared {
        return Err(appeared_result(id));
    }
    Ok(old)
}

/// A push mirror of the row's project with its target URL that did not exist when the plan
/// was made (its id is above `newest_planned`, every push-mirror id the plan names for the
/// project) and that this run did not make (`claimed`): another run's replacement. Creating
/// one more would leave two mirrors pushing the same repository.
pub(crate) fn appeared_after_planning(
    live: &[RemoteMirror],
    row: &PlanRow,
    newest_planned: Option<u64>,
    claimed: impl Fn(u64) -> bool,
) -> Option<u64> {
    let newest = newest_planned?;
    let target = without_userinfo(&row.new_url);
    live.iter()
        .find(|m| m.id > newest && without_userinfo(&m.url) == target && !claimed(m.id))
        .map(|m| m.id)
}

/// The outcome of a row whose replacement another run already made.
pub(crate) fn appeared_result(id: u64) -> RowResult {
    RowResult::drifted(format!(
        "a push mirror to this URL appeared after planning (push mirror {id}): another run of \
         this plan made it? Not replaced again; plan again to see it"
    ))
}

/// After this run created `created_id` (or, on resume, found the one it created): another
/// mirror to the same target, created after `newest_before` and not this run's, with a lower
/// id than ours — a run that created its replacement at the same moment, past every check
/// before the create. The lower id is kept and a run that finds a lower one deletes its own.
/// This narrows the race to creates that commit out of id order at the same instant; it
/// does not close it (only GitLab could). Without `newest_before` (a journal of an older
/// glmirror) no mirror can be shown to be newer, so none is a rival.
pub(crate) fn lower_rival(
    live: &[RemoteMirror],
    row: &PlanRow,
    newest_before: Option<u64>,
    created_id: u64,
    ours: impl Fn(u64) -> bool,
) -> Option<u64> {
    let newest_before = newest_before?;
    let target = without_userinfo(&row.new_url);
    live.iter()
        .filter(|m| m.id > newest_before && m.id < created_id)
        .filter(|m| without_userinfo(&m.url) == target && !ours(m.id))
        .map(|m| m.id)
        .min()
}

/// The outcome of a row whose replacement another run made at the same moment.
pub(crate) fn lost_race(rival: u64, created_id: u64) -> RowResult {
    RowResult::drifted(format!(
        "another run replaced this push mirror at the same moment (push mirror {rival}); this \
         run's copy {created_id} was deleted again. Plan again to see the result"
    ))
}

/// A dry run's detail.
pub(crate) fn dry_run(old_id: u64, probed: Option<ProbeCode>) -> RowResult {
    RowResult::dry_run(format!(
        "would create a replacement for push mirror {old_id}, then delete it{}",
        probe_note(probed)
    ))
}

/// The replacement of `old`: the same settings and `enabled=true` (new mirrors are disabled
/// by default, `doc/api/remote_mirrors.md`). ssh → https gets `auth_method=password`;
/// otherwise the old mirror's settings are copied. `url` carries the credentials.
pub(crate) fn replacement_request(
    old: &RemoteMirror,
    row: &PlanRow,
    url: SecretString,
) -> RemoteMirrorCreate {
    let to_https = !old.url.starts_with("https://") && row.new_url.starts_with("https://");
    RemoteMirrorCreate {
        url,
        enabled: true,
        auth_method: if to_https { Some("password".into()) } else { old.auth_method.clone() },
        keep_divergent_refs: old.keep_divergent_refs,
        only_protected_branches: old.only_protected_branches,
        // An empty regex next to only_protected_branches would be refused as exclusive.
        mirror_branch_regex: old.mirror_branch_regex.clone().filter(|r| !r.is_empty()),
    }
}

/// The push mirrors that may be a create's replacement: matching the target and newer than
/// `newest_before` (the largest id before the create; `None`: there was none).
pub(crate) fn created_after<'a>(
    live: &'a [RemoteMirror],
    row: &PlanRow,
    newest_before: Option<u64>,
) -> Vec<&'a RemoteMirror> {
    live.iter().filter(|m| newest_before.is_none_or(|n| m.id > n) && push_matches(m, row)).collect()
}

/// The step after a create whose answer was lost and a look at the push mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LostCreate {
    /// A new matching mirror was claimed: GitLab did create it.
    Adopt,
    /// Nothing was created: send the create again.
    Resend,
    /// Nothing was created and the resends are used up: end the row with the error.
    GiveUp,
}

/// Whether a lost create is adopted (`adopted`: a mirror from [`created_after`] was
/// claimed), sent again or given up.
pub(crate) fn lost_create(adopted: bool, resends: u32) -> LostCreate {
    match (adopted, resends < MAX_RESENDS) {
        (true, _) => LostCreate::Adopt,
        (false, true) => LostCreate::Resend,
        (false, false) => LostCreate::GiveUp,
    }
}

/// The replacement as read back must exist and match before the old mirror is removed;
/// `Err`: the failed row.
pub(crate) fn confirm_replacement(
    found: Option<&RemoteMirror>,
    row: &PlanRow,
    created_id: u64,
    old_id: u64,
) -> Result<(), RowResult> {
    match found {
        Some(m) if push_matches(m, row) => Ok(()),
        _ => Err(RowResult::failed(format!(
            "replacement push mirror {created_id} could not be confirmed; the old mirror {old_id} \
             was kept"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::journal::PushRepair;
    use crate::plan::row::tests::sample_row;
    use crate::plan::{MirrorType, Outcome};
    use crate::rewrite::{Action, NewAuth};

    const OLD: u64 = 5;

    fn row() -> PlanRow {
        let mut row = sample_row(1, MirrorType::Push, Some(OLD));
        row.current_url = "ssh://git@old.example.com/acme/api.git".into();
        row.action = Action::Update;
        row.new_url = "https://github.com/acme/api.git".into();
        row.new_auth = Some(NewAuth::Service);
        row
    }

    fn mirror(id: u64, url: &str, enabled: bool) -> RemoteMirror {
        RemoteMirror { id, url: url.into(), enabled, ..RemoteMirror::default() }
    }

    fn old() -> RemoteMirror {
        RemoteMirror {
            auth_method: Some("ssh_public_key".into()),
            keep_divergent_refs: Some(true),
            only_protected_branches: Some(true),
            mirror_branch_regex: Some(String::new()),
            ..mirror(OLD, "ssh://git@old.example.com/acme/api.git", true)
        }
    }

    fn target(id: u64) -> RemoteMirror {
        mirror(id, "https://*****:*****@github.com/acme/api.git", true)
    }

    fn planned() -> String {
        let facts = facts::push_facts(ProjectFacts { id: 1, ..Default::default() }, &old());
        plan::fingerprint(&facts.observed())
    }

    fn repair(replacement: Option<u64>, unrecorded: bool, newest_before: Option<u64>) -> Prior {
        Prior {
            in_flight: true,
            attempted: true,
            repair: Some(PushRepair {
                old_mirror_id: Some(OLD),
                replacement_id: replacement,
                create_unrecorded: unrecorded,
                old_deleted: false,
                newest_before,
            }),
        }
    }

    fn ids(found: &Resume<'_>) -> Vec<u64> {
        match found {
            Resume::Claim(ms) => ms.iter().map(|m| m.id).collect(),
            other => panic!("not a claim: {other:?}"),
        }
    }

    #[test]
    fn of_two_copies_made_at_the_same_moment_the_lower_id_is_kept() {
        let r = row();
        let target = r.new_url.clone();
        let m =
            |id: u64, url: &str| RemoteMirror { id, url: url.into(), ..RemoteMirror::default() };
        let live = vec![m(OLD, "https://old.example/x.git"), m(20, &target), m(21, &target)];
        let mine = |id: u64| id == 21;
        // We made 21; 20 is another run's, newer than planning: ours goes.
        assert_eq!(lower_rival(&live, &r, Some(10), 21, mine), Some(20));
        // We made 20: the other copy is higher, we keep ours (the other run deletes its own).
        assert_eq!(lower_rival(&live, &r, Some(10), 20, |id| id == 20), None);
        // Older than planning, another target, or ours: not a rival.
        assert_eq!(lower_rival(&live, &r, Some(20), 21, mine), None);
        let other = vec![m(20, "https://elsewhere.example/x.git"), m(21, &target)];
        assert_eq!(lower_rival(&other, &r, Some(10), 21, mine), None);
        assert_eq!(lower_rival(&live, &r, Some(10), 21, |id| id >= 20), None);
        // Without the newest id before the create, nothing is shown to be newer.
        assert_eq!(lower_rival(&live, &r, None, 21, mine), None);
        let result = lost_race(20, 21);
        assert_eq!(result.outcome, Outcome::Drifted);
        assert!(result.detail.contains("push mirror 20") && result.detail.contains("21"));
    }
    #[test]
    fn a_row_without_a_record_starts_fresh() {
        let live = [old(), target(9)];
        assert_eq!(resume_push(Prior::default(), &live, &row(), OLD), Resume::Fresh);
    }

    #[test]
    fn a_recorded_replacement_is_finished_not_created_again() {
        let live = [old(), target(9)];
        assert_eq!(
            resume_push(repair(Some(9), false, Some(5)), &live, &row(), OLD),
            Resume::Found(9)
        );
        // The old mirror still there: delete it; already gone: the row was done.
        assert_eq!(resumed(9, true), Ok(()));
        let done = resumed(9, false).unwrap_err();
        assert_eq!(
            (done.outcome, done.detail.as_str()),
            (Outcome::AlreadyApplied, "replaced by push mirror 9")
        );
        assert_eq!(replaced(9, true), "replaced by push mirror 9 (resumed)");
    }

    #[test]
    fn a_recorded_replacement_that_does_not_match_is_left_for_a_person() {
        let live = [old(), mirror(9, "https://*****@github.com/acme/api.git", false)];
        let Resume::Done(r) = resume_push(repair(Some(9), false, Some(5)), &live, &row(), OLD)
        else {
            panic!("not done")
        };
        assert_eq!(r.outcome, Outcome::Failed);
        assert_eq!(
            r.detail,
            "replacement push mirror 9 exists but does not match the plan; resolve by hand \
             (push mirror 5 was kept)"
        );
    }

    #[test]
    fn a_recorded_replacement_that_vanished_starts_fresh() {
        let live = [old()];
        assert_eq!(resume_push(repair(Some(9), false, Some(5)), &live, &row(), OLD), Resume::Fresh);
    }

    #[test]
    fn an_unrecorded_create_adopts_only_newer_matching_mirrors() {
        let live = [
            target(4),
            old(),
            mirror(7, "https://*****@github.com/acme/other.git", true),
            mirror(8, "https://*****@github.com/acme/api.git", false),
            target(9),
            target(11),
        ];
        let found = resume_push(repair(None, true, Some(5)), &live, &row(), OLD);
        assert_eq!(ids(&found), [9, 11], "newer than 5, matching, in order");
        // Nothing newer that matches: fresh (a new create).
        assert_eq!(resume_push(repair(None, true, Some(11)), &live, &row(), OLD), Resume::Fresh);
        // The intent's newest id unknown: nothing can be shown to be newer.
        assert_eq!(resume_push(repair(None, true, None), &live, &row(), OLD), Resume::Fresh);
        // Not in flight (the attempt ended with an outcome) or the create was recorded: no
        // search.
        let mut ended = repair(None, true, Some(5));
        ended.in_flight = false;
        assert_eq!(resume_push(ended, &live, &row(), OLD), Resume::Fresh);
        assert_eq!(resume_push(repair(None, false, Some(5)), &live, &row(), OLD), Resume::Fresh);
    }

    #[test]
    fn the_gate_refuses_in_order() {
        let fp = planned();
        let r = row();
        let o = old();
        let ok = push_gate(OLD, Some(&o), &fp, &r, true, None);
        assert_eq!(ok.map(|m| m.id), Ok(OLD));
        let outcome = |g: Result<&RemoteMirror, RowResult>| {
            let e = g.unwrap_err();
            (e.outcome, e.detail)
        };
        let (o1, d1) = outcome(push_gate(OLD, None, &fp, &r, false, Some(9)));
        assert_eq!((o1, d1.as_str()), (Outcome::Drifted, "push mirror 5 no longer exists"));
        let mut changed = old();
        changed.enabled = false;
        let (o2, d2) = outcome(push_gate(OLD, Some(&changed), &fp, &r, false, Some(9)));
        assert_eq!(o2, Outcome::Drifted);
        assert!(d2.starts_with("changed since planning: "), "{d2}");
        let (o3, d3) = outcome(push_gate(OLD, Some(&o), &fp, &r, false, Some(9)));
        assert_eq!(o3, Outcome::Failed);
        assert!(d3.contains("double-encoded"), "{d3}");
        let (o4, d4) = outcome(push_gate(OLD, Some(&o), &fp, &r, true, Some(9)));
        assert_eq!(o4, Outcome::Drifted);
        assert!(
            d4.starts_with("a push mirror to this URL appeared after planning (push mirror 9)")
        );
    }

    #[test]
    fn a_replacement_that_appeared_after_planning_is_found_unless_claimed() {
        let live = [old(), target(4), target(9), mirror(12, "https://github.com/x/y.git", true)];
        let none = |_| false;
        // (newest id the plan names, claimed ids, expected)
        let cases: [(Option<u64>, &[u64], Option<u64>); 5] = [
            (Some(5), &[], Some(9)),
            (Some(5), &[9], None),
            (Some(9), &[], None),
            (Some(3), &[], Some(4)),
            (None, &[], None),
        ];
        for (newest, claimed, want) in cases {
            let got = appeared_after_planning(&live, &row(), newest, |id| claimed.contains(&id));
            assert_eq!(got, want, "{newest:?} {claimed:?}");
        }
        // A disabled mirror to the URL counts too (the URL decides), another URL does not.
        let live = [mirror(9, "https://github.com/acme/api.git", false)];
        assert_eq!(appeared_after_planning(&live, &row(), Some(5), none), Some(9));
    }

    #[test]
    fn the_replacement_copies_the_settings() {
        let r = row();
        let req = replacement_request(&old(), &r, SecretString::from("https://t@github.com/a"));
        assert!(req.enabled);
        assert_eq!(req.auth_method.as_deref(), Some("password"), "ssh -> https");
        assert_eq!(req.keep_divergent_refs, Some(true));
        assert_eq!(req.only_protected_branches, Some(true));
        assert_eq!(req.mirror_branch_regex, None, "an empty regex is not sent");
        let https_old = RemoteMirror {
            url: "https://*****@old.example.com/a.git".into(),
            mirror_branch_regex: Some("^main$".into()),
            ..old()
        };
        let req = replacement_request(&https_old, &r, SecretString::from("x"));
        assert_eq!(req.auth_method.as_deref(), Some("ssh_public_key"), "copied");
        assert_eq!(req.mirror_branch_regex.as_deref(), Some("^main$"));
    }

    #[test]
    fn a_lost_create_is_adopted_resent_or_given_up() {
        let live = [old(), target(9), mirror(10, "https://github.com/acme/api.git", false)];
        let found: Vec<u64> = created_after(&live, &row(), Some(5)).iter().map(|m| m.id).collect();
        assert_eq!(found, [9]);
        let found: Vec<u64> = created_after(&live, &row(), None).iter().map(|m| m.id).collect();
        assert_eq!(found, [9], "no mirror before: any matching one");
        assert!(created_after(&live, &row(), Some(9)).is_empty());
        let cases = [
            (true, 0, LostCreate::Adopt),
            (true, MAX_RESENDS, LostCreate::Adopt),
            (false, 0, LostCreate::Resend),
            (false, MAX_RESENDS - 1, LostCreate::Resend),
            (false, MAX_RESENDS, LostCreate::GiveUp),
        ];
        for (adopted, resends, want) in cases {
            assert_eq!(lost_create(adopted, resends), want, "{adopted} {resends}");
        }
    }

    #[test]
    fn the_replacement_is_confirmed_before_the_delete() {
        let r = row();
        assert_eq!(confirm_replacement(Some(&target(9)), &r, 9, OLD), Ok(()));
        for found in [None, Some(mirror(9, "https://github.com/acme/api.git", false))] {
            let e = confirm_replacement(found.as_ref(), &r, 9, OLD).unwrap_err();
            assert_eq!(e.outcome, Outcome::Failed);
            assert_eq!(
                e.detail,
                "replacement push mirror 9 could not be confirmed; the old mirror 5 was kept"
            );
        }
        let d = dry_run(OLD, Some(ProbeCode::Ok));
        assert_eq!(
            (d.outcome, d.detail.as_str()),
            (
                Outcome::DryRun,
                "would create a replacement for push mirror 5, then delete it (probe: ok)"
            )
        );
    }
}
