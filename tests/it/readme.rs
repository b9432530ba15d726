//! The README stays true: its Quick start commands are the two documented ones (and CI runs the
//! same test command), every subcommand and long flag it mentions exists in `--help`, and the
//! demo it advertises works, writes its files and leaks no token.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::{ExitExt as _, Table, glmirror, text};

/// The Quick start commands, exactly.
const QUICK_START: [&str; 2] =
    ["cargo run --release -- demo", "cargo test --locked --all-features"];

/// Flags of cargo and of the benchmark example, which the README also shows.
const CARGO_FLAGS: &[&str] =
    &["--release", "--locked", "--all-features", "--path", "--check", "--example", "--projects"];

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The commands in the first fenced block of the `## Quick start` section, comments removed.
fn quick_start_commands(readme: &str) -> Vec<String> {
    let text = format!("\n{readme}");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Quick start"))
        .expect("README has a `## Quick start` section");
    let mut blocks = section.split("```").skip(1);
    let block = blocks.next().expect("Quick start has a fenced code block");
    block
        .lines()
        .skip(1) // the info string (`sh`)
        .map(|l| l.split(" #").next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Text that is code: fenced blocks and inline code spans.
fn code_text(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            out.push(line.to_owned());
        } else {
            out.extend(line.split('`').skip(1).step_by(2).map(str::to_owned));
        }
    }
    out
}

/// The subcommands of the code lines and spans that run `glmirror` (after optional
/// `VAR=value` assignments), e.g. `plan` in `MIRROR_TOKEN=... glmirror plan --out x`.
fn mentioned_subcommands(readme: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for code in code_text(readme) {
        let mut words = code.split_whitespace().skip_while(|w| w.contains('='));
        if words.next() != Some("glmirror") {
            continue;
        }
        if let Some(word) = words.next().filter(|w| w.starts_with(|c: char| c.is_ascii_lowercase()))
        {
            found.insert(word.to_owned());
        }
    }
    found
}

/// Every `--long-flag` anywhere in `text`.
fn long_flags(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i + 2 < bytes.len() {
        let starts = bytes[i] == b'-'
            && bytes[i + 1] == b'-'
            && bytes[i + 2].is_ascii_lowercase()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'-'));
        if starts {
            let end = text[i + 2..]
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                .map_or(text.len(), |n| i + 2 + n);
            found.insert(text[i..end].trim_end_matches('-').to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

fn help(args: &[&str]) -> String {
    let out = glmirror().args(args).output().expect("glmirror runs");
    out.context(format!("glmirror {args:?}")).ok();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommand names listed in `glmirror --help`.
fn subcommands(top_help: &str) -> BTreeSet<String> {
    top_help
        .split("Commands:")
        .nth(1)
        .expect("top-level help lists commands")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ")) // not wrapped text
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn quick_start_is_the_two_documented_commands() {
    let readme = repo_file("README.md");
    assert_eq!(quick_start_commands(&readme), QUICK_START, "README Quick start changed");
    let ci = repo_file(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == QUICK_START[1]),
        ".ci/run does not run the README's test command `{}`",
        QUICK_START[1]
    );
}

#[test]
fn every_command_and_flag_in_the_readme_exists() {
    let readme = repo_file("README.md");
    let top = help(&["--help"]);
    let commands = subcommands(&top);
    for expected in ["plan", "apply", "status", "rewrite", "demo", "sim", "completions", "man"] {
        assert!(commands.contains(expected), "`glmirror --help` lacks {expected}: {commands:?}");
    }

    let mentioned = mentioned_subcommands(&readme);
    for name in ["plan", "apply", "status", "rewrite", "demo", "sim", "completions", "man"] {
        assert!(mentioned.contains(name), "README shows no example of `glmirror {name}`");
    }
    for word in &mentioned {
        assert!(commands.contains(word), "README mentions `glmirror {word}`, no such command");
    }

    let mut all_help = top.clone();
    for name in &commands {
        if name != "help" {
            all_help.push_str(&help(&[name, "--help"]));
        }
    }
    let known = long_flags(&all_help);
    assert!(known.contains("--source-host") && known.contains("--gitlab-url"), "{known:?}");
    let missing: Vec<String> = long_flags(&readme)
        .into_iter()
        .filter(|f| !CARGO_FLAGS.contains(&f.as_str()) && !known.contains(f))
        .collect();
    assert!(missing.is_empty(), "README mentions flags glmirror does not have: {missing:?}");
}

#[test]
fn readme_helpers_find_what_they_should() {
    let sample = "## Quick start\n\n```sh\ncargo run -- demo   # x\n# note\n```\n\n## Next\n\
                  run `glmirror plan --out x` and `glmirror: error: y`, then --dry-run.\n";
    assert_eq!(quick_start_commands(sample), ["cargo run -- demo"]);
    assert_eq!(mentioned_subcommands(sample), BTreeSet::from(["plan".to_owned()]));
    let flags = long_flags(sample);
    assert_eq!(flags, BTreeSet::from(["--dry-run".to_owned(), "--out".to_owned()]));
}

/// The demo's service token, from the shipped fixture.
fn demo_service_token() -> String {
    let fixture: serde_json::Value =
        serde_json::from_str(&repo_file("fixtures/sim/demo.json")).expect("fixture is JSON");
    let token = fixture["demo"]["service_token"].as_str().expect("demo.service_token is set");
    assert!(token.len() > 8, "demo token too short to search for: {token:?}");
    token.to_owned()
}

#[test]
fn demo_runs_writes_its_files_and_leaks_no_token() {
    let token = demo_service_token();
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("demo-out");
    let out = glmirror()
        .args(["demo", "--dir"])
        .arg(&out_dir)
        .args(["--no-progress"])
        .output()
        .expect("glmirror demo runs");
    let shown = text(&out);
    out.ok();
    assert!(!shown.contains(&token), "demo service token in the output:\n{shown}");

    for name in ["plan.csv", "plan.report.csv", "plan.journal"] {
        let path = out_dir.join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name} missing: {e}"));
        assert!(!bytes.is_empty(), "{name} is empty");
        assert!(!String::from_utf8_lossy(&bytes).contains(&token), "demo token in {name}");
    }
    let extra: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("demo dir")
        .flatten()
        .filter(|e| {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).contains(&token)
        })
        .map(|e| e.path())
        .collect();
    assert!(extra.is_empty(), "demo token written to {extra:?}");

    let stdout = String::from_utf8_lossy(&out.stdout);
    let table_header = stdout.lines().find(|l| l.contains("MIRROR") && l.contains("BEFORE"));
    assert!(
        table_header.is_some_and(|l| l.contains("AFTER")),
        "no before/after table on stdout:\n{shown}"
    );
    assert!(stdout.contains("platform/billing (pull)"), "table lists no mirrors:\n{shown}");
    let healthy = stdout
        .lines()
        .find(|l| l.starts_with("healthy mirrors:"))
        .unwrap_or_else(|| panic!("no `healthy mirrors:` line:\n{shown}"));
    // "healthy mirrors: B before, A after (of N)": the demo must improve something.
    let numbers: Vec<u32> = healthy
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    assert!(numbers.len() >= 3, "{healthy}");
    assert!(numbers[1] > numbers[0] && numbers[1] <= numbers[2], "{healthy}");
    // plan's summary (stderr) and the demo's closing line count the same mirrors.
    let running = |s: &str| {
        s.lines()
            .map(str::trim)
            .find(|l| l.starts_with("running as svc-mirror:"))
            .map(str::to_owned)
    };
    let closing = running(&stdout).unwrap_or_else(|| panic!("no closing `running as`:\n{shown}"));
    let summary = running(&String::from_utf8_lossy(&out.stderr))
        .unwrap_or_else(|| panic!("no `running as` in plan's summary:\n{shown}"));
    assert_eq!(closing, summary, "the demo and plan's summary disagree");
    assert!(closing.ends_with(" enabled pull mirrors of live projects)"), "{closing}");
    // The README quotes the demo's closing figures (as printed with git on PATH).
    if crate::util::git_or_skip("the README's demo figures") {
        let readme = repo_file("README.md").replace('\n', " ");
        for start in ["`healthy mirrors:", "`on service credentials:", "`running as svc-mirror:"] {
            let at = readme.find(start).unwrap_or_else(|| panic!("README lacks {start}"));
            let quoted = readme[at + 1..].split('`').next().expect("closing backtick");
            assert!(
                stdout.contains(quoted),
                "README quotes `{quoted}`, the demo printed:\n{shown}"
            );
        }
    }

    let plan = std::fs::read_to_string(out_dir.join("plan.csv")).expect("plan.csv");
    assert!(plan.starts_with("project_id,project_path,web_url,"), "{plan}");
    let report = std::fs::read_to_string(out_dir.join("plan.report.csv")).expect("report");
    let table = Table::parse("plan.report.csv", &report);
    assert!(
        table.column("outcome").contains(&"applied"),
        "no applied row in the report:\n{report}"
    );
}
