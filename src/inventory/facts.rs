//! The one place GitLab's payloads become plan facts ([`MirrorFacts`]): a mirror as read, the
//! mirror as GitLab saved it after a write, and a push mirror seen by `apply`.

use time::OffsetDateTime;

use crate::gitlab::{Project, PullMirror, RemoteMirror};
use crate::inventory::{MirrorDetail, MirrorRead, UserLookup};
use crate::plan::{MirrorFacts, MirrorFlags, MirrorKind, MirrorUserState, ProjectFacts};

/// The project part of the facts.
pub fn project_facts(project: &Project) -> ProjectFacts {
    ProjectFacts {
        id: project.id,
        path: project.path_with_namespace.clone(),
        web_url: project.web_url.clone(),
        archived: project.archived,
    }
}

/// The facts of one mirror read.
pub fn facts_of(read: &MirrorRead) -> MirrorFacts {
    let project = &read.project;
    match &read.mirror {
        MirrorDetail::Pull { mirror, user } => {
            let (user_state, user_name) = match user {
                UserLookup::NoUser => (MirrorUserState::Unknown, String::new()),
                UserLookup::Deleted => (MirrorUserState::Deleted, String::new()),
                UserLookup::Found(u) => (
                    match u.state.as_deref() {
                        Some("active") | None => MirrorUserState::Active,
                        Some(_) => MirrorUserState::Blocked,
                    },
                    u.username.clone(),
                ),
            };
            MirrorFacts {
                project: project_facts(project),
                kind: MirrorKind::Pull,
                url: mirror.url.clone().or_else(|| project.import_url.clone()).unwrap_or_default(),
                enabled: mirror.enabled.unwrap_or(true),
                update_status: mirror.update_status.clone().unwrap_or_default(),
                last_error: mirror.last_error.clone().filter(|e| !e.trim().is_empty()),
                last_update_started_at: parse_time(mirror.last_update_started_at.as_deref()),
                last_update_at: parse_time(mirror.last_update_at.as_deref()),
                last_successful_update_at: parse_time(mirror.last_successful_update_at.as_deref()),
                user_state,
                user_name,
                user_id: project.mirror_user_id,
                flags: MirrorFlags {
                    trigger_builds: mirror.mirror_trigger_builds.or(project.mirror_trigger_builds),
                    only_protected_branches: mirror
                        .only_mirror_protected_branches
                        .or(project.only_mirror_protected_branches),
                    overwrite_diverged: mirror
                        .mirror_overwrites_diverged_branches
                        .or(project.mirror_overwrites_diverged_branches),
                    branch_regex: mirror.mirror_branch_regex.clone(),
                    keep_divergent_refs: None,
                    auth_method: None,
                },
            }
        }
        MirrorDetail::PullDisabled => MirrorFacts {
            project: project_facts(project),
            kind: MirrorKind::PullDisabled,
            url: project.import_url.clone().unwrap_or_default(),
            enabled: false,
            update_status: project.import_status.clone().unwrap_or_default(),
            last_error: None,
            last_update_started_at: None,
            last_update_at: None,
            last_successful_update_at: None,
            user_state: MirrorUserState::NotApplicable,
            user_name: String::new(),
            user_id: project.mirror_user_id,
            flags: MirrorFlags::default(),
        },
        MirrorDetail::Push(m) => push_facts(project_facts(project), m),
        MirrorDetail::Unreadable { mirror_type, error } => {
            MirrorFacts::unreadable(project_facts(project), *mirror_type, error.clone())
        }
    }
}

/// The facts of a push mirror.
pub fn push_facts(project: ProjectFacts, m: &RemoteMirror) -> MirrorFacts {
    MirrorFacts {
        project,
        kind: MirrorKind::Push { id: m.id },
        url: m.url.clone(),
        enabled: m.enabled,
        update_status: m.update_status.clone().unwrap_or_default(),
        last_error: m.last_error.clone().filter(|e| !e.trim().is_empty()),
        last_update_started_at: parse_time(m.last_update_started_at.as_deref()),
        last_update_at: parse_time(m.last_update_at.as_deref()),
        last_successful_update_at: parse_time(m.last_successful_update_at.as_deref()),
        user_state: MirrorUserState::NotApplicable,
        user_name: String::new(),
        user_id: None,
        flags: MirrorFlags {
            trigger_builds: None,
            only_protected_branches: m.only_protected_branches,
            overwrite_diverged: None,
            branch_regex: m.mirror_branch_regex.clone(),
            keep_divergent_refs: m.keep_divergent_refs,
            auth_method: m.auth_method.clone(),
        },
    }
}

/// The facts after a successful `PUT …/mirror/pull`, from GitLab's answer (the mirror as
/// saved) and its rule that the writer becomes the mirror user. Flags the answer leaves out
/// (GitLab before 17.5) are taken as unchanged.
pub fn after_put(before: &MirrorFacts, saved: &PullMirror, mirror_user: &str) -> MirrorFacts {
    let mut after = before.clone();
    after.url = saved.url.clone().unwrap_or_else(|| before.url.clone());
    after.enabled = saved.enabled.unwrap_or(before.enabled);
    after.update_status = saved.update_status.clone().unwrap_or_default();
    after.last_error = saved.last_error.clone().filter(|e| !e.trim().is_empty());
    if !mirror_user.is_empty() {
        after.user_name = mirror_user.to_owned();
    }
    let flags = &mut after.flags;
    flags.trigger_builds = saved.mirror_trigger_builds.or(flags.trigger_builds);
    flags.only_protected_branches =
        saved.only_mirror_protected_branches.or(flags.only_protected_branches);
    flags.overwrite_diverged =
        saved.mirror_overwrites_diverged_branches.or(flags.overwrite_diverged);
    if saved.mirror_branch_regex.is_some() {
        flags.branch_regex = saved.mirror_branch_regex.clone();
    }
    after
}

fn parse_time(text: Option<&str>) -> Option<OffsetDateTime> {
    text.and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
}
