//! Every mirror that can be moved is moved (docs/plan-format.md, "Which mirrors are moved"):
//! after `plan --mirror-user svc-mirror` and `apply`, every enabled pull mirror of a live
//! project runs as svc-mirror and every token mirror on a source host holds the service
//! credentials — or its row is `manual` for one of the listed reasons (or, on GitLab before
//! 17.6, `failed` because the old API's reachability probe refused the URL). Mirror-user-only
//! rows change nothing but the mirror user, byte for byte; rows left alone are untouched.

use glmirror::sim::{RemoteAccept, StateSnapshot};

use crate::util::{CANARY, Env, ExitExt as _, Row, Table};

/// The user pull mirrors should run as.
const TARGET: &str = "svc-mirror";

/// Why a row may stay `manual` (docs/plan-format.md): the URL rules refuse it, a fix would
/// erase stored credentials, a Bitbucket owner is missing, an SSH push mirror would get a new
/// key pair, or the target user is below Maintainer.
const MANUAL_REASONS: &[&str] = &[
    "would fail every update",
    "would erase",
    "new key pair",
    "by hand",
    "Bitbucket",
    "refused by the URL rules",
    "ambiguous",
    "not allowed",
];

/// The rows of the CSV file `name` in the test directory.
fn rows(env: &Env, name: &str) -> Vec<Row> {
    Table::read(env.path(name)).rows().to_vec()
}

/// Plan with `--mirror-user`, apply, and return the plan rows, the report rows and the
/// simulator's state before and after.
fn migrate(env: &Env, rules: &[&str]) -> Migration {
    let before = env.sim().snapshot();
    // With --probe, as the README plans: rows the service account cannot read keep their
    // credentials (and move only their mirror user).
    let mut plan = vec!["plan", "--probe", "--mirror-user", TARGET, "--out", "plan.csv"];
    plan.extend_from_slice(rules);
    let out = env.run(&plan);
    out.ok();
    let mut apply = vec!["apply", "plan.csv", "--yes"];
    apply.extend_from_slice(rules);
    let out = env.run(&apply);
    out.exit_in(&[0, 3]);
    env.assert_files_clean();
    Migration {
        plan: rows(env, "plan.csv"),
        report: rows(env, "plan.report.csv"),
        before,
        after: env.sim().snapshot(),
    }
}

struct Migration {
    plan: Vec<Row>,
    report: Vec<Row>,
    before: StateSnapshot,
    after: StateSnapshot,
}

/// Whether a stored URL is a token mirror on a source host (ssh mirrors use keys).
fn token_url_on(url: &str, hosts: &[&str]) -> bool {
    let Ok(u) = url::Url::parse(url) else { return false };
    u.scheme() != "ssh" && u.host_str().is_some_and(|h| hosts.contains(&h))
}

fn stored_service(
    user: &Option<String>,
    password: &Option<String>,
    svc_user: Option<&str>,
) -> bool {
    match svc_user {
        None => user.as_deref() == Some(CANARY) && password.is_none(),
        Some(u) => user.as_deref() == Some(u) && password.as_deref() == Some(CANARY),
    }
}

/// Check the rules above; `old_api`: GitLab before 17.6.
fn check(m: &Migration, source_hosts: &[&str], svc_user: Option<&str>, old_api: bool, ctx: &str) {
    let target = m.after.users.iter().find(|u| u.username == TARGET).expect("target user").id;
    let mut moved_user = 0;
    let mut moved_creds = 0;
    for (row, report) in m.plan.iter().zip(&m.report) {
        let pid: u64 = row.cell("project_id").parse().expect("project id");
        let (now, was) =
            (m.after.project(pid).expect("project"), m.before.project(pid).expect("p"));
        let case = format!(
            "{ctx}: {} {} ({})",
            row.cell("project_path"),
            row.cell("mirror_type"),
            row.cell("reason")
        );
        let manual_ok = row.cell("action") == "manual"
            && MANUAL_REASONS.iter().any(|r| row.cell("reason").contains(r));
        // The probe found the service credentials cannot read the repository: they are not
        // moved (docs/plan-format.md, `probe`).
        let kept_by_probe = matches!(
            row.cell("probe"),
            "auth-rejected" | "no-access-or-missing" | "forbidden" | "not-found" | "not-git"
        );
        let refused_by_old_api = old_api
            && report.cell("outcome") == "failed"
            && report.cell("outcome_detail").contains("Unable to access repository");
        if was.archived {
            assert_eq!(row.cell("action"), "skip", "{case}");
            continue;
        }
        if row.cell("mirror_type") == "pull" {
            let (n, w) = (now.pull.as_deref().expect("pull"), was.pull.as_deref().expect("pull"));
            if !w.mirror {
                assert_eq!(row.cell("action"), "skip", "{case}");
                continue;
            }
            if n.mirror_user_id == Some(target) {
                moved_user += 1;
            } else {
                assert!(manual_ok || refused_by_old_api, "{case}: mirror user not moved");
            }
            if row.cell("action") == "update" && row.cell("fixes") == "mirror-user" {
                assert_eq!(
                    (&n.import_url, &n.user, &n.password),
                    (&w.import_url, &w.user, &w.password),
                    "{case}: a mirror-user-only row keeps URL and credentials byte for byte"
                );
                assert_eq!(
                    (
                        n.mirror_trigger_builds,
                        n.only_mirror_protected_branches,
                        &n.mirror_branch_regex
                    ),
                    (
                        w.mirror_trigger_builds,
                        w.only_mirror_protected_branches,
                        &w.mirror_branch_regex
                    ),
                    "{case}: flags kept"
                );
            }
            if token_url_on(&w.import_url, source_hosts) {
                if stored_service(&n.user, &n.password, svc_user) {
                    moved_creds += 1;
                } else {
                    assert!(
                        manual_ok || refused_by_old_api || kept_by_probe,
                        "{case}: not on service credentials"
                    );
                }
            }
            if row.cell("action") != "update" {
                assert_eq!(
                    (&n.import_url, &n.user, &n.password, n.mirror_user_id),
                    (&w.import_url, &w.user, &w.password, w.mirror_user_id),
                    "{case}: left alone"
                );
            }
        } else {
            let old: u64 = row.cell("mirror_id").parse().expect("mirror id");
            let w = was.remote_mirrors.iter().find(|x| x.id == old).expect("old push mirror");
            if !w.enabled || !token_url_on(&w.url, source_hosts) {
                continue;
            }
            let moved = now.remote_mirrors.iter().any(|x| {
                x.url == row.cell("new_url") && stored_service(&x.user, &x.password, svc_user)
            });
            if moved {
                moved_creds += 1;
            } else {
                assert!(
                    manual_ok || refused_by_old_api || kept_by_probe,
                    "{case}: push mirror not moved"
                );
            }
        }
    }
    assert!(
        moved_user > 0 && moved_creds > 0,
        "{ctx}: something moved ({moved_user}, {moved_creds})"
    );
}

#[test]
fn on_the_demo_instance_every_mirror_that_can_move_is_moved() {
    let env = Env::demo();
    let m = migrate(&env, &["--source-host", "github.com"]);
    check(&m, &["github.com"], None, false, "demo 17.8");
    // The rows the demo was given for this: a healthy non-source mirror moved by
    // --mirror-user only, an rst-stream push mirror moved, and a project where svc-mirror is
    // only a Developer left alone.
    let by_path = |p: &str, t: &str| {
        m.plan
            .iter()
            .find(|r| r.cell("project_path") == p && r.cell("mirror_type") == t)
            .expect(p)
            .clone()
    };
    let ui_kit = by_path("vendor/ui-kit", "pull");
    assert_eq!((ui_kit.cell("action"), ui_kit.cell("fixes")), ("update", "mirror-user"));
    assert_eq!(ui_kit.cell("new_auth"), "unchanged");
    let design = by_path("platform/design-system", "push");
    assert_eq!((design.cell("action"), design.cell("diagnosis")), ("update", "rst-stream"));
    let audit = by_path("security/audit-log", "pull");
    assert_eq!(audit.cell("action"), "manual");
    assert!(audit.cell("reason").contains("only a Developer"), "{}", audit.cell("reason"));
}

#[test]
fn on_gitlab_16_the_planned_mirror_user_wins_over_the_callers_quirk() {
    let env = Env::with(|o| o.gitlab_version = Some("16.11.0-ee".into()));
    let m = migrate(&env, &["--source-host", "github.com"]);
    check(&m, &["github.com"], None, true, "demo 16.11");
    // platform/release-notes already runs as svc-mirror: naming the current mirror user on
    // the old API makes the caller the mirror user, and apply must put svc-mirror back.
    let svc = m.after.users.iter().find(|u| u.username == TARGET).expect("svc").id;
    let notes = m.after.project_by_path("platform/release-notes").expect("project");
    let pull = notes.pull.as_deref().expect("pull");
    assert_eq!(pull.mirror_user_id, Some(svc), "the mirror user stays svc-mirror");
    assert_eq!(pull.user.as_deref(), Some(CANARY), "credentials moved");
}

/// A generated instance where svc-mirror is a Developer in every fifth team.
fn generated(version: Option<&str>) -> Env {
    Env::with(|o| {
        o.fixture = glmirror::sim::generate(150, 11);
        o.gitlab_version = version.map(str::to_owned);
        for host in ["github.com", "gitlab.com"] {
            o.remote_accepts.push(RemoteAccept {
                host: host.into(),
                user: Some("svc-bot".into()),
                password: Some(CANARY.into()),
            });
        }
    })
}

const GENERATED_RULES: &[&str] =
    &["--source-host", "github.com", "--source-host", "gitlab.com", "--source-user", "svc-bot"];

#[test]
fn on_a_generated_instance_every_mirror_that_can_move_is_moved() {
    let env = generated(None);
    let m = migrate(&env, GENERATED_RULES);
    check(&m, &["github.com", "gitlab.com"], Some("svc-bot"), false, "generated 17.8");
    assert!(
        m.plan.iter().any(|r| r.cell("reason").contains("only a Developer")),
        "the generated instance has role-refused rows"
    );
    assert!(m.plan.iter().any(|r| r.cell("fixes") == "mirror-user"), "and mirror-user-only rows");
}

#[test]
fn on_a_generated_gitlab_16_every_mirror_that_can_move_is_moved() {
    let env = generated(Some("16.11.0-ee"));
    let m = migrate(&env, GENERATED_RULES);
    check(&m, &["github.com", "gitlab.com"], Some("svc-bot"), true, "generated 16.11");
}
