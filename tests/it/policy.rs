//! Every mirror that can be moved is moved (docs/plan-format.md, "Which mirrors are moved"):
//! after `plan --mirror-user svc-mirror` and `apply`, every enabled pull mirror of a live
//! project runs as svc-mirror and every token mirror on a source host holds the service
//! credentials — or its row is `manual` for one of the listed reasons (or, on GitLab before
//! 17.6, `failed` because the old API's reachability probe refused the URL). Mirror-user-only
//! rows change nothing but the mirror user, byte for byte; rows left alone are untouched.

use glmirror::sim::fixture::{PullMirror, RemoteMirror};
use glmirror::sim::{RemoteAccept, StateSnapshot};

use glmirror::sim::LoggedRequest;

use crate::util::{CANARY, Env, ExitExt as _, Row, Table, text};

/// The user pull mirrors should run as.
const TARGET: &str = "svc-mirror";

/// Why GitLab would fail every update: the target is below Maintainer (docs/plan-format.md).
const BELOW_MAINTAINER: &str = "of this project, so GitLab would fail every update of this \
     mirror (\"The mirror user is not allowed to push code to all branches on this project\"): \
     make it a Maintainer, or plan without --mirror-user";
/// A URL fix on a host without service credentials would erase the stored ones.
const WOULD_ERASE: &str =
    "that an API write without them would erase: re-enter them in the GitLab UI with the URL ";
/// An SSH push mirror whose URL changes gets a new key pair.
const NEW_KEY_PAIR: &str = "Replacing an SSH push mirror creates a new key pair, which the \
     remote must trust before it can push: change it in the UI and install the new public key.";
/// A Bitbucket Cloud mirror without an owner, on a host without service credentials.
const NO_BITBUCKET_OWNER: &str = "The URL has no username, and the remote asks for one: add \
     it (for Bitbucket Cloud the repository owner, e.g. \
     https://OWNER@bitbucket.org/ACCOUNT/REPO.git; the service-credential rewrite adds one).";

/// Whether a `manual` row has one of the reasons docs/plan-format.md ("Which mirrors are
/// moved") lists, in the exact words glmirror writes: the target below Maintainer, a fix
/// that would erase stored credentials, a Bitbucket owner missing, an SSH push mirror that
/// would get a new key pair, or a URL the rules refuse (then the reason starts with what
/// `glmirror rewrite` says about that URL under the same rules).
fn manual_for_a_listed_reason(env: &Env, row: &Row, rules: &[&str]) -> bool {
    if row.cell("action") != "manual" {
        return false;
    }
    let reason = row.cell("reason");
    let roles =
        ["not a member", "only a Guest", "only a Planner", "only a Reporter", "only a Developer"];
    if roles.iter().any(|r| reason.contains(&format!("{TARGET} is {r} {BELOW_MAINTAINER}"))) {
        return true;
    }
    if reason.contains(WOULD_ERASE) || reason.contains(NEW_KEY_PAIR) {
        return true;
    }
    if reason.starts_with(NO_BITBUCKET_OWNER) && row.cell("current_url").contains("bitbucket.org/")
    {
        return true;
    }
    // The URL rules refuse the URL itself.
    let mut args = vec!["rewrite"];
    args.extend_from_slice(rules);
    args.push(row.cell("current_url"));
    let out = env.run(&args);
    out.ok();
    let said = Table::parse("rewrite", &out.stdout);
    let said = &said.rows()[0];
    said.cell("action") == "manual" && reason.starts_with(said.cell("reason"))
}

/// A pull mirror's flags, everything but its URL, credentials and mirror user.
fn pull_flags(p: &PullMirror) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        p.mirror,
        &p.import_type,
        p.mirror_trigger_builds,
        p.only_mirror_protected_branches,
        p.mirror_overwrites_diverged_branches,
        &p.mirror_branch_regex,
    )
}

/// A push mirror's settings, everything but its id, URL and credentials.
fn push_settings(m: &RemoteMirror) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        m.enabled,
        &m.auth_method,
        m.keep_divergent_refs,
        m.only_protected_branches,
        &m.mirror_branch_regex,
    )
}

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
    let logged = env.sim().request_log().len();
    let out = env.run(&plan);
    out.ok();
    let plan_requests = env.sim().request_log()[logged..].to_vec();
    let plan_rows = rows(env, "plan.csv");
    let mut apply = vec!["apply", "plan.csv", "--yes"];
    apply.extend_from_slice(rules);
    let out = env.run(&apply);
    out.exit_in(&[0, 3]);
    // apply says up front how many mirror updates its writes start.
    let pull_writes = plan_rows
        .iter()
        .filter(|r| r.cell("action") == "update" && r.cell("mirror_type") == "pull")
        .count();
    assert!(pull_writes > 0);
    let want = format!(
        "\n  {pull_writes} pull-mirror write(s): GitLab starts a mirror update on each, at most 4 \
         at a time (--concurrency)\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&want), "{want}\n{}", text(&out));
    env.assert_files_clean();
    Migration {
        plan: plan_rows,
        report: rows(env, "plan.report.csv"),
        before,
        after: env.sim().snapshot(),
        plan_requests,
        rules: rules.iter().map(|r| (*r).to_owned()).collect(),
    }
}

struct Migration {
    plan: Vec<Row>,
    report: Vec<Row>,
    before: StateSnapshot,
    after: StateSnapshot,
    /// What `plan` asked the simulator.
    plan_requests: Vec<LoggedRequest>,
    /// The rule options given to plan and apply.
    rules: Vec<String>,
}

/// The target's role is read with one `members/all` request per project at most, and only for
/// projects with a pull row that would be written (`update`, or `manual` because of that role).
fn check_role_reads(m: &Migration, ctx: &str) {
    let mut per_project: std::collections::BTreeMap<String, usize> = Default::default();
    for r in &m.plan_requests {
        let Some(rest) = r.path.strip_prefix("/api/v4/projects/") else { continue };
        if let Some((id, member)) = rest.split_once("/members/all/") {
            assert!(!member.is_empty() && r.method == "GET", "{r:?}");
            *per_project.entry(id.to_owned()).or_default() += 1;
        }
    }
    assert!(!per_project.is_empty(), "{ctx}: the role was read");
    for (id, n) in &per_project {
        assert_eq!(*n, 1, "{ctx}: project {id}: {n} members/all requests");
        let pull_written = m.plan.iter().any(|r| {
            r.cell("project_id") == id
                && r.cell("mirror_type") == "pull"
                && (r.cell("action") == "update" || r.cell("reason").contains(BELOW_MAINTAINER))
        });
        assert!(pull_written, "{ctx}: project {id}'s role read, but no pull row would be written");
    }
    // And every such project was read: the set of projects is the same.
    let to_write: std::collections::BTreeSet<&str> = m
        .plan
        .iter()
        .filter(|r| {
            r.cell("mirror_type") == "pull"
                && (r.cell("action") == "update" || r.cell("reason").contains(BELOW_MAINTAINER))
        })
        .map(|r| r.cell("project_id"))
        .collect();
    let read: std::collections::BTreeSet<&str> = per_project.keys().map(String::as_str).collect();
    assert_eq!(read, to_write, "{ctx}: projects whose role was read");
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
fn check(
    env: &Env,
    m: &Migration,
    source_hosts: &[&str],
    svc_user: Option<&str>,
    old_api: bool,
    ctx: &str,
) {
    check_role_reads(m, ctx);
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
        let rules: Vec<&str> = m.rules.iter().map(String::as_str).collect();
        let manual_ok = || manual_for_a_listed_reason(env, row, &rules);
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
                assert!(manual_ok() || refused_by_old_api, "{case}: mirror user not moved");
            }
            if row.cell("action") == "update" && row.cell("fixes") == "mirror-user" {
                assert_eq!(
                    (&n.import_url, &n.user, &n.password),
                    (&w.import_url, &w.user, &w.password),
                    "{case}: a mirror-user-only row keeps URL and credentials byte for byte"
                );
            }
            if row.cell("action") == "update" && !refused_by_old_api {
                // Every update row keeps every flag (apply restores what GitLab changed).
                assert_eq!(pull_flags(n), pull_flags(w), "{case}: flags kept");
            }
            if token_url_on(&w.import_url, source_hosts) {
                if stored_service(&n.user, &n.password, svc_user) {
                    moved_creds += 1;
                } else {
                    assert!(
                        manual_ok() || refused_by_old_api || kept_by_probe,
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
            if report.cell("outcome") == "applied" {
                // The replacement keeps the old mirror's settings, and the old one is gone.
                let new = now
                    .remote_mirrors
                    .iter()
                    .find(|x| x.url == row.cell("new_url") && x.id != old)
                    .unwrap_or_else(|| panic!("{case}: no replacement"));
                assert_eq!(push_settings(new), push_settings(w), "{case}: settings kept");
                assert!(now.remote_mirrors.iter().all(|x| x.id != old), "{case}: old one deleted");
            } else {
                assert!(now.remote_mirrors.iter().any(|x| x.id == old), "{case}: old one kept");
            }
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
                    manual_ok() || refused_by_old_api || kept_by_probe,
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
    check(&env, &m, &["github.com"], None, false, "demo 17.8");
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
    check(&env, &m, &["github.com"], None, true, "demo 16.11");
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
    check(&env, &m, &["github.com", "gitlab.com"], Some("svc-bot"), false, "generated 17.8");
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
    check(&env, &m, &["github.com", "gitlab.com"], Some("svc-bot"), true, "generated 16.11");
}

/// With "Allow project maintainers to configure repository mirroring" off, GitLab refuses a
/// mirror write made as a user who is not an administrator ("Access Denied"): with a
/// non-admin `--mirror-user` every pull row that would be written is `manual` and says so,
/// push rows (written as the caller) still move, and apply writes no pull mirror.
#[test]
fn with_mirror_available_off_a_non_admin_target_keeps_pull_rows_manual() {
    let env = Env::with(|o| o.fixture.mirror_available = false);
    let before = env.sim().snapshot();
    let plan = ["plan", "--source-host", "github.com", "--mirror-user", TARGET, "--out", "p.csv"];
    env.run(&plan).ok();
    let rows = rows(&env, "p.csv");
    let refused = format!(
        "the instance setting \"Allow project maintainers to configure repository mirroring\" is \
         off, so GitLab refuses a mirror write made as {TARGET} (not an administrator) with \
         \"Access Denied\": turn the setting on (Admin > Settings > Repository), make {TARGET} \
         an administrator, or plan without --mirror-user"
    );
    let pull = |r: &&Row| r.cell("mirror_type") == "pull";
    assert!(rows.iter().filter(pull).all(|r| r.cell("action") != "update"), "no pull update");
    let manual = rows.iter().filter(pull).filter(|r| r.cell("action") == "manual").count();
    let said = rows.iter().filter(pull).filter(|r| r.cell("reason").contains(&refused)).count();
    assert!(said >= 20, "{said} pull rows name the setting");
    assert_eq!(said, manual, "every manual pull row names the setting");
    assert!(
        rows.iter().any(|r| r.cell("mirror_type") == "push" && r.cell("action") == "update"),
        "push mirrors are written by the caller and still move"
    );
    let out = env.run(&["apply", "p.csv", "--yes", "--source-host", "github.com"]);
    out.exit_in(&[0, 3]);
    assert!(!text(&out).contains("pull-mirror write(s)"), "{}", text(&out));
    let after = env.sim().snapshot();
    for p in &after.projects {
        let was = before.project(p.project.id).expect("project");
        assert_eq!(
            p.project.pull.as_deref().map(|x| (&x.import_url, &x.user, x.mirror_user_id)),
            was.pull.as_deref().map(|x| (&x.import_url, &x.user, x.mirror_user_id)),
            "{}: pull mirror untouched",
            p.project.path
        );
    }
}
