//! Walking the instance for `plan`: every project in scope is read, its mirrors are turned into
//! plan rows by the row policy ([`crate::plan::decide`]) and handed on in plan order, so
//! memory does not grow with the size of the instance. With `plan --probe`, the rows that
//! would get service credentials are probed and decided again with the finding.

use futures::TryStreamExt;

use crate::config::Scope;
use crate::error::AppError;
use crate::gitlab::{GitLabClient, GitLabError, Project};
use crate::inventory::probe::RowProber;
use crate::inventory::{self, Preflight, ReadContext, facts};
use crate::plan::{
    self, CallerRights, MirrorType, PlanContext, PlanRow, TargetRole, TargetUser, WantedUser,
};
use crate::rewrite::Action;

/// Why streaming rows stopped.
pub(crate) enum StreamError {
    /// Reading GitLab failed.
    App(AppError),
    /// The sink failed (writing the plan).
    Write(std::io::Error),
}

impl From<GitLabError> for StreamError {
    fn from(e: GitLabError) -> Self {
        StreamError::App(e.into())
    }
}

/// Read all projects in scope, build their rows and hand them to `sink` in plan order.
/// Returns how many projects were read.
///
/// For the whole instance, projects arrive in id order (keyset pagination), so rows are
/// passed on as soon as their project is read, in order, and nothing accumulates. For
/// `--group`/`--project` scopes the rows are sorted first (such scopes are small).
///
/// With `probe`, each project's rows that would get service credentials are probed once
/// their project is read (the GitLab request slot is given back first: probes have their
/// own limits, per host and overall) and decided again with what the probe found.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn stream_rows(
    client: &GitLabClient,
    scope: &Scope,
    pre: &Preflight,
    ctx: &PlanContext,
    reads: &ReadContext,
    concurrency: u16,
    probe: Option<&RowProber>,
    progress: &indicatif::ProgressBar,
    mut sink: impl FnMut(PlanRow) -> std::io::Result<()>,
) -> Result<u64, StreamError> {
    // Requests in flight are limited by permits, not by the stream's buffer: the ordered
    // buffer below may hold finished projects waiting for a slow one ahead of them (head-of-
    // line blocking) without leaving request slots idle.
    let permits = &tokio::sync::Semaphore::new(usize::from(concurrency));
    let read = |p: Project| async move {
        let id = p.id;
        let (facts, role, mut rows) = {
            let _permit = permits.acquire().await.expect("the semaphore is never closed");
            let mirrors = inventory::read_project(client, reads, p, scope.mirrors).await?;
            let mut facts: Vec<_> = mirrors.iter().map(facts::facts_of).collect();
            let build = |facts: &[plan::MirrorFacts], role| {
                facts.iter().map(|f| plan::build_row(f, ctx, role, None)).collect::<Vec<_>>()
            };
            let mut role = TargetRole::NotChecked;
            let mut rows = build(&facts, role);
            // The target mirror user's role, read at most once per project and only when a
            // pull row of it would be written.
            if let Some(user_id) = ctx.target_user.check_role
                && rows
                    .iter()
                    .any(|r| r.mirror_type == MirrorType::Pull && r.action == Action::Update)
            {
                match client.project_member_access(id, user_id).await {
                    Ok(level) => {
                        role = TargetRole::from_access_level(level);
                        if role != TargetRole::Allowed {
                            rows = build(&facts, role);
                        }
                    }
                    // The pull row cannot be decided without the role: unreadable, like its
                    // mirror.
                    Err(e) => {
                        let Some(project) = mirrors.first().map(|m| m.project.clone()) else {
                            return Err(e);
                        };
                        let pull = reads.unreadable(&project, MirrorType::Pull, e)?;
                        let unreadable = inventory::MirrorRead { project, mirror: pull };
                        facts = mirrors
                            .iter()
                            .filter(|m| !matches!(m.mirror, inventory::MirrorDetail::Pull { .. }))
                            .map(facts::facts_of)
                            .chain([facts::facts_of(&unreadable)])
                            .collect();
                        rows = build(&facts, TargetRole::NotChecked);
                    }
                }
            }
            (facts, role, rows)
        };
        if let Some(prober) = probe {
            probe_rows(prober, &facts, ctx, role, &mut rows).await;
        }
        plan::sort_rows(&mut rows);
        Ok::<_, GitLabError>((id, rows))
    };
    let whole_instance = scope.is_whole_instance();
    let projects = inventory::projects(client, scope, pre).map_ok(read);
    let mut scanned = 0u64;
    if whole_instance {
        let mut ordered = projects.try_buffered(usize::from(concurrency) * 8);
        let mut last_id = 0;
        while let Some((id, rows)) = ordered.try_next().await? {
            if id < last_id {
                return Err(StreamError::App(AppError::fatal(format!(
                    "GitLab listed project {id} after {last_id}: keyset pagination out of order"
                ))));
            }
            last_id = id;
            scanned += 1;
            progress.inc(1);
            rows.into_iter().try_for_each(&mut sink).map_err(StreamError::Write)?;
        }
    } else {
        let mut unordered = projects.try_buffer_unordered(usize::from(concurrency));
        let mut all = Vec::new();
        while let Some((_, rows)) = unordered.try_next().await? {
            scanned += 1;
            progress.inc(1);
            all.extend(rows);
        }
        plan::sort_rows(&mut all);
        all.into_iter().try_for_each(&mut sink).map_err(StreamError::Write)?;
    }
    Ok(scanned)
}

/// Probe the rows (built from `facts`, in the same order) that would get service
/// credentials, and decide each of them again with its finding.
async fn probe_rows(
    prober: &RowProber,
    facts: &[plan::MirrorFacts],
    ctx: &PlanContext,
    role: TargetRole,
    rows: &mut [PlanRow],
) {
    let probes =
        rows.iter().enumerate().filter(|(_, r)| plan::gets_service_credentials(r)).map(
            |(i, r)| async move { (i, prober.probe_row(&r.new_url, r.mirror_type.into()).await) },
        );
    for (i, finding) in futures::future::join_all(probes).await {
        if let Some(finding) = finding {
            rows[i] = plan::build_row(&facts[i], ctx, role, Some(&finding));
        }
    }
}

/// Look up `--mirror-user` and decide who pull mirrors will run as, and whether apply can
/// arrange it (the policy is [`plan::target_user`]).
pub(crate) async fn resolve_target_user(
    client: &GitLabClient,
    pre: &Preflight,
    wanted: Option<&str>,
) -> Result<TargetUser, AppError> {
    let rights = CallerRights {
        is_admin: pre.is_admin,
        has_sudo: pre.has_scope("sudo"),
        new_pull_api: pre.version.supports_pull_mirror_api(),
        mirror_available: pre.mirror_available,
    };
    let caller = &pre.user;
    let Some(wanted) = wanted else {
        return Ok(plan::target_user(&caller.username, None, rights));
    };
    let found = if wanted == caller.username {
        Some(caller.clone())
    } else {
        client.user_by_username(wanted).await?
    };
    let shown = crate::redact::excerpt(wanted, 200);
    let Some(user) = found else {
        return Err(AppError::usage(format!("--mirror-user {shown}: no such GitLab user")));
    };
    if !user.is_active() {
        return Err(AppError::usage(format!(
            "--mirror-user {shown}: the account is {}, mirrors would stop",
            crate::redact::excerpt(user.state.as_deref().unwrap_or("inactive"), 40)
        )));
    }
    let wanted = WantedUser { id: user.id, username: user.username, is_admin: user.is_admin };
    Ok(plan::target_user(&caller.username, Some(&wanted), rights))
}
