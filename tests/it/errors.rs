//! User-facing errors: one `glmirror: error: …` line, a hint where a fix is known, and the
//! documented exit code — never a panic.

use crate::util::{Env, ExitExt as _, Table, text};

/// Run, check the exit code is `code`, and return stderr.
#[track_caller]
fn fails(env: &Env, token: &str, args: &[&str], code: i32) -> String {
    let out = env.cmd(args).env("GITLAB_TOKEN", token).output().expect("runs");
    crate::util::assert_no_canary(&out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{}", text(&out));
    out.exit(code);
    stderr
}

fn assert_error(stderr: &str, message: &str, hint: &str) {
    // Warnings, notes and logged waits (a retry waiting 5 s or more says so) come first.
    let mut lines = stderr.lines().filter(|l| {
        !l.starts_with("warning:") && !l.starts_with("note:") && !l.trim_start().starts_with("WARN")
    });
    let first = lines.next().unwrap_or_default();
    assert!(first.starts_with("glmirror: error: "), "first line is the error: {stderr}");
    assert!(first.contains(message), "error names {message:?}: {stderr}");
    let second = lines.next().unwrap_or_default();
    assert!(
        second.trim_start().starts_with("hint: ") && second.contains(hint),
        "hint {hint:?}: {stderr}"
    );
}

#[test]
fn bad_expired_and_under_scoped_tokens() {
    let env = Env::demo();
    let err = fails(&env, "glpat-not-a-real-token", &["status"], 1);
    assert_error(&err, "401", "token is valid");
    let err = fails(&env, "glsim-demo-expired-000000000000000005", &["status"], 1);
    assert_error(&err, "expired", "not expired");
    // read_api is enough to plan, not to apply.
    let read_only = "glsim-demo-read-0000000000000000000004";
    let out = env
        .cmd(&["plan", "--out", "plan.csv"])
        .env("GITLAB_TOKEN", read_only)
        .output()
        .expect("runs");
    out.ok();
    let err = fails(&env, read_only, &["apply", "plan.csv", "--yes"], 1);
    assert_error(&err, "`api` scope", "`api` scope");
    assert!(env.writes().is_empty());
}

#[test]
fn unreachable_host_and_tls_failures_point_at_url_and_ca_cert() {
    let env = Env::demo();
    let admin = env.sim().admin_token().to_owned();
    // Nothing listens on port 1.
    let err = fails(&env, &admin, &["status", "--gitlab-url", "https://127.0.0.1:1"], 1);
    assert_error(&err, "cannot connect", "--gitlab-url");
    // A plain-HTTP server spoken to over TLS: the handshake fails.
    let https = env.base_url().replacen("http://", "https://", 1);
    let err = fails(&env, &admin, &["status", "--gitlab-url", &https], 1);
    assert_error(&err, "GET /user", "--ca-cert");
    let err = fails(&env, &admin, &["status", "--ca-cert", "Cargo.toml"], 1);
    assert!(err.contains("--ca-cert"), "{err}");
}

#[test]
fn non_admin_cannot_choose_another_mirror_user() {
    let env = Env::demo();
    let maintainer = env.sim().maintainer_token().to_owned();
    let out = env
        .cmd(&["plan", "--source-host", "github.com", "--mirror-user", "svc-mirror", "--out", "-"])
        .env("GITLAB_TOKEN", &maintainer)
        .output()
        .expect("runs");
    out.ok();
    let plan = String::from_utf8_lossy(&out.stdout);
    let rows = Table::parse("plan", plan.as_bytes());
    assert!(
        !rows
            .rows()
            .iter()
            .any(|r| r.cell("mirror_type") == "pull" && r.cell("action") == "update"),
        "{plan}"
    );
    assert!(plan.contains("administrator"), "the reason says why: {plan}");
    // An admin's plan with --mirror-user cannot be applied by the maintainer either.
    let out = env.run(&[
        "plan",
        "--source-host",
        "github.com",
        "--mirror-user",
        "svc-mirror",
        "--out",
        "plan.csv",
    ]);
    out.ok();
    let err =
        fails(&env, &maintainer, &["apply", "plan.csv", "--source-host", "github.com", "--yes"], 2);
    assert!(err.contains("mirror user"), "{err}");
    assert!(env.writes().is_empty());
}

#[test]
fn journal_of_another_plan_and_a_held_lock_are_refused() {
    let env = Env::demo();
    let admin = env.sim().admin_token().to_owned();
    let out = env.run(&["plan", "--source-host", "github.com", "--out", "a.csv"]);
    out.ok();
    let out =
        env.run(&["plan", "--source-host", "github.com", "--mirrors", "pull", "--out", "b.csv"]);
    out.ok();
    // Journals are the point here, not the probe (which fails the unreadable rows).
    let out = env.run(&[
        "apply",
        "a.csv",
        "--source-host",
        "github.com",
        "--yes",
        "--journal",
        "j",
        "--no-probe",
    ]);
    out.ok();
    // A finished journal of another plan is archived (safety.rs: an unfinished one is refused).
    let out =
        env.run(&["apply", "b.csv", "--source-host", "github.com", "--yes", "--journal", "j"]);
    // (b.csv was planned before a.csv was applied: its rows have drifted since.)
    out.exit_in(&[0, 3]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("archived"), "{}", text(&out));
    // A lock file of glmirror 0.1 held by a live process (this test) stops a second apply.
    std::fs::write(env.path("b.journal.lock"), std::process::id().to_string()).expect("lock");
    let err = fails(&env, &admin, &["apply", "b.csv", "--source-host", "github.com", "--yes"], 1);
    assert!(err.contains("lock"), "{err}");
}

#[test]
fn an_unknown_group_names_the_group() {
    let env = Env::demo();
    let admin = env.sim().admin_token().to_owned();
    let err = fails(&env, &admin, &["plan", "--group", "no-such-group", "--out", "-"], 1);
    assert_error(&err, "404", "group not found");
}

#[test]
fn refused_mirror_reads_are_counted_not_hidden() {
    // With "Allow project maintainers to configure repository mirroring" off, a maintainer
    // may not read mirrors: plan warns about the gap, and status does not pass for healthy.
    let env = Env::with(|o| o.fixture.mirror_available = false);
    let maintainer = env.sim().maintainer_token().to_owned();
    let out =
        env.cmd(&["plan", "--out", "-"]).env("GITLAB_TOKEN", &maintainer).output().expect("runs");
    out.ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mirror reads were refused"), "{stderr}");
    let out = env.cmd(&["status"]).env("GITLAB_TOKEN", &maintainer).output().expect("runs");
    out.exit(3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("incomplete"), "{}", text(&out));
}
