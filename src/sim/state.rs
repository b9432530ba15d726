//! The simulator's live state (built from a [`Fixture`]), the permission model, and the
//! background "mirror update" jobs that finish or fail after a delay.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::fixture::{Credential, Fixture, Group, Project, PullMirror, RemoteHost, User};
use super::urls;
use super::{Faults, LoggedRequest, RemoteAccept};

/// GitLab access levels (`Gitlab::Access`).
pub(crate) const MAINTAINER: u32 = 40;

/// State shared by every request and background job.
pub(crate) struct Shared {
    /// Everything mutable.
    pub(crate) state: Mutex<State>,
    /// How long a mirror update takes before it finishes or fails.
    pub(crate) update_delay_ms: u64,
}

impl Shared {
    /// Lock the state; a panic in another request does not wedge the simulator.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The simulated instance.
pub(crate) struct State {
    /// `major.minor` of the simulated version.
    pub(crate) version: (u32, u32),
    /// The full version string.
    pub(crate) version_string: String,
    /// Silent Mode.
    pub(crate) silent_mode: bool,
    /// `mirror_available` instance setting.
    pub(crate) mirror_available: bool,
    /// Feature flag `validate_pull_mirror_url`.
    pub(crate) validate_pull_mirror_url: bool,
    /// Users by id.
    pub(crate) users: BTreeMap<u64, User>,
    /// Tokens by value.
    pub(crate) tokens: HashMap<String, super::fixture::Token>,
    /// Groups by id.
    pub(crate) groups: BTreeMap<u64, Group>,
    /// Full path of each group.
    pub(crate) group_full_paths: HashMap<u64, String>,
    /// Group id by lowercase full path.
    pub(crate) group_by_path: HashMap<String, u64>,
    /// Projects by id (ordered, for keyset pagination).
    pub(crate) projects: BTreeMap<u64, Project>,
    /// Project id by lowercase full path.
    pub(crate) project_by_path: HashMap<String, u64>,
    /// Remote git hosts by lowercase host name.
    pub(crate) remotes: HashMap<String, RemoteHost>,
    /// Next push-mirror id.
    pub(crate) next_mirror_id: u64,
    /// Next import-state id.
    pub(crate) next_state_id: u64,
    /// Current fault settings.
    pub(crate) faults: Faults,
    /// Seeded randomness for faults.
    pub(crate) rng: StdRng,
    /// Rate-limit windows per client key: (window start, requests counted).
    pub(crate) rate_windows: HashMap<String, (Instant, u32)>,
    /// Unix time at which each window started (for `RateLimit-Reset`).
    pub(crate) rate_window_epoch: HashMap<String, u64>,
    /// Alternation state for `RateLimitShape::Alternate`.
    pub(crate) rate_flip: bool,
    /// Successful write requests so far (for `write_stall_after`).
    pub(crate) successful_writes: u32,
    /// Request log.
    pub(crate) log: Vec<LoggedRequest>,
    /// Base URL the instance calls itself (`web_url`, `Link` headers).
    pub(crate) external_url: String,
}

/// Parse `17.8.1-ee` into `(17, 8)`; anything unparsable counts as very new.
pub fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok());
    let minor = parts.next().and_then(|p| p.parse().ok());
    match (major, minor) {
        (Some(a), Some(b)) => (a, b),
        _ => (u32::MAX, 0),
    }
}

impl State {
    /// Build the live state.
    pub(crate) fn new(
        fixture: Fixture,
        faults: Faults,
        version: Option<String>,
        accepts: Vec<RemoteAccept>,
        external_url: String,
    ) -> State {
        let version_string = version.unwrap_or(fixture.gitlab_version);
        let groups: BTreeMap<u64, Group> = fixture.groups.into_iter().map(|g| (g.id, g)).collect();
        let mut group_full_paths = HashMap::new();
        for id in groups.keys() {
            let mut parts = Vec::new();
            let mut cursor = Some(*id);
            // Bounded walk: a cyclic parent chain in a hand-written fixture cannot hang us.
            while let Some(g) = cursor.and_then(|c| groups.get(&c)) {
                parts.push(g.path.clone());
                cursor = g.parent_id;
                if parts.len() > 20 {
                    break;
                }
            }
            parts.reverse();
            group_full_paths.insert(*id, parts.join("/"));
        }
        let group_by_path =
            group_full_paths.iter().map(|(id, p)| (p.to_lowercase(), *id)).collect();
        let mut next_state_id = 1;
        let mut next_mirror_id = 1;
        let mut projects = BTreeMap::new();
        let mut project_by_path = HashMap::new();
        for mut p in fixture.projects {
            if let Some(pull) = p.pull.as_mut() {
                if pull.state_id == 0 {
                    pull.state_id = p.id;
                }
                next_state_id = next_state_id.max(pull.state_id + 1);
            }
            for m in &p.remote_mirrors {
                next_mirror_id = next_mirror_id.max(m.id + 1);
            }
            let ns = group_full_paths.get(&p.namespace_id).cloned().unwrap_or_default();
            project_by_path.insert(format!("{ns}/{}", p.path).to_lowercase(), p.id);
            projects.insert(p.id, p);
        }
        let mut remotes: HashMap<String, RemoteHost> =
            fixture.remotes.into_iter().map(|r| (r.host.to_lowercase(), r)).collect();
        for extra in accepts {
            let host = extra.host.to_lowercase();
            let entry = remotes
                .entry(host.clone())
                .or_insert_with(|| RemoteHost { host, ..RemoteHost::default() });
            entry.accept.push(Credential { user: extra.user, password: extra.password });
        }
        State {
            version: parse_version(&version_string),
            version_string,
            silent_mode: fixture.silent_mode,
            mirror_available: fixture.mirror_available,
            validate_pull_mirror_url: fixture.validate_pull_mirror_url,
            users: fixture.users.into_iter().map(|u| (u.id, u)).collect(),
            tokens: fixture.tokens.into_iter().map(|t| (t.token.clone(), t)).collect(),
            groups,
            group_full_paths,
            group_by_path,
            projects,
            project_by_path,
            remotes,
            next_mirror_id,
            next_state_id,
            rng: StdRng::seed_from_u64(faults.seed),
            faults,
            rate_windows: HashMap::new(),
            rate_window_epoch: HashMap::new(),
            rate_flip: false,
            successful_writes: 0,
            log: Vec::new(),
            external_url,
        }
    }

    /// Is the simulated version at least `major.minor`?
    pub(crate) fn at_least(&self, major: u32, minor: u32) -> bool {
        self.version >= (major, minor)
    }

    /// `group/sub/project`.
    pub(crate) fn full_path(&self, p: &Project) -> String {
        let ns = self.group_full_paths.get(&p.namespace_id).map(String::as_str).unwrap_or("");
        format!("{ns}/{}", p.path)
    }

    /// Highest membership level of `user` in a group or any of its ancestors.
    pub(crate) fn group_access(&self, user: u64, group: u64) -> u32 {
        let mut level = 0;
        let mut cursor = Some(group);
        let mut depth = 0;
        while let Some(g) = cursor.and_then(|c| self.groups.get(&c)) {
            for m in g.members.iter().filter(|m| m.user_id == user) {
                level = level.max(m.access_level);
            }
            cursor = g.parent_id;
            depth += 1;
            if depth > 20 {
                break;
            }
        }
        level
    }

    /// Highest membership level of `user` in a project: direct, inherited from its groups, or
    /// through a group the project is shared with (capped at Developer \[I\]).
    pub(crate) fn project_access(&self, user: u64, p: &Project) -> u32 {
        let mut level = self.group_access(user, p.namespace_id);
        for m in p.members.iter().filter(|m| m.user_id == user) {
            level = level.max(m.access_level);
        }
        for g in &p.shared_with_groups {
            level = level.max(self.group_access(user, *g).min(30));
        }
        level
    }

    /// Can `caller` see the project at all (admin, member, or not private)?
    pub(crate) fn can_read(&self, caller: &Caller, p: &Project) -> bool {
        caller.is_admin || p.visibility != "private" || self.project_access(caller.user_id, p) > 0
    }

    /// `admin_project`: Maintainer or higher, or an admin.
    pub(crate) fn can_admin_project(&self, caller: &Caller, p: &Project) -> bool {
        caller.is_admin || self.project_access(caller.user_id, p) >= MAINTAINER
    }

    /// `admin_remote_mirror` / `admin_mirror`: `(mirror_available & admin_project) | admin`.
    pub(crate) fn can_admin_mirror(&self, caller: &Caller, p: &Project) -> bool {
        caller.is_admin || (self.mirror_available && self.can_admin_project(caller, p))
    }

    /// Find a project by numeric id or (decoded) full path.
    pub(crate) fn find_project(&self, key: &str) -> Option<u64> {
        match key.parse::<u64>() {
            Ok(id) => self.projects.contains_key(&id).then_some(id),
            Err(_) => self.project_by_path.get(&key.to_lowercase()).copied(),
        }
    }

    /// Find a group by numeric id or (decoded) full path.
    pub(crate) fn find_group(&self, key: &str) -> Option<u64> {
        match key.parse::<u64>() {
            Ok(id) => self.groups.contains_key(&id).then_some(id),
            Err(_) => self.group_by_path.get(&key.to_lowercase()).copied(),
        }
    }

    /// A new, empty import state for a project that has none yet.
    pub(crate) fn new_pull(&mut self) -> PullMirror {
        let state_id = self.next_state_id;
        self.next_state_id += 1;
        PullMirror {
            mirror: false,
            import_url: String::new(),
            import_type: None,
            user: None,
            password: None,
            mirror_user_id: None,
            mirror_trigger_builds: false,
            only_mirror_protected_branches: false,
            mirror_overwrites_diverged_branches: false,
            mirror_branch_regex: None,
            state_id,
            update_status: "none".to_owned(),
            last_error: None,
            last_update_at: None,
            last_update_started_at: None,
            last_successful_update_at: None,
            hard_failed: false,
        }
    }

    /// What a `git fetch`/`git push` against `stored` with these credentials would do:
    /// `Ok` or a realistic git error (URLs in it masked, as GitLab's `last_error` is).
    ///
    /// Hosts not listed in the fixture (and not given through `remote_accepts`) behave as
    /// public repositories that need no credentials and accept any \[I: simulator choice\].
    pub(crate) fn remote_outcome(
        &self,
        stored: &str,
        user: Option<&str>,
        password: Option<&str>,
    ) -> Result<(), String> {
        let masked = urls::masked(stored, user, password);
        let fetch_error =
            |text: String| format!("13:fetch remote: \"{text}\\n\": exit status 128.");
        let Ok(url) = url::Url::parse(stored) else {
            return Err(fetch_error(format!(
                "fatal: unable to access '{masked}': URL using bad/illegal format or missing URL"
            )));
        };
        if !stored.contains("://") || !urls::MIRROR_SCHEMES.contains(&url.scheme()) {
            return Err(fetch_error(format!(
                "fatal: '{masked}' does not appear to be a git repository"
            )));
        }
        let host = url.host_str().unwrap_or("").to_lowercase();
        let Some(remote) = self.remotes.get(&host) else { return Ok(()) };
        let repo = url.path().trim_matches('/').trim_end_matches(".git").to_owned();
        if url.scheme() == "ssh" {
            if remote.ssh_host_key_unknown {
                return Err(fetch_error("Host key verification failed.\\r\\nfatal: Could not read from remote repository.\\n\\nPlease make sure you have the correct access rights\\nand the repository exists.".into()));
            }
            return if remote.ssh_ok {
                Ok(())
            } else {
                Err(fetch_error(format!(
                    "git@{host}: Permission denied (publickey).\\r\\nfatal: Could not read from remote repository.\\n\\nPlease make sure you have the correct access rights\\nand the repository exists."
                )))
            };
        }
        if remote.missing.iter().any(|m| m.trim_end_matches(".git") == repo) {
            return Err(fetch_error(format!(
                "remote: Repository not found.\\nfatal: repository '{masked}/' not found"
            )));
        }
        if remote.requires_dot_git && !url.path().ends_with(".git") {
            return Err(fetch_error(format!(
                "error: RPC failed; HTTP 301 curl 22 The requested URL returned error: 301\\nfatal: unable to access '{masked}/': The requested URL returned error: 301"
            )));
        }
        if remote.redirect_302 {
            return Err(fetch_error(format!(
                "error: RPC failed; HTTP 302 curl 22 The requested URL returned error: 302\\nfatal: unable to access '{masked}/': The requested URL returned error: 302"
            )));
        }
        if remote.dumb_http || remote.dumb_repos.iter().any(|r| r.trim_end_matches(".git") == repo)
        {
            return Err(fetch_error(format!(
                "error: unable to get pack index {stored}/objects/pack/pack-4f1e2a9b0c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f.idx\\nfatal: fetch failed."
            )));
        }
        let user = user.filter(|u| !u.is_empty());
        let password = password.filter(|p| !p.is_empty());
        let public =
            remote.public || remote.public_repos.iter().any(|r| r.trim_end_matches(".git") == repo);
        if url.scheme() == "git" {
            return if public {
                Ok(())
            } else {
                Err(fetch_error(
                    "fatal: remote error: access denied or repository not exported".into(),
                ))
            };
        }
        if user.is_none() && password.is_none() && public {
            return Ok(());
        }
        if user.is_none() {
            // git asks for a username it cannot prompt for (the Bitbucket "no owner" case).
            let origin = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
            return Err(fetch_error(format!(
                "fatal: could not read Username for '{origin}': terminal prompts disabled"
            )));
        }
        if user.is_some_and(|u| u.contains("%40")) {
            // A stale percent-encoded `@` in the stored username is escaped again (`%2540`);
            // GitLab's troubleshooting page lists the symptom as "Deadline Exceeded".
            return Err("4:Deadline Exceeded.".to_owned());
        }
        let host_accepts = remote.accept.iter().any(|c| c.matches(user, password));
        match remote.restricted.iter().find(|r| r.repo.trim_end_matches(".git") == repo) {
            Some(r) if r.accept.iter().any(|c| c.matches(user, password)) => return Ok(()),
            // The host knows the account, but this repository is not shared with it.
            Some(_) if host_accepts => {
                return Err(fetch_error(format!(
                    "remote: Repository not found.\\nfatal: repository '{masked}/' not found"
                )));
            }
            Some(_) => {}
            None if host_accepts => return Ok(()),
            None => {}
        }
        Err(fetch_error(format!(
            "remote: HTTP Basic: Access denied\\nfatal: Authentication failed for '{masked}/'"
        )))
    }

    /// Everything, stored credentials included.
    pub(crate) fn snapshot(&self) -> StateSnapshot {
        StateSnapshot {
            gitlab_version: self.version_string.clone(),
            silent_mode: self.silent_mode,
            users: self.users.values().cloned().collect(),
            projects: self
                .projects
                .values()
                .map(|p| ProjectState {
                    path_with_namespace: self.full_path(p),
                    project: p.clone(),
                })
                .collect(),
        }
    }
}

/// A test's view of the whole simulated instance, stored credentials included.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// Simulated version.
    pub(crate) gitlab_version: String,
    /// Silent Mode.
    pub(crate) silent_mode: bool,
    /// Users (blocked and deleted ones too).
    pub users: Vec<User>,
    /// Projects with their pull mirror (`pull`: `import_url` column, stored `user`/`password`,
    /// `mirror_user_id`, flags, import state) and `remote_mirrors` (stored credentials too).
    pub projects: Vec<ProjectState>,
}

/// One project in a [`StateSnapshot`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectState {
    /// `group/sub/project`.
    pub(crate) path_with_namespace: String,
    /// The stored project.
    #[serde(flatten)]
    pub project: Project,
}

impl StateSnapshot {
    /// A project by id.
    pub fn project(&self, id: u64) -> Option<&Project> {
        self.projects.iter().map(|p| &p.project).find(|p| p.id == id)
    }

    /// A project by full path.
    pub fn project_by_path(&self, path: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.path_with_namespace == path).map(|p| &p.project)
    }
}

/// Who is making a request (after `Sudo`).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Effective user.
    pub(crate) user_id: u64,
    /// Effective user is an admin.
    pub(crate) is_admin: bool,
    /// Token id.
    pub(crate) token_id: u64,
    /// `Sudo` was used (effective username).
    pub(crate) sudo: Option<String>,
}

/// Now, RFC 3339 with milliseconds in UTC, as GitLab prints timestamps.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format).unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
}

/// `force_import_job!`: start a pull-mirror update unless one is due or running, or Silent
/// Mode is on (the worker skips; docs/gitlab-behaviour.md §8.2 \[I\]). It finishes after the configured delay.
pub(crate) fn start_pull_update(shared: &Arc<Shared>, st: &mut State, project_id: u64) {
    if st.silent_mode {
        return;
    }
    let Some(pull) = st.projects.get_mut(&project_id).and_then(|p| p.pull.as_mut()) else {
        return;
    };
    if !pull.mirror || matches!(pull.update_status.as_str(), "scheduled" | "started") {
        return;
    }
    pull.update_status = "started".to_owned();
    pull.last_update_started_at = Some(now_rfc3339());
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(shared.update_delay_ms)).await;
        let mut st = shared.lock();
        let Some(project) = st.projects.get(&project_id) else { return };
        let Some(pull) = project.pull.as_deref() else { return };
        let mirror_user = pull.mirror_user_id.and_then(|id| st.users.get(&id));
        let mirror_user_ok = mirror_user.is_some_and(|u| u.state == "active" && !u.deleted);
        // The mirror pushes what it fetched as its user: below Maintainer it cannot push to
        // protected branches, and GitLab fails the update.
        let may_push = mirror_user
            .is_some_and(|u| u.is_admin || st.project_access(u.id, project) >= MAINTAINER);
        let outcome = if !mirror_user_ok {
            // GitLab stops a mirror whose user was blocked or removed [I: wording].
            Err("The mirror user is blocked or no longer exists".to_owned())
        } else if !may_push {
            Err("The mirror user is not allowed to push code to all branches on this project."
                .to_owned())
        } else {
            st.remote_outcome(&pull.import_url, pull.user.as_deref(), pull.password.as_deref())
        };
        let now = now_rfc3339();
        let Some(pull) = st.projects.get_mut(&project_id).and_then(|p| p.pull.as_mut()) else {
            return;
        };
        pull.last_update_at = Some(now.clone());
        match outcome {
            Ok(()) => {
                pull.update_status = "finished".to_owned();
                pull.last_error = None;
                pull.last_successful_update_at = Some(now);
            }
            Err(e) => {
                pull.update_status = "failed".to_owned();
                pull.last_error = Some(e);
            }
        }
    });
}

/// `RemoteMirror#sync`: start a push-mirror update unless one is running or Silent Mode is on.
pub(crate) fn start_push_update(
    shared: &Arc<Shared>,
    st: &mut State,
    project_id: u64,
    mirror_id: u64,
) {
    if st.silent_mode {
        return;
    }
    let Some(m) = st
        .projects
        .get_mut(&project_id)
        .and_then(|p| p.remote_mirrors.iter_mut().find(|m| m.id == mirror_id))
    else {
        return;
    };
    if m.update_status == "started" {
        return;
    }
    m.update_status = "started".to_owned();
    m.last_update_started_at = Some(now_rfc3339());
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(shared.update_delay_ms)).await;
        let mut st = shared.lock();
        let Some(m) = st
            .projects
            .get(&project_id)
            .and_then(|p| p.remote_mirrors.iter().find(|m| m.id == mirror_id))
        else {
            return;
        };
        let outcome = st.remote_outcome(&m.url, m.user.as_deref(), m.password.as_deref());
        let now = now_rfc3339();
        let Some(m) = st
            .projects
            .get_mut(&project_id)
            .and_then(|p| p.remote_mirrors.iter_mut().find(|m| m.id == mirror_id))
        else {
            return;
        };
        m.last_update_at = Some(now.clone());
        match outcome {
            Ok(()) => {
                m.update_status = "finished".to_owned();
                m.last_error = None;
                m.last_successful_update_at = Some(now);
            }
            Err(e) => {
                m.update_status = "failed".to_owned();
                m.last_error = Some(e.replace("fetch remote", "push remote"));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_state() -> State {
        State::new(
            Fixture::demo(),
            Faults::default(),
            None,
            Vec::new(),
            "http://127.0.0.1:1".into(),
        )
    }

    #[test]
    fn remote_outcomes_look_like_git_errors() {
        let st = demo_state();
        let gh = "https://github.com/acme/x.git";
        let token = "ghp_simDemoServiceToken00000000000000001";
        assert_eq!(st.remote_outcome(gh, Some("anyone"), Some(token)), Ok(()));
        assert_eq!(st.remote_outcome(gh, Some(token), None), Ok(()));
        let wrong = st.remote_outcome(gh, Some("u"), Some("nope")).unwrap_err();
        assert!(
            wrong
                .contains("Authentication failed for 'https://*****:*****@github.com/acme/x.git/'")
        );
        assert!(!wrong.contains("nope"));
        let bb = st.remote_outcome("https://bitbucket.org/a/b.git", None, Some("p")).unwrap_err();
        assert!(bb.contains("could not read Username for 'https://bitbucket.org'"));
        assert_eq!(
            st.remote_outcome(gh, Some("ci%40acme"), Some(token)),
            Err("4:Deadline Exceeded.".to_owned())
        );
        let missing =
            st.remote_outcome("https://github.com/acme/old-sdk.git", Some("x"), Some(token));
        assert!(missing.unwrap_err().contains("not found"));
        let moved = st.remote_outcome("https://git.example.org/docs/upstream-docs", None, None);
        assert!(moved.unwrap_err().contains("returned error: 301"));
        assert_eq!(
            st.remote_outcome("https://git.example.org/docs/upstream-docs.git", None, None),
            Ok(())
        );
        let ssh = st.remote_outcome("ssh://github.com/acme/x.git", Some("git"), None);
        assert!(ssh.unwrap_err().contains("Permission denied (publickey)"));
        let hk = st.remote_outcome("ssh://git.example.org:2222/ops/a.git", Some("git"), None);
        assert!(hk.unwrap_err().contains("Host key verification failed"));
        let dumb = st.remote_outcome("http://dumb.example.net/legacy/cvs-export.git", None, None);
        assert!(dumb.unwrap_err().contains("unable to get pack index"));
        assert_eq!(st.remote_outcome("https://unknown.example/x.git", None, None), Ok(()));
        // A repository shared with one person only: the service token finds nothing there.
        let payroll = "https://github.com/acme/payroll.git";
        let hidden = st.remote_outcome(payroll, Some(token), None).unwrap_err();
        assert!(hidden.contains("Repository not found"), "{hidden}");
        let mwilson = "ghp_mwilsonPersonal0000000000000000000001";
        assert_eq!(st.remote_outcome(payroll, Some("mwilson"), Some(mwilson)), Ok(()));
        let bad = st.remote_outcome(payroll, Some("u"), Some("nope")).unwrap_err();
        assert!(bad.contains("Authentication failed"), "{bad}");
        let wiki = st.remote_outcome("https://github.com/acme/legacy-wiki.git", Some(token), None);
        assert!(wiki.unwrap_err().contains("unable to get pack index"));
        assert_eq!(
            st.remote_outcome("https://github.com/acme/linux-tools.git", None, None),
            Ok(())
        );
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("17.8.1-ee"), (17, 8));
        assert_eq!(parse_version("16.11.0"), (16, 11));
        assert_eq!(parse_version("nonsense"), (u32::MAX, 0));
    }
}
