//! `glmirror apply` end to end against the simulator: the final state equals the plan,
//! resume after SIGKILL, drift, tampered plans, Silent Mode, old GitLab, faults.

use std::process::Output;
use std::time::{Duration, Instant};

use glmirror::sim::{Faults, LoggedRequest, StateSnapshot};

use crate::util::{CANARY, Env, ExitExt as _, Table, text};

/// Plan the demo fixture with github.com as the source host, proving the service token
/// against the git host stand-in (rows it cannot read keep their credentials).
fn plan(env: &Env) {
    let out = env.run(&["plan", "--source-host", "github.com", "--probe", "--out", "plan.csv"]);
    out.ok();
}

/// The plan (or report) `file` in the test directory, read by column name.
fn table(env: &Env, file: &str) -> Table {
    Table::read(env.path(file))
}

/// Whether some row of the report has `outcome`.
fn any_outcome(report: &Table, outcome: &str) -> bool {
    report.rows().iter().any(|r| r.cell("outcome") == outcome)
}

/// Check that the simulator's state matches the plan: update rows as planned, others
/// untouched compared with `before`.
fn assert_state_matches_plan(env: &Env, before: &StateSnapshot) {
    let after = env.sim().snapshot();
    let root_id = after.users.iter().find(|u| u.username == "root").expect("root").id;
    for row in table(env, "plan.csv").rows() {
        let pid = row.number("project_id");
        let (kind, action, new_url) =
            (row.cell("mirror_type"), row.cell("action"), row.cell("new_url"));
        let now = after.project(pid).expect("project");
        let was = before.project(pid).expect("project");
        match (kind, action) {
            ("pull", "update") => {
                let pull = now.pull.as_ref().expect("pull mirror");
                // GitLab keeps the URL without userinfo and the credentials apart.
                let (stored, user) = split_userinfo(new_url);
                assert_eq!(pull.import_url, stored, "project {pid} url");
                if let Some(user) = user {
                    assert_eq!(pull.user.as_deref(), Some(user.as_str()), "project {pid} ssh user");
                }
                if row.cell("new_auth") == "service" {
                    assert_eq!(pull.user.as_deref(), Some(CANARY), "project {pid} user");
                }
                assert_eq!(pull.mirror_user_id, Some(root_id), "project {pid} mirror user");
                let was_pull = was.pull.as_ref().expect("pull mirror");
                assert_eq!(pull.mirror_trigger_builds, was_pull.mirror_trigger_builds);
                assert_eq!(
                    pull.only_mirror_protected_branches,
                    was_pull.only_mirror_protected_branches
                );
                assert_eq!(pull.mirror_branch_regex, was_pull.mirror_branch_regex);
            }
            ("push", "update") => {
                let old = row.number("mirror_id");
                assert!(
                    now.remote_mirrors.iter().all(|m| m.id != old),
                    "old push mirror {old} deleted"
                );
                let replaced: Vec<_> =
                    now.remote_mirrors.iter().filter(|m| m.url == new_url).collect();
                assert_eq!(replaced.len(), 1, "exactly one replacement for {pid}/{old}");
                assert!(replaced[0].enabled, "replacement enabled");
                assert_eq!(
                    now.remote_mirrors.len(),
                    was.remote_mirrors.len(),
                    "same number of push mirrors in {pid}"
                );
            }
            ("pull", _) => {
                let (a, b) = (now.pull.as_ref(), was.pull.as_ref());
                assert_eq!(
                    a.map(|p| (&p.import_url, &p.user, &p.password, p.mirror_user_id)),
                    b.map(|p| (&p.import_url, &p.user, &p.password, p.mirror_user_id)),
                    "{pid} untouched"
                );
            }
            _ => {
                let old = row.number("mirror_id");
                let a = now
                    .remote_mirrors
                    .iter()
                    .find(|m| m.id == old)
                    .map(|m| (&m.url, &m.user, &m.password));
                let b = was
                    .remote_mirrors
                    .iter()
                    .find(|m| m.id == old)
                    .map(|m| (&m.url, &m.user, &m.password));
                assert_eq!(a, b, "push mirror {old} untouched");
            }
        }
    }
}

/// `ssh://git@host/x` → (`ssh://host/x`, Some("git")).
fn split_userinfo(url: &str) -> (String, Option<String>) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => (
            format!("{}{}", &url[..start], &url[start + at + 1..]),
            Some(url[start..start + at].to_owned()),
        ),
        None => (url.to_owned(), None),
    }
}

#[test]
fn plan_then_apply_reaches_the_planned_state() {
    let env = Env::demo();
    plan(&env);
    let before = env.sim().snapshot();
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    out.ok();
    assert_state_matches_plan(&env, &before);
    let report = table(&env, "plan.report.csv");
    assert!(
        report.headers().ends_with(&[
            "outcome".to_owned(),
            "outcome_detail".into(),
            "verified_status".into(),
            "finished_at".into()
        ]),
        "{report:?}"
    );
    assert!(any_outcome(&report, "applied"), "{report:?}");
    assert!(env.path("plan.journal").exists());
    // Rerunning changes nothing: every row is finished in the journal.
    let writes = env.writes().len();
    let again = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    again.ok();
    assert_eq!(env.writes().len(), writes, "a rerun wrote again");
    env.assert_files_clean();
}

#[test]
fn dry_run_writes_nothing_and_reports_dry_run() {
    let env = Env::demo();
    plan(&env);
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--dry-run"]);
    out.ok();
    assert!(env.writes().is_empty(), "dry run wrote: {:?}", env.writes());
    let report = table(&env, "plan.report.csv");
    assert!(any_outcome(&report, "dry-run"), "{report:?}");
    assert!(!env.path("plan.journal").exists(), "a dry run keeps no journal");
}

#[test]
fn apply_without_yes_on_a_pipe_refuses() {
    let env = Env::demo();
    plan(&env);
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com"]);
    out.exit(2);
    assert!(env.writes().is_empty());
    assert!(!env.path("plan.journal").exists(), "a refused run leaves no journal");
}

#[test]
fn drifted_rows_are_not_written() {
    let env = Env::demo();
    plan(&env);
    // Someone changes one planned pull mirror between plan and apply.
    let plan = table(&env, "plan.csv");
    let row = plan.find("a pull update row", |r| {
        r.cell("mirror_type") == "pull" && r.cell("action") == "update"
    });
    let pid = row.cell("project_id").to_owned();
    let url = format!("{}api/v4/projects/{pid}/mirror/pull", env.base_url());
    let admin = env.sim().admin_token().to_owned();
    env.rt.block_on(async {
        let res = reqwest::Client::new()
            .put(url)
            .header("PRIVATE-TOKEN", admin)
            .json(&serde_json::json!({"url": "https://github.com/someone/else.git", "auth_user": "x", "auth_password": "y"}))
            .send()
            .await
            .expect("put");
        assert!(res.status().is_success(), "{:?}", res.text().await);
    });
    let changed = env.sim().snapshot().project(pid.parse().expect("id")).expect("p").pull.clone();
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    out.exit(3);
    let report = table(&env, "plan.report.csv");
    assert!(
        report
            .rows_where("project_id", &pid)
            .iter()
            .any(|r| r.cell("mirror_type") == "pull" && r.cell("outcome") == "drifted"),
        "{report:?}"
    );
    let now = env.sim().snapshot().project(pid.parse().expect("id")).expect("p").pull.clone();
    assert_eq!(now.map(|p| p.import_url), changed.map(|p| p.import_url), "drifted row untouched");
}

#[test]
fn silent_mode_refuses_before_any_write() {
    let env = Env::with(|o| o.fixture.silent_mode = true);
    plan(&env);
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    out.exit(1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Silent Mode"), "{}", text(&out));
    assert!(env.writes().is_empty());
}

#[test]
fn older_gitlab_uses_the_project_api() {
    let env = Env::with(|o| o.gitlab_version = Some("17.4.2-ee".into()));
    plan(&env);
    let before = env.sim().snapshot();
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    out.exit_in(&[0, 3]);
    let writes = env.writes();
    assert!(writes.iter().any(|r| r.method == "PUT" && !r.path.contains("mirror")), "{writes:?}");
    assert!(!writes.iter().any(|r| r.path.ends_with("/mirror/pull") && r.method == "PUT"));
    // Rows GitLab accepted are as planned; the old API may refuse some URLs (422).
    let report = table(&env, "plan.report.csv");
    assert!(any_outcome(&report, "applied"), "{report:?}");
    drop(before);
}

#[test]
fn resume_after_sigkill_applies_every_row_exactly_once() {
    for stall_after in [1u32, 3, 6] {
        let env = Env::demo();
        plan(&env);
        let before = env.sim().snapshot();
        env.sim().set_faults(Faults { write_stall_after: Some(stall_after), ..Faults::default() });
        let mut child = env
            .cmd(&[
                "apply",
                "plan.csv",
                "--source-host",
                "github.com",
                "--yes",
                "--concurrency",
                "2",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        // Wait until the simulator holds a stalled write, then kill -9.
        let deadline = Instant::now() + Duration::from_secs(20);
        while env.writes().len() <= stall_after as usize && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        env.sim().set_faults(Faults::default());
        let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
        out.context(format!("after stall {stall_after}")).ok();
        assert_state_matches_plan(&env, &before);
        // No successful write was repeated: each PUT/POST/DELETE target succeeded once.
        let mut seen = std::collections::HashMap::new();
        for w in env.writes().iter().filter(|w| (200..300).contains(&w.status)) {
            *seen.entry((w.method.clone(), w.path.clone())).or_insert(0) += 1;
        }
        for ((method, path), n) in seen {
            if method == "POST" && path.ends_with("/remote_mirrors") {
                continue; // counted per row by assert_state_matches_plan
            }
            assert_eq!(n, 1, "{method} {path} succeeded {n} times (stall {stall_after})");
        }
        env.assert_files_clean();
    }
}

#[test]
fn faults_and_rate_limits_still_reach_the_planned_state() {
    let env = Env::demo();
    plan(&env);
    let before = env.sim().snapshot();
    env.sim().set_faults(Faults {
        error_rate: 0.1,
        drop_rate: 0.05,
        rate_limit_per_minute: Some(600),
        seed: 7,
        ..Faults::default()
    });
    let mut last = None;
    for _ in 0..4 {
        let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
        let done = out.status.code() == Some(0);
        last = Some(out);
        if done {
            break;
        }
    }
    let out = last.expect("ran");
    out.ok();
    env.sim().set_faults(Faults::default());
    assert_state_matches_plan(&env, &before);
}

/// Rewrite one cell of the plan (by header name) in the given data row (0-based).
fn edit(csv_text: &str, row: usize, column: &str, value: &str) -> String {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    let col = headers.iter().position(|h| h == column).expect("column");
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&headers).expect("write");
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.expect("row");
        let cells: Vec<String> = rec
            .iter()
            .enumerate()
            .map(|(j, c)| if i == row && j == col { value.to_owned() } else { c.to_owned() })
            .collect();
        out.write_record(&cells).expect("write");
    }
    String::from_utf8(out.into_inner().expect("flush")).expect("utf8")
}

#[test]
fn tampered_plans_are_refused_before_any_write() {
    let env = Env::demo();
    plan(&env);
    let good = std::fs::read_to_string(env.path("plan.csv")).expect("plan");
    let rows = table(&env, "plan.csv");
    let update = rows
        .rows()
        .iter()
        .position(|r| r.cell("action") == "update" && r.cell("new_auth") == "service")
        .expect("service row");
    let manual = rows.rows().iter().position(|r| r.cell("action") == "manual").expect("manual row");
    let base = env.base_url();
    let mut dup = good.clone();
    dup.push_str(good.lines().nth(update + 1).expect("line"));
    dup.push('\n');
    let cases: Vec<(&str, String)> = vec![
        ("renamed header", good.replacen("project_id", "projectid", 1)),
        ("duplicate key", dup),
        ("unknown action", edit(&good, update, "action", "delete")),
        ("manual promoted to update", edit(&good, manual, "action", "update")),
        ("unknown fix code", edit(&good, update, "fixes", "service-token;teleport")),
        ("non-numeric id", edit(&good, update, "project_id", "12x")),
        (
            "token sent to another host",
            edit(&good, update, "new_url", "https://evil.example/acme/x.git"),
        ),
        (
            "lookalike host",
            edit(&good, update, "new_url", "https://github.com.evil.example/acme/x.git"),
        ),
        ("another user", edit(&good, update, "new_user", "someone-else")),
        (
            "credentials in new_url",
            edit(&good, update, "new_url", "https://u:p@github.com/acme/x.git"),
        ),
        ("another instance", good.replace(base.trim_end_matches('/'), "https://other.example")),
        ("empty file", String::new()),
        ("unknown auth", edit(&good, update, "new_auth", "root")),
        (
            "service credentials over ssh",
            edit(&good, update, "new_url", "ssh://git@github.com/acme/api-gateway.git"),
        ),
        (
            "service turned into none",
            edit(&edit(&good, update, "new_auth", "none"), update, "new_user", ""),
        ),
        ("another mirror user", edit(&good, update, "new_mirror_user", "mwilson")),
    ];
    for (name, content) in cases {
        std::fs::write(env.path("bad.csv"), content).expect("write");
        let out = env.run(&["apply", "bad.csv", "--source-host", "github.com", "--yes"]);
        out.context(name).exit(2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let at_line = stderr
            .strip_prefix("glmirror: error: bad.csv:")
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
        assert!(at_line, "{name}: the error names FILE:LINE: {stderr}");
        assert!(env.writes().is_empty(), "{name}: wrote {:?}", env.writes());
    }
    // A reviewer may demote update → skip, reorder rows and save with CRLF.
    let demoted = edit(&good, update, "action", "skip").replace('\n', "\r\n");
    std::fs::write(env.path("ok.csv"), demoted).expect("write");
    let out = env.run(&["apply", "ok.csv", "--source-host", "github.com", "--dry-run"]);
    out.ok();
}

/// Run `apply` one row at a time, send it Ctrl-C once its first write reached GitLab (after
/// `at_signal` saw the writes so far), and return how it ended.
fn interrupt_apply(env: &Env, at_signal: impl FnOnce(Vec<LoggedRequest>)) -> Output {
    let child = env
        .cmd(&["apply", "plan.csv", "--source-host", "github.com", "--yes", "--concurrency", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.writes().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    at_signal(env.writes());
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(kill.success());
    child.wait_with_output().expect("wait")
}

#[test]
fn ctrl_c_stops_after_rows_in_flight_and_a_rerun_finishes() {
    let env = Env::demo();
    plan(&env);
    let before = env.sim().snapshot();
    env.sim().set_faults(Faults { latency_ms: 100, ..Faults::default() });
    let out = interrupt_apply(&env, |_| {});
    out.exit(130);
    let report = table(&env, "plan.report.csv");
    assert!(
        report.rows().iter().any(|r| r.cell("outcome_detail").starts_with("not started")),
        "rows after the interrupt were not started: {report:?}"
    );
    env.sim().set_faults(Faults::default());
    let again = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    again.ok();
    assert_state_matches_plan(&env, &before);
}

/// Ctrl-C while a write hangs: the write in flight is not sent again (its outcome is unknown,
/// the row ends `failed` and its intent stays in the journal), the run exits 130 after that
/// one request's timeout, and a rerun finishes every row.
#[test]
fn ctrl_c_during_a_hung_write_sends_nothing_again_and_a_rerun_finishes() {
    let env = Env::demo();
    plan(&env);
    let before = env.sim().snapshot();
    env.sim().set_faults(Faults { write_stall_after: Some(0), ..Faults::default() });
    let mut held = Vec::new();
    let out = interrupt_apply(&env, |writes| held = writes);
    assert_eq!(held.len(), 1, "one write is held: {held:?}");
    out.exit(130);
    let again: Vec<_> = env
        .writes()
        .into_iter()
        .filter(|w| w.method == held[0].method && w.path == held[0].path)
        .collect();
    assert_eq!(again.len(), 1, "the hung write was not sent again after Ctrl-C: {again:?}");
    env.sim().set_faults(Faults::default());
    let rerun = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    rerun.ok();
    assert_state_matches_plan(&env, &before);
}

#[test]
fn a_change_that_looks_like_the_target_is_still_drift() {
    // The planned write only swaps credentials (invisible behind GitLab's mask) and makes
    // root the mirror user. Someone else's change of a flag, made as root, must not pass for
    // "already applied": the credentials were never written.
    let env = Env::demo();
    plan(&env);
    let plan = table(&env, "plan.csv");
    let row = plan.find("a credentials-only row", |r| {
        r.cell("mirror_type") == "pull"
            && r.cell("action") == "update"
            && r.cell("current_url").contains("github.com")
            && r.cell("fixes") == "service-token;mirror-user"
    });
    let pid = row.cell("project_id").to_owned();
    let url = format!("{}api/v4/projects/{pid}/mirror/pull", env.base_url());
    let admin = env.sim().admin_token().to_owned();
    env.rt.block_on(async {
        let res = reqwest::Client::new()
            .put(url)
            .header("PRIVATE-TOKEN", admin)
            .json(&serde_json::json!({"mirror_trigger_builds": true}))
            .send()
            .await
            .expect("put");
        assert!(res.status().is_success(), "{:?}", res.text().await);
    });
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    out.exit(3);
    let report = table(&env, "plan.report.csv");
    let line = report.find("the changed row", |r| {
        r.cell("project_id") == pid && r.cell("mirror_type") == "pull"
    });
    assert_eq!(line.cell("outcome"), "drifted", "{line:?}");
    let now = env.sim().snapshot();
    let pull = now.project(pid.parse().expect("id")).and_then(|p| p.pull.clone()).expect("pull");
    assert_ne!(pull.user.as_deref(), Some(crate::util::CANARY), "nothing was written");
}

/// Run `glmirror ARGS` on a pseudo-terminal (util-linux `script`), typing `answer`.
fn on_a_terminal(env: &Env, args: &[&str], answer: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut cmd = std::process::Command::new("script");
    let command = std::iter::once(env!("CARGO_BIN_EXE_glmirror").to_owned())
        .chain(env.reach(&mut cmd, args))
        .collect::<Vec<_>>()
        .join(" ");
    cmd.args(["-qec", &command, "/dev/null"])
        .current_dir(env.dir.path())
        .env("GITLAB_URL", env.base_url())
        .env("GITLAB_TOKEN", env.sim().admin_token())
        .env("MIRROR_TOKEN", crate::util::CANARY)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for name in crate::util::CLEARED_ENV
        .iter()
        .filter(|n| !["GITLAB_URL", "GITLAB_TOKEN", "MIRROR_TOKEN"].contains(n))
    {
        cmd.env_remove(name);
    }
    let mut running = cmd.spawn().expect("util-linux `script` runs (it gives the pty)");
    running.stdin.take().expect("stdin").write_all(answer.as_bytes()).expect("type");
    running.wait_with_output().expect("waits")
}

#[test]
fn on_a_terminal_apply_asks_and_a_no_changes_nothing() {
    let env = Env::demo();
    plan(&env);
    let out = on_a_terminal(&env, &["apply", "plan.csv", "--source-host", "github.com"], "n\n");
    crate::util::assert_no_canary(&out);
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("Apply these changes? [y/N]"), "{screen}");
    assert!(screen.contains("cancelled: nothing was changed"), "{screen}");
    out.exit(2);
    assert!(env.writes().is_empty());
    assert!(!env.path("plan.journal").exists());

    let out = on_a_terminal(&env, &["apply", "plan.csv", "--source-host", "github.com"], "y\n");
    crate::util::assert_no_canary(&out);
    out.ok();
    assert!(!env.writes().is_empty(), "a yes applies");
}
