//! The rerunnable benchmark: starts the simulator in this process with a generated instance,
//! runs the real release `glmirror` binary against it (`plan`, a pull-only `plan`, then
//! `apply --yes`) and prints, per phase, the requests the simulator saw, wall time, the
//! latency lower bound and efficiency, requests per mirror, the child's peak memory and 429s.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example bench -- --projects 10000 --latency-ms 20 --concurrency 8
//! ```
//!
//! Options: `--projects N` (10000), `--latency-ms MS` (20), `--concurrency N` (8),
//! `--rate-limit PER_MINUTE`, `--seed S` (1), `--skip-apply`, `--skip-pull-plan`,
//! `--mirror-user NAME` (passed to both plans), `--json`, `--keep DIR` (keep the plan, report
//! and journal there), `--bin PATH` (the glmirror binary; else `GLMIRROR_BIN`, else
//! `glmirror` next to this example's directory, i.e. `target/release/glmirror`).
//!
//! Peak memory is the child's `VmHWM` from `/proc/<pid>/status`, polled every few
//! milliseconds (Linux only; `-` elsewhere). The simulator's own memory is not included: it
//! lives in this process, and is reported separately as `bench_process_peak`.
//!
//! The source hosts are the git host stand-in (`glmirror::githost`, derived from the same
//! fixture; it needs `git`), reached through its CONNECT proxy (`HTTPS_PROXY`, `--ca-cert`),
//! so apply's probes and the token watch are measured too and nothing leaves the machine:
//! per phase, the probe requests per host, the most in flight per host and overall.
//! `--git-latency-ms MS` (default: `--latency-ms`) is added to each stand-in answer;
//! `--probe-plan` adds a `plan --probe` phase; `--no-probe` runs apply with `--no-probe`
//! (the baseline); `--status` adds `status --format prometheus` phases before apply, with and
//! without `--details` (what a scheduled job costs). Without git, the source hosts are not probed or watched
//! (`--no-probe-host`) and the proxy points nowhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use glmirror::githost::{self, GitHost};
use glmirror::sim::{self, Faults, LoggedRequest, RemoteAccept, SimHandle, SimOptions};

/// The service token the remotes accept in this run (never a real credential).
const SERVICE_TOKEN: &str = "ghp_BENCH0service0token0not0a0secret00000";

#[derive(Debug, Clone)]
struct Args {
    projects: u32,
    latency_ms: u64,
    concurrency: u16,
    rate_limit: Option<u32>,
    seed: u64,
    skip_apply: bool,
    skip_pull_plan: bool,
    mirror_user: Option<String>,
    json: bool,
    keep: Option<PathBuf>,
    bin: Option<PathBuf>,
    git_latency_ms: Option<u64>,
    probe_plan: bool,
    status: bool,
    no_probe: bool,
}

const USAGE: &str = "usage: bench [--projects N] [--latency-ms MS] [--concurrency N] \
[--rate-limit PER_MINUTE] [--seed S] [--skip-apply] [--skip-pull-plan] [--mirror-user NAME] \
[--git-latency-ms MS] [--probe-plan] [--no-probe] [--status] [--json] [--keep DIR] [--bin PATH]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        projects: 10_000,
        latency_ms: 20,
        concurrency: 8,
        rate_limit: None,
        seed: 1,
        skip_apply: false,
        skip_pull_plan: false,
        mirror_user: None,
        json: false,
        keep: None,
        bin: None,
        git_latency_ms: None,
        probe_plan: false,
        status: false,
        no_probe: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        }
        match flag.as_str() {
            "--projects" => a.projects = num("--projects", value("--projects")?)?,
            "--latency-ms" => a.latency_ms = num("--latency-ms", value("--latency-ms")?)?,
            "--concurrency" => a.concurrency = num("--concurrency", value("--concurrency")?)?,
            "--rate-limit" => a.rate_limit = Some(num("--rate-limit", value("--rate-limit")?)?),
            "--seed" => a.seed = num("--seed", value("--seed")?)?,
            "--mirror-user" => a.mirror_user = Some(value("--mirror-user")?),
            "--keep" => a.keep = Some(PathBuf::from(value("--keep")?)),
            "--bin" => a.bin = Some(PathBuf::from(value("--bin")?)),
            "--skip-apply" => a.skip_apply = true,
            "--skip-pull-plan" => a.skip_pull_plan = true,
            "--git-latency-ms" => {
                a.git_latency_ms = Some(num("--git-latency-ms", value("--git-latency-ms")?)?)
            }
            "--probe-plan" => a.probe_plan = true,
            "--status" => a.status = true,
            "--no-probe" => a.no_probe = true,
            "--json" => a.json = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if a.projects == 0 || a.concurrency == 0 {
        return Err("--projects and --concurrency must be at least 1".to_owned());
    }
    if a.rate_limit == Some(0) {
        return Err("--rate-limit must be at least 1".to_owned());
    }
    Ok(a)
}

/// The glmirror binary to benchmark.
fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let candidate = match explicit {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("GLMIRROR_BIN") {
            Some(p) => PathBuf::from(p),
            None => {
                // target/<profile>/examples/bench -> target/<profile>/glmirror
                let exe = std::env::current_exe()
                    .map_err(|e| format!("cannot locate this benchmark's executable: {e}"))?;
                let profile_dir = exe
                    .parent()
                    .and_then(Path::parent)
                    .ok_or("cannot locate the target directory")?;
                profile_dir.join(format!("glmirror{}", std::env::consts::EXE_SUFFIX))
            }
        },
    };
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(format!(
            "{} not found: run `cargo build --release` first (or pass --bin PATH)",
            candidate.display()
        ))
    }
}

/// One measured run of the binary.
#[derive(Debug, Clone, serde::Serialize)]
struct Phase {
    name: String,
    exit_code: Option<i32>,
    wall_s: f64,
    requests: usize,
    by_method: BTreeMap<String, usize>,
    /// Requests per endpoint shape (`GET /projects/:id/mirror/pull`).
    by_endpoint: BTreeMap<String, usize>,
    list_pages: usize,
    status_429: usize,
    dropped_or_stalled: usize,
    lower_bound_s: f64,
    /// The fixed-window rate limit's floor: full windows that must pass before the last
    /// request may be answered.
    rate_limit_bound_s: Option<f64>,
    efficiency: f64,
    /// Mirror rows (plan phases) or `update` rows attempted (apply).
    rows: usize,
    pull_rows: usize,
    requests_per_row: f64,
    /// (requests - list pages) / pull mirror rows: only for the pull-only plan.
    requests_per_pull_beyond_list: Option<f64>,
    peak_rss_kib: Option<u64>,
    /// The child's own summary line (`requests: N (retries R, rate-limited L)`).
    client_summary: String,
    /// Requests the git host stand-in answered, per host (probes and the token watch).
    git_requests: BTreeMap<String, usize>,
    /// The most stand-in requests in flight at once, per host.
    git_max_in_flight: BTreeMap<String, usize>,
    /// The most stand-in requests in flight at once, over all hosts.
    git_max_in_flight_total: usize,
}

/// `/projects/123/mirror/pull` -> `/projects/:id/mirror/pull`.
fn endpoint(r: &LoggedRequest) -> String {
    let path = r.path.strip_prefix("/api/v4").unwrap_or(&r.path);
    let shape: Vec<&str> = path
        .split('/')
        .map(|s| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { ":id" } else { s })
        .collect();
    format!("{} {}", r.method, shape.join("/"))
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Run one phase: spawn, poll peak memory until exit, then read the simulator's log.
struct Runner<'a> {
    args: &'a Args,
    bin: &'a Path,
    dir: &'a Path,
    sim: &'a SimHandle,
    /// The source hosts' stand-in, and its CA file.
    git: Option<(&'a GitHost, PathBuf)>,
}

/// Where the child's https traffic goes without a stand-in: nowhere (port 9, discard).
const NO_PROXY_TARGET: &str = "http://127.0.0.1:9";

impl Runner<'_> {
    fn run(&self, name: &str, cli: &[&str], faults: &Faults) -> Result<Phase, String> {
        // Fresh rate-limit windows per phase, so each phase is measured on its own.
        self.sim.set_faults(faults.clone());
        let before = self.sim.request_log().len();
        let (proxy, ca) = match &self.git {
            Some((g, ca)) => {
                g.reset_stats();
                (g.proxy_url().to_string(), vec!["--ca-cert".to_owned(), ca.display().to_string()])
            }
            None => (NO_PROXY_TARGET.to_owned(), Vec::new()),
        };
        let stderr_path = self.dir.join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path)
            .map_err(|e| format!("cannot create {}: {e}", stderr_path.display()))?;
        let concurrency = self.args.concurrency.to_string();
        let started = Instant::now();
        let mut child = Command::new(self.bin)
            .args(&ca)
            .args(cli)
            .args(["--concurrency", &concurrency, "--no-progress"])
            .current_dir(self.dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HTTPS_PROXY", &proxy)
            .env("ALL_PROXY", &proxy)
            .env("GITLAB_URL", self.sim.base_url().as_str())
            .env("GITLAB_TOKEN", self.sim.admin_token())
            .env("MIRROR_TOKEN", SERVICE_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let pid = child.id();
        let mut peak: Option<u64> = None;
        let status = loop {
            if let Some(kib) = vm_hwm_kib(pid) {
                peak = Some(peak.map_or(kib, |p| p.max(kib)));
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(format!("waiting for glmirror: {e}")),
            }
        };
        let wall = started.elapsed().as_secs_f64();
        let log = self.sim.request_log();
        let log = &log[before.min(log.len())..];
        let mut by_method = BTreeMap::new();
        let mut by_endpoint = BTreeMap::new();
        for r in log {
            *by_method.entry(r.method.clone()).or_insert(0) += 1;
            *by_endpoint.entry(endpoint(r)).or_insert(0) += 1;
        }
        let list_pages =
            log.iter().filter(|r| r.method == "GET" && r.path == "/api/v4/projects").count();
        let requests = log.len();
        let lat = self.args.latency_ms as f64 / 1000.0;
        let lower = requests as f64 * lat / f64::from(self.args.concurrency);
        let rate_bound = faults.rate_limit_per_minute.map(|limit| {
            let full_windows = (requests.saturating_sub(1) / limit as usize) as f64;
            full_windows * 60.0
        });
        let bound = lower.max(rate_bound.unwrap_or(0.0));
        let stderr_text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let client_summary = stderr_text
            .lines()
            .find(|l| l.trim_start().starts_with("requests:"))
            .map(|l| l.trim().to_owned())
            .unwrap_or_default();
        if !matches!(status.code(), Some(0 | 3)) {
            let tail: Vec<&str> = stderr_text.lines().rev().take(5).collect();
            eprintln!("bench: {name} exited with {status}; stderr ends:");
            for l in tail.iter().rev() {
                eprintln!("  {l}");
            }
        }
        let (mut git_requests, mut git_max_in_flight, mut git_max_in_flight_total) =
            (BTreeMap::new(), BTreeMap::new(), 0);
        if let Some((g, _)) = &self.git {
            for host in g.names() {
                let s = g.host_stats(host);
                if s.requests > 0 {
                    git_requests.insert(host.clone(), s.requests);
                    git_max_in_flight.insert(host.clone(), s.max_in_flight);
                }
            }
            git_max_in_flight_total = g.max_in_flight_total();
            for c in g.connects() {
                if !c.allowed {
                    eprintln!("bench: {name}: the proxy refused {}", c.target);
                }
            }
        }
        Ok(Phase {
            git_requests,
            git_max_in_flight,
            git_max_in_flight_total,
            name: name.to_owned(),
            exit_code: status.code(),
            wall_s: wall,
            requests,
            by_method,
            by_endpoint,
            list_pages,
            status_429: log.iter().filter(|r| r.status == 429).count(),
            dropped_or_stalled: log.iter().filter(|r| r.status == 0).count(),
            lower_bound_s: lower,
            rate_limit_bound_s: rate_bound,
            efficiency: if wall > 0.0 { bound / wall } else { 0.0 },
            rows: 0,
            pull_rows: 0,
            requests_per_row: 0.0,
            requests_per_pull_beyond_list: None,
            peak_rss_kib: peak,
            client_summary,
        })
    }
}

/// (mirror rows, pull rows, update rows) of a plan CSV.
fn plan_counts(path: &Path) -> Result<(usize, usize, usize), String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or(format!("plan has no {name} column"))
    };
    let (kind, action) = (col("mirror_type")?, col("action")?);
    let (mut rows, mut pull, mut updates) = (0, 0, 0);
    for rec in reader.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        rows += 1;
        pull += usize::from(&rec[kind] == "pull");
        updates += usize::from(&rec[action] == "update");
    }
    Ok((rows, pull, updates))
}

fn bench_process_peak_kib() -> Option<u64> {
    vm_hwm_kib(std::process::id())
}

fn fmt_opt_mib(kib: Option<u64>) -> String {
    kib.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn print_table(args: &Args, phases: &[Phase], bench_peak: Option<u64>) {
    println!(
        "glmirror bench: {} projects, latency {} ms, concurrency {}, rate limit {}, seed {}",
        args.projects,
        args.latency_ms,
        args.concurrency,
        args.rate_limit.map_or("none".to_owned(), |r| format!("{r}/min")),
        args.seed
    );
    println!(
        "{:<10} {:>4} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>7} {:>8} {:>6} {:>9}",
        "phase",
        "exit",
        "requests",
        "GET",
        "writes",
        "wall s",
        "bound",
        "eff",
        "rows",
        "req/row",
        "429",
        "peak MiB"
    );
    for p in phases {
        let gets = p.by_method.get("GET").copied().unwrap_or(0);
        let bound = p.lower_bound_s.max(p.rate_limit_bound_s.unwrap_or(0.0));
        println!(
            "{:<10} {:>4} {:>8} {:>8} {:>8} {:>8.1} {:>6.1} {:>6.2} {:>7} {:>8.2} {:>6} {:>9}",
            p.name,
            p.exit_code.map_or("sig".to_owned(), |c| c.to_string()),
            p.requests,
            gets,
            p.requests - gets,
            p.wall_s,
            bound,
            p.efficiency,
            p.rows,
            p.requests_per_row,
            p.status_429,
            fmt_opt_mib(p.peak_rss_kib)
        );
    }
    for p in phases {
        if let Some(r) = p.requests_per_pull_beyond_list {
            println!(
                "{}: {} list pages, {:.3} requests per pull mirror beyond the list pages",
                p.name, p.list_pages, r
            );
        }
        if p.status_429 > 0 || p.rate_limit_bound_s.is_some() {
            println!(
                "{}: 429 share {:.2}% ({} of {}), rate-limit floor {:.0} s",
                p.name,
                100.0 * p.status_429 as f64 / p.requests.max(1) as f64,
                p.status_429,
                p.requests,
                p.rate_limit_bound_s.unwrap_or(0.0)
            );
        }
        let top: Vec<String> = p.by_endpoint.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!("{} endpoints: {}", p.name, top.join(", "));
        if !p.client_summary.is_empty() {
            println!("{} client: {}", p.name, p.client_summary);
        }
        if !p.git_requests.is_empty() {
            let hosts: Vec<String> = p
                .git_requests
                .iter()
                .map(|(h, n)| format!("{h}: {n} (at most {} at once)", p.git_max_in_flight[h]))
                .collect();
            println!(
                "{} git host requests: {}; at most {} at once overall",
                p.name,
                hosts.join(", "),
                p.git_max_in_flight_total
            );
        }
    }
    println!(
        "bound = requests x latency / concurrency (or the rate-limit floor); eff = bound / wall"
    );
    println!(
        "simulator + bench process peak: {} MiB (not part of the figures above)",
        fmt_opt_mib(bench_peak)
    );
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<(), String> {
    let args = parse_args()?;
    let bin = find_binary(args.bin.as_deref())?;
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot create a temporary dir: {e}"))?;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            d.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let generated = Instant::now();
    let fixture = sim::generate(args.projects, args.seed);
    let source_hosts = fixture
        .demo
        .as_ref()
        .map(|d| d.source_hosts.clone())
        .unwrap_or_else(|| vec!["github.com".to_owned()]);
    let mut opts = SimOptions::new(fixture);
    opts.update_delay_ms = 20;
    // The service token is sent as the username (no --source-user): accept exactly that.
    for host in &source_hosts {
        opts.remote_accepts.push(RemoteAccept {
            host: host.clone(),
            user: Some(SERVICE_TOKEN.to_owned()),
            password: None,
        });
    }
    // The source hosts' stand-in, from the same fixture and accepted tokens.
    let git = match githost::find_git() {
        Ok(_) => {
            let mut hosts = githost::fixture::from_fixture(&opts.fixture, &opts.remote_accepts);
            hosts.latency = Duration::from_millis(args.git_latency_ms.unwrap_or(args.latency_ms));
            let g = rt.block_on(githost::start(hosts)).map_err(|e| format!("git host: {e}"))?;
            let ca = dir.join("githost-ca.pem");
            g.write_ca_pem(&ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            Some((g, ca))
        }
        Err(e) => {
            eprintln!("bench: {e}: the source hosts are neither probed nor watched");
            None
        }
    };
    let sim = rt.block_on(sim::start(opts)).map_err(|e| format!("simulator: {e}"))?;
    if !args.json {
        eprintln!(
            "bench: simulator with {} projects ready in {:.1}s at {}",
            args.projects,
            generated.elapsed().as_secs_f64(),
            sim.base_url()
        );
    }
    let faults = Faults {
        latency_ms: args.latency_ms,
        rate_limit_per_minute: args.rate_limit,
        seed: args.seed,
        ..Faults::default()
    };
    let runner = Runner {
        args: &args,
        bin: &bin,
        dir: &dir,
        sim: &sim,
        git: git.as_ref().map(|(g, ca)| (g, ca.clone())),
    };
    let mut rules: Vec<String> = Vec::new();
    for h in &source_hosts {
        rules.push("--source-host".into());
        rules.push(h.clone());
        if git.is_none() {
            rules.push("--no-probe-host".into());
            rules.push(h.clone());
        }
    }
    if let Some(u) = &args.mirror_user {
        rules.push("--mirror-user".into());
        rules.push(u.clone());
    }
    let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    let mut phases = Vec::new();

    let mut cli = vec!["plan", "--out", "plan.csv"];
    cli.extend(&rules);
    let mut plan = runner.run("plan", &cli, &faults)?;
    let (rows, pulls, updates) = plan_counts(&dir.join("plan.csv"))?;
    plan.rows = rows;
    plan.pull_rows = pulls;
    plan.requests_per_row = plan.requests as f64 / rows.max(1) as f64;
    phases.push(plan);

    if !args.skip_pull_plan {
        let mut cli = vec!["plan", "--mirrors", "pull", "--out", "plan-pull.csv"];
        cli.extend(&rules);
        let mut p = runner.run("plan-pull", &cli, &faults)?;
        let (rows, pulls, _) = plan_counts(&dir.join("plan-pull.csv"))?;
        p.rows = rows;
        p.pull_rows = pulls;
        p.requests_per_row = p.requests as f64 / rows.max(1) as f64;
        p.requests_per_pull_beyond_list =
            Some((p.requests - p.list_pages) as f64 / pulls.max(1) as f64);
        phases.push(p);
    }

    if args.probe_plan && git.is_some() {
        let mut cli = vec!["plan", "--probe", "--out", "plan-probe.csv"];
        cli.extend(&rules);
        let mut p = runner.run("plan-probe", &cli, &faults)?;
        let (rows, pulls, _) = plan_counts(&dir.join("plan-probe.csv"))?;
        p.rows = rows;
        p.pull_rows = pulls;
        p.requests_per_row = p.requests as f64 / rows.max(1) as f64;
        phases.push(p);
    }

    if args.status {
        for (name, extra) in [("status", None), ("status-details", Some("--details"))] {
            let out = format!("{name}.prom");
            let mut cli = vec!["status", "--format", "prometheus", "--out", out.as_str()];
            cli.extend(extra);
            let mut p = runner.run(name, &cli, &faults)?;
            p.rows = std::fs::read_to_string(dir.join(&out))
                .map_err(|e| format!("{out}: {e}"))?
                .lines()
                .filter(|l| l.starts_with("glmirror_mirrors{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<usize>().ok())
                .sum();
            p.requests_per_row = p.requests as f64 / p.rows.max(1) as f64;
            phases.push(p);
        }
    }

    if !args.skip_apply {
        let mut cli = vec!["apply", "plan.csv", "--yes"];
        for h in &source_hosts {
            cli.extend(["--source-host", h.as_str()]);
            if git.is_none() {
                cli.extend(["--no-probe-host", h.as_str()]);
            }
        }
        if args.no_probe {
            cli.push("--no-probe");
        }
        let mut p = runner.run("apply", &cli, &faults)?;
        p.rows = updates;
        p.pull_rows = 0;
        p.requests_per_row = p.requests as f64 / updates.max(1) as f64;
        phases.push(p);
    }
    let bench_peak = bench_process_peak_kib();
    rt.block_on(sim.shutdown());
    if let Some((g, _)) = git {
        rt.block_on(g.shutdown());
    }

    if args.json {
        let proc_field = |file: &str, key: &str| {
            std::fs::read_to_string(file).ok().and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
        };
        let machine = serde_json::json!({
            "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "cpu": proc_field("/proc/cpuinfo", "model name"),
            "memory": proc_field("/proc/meminfo", "MemTotal"),
        });
        let out = serde_json::json!({
            "projects": args.projects,
            "latency_ms": args.latency_ms,
            "concurrency": args.concurrency,
            "rate_limit_per_minute": args.rate_limit,
            "seed": args.seed,
            "machine": machine,
            "bench_process_peak_kib": bench_peak,
            "phases": phases,
        });
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
    } else {
        print_table(&args, &phases, bench_peak);
    }
    Ok(())
}
