//! The one place GitLab's payloads become plan facts ([`MirrorFacts`]): a mirror as read, the
//! mirror as GitLab saved it after a write, and a push mirror seen by `apply`; and the one
//! mapping between GitLab's pull-mirror flags and the plan's (`pull_flags`,
//! `gitlab_pull_flags`).

use time::OffsetDateTime;

use crate::gitlab::{Project, PullMirror, PullMirrorFlags, RemoteMirror};
use crate::inventory::{MirrorDetail, MirrorRead, UserLookup};
use crate::plan::{MirrorFacts, MirrorFlags, MirrorKind, MirrorUserState, ProjectFacts};

/// The project part of the facts.
pub(crate) fn project_facts(project: &Project) -> ProjectFacts {
    ProjectFacts {
        id: project.id,
        path: project.path_with_namespace.clone(),
        web_url: project.web_url.clone(),
        archived: project.archived,
    }
}

/// The facts of one mirror read.
pub(crate) fn facts_of(read: &MirrorRead) -> MirrorFacts {
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
                // The mirror's own flags; the project's where an older GitLab shows none.
                flags: pull_flags(&mirror.flags.clone().or(&project.mirror_flags)),
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
pub(crate) fn push_facts(project: ProjectFacts, m: &RemoteMirror) -> MirrorFacts {
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
pub(crate) fn after_put(
    before: &MirrorFacts,
    saved: &PullMirror,
    mirror_user: &str,
) -> MirrorFacts {
    let mut after = before.clone();
    after.url = saved.url.clone().unwrap_or_else(|| before.url.clone());
    after.enabled = saved.enabled.unwrap_or(before.enabled);
    after.update_status = saved.update_status.clone().unwrap_or_default();
    after.last_error = saved.last_error.clone().filter(|e| !e.trim().is_empty());
    if !mirror_user.is_empty() {
        after.user_name = mirror_user.to_owned();
    }
    let kept = saved.flags.clone().or(&gitlab_pull_flags(&before.flags));
    set_pull_flags(&mut after.flags, kept);
    after
}

/// GitLab's pull-mirror flags as the plan's (the push-only ones `None`). With
/// [`gitlab_pull_flags`], the one place a [`PullMirrorFlags`] field meets its [`MirrorFlags`]
/// field: a new flag is mapped here (the compiler points at both).
pub(crate) fn pull_flags(flags: &PullMirrorFlags) -> MirrorFlags {
    let mut out = MirrorFlags::default();
    set_pull_flags(&mut out, flags.clone());
    out
}

/// Set the pull-mirror flags of `into` to GitLab's, leaving the push-only ones alone.
fn set_pull_flags(into: &mut MirrorFlags, flags: PullMirrorFlags) {
    let PullMirrorFlags {
        mirror_trigger_builds,
        only_mirror_protected_branches,
        mirror_overwrites_diverged_branches,
        mirror_branch_regex,
    } = flags;
    into.trigger_builds = mirror_trigger_builds;
    into.only_protected_branches = only_mirror_protected_branches;
    into.overwrite_diverged = mirror_overwrites_diverged_branches;
    into.branch_regex = mirror_branch_regex;
}

/// The plan's flags of a pull mirror as GitLab names them (the push-only ones left out); the
/// way back of [`pull_flags`].
pub(crate) fn gitlab_pull_flags(flags: &MirrorFlags) -> PullMirrorFlags {
    PullMirrorFlags {
        mirror_trigger_builds: flags.trigger_builds,
        only_mirror_protected_branches: flags.only_protected_branches,
        mirror_overwrites_diverged_branches: flags.overwrite_diverged,
        mirror_branch_regex: flags.branch_regex.clone(),
    }
}

fn parse_time(text: Option<&str>) -> Option<OffsetDateTime> {
    text.and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn gitlab_flags() -> PullMirrorFlags {
        PullMirrorFlags {
            mirror_trigger_builds: Some(true),
            only_mirror_protected_branches: Some(false),
            mirror_overwrites_diverged_branches: Some(true),
            mirror_branch_regex: Some("^main$".into()),
        }
    }

    #[test]
    fn the_flag_mapping_goes_both_ways() {
        let plan = MirrorFlags {
            trigger_builds: Some(true),
            only_protected_branches: Some(false),
            overwrite_diverged: Some(true),
            branch_regex: Some("^main$".into()),
            keep_divergent_refs: None,
            auth_method: None,
        };
        assert_eq!(pull_flags(&gitlab_flags()), plan);
        assert_eq!(gitlab_pull_flags(&plan), gitlab_flags());
        assert_eq!(pull_flags(&PullMirrorFlags::default()), MirrorFlags::default());
        // The push-only flags have no pull name.
        let push = MirrorFlags {
            keep_divergent_refs: Some(true),
            auth_method: Some("password".into()),
            ..MirrorFlags::default()
        };
        assert_eq!(gitlab_pull_flags(&push), PullMirrorFlags::default());
    }

    fn pull_read(mirror: PullMirrorFlags, project: PullMirrorFlags) -> MirrorRead {
        MirrorRead {
            project: Arc::new(Project {
                id: 1,
                mirror: true,
                mirror_flags: project,
                ..Project::default()
            }),
            mirror: MirrorDetail::Pull {
                mirror: PullMirror {
                    url: Some("https://h/x.git".into()),
                    flags: mirror,
                    ..PullMirror::default()
                },
                user: UserLookup::NoUser,
            },
        }
    }

    #[test]
    fn a_pull_mirror_takes_its_own_flags_then_the_projects() {
        // 17.5+: the mirror's own answer wins.
        let other = PullMirrorFlags {
            mirror_trigger_builds: Some(false),
            only_mirror_protected_branches: Some(true),
            ..PullMirrorFlags::default()
        };
        let facts = facts_of(&pull_read(gitlab_flags(), other.clone()));
        assert_eq!(facts.flags, pull_flags(&gitlab_flags()));
        // Before 17.5 (or the list alone): the project's flags, which have no regex.
        let facts = facts_of(&pull_read(PullMirrorFlags::default(), other.clone()));
        assert_eq!(facts.flags, pull_flags(&other));
        assert_eq!(facts.flags.branch_regex, None);
    }

    #[test]
    fn after_a_put_the_saved_flags_win_and_missing_ones_stay() {
        let mut before = facts_of(&pull_read(gitlab_flags(), PullMirrorFlags::default()));
        before.flags.keep_divergent_refs = Some(true);
        let saved = PullMirror {
            update_status: Some("scheduled".into()),
            flags: PullMirrorFlags {
                mirror_trigger_builds: Some(false),
                mirror_branch_regex: Some("^release/".into()),
                ..PullMirrorFlags::default()
            },
            ..PullMirror::default()
        };
        let after = after_put(&before, &saved, "svc");
        assert_eq!(
            after.flags,
            MirrorFlags {
                trigger_builds: Some(false),
                only_protected_branches: Some(false),
                overwrite_diverged: Some(true),
                branch_regex: Some("^release/".into()),
                keep_divergent_refs: Some(true),
                auth_method: None,
            }
        );
        assert_eq!((after.user_name.as_str(), after.update_status.as_str()), ("svc", "scheduled"));
        // GitLab before 17.5 answers without flags: all stay.
        let old = after_put(&before, &PullMirror::default(), "");
        assert_eq!(old.flags, before.flags);
    }
}
