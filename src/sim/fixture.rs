//! The simulator's seed data: a JSON description of a GitLab instance (users, tokens, groups,
//! projects with their pull and push mirrors, and how each remote git host answers).
//!
//! These are the simulator's own shapes, written from docs/gitlab-behaviour.md, not the client's
//! (`src/gitlab`) models, so client and simulator cannot drift together unnoticed. The same
//! types double as the simulator's live state, and [`super::StateSnapshot`] serializes them
//! (stored credentials included) for tests.
//!
//! # Format (JSON; see `fixtures/sim/demo.json`)
//!
//! ```json
//! {
//!   "gitlab_version": "17.8.1-ee", "silent_mode": false, "mirror_available": true,
//!   "demo": {"service_token": "…", "source_hosts": ["github.com"], "mirror_user": "svc-mirror"},
//!   "users":  [{"id": 1, "username": "root", "name": "Administrator", "is_admin": true},
//!              {"id": 4, "username": "jdoe", "name": "J", "state": "blocked"},
//!              {"id": 5, "username": "gone", "name": "G", "deleted": true}],
//!   "tokens": [{"id": 1, "token": "glsim-…", "user_id": 1, "scopes": ["api", "sudo"],
//!               "expires_at": "2099-12-31"}],
//!   "groups": [{"id": 10, "name": "Platform", "path": "platform", "parent_id": null,
//!               "members": [{"user_id": 2, "access_level": 40}]}],
//!   "projects": [{"id": 1, "name": "api", "path": "api", "namespace_id": 10,
//!                 "archived": false, "visibility": "private", "shared_with_groups": [],
//!                 "pull": {"mirror": true, "import_url": "https://github.com/acme/api.git",
//!                          "user": "u", "password": "p", "mirror_user_id": 2,
//!                          "update_status": "failed", "last_error": "…"},
//!                 "remote_mirrors": [{"id": 1, "url": "https://gitlab.com/b/api.git",
//!                                     "user": "bot", "password": "p", "enabled": true}]}],
//!   "remotes": [{"host": "github.com", "accept": [{"user": null, "password": "tok"}],
//!                "missing": ["acme/gone"], "public_repos": [], "requires_dot_git": false,
//!                "ssh_ok": false, "ssh_host_key_unknown": false, "dumb_http": false,
//!                "redirect_302": false, "public": false, "dumb_repos": ["acme/wiki"],
//!                "restricted": [{"repo": "acme/payroll",
//!                                "accept": [{"user": "u", "password": "p"}]}]}]
//! }
//! ```
//!
//! `pull.import_url` is the raw `import_url` column: without userinfo for URLs GitLab parses,
//! verbatim otherwise (an SCP-like `git@host:path` stays as it is); `user`/`password` are the
//! decoded stored credentials. Most fields have defaults (see the field docs).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::SimError;

/// A whole simulated GitLab instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fixture {
    /// Version reported by `/version` and `/metadata`, e.g. `17.8.1-ee`.
    #[serde(default = "default_version")]
    pub(crate) gitlab_version: String,
    /// Instance setting `silent_mode_enabled` (docs/gitlab-behaviour.md §8.2): mirror updates do not run.
    #[serde(default)]
    pub silent_mode: bool,
    /// Instance setting "Allow project maintainers to configure repository mirroring"
    /// (`mirror_available`, docs/gitlab-behaviour.md §2.2). When false only admins change mirrors.
    #[serde(default = "yes")]
    pub mirror_available: bool,
    /// Feature flag `validate_pull_mirror_url`: `PUT …/mirror/pull` probes the remote before
    /// saving (docs/gitlab-behaviour.md §2.2 step 5). Off by default here.
    #[serde(default)]
    pub validate_pull_mirror_url: bool,
    /// What `glmirror demo` should use as service credentials against this fixture.
    #[serde(default)]
    pub demo: Option<DemoSettings>,
    /// Users, including blocked and deleted ones.
    pub users: Vec<User>,
    /// API tokens (simulator-only values).
    pub tokens: Vec<Token>,
    /// Groups and subgroups.
    #[serde(default)]
    pub(crate) groups: Vec<Group>,
    /// Projects.
    pub projects: Vec<Project>,
    /// How remote git hosts answer mirror updates. Hosts not listed behave as public
    /// repositories that accept any (or no) credentials.
    #[serde(default)]
    pub(crate) remotes: Vec<RemoteHost>,
}

/// Service credentials the demo uses against this fixture (simulator-only values).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSettings {
    /// The service token the remotes in [`Fixture::remotes`] accept.
    pub service_token: String,
    /// Hosts whose mirrors the demo moves onto the service token.
    pub source_hosts: Vec<String>,
    /// Username to send with the token (`None`: the token itself is the username).
    #[serde(default)]
    pub(crate) source_user: Option<String>,
    /// The GitLab user mirrors should run as.
    #[serde(default)]
    pub(crate) mirror_user: Option<String>,
}

/// A GitLab user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub id: u64,
    /// Login name.
    pub username: String,
    /// Display name.
    pub(crate) name: String,
    /// `active` or `blocked`.
    #[serde(default = "active")]
    pub state: String,
    /// Instance administrator.
    #[serde(default)]
    pub is_admin: bool,
    /// A bot / service account.
    #[serde(default)]
    pub bot: bool,
    /// Deleted: still referenced (e.g. as a mirror user) but `/users/:id` answers 404.
    #[serde(default)]
    pub(crate) deleted: bool,
}

/// A personal (or service-account) access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    /// Token id.
    pub id: u64,
    /// The token value (simulator-only).
    pub token: String,
    /// Owner.
    pub user_id: u64,
    /// Token name.
    #[serde(default)]
    pub name: String,
    /// Scopes, e.g. `api`, `read_api`, `sudo`.
    pub scopes: Vec<String>,
    /// Revoked tokens answer 401.
    #[serde(default)]
    pub revoked: bool,
    /// `YYYY-MM-DD`; expired tokens answer 401.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// RFC 3339.
    #[serde(default = "epoch")]
    pub created_at: String,
}

/// A membership: who, at which access level (10 guest … 30 developer, 40 maintainer, 50 owner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Member {
    /// The member.
    pub(crate) user_id: u64,
    /// GitLab access level.
    pub(crate) access_level: u32,
}

/// A group or subgroup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Group {
    /// Group id (namespace id).
    pub(crate) id: u64,
    /// Display name.
    pub(crate) name: String,
    /// Path segment.
    pub(crate) path: String,
    /// Parent group, for subgroups.
    #[serde(default)]
    pub(crate) parent_id: Option<u64>,
    /// `private`, `internal` or `public`.
    #[serde(default = "private")]
    pub(crate) visibility: String,
    /// Direct members (inherited by subgroups and projects).
    #[serde(default)]
    pub(crate) members: Vec<Member>,
}

/// A project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    /// Project id.
    pub id: u64,
    /// Display name.
    pub(crate) name: String,
    /// Path segment.
    pub path: String,
    /// The group it lives in.
    pub(crate) namespace_id: u64,
    /// `private`, `internal` or `public`.
    #[serde(default = "private")]
    pub(crate) visibility: String,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
    /// RFC 3339.
    #[serde(default = "epoch")]
    pub(crate) created_at: String,
    /// RFC 3339.
    #[serde(default = "epoch")]
    pub(crate) last_activity_at: String,
    /// Direct members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) members: Vec<Member>,
    /// Groups this project is shared with (`with_shared`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) shared_with_groups: Vec<u64>,
    /// The import/pull-mirror configuration, if the project has an `import_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<Box<PullMirror>>,
    /// Push (remote) mirrors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_mirrors: Vec<RemoteMirror>,
}

/// A project's import URL, stored credentials, pull-mirror flags and import state
/// (docs/gitlab-behaviour.md §2.5: `projects.import_url`, `project_import_data.credentials`,
/// `import_state`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullMirror {
    /// `projects.mirror`: the pull mirror is enabled.
    #[serde(default)]
    pub mirror: bool,
    /// The `import_url` column: without userinfo for valid URLs, verbatim otherwise.
    pub import_url: String,
    /// `import_type`, `git` when set through the API.
    #[serde(default)]
    pub import_type: Option<String>,
    /// Stored credential user (decoded).
    #[serde(default)]
    pub user: Option<String>,
    /// Stored credential password (decoded).
    #[serde(default)]
    pub password: Option<String>,
    /// `mirror_user_id`.
    #[serde(default)]
    pub mirror_user_id: Option<u64>,
    /// `mirror_trigger_builds`.
    #[serde(default)]
    pub mirror_trigger_builds: bool,
    /// `only_mirror_protected_branches`.
    #[serde(default)]
    pub only_mirror_protected_branches: bool,
    /// `mirror_overwrites_diverged_branches`.
    #[serde(default)]
    pub mirror_overwrites_diverged_branches: bool,
    /// `mirror_branch_regex`.
    #[serde(default)]
    pub mirror_branch_regex: Option<String>,
    /// Import state id (`id` of the pull-mirror entity).
    #[serde(default)]
    pub(crate) state_id: u64,
    /// `none`, `scheduled`, `started`, `finished`, `failed`.
    #[serde(default = "none_status")]
    pub update_status: String,
    /// `last_error`.
    #[serde(default)]
    pub last_error: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub last_update_at: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub(crate) last_update_started_at: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub(crate) last_successful_update_at: Option<String>,
    /// Retries exceeded: `POST …/mirror/pull` answers 403 "on pause" unless `force` (19.3+).
    #[serde(default)]
    pub(crate) hard_failed: bool,
}

/// A push mirror (docs/gitlab-behaviour.md §3).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteMirror {
    /// Mirror id.
    pub id: u64,
    /// URL without userinfo (a `git@` SSH user is kept separately in `user`).
    pub url: String,
    /// Stored credential user.
    #[serde(default)]
    pub user: Option<String>,
    /// Stored credential password.
    #[serde(default)]
    pub password: Option<String>,
    /// Enabled.
    #[serde(default)]
    pub enabled: bool,
    /// `password` or `ssh_public_key`.
    #[serde(default = "password_method")]
    pub auth_method: String,
    /// `keep_divergent_refs`.
    #[serde(default)]
    pub keep_divergent_refs: bool,
    /// `only_protected_branches`.
    #[serde(default)]
    pub only_protected_branches: bool,
    /// `mirror_branch_regex` (EE).
    #[serde(default)]
    pub mirror_branch_regex: Option<String>,
    /// `none`, `started`, `finished`, `failed`, `to_retry`.
    #[serde(default = "none_status")]
    pub update_status: String,
    /// `last_error`.
    #[serde(default)]
    pub last_error: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub last_update_at: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub(crate) last_update_started_at: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub last_successful_update_at: Option<String>,
    /// SHA256 fingerprints (`SHA256:…`) of the SSH host keys GitLab knows for the target;
    /// shown as `host_keys` from 18.4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) host_keys: Vec<String>,
}

/// How one remote git host answers a mirror update (or the old API's reachability probe).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RemoteHost {
    /// Host name, lowercase.
    pub(crate) host: String,
    /// Credentials the host accepts over http(s). Empty with `public: false`: nothing works.
    #[serde(default)]
    pub(crate) accept: Vec<Credential>,
    /// Repositories are public: no credentials needed (wrong ones still fail).
    #[serde(default)]
    pub(crate) public: bool,
    /// SSH access works (the instance's key is installed and the host key known).
    #[serde(default)]
    pub(crate) ssh_ok: bool,
    /// Paths (`org/repo`, without `.git`) that do not exist on this host.
    #[serde(default)]
    pub(crate) missing: Vec<String>,
    /// Answers 301 for repository paths without `.git`.
    #[serde(default)]
    pub(crate) requires_dot_git: bool,
    /// Repositories (`org/repo`, without `.git`) that are public although the host is not.
    #[serde(default)]
    pub(crate) public_repos: Vec<String>,
    /// The instance does not know this host's SSH key ("Host key verification failed").
    #[serde(default)]
    pub(crate) ssh_host_key_unknown: bool,
    /// Serves the "dumb" HTTP protocol only ("unable to get pack index").
    #[serde(default)]
    pub(crate) dumb_http: bool,
    /// Answers 302 to another location (e.g. a Geo secondary redirecting pushes).
    #[serde(default)]
    pub(crate) redirect_302: bool,
    /// Repositories (`org/repo`, without `.git`) served as dumb HTTP only, on a smart host.
    #[serde(default)]
    pub(crate) dumb_repos: Vec<String>,
    /// Repositories only some credentials may read: to every other account the host accepts
    /// they look missing ("Repository not found").
    #[serde(default)]
    pub(crate) restricted: Vec<RestrictedRepo>,
}

/// A repository with its own access list (see [`RemoteHost::restricted`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RestrictedRepo {
    /// `org/repo`, without `.git`.
    pub(crate) repo: String,
    /// The only credentials that may read it.
    #[serde(default)]
    pub(crate) accept: Vec<Credential>,
}

/// One credential a remote accepts. `user: None` accepts any username with this password;
/// `password: None` accepts this username with an empty password (a token as username).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Credential {
    /// Username, or any.
    #[serde(default)]
    pub(crate) user: Option<String>,
    /// Password, or none.
    #[serde(default)]
    pub(crate) password: Option<String>,
}

impl Credential {
    /// Does this accepted credential match a stored user/password pair?
    pub(crate) fn matches(&self, user: Option<&str>, password: Option<&str>) -> bool {
        let user = user.filter(|u| !u.is_empty());
        let password = password.filter(|p| !p.is_empty());
        match (&self.user, &self.password) {
            (Some(u), Some(p)) => user == Some(u.as_str()) && password == Some(p.as_str()),
            (None, Some(p)) => user.is_some() && password == Some(p.as_str()),
            (Some(u), None) => user == Some(u.as_str()) && password.is_none(),
            (None, None) => false,
        }
    }
}

impl Fixture {
    /// Read a fixture from a JSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Fixture, SimError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| SimError::Read { path: path.to_owned(), source })?;
        Fixture::parse(&text).map_err(|e| match e {
            SimError::Parse { message, .. } => SimError::Parse { path: path.to_owned(), message },
            other => other,
        })
    }

    /// Parse and check a fixture from JSON text.
    pub fn parse(text: &str) -> Result<Fixture, SimError> {
        let fixture: Fixture = serde_json::from_str(text)
            .map_err(|e| SimError::Parse { path: "<fixture>".into(), message: e.to_string() })?;
        fixture.check()?;
        Ok(fixture)
    }

    /// The built-in demo instance (`fixtures/sim/demo.json`).
    pub fn demo() -> Fixture {
        Fixture::parse(include_str!("../../fixtures/sim/demo.json"))
            .expect("the built-in demo fixture is valid (checked by a unit test)")
    }

    /// Referential checks: unique ids, namespaces and users that exist.
    fn check(&self) -> Result<(), SimError> {
        let bad = |message: String| SimError::Invalid(message);
        let mut users = std::collections::HashSet::new();
        for user in &self.users {
            if !users.insert(user.id) {
                return Err(bad(format!("duplicate user id {}", user.id)));
            }
        }
        for token in &self.tokens {
            if !users.contains(&token.user_id) {
                return Err(bad(format!("token {} belongs to unknown user", token.id)));
            }
        }
        let mut groups = std::collections::HashSet::new();
        for group in &self.groups {
            if !groups.insert(group.id) {
                return Err(bad(format!("duplicate group id {}", group.id)));
            }
        }
        for group in &self.groups {
            if let Some(parent) = group.parent_id.filter(|p| !groups.contains(p)) {
                return Err(bad(format!("group {} has unknown parent {parent}", group.id)));
            }
        }
        let mut projects = std::collections::HashSet::new();
        for project in &self.projects {
            if !projects.insert(project.id) {
                return Err(bad(format!("duplicate project id {}", project.id)));
            }
            if !groups.contains(&project.namespace_id) {
                return Err(bad(format!("project {} has unknown namespace", project.id)));
            }
        }
        Ok(())
    }
}

fn default_version() -> String {
    "17.8.1-ee".to_owned()
}
fn yes() -> bool {
    true
}
fn active() -> String {
    "active".to_owned()
}
fn private() -> String {
    "private".to_owned()
}
fn epoch() -> String {
    "2024-01-15T09:00:00.000Z".to_owned()
}
fn none_status() -> String {
    "none".to_owned()
}
fn password_method() -> String {
    "password".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_fixture_is_valid() {
        let demo = Fixture::demo();
        assert!(demo.projects.len() >= 25);
        assert!(demo.demo.is_some());
    }

    #[test]
    fn credentials_match_like_the_remote_would() {
        let any_user = Credential { user: None, password: Some("t".into()) };
        assert!(any_user.matches(Some("x"), Some("t")));
        assert!(!any_user.matches(None, Some("t")));
        let token_user = Credential { user: Some("t".into()), password: None };
        assert!(token_user.matches(Some("t"), None));
        assert!(token_user.matches(Some("t"), Some("")));
        assert!(!token_user.matches(Some("t"), Some("p")));
    }
}
