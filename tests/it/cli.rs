//! Command-line basics: help, version, usage errors, exit codes.

use crate::util::{ExitExt as _, glmirror};

#[test]
fn help_lists_every_command() {
    let out = glmirror().arg("--help").output().expect("runs");
    out.ok();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["plan", "apply", "status", "rewrite", "demo", "sim", "completions", "man"] {
        assert!(text.contains(cmd), "help lacks {cmd}: {text}");
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = glmirror().args(["plan", "--no-such-flag"]).output().expect("runs");
    out.exit(2);
}

#[test]
fn completions_and_man_render() {
    let out = glmirror().args(["completions", "bash"]).output().expect("runs");
    out.ok();
    assert!(String::from_utf8_lossy(&out.stdout).contains("glmirror"));
    let out = glmirror().arg("man").output().expect("runs");
    out.ok();
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH"));
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    // `glmirror completions bash | head -1`: the reader goes away early.
    let mut child = glmirror()
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("waits");
    out.ok();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn every_command_help_has_examples() {
    for cmd in ["plan", "apply", "status", "rewrite", "demo", "sim"] {
        let out = glmirror().args([cmd, "--help"]).output().expect("runs");
        out.context(format!("{cmd} --help")).ok();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:"), "{cmd} --help has examples: {text}");
        assert!(text.contains(&format!("glmirror {cmd}")), "{cmd} --help shows the command");
    }
}
