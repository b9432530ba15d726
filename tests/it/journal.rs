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
    self, Journal, JournalStep, Outcome, OutcomeEntry, RowState, StepKind, WriteStep,
};
use glmirror::plan::{MirrorType, RowKey};

use crate::util::ExitExt as _;

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
        let sha = journal::sha256_hex(&std::fs::read(&plan).expect("read plan"));
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
            let key =
                RowKey { project_id: project, mirror_type: MirrorType::Pull, mirror_id: None };
            let url = format!("https://github.com/org/repo-{project}.git");
            journal
                .record(journal::Intent::new(key.clone(), WriteStep::PullUpdate, url))
                .await
                .expect("intent");
            journal
                .record(JournalStep {
                    detail: "PUT 200".into(),
                    ..JournalStep::new(key.clone(), StepKind::PullUpdated)
                })
                .await
                .expect("step");
            journal.record(OutcomeEntry::new(key, Outcome::Applied, "")).await.expect("outcome");
        }
        drop(journal);
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
            // The lock was on the open file: the kernel released it with the process, and
            // no lock file is left behind.
            assert!(!lock.exists(), "no lock file (pid {pid})");
        }
        if path.exists() {
            let (finished, _) = check_journal(&path);
            assert!(finished >= last_finished, "acknowledged rows are never lost");
            last_finished = finished;
            eprintln!("round {round}: {finished} rows finished");
        }
    }
    assert!(kills_after_open >= 6);

    // A last run that ends normally: the killed runs' locks are gone, so it resumes at once.
    let child = ChildGuard::spawn(
        "journal::journal_child_writer",
        &[(CHILD_DIR_ENV, dir_str), (CHILD_ROWS_ENV, "3")],
    );
    let (status, stderr) = child.finish(Duration::from_secs(30));
    assert!(status.success(), "final run failed: {stderr}");
    let (finished, resumes) = check_journal(&path);
    assert_eq!(finished, last_finished + 3);
    assert!(resumes >= 1);
    assert!(!lock.exists(), "no lock file on normal exit");
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

// ---------------------------------------------------------------------------------------
// Journals written by an earlier glmirror (fixtures/journal/)
// ---------------------------------------------------------------------------------------

/// Set to `1` to (re)write `fixtures/journal/` with [`bless_journal_fixtures`].
const BLESS_ENV: &str = "GLMIRROR_BLESS_JOURNAL";

/// Where the fixtures' simulator listened. The plan's `web_url`s name this address and `apply`
/// refuses a plan made on another instance, so resuming the fixture needs the same address.
const FIXTURE_ADDR: &str = "127.0.0.1:27391";

/// The options the fixture plan was made with; `apply` needs the same ones.
const FIXTURE_RULES: &[&str] =
    &["--source-host", "github.com", "--source-host", "gitlab.com", "--source-user", "oauth2"];

/// Serializes the tests of this binary that listen on [`FIXTURE_ADDR`].
static FIXTURE_PORT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("journal")
}

/// The service token of the demo fixture (a simulator-only value), used as `MIRROR_TOKEN`.
fn demo_token() -> String {
    glmirror::sim::Fixture::demo().demo.expect("demo settings").service_token
}

/// A simulator on [`FIXTURE_ADDR`], on its own runtime. Another process may hold the port
/// for a while (the same test run elsewhere), so binding is retried for up to two minutes.
struct FixedSim {
    rt: Option<tokio::runtime::Runtime>,
    base: String,
    admin: String,
    http: reqwest::Client,
    _port: std::sync::MutexGuard<'static, ()>,
}

impl FixedSim {
    fn start(fixture: glmirror::sim::Fixture) -> FixedSim {
        let port = FIXTURE_PORT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (admin, _) = glmirror::sim::fixture_tokens(&fixture);
        let mut opts = glmirror::sim::SimOptions::new(fixture);
        opts.update_delay_ms = 20;
        let deadline = Instant::now() + Duration::from_secs(120);
        let listener = loop {
            match rt.block_on(tokio::net::TcpListener::bind(FIXTURE_ADDR)) {
                Ok(listener) => break listener,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("cannot listen on {FIXTURE_ADDR} for the journal fixtures: {e}"),
            }
        };
        rt.spawn(async move {
            if let Err(e) = glmirror::sim::serve(listener, opts).await {
                eprintln!("simulator stopped: {e}");
            }
        });
        let http = reqwest::Client::builder().no_proxy().build().expect("http client");
        FixedSim { rt: Some(rt), base: format!("http://{FIXTURE_ADDR}"), admin, http, _port: port }
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime until dropped")
    }

    fn control<T: serde::de::DeserializeOwned>(&self, what: &str) -> T {
        let url = format!("{}/__sim/{what}", self.base);
        self.rt().block_on(async {
            let res = self.http.get(url).send().await.expect("control endpoint answers");
            res.json().await.expect("control JSON")
        })
    }

    fn state(&self) -> glmirror::sim::StateSnapshot {
        self.control("state")
    }

    fn requests(&self) -> Vec<glmirror::sim::LoggedRequest> {
        self.control("requests")
    }

    /// Requests that could change state.
    fn writes(&self) -> Vec<glmirror::sim::LoggedRequest> {
        self.requests().into_iter().filter(|r| r.method != "GET").collect()
    }

    fn set_faults(&self, faults: glmirror::sim::Faults) {
        let url = format!("{}/__sim/faults", self.base);
        self.rt().block_on(async {
            let res = self.http.put(url).json(&faults).send().await.expect("set faults");
            assert!(res.status().is_success(), "{res:?}");
        });
    }

    /// `glmirror ARGS` in `dir`, against this simulator as its admin.
    fn cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = crate::util::glmirror();
        cmd.args(args)
            .current_dir(dir)
            .env("GITLAB_URL", &self.base)
            .env("GITLAB_TOKEN", &self.admin)
            .env("MIRROR_TOKEN", demo_token());
        cmd
    }

    fn apply(&self, dir: &Path, extra: &[&str]) -> std::process::Output {
        // Journaling is the point here, not the probe (no stand-in serves these hosts).
        let mut args = vec!["apply", "plan.csv", "--yes", "--no-probe"];
        args.extend_from_slice(FIXTURE_RULES);
        args.extend_from_slice(extra);
        self.cmd(dir, &args).output().expect("glmirror runs")
    }

    /// Start `apply` and kill it (SIGKILL) once the simulator holds `stalls` more stalled
    /// writes than before; returns those stalled requests.
    fn apply_until_stalled(
        &self,
        dir: &Path,
        stalls: usize,
        extra: &[&str],
    ) -> Vec<glmirror::sim::LoggedRequest> {
        let stalled = |s: &FixedSim| -> Vec<_> {
            s.writes().into_iter().filter(|r| r.status == 0).collect::<Vec<_>>()
        };
        let already = stalled(self).len();
        let mut args = vec!["apply", "plan.csv", "--yes", "--no-probe"];
        args.extend_from_slice(FIXTURE_RULES);
        args.extend_from_slice(extra);
        let mut child = self
            .cmd(dir, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn apply");
        let deadline = Instant::now() + Duration::from_secs(60);
        while stalled(self).len() < already + stalls {
            assert!(Instant::now() < deadline, "apply never stalled");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Each intent is on disk before its write is sent; give a late one time to land.
        std::thread::sleep(Duration::from_millis(200));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        stalled(self).split_off(already)
    }
}

impl Drop for FixedSim {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            // Stalled requests never finish; drop them with the runtime.
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

fn output_text(out: &std::process::Output) -> String {
    crate::util::text(out)
}

/// Generator for `fixtures/journal/` (see its README), run with today's binary:
/// `GLMIRROR_BLESS_JOURNAL=1 cargo test --test it journal::bless_journal_fixtures -- --ignored --exact`.
#[test]
#[ignore = "generator: writes fixtures/journal/ when GLMIRROR_BLESS_JOURNAL=1"]
fn bless_journal_fixtures() {
    if std::env::var(BLESS_ENV).as_deref() != Ok("1") {
        return;
    }
    let out_dir = fixture_dir();
    std::fs::create_dir_all(&out_dir).expect("fixture dir");
    let work = tempfile::tempdir().expect("tempdir");
    let finished = work.path().join("finished");
    let interrupted = work.path().join("interrupted");
    std::fs::create_dir(&finished).expect("dir");
    std::fs::create_dir(&interrupted).expect("dir");

    // 1. Plan the demo instance, then apply it in one uninterrupted run, one row at a time
    //    so the order of its writes is known: that run's journal is the finished one.
    let stall_after = {
        let sim = FixedSim::start(glmirror::sim::Fixture::demo());
        let mut args = vec!["plan", "--out", "plan.csv"];
        args.extend_from_slice(FIXTURE_RULES);
        let out = sim.cmd(&finished, &args).output().expect("plan runs");
        out.ok();
        let out = sim.apply(&finished, &["--concurrency", "1"]);
        out.ok();
        let writes: Vec<_> =
            sim.writes().into_iter().filter(|w| (200..300).contains(&w.status)).collect();
        // Stop the interrupted run at the first push mirror's DELETE: its replacement is
        // created and confirmed, the old mirror still exists.
        let delete = writes.iter().position(|w| w.method == "DELETE").expect("a push row");
        u32::try_from(delete).expect("few writes")
    };
    std::fs::copy(finished.join("plan.csv"), interrupted.join("plan.csv")).expect("copy plan");

    // 2. A fresh instance and the same plan: a first run dies at that DELETE, a second
    //    (two rows at a time) dies at its first writes, leaving two rows in flight.
    let sim = FixedSim::start(glmirror::sim::Fixture::demo());
    sim.set_faults(glmirror::sim::Faults {
        write_stall_after: Some(stall_after),
        ..Default::default()
    });
    let first = sim.apply_until_stalled(&interrupted, 1, &["--concurrency", "1"]);
    assert_eq!(first[0].method, "DELETE", "{first:?}");
    sim.set_faults(glmirror::sim::Faults { write_stall_after: Some(0), ..Default::default() });
    let second = sim.apply_until_stalled(&interrupted, 2, &["--concurrency", "2"]);
    assert_eq!(second.len(), 2, "{second:?}");
    sim.set_faults(glmirror::sim::Faults::default());
    // Let the mirror updates the writes triggered finish before taking the state.
    std::thread::sleep(Duration::from_millis(500));
    let state = sim.state();
    let mut at_kill = glmirror::sim::Fixture::demo();
    at_kill.users = state.users;
    at_kill.projects = state.projects.into_iter().map(|p| p.project).collect();
    let json = serde_json::to_string_pretty(&at_kill).expect("fixture JSON") + "\n";
    glmirror::sim::Fixture::parse(&json).expect("the state at the kill is a valid fixture");

    std::fs::copy(finished.join("plan.csv"), out_dir.join("plan.csv")).expect("write");
    std::fs::copy(finished.join("plan.journal"), out_dir.join("finished.jsonl")).expect("write");
    std::fs::copy(interrupted.join("plan.journal"), out_dir.join("interrupted.jsonl"))
        .expect("write");
    std::fs::write(out_dir.join("interrupted-sim.json"), json).expect("write");
    eprintln!("wrote {}; stalled: {first:?} then {second:?}", out_dir.display());
}

/// The update rows of the fixture plan, in plan order, as (project, type, mirror id).
const FIXTURE_UPDATES: &[(u64, &str, Option<u64>)] = &[
    (1, "pull", None),
    (3, "pull", None),
    (6, "pull", None),
    (8, "pull", None),
    (13, "pull", None),
    (14, "pull", None),
    (15, "pull", None),
    (17, "pull", None),
    (18, "pull", None),
    (22, "pull", None),
    (24, "pull", None),
    (26, "push", Some(2)),
    (28, "pull", None),
    (29, "pull", None),
    (30, "pull", None),
    (31, "pull", None),
    (33, "pull", None),
    (33, "push", Some(5)),
];

/// The rows the interrupted fixture finished: everything before the push row of project 26.
const FIXTURE_FINISHED_BEFORE_KILL: usize = 11;

/// The fixture plan's rows, each as a map from column name to cell.
fn fixture_plan_rows() -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(fixture_dir().join("plan.csv")).expect("plan");
    let headers = reader.headers().expect("headers").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            headers.iter().zip(r.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect()
        })
        .collect()
}

fn key_of(row: &std::collections::BTreeMap<String, String>) -> (u64, String, Option<u64>) {
    let id = |c: &str| row[c].parse::<u64>().ok();
    (id("project_id").expect("project id"), row["mirror_type"].clone(), id("mirror_id"))
}

fn keys(list: &[(u64, &str, Option<u64>)]) -> Vec<(u64, String, Option<u64>)> {
    list.iter().map(|(p, t, m)| (*p, (*t).to_owned(), *m)).collect()
}

/// (project, type, mirror id) of a journal row key.
fn plain(key: &RowKey) -> (u64, String, Option<u64>) {
    (key.project_id, key.mirror_type.to_string(), key.mirror_id)
}

#[test]
fn fixture_journals_load_with_what_they_record() {
    let plan = std::fs::read(fixture_dir().join("plan.csv")).expect("plan");
    let sha = journal::sha256_hex(&plan);
    let updates: Vec<_> =
        fixture_plan_rows().iter().filter(|r| r["action"] == "update").map(key_of).collect();
    assert_eq!(updates, keys(FIXTURE_UPDATES), "the fixture plan's update rows");

    // A finished run: every update row applied, nothing in flight, never resumed.
    let finished = journal::load(&fixture_dir().join("finished.jsonl")).expect("loads");
    let header = finished.header().expect("header");
    assert_eq!((header.version, header.plan_path.as_str()), (1, "plan.csv"));
    assert_eq!(header.plan_sha256, sha, "the header names the fixture plan");
    assert!(header.tool.starts_with("glmirror "), "{}", header.tool);
    assert_eq!(finished.resumes(), 0);
    assert!(finished.in_flight().is_empty());
    let rows: Vec<_> = finished.rows().map(|(k, _)| plain(k)).collect();
    assert_eq!(rows, keys(FIXTURE_UPDATES));
    for (key, state) in finished.rows() {
        assert!(finished.should_skip(key), "{key} is finished");
        let RowState::Finished { outcome, detail } = state else { panic!("{key}: {state:?}") };
        assert_eq!(outcome, Outcome::Applied, "{key}");
        if key.mirror_id == Some(2) {
            assert_eq!(detail, "replaced by push mirror 6");
        }
        assert_eq!(finished.push_repair(key), None, "finished rows need no repair");
    }

    // An interrupted run (killed twice): eleven rows finished; the push row of project 26
    // between the create of its replacement and the delete of the old mirror; the pull row
    // of project 28 written to (maybe) but without an outcome; the rest never started.
    let interrupted = journal::load(&fixture_dir().join("interrupted.jsonl")).expect("loads");
    let header = interrupted.header().expect("header");
    assert_eq!(header.plan_sha256, sha, "the header names the fixture plan");
    assert_eq!(header.plan_path, "plan.csv");
    assert_eq!(interrupted.resumes(), 1);
    assert_eq!(interrupted.dropped_tail_bytes(), 0);
    let done: Vec<_> = interrupted
        .rows()
        .filter(|(k, _)| interrupted.should_skip(k))
        .map(|(k, _)| plain(k))
        .collect();
    assert_eq!(done, keys(&FIXTURE_UPDATES[..FIXTURE_FINISHED_BEFORE_KILL]));
    let in_flight: Vec<_> = interrupted.in_flight().into_iter().map(plain).collect();
    assert_eq!(in_flight, keys(&[(26, "push", Some(2)), (28, "pull", None)]));

    let push = interrupted.in_flight()[0].clone();
    let Some(RowState::InFlight { intent, steps }) = interrupted.row(&push) else {
        panic!("{push} is in flight")
    };
    assert_eq!(intent.write, WriteStep::PushDeleteOld);
    assert_eq!(intent.new_url, "https://gitlab.com/acme-backup/docs.git");
    assert_eq!((intent.old_mirror_id, intent.new_mirror_id), (Some(2), Some(6)));
    let kinds: Vec<_> = steps.iter().map(|s| (s.step, s.new_mirror_id)).collect();
    assert_eq!(kinds, vec![(StepKind::PushCreated, Some(6)), (StepKind::PushConfirmed, None)]);
    assert!(interrupted.attempted(&push));
    let repair = interrupted.push_repair(&push).expect("push repair");
    assert_eq!(
        repair,
        journal::PushRepair {
            old_mirror_id: Some(2),
            replacement_id: Some(6),
            create_unrecorded: false,
            old_deleted: false,
            newest_before: Some(2),
        }
    );

    let pull = interrupted.in_flight()[1].clone();
    let Some(RowState::InFlight { intent, steps }) = interrupted.row(&pull) else {
        panic!("{pull} is in flight")
    };
    assert_eq!(intent.write, WriteStep::PullUpdate);
    assert_eq!(intent.new_url, "https://gitlab.com/acme-oss/ui-kit.git");
    assert_eq!(intent.old_mirror_id, None);
    assert!(steps.is_empty());
    assert_eq!(interrupted.push_repair(&pull), None, "pull rows have no push repair");

    // Rows after those were never started: the journal does not mention them.
    let mentioned: Vec<_> = interrupted.rows().map(|(k, _)| plain(k)).collect();
    assert_eq!(mentioned, keys(&FIXTURE_UPDATES[..FIXTURE_FINISHED_BEFORE_KILL + 2]));
}

/// `ssh://git@host/x` → `ssh://host/x`: how the simulator stores a URL.
fn stored_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

#[test]
fn interrupted_fixture_journal_resumes_to_the_planned_state() {
    let sim_fixture = glmirror::sim::Fixture::load(fixture_dir().join("interrupted-sim.json"))
        .expect("the simulator state at the kill");
    let sim = FixedSim::start(sim_fixture);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(fixture_dir().join("plan.csv"), dir.path().join("plan.csv")).expect("copy");
    let recorded = std::fs::read(fixture_dir().join("interrupted.jsonl")).expect("journal");
    std::fs::write(dir.path().join("plan.journal"), &recorded).expect("copy");
    let before = sim.state();

    let out = sim.apply(dir.path(), &[]);
    out.ok();
    let token = demo_token();
    let shown = output_text(&out);
    assert!(!shown.contains(&token), "token in output: {shown}");

    // Only unfinished rows were written, each once; the push row of project 26 reused its
    // recorded replacement (no second create) and deleted the old mirror.
    let writes: Vec<_> = sim.writes();
    assert!(writes.iter().all(|w| (200..300).contains(&w.status)), "{writes:#?}");
    let paths: Vec<_> = writes.iter().map(|w| format!("{} {}", w.method, w.path)).collect();
    let mut want: Vec<String> = vec![
        "DELETE /api/v4/projects/26/remote_mirrors/2".into(),
        "PUT /api/v4/projects/28/mirror/pull".into(),
        "PUT /api/v4/projects/29/mirror/pull".into(),
        "PUT /api/v4/projects/30/mirror/pull".into(),
        "PUT /api/v4/projects/31/mirror/pull".into(),
        "PUT /api/v4/projects/33/mirror/pull".into(),
        "POST /api/v4/projects/33/remote_mirrors".into(),
        "DELETE /api/v4/projects/33/remote_mirrors/5".into(),
    ];
    let mut got = paths.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "writes of the resumed run");

    // The instance now looks as planned; rows that were not `update` are untouched.
    let after = sim.state();
    let root = after.users.iter().find(|u| u.username == "root").expect("root").id;
    for row in fixture_plan_rows() {
        let (pid, kind, mirror_id) = key_of(&row);
        let now = after.project(pid).expect("project");
        let was = before.project(pid).expect("project");
        let new_url = &row["new_url"];
        match (kind.as_str(), row["action"].as_str()) {
            ("pull", "update") => {
                let pull = now.pull.as_ref().expect("pull mirror");
                assert_eq!(&pull.import_url, &stored_url(new_url), "project {pid}");
                assert_eq!(pull.mirror_user_id, Some(root), "project {pid} mirror user");
                if row["new_auth"] == "service" {
                    assert_eq!(pull.user.as_deref(), Some("oauth2"), "project {pid}");
                    assert_eq!(pull.password.as_deref(), Some(token.as_str()), "project {pid}");
                }
            }
            ("push", "update") => {
                let old = mirror_id.expect("push id");
                assert!(now.remote_mirrors.iter().all(|m| m.id != old), "{old} deleted");
                let new: Vec<_> = now.remote_mirrors.iter().filter(|m| &m.url == new_url).collect();
                assert_eq!(new.len(), 1, "one replacement for {pid}/{old}: {new:?}");
                assert!(new[0].enabled);
                assert_eq!(new[0].password.as_deref(), Some(token.as_str()));
                let kept = was.remote_mirrors.iter().filter(|m| m.id != old && m.id != new[0].id);
                assert_eq!(now.remote_mirrors.len(), kept.count() + 1, "project {pid}");
                if old == 2 {
                    assert_eq!(new[0].id, 6, "the replacement recorded before the kill");
                }
            }
            ("pull", _) => {
                let view = |p: &glmirror::sim::fixture::Project| {
                    p.pull.as_ref().map(|m| {
                        (m.import_url.clone(), m.user.clone(), m.password.clone(), m.mirror_user_id)
                    })
                };
                assert_eq!(view(now), view(was), "project {pid} untouched");
            }
            _ => {
                let view = |p: &glmirror::sim::fixture::Project| {
                    p.remote_mirrors
                        .iter()
                        .find(|m| Some(m.id) == mirror_id)
                        .map(|m| (m.url.clone(), m.user.clone(), m.password.clone()))
                };
                assert_eq!(view(now), view(was), "push mirror {mirror_id:?} untouched");
            }
        }
    }

    // The report: earlier rows from the journal, the two in-flight rows finished now.
    let report = std::fs::read_to_string(dir.path().join("plan.report.csv")).expect("report");
    assert!(!report.contains(&token));
    let mut reader = csv::Reader::from_reader(report.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (outcome, detail) = (col("outcome"), col("outcome_detail"));
    let mut applied = 0;
    for rec in reader.records() {
        let rec = rec.expect("row");
        let key = (rec[col("project_id")].parse::<u64>().expect("id"), &rec[col("mirror_type")]);
        if &rec[col("action")] != "update" {
            assert_eq!(&rec[outcome], "skipped", "{key:?}");
            continue;
        }
        applied += 1;
        assert_eq!(&rec[outcome], "applied", "{key:?}: {}", &rec[detail]);
        let earlier = rec[detail].starts_with("recorded by an earlier run: ");
        let before_kill = FIXTURE_UPDATES[..FIXTURE_FINISHED_BEFORE_KILL]
            .iter()
            .any(|(p, t, _)| (*p, *t) == (key.0, key.1));
        assert_eq!(earlier, before_kill, "{key:?}: {}", &rec[detail]);
        if key == (26, "push") {
            assert_eq!(&rec[detail], "replaced by push mirror 6 (resumed)");
        }
    }
    assert_eq!(applied, FIXTURE_UPDATES.len());

    // The journal was only appended to: a resume line, then the rows finished now.
    let journal_path = dir.path().join("plan.journal");
    let text = std::fs::read(&journal_path).expect("journal");
    assert!(text.starts_with(&recorded), "the recorded entries are kept byte for byte");
    let added = String::from_utf8(text[recorded.len()..].to_vec()).expect("utf-8");
    assert!(added.starts_with(r#"{"kind":"resume","#), "{added}");
    assert!(!added.contains(&token));
    let state = journal::load(&journal_path).expect("loads");
    assert_eq!(state.resumes(), 2);
    assert!(state.in_flight().is_empty());
    let finished: Vec<_> =
        state.rows().filter(|(k, _)| state.should_skip(k)).map(|(k, _)| plain(k)).collect();
    assert_eq!(finished, keys(FIXTURE_UPDATES));
    assert!(!journal::lock_path(&journal_path).exists(), "lock released");
}
