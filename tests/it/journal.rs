//! The apply journal under real process death: a child process writes entries in a loop and
//! is killed with SIGKILL at random points; the journal must always load again, resume, and
//! never lose an acknowledged entry. Also Ctrl-C/SIGTERM handling of `Interrupt`.
//!
//! The child processes are this test binary itself, re-run on one `#[ignore]`d helper test
//! (`--exact --ignored`) with an environment variable saying what to do.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use glmirror::apply::interrupt::{Interrupt, STOP_MESSAGE};
use glmirror::apply::journal::{
    self, Journal, Outcome, OutcomeEntry, RowKey, RowState, Step, StepKind, WriteStep,
};

const CHILD_DIR_ENV: &str = "GLMIRROR_TEST_JOURNAL_CHILD_DIR";
const CHILD_ROWS_ENV: &str = "GLMIRROR_TEST_JOURNAL_CHILD_ROWS";
const INTERRUPT_CHILD_ENV: &str = "GLMIRROR_TEST_INTERRUPT_CHILD";
const READY: &str = "CHILD-READY";
const STOPPING: &str = "CHILD-STOP-REQUESTED";

/// A child process that is killed (and reaped) if the test ends early.
struct ChildGuard {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChildGuard {
    /// Re-run this test binary on one helper test with extra environment.
    fn spawn(test: &str, env: &[(&str, &str)]) -> ChildGuard {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = Command::new(exe);
        cmd.args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildGuard { child, lines }
    }

    /// Wait (bounded) for a stdout line containing `marker`.
    fn wait_for(&self, marker: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(marker) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Wait (bounded) for the child to exit; returns its status and stderr.
    fn finish(mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut stderr = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                return (status, stderr);
            }
            assert!(Instant::now() < deadline, "child did not exit in time");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn journal_path(dir: &Path) -> PathBuf {
    dir.join("plan.journal")
}

/// Helper run in a child process: open the journal and apply rows one at a time (intent,
/// step, outcome) until killed, or until `CHILD_ROWS_ENV` rows are done.
#[test]
#[ignore = "helper: run as a child process by journal_survives_sigkill"]
fn journal_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let limit: u64 =
        std::env::var(CHILD_ROWS_ENV).ok().and_then(|n| n.parse().ok()).unwrap_or(1 << 20);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let plan = dir.join("plan.csv");
        let sha = journal::plan_sha256(&plan).expect("hash plan");
        let (journal, state) = Journal::open(&journal_path(&dir), &plan, &sha).expect("open");
        // Resume after the last finished row; redo a row that was in flight.
        let start = state
            .rows()
            .filter(|(k, _)| state.should_skip(k))
            .map(|(k, _)| k.project_id + 1)
            .max()
            .unwrap_or(1);
        println!("{READY}");
        for project in start..start + limit {
            let key = RowKey::pull(project);
            let url = format!("https://github.com/org/repo-{project}.git");
            journal
                .record(journal::Intent::new(key.clone(), WriteStep::PullUpdate, url))
                .await
                .expect("intent");
            journal
                .record(Step::new(key.clone(), StepKind::PullUpdated).with_detail("PUT 200"))
                .await
                .expect("step");
            journal.record(OutcomeEntry::new(key, Outcome::Applied, "")).await.expect("outcome");
        }
        journal.close();
    });
}

/// Every line of the journal is one whole entry, except possibly a cut-short last one; the
/// rows form a prefix 1..=n of finished rows plus at most one in flight.
fn check_journal(path: &Path) -> (u64, usize) {
    let state = journal::load(path).expect("journal loads after SIGKILL");
    let finished: Vec<u64> =
        state.rows().filter(|(k, _)| state.should_skip(k)).map(|(k, _)| k.project_id).collect();
    let expected: Vec<u64> = (1..=finished.len() as u64).collect();
    assert_eq!(finished, expected, "finished rows form a gap-free prefix");
    let in_flight: Vec<_> = state.in_flight();
    assert!(in_flight.len() <= 1, "one writer, so at most one row in flight: {in_flight:?}");
    for key in &in_flight {
        assert_eq!(key.project_id, finished.len() as u64 + 1);
        let Some(RowState::InFlight { intent, .. }) = state.row(key) else { panic!("in flight") };
        assert_eq!(intent.write, WriteStep::PullUpdate);
    }
    (finished.len() as u64, state.resumes())
}

#[test]
fn journal_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("plan.csv"), "project_id,mirror_type\n1,pull\n").expect("plan");
    let dir_str = dir.path().to_str().expect("utf-8 temp path");
    let path = journal_path(dir.path());
    let lock = journal::lock_path(&path);
    let mut last_finished = 0;
    let mut kills_after_open = 0;
    for round in 0..8u32 {
        let child = ChildGuard::spawn("journal::journal_child_writer", &[(CHILD_DIR_ENV, dir_str)]);
        // Mostly kill while entries are being written; sometimes during start-up.
        let opened = if round % 4 == 3 {
            std::thread::sleep(Duration::from_millis(rand::random_range(0..20)));
            false
        } else {
            assert!(child.wait_for(READY, Duration::from_secs(20)), "child never got ready");
            std::thread::sleep(Duration::from_millis(rand::random_range(0..40)));
            true
        };
        let pid = child.child.id();
        let (status, _) = {
            let mut child = child;
            child.child.kill().expect("SIGKILL");
            child.finish(Duration::from_secs(10))
        };
        assert!(!status.success(), "child was killed");
        if opened {
            kills_after_open += 1;
            let held = std::fs::read_to_string(&lock).expect("a killed run leaves its lock");
            assert_eq!(held.trim(), pid.to_string());
        }
        if path.exists() {
            let (finished, _) = check_journal(&path);
            assert!(finished >= last_finished, "acknowledged rows are never lost");
            last_finished = finished;
            eprintln!("round {round}: {finished} rows finished");
        }
    }
    assert!(kills_after_open >= 6);

    // A last run that ends normally: takes over the stale lock, resumes, releases the lock.
    let child = ChildGuard::spawn(
        "journal::journal_child_writer",
        &[(CHILD_DIR_ENV, dir_str), (CHILD_ROWS_ENV, "3")],
    );
    let (status, stderr) = child.finish(Duration::from_secs(30));
    assert!(status.success(), "final run failed: {stderr}");
    let (finished, resumes) = check_journal(&path);
    assert_eq!(finished, last_finished + 3);
    assert!(resumes >= 1);
    assert!(!lock.exists(), "lock released on normal exit");
    let state = journal::load(&path).expect("loads");
    assert!(state.in_flight().is_empty());
}

/// Helper run in a child process: install the signal handlers and report the first stop
/// request; the second signal must end the process with 130.
#[test]
#[ignore = "helper: run as a child process by interrupt_signals"]
fn interrupt_child() {
    if std::env::var_os(INTERRUPT_CHILD_ENV).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let interrupt = Interrupt::install().expect("install handlers");
        println!("{READY}");
        tokio::time::timeout(Duration::from_secs(20), interrupt.requested())
            .await
            .expect("stop requested");
        assert!(interrupt.is_requested());
        println!("{STOPPING}");
        // Wait for the second signal, which exits the process with 130.
        tokio::time::sleep(Duration::from_secs(20)).await;
    });
}

#[test]
fn interrupt_signals() {
    for (first, second) in [("INT", "INT"), ("TERM", "INT")] {
        let child = ChildGuard::spawn("journal::interrupt_child", &[(INTERRUPT_CHILD_ENV, "1")]);
        assert!(child.wait_for(READY, Duration::from_secs(20)), "child never got ready");
        child.signal(first);
        assert!(child.wait_for(STOPPING, Duration::from_secs(10)), "first signal not seen");
        child.signal(second);
        let (status, stderr) = child.finish(Duration::from_secs(10));
        assert_eq!(status.code(), Some(130), "second signal exits 130; stderr: {stderr}");
        assert_eq!(stderr.matches(STOP_MESSAGE).count(), 1, "{stderr}");
    }
}
