//! Generated large instances (`sim::generate`, `glmirror sim --generate N`): a seeded,
//! realistic mix of pull mirrors (various URL shapes and failure states), push mirrors,
//! archived and plain projects, spread over groups and subgroups. Kept lean so 100,000
//! projects fit comfortably in memory.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fixture::{
    Credential, DemoSettings, Fixture, Group, Member, Project, PullMirror, RemoteHost,
    RemoteMirror, Token, User,
};

/// The service token generated instances' remotes accept (simulator-only value).
pub(crate) const GENERATED_SERVICE_TOKEN: &str = "ghp_simGeneratedServiceToken000000000001";

const ERRORS: &[&str] = &[
    "13:fetch remote: \"fatal: Authentication failed for 'https://*****:*****@github.com/{path}.git/'\\n\": exit status 128.",
    "13:Received RST_STREAM with error code 2.",
    "4:Deadline Exceeded.",
    "13:fetch remote: \"remote: HTTP Basic: Access denied\\nfatal: Authentication failed for 'https://*****:*****@gitlab.com/{path}.git/'\\n\": exit status 128.",
    "13:fetch remote: \"remote: Repository not found.\\nfatal: repository 'https://*****@github.com/{path}.git/' not found\\n\": exit status 128.",
    "13:fetch remote: \"fatal: could not read Username for 'https://bitbucket.org': terminal prompts disabled\\n\": exit status 128.",
];

fn user(id: u64, username: &str, name: &str) -> User {
    User {
        id,
        username: username.to_owned(),
        name: name.to_owned(),
        state: "active".to_owned(),
        is_admin: false,
        bot: false,
        deleted: false,
    }
}

fn token(id: u64, value: &str, user_id: u64, scopes: &[&str]) -> Token {
    Token {
        id,
        token: value.to_owned(),
        user_id,
        name: format!("token-{id}"),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        revoked: false,
        expires_at: Some("2099-12-31".to_owned()),
        created_at: "2025-01-01T00:00:00.000Z".to_owned(),
    }
}

/// Build an instance with `n` projects.
pub fn generate(n: u32, seed: u64) -> Fixture {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut root = user(1, "root", "Administrator");
    root.is_admin = true;
    let mut svc = user(3, "svc-mirror", "Mirror service account");
    svc.bot = true;
    let mut blocked = user(4, "former-employee", "Former Employee");
    blocked.state = "blocked".to_owned();
    let mut deleted = user(5, "ghost-mirror", "Deleted mirror user");
    deleted.deleted = true;
    let users = vec![root, user(2, "maintainer", "Mia Maintainer"), svc, blocked, deleted];
    let tokens = vec![
        token(1, "glsim-admin-generated-0000000000001", 1, &["api", "sudo"]),
        token(2, "glsim-maint-generated-0000000000002", 2, &["api"]),
        token(3, "glsim-svc-generated-00000000000003", 3, &["api"]),
        token(4, "glsim-read-generated-0000000000004", 2, &["read_api"]),
    ];
    let top = (n / 50).max(1) as u64;
    let mut groups = Vec::new();
    for t in 0..top {
        let id = 1000 + t * 3;
        groups.push(Group {
            id,
            name: format!("Team {t}"),
            path: format!("team-{t}"),
            parent_id: None,
            visibility: "private".to_owned(),
            // The service account maintains most teams; in every third it is only a
            // Developer, so a plan with `--mirror-user svc-mirror` leaves those pull mirrors
            // alone.
            members: vec![
                Member { user_id: 2, access_level: 40 },
                Member { user_id: 3, access_level: if t % 3 == 2 { 30 } else { 40 } },
            ],
        });
        for (k, sub) in ["backend", "frontend"].iter().enumerate() {
            groups.push(Group {
                id: id + 1 + k as u64,
                name: sub.to_string(),
                path: sub.to_string(),
                parent_id: Some(id),
                visibility: "private".to_owned(),
                members: Vec::new(),
            });
        }
    }
    let mut projects = Vec::with_capacity(n as usize);
    let mut mirror_id = 1;
    for i in 1..=u64::from(n) {
        let group = &groups[rng.random_range(0..groups.len())];
        let path = format!("project-{i}");
        let remote_path = format!("org-{}/repo-{i}", i % 97);
        let roll: f64 = rng.random();
        let pull = if roll < 0.5 {
            let shape = rng.random_range(0..8u8);
            let (url, user, password) = match shape {
                0 | 1 => (
                    format!("https://github.com/{remote_path}.git"),
                    None,
                    Some(format!("ghp_old{i}")),
                ),
                2 => (
                    format!("https://github.com/{remote_path}"),
                    Some("mirror-bot".to_owned()),
                    Some(format!("ghp_old{i}")),
                ),
                3 => (
                    format!("https://gitlab.com/{remote_path}.git"),
                    Some("mirror%40corp.example".to_owned()),
                    Some(format!("glpat-old{i}")),
                ),
                4 => (
                    format!("https://bitbucket.org/{remote_path}.git"),
                    None,
                    Some(format!("app-pass-{i}")),
                ),
                5 => (format!("ssh://git@github.com/{remote_path}.git"), None, None),
                6 => (format!("git@github.com:{remote_path}.git"), None, None),
                _ => (
                    format!("http://git.example.org/{remote_path}.git"),
                    Some("deploy".to_owned()),
                    Some(format!("pw{i}")),
                ),
            };
            let status_roll: f64 = rng.random();
            let (status, error) = if status_roll < 0.6 {
                ("finished", None)
            } else if status_roll < 0.9 {
                let e = ERRORS[rng.random_range(0..ERRORS.len())].replace("{path}", &remote_path);
                ("failed", Some(e))
            } else if status_roll < 0.95 {
                ("started", None)
            } else {
                ("none", None)
            };
            let mirror_user = [Some(2), Some(3), Some(4), Some(5)][rng.random_range(0..4)];
            Some(Box::new(PullMirror {
                mirror: rng.random_bool(0.95),
                import_url: url,
                import_type: Some("git".to_owned()),
                user,
                password,
                mirror_user_id: mirror_user,
                mirror_trigger_builds: rng.random_bool(0.2),
                only_mirror_protected_branches: rng.random_bool(0.1),
                mirror_overwrites_diverged_branches: rng.random_bool(0.3),
                mirror_branch_regex: None,
                state_id: i,
                update_status: status.to_owned(),
                last_error: error,
                last_update_at: Some("2026-11-20T04:00:00.000Z".to_owned()),
                last_update_started_at: Some("2026-11-20T03:59:30.000Z".to_owned()),
                last_successful_update_at: (status == "finished")
                    .then(|| "2026-11-20T04:00:00.000Z".to_owned()),
                hard_failed: false,
            }))
        } else {
            None
        };
        let mut remote_mirrors = Vec::new();
        if rng.random_bool(0.1) {
            let ssh = rng.random_bool(0.3);
            remote_mirrors.push(RemoteMirror {
                id: mirror_id,
                url: if ssh {
                    format!("ssh://gitlab.com/backup/{remote_path}.git")
                } else {
                    format!("https://gitlab.com/backup/{remote_path}.git")
                },
                user: Some(if ssh { "git".to_owned() } else { "backup-bot".to_owned() }),
                password: (!ssh).then(|| format!("glpat-push{i}")),
                enabled: rng.random_bool(0.9),
                auth_method: if ssh { "ssh_public_key" } else { "password" }.to_owned(),
                keep_divergent_refs: rng.random_bool(0.5),
                only_protected_branches: rng.random_bool(0.3),
                mirror_branch_regex: None,
                update_status: "finished".to_owned(),
                last_error: None,
                last_update_at: Some("2026-11-20T04:00:00.000Z".to_owned()),
                last_update_started_at: Some("2026-11-20T03:59:50.000Z".to_owned()),
                host_keys: Vec::new(),
                last_successful_update_at: Some("2026-11-20T04:00:00.000Z".to_owned()),
            });
            mirror_id += 1;
        }
        projects.push(Project {
            id: i,
            name: path.clone(),
            path,
            namespace_id: group.id,
            visibility: "private".to_owned(),
            archived: rng.random_bool(0.05),
            created_at: "2024-03-01T12:00:00.000Z".to_owned(),
            last_activity_at: "2026-11-20T04:00:00.000Z".to_owned(),
            members: Vec::new(),
            shared_with_groups: Vec::new(),
            pull,
            remote_mirrors,
        });
    }
    let service = || Credential { user: None, password: Some(GENERATED_SERVICE_TOKEN.to_owned()) };
    Fixture {
        gitlab_version: "17.8.1-ee".to_owned(),
        silent_mode: false,
        mirror_available: true,
        validate_pull_mirror_url: false,
        demo: Some(DemoSettings {
            service_token: GENERATED_SERVICE_TOKEN.to_owned(),
            source_hosts: vec!["github.com".to_owned()],
            source_user: None,
            mirror_user: Some("svc-mirror".to_owned()),
        }),
        users,
        tokens,
        groups,
        projects,
        remotes: vec![
            RemoteHost {
                host: "github.com".to_owned(),
                accept: vec![
                    service(),
                    Credential { user: Some(GENERATED_SERVICE_TOKEN.to_owned()), password: None },
                ],
                ..RemoteHost::default()
            },
            RemoteHost {
                host: "gitlab.com".to_owned(),
                accept: vec![service()],
                ..RemoteHost::default()
            },
            RemoteHost {
                host: "bitbucket.org".to_owned(),
                accept: vec![service()],
                ..RemoteHost::default()
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_mixed() {
        let a = generate(2000, 7);
        let b = generate(2000, 7);
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        let pulls = a.projects.iter().filter(|p| p.pull.is_some()).count();
        assert!((800..1200).contains(&pulls), "{pulls}");
        assert!(a.projects.iter().any(|p| !p.remote_mirrors.is_empty()));
        assert!(a.projects.iter().any(|p| p.archived));
        assert!(a.groups.iter().any(|g| g.parent_id.is_some()));
    }
}
