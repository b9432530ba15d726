//! The row policy: what each mirror gets in the plan (`update`, `skip` or `manual`, the
//! `new_*` cells, `fixes` and `reason`). This is the product's core rule, as pure functions
//! over plain facts ([`MirrorFacts`]) and the run's settings ([`PlanContext`]), with its table
//! tests below. The plan command only gathers the facts and writes the rows.
//!
//! Size: about 480 lines of code; the rest is `the_policy_table` and its siblings, kept beside
//! the rules so a policy change and its test change are one diff.

use time::OffsetDateTime;

use crate::plan::facts::{MirrorFacts, MirrorKind};
use crate::plan::fingerprint::{self, SealKey};
use crate::plan::probe::ProbeFinding;
use crate::plan::row::{CurrentAuth, MirrorType, PlanRow, normalize_last_error};
use crate::plan::{Diagnosis, MirrorUserState};
use crate::probe::{ProbeClass, ProbeCode};
use crate::rewrite::{self, Action, Fix, MirrorInput, NewAuth, Rules};

/// Everything row decisions depend on, fixed for one run.
#[derive(Debug, Clone)]
pub(crate) struct PlanContext {
    /// URL rules.
    pub(crate) rules: Rules,
    /// Who pull mirrors will run as after apply.
    pub(crate) target_user: TargetUser,
    /// Plan archived projects too.
    pub(crate) include_archived: bool,
    /// Silent Mode seen at planning.
    pub(crate) silent_mode: bool,
    /// Planning time (for `stuck`).
    pub(crate) now: OffsetDateTime,
}

/// The mirror user pull mirrors get on apply, and whether apply can make it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetUser {
    /// Username.
    pub(crate) username: String,
    /// Why apply cannot make this user the mirror user (then pull rows that would be written
    /// are `manual`).
    pub(crate) blocked_reason: Option<String>,
    /// The user was asked for with `--mirror-user` (rather than being the caller by default):
    /// then every pull mirror whose user differs is moved to it.
    pub(crate) requested: bool,
    /// The user's id when its role must be checked per project (it is neither the caller nor
    /// an administrator).
    pub(crate) check_role: Option<u64>,
}

/// What the caller's token can do, for [`target_user`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallerRights {
    /// The caller is an instance administrator.
    pub(crate) is_admin: bool,
    /// The token has (or may have: older GitLab does not say) the `sudo` scope.
    pub(crate) has_sudo: bool,
    /// GitLab has `PUT /projects/:id/mirror/pull` (17.6+): the mirror user then changes only
    /// through `Sudo`.
    pub(crate) new_pull_api: bool,
    /// The instance setting "Allow project maintainers to configure repository mirroring"
    /// (`mirror_available`), when the caller may read it (administrators).
    pub(crate) mirror_available: Option<bool>,
}

/// The `--mirror-user` account as GitLab knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WantedUser {
    /// Its id.
    pub(crate) id: u64,
    /// Its username.
    pub(crate) username: String,
    /// An instance administrator (GitLab lets it act on every project).
    pub(crate) is_admin: bool,
}

/// Decide who pull mirrors will run as: the caller, or `wanted` (`--mirror-user`, already
/// looked up and active) when the caller's rights allow apply to make it so.
///
/// GitLab makes whoever writes a pull mirror its mirror user (`doc/api/project_pull_mirroring.md`);
/// another user needs `Sudo` (admin token with the `sudo` scope) on the 17.6 API, or an
/// administrator's `mirror_user_id` on the old `PUT /projects/:id`. A write made as a
/// non-administrator is refused with 400 "Access Denied" while `mirror_available` is off
/// (docs/gitlab-behaviour.md#mirror-available).
pub(crate) fn target_user(
    caller: &str,
    wanted: Option<&WantedUser>,
    rights: CallerRights,
) -> TargetUser {
    let Some(wanted) = wanted.filter(|w| w.username != caller) else {
        return TargetUser {
            username: caller.to_owned(),
            blocked_reason: None,
            requested: wanted.is_some(),
            check_role: None,
        };
    };
    let name = &wanted.username;
    let blocked_reason = if !rights.is_admin {
        Some(format!(
            "only an administrator's token can make {name} the mirror user; run apply with \
             {name}'s own token instead"
        ))
    } else if rights.new_pull_api && !rights.has_sudo {
        Some(format!("making {name} the mirror user needs an admin token with the `sudo` scope"))
    } else if rights.mirror_available == Some(false) && !wanted.is_admin && rights.new_pull_api {
        Some(format!(
            "the instance setting \"Allow project maintainers to configure repository \
             mirroring\" is off, so GitLab refuses a mirror write made as {name} (not an \
             administrator) with \"Access Denied\": turn the setting on (Admin > Settings > \
             Repository), make {name} an administrator, or plan without --mirror-user"
        ))
    } else {
        None
    };
    TargetUser {
        username: name.clone(),
        blocked_reason,
        requested: true,
        check_role: (!wanted.is_admin).then_some(wanted.id),
    }
}

/// The target mirror user's role in one project, when it had to be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetRole {
    /// Not checked: the target is the caller or an administrator, or no pull row of the
    /// project would be written.
    NotChecked,
    /// Maintainer or higher.
    Allowed,
    /// Below Maintainer (`None`: not a member at all).
    Below(Option<u32>),
}

impl TargetRole {
    /// From GitLab's effective access level (`None`: no membership).
    pub(crate) fn from_access_level(level: Option<u32>) -> TargetRole {
        match level {
            Some(l) if l >= MAINTAINER => TargetRole::Allowed,
            other => TargetRole::Below(other),
        }
    }
}

/// GitLab's Maintainer access level.
pub(crate) const MAINTAINER: u32 = 40;

fn role_name(level: Option<u32>) -> &'static str {
    match level {
        None | Some(0) => "not a member",
        Some(l) if l < 15 => "only a Guest",
        Some(l) if l < 20 => "only a Planner",
        Some(l) if l < 30 => "only a Reporter",
        Some(_) => "only a Developer",
    }
}

/// Build one plan row from a mirror's facts. `role`: the target mirror user's role in the
/// project, if it was checked; `probe`: what probing the row's `new_url` with its service
/// credentials found (`plan --probe`; only rows that would get service credentials are
/// probed, see [`gets_service_credentials`]).
pub(crate) fn build_row(
    facts: &MirrorFacts,
    ctx: &PlanContext,
    role: TargetRole,
    probe: Option<&ProbeFinding>,
) -> PlanRow {
    if let MirrorKind::Unreadable(_) = facts.kind {
        return crate::plan::unreadable::row(facts);
    }
    let project = &facts.project;
    let mirror_type = facts.mirror_type();
    let current_auth = CurrentAuth::from_masked_url(&facts.url);
    let last_error = facts.last_error.as_deref().map(normalize_last_error).unwrap_or_default();
    let diagnosis = facts.diagnose(ctx.now, ctx.silent_mode);
    let mut row = PlanRow {
        project_id: project.id,
        project_path: project.path.clone(),
        web_url: project.web_url.clone(),
        mirror_type,
        mirror_id: facts.kind.mirror_id(),
        // GitLab masks what it can parse (kept as shown: `:*****@` tells of a missing user);
        // a malformed URL it stored verbatim is masked here.
        current_url: if facts.url.contains(crate::redact::MASK) {
            facts.url.clone()
        } else {
            rewrite::mask_url(&facts.url)
        },
        current_auth,
        current_mirror_user: facts.user_name.clone(),
        update_status: facts.update_status.clone(),
        last_error,
        diagnosis,
        action: Action::Skip,
        new_url: String::new(),
        new_user: String::new(),
        new_auth: None,
        new_mirror_user: String::new(),
        fixes: Vec::new(),
        reason: String::new(),
        observed: String::new(),
        probe: None,
    };
    decide(&mut row, facts, ctx, role, probe);
    crate::plan::cell::clean_row(&mut row);
    row.observed = fingerprint::observed_cell(SealKey::of(&row), row.action, &facts.observed());
    row
}

/// Whether a mirror-user-only row is possible: the URL is not written, so only its text has
/// to be a clean cell.
fn url_for_mirror_user_only(url: &str) -> Option<String> {
    let stripped = without_credentials(url);
    (!stripped.is_empty()
        && stripped.len() <= 4096
        && !stripped.chars().any(|c| c.is_control() || c.is_whitespace()))
    .then_some(stripped)
}

/// A URL as GitLab shows it without its credentials: masked userinfo and passwords go, a
/// visible ssh username (`git@`) stays.
/// The userinfo is `redact::split_authority`'s; an ssh scheme is any starting with `ssh`.
pub(crate) fn without_credentials(url: &str) -> String {
    let Some(parts) = crate::redact::split_authority(url) else { return url.to_owned() };
    let Some(userinfo) = parts.userinfo else { return url.to_owned() };
    let is_ssh = parts.scheme.to_ascii_lowercase().starts_with("ssh");
    if is_ssh && !userinfo.contains(':') && !userinfo.contains(crate::redact::MASK) {
        return url.to_owned();
    }
    parts.without_userinfo()
}

/// Whether the planned write cures a diagnosis, so its advice need not be repeated.
fn cured(d: Diagnosis, row: &PlanRow) -> bool {
    let service = row.new_auth == Some(NewAuth::Service);
    let url_fixed = row.fixes.iter().any(|f| {
        matches!(
            f,
            Fix::ScpToSsh | Fix::ToHttps | Fix::SshToHttps | Fix::LowercaseHost | Fix::MapPrefix
        )
    });
    match d {
        Diagnosis::AuthFailed => service,
        Diagnosis::DeadlineExceeded => service || row.fixes.contains(&Fix::DecodeUser),
        Diagnosis::NoUsername => service || row.fixes.contains(&Fix::BitbucketOwner),
        Diagnosis::InvalidUrl => url_fixed,
        Diagnosis::Http301 => row.fixes.contains(&Fix::AddDotGit),
        Diagnosis::MirrorUserBlocked => row.fixes.contains(&Fix::MirrorUser),
        _ => false,
    }
}

/// Whether a row as built would be written with the service credentials: the rows
/// `plan --probe` probes.
pub(crate) fn gets_service_credentials(row: &PlanRow) -> bool {
    row.action == Action::Update && row.new_auth == Some(NewAuth::Service)
}

/// The reason of a row skipped because its project is archived.
const ARCHIVED: &str = "Archived project: left alone (use --include-archived to plan it).";
/// The reason of a pull row skipped because pull mirroring is off.
const PULL_OFF: &str = "Pull mirroring is off for this project (or it was only imported \
     once); enable it in Settings > Repository first if it should mirror.";

/// Whether a pull row is an enabled pull mirror of a live project (or of an archived one
/// planned with `--include-archived`): the mirrors whose user can move, which the summaries'
/// "running as" line counts. An unreadable pull mirror counts (nothing says it is off).
pub(crate) fn is_movable_pull(row: &PlanRow) -> bool {
    row.mirror_type == MirrorType::Pull
        && !(row.action == Action::Skip && (row.reason == ARCHIVED || row.reason == PULL_OFF))
}

/// Fill action, new_* columns, fixes and reason (the rules are in docs/plan-format.md,
/// "Which mirrors are moved", and, for `probe`, docs/remote-probe.md).
fn decide(
    row: &mut PlanRow,
    facts: &MirrorFacts,
    ctx: &PlanContext,
    role: TargetRole,
    probe: Option<&ProbeFinding>,
) {
    let skip = |row: &mut PlanRow, reason: String| {
        row.action = Action::Skip;
        row.reason = reason;
    };
    let manual = |row: &mut PlanRow, reason: String| {
        row.action = Action::Manual;
        row.reason = reason;
    };
    if facts.project.archived && !ctx.include_archived {
        return skip(row, ARCHIVED.into());
    }
    if facts.kind == MirrorKind::PullDisabled {
        return skip(row, PULL_OFF.into());
    }
    if !facts.enabled {
        return skip(
            row,
            "Push mirror is disabled; enable it in GitLab first if it should run.".into(),
        );
    }
    let pull = row.mirror_type == MirrorType::Pull;
    let rw = rewrite::rewrite(
        &MirrorInput {
            url: &facts.url,
            direction: row.mirror_type.into(),
            last_error: facts.last_error.as_deref(),
        },
        &ctx.rules,
    );
    let target = &ctx.target_user;
    let user_gone = matches!(facts.user_state, MirrorUserState::Blocked | MirrorUserState::Deleted);
    let move_user = pull && target.username != facts.user_name && (target.requested || user_gone);
    match rw.action {
        // The URL fix is refused but the URL itself may stay: the mirror user still moves
        // (a blocked or deleted user, or --mirror-user), and the URL fix is a person's task.
        Action::Manual if move_user && rw.url_safe_to_keep => {
            return mirror_user_only(row, facts, ctx, role, Some(&rw.reason));
        }
        // The URL cannot be written safely: a person decides.
        Action::Manual => {
            let reason = match row.diagnosis {
                Some(d) => format!("{} {}", rw.reason, d.advice()),
                None => rw.reason,
            };
            return manual(row, reason);
        }
        Action::Skip if move_user => return mirror_user_only(row, facts, ctx, role, None),
        Action::Skip => {
            if let Some(d) = row.diagnosis {
                // Nothing glmirror may change, yet the mirror is failing: a person must act.
                let why = rw.reason.strip_prefix("Nothing to change: ").unwrap_or(&rw.reason);
                return manual(row, format!("{} (Not fixed automatically: {why})", d.advice()));
            }
            return skip(row, rw.reason);
        }
        Action::Update => {}
    }
    if pull && let Some(reason) = pull_write_refused(ctx, role) {
        return manual(row, format!("Left alone: {reason}. Planned otherwise: {}", rw.reason));
    }
    // A push mirror's URL cannot change in place (`doc/api/remote_mirrors.md`): it is
    // replaced, and a replacement with SSH key authentication gets a new key pair that must be
    // installed on the remote first.
    let new_url = rw.new_url.as_deref().unwrap_or_default();
    if !pull
        && facts.flags.auth_method.as_deref() == Some("ssh_public_key")
        && !new_url.starts_with("https://")
    {
        return manual(
            row,
            format!(
                "{} Replacing an SSH push mirror creates a new key pair, which the remote must \
                 trust before it can push: change it in the UI and install the new public key.",
                rw.reason
            ),
        );
    }
    // The probe's credential verdicts keep the service credentials off the row: only the
    // mirror user may still move (with --mirror-user, or away from a blocked user).
    let service = rw.new_auth == Some(NewAuth::Service);
    if service {
        row.probe = probe.map(|p| p.code);
    }
    if let Some(f) = probe.filter(|f| service && f.code.class() == ProbeClass::CredentialVerdict) {
        if move_user {
            mirror_user_only(row, facts, ctx, role, None);
            row.reason = format!("{} {}", f.not_moved(), row.reason);
            return;
        }
        return manual(
            row,
            format!("{} Once that is fixed, plan again to move this mirror.", f.not_moved()),
        );
    }
    row.action = Action::Update;
    row.new_url = rw.new_url.unwrap_or_default();
    row.new_auth = rw.new_auth;
    row.new_user = if rw.new_auth == Some(NewAuth::Service) {
        rw.new_user.unwrap_or_default()
    } else {
        String::new()
    };
    row.fixes = rw.fixes;
    row.reason = rw.reason;
    if pull {
        row.new_mirror_user = target.username.clone();
        if row.new_mirror_user != row.current_mirror_user {
            row.fixes.push(Fix::MirrorUser);
            row.reason.push_str(&format!(" The mirror user becomes {}.", target.username));
        }
    }
    if let Some(f) = probe.filter(|_| service) {
        probe_feeds_the_row(row, f);
    }
    row.fixes.sort();
    row.fixes.dedup();
    still_to_do(row);
}

/// What a probe that is not a credential verdict does to a service row: `dumb-http` and
/// `redirect` feed the diagnosis (the row is still moved, §3.1's rules), a same-origin
/// redirect to the URL plus `.git` is the `add-dot-git` fix, and a probe without a verdict
/// leaves the row as planned, unproven.
fn probe_feeds_the_row(row: &mut PlanRow, f: &ProbeFinding) {
    let said = f.reason.trim_end_matches('.');
    match f.code {
        ProbeCode::DumbHttp => {
            row.diagnosis = Some(Diagnosis::DumbHttp);
            row.reason.push_str(&format!(" The probe found dumb HTTP: {said}."));
        }
        ProbeCode::Redirect => match f.suggested_url.as_deref().filter(|_| f.adds_dot_git) {
            Some(url) => {
                row.new_url = url.to_owned();
                row.fixes.push(Fix::AddDotGit);
                row.reason.push_str(&format!(
                    " The probe was redirected to the URL with `.git`, which GitLab would not \
                     follow: new_url is {url}."
                ));
            }
            None => {
                row.diagnosis = Some(Diagnosis::Http301);
                row.reason.push_str(&format!(" The probe was redirected: {said}."));
            }
        },
        code => match code.class() {
            ProbeClass::NoVerdict | ProbeClass::NotProbed => row
                .reason
                .push_str(&format!(" Not proven: the probe got {code} ({}): {said}.", f.answer())),
            ProbeClass::Proven | ProbeClass::Diagnosis | ProbeClass::CredentialVerdict => {}
        },
    }
}

/// Why the write of a pull row cannot make the planned user its mirror user, if it cannot.
fn pull_write_refused(ctx: &PlanContext, role: TargetRole) -> Option<String> {
    let target = &ctx.target_user;
    if let Some(why) = &target.blocked_reason {
        return Some(why.clone());
    }
    match role {
        TargetRole::Below(level) => Some(format!(
            "{} is {} of this project, so GitLab would fail every update of this mirror \
             (\"The mirror user is not allowed to push code to all branches on this \
             project\"): make it a Maintainer, or plan without --mirror-user",
            target.username,
            role_name(level)
        )),
        TargetRole::Allowed | TargetRole::NotChecked => None,
    }
}

/// A pull mirror that only moves to the target mirror user: URL and stored credentials stay.
/// `refused_fix`: the rules' reason for a URL fix they refused (the URL may stay as it is, see
/// `Rewrite::url_safe_to_keep`), which the reason then names as a person's task.
fn mirror_user_only(
    row: &mut PlanRow,
    facts: &MirrorFacts,
    ctx: &PlanContext,
    role: TargetRole,
    refused_fix: Option<&str>,
) {
    let target = &ctx.target_user;
    let what = format!("Only the mirror user changes, to {}", target.username);
    let url_task =
        refused_fix.map(|r| format!(" The URL fix is left for a person: {r}")).unwrap_or_default();
    if let Some(why) = pull_write_refused(ctx, role) {
        row.action = Action::Manual;
        row.reason = format!("{what}, but {why}.{url_task}");
        return;
    }
    let Some(url) = url_for_mirror_user_only(&facts.url) else {
        row.action = Action::Manual;
        row.reason = format!(
            "{what}, but the stored URL cannot be shown in a plan; fix it by hand.{url_task}"
        );
        return;
    };
    row.action = Action::Update;
    row.new_url = url;
    row.new_auth = Some(NewAuth::Unchanged);
    row.new_user = String::new();
    row.new_mirror_user = target.username.clone();
    row.fixes = vec![Fix::MirrorUser];
    row.reason = format!("{what}: the URL and the stored credentials stay as they are.{url_task}");
    still_to_do(row);
}

/// Add what a person must still do for a diagnosis the write does not cure.
fn still_to_do(row: &mut PlanRow) {
    let Some(d) = row.diagnosis else { return };
    if cured(d, row) {
        return;
    }
    match d {
        Diagnosis::Stuck => row.reason.push_str(&format!(
            " The write is saved, but GitLab runs no update until the stuck one is cleared: {}",
            d.advice()
        )),
        _ => row.reason.push_str(&format!(" Still for a person ({}): {}", d.code(), d.advice())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::facts::tests::pull_facts;
    use crate::plan::{MirrorFlags, ProjectFacts};
    use crate::rewrite::SourceHost;
    use crate::rewrite::authority_tests::{fixture_texts, url_text, well_formed_url};
    use proptest::prelude::*;
    use time::Duration;

    fn rules() -> Rules {
        Rules {
            source_hosts: vec![SourceHost { host: "github.com".into(), user: None, port: None }],
            maps: Vec::new(),
            prefer_https: false,
        }
    }

    /// A run whose pull mirrors run as `target` (`requested`: given as --mirror-user).
    fn ctx_for(target: &str, requested: bool) -> PlanContext {
        PlanContext {
            rules: rules(),
            target_user: TargetUser {
                username: target.into(),
                blocked_reason: None,
                requested,
                check_role: requested.then_some(99),
            },
            include_archived: false,
            silent_mode: false,
            now: OffsetDateTime::now_utc(),
        }
    }

    fn ctx() -> PlanContext {
        ctx_for("svc", true)
    }

    /// A sample `last_error` (or state) for each diagnosis, so the table below reaches every
    /// code through `diagnose`.
    fn with_diagnosis(
        mut f: MirrorFacts,
        d: Option<Diagnosis>,
        now: OffsetDateTime,
    ) -> MirrorFacts {
        let err = |f: &mut MirrorFacts, text: &str| {
            f.update_status = "failed".into();
            f.last_error = Some(text.into());
        };
        match d {
            None => {}
            Some(Diagnosis::RstStream) => {
                err(&mut f, "fetch remote: stream error: stream ID 5; RST_STREAM with error code 2")
            }
            Some(Diagnosis::DeadlineExceeded) => err(&mut f, "4:Deadline Exceeded."),
            Some(Diagnosis::PublickeyOnly) => {
                err(&mut f, "git@host: Permission denied (publickey).")
            }
            Some(Diagnosis::NoUsername) => err(
                &mut f,
                "fatal: could not read Username for 'https://bitbucket.org': terminal prompts disabled",
            ),
            Some(Diagnosis::InvalidUrl) => {
                err(&mut f, "The unauthenticated git protocol on port 9418 is no longer supported.")
            }
            Some(Diagnosis::HostKey) => err(&mut f, "Host key verification failed."),
            Some(Diagnosis::Http301) => err(&mut f, "The requested URL returned error: 301"),
            Some(Diagnosis::Geo302) => err(
                &mut f,
                "error: RPC failed; HTTP 302 curl 22 The requested URL returned error: 302",
            ),
            Some(Diagnosis::DumbHttp) => {
                err(&mut f, "error: unable to get pack index https://h/objects/pack/p.idx")
            }
            Some(Diagnosis::NotMirrored) => err(&mut f, "The project is not mirrored"),
            Some(Diagnosis::Stuck) => {
                f.update_status = "started".into();
                f.last_update_started_at = Some(now - Duration::hours(5));
            }
            Some(Diagnosis::AuthFailed) => {
                err(&mut f, "remote: HTTP Basic: Access denied\nfatal: Authentication failed")
            }
            Some(Diagnosis::NotFound) => err(&mut f, "remote: Repository not found."),
            Some(Diagnosis::MirrorUserBlocked) => f.user_state = MirrorUserState::Blocked,
            Some(Diagnosis::Unknown) => err(&mut f, "something odd happened"),
            // Not a state of a mirror that was read: `plan::unreadable` has its own tests.
            Some(Diagnosis::Unreadable) => f.kind = MirrorKind::Unreadable(f.mirror_type()),
        }
        f
    }

    fn push_facts(url: &str) -> MirrorFacts {
        MirrorFacts {
            kind: MirrorKind::Push { id: 5 },
            url: url.into(),
            user_state: MirrorUserState::NotApplicable,
            user_name: String::new(),
            user_id: None,
            flags: MirrorFlags {
                only_protected_branches: Some(false),
                keep_divergent_refs: Some(false),
                auth_method: Some("password".into()),
                ..MirrorFlags::default()
            },
            ..pull_facts()
        }
    }

    /// Walk every diagnosis × source/non-source host × pull/push × with/without
    /// `--mirror-user` × live/archived/disabled, and check the rules of docs/plan-format.md
    /// ("Which mirrors are moved").
    #[test]
    fn the_policy_table() {
        let diagnoses = std::iter::once(None).chain(Diagnosis::ALL.into_iter().map(Some));
        let mut checked = 0;
        for d in diagnoses {
            for source in [true, false] {
                for push in [false, true] {
                    for requested in [true, false] {
                        for state in ["live", "archived", "disabled"] {
                            if d == Some(Diagnosis::MirrorUserBlocked) && push {
                                continue; // push mirrors have no mirror user
                            }
                            if d == Some(Diagnosis::Unreadable) {
                                continue; // nothing was read: see `plan::unreadable`
                            }
                            let ctx = if requested { ctx() } else { ctx_for("root", false) };
                            let host = if source { "github.com" } else { "git.example.org" };
                            let url = if push {
                                format!("https://*****:*****@{host}/acme/api.git")
                            } else {
                                format!("https://*****@{host}/acme/api.git")
                            };
                            let mut f = if push {
                                push_facts(&url)
                            } else {
                                MirrorFacts { url, ..pull_facts() }
                            };
                            f = with_diagnosis(f, d, ctx.now);
                            match state {
                                "archived" => f.project.archived = true,
                                "disabled" if push => f.enabled = false,
                                "disabled" => {
                                    f.kind = MirrorKind::PullDisabled;
                                    f.enabled = false;
                                }
                                _ => {}
                            }
                            let case = format!(
                                "{d:?} source={source} push={push} requested={requested} {state}"
                            );
                            if state == "live" && d.is_some() {
                                assert_eq!(
                                    f.diagnose(ctx.now, false),
                                    d,
                                    "{case}: the table reaches the code"
                                );
                            }
                            let row = build_row(&f, &ctx, TargetRole::NotChecked, None);
                            check_row(&row, &f, &ctx, source, push, state, None, &case);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 300, "{checked}");
        // URLs without `.git`, with stored credentials, whose last error is a 301: on a host
        // without service credentials the rules refuse `add-dot-git` (the write would erase
        // the credentials). The URL may stay as it is, so a mirror user that must move
        // (blocked, deleted, or --mirror-user) still moves; `reason` names the URL fix.
        let http_301 = "13:fetch remote: \"error: RPC failed; HTTP 301 curl 22 The requested URL \
                        returned error: 301\": exit status 128.";
        let refused =
            "re-enter them in the GitLab UI with the URL https://git.example.org/acme/api.git";
        let mut refused_cases = 0;
        for source in [true, false] {
            for push in [false, true] {
                for requested in [true, false] {
                    for user in [
                        MirrorUserState::Active,
                        MirrorUserState::Blocked,
                        MirrorUserState::Deleted,
                    ] {
                        if push && user != MirrorUserState::Active {
                            continue; // push mirrors have no mirror user
                        }
                        let ctx = if requested { ctx() } else { ctx_for("root", false) };
                        let host = if source { "github.com" } else { "git.example.org" };
                        let url = format!("https://*****:*****@{host}/acme/api");
                        let mut f = if push {
                            push_facts(&url)
                        } else {
                            MirrorFacts { url, ..pull_facts() }
                        };
                        f.update_status = "failed".into();
                        f.last_error = Some(http_301.into());
                        if !push {
                            f.user_state = user;
                            f.user_name = match user {
                                MirrorUserState::Deleted => String::new(),
                                _ => "jdoe".into(),
                            };
                        }
                        let case = format!(
                            "no .git, 301, source={source} push={push} requested={requested} \
                             user={user:?}"
                        );
                        let row = build_row(&f, &ctx, TargetRole::NotChecked, None);
                        let refused = (!source).then_some(refused);
                        check_row(&row, &f, &ctx, source, push, "live", refused, &case);
                        refused_cases += 1;
                    }
                }
            }
        }
        assert_eq!(refused_cases, 16);
        // Keeping the URL is itself unsafe (a dot segment): `manual`, even for a blocked user.
        for requested in [true, false] {
            let ctx = if requested { ctx() } else { ctx_for("root", false) };
            let f = MirrorFacts {
                url: "https://*****:*****@git.example.org/acme/../api".into(),
                user_state: MirrorUserState::Blocked,
                ..pull_facts()
            };
            let row = build_row(&f, &ctx, TargetRole::NotChecked, None);
            assert_eq!(row.action, Action::Manual, "requested={requested}: {}", row.reason);
            assert!(row.new_mirror_user.is_empty() && row.fixes.is_empty(), "{row:?}");
        }
    }

    /// `refused`: text of a URL fix the rules refuse on this row, which its reason must name.
    #[allow(clippy::too_many_arguments)]
    fn check_row(
        row: &PlanRow,
        f: &MirrorFacts,
        ctx: &PlanContext,
        source: bool,
        push: bool,
        state: &str,
        refused: Option<&str>,
        case: &str,
    ) {
        assert_eq!(
            row.diagnosis,
            if state == "live" { f.diagnose(ctx.now, false) } else { row.diagnosis },
            "{case}"
        );
        assert!(row.observed.starts_with("v1-"), "{case}");
        assert!(!row.reason.is_empty(), "{case}");
        if state != "live" {
            assert_eq!(row.action, Action::Skip, "{case}: {}", row.reason);
            assert!(row.new_url.is_empty() && row.new_auth.is_none(), "{case}");
            return;
        }
        let target = &ctx.target_user.username;
        let user_gone = matches!(f.user_state, MirrorUserState::Blocked | MirrorUserState::Deleted);
        if let Some(text) = refused {
            assert!(row.reason.contains(text), "{case}: the refused fix is named: {}", row.reason);
        }
        if source {
            // Remote-side problems do not block the move onto the service credentials.
            assert_eq!(row.action, Action::Update, "{case}: {}", row.reason);
            assert_eq!(row.new_auth, Some(NewAuth::Service), "{case}");
            assert!(row.fixes.contains(&Fix::ServiceToken), "{case}");
            assert_eq!(row.new_url, "https://github.com/acme/api.git", "{case}");
        } else if !push && (ctx.target_user.requested || user_gone) && f.user_name != *target {
            // Mirror-user-only: nothing but the mirror user changes.
            assert_eq!(row.action, Action::Update, "{case}: {}", row.reason);
            assert!(row.is_mirror_user_only(), "{case}: {:?}", row.fixes);
            assert_eq!(row.new_auth, Some(NewAuth::Unchanged), "{case}");
            assert_eq!(row.new_url, without_credentials(&f.url), "{case}");
            assert!(row.new_url.starts_with("https://git.example.org/acme/api"), "{case}");
            assert!(row.reason.contains("Only the mirror user changes"), "{case}");
            if refused.is_some() {
                assert!(row.reason.contains("The URL fix is left for a person"), "{case}");
            }
        } else if row.diagnosis.is_some() || refused.is_some() {
            assert_eq!(row.action, Action::Manual, "{case}: {}", row.reason);
            assert!(row.new_url.is_empty(), "{case}");
        } else {
            assert_eq!(row.action, Action::Skip, "{case}: {}", row.reason);
        }
        if row.action == Action::Update {
            if push {
                assert!(row.new_mirror_user.is_empty(), "{case}");
            } else {
                assert_eq!(&row.new_mirror_user, target, "{case}");
                assert_eq!(row.fixes.contains(&Fix::MirrorUser), f.user_name != *target, "{case}");
            }
            // The diagnosis stays, and what a person must still do is said.
            if let Some(d) = row.diagnosis
                && !cured(d, row)
            {
                assert!(row.reason.contains(d.advice()), "{case}: {}", row.reason);
            }
            if row.diagnosis == Some(Diagnosis::Stuck) {
                assert!(
                    row.reason.contains("GitLab runs no update until the stuck one is cleared"),
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn movable_pulls_are_enabled_pull_mirrors_of_live_projects() {
        let c = ctx();
        let live = pull_facts();
        assert!(is_movable_pull(&build_row(&live, &c, TargetRole::Allowed, None)));
        let mut archived = pull_facts();
        archived.project.archived = true;
        assert!(!is_movable_pull(&build_row(&archived, &c, TargetRole::Allowed, None)));
        let mut planned = c.clone();
        planned.include_archived = true;
        assert!(is_movable_pull(&build_row(&archived, &planned, TargetRole::Allowed, None)));
        let off = MirrorFacts { kind: MirrorKind::PullDisabled, enabled: false, ..pull_facts() };
        assert!(!is_movable_pull(&build_row(&off, &c, TargetRole::Allowed, None)));
        let push = push_facts("https://*****:*****@github.com/acme/api.git");
        assert!(!is_movable_pull(&build_row(&push, &c, TargetRole::Allowed, None)));
        // Skipped for another reason (nothing to change): still counted.
        let done = MirrorFacts {
            url: "https://git.example.org/a/b.git".into(),
            user_name: "svc".into(),
            ..pull_facts()
        };
        let row = build_row(&done, &c, TargetRole::Allowed, None);
        assert_eq!(row.action, Action::Skip);
        assert!(is_movable_pull(&row));
    }

    #[test]
    fn target_user_rules() {
        let admin = CallerRights {
            is_admin: true,
            has_sudo: true,
            new_pull_api: true,
            mirror_available: Some(true),
        };
        let svc = WantedUser { id: 9, username: "svc".into(), is_admin: false };
        let t = target_user("root", None, admin);
        assert_eq!((t.username.as_str(), t.requested, t.check_role), ("root", false, None));
        let root = WantedUser { id: 1, username: "root".into(), is_admin: true };
        let t = target_user("root", Some(&root), admin);
        assert_eq!(
            (t.username.as_str(), t.requested, t.blocked_reason.is_none()),
            ("root", true, true)
        );
        let t = target_user("root", Some(&svc), admin);
        assert_eq!((t.blocked_reason.is_none(), t.check_role), (true, Some(9)));
        let t = target_user("bob", Some(&svc), CallerRights { is_admin: false, ..admin });
        assert!(t.blocked_reason.unwrap().contains("administrator"));
        let t = target_user("root", Some(&svc), CallerRights { has_sudo: false, ..admin });
        assert!(t.blocked_reason.unwrap().contains("sudo"));
        let off = CallerRights { mirror_available: Some(false), ..admin };
        let t = target_user("root", Some(&svc), off);
        assert!(t.blocked_reason.unwrap().contains("Access Denied"));
        let admin_svc = WantedUser { is_admin: true, ..svc.clone() };
        let t = target_user("root", Some(&admin_svc), off);
        assert_eq!(
            (t.blocked_reason, t.check_role),
            (None, None),
            "an admin target is always allowed"
        );
        let old = CallerRights {
            is_admin: true,
            has_sudo: false,
            new_pull_api: false,
            mirror_available: None,
        };
        let t = target_user("root", Some(&svc), old);
        assert!(t.blocked_reason.is_none());
    }

    #[test]
    fn a_source_host_pull_mirror_gets_service_credentials_and_the_target_user() {
        let row = build_row(&pull_facts(), &ctx(), TargetRole::Allowed, None);
        assert_eq!(row.action, Action::Update, "{}", row.reason);
        assert_eq!(row.new_auth, Some(NewAuth::Service));
        assert_eq!(row.new_url, "https://github.com/acme/api.git");
        assert_eq!(row.new_mirror_user, "svc");
        assert_eq!(row.fixes, vec![Fix::ServiceToken, Fix::MirrorUser]);
        assert!(row.reason.contains("The mirror user becomes svc"), "{}", row.reason);
    }

    #[test]
    fn a_target_below_maintainer_keeps_pull_rows_manual() {
        for level in [None, Some(10), Some(20), Some(30)] {
            let row = build_row(&pull_facts(), &ctx(), TargetRole::from_access_level(level), None);
            assert_eq!(row.action, Action::Manual, "{level:?}");
            assert!(
                row.reason.contains("not allowed to push code to all branches"),
                "{}",
                row.reason
            );
            assert!(row.new_url.is_empty());
        }
        assert_eq!(TargetRole::from_access_level(Some(40)), TargetRole::Allowed);
        assert_eq!(TargetRole::from_access_level(Some(50)), TargetRole::Allowed);
        // Push rows are written by the caller: the target's role does not matter.
        let push = push_facts("https://*****:*****@github.com/acme/api.git");
        let row = build_row(&push, &ctx(), TargetRole::Below(Some(30)), None);
        assert_eq!(row.action, Action::Update);
        // A blocked target (no sudo, not admin, …) keeps mirror-user-only rows manual too.
        let mut c = ctx();
        c.target_user.blocked_reason = Some("needs sudo".into());
        let f = MirrorFacts { url: "https://git.example.org/a/b.git".into(), ..pull_facts() };
        let row = build_row(&f, &c, TargetRole::NotChecked, None);
        assert_eq!(row.action, Action::Manual);
        assert!(row.reason.contains("needs sudo"), "{}", row.reason);
    }

    #[test]
    fn mirror_user_only_rows_keep_the_url_and_credentials() {
        let cases = [
            ("https://*****:*****@git.example.org/a/b.git", "https://git.example.org/a/b.git"),
            ("https://git.example.org/a/b.git", "https://git.example.org/a/b.git"),
            ("ssh://*****@git.example.org:2222/a/b.git", "ssh://git.example.org:2222/a/b.git"),
            ("ssh://git@git.example.org/a/b.git", "ssh://git@git.example.org/a/b.git"),
            ("git://git.example.org/a/b.git", "git://git.example.org/a/b.git"),
        ];
        for (url, want) in cases {
            let f = MirrorFacts { url: url.into(), ..pull_facts() };
            let row = build_row(&f, &ctx(), TargetRole::Allowed, None);
            assert_eq!(row.action, Action::Update, "{url}: {}", row.reason);
            assert!(row.is_mirror_user_only(), "{url}");
            assert_eq!(row.new_url, want, "{url}");
            assert_eq!(row.new_auth, Some(NewAuth::Unchanged));
            assert!(row.new_user.is_empty());
        }
        // Already running as the target: nothing to change.
        let f = MirrorFacts {
            url: "https://git.example.org/a/b.git".into(),
            user_name: "svc".into(),
            ..pull_facts()
        };
        assert_eq!(build_row(&f, &ctx(), TargetRole::Allowed, None).action, Action::Skip);
        // Without --mirror-user an active user stays; a blocked or deleted one goes to the caller.
        let f = MirrorFacts { url: "https://git.example.org/a/b.git".into(), ..pull_facts() };
        assert_eq!(
            build_row(&f, &ctx_for("root", false), TargetRole::NotChecked, None).action,
            Action::Skip
        );
        for state in [MirrorUserState::Blocked, MirrorUserState::Deleted] {
            let f = MirrorFacts { user_state: state, user_name: String::new(), ..f.clone() };
            let row = build_row(&f, &ctx_for("root", false), TargetRole::NotChecked, None);
            assert!(row.is_mirror_user_only(), "{state:?}: {}", row.reason);
            assert_eq!(row.new_mirror_user, "root");
            assert_eq!(row.diagnosis, Some(Diagnosis::MirrorUserBlocked));
        }
    }

    #[test]
    fn unsafe_urls_and_credential_dropping_fixes_stay_manual() {
        // A URL fix on a host without service credentials would erase the stored ones.
        let f = MirrorFacts {
            url: "HTTPS://*****:*****@Git.Example.org/a/b.git".into(),
            ..pull_facts()
        };
        // The mirror user stays (active, no --mirror-user): nothing may be written.
        let row = build_row(&f, &ctx_for("root", false), TargetRole::NotChecked, None);
        assert_eq!(row.action, Action::Manual, "{}", row.reason);
        assert!(row.reason.contains("would erase"), "{}", row.reason);
        // With --mirror-user only the mirror user moves; the URL fix is a person's task.
        let row = build_row(&f, &ctx(), TargetRole::Allowed, None);
        assert!(row.is_mirror_user_only(), "{}", row.reason);
        assert_eq!(row.new_url, "HTTPS://Git.Example.org/a/b.git");
        assert!(row.reason.contains("The URL fix is left for a person"), "{}", row.reason);
        // A stale `%2540` username on such a host: the same.
        let f = MirrorFacts {
            url: "https://dlee%2540corp:*****@git.example.org/a/b.git".into(),
            ..pull_facts()
        };
        let row = build_row(&f, &ctx(), TargetRole::Allowed, None);
        assert!(row.is_mirror_user_only(), "{}", row.reason);
        assert!(row.reason.contains("percent-encoded"), "{}", row.reason);
        // The target is below Maintainer: manual, and both tasks are named.
        let row = build_row(&f, &ctx(), TargetRole::Below(Some(30)), None);
        assert_eq!(row.action, Action::Manual, "{}", row.reason);
        assert!(row.reason.contains("only a Developer"), "{}", row.reason);
        assert!(row.reason.contains("percent-encoded"), "{}", row.reason);
        // Keeping the URL is itself unsafe: manual.
        let f = MirrorFacts { url: "https://git.example.org/a/../b.git".into(), ..pull_facts() };
        assert_eq!(build_row(&f, &ctx(), TargetRole::Allowed, None).action, Action::Manual);
    }

    #[test]
    fn retired_git_protocol_on_github_moves_to_https() {
        let mut f = MirrorFacts { url: "git://github.com/acme/api.git".into(), ..pull_facts() };
        f.update_status = "failed".into();
        f.last_error = Some("fatal: remote error:\n  The unauthenticated git protocol on port 9418 is no longer supported.".into());
        let row = build_row(&f, &ctx(), TargetRole::Allowed, None);
        assert_eq!(row.diagnosis, Some(Diagnosis::InvalidUrl));
        assert_eq!(row.action, Action::Update, "{}", row.reason);
        assert_eq!(row.new_url, "https://github.com/acme/api.git");
        assert!(row.fixes.contains(&Fix::ToHttps) && row.fixes.contains(&Fix::ServiceToken));
        assert!(!row.reason.contains("Still for a person"), "cured: {}", row.reason);
    }

    #[test]
    fn ssh_push_mirrors_whose_url_changes_are_manual() {
        let mut f = push_facts("ssh://git@github.com/acme/api.git");
        f.flags.auth_method = Some("ssh_public_key".into());
        let mut c = ctx();
        c.rules.prefer_https = false;
        let row = build_row(&f, &c, TargetRole::NotChecked, None);
        assert_ne!(row.action, Action::Update, "{}", row.reason);
        let f = push_facts("git@github.com:acme/api.git");
        let f = MirrorFacts {
            flags: MirrorFlags { auth_method: Some("ssh_public_key".into()), ..f.flags.clone() },
            ..f
        };
        let row = build_row(&f, &c, TargetRole::NotChecked, None);
        assert_eq!(row.action, Action::Manual, "{}", row.reason);
        assert!(row.reason.contains("new key pair"), "{}", row.reason);
    }

    fn finding(code: ProbeCode) -> ProbeFinding {
        let mut f = ProbeFinding::new(code, "github.com", &format!("the host's {code} answer"));
        f.status = Some(404);
        f
    }

    /// Every probe code × pull/push × with/without `--mirror-user`, on a source-host row
    /// that would get the service credentials: what docs/remote-probe.md's table says.
    #[test]
    fn the_probe_table() {
        let mut checked = 0;
        for code in ProbeCode::ALL {
            for push in [false, true] {
                for requested in [true, false] {
                    let c = if requested { ctx() } else { ctx_for("root", false) };
                    let f = if push {
                        push_facts("https://*****:*****@github.com/acme/api.git")
                    } else {
                        pull_facts()
                    };
                    let case = format!("{code} push={push} requested={requested}");
                    let plain = build_row(&f, &c, TargetRole::Allowed, None);
                    assert!(gets_service_credentials(&plain), "{case}: {}", plain.reason);
                    assert_eq!(plain.probe, None);
                    let row = build_row(&f, &c, TargetRole::Allowed, Some(&finding(code)));
                    assert_eq!(row.probe, Some(code), "{case}: the probe cell");
                    assert!(row.observed.starts_with("v1-"), "{case}");
                    match code.class() {
                        ProbeClass::CredentialVerdict => {
                            assert!(!gets_service_credentials(&row), "{case}: {}", row.reason);
                            assert!(
                                row.reason.contains(&format!(
                                    "not moved: probing with them got {code} (HTTP 404 from \
                                     github.com): the host's {code} answer."
                                )),
                                "{case}: {}",
                                row.reason
                            );
                            if !push && requested {
                                assert!(row.is_mirror_user_only(), "{case}: {}", row.reason);
                                assert_eq!(row.new_url, "https://github.com/acme/api.git");
                                assert_eq!(row.new_mirror_user, "svc");
                            } else {
                                assert_eq!(row.action, Action::Manual, "{case}");
                                assert!(row.new_url.is_empty() && row.new_auth.is_none());
                                assert!(row.reason.contains("plan again"), "{case}");
                            }
                        }
                        ProbeClass::Diagnosis => {
                            assert_eq!(row.action, Action::Update, "{case}");
                            assert_eq!(row.new_auth, Some(NewAuth::Service));
                            let want = if code == ProbeCode::DumbHttp {
                                Diagnosis::DumbHttp
                            } else {
                                Diagnosis::Http301
                            };
                            assert_eq!(row.diagnosis, Some(want), "{case}");
                            assert!(row.reason.contains(want.advice()), "{case}: {}", row.reason);
                        }
                        ProbeClass::Proven | ProbeClass::NoVerdict | ProbeClass::NotProbed => {
                            let same = |r: &PlanRow| {
                                (r.action, r.new_url.clone(), r.new_auth, r.fixes.clone())
                            };
                            assert_eq!(same(&row), same(&plain), "{case}: as planned");
                            assert_eq!(row.diagnosis, plain.diagnosis, "{case}");
                            let unproven = code.class() != ProbeClass::Proven;
                            assert_eq!(row.reason.contains("Not proven"), unproven, "{case}");
                        }
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, ProbeCode::ALL.len() * 4);
    }

    #[test]
    fn a_redirect_to_the_url_plus_dot_git_is_the_add_dot_git_fix() {
        let mut c = ctx();
        c.rules.source_hosts =
            vec![SourceHost { host: "dev.azure.com".into(), user: Some("svc".into()), port: None }];
        let f = MirrorFacts {
            url: "https://*****:*****@dev.azure.com/acme/p/_git/repo".into(),
            ..pull_facts()
        };
        let plain = build_row(&f, &c, TargetRole::Allowed, None);
        assert_eq!(plain.new_url, "https://dev.azure.com/acme/p/_git/repo", "{}", plain.reason);
        let mut found = finding(ProbeCode::Redirect);
        found.status = Some(301);
        found.adds_dot_git = true;
        found.suggested_url = Some("https://dev.azure.com/acme/p/_git/repo.git".into());
        let row = build_row(&f, &c, TargetRole::Allowed, Some(&found));
        assert_eq!(row.new_url, "https://dev.azure.com/acme/p/_git/repo.git");
        assert!(row.fixes.contains(&Fix::AddDotGit), "{:?}", row.fixes);
        assert_eq!(row.diagnosis, None);
        assert_eq!(row.probe, Some(ProbeCode::Redirect));
        // Elsewhere (a renamed repository): diagnosis http-301, the Location in the reason.
        found.adds_dot_git = false;
        found.suggested_url = Some("https://dev.azure.com/acme/p/_git/renamed".into());
        found.reason = "redirected to https://dev.azure.com/acme/p/_git/renamed".into();
        let row = build_row(&f, &c, TargetRole::Allowed, Some(&found));
        assert_eq!(row.new_url, plain.new_url);
        assert_eq!(row.diagnosis, Some(Diagnosis::Http301));
        assert!(row.reason.contains("_git/renamed"), "{}", row.reason);
    }

    #[test]
    fn rows_without_service_credentials_are_not_touched_by_a_probe() {
        // Not a source host: the row never gets service credentials; a finding is ignored.
        let f = MirrorFacts { url: "https://git.example.org/a/b.git".into(), ..pull_facts() };
        let row = build_row(&f, &ctx(), TargetRole::Allowed, Some(&finding(ProbeCode::NotFound)));
        assert!(row.is_mirror_user_only(), "{}", row.reason);
        assert_eq!(row.probe, None);
        assert!(!row.reason.contains("not moved"), "{}", row.reason);
    }

    #[test]
    fn archived_projects_can_be_included() {
        let mut c = ctx();
        c.include_archived = true;
        let f = MirrorFacts {
            project: ProjectFacts { archived: true, ..pull_facts().project },
            ..pull_facts()
        };
        assert_eq!(build_row(&f, &c, TargetRole::Allowed, None).action, Action::Update);
    }

    // ---- the one splitter ------------------------------------------------------------------

    /// `without_credentials` before it was rebuilt on `redact::split_authority`, verbatim:
    /// the oracle the agreement tests compare with.
    fn legacy_without_credentials(url: &str) -> String {
        let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
        let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
        let Some(at) = url[start..end].rfind('@') else { return url.to_owned() };
        let userinfo = &url[start..start + at];
        let is_ssh = url[..start].to_ascii_lowercase().starts_with("ssh");
        if is_ssh && !userinfo.contains(':') && !userinfo.contains(crate::redact::MASK) {
            return url.to_owned();
        }
        format!("{}{}", &url[..start], &url[start + at + 1..])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// The old copy already ended the authority at `/`, `?` or `#` and took the last
        /// `@`, as the splitter does: the two agree on every input.
        #[test]
        fn without_credentials_agrees_on_well_formed_urls(url in well_formed_url()) {
            prop_assert_eq!(without_credentials(&url), legacy_without_credentials(&url));
        }

        #[test]
        fn without_credentials_agrees_on_url_text(text in url_text()) {
            prop_assert_eq!(without_credentials(&text), legacy_without_credentials(&text));
        }
    }

    /// The URLs of the repository's fixtures (live mirror URLs as GitLab shows them).
    #[test]
    fn without_credentials_agrees_on_the_fixtures() {
        for text in fixture_texts() {
            assert_eq!(without_credentials(&text), legacy_without_credentials(&text), "{text:?}");
        }
    }

    #[test]
    fn credentials_go_and_a_visible_ssh_user_stays() {
        let cases = [
            ("https://*****:*****@github.com/a/b.git", "https://github.com/a/b.git"),
            ("https://*****@github.com/a/b.git", "https://github.com/a/b.git"),
            ("ssh://git@host:2222/a.git", "ssh://git@host:2222/a.git"),
            ("SSH+git://deploy@host/a.git", "SSH+git://deploy@host/a.git"),
            ("ssh://git:*****@host/a.git", "ssh://host/a.git"),
            ("ssh://*****@host/a.git", "ssh://host/a.git"),
            ("https://github.com/a/b@v1.git", "https://github.com/a/b@v1.git"),
            ("https://h?x@y", "https://h?x@y"),
            ("git@host:a/b.git", "git@host:a/b.git"),
        ];
        for (url, want) in cases {
            assert_eq!(without_credentials(url), want, "{url}");
            assert_eq!(legacy_without_credentials(url), want, "{url}");
        }
    }
}
