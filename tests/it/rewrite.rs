//! `glmirror rewrite` end to end: SCP conversions checked against git's own parser, the CSV
//! format, exit codes, and that a canary service token never shows up anywhere.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::util::{ExitExt as _, Row, Table, glmirror};

const HEADER: &[&str] =
    &["input_url", "new_url", "new_user", "new_auth", "fixes", "action", "reason"];
const CANARY: &str = "glpat-CANARY7f3e9a1b2c4d5e6f";

fn run(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = glmirror();
    cmd.arg("rewrite").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("glmirror runs");
    {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(stdin.unwrap_or("").as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("glmirror finishes")
}

/// The rows of `rewrite`'s CSV on stdout (whose header is [`HEADER`]).
fn rows(out: &Output) -> Vec<Row> {
    let table = Table::parse("rewrite's stdout", &out.stdout);
    assert_eq!(table.headers(), HEADER);
    table.rows().to_vec()
}

/// `git fetch-pack --diag-url` fields: (userandhost, port, path).
fn git_diag(dir: &std::path::Path, url: &str) -> (String, String, String) {
    let out = Command::new("git")
        .args(["fetch-pack", "--diag-url", url])
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("Diag: {name}=")))
            .unwrap_or_else(|| panic!("no {name} for {url}: {text}"))
            .to_owned()
    };
    assert_eq!(field("protocol"), "ssh", "{url}: {text}");
    (field("userandhost"), field("port"), field("path"))
}

#[test]
fn scp_conversion_matches_git() {
    let dir = tempfile::tempdir().expect("tempdir");
    let init = Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", dir.path())
        .status()
        .expect("git init");
    assert!(init.success());
    let inputs = [
        "git@h.example:org/r.git",
        "h.example:/abs/r.git",
        "user@[h.example:2222]:src",
        "[::1]:repo",
        "git@[::1]:repo",
        "git@[fe80::1:2]:org/r",
        "h.example:~u/p",
        "h.example:/~u/p",
        "git@h.example:r%20x",
        "git@h.example:r#x?y",
        "git@h.example:2222/r.git",
        "git@192.0.2.1:r",
        "git@h.example:dir/ü.git",
        "git@h.example:a/b:c",
        "git.user-1@h.example:org/r.git",
    ];
    let out = run(&inputs, None, &[]);
    out.ok();
    let rows = rows(&out);
    assert_eq!(rows.len(), inputs.len());
    for (input, row) in inputs.iter().zip(&rows) {
        assert_eq!(row.cell("input_url"), *input);
        assert_eq!(row.cell("action"), "update", "{input}: {}", row.cell("reason"));
        assert_eq!(row.cell("fixes"), "scp-to-ssh", "{input}");
        let new_url = row.cell("new_url");
        assert!(new_url.starts_with("ssh://"), "{new_url}");
        let (uh_old, port_old, path_old) = git_diag(dir.path(), input);
        let (uh_new, port_new, path_new) = git_diag(dir.path(), new_url);
        assert_eq!(uh_old, uh_new, "{input} -> {new_url}");
        assert_eq!(port_old, port_new, "{input} -> {new_url}");
        // A relative SCP path becomes absolute (docs/url-rules.md §2.1); `~` paths are exact.
        let expected_path = if path_old.starts_with('/') || path_old.starts_with('~') {
            path_old.clone()
        } else {
            format!("/{path_old}")
        };
        assert_eq!(path_new, expected_path, "{input} -> {new_url}");
    }
}

#[test]
fn csv_output_and_stdin() {
    let input = "\n  git@github.com:org/r.git  \n\nhttp://github.com/org/r\nhttps://*****:*****@other.example/x\n=HYPERLINK(1)\n\r\n";
    let out = run(&["--source-host", "github.com"], Some(input), &[]);
    out.ok();
    let rows = rows(&out);
    assert_eq!(rows.len(), 4, "blank lines are skipped");
    assert_eq!(rows[0].cell("input_url"), "git@github.com:org/r.git");
    assert_eq!(rows[0].cell("new_url"), "ssh://git@github.com/org/r.git");
    assert_eq!(rows[0].cell("new_auth"), "unchanged");
    assert_eq!(rows[1].cell("new_url"), "https://github.com/org/r.git");
    assert_eq!(rows[1].cell("new_user"), "<token>");
    assert_eq!(rows[1].cell("new_auth"), "service");
    assert_eq!(rows[1].cell("fixes"), "to-https;add-dot-git;service-token");
    assert_eq!(rows[2].cell("action"), "skip");
    assert_eq!(rows[2].cell("new_url"), "");
    assert_eq!(rows[3].cell("input_url"), "'=HYPERLINK(1)", "formula guard");
    assert_eq!(rows[3].cell("action"), "manual");
    // CRLF-free RFC 4180 output with quoting where needed.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("input_url,new_url,new_user,new_auth,fixes,action,reason\n"));
}

#[test]
fn manual_rows_still_exit_zero() {
    let out = run(&["", "/local/path", "ext::sh", "https://x.example/a?b"], None, &[]);
    out.ok();
    let rows = rows(&out);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.cell("action") == "manual" && !r.cell("reason").is_empty()));
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &["--source-host", "gitlab.example.com", "https://gitlab.example.com/g/r"],
        &["--source-host", "https://github.com", "x"],
        &["--source-host", "github.com:0", "x"],
        &["--source-user", "svc", "x"],
        &["--map", "no-equals-sign", "x"],
        &["--map", "https://a/=https://a/b/", "x"],
    ];
    for args in cases {
        let out = run(args, None, &[]);
        out.context(format!("{args:?}")).exit(2);
        assert!(out.stdout.is_empty(), "{args:?}: no CSV on a usage error");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("glmirror: error: "), "{args:?}: {err}");
    }
    let out = run(&["--source-host", "gitlab.example.com", "x"], None, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gitlab.example.com") && err.contains("oauth2"), "{err}");
}

#[test]
fn canary_token_appears_nowhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{CANARY}\n")).expect("write token");
    let urls = [
        "https://*****:*****@github.com/org/r.git",
        "git@github.com:org/r.git",
        "https://gitlab.example.com/g/r",
        "https://svc:glpat-CANARYinput01234567@other.example/x",
        "HTTPS://glpat-CANARYinput01234567@Other.example/x",
        "https://svc:glpat-CANARYinput01234567@github.com/org/r",
    ];
    let token_path = token_file.to_string_lossy().into_owned();
    let creds_file = dir.path().join("creds.toml");
    std::fs::write(
        &creds_file,
        "[[host]]\nhost = \"github.com\"\ntoken_file = \"token\"\n\n\
         [[host]]\nhost = \"gitlab.example.com\"\nuser = \"oauth2\"\ntoken_env = \"MIRROR_TOKEN\"\n",
    )
    .expect("write credentials");
    let creds_path = creds_file.to_string_lossy().into_owned();
    let runs: Vec<Output> = vec![
        run(
            &[&["--source-host", "github.com"][..], &urls[..]].concat(),
            None,
            &[("MIRROR_TOKEN", CANARY)],
        ),
        run(
            &[
                &["--source-host", "gitlab.example.com", "--source-user", "oauth2"][..],
                &["--source-token-file", &token_path][..],
                &urls[..],
            ]
            .concat(),
            None,
            &[],
        ),
        run(
            &["--source-host", "github.com", "-vvv"],
            Some(&urls.join("\n")),
            &[("MIRROR_TOKEN", CANARY)],
        ),
        run(
            &[&["--credentials", &creds_path][..], &urls[..]].concat(),
            None,
            &[("MIRROR_TOKEN", CANARY)],
        ),
        // Usage errors must not echo a token either.
        run(&["--source-host", CANARY, "x"], None, &[("MIRROR_TOKEN", CANARY)]),
        run(&["--source-host", "github.com", "--source-user", CANARY, "x"], None, &[]),
        run(&["--source-host", "github.com", "--source-token-file", CANARY, "x"], None, &[]),
    ];
    for (i, out) in runs.iter().enumerate() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stdout.contains("CANARY"), "run {i} stdout: {stdout}");
        assert!(!stderr.contains("CANARY"), "run {i} stderr: {stderr}");
        if i < 4 {
            out.context(format!("run {i}")).ok();
        } else {
            out.context(format!("run {i}")).exit(2);
        }
    }
    // Nothing was written next to the token and credentials files.
    let files: Vec<_> = std::fs::read_dir(dir.path()).expect("read dir").collect();
    assert_eq!(files.len(), 2);
}

#[test]
fn golden_csv() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/rewrite");
    let urls = std::fs::read_to_string(format!("{dir}/urls.txt")).expect("urls.txt");
    let expected = std::fs::read_to_string(format!("{dir}/expected.csv")).expect("expected.csv");
    let out = run(
        &[
            "--credentials",
            &format!("{dir}/credentials.toml"),
            "--map",
            "https://github.com/acme/legacy-=https://github.com/acme-archive/legacy-",
        ],
        Some(&urls),
        &[],
    );
    out.ok();
    let got = String::from_utf8(out.stdout).expect("UTF-8 CSV");
    // To update after an intended change: run the same command and review the diff.
    for (i, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
        assert_eq!(g, e, "line {}", i + 1);
    }
    assert_eq!(got.lines().count(), expected.lines().count());
}
