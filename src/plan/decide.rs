//! The row policy: what each mirror gets in the plan (`update`, `skip` or `manual`, the
//! `new_*` cells, `fixes` and `reason`). This is the product's core rule, as pure functions
//! over plain facts ([`MirrorFacts`]) and the run's settings ([`PlanContext`]), with its table
//! tests below. The plan command only gathers the facts and writes the rows.

use time::OffsetDateTime;

use crate::plan::MirrorUserState;
use crate::plan::facts::{MirrorFacts, MirrorKind};
use crate::plan::fingerprint::{self, SealKey};
use crate::plan::row::{CurrentAuth, MirrorType, PlanRow, normalize_last_error};
use crate::rewrite::{self, Action, Fix, MirrorInput, NewAuth, Rules};

/// Everything row decisions depend on, fixed for one run.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// URL rules.
    pub rules: Rules,
    /// Who pull mirrors will run as after apply.
    pub target_user: TargetUser,
    /// Plan archived projects too.
    pub include_archived: bool,
    /// Silent Mode seen at planning.
    pub silent_mode: bool,
    /// Planning time (for `stuck`).
    pub now: OffsetDateTime,
}

/// The mirror user pull mirrors get on apply, and whether apply can make it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUser {
    /// Username.
    pub username: String,
    /// Why apply cannot make this user the mirror user (then rows are `manual`).
    pub blocked_reason: Option<String>,
    /// Whether to check, through `Sudo`, that this user can see each project.
    pub check_access: bool,
}

/// What the caller's token can do, for [`target_user`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerRights {
    /// The caller is an instance administrator.
    pub is_admin: bool,
    /// The token has (or may have: older GitLab does not say) the `sudo` scope.
    pub has_sudo: bool,
    /// GitLab has `PUT /projects/:id/mirror/pull` (17.6+): the mirror user then changes only
    /// through `Sudo`.
    pub new_pull_api: bool,
}

/// Decide who pull mirrors will run as: the caller, or `wanted` (`--mirror-user`, already
/// looked up and active) when the caller's rights allow apply to make it so.
///
/// GitLab makes whoever writes a pull mirror its mirror user (`doc/api/project_pull_mirroring.md`);
/// another user needs `Sudo` (admin token with the `sudo` scope) on the 17.6 API, or an
/// administrator's `mirror_user_id` on the old `PUT /projects/:id`.
pub fn target_user(caller: &str, wanted: Option<&str>, rights: CallerRights) -> TargetUser {
    let Some(wanted) = wanted.filter(|w| *w != caller) else {
        return TargetUser {
            username: wanted.unwrap_or(caller).to_owned(),
            blocked_reason: None,
            check_access: false,
        };
    };
    let blocked_reason = if !rights.is_admin {
        Some(format!(
            "only an administrator's token can make {wanted} the mirror user; run apply with \
             {wanted}'s own token instead"
        ))
    } else if rights.new_pull_api && !rights.has_sudo {
        Some(format!("making {wanted} the mirror user needs an admin token with the `sudo` scope"))
    } else {
        None
    };
    let check_access = blocked_reason.is_none() && rights.has_sudo;
    TargetUser { username: wanted.to_owned(), blocked_reason, check_access }
}

/// Build one plan row from a mirror's facts. `target_can_access`: whether the future mirror
/// user can see the project.
pub fn build_row(facts: &MirrorFacts, ctx: &PlanContext, target_can_access: bool) -> PlanRow {
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
        current_url: if facts.url.contains(crate::secret::MASK) {
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
    };
    decide(&mut row, facts, ctx, target_can_access);
    row.observed = fingerprint::observed_cell(SealKey::of(&row), row.action, &facts.observed());
    row
}

/// Fill action, new_* columns, fixes and reason.
fn decide(row: &mut PlanRow, facts: &MirrorFacts, ctx: &PlanContext, target_can_access: bool) {
    let skip = |row: &mut PlanRow, reason: String| {
        row.action = Action::Skip;
        row.reason = reason;
    };
    let manual = |row: &mut PlanRow, reason: String| {
        row.action = Action::Manual;
        row.reason = reason;
    };
    if facts.project.archived && !ctx.include_archived {
        return skip(
            row,
            "Archived project: left alone (use --include-archived to plan it).".into(),
        );
    }
    if facts.kind == MirrorKind::PullDisabled {
        return skip(
            row,
            "Pull mirroring is off for this project (or it was only imported once); enable it \
             in Settings > Repository first if it should mirror."
                .into(),
        );
    }
    if !facts.enabled {
        return skip(
            row,
            "Push mirror is disabled; enable it in GitLab first if it should run.".into(),
        );
    }
    if let Some(d) = row.diagnosis.filter(|d| !d.auto_fixable()) {
        return manual(row, d.advice().to_owned());
    }
    let rw = rewrite::rewrite(
        &MirrorInput {
            url: &facts.url,
            direction: row.mirror_type.into(),
            last_error: facts.last_error.as_deref(),
        },
        &ctx.rules,
    );
    match rw.action {
        Action::Update => {}
        Action::Skip => {
            let mut reason = rw.reason;
            if let Some(d) = row.diagnosis {
                // Nothing glmirror may change in the URL, yet the mirror is failing.
                let why = reason.strip_prefix("Nothing to change: ").unwrap_or(&reason);
                return manual(row, format!("{} (Not fixed automatically: {why})", d.advice()));
            }
            if facts.user_state == MirrorUserState::Blocked
                || facts.user_state == MirrorUserState::Deleted
            {
                reason = format!(
                    "{reason} The mirror user is gone: re-save the mirror as an active user."
                );
                return manual(row, reason);
            }
            return skip(row, reason);
        }
        Action::Manual => return manual(row, rw.reason),
    }
    if row.mirror_type == MirrorType::Pull
        && let Some(why) = &ctx.target_user.blocked_reason
    {
        return manual(row, format!("{} ({})", rw.reason, why));
    }
    if row.mirror_type == MirrorType::Pull && !target_can_access {
        return manual(
            row,
            format!(
                "{} cannot see this project, so it cannot be its mirror user: add it as a \
                 Maintainer (or plan without --mirror-user). {}",
                ctx.target_user.username, rw.reason
            ),
        );
    }
    // A push mirror's URL cannot change in place (`doc/api/remote_mirrors.md`): it is
    // replaced, and a replacement with SSH key authentication gets a new key pair that must be
    // installed on the remote first.
    let new_url = rw.new_url.as_deref().unwrap_or_default();
    if row.mirror_type == MirrorType::Push
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
    if row.mirror_type == MirrorType::Pull {
        row.new_mirror_user = ctx.target_user.username.clone();
        if row.new_mirror_user != row.current_mirror_user {
            row.fixes.push(Fix::MirrorUser);
        }
    }
    row.fixes.sort();
    row.fixes.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::facts::tests::pull_facts;
    use crate::rewrite::SourceHost;

    fn rules() -> Rules {
        Rules {
            source_hosts: vec![SourceHost { host: "github.com".into(), user: None }],
            maps: Vec::new(),
            prefer_https: false,
        }
    }

    fn ctx() -> PlanContext {
        PlanContext {
            rules: rules(),
            target_user: TargetUser {
                username: "svc".into(),
                blocked_reason: None,
                check_access: false,
            },
            include_archived: false,
            silent_mode: false,
            now: OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn target_user_rules() {
        let admin = CallerRights { is_admin: true, has_sudo: true, new_pull_api: true };
        let t = target_user("root", None, admin);
        assert_eq!((t.username.as_str(), t.check_access), ("root", false));
        let t = target_user("root", Some("root"), admin);
        assert_eq!((t.username.as_str(), t.blocked_reason.is_none()), ("root", true));
        let t = target_user("root", Some("svc"), admin);
        assert_eq!((t.blocked_reason.is_none(), t.check_access), (true, true));
        let t = target_user("bob", Some("svc"), CallerRights { is_admin: false, ..admin });
        assert!(t.blocked_reason.unwrap().contains("administrator"));
        let t = target_user("root", Some("svc"), CallerRights { has_sudo: false, ..admin });
        assert!(t.blocked_reason.unwrap().contains("sudo"));
        let old = CallerRights { is_admin: true, has_sudo: false, new_pull_api: false };
        let t = target_user("root", Some("svc"), old);
        assert_eq!((t.blocked_reason.is_none(), t.check_access), (true, false));
    }

    #[test]
    fn a_source_host_pull_mirror_gets_service_credentials_and_the_target_user() {
        let row = build_row(&pull_facts(), &ctx(), true);
        assert_eq!(row.action, Action::Update, "{}", row.reason);
        assert_eq!(row.new_auth, Some(NewAuth::Service));
        assert_eq!(row.new_url, "https://github.com/acme/api.git");
        assert_eq!(row.new_mirror_user, "svc");
        assert!(row.fixes.contains(&Fix::ServiceToken));
        assert!(row.fixes.contains(&Fix::MirrorUser));
        assert!(row.observed.starts_with("v1-"));
    }

    #[test]
    fn archived_disabled_and_unreachable_rows() {
        let mut f = pull_facts();
        f.project.archived = true;
        assert_eq!(build_row(&f, &ctx(), true).action, Action::Skip);
        let mut f = pull_facts();
        f.kind = MirrorKind::PullDisabled;
        f.enabled = false;
        assert_eq!(build_row(&f, &ctx(), true).action, Action::Skip);
        let f = pull_facts();
        let row = build_row(&f, &ctx(), false);
        assert_eq!(row.action, Action::Manual);
        assert!(row.reason.contains("cannot see this project"), "{}", row.reason);
    }
}
