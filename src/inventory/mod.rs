//! Reading the instance: pre-flight checks, the projects in scope, and each mirror's live
//! state, turned into plan facts ([`facts`]). Shared by `plan`, `status` and `apply`'s re-reads;
//! never writes to GitLab. [`walk`] streams a whole plan's rows in order; [`survey`] reads every
//! mirror's health for `status`; [`probe`] proves rows' service credentials against their
//! source hosts and watches the service tokens.

pub(crate) mod facts;
pub(crate) mod probe;
pub(crate) mod survey;
pub(crate) mod walk;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use crate::config::{Connection, Mirrors, Scope, Settings};
use crate::error::AppError;
use crate::gitlab::{
    ClientConfig, GitLabClient, GitLabError, GitLabVersion, Project, ProjectQuery, PullMirror,
    RemoteMirror, Tuning, User,
};
use crate::plan::MirrorType;

/// What pre-flight learned about the token, the caller and the instance.
#[derive(Debug, Clone)]
pub(crate) struct Preflight {
    /// The instance's version (picks the pull-mirror API).
    pub(crate) version: GitLabVersion,
    /// The caller.
    pub(crate) user: User,
    /// Whether the caller is an instance administrator.
    pub(crate) is_admin: bool,
    /// The token's scopes, when GitLab told us (`/personal_access_tokens/self`).
    pub(crate) scopes: Option<Vec<String>>,
    /// Silent Mode, when the caller may read application settings (admins only).
    pub(crate) silent_mode: Option<bool>,
    /// The instance setting `mirror_available`, when the caller may read it (admins only).
    pub(crate) mirror_available: Option<bool>,
    /// Things worth telling the user before the run.
    pub(crate) warnings: Vec<String>,
    /// The API token's `expires_at` (`YYYY-MM-DD`), when GitLab described the token.
    pub(crate) token_expires_at: Option<String>,
    /// GitLab described the token (`/personal_access_tokens/self`); without that its expiry
    /// is unknown.
    pub(crate) token_described: bool,
}

impl Preflight {
    /// Whether the token is known to carry a scope (unknown counts as yes: older GitLab).
    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        self.scopes.as_ref().is_none_or(|s| s.iter().any(|x| x == scope))
    }
}

/// Build the client from the resolved connection and global options.
pub(crate) fn client(settings: &Settings, conn: Connection) -> Result<GitLabClient, AppError> {
    let mut cfg = ClientConfig::new(conn.base_url, conn.token);
    cfg.ca_cert = settings.ca_cert.clone();
    // Pacing needs to know how many requests run at once.
    Ok(GitLabClient::with_tuning(cfg, Tuning::with_concurrency(u32::from(settings.concurrency)))?)
}

/// Check the token, the caller, the version and Silent Mode. `write` asks for the `api` scope.
pub(crate) async fn preflight(client: &GitLabClient, write: bool) -> Result<Preflight, AppError> {
    let user = client.current_user().await?;
    let mut warnings = Vec::new();
    let token = client.token_self().await?;
    let scopes = token.as_ref().map(|t| t.scopes.clone());
    if token.as_ref().is_some_and(|t| t.revoked) {
        return Err(AppError::fatal_hint(
            "the GitLab token is not active (revoked or expired)",
            "create a new token with the `api` scope and set GITLAB_TOKEN",
        ));
    }
    let token_expires_at = token.as_ref().and_then(|t| t.expires_at.clone());
    let metadata = client.metadata().await?;
    let version = metadata.parsed_version().ok_or_else(|| {
        AppError::fatal(format!(
            "cannot understand the GitLab version {:?}",
            crate::redact::for_terminal(&metadata.version)
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
    let (silent_mode, mirror_available) = if is_admin {
        let settings = client.application_settings().await?;
        (Some(settings.silent_mode_enabled.unwrap_or(false)), settings.mirror_available)
    } else {
        (None, None)
    };
    let pre = Preflight {
        version,
        user,
        is_admin,
        scopes,
        silent_mode,
        mirror_available,
        warnings,
        token_described: token.is_some(),
        token_expires_at,
    };
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

/// One project's mirror as read from GitLab.
#[derive(Debug, Clone)]
pub(crate) struct MirrorRead {
    /// The project it belongs to.
    pub(crate) project: Arc<Project>,
    /// Pull or push details.
    pub(crate) mirror: MirrorDetail,
}

/// The direction-specific part of a mirror read.
#[derive(Debug, Clone)]
pub(crate) enum MirrorDetail {
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
    /// `plan` and `status` only: GitLab kept answering an error for this project's pull mirror
    /// or its list of push mirrors (see [`is_project_fault`]).
    Unreadable {
        /// Which read failed.
        mirror_type: MirrorType,
        /// The error, as [`GitLabError`] shows it.
        error: String,
    },
}

/// The mirror user as found.
#[derive(Debug, Clone)]
pub(crate) enum UserLookup {
    /// The project has no mirror user id.
    NoUser,
    /// The user exists.
    Found(User),
    /// The id points at a user that no longer exists.
    Deleted,
}

/// One user's lookup, shared by every task that asks for it.
type UserCell = Arc<OnceCell<Option<User>>>;

/// Per-run read state: user lookups, cached so each mirror user is fetched once even
/// concurrently; and, for `plan` and `status`, the projects skipped because the token may not
/// read their mirrors, and the reads that failed for one project alone (for `apply` both are
/// errors of the row instead).
#[derive(Default, Clone)]
pub(crate) struct ReadContext {
    inner: Arc<Mutex<HashMap<u64, UserCell>>>,
    skip_forbidden: bool,
    skipped: Arc<std::sync::atomic::AtomicU64>,
    list_is_enough: bool,
    not_read_again: Arc<std::sync::atomic::AtomicU64>,
}

impl ReadContext {
    /// For `plan` and `status`: a project whose mirrors answer 401/403 is skipped (with a
    /// warning) and counted, and a read that keeps failing for one project alone
    /// ([`is_project_fault`]) becomes a [`MirrorDetail::Unreadable`] mirror, instead of ending
    /// the run.
    pub(crate) fn skipping_forbidden() -> Self {
        ReadContext { skip_forbidden: true, ..ReadContext::default() }
    }

    /// For `status`: a pull mirror the project list already shows `finished` is not read
    /// again (`GET /projects/:id/mirror/pull` would only add its timestamps, flags and URL
    /// mask, none of which changes its health). Its mirror user is still looked up.
    pub(crate) fn trusting_the_list(self) -> Self {
        ReadContext { list_is_enough: true, ..self }
    }

    /// How many pull mirrors were taken from the project list without a read of their own.
    pub(crate) fn not_read_again(&self) -> u64 {
        self.not_read_again.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// An error of one project's read, as an unreadable mirror when this context records
    /// those (`plan`, `status`); other errors, and every error for `apply`, stay errors.
    pub(crate) fn unreadable(
        &self,
        project: &Project,
        mirror_type: MirrorType,
        error: GitLabError,
    ) -> Result<MirrorDetail, GitLabError> {
        if !(self.skip_forbidden && is_project_fault(&error)) {
            return Err(error);
        }
        let what = match mirror_type {
            MirrorType::Pull => "pull mirror",
            MirrorType::Push => "push mirrors",
        };
        tracing::warn!(
            "cannot read the {what} of {} (reported as unreadable): {}",
            crate::redact::excerpt(&project.path_with_namespace, 200),
            crate::redact::excerpt(&error.to_string(), 300)
        );
        Ok(MirrorDetail::Unreadable { mirror_type, error: error.to_string() })
    }

    /// How many projects were skipped for lack of permission.
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The user with this id, fetched at most once.
    pub(crate) async fn get(
        &self,
        client: &GitLabClient,
        id: u64,
    ) -> Result<Option<User>, GitLabError> {
        let cell = {
            let mut map = self.inner.lock().expect("user cache lock is never poisoned");
            map.entry(id).or_default().clone()
        };
        cell.get_or_try_init(|| client.user(id)).await.cloned()
    }
}

/// The projects in scope, as a stream. Whole instance: keyset pagination in id order (for a
/// non-admin only the projects they maintain). Groups and projects: each project once.
pub(crate) fn projects<'a>(
    client: &'a GitLabClient,
    scope: &'a Scope,
    pre: &Preflight,
) -> BoxStream<'a, Result<Project, GitLabError>> {
    if scope.is_whole_instance() {
        // docs/gitlab-behaviour.md §1.3: `min_access_level` counts only memberships, so an admin must omit it.
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

/// Whether a failed read concerns one project alone, after the client's retries: a server
/// error that persists (GitLab cannot decrypt a project's import data after a change of its
/// secrets), a 404 (the project was deleted while the run went on), or an answer that does not
/// parse. Connection trouble, rate limits and redirects concern the whole instance: they stop
/// the run, like a failing list page (the inventory would be incomplete).
pub(crate) fn is_project_fault(error: &GitLabError) -> bool {
    match error {
        GitLabError::Http { status, .. } => *status == 404 || (500..600).contains(status),
        GitLabError::Protocol { .. } => true,
        _ => false,
    }
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
                crate::redact::for_terminal(&project.path_with_namespace),
                e.status().unwrap_or_default()
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The pull mirror of a project whose `mirror` flag is on, with its mirror user; `None` when
/// the token may not read it (skipped with a warning).
async fn read_pull(
    client: &GitLabClient,
    users: &ReadContext,
    project: &Project,
) -> Result<Option<MirrorDetail>, GitLabError> {
    let mirror = if users.list_is_enough && project.import_status.as_deref() == Some("finished") {
        users.not_read_again.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // What the list says: the URL without credentials and the finished update.
        PullMirror {
            url: project.import_url.clone(),
            update_status: project.import_status.clone(),
            enabled: Some(true),
            ..PullMirror::default()
        }
    } else {
        let read = client.pull_mirror(project.id).await;
        let Some(found) = no_permission_is_none(users, project, read)? else {
            return Ok(None);
        };
        let Some(mirror) = found else { return Ok(Some(MirrorDetail::PullDisabled)) };
        mirror
    };
    let user = match project.mirror_user_id {
        None => UserLookup::NoUser,
        Some(id) => match users.get(client, id).await? {
            Some(u) => UserLookup::Found(u),
            None => UserLookup::Deleted,
        },
    };
    Ok(Some(MirrorDetail::Pull { mirror, user }))
}

/// Read every mirror of one project that the selection asks for. For `plan` and `status`, a
/// read that keeps failing for this project alone is an [`MirrorDetail::Unreadable`] mirror
/// (see [`ReadContext::skipping_forbidden`]).
pub(crate) async fn read_project(
    client: &GitLabClient,
    users: &ReadContext,
    project: Project,
    mirrors: Mirrors,
) -> Result<Vec<MirrorRead>, GitLabError> {
    let project = Arc::new(project);
    let mut reads = Vec::new();
    if mirrors.pull {
        if project.mirror {
            let pull = match read_pull(client, users, &project).await {
                Ok(pull) => pull,
                Err(e) => Some(users.unreadable(&project, MirrorType::Pull, e)?),
            };
            // None: no permission, no row at all (a warning was logged).
            if let Some(mirror) = pull {
                reads.push(MirrorRead { project: project.clone(), mirror });
            }
        } else if project.import_url.as_deref().is_some_and(|u| !u.is_empty())
            && !project.mirror
            && project.import_type.as_deref().is_none_or(|t| t == "git")
        {
            reads.push(MirrorRead { project: project.clone(), mirror: MirrorDetail::PullDisabled });
        }
    }
    if mirrors.push {
        let listed =
            no_permission_is_none(users, &project, client.remote_mirrors(project.id).await);
        let mut mirrors = match listed {
            Ok(found) => found.unwrap_or_default(),
            Err(e) => {
                let mirror = users.unreadable(&project, MirrorType::Push, e)?;
                reads.push(MirrorRead { project: project.clone(), mirror });
                Vec::new()
            }
        };
        mirrors.sort_by_key(|m| m.id);
        reads.extend(
            mirrors
                .into_iter()
                .map(|m| MirrorRead { project: project.clone(), mirror: MirrorDetail::Push(m) }),
        );
    }
    Ok(reads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_faults_are_server_errors_404s_and_bad_answers() {
        let http = |status| GitLabError::Http {
            method: "GET".into(),
            path: "/projects/7/mirror/pull".into(),
            status,
            body: String::new(),
        };
        for (error, fault) in [
            (http(500), true),
            (http(503), true),
            (http(404), true),
            (http(401), false),
            (http(403), false),
            (http(429), false),
            (http(400), false),
            (
                GitLabError::Protocol {
                    method: "GET".into(),
                    path: "/x".into(),
                    detail: "bad JSON".into(),
                },
                true,
            ),
            (
                GitLabError::Connection {
                    method: "GET".into(),
                    path: "/x".into(),
                    detail: "timed out".into(),
                    tls: false,
                },
                false,
            ),
        ] {
            assert_eq!(is_project_fault(&error), fault, "{error}");
        }
    }
}
