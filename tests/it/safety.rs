//! `apply` never cross-wires, duplicates or hides damage: edited plans (a shifted `new_url`
//! column, edited descriptive columns), concurrent runs of one plan (another journal, a
//! symlinked journal, a push mirror made after planning), failed verification, bad file
//! paths and oversized files, token rotation as the README describes it, and the order of the
//! start-up steps.

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use glmirror::sim::{Faults, RemoteAccept};

use crate::util::{CANARY, Env, ExitExt as _, Table, glmirror, text};

/// The rules that make the demo's push mirrors (on github.com and gitlab.com) `update` rows.
const PUSH_RULES: &[&str] =
    &["--source-host", "github.com", "--source-host", "gitlab.com", "--source-user", "oauth2"];

/// Plan with `--probe` (as the README does), so the rows the service account cannot read
/// keep their credentials and `apply`'s own probes pass.
fn plan_with(env: &Env, rules: &[&str]) {
    let mut args = vec!["plan", "--probe", "--out", "plan.csv"];
    args.extend_from_slice(rules);
    let out = env.run(&args);
    out.ok();
}

fn plan(env: &Env) {
    plan_with(env, &["--source-host", "github.com"]);
}

/// The demo instance where gitlab.com also takes the service token (user `oauth2`), for
/// [`PUSH_RULES`].
fn push_env() -> Env {
    Env::with(|o| {
        o.remote_accepts.push(RemoteAccept {
            host: "gitlab.com".into(),
            user: Some("oauth2".into()),
            password: Some(CANARY.into()),
        })
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The plan's header and records.
fn read_csv(text: &str) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    (headers, reader.records().map(|r| r.expect("row")).collect())
}

fn col(headers: &csv::StringRecord, name: &str) -> usize {
    headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"))
}

fn write_csv(headers: &csv::StringRecord, rows: &[csv::StringRecord]) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(headers).expect("write");
    for r in rows {
        out.write_record(r).expect("write");
    }
    String::from_utf8(out.into_inner().expect("flush")).expect("utf8")
}

/// Set one cell of a record.
fn set(rec: &csv::StringRecord, at: usize, value: &str) -> csv::StringRecord {
    rec.iter().enumerate().map(|(i, c)| if i == at { value } else { c }).collect()
}

/// The report's rows by (project_id, mirror_type), as column → value maps.
fn report(env: &Env, name: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(env.path(name)).expect("report");
    let (headers, rows) = read_csv(&text);
    rows.iter()
        .map(|r| headers.iter().zip(r.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect())
        .collect()
}

/// Wait for a child, killing it after `limit`.
fn wait_with_timeout(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("glmirror did not finish within {limit:?}: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("wait")
}

// ---------------------------------------------------------------------------------------
// Edited plans
// ---------------------------------------------------------------------------------------

#[test]
fn a_shifted_new_url_column_is_refused_without_the_flag_and_fully_listed_with_it() {
    let env = Env::demo();
    plan(&env);
    let good = std::fs::read_to_string(env.path("plan.csv")).expect("plan");
    let (headers, rows) = read_csv(&good);
    let (action, auth, url, fixes, path) = (
        col(&headers, "action"),
        col(&headers, "new_auth"),
        col(&headers, "new_url"),
        col(&headers, "fixes"),
        col(&headers, "project_path"),
    );
    // The service rows' URLs, pasted one row off (the last wraps around to the first).
    let shifted: Vec<usize> = (0..rows.len())
        .filter(|&i| &rows[i][action] == "update" && &rows[i][auth] == "service")
        .filter(|&i| rows[i][fixes].contains("service-token"))
        .collect();
    assert!(shifted.len() >= 10, "{shifted:?}");
    let mut edited = rows.clone();
    for (n, &i) in shifted.iter().enumerate() {
        let from = shifted[(n + shifted.len() - 1) % shifted.len()];
        edited[i] = set(&rows[i], url, &rows[from][url]);
    }
    std::fs::write(env.path("plan.csv"), write_csv(&headers, &edited)).expect("write");
    // Two rows may share a URL: only rows that now hold another one count as edited.
    let changed: Vec<usize> =
        shifted.iter().copied().filter(|&i| edited[i][url] != rows[i][url]).collect();
    assert!(changed.len() >= 10, "{changed:?}");
    let count = format!("{} rows have an edited new_url", changed.len());

    for extra in [&["--yes"][..], &["--dry-run"][..]] {
        let mut args = vec!["apply", "plan.csv", "--source-host", "github.com"];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        out.context(format!("{extra:?}")).exit(2);
        let err = stderr(&out);
        assert!(err.contains(&count), "{extra:?}: {err}");
        assert!(err.contains("--accept-edited-urls"), "{err}");
        assert!(env.writes().is_empty(), "{:?}", env.writes());
        assert!(!env.path("plan.journal").exists());
    }

    // With the flag: every edited row is listed (project → planned → in the file), in the
    // dry run and in the confirmation, and marked in the report.
    for extra in [&["--dry-run"][..], &["--yes"][..]] {
        let mut args = vec!["apply", "plan.csv", "--source-host", "github.com"];
        args.extend_from_slice(extra);
        args.push("--accept-edited-urls");
        let out = env.run(&args);
        out.context(format!("{extra:?}")).exit_in(&[0, 3]);
        let err = stderr(&out);
        assert!(err.contains(&count), "{err}");
        assert!(err.contains("repository path"), "path changes are named: {err}");
        for &i in &changed {
            let line = format!("{} → {} → {}", &rows[i][path], &rows[i][url], &edited[i][url]);
            assert!(err.contains(&line), "{extra:?}: `{line}` not listed in:\n{err}");
        }
        let report = report(&env, "plan.report.csv");
        let marked =
            report.iter().filter(|r| r["outcome_detail"].contains("edited new_url")).count();
        assert_eq!(marked, changed.len(), "{report:#?}");
    }
}

#[test]
fn an_edit_that_moves_new_url_to_another_host_is_named_as_such() {
    let env = Env::demo();
    plan(&env);
    let good = std::fs::read_to_string(env.path("plan.csv")).expect("plan");
    let (headers, rows) = read_csv(&good);
    let (action, auth, url) =
        (col(&headers, "action"), col(&headers, "new_auth"), col(&headers, "new_url"));
    let i = rows
        .iter()
        .position(|r| &r[action] == "update" && &r[auth] == "none")
        .expect("an update row without credentials");
    let moved = rows[i][url].replace("git.example.org", "git.elsewhere.example");
    let mut edited = rows.clone();
    edited[i] = set(&rows[i], url, &moved);
    std::fs::write(env.path("plan.csv"), write_csv(&headers, &edited)).expect("write");
    let out = env.run(&[
        "apply",
        "plan.csv",
        "--source-host",
        "github.com",
        "--dry-run",
        "--accept-edited-urls",
    ]);
    out.ok();
    let err = stderr(&out);
    assert!(err.contains("1 row has an edited new_url"), "{err}");
    assert!(err.contains("another host"), "{err}");
    assert!(err.contains(&moved), "{err}");
}

#[test]
fn an_edited_descriptive_column_is_refused_and_reason_stays_editable() {
    let env = Env::demo();
    plan(&env);
    let good = std::fs::read_to_string(env.path("plan.csv")).expect("plan");
    let (headers, rows) = read_csv(&good);
    let c = |name| col(&headers, name);
    let i = rows
        .iter()
        .position(|r| &r[c("project_path")] == "platform/analytics")
        .expect("platform/analytics");
    let row = &rows[i];
    let line = i + 2;
    // Dress the row up as another project: path and web_url together still fit each other.
    let as_other = set(
        &set(row, c("project_path"), "platform/billing"),
        c("web_url"),
        &row[c("web_url")].replace("platform/analytics", "platform/billing"),
    );
    let cases: Vec<(&str, csv::StringRecord)> = vec![
        ("project_path", as_other),
        ("current_url", set(row, c("current_url"), "https://*****:*****@github.com/acme/x.git")),
        ("current_auth", set(row, c("current_auth"), "user")),
        ("current_mirror_user", set(row, c("current_mirror_user"), "someone")),
        ("update_status", set(row, c("update_status"), "finished")),
        ("last_error", set(row, c("last_error"), "")),
        ("diagnosis", set(row, c("diagnosis"), "stuck")),
        ("fixes", set(row, c("fixes"), "service-token")),
    ];
    for (column, edited_row) in cases {
        let mut edited = rows.clone();
        edited[i] = edited_row;
        std::fs::write(env.path("bad.csv"), write_csv(&headers, &edited)).expect("write");
        let out = env.run(&["apply", "bad.csv", "--source-host", "github.com", "--yes"]);
        out.context(column).exit(2);
        let err = stderr(&out);
        assert!(err.starts_with(&format!("glmirror: error: bad.csv:{line}: ")), "{column}: {err}");
        assert!(err.contains(column), "{column} is named: {err}");
        assert!(env.writes().is_empty(), "{column}: wrote {:?}", env.writes());
    }
    // `reason` may be edited.
    let mut edited = rows.clone();
    edited[i] = set(row, c("reason"), "checked by Alice: fine");
    std::fs::write(env.path("ok.csv"), write_csv(&headers, &edited)).expect("write");
    let out = env.run(&["apply", "ok.csv", "--source-host", "github.com", "--dry-run"]);
    out.ok();
}

// ---------------------------------------------------------------------------------------
// One run per plan
// ---------------------------------------------------------------------------------------

/// For every push `update` row of plan.csv: how many push mirrors of its project have its
/// `new_url`.
fn replacements(env: &Env) -> Vec<(u64, String, usize)> {
    let plan = Table::read(env.path("plan.csv"));
    let now = env.sim().snapshot();
    plan.rows()
        .iter()
        .filter(|r| r.cell("mirror_type") == "push" && r.cell("action") == "update")
        .map(|r| {
            let pid = r.number("project_id");
            let url = r.cell("new_url").to_owned();
            let n = now
                .project(pid)
                .expect("project")
                .remote_mirrors
                .iter()
                .filter(|m| m.url == url)
                .count();
            (pid, url, n)
        })
        .collect()
}

fn assert_no_duplicates(env: &Env) {
    let found = replacements(env);
    assert!(!found.is_empty(), "the plan has push update rows");
    for (pid, url, n) in found {
        assert!(n <= 1, "project {pid} has {n} push mirrors to {url}");
    }
}

fn spawn_apply(env: &Env, extra: &[&str], runtime_dir: Option<&Path>) -> Child {
    let mut args = vec!["apply", "plan.csv", "--yes"];
    args.extend_from_slice(PUSH_RULES);
    args.extend_from_slice(extra);
    let mut cmd = env.cmd(&args);
    if let Some(dir) = runtime_dir {
        cmd.env("XDG_RUNTIME_DIR", dir);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn")
}

/// Two applies of plan.csv at once (journals a/b, reports a/b), with slow requests so both
/// are in flight together; with `own_lock_dirs`, each has its own runtime directory (two
/// shells, users or machines), so no run lock keeps them apart.
fn two_slow_runs(env: &Env, own_lock_dirs: bool) -> (Output, Output) {
    let dirs = own_lock_dirs.then(|| {
        let (ra, rb) = (env.path("run-a"), env.path("run-b"));
        for d in [&ra, &rb] {
            std::fs::create_dir(d).expect("mkdir");
        }
        (ra, rb)
    });
    env.sim().set_faults(Faults { latency_ms: 150, ..Faults::default() });
    let (da, db) = match &dirs {
        Some((ra, rb)) => (Some(ra.as_path()), Some(rb.as_path())),
        None => (None, None),
    };
    let a = spawn_apply(env, &["--journal", "a.journal", "--report", "a.csv"], da);
    let b = spawn_apply(env, &["--journal", "b.journal", "--report", "b.csv"], db);
    let runs = (
        wait_with_timeout(a, Duration::from_secs(180)),
        wait_with_timeout(b, Duration::from_secs(180)),
    );
    env.sim().set_faults(Faults::default());
    runs
}

#[test]
fn two_concurrent_runs_of_one_plan_with_two_journals_leave_no_duplicate_push_mirror() {
    let env = push_env();
    plan_with(&env, PUSH_RULES);
    // Both in flight together would see every old push mirror before either replaced it.
    let (a, b) = two_slow_runs(&env, false);
    assert_no_duplicates(&env);
    // One run finishes; the other is refused.
    let (done, refused) = if a.status.code() == Some(0) { (&a, &b) } else { (&b, &a) };
    done.context(format!("one run finishes; the other:\n{}", text(refused))).ok();
    assert!(stderr(refused).contains("another glmirror is applying the rows"), "{}", text(refused));
    assert!(
        !stderr(refused).contains("to update on"),
        "refused before confirming: {}",
        text(refused)
    );
}

/// The run lock is the rows on the instance, not the plan's bytes or the URL as typed: a copy
/// of the plan saved with CRLF line endings, applied with `localhost` for `127.0.0.1`, meets
/// the same lock.
#[test]
fn a_crlf_copy_of_the_plan_run_against_another_spelling_of_the_url_meets_the_same_lock() {
    let env = push_env();
    plan_with(&env, PUSH_RULES);
    let plan = std::fs::read_to_string(env.path("plan.csv")).expect("plan");
    std::fs::write(env.path("copy.csv"), plan.replace('\n', "\r\n")).expect("copy");
    let other_url = env.base_url().replace("127.0.0.1", "localhost");
    assert_ne!(other_url, env.base_url(), "the simulator listens on 127.0.0.1");
    env.sim().set_faults(Faults { latency_ms: 150, ..Faults::default() });
    let a = spawn_apply(&env, &["--journal", "a.journal", "--report", "a.csv"], None);
    let mut args = vec!["apply", "copy.csv", "--yes"];
    args.extend_from_slice(PUSH_RULES);
    args.extend_from_slice(&["--journal", "b.journal", "--report", "b.csv"]);
    let b = env
        .cmd(&args)
        .env("GITLAB_URL", &other_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (a, b) = (
        wait_with_timeout(a, Duration::from_secs(120)),
        wait_with_timeout(b, Duration::from_secs(120)),
    );
    env.sim().set_faults(Faults::default());
    assert_no_duplicates(&env);
    let (done, refused) = if a.status.code() == Some(0) { (&a, &b) } else { (&b, &a) };
    done.context(format!("one run finishes; the other:\n{}", text(refused))).ok();
    assert!(stderr(refused).contains("another glmirror is applying the rows"), "{}", text(refused));
}

/// Two runs no lock keeps apart (two lock directories, two journals: two users, or two
/// machines): each looks again after its create and keeps the lower id, so every push row
/// ends with exactly one replacement and the old mirror gone.
#[test]
fn two_runs_no_lock_separates_leave_exactly_one_replacement_per_mirror() {
    let env = push_env();
    plan_with(&env, PUSH_RULES);
    let (a, b) = two_slow_runs(&env, true);
    for out in [&a, &b] {
        out.exit_in(&[0, 3]);
    }
    let found = replacements(&env);
    assert!(!found.is_empty(), "the plan has push update rows");
    for (pid, url, n) in &found {
        assert_eq!(*n, 1, "project {pid} has {n} push mirrors to {url}");
    }
    // Every old mirror is gone: one run replaced it, the other found it done or lost the race.
    let plan = Table::read(env.path("plan.csv"));
    let now = env.sim().snapshot();
    for r in plan
        .rows()
        .iter()
        .filter(|r| r.cell("mirror_type") == "push" && r.cell("action") == "update")
    {
        let (pid, old) = (r.number("project_id"), r.number("mirror_id"));
        let left = now.project(pid).expect("project").remote_mirrors.iter().any(|m| m.id == old);
        assert!(!left, "project {pid}: old push mirror {old} is still there");
    }
}

#[test]
fn a_symlinked_journal_is_locked_as_the_same_file() {
    let env = push_env();
    plan_with(&env, PUSH_RULES);
    std::os::unix::fs::symlink("a.journal", env.path("b.journal")).expect("symlink");
    // Two lock directories (two shells with their own runtime directories): only the lock
    // on the journal file itself keeps the second run away.
    let (a, b) = two_slow_runs(&env, true);
    assert_no_duplicates(&env);
    let (done, other) = if a.status.code() == Some(0) { (&a, &b) } else { (&b, &a) };
    done.context(format!("one run finishes; the other:\n{}", text(other))).ok();
}

#[test]
fn a_push_mirror_to_the_target_made_after_planning_makes_the_row_drifted() {
    let env = push_env();
    plan_with(&env, PUSH_RULES);
    let (pid, url, _) = replacements(&env).into_iter().next().expect("a push update row");
    // Another run (on another machine) already made the replacement.
    let api = format!("{}api/v4/projects/{pid}/remote_mirrors", env.base_url());
    let admin = env.sim().admin_token().to_owned();
    env.rt.block_on(async {
        let res = reqwest::Client::new()
            .post(api)
            .header("PRIVATE-TOKEN", admin)
            .json(&serde_json::json!({"url": url, "enabled": true}))
            .send()
            .await
            .expect("post");
        assert!(res.status().is_success(), "{:?}", res.text().await);
    });
    let ids = |env: &Env| -> Vec<u64> {
        let now = env.sim().snapshot();
        now.project(pid).expect("project").remote_mirrors.iter().map(|m| m.id).collect()
    };
    let before = ids(&env);
    let mut args = vec!["apply", "plan.csv", "--yes"];
    args.extend_from_slice(PUSH_RULES);
    let out = env.run(&args);
    out.exit(3);
    assert_eq!(ids(&env), before, "no push mirror of project {pid} created or deleted");
    let rows = report(&env, "plan.report.csv");
    let row = rows
        .iter()
        .find(|r| r["project_id"] == pid.to_string() && r["mirror_type"] == "push")
        .expect("row");
    assert_eq!(row["outcome"], "drifted", "{row:?}");
    assert!(row["outcome_detail"].contains("appeared after planning"), "{row:?}");
}

#[test]
fn a_second_apply_of_a_running_plan_fails_on_the_lock_before_confirming() {
    let env = Env::demo();
    plan(&env);
    env.sim().set_faults(Faults { latency_ms: 200, ..Faults::default() });
    let planned = env.sim().request_log().len();
    let first = env
        .cmd(&["apply", "plan.csv", "--source-host", "github.com", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Once the first run talks to GitLab, it holds the lock.
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.sim().request_log().len() == planned && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    let first = wait_with_timeout(first, Duration::from_secs(120));
    env.sim().set_faults(Faults::default());
    first.ok();
    second.exit(1);
    let err = stderr(&second);
    assert!(err.contains("another glmirror is applying the rows"), "{err}");
    assert!(!err.contains("to update on"), "no confirmation before the lock: {err}");
}

// ---------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------

#[test]
fn a_wrong_service_token_with_verify_exits_3_and_is_counted() {
    let env = Env::demo();
    plan(&env);
    let out = env
        .cmd(&["apply", "plan.csv", "--source-host", "github.com", "--yes", "--verify"])
        // The token watch would refuse a wrong token before any write (tests/it/probing.rs);
        // here this machine "cannot reach" github.com, so the write goes ahead unproven.
        .args(["--verify-timeout", "30", "--no-probe-host", "github.com"])
        .env("MIRROR_TOKEN", "ghp_wrong0token0for0this0test0000000000")
        .output()
        .expect("runs");
    out.exit(3);
    let err = stderr(&out);
    let line = err.lines().find(|l| l.contains("verified: finished ")).unwrap_or_else(|| {
        panic!("no verification summary: {err}");
    });
    let numbers: Vec<usize> =
        line.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok()).collect();
    assert!(numbers.len() >= 3 && numbers[1] > 0, "{line}");
    assert!(line.contains("failed") && line.contains("timed out"), "{line}");
}

#[test]
fn a_verify_timeout_fails_the_run_except_on_a_row_diagnosed_stuck() {
    // Mirror updates take longer than --verify-timeout.
    let env = Env::with(|o| o.update_delay_ms = 20_000);
    plan(&env);
    let good = std::fs::read_to_string(env.path("plan.csv")).expect("plan");
    let (headers, rows) = read_csv(&good);
    let (path, diagnosis) = (col(&headers, "project_path"), col(&headers, "diagnosis"));
    let only = |name: &str| {
        let kept: Vec<_> = rows.iter().filter(|r| &r[path] == name).cloned().collect();
        assert_eq!(kept.len(), 1, "{name}");
        write_csv(&headers, &kept)
    };
    let stuck =
        rows.iter().find(|r| &r[diagnosis] == "stuck").expect("a stuck row")[path].to_owned();
    for (name, want) in [(stuck.as_str(), 0), ("platform/analytics", 3)] {
        std::fs::write(env.path("one.csv"), only(name)).expect("write");
        let out = env.run(&[
            "apply",
            "one.csv",
            "--source-host",
            "github.com",
            "--yes",
            "--verify",
            "--verify-timeout",
            "1",
        ]);
        out.context(name).exit(want);
        assert!(stderr(&out).contains("timed out 1"), "{name}: {}", text(&out));
    }
}

// ---------------------------------------------------------------------------------------
// Paths and sizes
// ---------------------------------------------------------------------------------------

#[test]
fn bad_report_and_journal_paths_are_refused_before_any_write() {
    let env = Env::demo();
    plan(&env);
    let plan_bytes = std::fs::read(env.path("plan.csv")).expect("plan");
    std::os::unix::fs::symlink("plan.csv", env.path("link.csv")).expect("symlink");
    let fifo = env.path("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("report in a missing directory", vec!["--report", "missing/report.csv"]),
        ("report under a file", vec!["--report", "plan.csv/report.csv"]),
        ("report is the plan", vec!["--report", "plan.csv"]),
        ("report is a symlink to the plan", vec!["--report", "link.csv"]),
        ("report is the journal", vec!["--report", "j.journal", "--journal", "j.journal"]),
        ("journal is the plan", vec!["--journal", "link.csv"]),
        ("report is a FIFO", vec!["--report", "fifo"]),
        ("journal is a FIFO", vec!["--journal", "fifo"]),
        ("report is a device", vec!["--report", "/dev/null"]),
        ("journal is a device", vec!["--journal", "/dev/null"]),
    ];
    for (what, extra) in cases {
        let mut args = vec!["apply", "plan.csv", "--source-host", "github.com", "--yes"];
        args.extend_from_slice(&extra);
        let child = env.cmd(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
        let out = wait_with_timeout(child.expect("spawn"), Duration::from_secs(60));
        out.context(what).exit(2);
        assert!(env.writes().is_empty(), "{what}: wrote {:?}", env.writes());
        assert_eq!(std::fs::read(env.path("plan.csv")).expect("plan"), plan_bytes, "{what}");
        assert!(!env.path("plan.journal").exists(), "{what}");
        assert!(!env.path("j.journal").exists(), "{what}");
    }
}

#[test]
fn oversized_plan_and_token_files_are_clear_errors() {
    let env = Env::demo();
    plan(&env);
    // A token file of 100 KiB, then one that never ends.
    let big = env.path("big-token");
    std::fs::write(&big, "a".repeat(100 * 1024)).expect("write");
    for file in [big.to_str().expect("utf-8"), "/dev/zero"] {
        let child = env
            .cmd(&["apply", "plan.csv", "--source-host", "github.com", "--yes"])
            .args(["--source-token-file", file])
            .env_remove("MIRROR_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = wait_with_timeout(child, Duration::from_secs(30));
        out.context(file).exit(2);
        assert!(stderr(&out).contains("larger than 64 KiB"), "{file}: {}", text(&out));
        assert!(env.writes().is_empty());
    }
    // A plan of 257 MiB (sparse, so the test stays cheap).
    let huge = std::fs::File::create(env.path("huge.csv")).expect("create");
    huge.set_len(257 * 1024 * 1024).expect("set_len");
    drop(huge);
    let out = env.run(&["apply", "huge.csv", "--source-host", "github.com", "--yes"]);
    out.exit(2);
    assert!(stderr(&out).contains("larger than 256 MiB"), "{}", text(&out));
}

// ---------------------------------------------------------------------------------------
// Rotation, demo twice, dry run without the token
// ---------------------------------------------------------------------------------------

#[test]
fn the_readme_rotation_steps_run_as_written() {
    // GitHub knows the next token too (it was created before the rotation).
    let new_token = "ghp_NEW0rotated0token0for0the0readme00";
    let env = Env::with(|o| {
        o.remote_accepts.push(RemoteAccept {
            host: "github.com".into(),
            user: Some(new_token.into()),
            password: None,
        })
    });
    // 2. plan, 5. apply.
    plan(&env);
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    out.ok();
    let first_journal = std::fs::read(env.path("plan.journal")).expect("journal");
    // 7. Put the new token in place and run the same plan and apply again.
    let out = env
        .cmd(&["plan", "--source-host", "github.com", "--probe", "--out", "plan.csv"])
        .env("MIRROR_TOKEN", new_token)
        .output()
        .expect("plan");
    out.ok();
    let out = env
        .cmd(&["apply", "plan.csv", "--source-host", "github.com", "--yes"])
        .env("MIRROR_TOKEN", new_token)
        .output()
        .expect("apply");
    out.ok();
    assert!(stderr(&out).contains("archived"), "{}", text(&out));
    let archived: Vec<_> = std::fs::read_dir(env.dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("plan.journal."))
        .collect();
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert_eq!(std::fs::read(env.path(&archived[0])).expect("archive"), first_journal);
    let report = report(&env, "plan.report.csv");
    assert!(report.iter().any(|r| r["outcome"] == "applied"), "the new plan was applied");
    // Every pull mirror on github.com now has the new token.
    let now = env.sim().snapshot();
    let moved = now
        .projects
        .iter()
        .filter_map(|p| p.project.pull.as_ref())
        .filter(|m| {
            m.password.as_deref() == Some(new_token) || m.user.as_deref() == Some(new_token)
        })
        .count();
    assert!(moved > 0);
}

#[test]
fn an_unfinished_journal_of_another_plan_is_still_refused() {
    let env = Env::demo();
    plan(&env);
    let other = "f".repeat(64);
    let journal = format!(
        "{{\"kind\":\"header\",\"version\":1,\"plan_sha256\":\"{other}\",\"plan_path\":\"old.csv\",\"started_at\":\"2026-01-01T00:00:00Z\",\"tool\":\"glmirror 0.1.0\"}}\n\
         {{\"kind\":\"intent\",\"project_id\":1,\"mirror_type\":\"pull\",\"mirror_id\":null,\"write\":\"pull-update\",\"new_url\":\"https://github.com/acme/api-gateway.git\",\"at\":\"2026-01-01T00:00:01Z\"}}\n"
    );
    std::fs::write(env.path("plan.journal"), &journal).expect("write");
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    out.exit(2);
    assert!(stderr(&out).contains("belongs to another plan"), "{}", text(&out));
    assert!(stderr(&out).contains("hint:"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(env.path("plan.journal")).expect("kept"), journal);
    assert!(env.writes().is_empty());
}

#[test]
fn demo_with_the_same_dir_runs_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..2 {
        let out = glmirror()
            .args(["demo", "--no-progress", "--dir"])
            .arg(dir.path())
            .output()
            .expect("demo runs");
        out.context(format!("round {round}")).ok();
    }
}

#[test]
fn a_dry_run_needs_no_service_token() {
    let env = Env::demo();
    plan(&env);
    let out = env
        .cmd(&["apply", "plan.csv", "--source-host", "github.com", "--dry-run"])
        .env_remove("MIRROR_TOKEN")
        .output()
        .expect("runs");
    out.ok();
    assert!(stderr(&out).contains("not checked"), "{}", text(&out));
    assert!(env.writes().is_empty());
    // A real run still needs it.
    let out = env
        .cmd(&["apply", "plan.csv", "--source-host", "github.com", "--yes"])
        .env_remove("MIRROR_TOKEN")
        .output()
        .expect("runs");
    out.exit(2);
}

#[test]
fn the_new_url_of_a_mirror_user_only_row_may_not_be_edited_even_with_the_flag() {
    let env = Env::demo();
    plan_with(&env, &["--source-host", "github.com", "--mirror-user", "svc-mirror"]);
    let good = std::fs::read_to_string(env.path("plan.csv")).expect("plan");
    let (headers, rows) = read_csv(&good);
    let (action, auth, fixes, url) = (
        col(&headers, "action"),
        col(&headers, "new_auth"),
        col(&headers, "fixes"),
        col(&headers, "new_url"),
    );
    let i = rows
        .iter()
        .position(|r| {
            &r[action] == "update" && &r[auth] == "unchanged" && &r[fixes] == "mirror-user"
        })
        .unwrap_or_else(|| panic!("a mirror-user-only row in:\n{good}"));
    let mut edited = rows.clone();
    edited[i] = set(&rows[i], url, &format!("{}-moved", &rows[i][url]));
    std::fs::write(env.path("plan.csv"), write_csv(&headers, &edited)).expect("write");
    let out = env.run(&[
        "apply",
        "plan.csv",
        "--source-host",
        "github.com",
        "--yes",
        "--accept-edited-urls",
    ]);
    out.exit(2);
    let err = stderr(&out);
    assert!(err.starts_with(&format!("glmirror: error: plan.csv:{}: ", i + 2)), "{err}");
    assert!(err.contains("only moves the mirror user"), "{err}");
    assert!(env.writes().is_empty());
}
