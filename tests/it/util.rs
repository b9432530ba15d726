//! Test helpers: a clean-environment command builder for the real binary, and one test's
//! world ([`Env`]): the GitLab simulator and, for every source host, the git host stand-in
//! behind its CONNECT proxy; exit-code assertions that show the output ([`ExitExt`]) and
//! CSV files read by column name ([`Table`]).
//!
//! No test sends a token to a real host. Every command gets `HTTPS_PROXY` (and the other
//! proxy variables) pointing at a local proxy: [`Env`]'s stand-in, which serves the fixture's
//! git hosts and refuses (and records) anything else, or, for commands built without an
//! `Env`, [`refusing_proxy`], which refuses everything. Loopback addresses (the simulator)
//! are reached directly by glmirror itself.

use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Environment variables every test clears, so the developer's own settings never leak in.
pub const CLEARED_ENV: &[&str] = &[
    "GITLAB_URL",
    "GITLAB_HOST",
    "CI_SERVER_URL",
    "GITLAB_TOKEN",
    "GITLAB_PRIVATE_TOKEN",
    "MIRROR_TOKEN",
    "GLMIRROR_LOG",
    "RUST_LOG",
    "NO_COLOR",
];

/// The proxy variables every command gets (pointing at a local proxy, never the developer's).
const PROXY_ENV: &[&str] = &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

/// The `glmirror` binary with a clean environment, its proxy set to [`refusing_proxy`].
pub fn glmirror() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_glmirror"));
    for name in CLEARED_ENV {
        cmd.env_remove(name);
    }
    with_proxy(&mut cmd, &refusing_proxy());
    cmd
}

/// Point every proxy variable at `proxy` and clear `NO_PROXY`.
fn with_proxy(cmd: &mut Command, proxy: &str) {
    for name in PROXY_ENV {
        cmd.env(name, proxy);
    }
    for name in ["HTTP_PROXY", "http_proxy"] {
        cmd.env_remove(name);
    }
    cmd.env("NO_PROXY", "").env("no_proxy", "");
}

/// A local HTTP proxy (one per test binary) that answers every request with 403 and
/// records its target: where a command's traffic goes when no stand-in serves it.
pub fn refusing_proxy() -> String {
    static PROXY: OnceLock<String> = OnceLock::new();
    PROXY
        .get_or_init(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            std::thread::spawn(move || {
                for conn in listener.incoming().flatten() {
                    std::thread::spawn(move || refuse(conn));
                }
            });
            format!("http://{addr}")
        })
        .clone()
}

/// Every target [`refusing_proxy`] refused so far (all tests of this binary).
pub fn refused_targets() -> Vec<String> {
    REFUSED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

static REFUSED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn refuse(mut conn: std::net::TcpStream) {
    use std::io::{Read, Write};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let first = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_owned();
    let target = first.split_whitespace().nth(1).unwrap_or("").to_owned();
    REFUSED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(target);
    let _ =
        conn.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

/// Whether `git` (with http-backend) is usable for the stand-in; without it, say the test is
/// skipped — or fail when `GLMIRROR_REQUIRE_GIT=1` (CI sets it).
pub fn git_or_skip(test: &str) -> bool {
    match glmirror::githost::find_git() {
        Ok(_) => true,
        Err(e) if std::env::var("GLMIRROR_REQUIRE_GIT").as_deref() == Ok("1") => {
            panic!("{test}: GLMIRROR_REQUIRE_GIT=1 but {e}")
        }
        Err(e) => {
            eprintln!("skipping {test}: {e} (set GLMIRROR_REQUIRE_GIT=1 to make this a failure)");
            false
        }
    }
}

use std::path::{Path, PathBuf};
use std::process::Output;

use glmirror::githost::{self, GitHost};
use glmirror::sim::{self, Fixture, LoggedRequest, RemoteAccept, SimHandle, SimOptions};

/// A service token that must never appear in any output or file.
pub const CANARY: &str = "ghp_CANARY0service0token0must0never0leak";

/// One test's world: a simulator (in this process, on its own runtime), the git host
/// stand-in for the fixture's remote hosts (derived from the same fixture, so both agree on
/// who may read what; it also accepts the simulator's `remote_accepts`, the canary first, as
/// account `svc`), a temporary working directory, and commands pointed at all three.
///
/// Without `git` (and without `GLMIRROR_REQUIRE_GIT=1`) there is no stand-in: commands get
/// the refusing proxy, `apply` gets `--no-probe` and `plan` loses `--probe`, with a note.
pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub sim: Option<SimHandle>,
    pub git: Option<GitHost>,
    pub dir: tempfile::TempDir,
    /// The stand-in's CA (`--ca-cert`), outside `dir`.
    aux: tempfile::TempDir,
}

impl Env {
    /// The demo fixture; github.com accepts [`CANARY`] as token-as-username.
    pub fn demo() -> Env {
        Env::with(|_| {})
    }

    /// The demo fixture with options adjusted by `adjust`.
    pub fn with(adjust: impl FnOnce(&mut SimOptions)) -> Env {
        Env::with_githost(adjust, |_| {})
    }

    /// The demo fixture with the simulator's options adjusted by `adjust` and the git host
    /// stand-in's by `adjust_git` (for example an added latency, to make overlap observable).
    pub fn with_githost(
        adjust: impl FnOnce(&mut SimOptions),
        adjust_git: impl FnOnce(&mut githost::GitHostOptions),
    ) -> Env {
        let mut opts = SimOptions::new(Fixture::demo());
        opts.update_delay_ms = 20;
        opts.remote_accepts.push(RemoteAccept {
            host: "github.com".into(),
            user: Some(CANARY.into()),
            password: None,
        });
        adjust(&mut opts);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut hosts = githost::fixture::from_fixture(&opts.fixture, &opts.remote_accepts);
        adjust_git(&mut hosts);
        let aux = tempfile::tempdir().expect("tempdir");
        let git = git_or_skip("the git host stand-in (probes run with --no-probe)").then(|| {
            let host = rt.block_on(githost::start(hosts)).expect("the git host stand-in starts");
            host.write_ca_pem(&aux.path().join("ca.pem")).expect("write CA");
            host
        });
        let sim = rt.block_on(sim::start(opts)).expect("simulator starts");
        Env { rt, sim: Some(sim), git, dir: tempfile::tempdir().expect("tempdir"), aux }
    }

    /// The stand-in (tests that need it call [`git_or_skip`] first).
    pub fn githost(&self) -> &GitHost {
        self.git.as_ref().expect("the git host stand-in runs (git is on PATH)")
    }

    /// The stand-in's CA file.
    pub fn ca(&self) -> PathBuf {
        self.aux.path().join("ca.pem")
    }

    /// Point `cmd` at the stand-in for `args`: its proxy in the environment and its CA as
    /// `--ca-cert` (unless `args` gives one), or, without a stand-in, the refusing proxy and
    /// no probes. Returns the arguments to pass.
    pub fn reach(&self, cmd: &mut Command, args: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        match &self.git {
            Some(g) => {
                with_proxy(cmd, g.proxy_url().as_str());
                if !args.contains(&"--ca-cert") {
                    out.splice(0..0, ["--ca-cert".to_owned(), self.ca().display().to_string()]);
                }
            }
            None => {
                with_proxy(cmd, &refusing_proxy());
                out.retain(|a| a != "--probe");
                if args.first() == Some(&"apply") {
                    out.push("--no-probe".into());
                }
            }
        }
        out
    }

    pub fn sim(&self) -> &SimHandle {
        self.sim.as_ref().expect("simulator running")
    }

    pub fn base_url(&self) -> String {
        self.sim().base_url().to_string()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `glmirror ARGS` in the test directory, against the simulator, as its admin, with the
    /// canary as the service token.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = glmirror();
        let args = self.reach(&mut cmd, args);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("GITLAB_URL", self.base_url())
            .env("GITLAB_TOKEN", self.sim().admin_token())
            .env("MIRROR_TOKEN", CANARY);
        cmd
    }

    /// Run and check that the canary is in neither stdout nor stderr.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("glmirror runs");
        assert_no_canary(&out);
        out
    }

    /// Requests that could change state.
    pub fn writes(&self) -> Vec<LoggedRequest> {
        self.sim().request_log().into_iter().filter(|r| r.method != "GET").collect()
    }

    /// Every file in the test directory is free of the canary.
    pub fn assert_files_clean(&self) {
        for entry in walk(self.dir.path()) {
            let bytes = std::fs::read(&entry).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "canary token found in {}",
                entry.display()
            );
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Neither stdout nor stderr carries the canary.
pub fn assert_no_canary(out: &Output) {
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains(CANARY), "canary token leaked in output:\n{text}");
}

/// stdout and stderr as text, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------
// Exit-code assertions
// ---------------------------------------------------------------------------------------

/// How much of each stream a failed exit-code assertion shows: the end, where errors are.
pub const SHOWN_TAIL: usize = 4096;

/// Exit-code assertions on a finished command. Each returns the output for more checks
/// and, when the code is not the expected one, panics at the caller's line with the expected
/// and the actual exit, and the last [`SHOWN_TAIL`] bytes of stdout and of stderr.
///
/// ```ignore
/// out.ok();                                  // exit 0
/// out.exit(3);                               // exit 3
/// out.context(format!("row {i}")).exit_in(&[0, 3]);
/// ```
pub trait ExitExt {
    /// The same assertions, with `what` (a loop variable, a case name) in the message.
    fn context(&self, what: impl std::fmt::Display) -> Exit<'_>;

    /// The command exited 0.
    #[track_caller]
    fn ok(&self) -> &Output {
        self.context("").ok()
    }

    /// The command exited with `code`.
    #[track_caller]
    fn exit(&self, code: i32) -> &Output {
        self.context("").exit(code)
    }

    /// The command exited with one of `codes`.
    #[track_caller]
    fn exit_in(&self, codes: &[i32]) -> &Output {
        self.context("").exit_in(codes)
    }

    /// The command did not exit 0 (any other code, or a signal).
    #[track_caller]
    fn failed(&self) -> &Output {
        self.context("").failed()
    }
}

impl ExitExt for Output {
    fn context(&self, what: impl std::fmt::Display) -> Exit<'_> {
        Exit { out: self, what: what.to_string() }
    }
}

/// [`ExitExt`]'s assertions on one output, with a context for the message.
pub struct Exit<'a> {
    out: &'a Output,
    what: String,
}

impl<'a> Exit<'a> {
    /// The command exited 0.
    #[track_caller]
    pub fn ok(self) -> &'a Output {
        self.exit(0)
    }

    /// The command exited with `code`.
    #[track_caller]
    pub fn exit(self, code: i32) -> &'a Output {
        let want = format!("exit code {code}");
        self.check(self.out.status.code() == Some(code), &want)
    }

    /// The command exited with one of `codes`.
    #[track_caller]
    pub fn exit_in(self, codes: &[i32]) -> &'a Output {
        let want = format!("an exit code in {codes:?}");
        self.check(self.out.status.code().is_some_and(|c| codes.contains(&c)), &want)
    }

    /// The command did not exit 0.
    #[track_caller]
    pub fn failed(self) -> &'a Output {
        self.check(self.out.status.code() != Some(0), "a failure (not exit code 0)")
    }

    #[track_caller]
    fn check(&self, passed: bool, want: &str) -> &'a Output {
        if !passed {
            panic!("{}", exit_message(self.out, want, &self.what));
        }
        self.out
    }
}

/// The message of a failed exit-code assertion.
fn exit_message(out: &Output, want: &str, what: &str) -> String {
    let what = if what.is_empty() { String::new() } else { format!("{what}: ") };
    format!(
        "{what}expected {want}, got {}\n--- stdout{}\n--- stderr{}",
        out.status,
        shown_tail(&out.stdout),
        shown_tail(&out.stderr)
    )
}

/// A stream for a message: a header remark, a newline and at most its last [`SHOWN_TAIL`]
/// bytes (cut at a character boundary), or `(empty)`.
fn shown_tail(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return " (empty)".into();
    }
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= SHOWN_TAIL {
        return format!("\n{text}");
    }
    let mut start = text.len() - SHOWN_TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!(" (last {} of {} bytes)\n{}", text.len() - start, text.len(), &text[start..])
}

// ---------------------------------------------------------------------------------------
// CSV files read by column name
// ---------------------------------------------------------------------------------------

/// A CSV file (a plan, a report, `status --csv`, `rewrite`'s output) with its header, so
/// tests read cells by column name: a renamed or missing column fails loudly instead of a
/// test reading its neighbour.
pub struct Table {
    /// Where the text came from, for messages.
    source: String,
    headers: std::sync::Arc<[String]>,
    rows: Vec<Row>,
}

/// One data row of a [`Table`].
#[derive(Clone)]
pub struct Row {
    source: String,
    /// 1-based index among the data rows (the header is row 0).
    number: usize,
    headers: std::sync::Arc<[String]>,
    record: csv::StringRecord,
}

impl Table {
    /// Read and parse the CSV file at `path`.
    #[track_caller]
    pub fn read(path: impl AsRef<Path>) -> Table {
        let path = path.as_ref();
        match std::fs::read(path) {
            Ok(bytes) => Table::parse(&path.display().to_string(), bytes),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }

    /// Parse CSV `text` (stdout of a command, say); `source` names it in messages.
    #[track_caller]
    pub fn parse(source: &str, text: impl AsRef<[u8]>) -> Table {
        // (Loops and matches, not closures: a panic in a closure would not be the caller's.)
        let mut reader = csv::Reader::from_reader(text.as_ref());
        let headers: std::sync::Arc<[String]> = match reader.headers() {
            Ok(h) => h.iter().map(str::to_owned).collect(),
            Err(e) => panic!("{source}: no CSV header: {e}"),
        };
        let mut rows = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let record = match record {
                Ok(r) => r,
                Err(e) => panic!("{source}: data row {}: {e}", i + 1),
            };
            rows.push(Row {
                source: source.to_owned(),
                number: i + 1,
                headers: headers.clone(),
                record,
            });
        }
        Table { source: source.to_owned(), headers, rows }
    }

    /// The column names, in order.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The data rows, in order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The rows whose `column` holds exactly `value`.
    #[track_caller]
    pub fn rows_where(&self, column: &str, value: &str) -> Vec<&Row> {
        column_index(&self.source, &self.headers, column);
        self.rows.iter().filter(|r| r.cell(column) == value).collect()
    }

    /// The first row that matches `pred`, or a panic naming `what`.
    #[track_caller]
    pub fn find(&self, what: &str, pred: impl Fn(&Row) -> bool) -> &Row {
        match self.rows.iter().find(|r| pred(r)) {
            Some(row) => row,
            None => panic!("{}: no row is {what}:\n{self:?}", self.source),
        }
    }

    /// Every cell of `column`, in row order.
    #[track_caller]
    pub fn column(&self, column: &str) -> Vec<&str> {
        column_index(&self.source, &self.headers, column);
        self.rows.iter().map(|r| r.cell(column)).collect()
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.headers.join(","))?;
        for row in &self.rows {
            writeln!(f, "{}", row.record.iter().collect::<Vec<_>>().join(","))?;
        }
        Ok(())
    }
}

impl Row {
    /// The cell in `column`; panics when the file has no such column.
    #[track_caller]
    pub fn cell(&self, column: &str) -> &str {
        let at = column_index(&self.source, &self.headers, column);
        match self.record.get(at) {
            Some(cell) => cell,
            None => panic!(
                "{}: data row {} has no cell for column `{column}`",
                self.source, self.number
            ),
        }
    }

    /// The cell in `column` as a number; panics when it is not one.
    #[track_caller]
    pub fn number(&self, column: &str) -> u64 {
        let cell = self.cell(column);
        match cell.parse() {
            Ok(n) => n,
            Err(e) => panic!(
                "{}: data row {}: `{column}` is {cell:?}, not a number: {e}",
                self.source, self.number
            ),
        }
    }
}

impl std::fmt::Debug for Row {
    /// `column=value` pairs, so a message shows which cell is which.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.headers.iter().zip(self.record.iter())).finish()
    }
}

/// Where `column` is in `headers`; panics, listing the columns, when it is not there.
#[track_caller]
fn column_index(source: &str, headers: &[String], column: &str) -> usize {
    match headers.iter().position(|h| h == column) {
        Some(at) => at,
        None => {
            panic!("{source}: no column `{column}` (the columns are: {})", headers.join(", "))
        }
    }
}

#[cfg(unix)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::{ExitStatus, Output};

    use super::{ExitExt as _, SHOWN_TAIL, Table};

    /// Set in the child process that [`exit_assertion_child`] runs in.
    const CHILD_ENV: &str = "GLMIRROR_TEST_EXIT_ASSERTION_CHILD";

    /// An output as if a command exited with `code` after writing `stdout` and `stderr`.
    fn output(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status: ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    /// The message `f` panics with.
    fn panic_message<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).map(|_| ()).expect_err("the assertion fails");
        match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(p) => p.downcast_ref::<&str>().expect("a text panic").to_string(),
        }
    }

    #[test]
    fn exit_assertions_that_hold_return_the_output() {
        let ok = output(0, "fine", "");
        assert!(std::ptr::eq(ok.ok(), &ok));
        assert!(std::ptr::eq(ok.exit(0), &ok));
        assert!(std::ptr::eq(ok.exit_in(&[3, 0]), &ok));
        assert!(std::ptr::eq(ok.context("case").ok(), &ok));
        let three = output(3, "", "unhealthy");
        assert!(std::ptr::eq(three.exit(3), &three));
        assert!(std::ptr::eq(three.failed(), &three));
        let killed = Output { status: ExitStatus::from_raw(9), stdout: vec![], stderr: vec![] };
        assert!(std::ptr::eq(killed.failed(), &killed), "a signal is a failure");
    }

    #[test]
    fn a_failed_exit_assertion_shows_both_codes_and_both_streams() {
        let out = output(3, "OUT-MARKER\n", "ERR-MARKER\n");
        type Check = fn(&Output) -> &Output;
        let cases: [(&str, Check); 4] = [
            ("expected exit code 0, got exit status: 3", |o| o.ok()),
            ("expected exit code 2, got exit status: 3", |o| o.exit(2)),
            ("expected an exit code in [0, 1], got exit status: 3", |o| o.exit_in(&[0, 1])),
            ("trial 7: expected exit code 0, got", |o| o.context("trial 7").ok()),
        ];
        for (want, check) in &cases {
            let message = panic_message(|| check(&out));
            assert!(message.starts_with(want), "{want:?} in {message}");
            let (stdout, stderr) = message.split_once("--- stderr").expect("stderr section");
            assert!(stdout.contains("--- stdout\nOUT-MARKER"), "{message}");
            assert!(stderr.contains("ERR-MARKER"), "{message}");
        }
        let ok = output(0, "", "");
        let message = panic_message(|| ok.failed());
        assert!(message.starts_with("expected a failure (not exit code 0), got exit status: 0"));
        assert!(message.contains("--- stdout (empty)\n--- stderr (empty)"), "{message}");
        let killed = Output { status: ExitStatus::from_raw(9), stdout: vec![], stderr: vec![] };
        let message = panic_message(|| killed.ok());
        assert!(message.starts_with("expected exit code 0, got signal: 9"), "{message}");
    }

    #[test]
    fn a_failed_exit_assertion_shows_only_the_end_of_a_long_stream() {
        let long = format!("FIRST{}é-LAST", "x".repeat(3 * SHOWN_TAIL));
        let out = output(1, &long, &long);
        let message = panic_message(|| out.ok());
        assert!(!message.contains("FIRST"), "the start is cut");
        assert_eq!(message.matches("é-LAST").count(), 2, "both ends shown");
        let cut = format!("(last {SHOWN_TAIL} of {} bytes)", long.len());
        assert_eq!(message.matches(&cut).count(), 2, "{cut} in {}", &message[..200]);
        assert!(message.len() < 3 * SHOWN_TAIL, "bounded: {} bytes", message.len());
        // A cut inside a character moves to the next boundary.
        let wide = "é".repeat(SHOWN_TAIL);
        let message = panic_message(|| output(1, &wide, "").ok().status);
        assert!(message.contains(&format!("(last {} of", SHOWN_TAIL)), "{}", &message[..200]);
        let odd = format!("{}x", "é".repeat(SHOWN_TAIL));
        let message = panic_message(|| output(1, &odd, "").ok().status);
        assert!(message.contains(&format!("(last {} of", SHOWN_TAIL - 1)), "{}", &message[..200]);
    }

    /// Helper run in a child process by the test below: an assertion (named by the
    /// environment variable) that fails, after printing the line it is on.
    #[test]
    #[ignore = "helper: run as a child process by failed_assertions_point_at_the_caller"]
    fn failing_assertion_child() {
        let Some(what) = std::env::var_os(CHILD_ENV) else { return };
        let out = output(4, "child stdout", "child stderr");
        let table = Table::parse("child.csv", "project_id,action\n1,update\n");
        match what.to_str() {
            Some("exit") => {
                println!("CALLER-LINE {}", line!() + 1);
                out.context("in the child").exit(0);
            }
            Some("cell") => {
                println!("CALLER-LINE {}", line!() + 1);
                let _ = table.rows()[0].cell("actoin");
            }
            Some("number") => {
                println!("CALLER-LINE {}", line!() + 1);
                let _ = table.rows()[0].number("action");
            }
            other => panic!("unknown case {other:?}"),
        }
    }

    #[test]
    fn failed_assertions_point_at_the_caller() {
        for (case, message) in [
            ("exit", "in the child: expected exit code 0, got exit status: 4"),
            ("cell", "child.csv: no column `actoin` (the columns are: project_id, action)"),
            ("number", "child.csv: data row 1: `action` is \"update\", not a number"),
        ] {
            let exe = std::env::current_exe().expect("test binary path");
            let child = std::process::Command::new(exe)
                .args(["util::tests::failing_assertion_child", "--exact", "--ignored"])
                .arg("--nocapture")
                .env(CHILD_ENV, case)
                .env_remove("RUST_BACKTRACE")
                .output()
                .expect("the test binary runs");
            let stdout = String::from_utf8_lossy(&child.stdout);
            let stderr = String::from_utf8_lossy(&child.stderr);
            let line = stdout
                .lines()
                .find_map(|l| l.strip_prefix("CALLER-LINE "))
                .unwrap_or_else(|| panic!("{case}: the child ran the helper: {stdout}\n{stderr}"));
            let at = format!("panicked at {}:{line}:", file!());
            assert!(stderr.contains(&at), "{case}: {at:?} in {stderr}");
            assert!(stderr.contains(message), "{case}: {stderr}");
            if case == "exit" {
                assert!(stderr.contains("child stdout") && stderr.contains("child stderr"));
            }
            assert_eq!(child.status.code(), Some(101), "{case}: {stdout}\n{stderr}");
        }
    }

    #[test]
    fn table_cells_are_read_by_column_name() {
        let table = Table::parse(
            "t.csv",
            "project_id,action,new_url\n1,update,https://a\n2,skip,\n3,update,x\n",
        );
        assert_eq!(table.headers(), ["project_id", "action", "new_url"]);
        assert_eq!(table.rows().len(), 3);
        assert_eq!(table.rows()[1].cell("action"), "skip");
        assert_eq!(table.rows()[0].number("project_id"), 1);
        let updates: Vec<u64> =
            table.rows_where("action", "update").iter().map(|r| r.number("project_id")).collect();
        assert_eq!(updates, [1, 3]);
        assert_eq!(table.find("skipped", |r| r.cell("action") == "skip").cell("new_url"), "");
        assert_eq!(table.column("new_url"), ["https://a", "", "x"]);
        assert_eq!(
            format!("{:?}", table.rows()[0]),
            r#"{"project_id": "1", "action": "update", "new_url": "https://a"}"#
        );
        // A file reads the same, with CRLF line ends.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.csv");
        std::fs::write(&path, "project_id,action\r\n7,manual\r\n").expect("write");
        let file = Table::read(&path);
        assert_eq!(file.rows_where("action", "manual")[0].number("project_id"), 7);
    }

    #[test]
    fn an_unknown_column_fails_loudly() {
        let table = Table::parse("plan.csv", "project_id,action\n1,update\n");
        let message = panic_message(|| table.rows()[0].cell("actoin"));
        assert_eq!(message, "plan.csv: no column `actoin` (the columns are: project_id, action)");
        let message = panic_message(|| table.rows_where("acton", "update"));
        assert!(message.starts_with("plan.csv: no column `acton`"), "{message}");
        let message = panic_message(|| table.column("mirror_type"));
        assert!(message.starts_with("plan.csv: no column `mirror_type`"), "{message}");
        let message = panic_message(|| table.find("a push row", |r| r.cell("action") == "push"));
        assert!(message.starts_with("plan.csv: no row is a push row"), "{message}");
        let message = panic_message(|| table.rows()[0].number("action"));
        assert!(message.contains("`action` is \"update\", not a number"), "{message}");
    }
}
