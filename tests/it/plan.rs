//! `glmirror plan` and `glmirror status` against the simulator: the golden plan of the demo
//! fixture, no write requests, scope options, and the health report's exit codes.

use crate::util::{Env, ExitExt as _, Table};

/// The committed golden plan for the demo fixture with `--source-host github.com`.
const GOLDEN: &str = "fixtures/golden/demo-plan.csv";

/// The simulator listens on a random port: put a fixed origin in its place.
fn normalize(csv: &str, env: &Env) -> String {
    csv.replace(env.base_url().trim_end_matches('/'), "http://gitlab.test")
}

#[test]
fn demo_plan_matches_the_golden_file_and_writes_nothing() {
    let env = Env::demo();
    let out = env.run(&["plan", "--source-host", "github.com", "--out", "plan.csv"]);
    out.ok();
    let plan = std::fs::read_to_string(env.path("plan.csv")).expect("plan written");
    let got = normalize(&plan, &env);
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("GLMIRROR_BLESS").is_some() {
        std::fs::write(&golden, &got).expect("bless golden");
    }
    let want = std::fs::read_to_string(&golden).expect("golden file exists");
    assert!(
        got == want,
        "plan differs from {GOLDEN} (rerun with GLMIRROR_BLESS=1 to update)\n{got}"
    );
    assert!(env.writes().is_empty(), "plan wrote to GitLab: {:?}", env.writes());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("actions:"), "summary on stderr: {stderr}");
    env.assert_files_clean();
}

/// The second golden plan: with `--mirror-user svc-mirror`, healthy mirrors on hosts without
/// service credentials become mirror-user-only rows, and projects where svc-mirror is below
/// Maintainer stay `manual`.
const GOLDEN_MIRROR_USER: &str = "fixtures/golden/demo-plan-mirror-user.csv";

#[test]
fn demo_plan_with_mirror_user_matches_its_golden_file() {
    let env = Env::demo();
    let args = ["plan", "--source-host", "github.com", "--mirror-user", "svc-mirror", "--out", "-"];
    let out = env.run(&args);
    out.ok();
    let got = normalize(&String::from_utf8_lossy(&out.stdout), &env);
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN_MIRROR_USER);
    if std::env::var_os("GLMIRROR_BLESS").is_some() {
        std::fs::write(&golden, &got).expect("bless golden");
    }
    let want = std::fs::read_to_string(&golden).expect("golden file exists");
    assert!(got == want, "plan differs from {GOLDEN_MIRROR_USER} (GLMIRROR_BLESS=1)\n{got}");
    // It covers both new kinds of row.
    let plan = Table::parse("plan", &got);
    assert!(
        plan.rows().iter().any(|r| r.cell("new_auth") == "unchanged"
            && r.cell("new_mirror_user") == "svc-mirror"
            && r.cell("fixes") == "mirror-user"),
        "{got}"
    );
    let reasons = plan.column("reason");
    assert!(reasons.iter().any(|r| r.contains("svc-mirror is only a Developer of this project")));
    assert!(reasons.iter().any(|r| r.contains("svc-mirror is not a member of this project")));
    assert!(env.writes().is_empty(), "plan wrote to GitLab: {:?}", env.writes());
}

#[test]
fn plan_to_stdout_keeps_stdout_for_data() {
    let env = Env::demo();
    let out = env.run(&["plan", "--source-host", "github.com", "--out", "-", "--mirrors", "pull"]);
    out.ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("project_id,project_path,web_url,mirror_type,"), "{stdout}");
    let plan = Table::parse("stdout", stdout.as_bytes());
    assert!(!plan.rows().is_empty(), "{stdout}");
    assert!(
        plan.column("mirror_type").iter().all(|t| *t == "pull"),
        "--mirrors pull lists no push mirror"
    );
    assert!(!stdout.contains("glmirror plan:"), "summary must not be on stdout");
}

#[test]
fn group_and_project_scopes_list_each_project_once() {
    let env = Env::demo();
    let out = env.run(&["plan", "--group", "platform", "--project", "vendor/ui-kit", "--out", "-"]);
    out.ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let plan = Table::parse("stdout", stdout.as_bytes());
    let mut keys: Vec<String> = plan
        .rows()
        .iter()
        .map(|r| {
            format!("{}/{}/{}", r.cell("project_id"), r.cell("mirror_type"), r.cell("mirror_id"))
        })
        .collect();
    let before = keys.len();
    keys.sort();
    keys.dedup();
    assert!(before > 0, "the platform group has mirrors: {stdout}");
    assert_eq!(before, keys.len(), "a project listed twice: {stdout}");
    let paths = plan.column("project_path");
    assert!(
        paths.iter().all(|p| p.starts_with("platform/") || *p == "vendor/ui-kit"),
        "only the scope's projects: {stdout}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("platform/infra/")),
        "subgroups are included: {stdout}"
    );
}

#[test]
fn non_admin_plans_only_what_it_maintains() {
    let env = Env::demo();
    let maintainer = env.sim().maintainer_token().to_owned();
    let out =
        env.cmd(&["plan", "--out", "-"]).env("GITLAB_TOKEN", maintainer).output().expect("runs");
    out.ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not an administrator"), "{stderr}");
    let admin = env.run(&["plan", "--out", "-"]);
    assert!(out.stdout.len() < admin.stdout.len(), "a maintainer sees fewer mirrors than an admin");
}

#[test]
fn status_reports_unhealthy_mirrors_with_exit_3() {
    let env = Env::demo();
    for format in ["table", "csv", "json"] {
        let out = env.run(&["status", "--format", format]);
        out.exit(3);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("unhealthy"), "{format}: {stdout}");
    }
    let out = env.run(&["status", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(rows.as_array().is_some_and(|a| !a.is_empty()));
    assert!(env.writes().is_empty(), "status wrote to GitLab");
}

#[test]
fn missing_url_or_token_is_a_usage_error() {
    let out = crate::util::glmirror().args(["plan"]).output().expect("runs");
    out.exit(2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("glmirror: error: no GitLab URL"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn include_archived_and_prefer_https_change_the_plan() {
    let env = Env::demo();
    let row_of = |plan: &Table, path: &str| -> crate::util::Row {
        plan.find(&format!("the pull row of {path}"), |r| {
            r.cell("project_path") == path && r.cell("mirror_type") == "pull"
        })
        .clone()
    };
    let default = env.run(&["plan", "--source-host", "github.com", "--out", "-"]);
    let default = Table::parse("stdout", &default.stdout);
    assert_eq!(row_of(&default, "archive/old-website").cell("action"), "skip");
    assert!(
        row_of(&default, "platform/infra/deploy-scripts").cell("new_url").starts_with("ssh://")
    );

    let out = env.run(&[
        "plan",
        "--source-host",
        "github.com",
        "--include-archived",
        "--prefer-https",
        "--out",
        "-",
    ]);
    out.ok();
    let plan = Table::parse("stdout", &out.stdout);
    assert_eq!(
        row_of(&plan, "archive/old-website").cell("action"),
        "update",
        "archived projects planned"
    );
    let ssh = row_of(&plan, "platform/infra/deploy-scripts");
    assert_eq!(ssh.cell("new_url"), "https://github.com/acme/deploy-scripts.git", "{ssh:?}");
    let fixes = ssh.cell("fixes");
    assert!(fixes.contains("ssh-to-https") || fixes.contains("scp-to-ssh"), "{ssh:?}");
    assert_eq!(ssh.cell("new_auth"), "service");
}
