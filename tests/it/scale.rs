//! Scale: a plan of 20,000 generated projects is complete and its memory stays flat
//! (rows are streamed to the file, not collected).

use std::time::Duration;

use glmirror::sim::SimOptions;

use crate::util::Env;

/// Peak resident memory (kB) of a child process, polled from /proc until it exits.
fn run_measured(env: &Env, args: &[&str]) -> (std::process::ExitStatus, u64) {
    let mut child = env
        .cmd(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kb) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn plan_generated(projects: u32) -> (usize, usize, u64) {
    let fixture = glmirror::sim::generate(projects, 42);
    let expected = fixture.projects.iter().filter(|p| p.pull.is_some()).count();
    let env = Env::with(|o: &mut SimOptions| o.fixture = fixture);
    let (status, peak_kb) = run_measured(
        &env,
        &["plan", "--mirrors", "pull", "--concurrency", "8", "--out", "plan.csv"],
    );
    assert!(status.success(), "plan of {projects} projects failed: {status:?}");
    let plan = std::fs::read_to_string(env.path("plan.csv")).expect("plan");
    let rows = plan.lines().count() - 1;
    assert!(env.writes().is_empty(), "plan wrote to GitLab");
    (rows, expected, peak_kb)
}

#[test]
fn plan_of_20000_projects_is_complete_with_flat_memory() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("no /proc: memory is not measured on this OS");
    }
    let (small_rows, small_expected, small_kb) = plan_generated(2_000);
    let (rows, expected, big_kb) = plan_generated(20_000);
    assert_eq!(small_rows, small_expected, "every pull mirror of 2,000 projects planned");
    assert_eq!(rows, expected, "every pull mirror of 20,000 projects planned");
    // Ten times the projects may not take much more memory: the rows are streamed.
    assert!(
        big_kb <= small_kb * 3 / 2 + 8 * 1024,
        "peak memory grew from {small_kb} kB (2,000 projects) to {big_kb} kB (20,000 projects)"
    );
}
