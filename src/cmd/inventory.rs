//! Reading the instance: pre-flight checks, the projects in scope, and each mirror's live
//! state. Shared by `plan` and `status`; never writes to GitLab.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::cli::{GlobalArgs, MirrorSelection, ScopeArgs};
use crate::cmd::Connection;
use crate::error::AppError;
use crate::gitlab::{
    ClientConfig, GitLabClient, GitLabError, GitLabVersion, Project, ProjectQuery, PullMirror,
    RemoteMirror, Tuning, User,
};
use crate::plan::{
    self, CurrentAuth, DiagnoseInput, MirrorFlags, MirrorType, MirrorUserState, ObservedState,
};

/// What pre-flight learned about the token, the caller and the instance.
#[derive(Debug, Clone)]
pub struct Preflight {
    /// The instance's version (picks the pull-mirror API).
    pub version: GitLabVersion,
    /// The caller.
    pub user: User,
    /// Whether the caller is an instance administrator.
    pub is_admin: bool,
    /// The token's scopes, when GitLab told us (`/personal_access_tokens/self`).
    pub scopes: Option<Vec<String>>,
    /// Silent Mode, when the caller may read application settings (admins only).
    pub silent_mode: Option<bool>,
    /// Things worth telling the user before the run.
    pub warnings: Vec<String>,
}

impl Preflight {
    /// Whether the token is known to carry a scope (unknown counts as yes: older GitLab).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.as_ref().is_none_or(|s| s.iter().any(|x| x == scope))
    }
}

/// Build the client from the resolved connection and global options.
pub fn client(global: &GlobalArgs, conn: Connection) -> Result<GitLabClient, AppError> {
    let mut cfg = ClientConfig::new(conn.base_url, conn.token);
    cfg.ca_cert = global.ca_cert.clone();
    // Pacing needs to know how many requests run at once.
    Ok(GitLabClient::with_tuning(cfg, Tuning::with_concurrency(u32::from(global.concurrency)))?)
}

/// Check the token, the caller, the version and Silent Mode. `write` asks for the `api` scope.
pub async fn preflight(client: &GitLabClient, write: bool) -> Result<Preflight, AppError> {
    let user = client.current_user().await?;
    let mut warnings = Vec::new();
    let token = client.token_self().await?;
    let scopes = token.as_ref().map(|t| t.scopes.clone());
    if let Some(t) = &token {
        if t.revoked {
            return Err(AppError::fatal_hint(
                "the GitLab token is not active (revoked or expired)",
                "create a new token with the `api` scope and set GITLAB_TOKEN",
            ));
        }
        if let Some(expires) = t.expires_at.as_deref().filter(|e| expires_soon(e)) {
            warnings.push(format!("the GitLab token expires on {expires}"));
        }
    }
    let metadata = client.metadata().await?;
    let version = metadata.parsed_version().ok_or_else(|| {
        AppError::fatal(format!(
            "cannot understand the GitLab version {:?}",
            crate::redact::sanitize_for_terminal(&metadata.version)
        ))
    })?;
    // `enterprise` exists since 15.6; older versions simply lack it.
    if !metadata.enterprise && version >= GitLabVersion::new(15, 6, 0) {
        warnings.push(
            "this GitLab reports it is not an Enterprise edition: pull mirroring needs Premium"
                .into(),
        );
    }
    let is_admin = user.is_admin;
    let silent_mode = if is_admin {
        Some(client.application_settings().await?.silent_mode_enabled.unwrap_or(false))
    } else {
        None
    };
    let pre = Preflight { version, user, is_admin, scopes, silent_mode, warnings };
    let needed = if write { "api" } else { "read_api" };
    if !(pre.has_scope("api") || (!write && pre.has_scope("read_api"))) {
        return Err(AppError::fatal_hint(
            format!("the GitLab token lacks the `{needed}` scope"),
            format!(
                "create a token with the `{needed}` scope (an admin's token sees every project)"
            ),
        ));
    }
    Ok(pre)
}

/// Whether a token expiry date (`YYYY-MM-DD`) is within the next 14 days.
fn expires_soon(date: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(date.get(..10).unwrap_or(date), &format)
        .map(|d| d - time::OffsetDateTime::now_utc().date() <= time::Duration::days(14))
        .unwrap_or(false)
}

/// One project's mirror as read from GitLab.
#[derive(Debug, Clone)]
pub struct MirrorRead {
    /// The project it belongs to.
    pub project: Arc<Project>,
    /// Pull or push details.
    pub mirror: MirrorDetail,
}

/// The direction-specific part of a mirror read.
#[derive(Debug, Clone)]
pub enum MirrorDetail {
    /// An enabled pull mirror, from `GET /projects/:id/mirror/pull`.
    Pull {
        /// The mirror details.
        mirror: PullMirror,
        /// Its mirror user (None: no mirror user id, or the lookup found nobody).
        user: UserLookup,
    },
    /// A project that has an import URL but pull mirroring switched off.
    PullDisabled,
    /// A push (remote) mirror.
    Push(RemoteMirror),
}

/// The mirror user as found.
#[derive(Debug, Clone)]
pub enum UserLookup {
    /// The project has no mirror user id.
    NoUser,
    /// The user exists.
    Found(User),
    /// The id points at a user that no longer exists.
    Deleted(u64),
}

/// One user's lookup, shared by every task that asks for it.
type UserCell = Arc<OnceCell<Option<User>>>;

/// Per-run read state: user lookups, cached so each mirror user is fetched once even
/// concurrently; and, for `plan` and `status`, the projects skipped because the token may not
/// read their mirrors (for `apply` that is an error instead).
#[derive(Default, Clone)]
pub struct ReadContext {
    inner: Arc<Mutex<HashMap<u64, UserCell>>>,
    skip_forbidden: bool,
    skipped: Arc<std::sync::atomic::AtomicU64>,
}

impl ReadContext {
    /// For `plan` and `status`: a project whose mirrors answer 401/403 is skipped (with a
    /// warning) and counted, instead of ending the run.
    pub fn skipping_forbidden() -> Self {
        ReadContext { skip_forbidden: true, ..ReadContext::default() }
    }

    /// How many projects were skipped for lack of permission.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The user with this id, fetched at most once.
    pub async fn get(&self, client: &GitLabClient, id: u64) -> Result<Option<User>, GitLabError> {
        let cell = {
            let mut map = self.inner.lock().expect("user cache lock is never poisoned");
            map.entry(id).or_default().clone()
        };
        cell.get_or_try_init(|| client.user(id)).await.cloned()
    }
}

/// The projects in scope, as a stream. Whole instance: keyset pagination in id order (for a
/// non-admin only the projects they maintain). Groups and projects: each project once.
pub fn projects<'a>(
    client: &'a GitLabClient,
    scope: &'a ScopeArgs,
    pre: &Preflight,
) -> BoxStream<'a, Result<Project, GitLabError>> {
    if scope.groups.is_empty() && scope.projects.is_empty() {
        // GITLAB-FACTS §1.3: `min_access_level` counts only memberships, so an admin must omit it.
        let query = ProjectQuery {
            min_access_level: if pre.is_admin { None } else { Some(40) },
            archived: None,
        };
        return client.projects(query).boxed();
    }
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let groups =
        stream::iter(scope.groups.iter()).map(move |g| client.group_projects(g, true)).flatten();
    let singles = stream::iter(scope.projects.iter()).then(move |p| client.project(p));
    groups
        .chain(singles)
        .try_filter(move |p| {
            let fresh = seen.lock().expect("seen-set lock is never poisoned").insert(p.id);
            futures::future::ready(fresh)
        })
        .boxed()
}

/// A project the token may see but not administer (a non-admin's group scope, or maintainers
/// not allowed to manage mirrors) answers 401/403 on its mirror endpoints: skip it with a
/// warning instead of ending the whole run.
fn no_permission_is_none<T>(
    reads: &ReadContext,
    project: &Project,
    result: Result<T, GitLabError>,
) -> Result<Option<T>, GitLabError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if reads.skip_forbidden && matches!(e.status(), Some(401 | 403)) => {
            reads.skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                "skipping {}: this token may not read its mirrors ({})",
                crate::redact::sanitize_for_terminal(&project.path_with_namespace),
                e.status().unwrap_or_default()
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Read every mirror of one project that the selection asks for.
pub async fn read_project(
    client: &GitLabClient,
    users: &ReadContext,
    project: Project,
    selection: MirrorSelection,
) -> Result<Vec<MirrorRead>, GitLabError> {
    let project = Arc::new(project);
    let mut reads = Vec::new();
    if selection != MirrorSelection::Push {
        if project.mirror {
            match no_permission_is_none(users, &project, client.pull_mirror(project.id).await)? {
                // No permission: no row at all (a warning was logged).
                None => {}
                Some(Some(mirror)) => {
                    let user = match project.mirror_user_id {
                        None => UserLookup::NoUser,
                        Some(id) => match users.get(client, id).await? {
                            Some(u) => UserLookup::Found(u),
                            None => UserLookup::Deleted(id),
                        },
                    };
                    reads.push(MirrorRead {
                        project: project.clone(),
                        mirror: MirrorDetail::Pull { mirror, user },
                    });
                }
                Some(None) => reads.push(MirrorRead {
                    project: project.clone(),
                    mirror: MirrorDetail::PullDisabled,
                }),
            }
        } else if project.import_url.as_deref().is_some_and(|u| !u.is_empty())
            && !project.mirror
            && project.import_type.as_deref().is_none_or(|t| t == "git")
        {
            reads.push(MirrorRead { project: project.clone(), mirror: MirrorDetail::PullDisabled });
        }
    }
    if selection != MirrorSelection::Pull {
        let mut mirrors =
            no_permission_is_none(users, &project, client.remote_mirrors(project.id).await)?
                .unwrap_or_default();
        mirrors.sort_by_key(|m| m.id);
        reads.extend(
            mirrors
                .into_iter()
                .map(|m| MirrorRead { project: project.clone(), mirror: MirrorDetail::Push(m) }),
        );
    }
    Ok(reads)
}

/// The direction-independent facts of one mirror.
#[derive(Debug, Clone)]
pub(crate) struct MirrorFacts {
    pub(crate) url: String,
    pub(crate) enabled: bool,
    pub(crate) update_status: String,
    pub(crate) last_error: Option<String>,
    pub(crate) last_update_started_at: Option<OffsetDateTime>,
    pub(crate) last_successful_update_at: Option<OffsetDateTime>,
    pub(crate) user_state: MirrorUserState,
    pub(crate) user_name: String,
    pub(crate) user_id: Option<u64>,
    pub(crate) flags: MirrorFlags,
}

impl MirrorFacts {
    /// What a write would overwrite: the input of the `observed` fingerprint. Plan and apply
    /// both build it here, so the two can never disagree on what counts as drift.
    pub(crate) fn observed(&self) -> ObservedState {
        ObservedState {
            masked_url: self.url.clone(),
            current_auth: CurrentAuth::from_masked_url(&self.url),
            enabled: self.enabled,
            mirror_user_id: self.user_id,
            flags: self.flags.clone(),
        }
    }

    /// The facts after a successful `PUT …/mirror/pull`, from GitLab's answer (the mirror as
    /// saved) and its rule that the writer becomes the mirror user. Flags the answer leaves
    /// out (GitLab before 17.5) are taken as unchanged.
    pub(crate) fn after_put(&self, saved: &PullMirror, mirror_user: &str) -> MirrorFacts {
        let mut after = self.clone();
        after.url = saved.url.clone().unwrap_or_else(|| self.url.clone());
        after.enabled = saved.enabled.unwrap_or(self.enabled);
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

    /// The diagnosis (SPEC §5) of a mirror with these facts.
    pub(crate) fn diagnose(
        &self,
        mirror_type: MirrorType,
        now: OffsetDateTime,
        silent_mode: bool,
    ) -> Option<plan::Diagnosis> {
        plan::diagnose(&DiagnoseInput {
            mirror_type,
            enabled: self.enabled,
            update_status: &self.update_status,
            last_error: self.last_error.as_deref(),
            last_update_started_at: self.last_update_started_at,
            last_successful_update_at: self.last_successful_update_at,
            now,
            mirror_user_state: self.user_state,
            silent_mode,
        })
    }

    pub(crate) fn of(read: &MirrorRead) -> MirrorFacts {
        let project = &read.project;
        match &read.mirror {
            MirrorDetail::Pull { mirror, user } => {
                let (user_state, user_name) = match user {
                    UserLookup::NoUser => (MirrorUserState::Unknown, String::new()),
                    UserLookup::Deleted(_) => (MirrorUserState::Deleted, String::new()),
                    UserLookup::Found(u) => (
                        match u.state.as_deref() {
                            Some("active") | None => MirrorUserState::Active,
                            Some(_) => MirrorUserState::Blocked,
                        },
                        u.username.clone(),
                    ),
                };
                MirrorFacts {
                    url: mirror
                        .url
                        .clone()
                        .or_else(|| project.import_url.clone())
                        .unwrap_or_default(),
                    enabled: mirror.enabled.unwrap_or(true),
                    update_status: mirror.update_status.clone().unwrap_or_default(),
                    last_error: mirror.last_error.clone().filter(|e| !e.trim().is_empty()),
                    last_update_started_at: parse_time(mirror.last_update_started_at.as_deref()),
                    last_successful_update_at: parse_time(
                        mirror.last_successful_update_at.as_deref(),
                    ),
                    user_state,
                    user_name,
                    user_id: project.mirror_user_id,
                    flags: MirrorFlags {
                        trigger_builds: mirror
                            .mirror_trigger_builds
                            .or(project.mirror_trigger_builds),
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
                url: project.import_url.clone().unwrap_or_default(),
                enabled: false,
                update_status: project.import_status.clone().unwrap_or_default(),
                last_error: None,
                last_update_started_at: None,
                last_successful_update_at: None,
                user_state: MirrorUserState::NotApplicable,
                user_name: String::new(),
                user_id: project.mirror_user_id,
                flags: MirrorFlags::default(),
            },
            MirrorDetail::Push(m) => MirrorFacts {
                url: m.url.clone(),
                enabled: m.enabled,
                update_status: m.update_status.clone().unwrap_or_default(),
                last_error: m.last_error.clone().filter(|e| !e.trim().is_empty()),
                last_update_started_at: parse_time(m.last_update_started_at.as_deref()),
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
            },
        }
    }
}

fn parse_time(text: Option<&str>) -> Option<OffsetDateTime> {
    text.and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
}
