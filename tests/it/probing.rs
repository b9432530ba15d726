//! `plan --probe`, apply's probe guard and the token watch, end to end: the real binary
//! against the simulator and the git host stand-in (derived from the same demo fixture, so
//! `acme/payroll` is readable by mwilson only and `acme/legacy-wiki` is dumb HTTP), reached
//! through the stand-in's CONNECT proxy as a user's network would be.

use std::collections::BTreeMap;

use glmirror::githost::{Access, TokenState};

use crate::util::{CANARY, Env, ExitExt as _, git_or_skip, text};

const GH: &[&str] = &["--source-host", "github.com"];

fn args<'a>(head: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(GH).copied().collect()
}

/// The plan's rows as column → value maps, by `project_id/mirror_type`.
fn rows(csv_text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            let row: BTreeMap<String, String> =
                headers.iter().zip(r.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect();
            (format!("{}/{}/{}", row["project_id"], row["mirror_type"], row["mirror_id"]), row)
        })
        .collect()
}

fn read(env: &Env, file: &str) -> String {
    std::fs::read_to_string(env.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every connection went to a host the stand-in serves, through its proxy: nothing left
/// 127.0.0.1. Returns the hosts contacted.
fn assert_nothing_left_this_machine(env: &Env) -> Vec<String> {
    let served = env.githost().names();
    let mut hosts = Vec::new();
    for c in env.githost().connects() {
        assert!(c.allowed, "a connection was refused (it would have left the machine): {c:?}");
        let (name, port) = c.target.rsplit_once(':').expect("host:port");
        assert_eq!(port, "443", "{c:?}");
        assert!(served.iter().any(|n| n == name), "{c:?}");
        if !hosts.contains(&name.to_owned()) {
            hosts.push(name.to_owned());
        }
    }
    hosts
}

#[test]
fn plan_probe_keeps_the_unreadable_repository_off_the_service_credentials() {
    if !git_or_skip("plan_probe_keeps_the_unreadable_repository_off_the_service_credentials") {
        return;
    }
    let env = Env::demo();
    let out = env.run(&args(&["plan", "--out", "plain.csv"]));
    out.ok();
    env.githost().reset_stats();
    let out = env.run(&args(&["plan", "--probe", "--out", "plan.csv"]));
    out.ok();
    let err = stderr(&out);
    assert!(err.contains("probes:    dumb-http 1, no-access-or-missing 2, ok "), "{err}");
    assert!(err.contains("from this machine, not from GitLab's network"), "{err}");
    assert!(err.contains("keep their current credentials"), "{err}");
    assert!(err.contains("the service token for github.com does not expire"), "{err}");
    let plain = rows(&read(&env, "plain.csv"));
    let probed = rows(&read(&env, "plan.csv"));
    assert_eq!(plain.keys().collect::<Vec<_>>(), probed.keys().collect::<Vec<_>>());

    // acme/payroll: only mwilson may read it; the service account gets GitHub's 404.
    let payroll = &probed["60/pull/"];
    assert_eq!(payroll["probe"], "no-access-or-missing", "{payroll:?}");
    assert_eq!(payroll["action"], "manual", "{payroll:?}");
    assert_eq!(payroll["new_auth"], "");
    assert!(
        payroll["reason"].contains("grant the service account read access to acme/payroll.git"),
        "{}",
        payroll["reason"]
    );
    assert_eq!(plain["60/pull/"]["new_auth"], "service", "without --probe it would be moved");
    // acme/legacy-wiki: dumb HTTP, still moved, diagnosed.
    let wiki = &probed["61/pull/"];
    assert_eq!((wiki["probe"].as_str(), wiki["diagnosis"].as_str()), ("dumb-http", "dumb-http"));
    assert_eq!((wiki["action"].as_str(), wiki["new_auth"].as_str()), ("update", "service"));
    // acme/old-sdk does not exist: GitHub's 404 again.
    assert_eq!(probed["16/pull/"]["probe"], "no-access-or-missing");
    // Every other row is as planned; each service row was probed, nothing else was.
    let mut ok = 0;
    for (key, row) in &probed {
        let was = &plain[key];
        if ["60/pull/", "61/pull/", "16/pull/"].contains(&key.as_str()) {
            continue;
        }
        for col in ["action", "new_url", "new_user", "new_auth", "fixes", "diagnosis"] {
            assert_eq!(row[col], was[col], "{key} {col}");
        }
        let service = was["new_auth"] == "service";
        assert_eq!(row["probe"] == "ok", service, "{key}: {row:?}");
        assert_eq!(row["probe"].is_empty(), !service, "{key}: {row:?}");
        ok += usize::from(service);
    }
    assert!(ok >= 10, "{ok} rows proven");
    // One GET per probed row, credentials up front, never in the URL.
    let requests = env.githost().requests();
    let git: Vec<_> = requests.iter().filter(|r| r.path.ends_with("/info/refs")).collect();
    assert_eq!(git.len(), ok + 3, "{git:?}");
    for r in &requests {
        assert_eq!(r.method, "GET");
        assert!(!format!("{} {:?}", r.path, r.query).contains("CANARY"), "{r:?}");
    }
    assert!(git.iter().all(|r| r.auth == glmirror::githost::AuthSeen::Basic));
    // The token went to github.com (its rows) and api.github.com (the token watch) only.
    let mut hosts = assert_nothing_left_this_machine(&env);
    hosts.sort();
    assert_eq!(hosts, ["api.github.com", "github.com"]);
    assert!(env.writes().is_empty(), "plan wrote to GitLab");
    env.assert_files_clean();

    // With --mirror-user the unreadable repository's mirror user still moves, nothing else.
    let out = env.run(&args(&["plan", "--probe", "--mirror-user", "svc-mirror", "--out", "m.csv"]));
    out.ok();
    let payroll = &rows(&read(&env, "m.csv"))["60/pull/"];
    assert_eq!(
        (payroll["action"].as_str(), payroll["fixes"].as_str(), payroll["new_auth"].as_str()),
        ("update", "mirror-user", "unchanged"),
        "{payroll:?}"
    );
    assert!(payroll["reason"].contains("not moved"), "{}", payroll["reason"]);
}

#[test]
fn apply_refuses_the_write_when_access_is_revoked_between_plan_and_apply() {
    if !git_or_skip("apply_refuses_the_write_when_access_is_revoked_between_plan_and_apply") {
        return;
    }
    let env = Env::demo();
    let out = env.run(&args(&["plan", "--probe", "--out", "plan.csv"]));
    out.ok();
    assert_eq!(rows(&read(&env, "plan.csv"))["1/pull/"]["probe"], "ok");
    // Between plan and apply, the service account loses acme/api-gateway (projects 1, 33).
    env.githost().set_access("github.com", "acme/api-gateway.git", "svc", Access::None);
    let before = env.sim().snapshot();
    let out = env.run(&args(&["apply", "plan.csv", "--yes"]));
    out.exit(3);
    assert!(stderr(&out).contains("first proven with one read-only git request"), "{}", text(&out));
    let report = rows(&read(&env, "plan.report.csv"));
    for key in ["1/pull/", "33/pull/"] {
        let r = &report[key];
        assert_eq!(r["outcome"], "failed", "{key}: {r:?}");
        assert!(r["outcome_detail"].starts_with("probe no-access-or-missing (HTTP 404"), "{r:?}");
        assert!(r["outcome_detail"].contains("not written"), "{r:?}");
    }
    assert!(report.values().filter(|r| r["outcome"] == "applied").count() >= 10);
    let now = env.sim().snapshot();
    let pull = |s: &glmirror::sim::StateSnapshot| s.project(1).and_then(|p| p.pull.clone());
    let creds = |s: &glmirror::sim::StateSnapshot| {
        pull(s).map(|p| (p.import_url, p.user, p.password, p.mirror_user_id))
    };
    assert_eq!(creds(&now), creds(&before), "the revoked row was not written");
    // Journaled: an outcome, no intent.
    let journal = read(&env, "plan.journal");
    let lines: Vec<serde_json::Value> =
        journal.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let of_1 = |kind: &str| {
        lines
            .iter()
            .filter(|l| l["kind"] == kind && l["project_id"] == 1 && l["mirror_type"] == "pull")
            .count()
    };
    assert_eq!((of_1("intent"), of_1("outcome")), (0, 1), "{journal}");
    // Access granted again: the rerun writes exactly the rows that failed.
    env.githost().set_access("github.com", "acme/api-gateway.git", "svc", Access::Write);
    let writes = env.writes().len();
    let out = env.run(&args(&["apply", "plan.csv", "--yes"]));
    out.ok();
    let report = rows(&read(&env, "plan.report.csv"));
    assert_eq!(report["1/pull/"]["outcome"], "applied", "{:?}", report["1/pull/"]);
    assert_eq!(env.writes().len(), writes + 2, "only the two rows were written");
    let now = env.sim().snapshot();
    assert_eq!(pull(&now).and_then(|p| p.user).as_deref(), Some(CANARY));
    assert_nothing_left_this_machine(&env);
    env.assert_files_clean();
}

#[test]
fn dry_run_says_would_fail_and_without_the_token_skips_probes() {
    if !git_or_skip("dry_run_says_would_fail_and_without_the_token_skips_probes") {
        return;
    }
    let env = Env::demo();
    let out = env.run(&args(&["plan", "--out", "plan.csv"]));
    out.ok();
    env.githost().reset_stats();
    let out = env.run(&args(&["apply", "plan.csv", "--dry-run"]));
    out.ok();
    let report = rows(&read(&env, "plan.report.csv"));
    let payroll = &report["60/pull/"];
    assert_eq!(payroll["outcome"], "dry-run");
    assert!(
        payroll["outcome_detail"].starts_with("would fail: no-access-or-missing"),
        "{payroll:?}"
    );
    assert!(
        report["1/pull/"]["outcome_detail"].ends_with("(probe: ok)"),
        "{:?}",
        report["1/pull/"]
    );
    assert!(env.githost().requests().iter().any(|r| r.path.ends_with("/info/refs")));
    assert!(env.writes().is_empty());
    // The summary counts the dry-run rows a real run would not write.
    let dry = |r: &&BTreeMap<String, String>| r["outcome"] == "dry-run";
    let dry_rows = report.values().filter(dry).count();
    let failing = report
        .values()
        .filter(dry)
        .filter(|r| r["outcome_detail"].contains("would fail: "))
        .count();
    assert!(failing >= 1 && failing < dry_rows, "{failing} of {dry_rows}");
    let summary = format!("dry-run {dry_rows} (would fail {failing})");
    assert!(stderr(&out).contains(&summary), "{summary}: {}", text(&out));
    // Without the service token: no probes, and it says so.
    env.githost().reset_stats();
    let out =
        env.cmd(&args(&["apply", "plan.csv", "--dry-run"])).env_remove("MIRROR_TOKEN").output();
    let out = out.expect("runs");
    out.ok();
    assert!(stderr(&out).contains("no service token for github.com"), "{}", text(&out));
    assert!(env.githost().requests().is_empty(), "{:?}", env.githost().requests());
    let report = rows(&read(&env, "plan.report.csv"));
    assert!(!report["60/pull/"]["outcome_detail"].contains("would fail"));
    assert!(!stderr(&out).contains("(would fail"), "{}", text(&out));
    assert!(env.writes().is_empty());
}

#[test]
fn a_token_five_days_from_expiry_refuses_apply_before_any_write() {
    if !git_or_skip("a_token_five_days_from_expiry_refuses_apply_before_any_write") {
        return;
    }
    let env = Env::demo();
    let out = env.run(&args(&["plan", "--probe", "--out", "plan.csv"]));
    out.ok();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    let date = expires.date().to_string();
    env.githost().set_token("github.com", "svc", TokenState::Active, Some(expires));
    let out = env.run(&args(&["apply", "plan.csv", "--yes"]));
    out.exit(1);
    let err = stderr(&out);
    assert!(err.contains(&format!("the service token for github.com expires on {date}")), "{err}");
    assert!(
        err.contains("mirrors depend on it") && err.contains("--allow-expiring-token"),
        "{err}"
    );
    assert!(env.writes().is_empty(), "wrote before refusing: {:?}", env.writes());
    assert!(!env.path("plan.journal").exists(), "refused before the journal");
    // plan and a dry run only warn; status fails (exit 3).
    let out = env.run(&args(&["plan", "--out", "again.csv"]));
    out.ok();
    assert!(
        stderr(&out).contains("warning: the service token for github.com expires"),
        "{}",
        text(&out)
    );
    let out = env.run(&args(&["apply", "plan.csv", "--dry-run"]));
    out.ok();
    let out = env.run(&args(&["status"]));
    out.exit(3);
    assert!(stderr(&out).contains(&date), "{}", text(&out));
    // --allow-expiring-token applies, with a warning.
    let out = env.run(&args(&["apply", "plan.csv", "--yes", "--allow-expiring-token"]));
    out.ok();
    assert!(stderr(&out).contains("allowed by --allow-expiring-token"), "{}", text(&out));
    assert!(!env.writes().is_empty());
    env.assert_files_clean();
}

#[test]
fn a_revoked_token_is_never_probed_and_apply_refuses() {
    if !git_or_skip("a_revoked_token_is_never_probed_and_apply_refuses") {
        return;
    }
    let env = Env::demo();
    env.githost().set_token("github.com", "svc", TokenState::Revoked, None);
    let out = env.run(&args(&["plan", "--probe", "--out", "plan.csv"]));
    out.ok();
    assert!(
        stderr(&out).contains("warning: the service token for github.com was rejected"),
        "{}",
        text(&out)
    );
    let plan = rows(&read(&env, "plan.csv"));
    let service: Vec<_> = plan.values().filter(|r| r["new_auth"] == "service").collect();
    assert!(!service.is_empty());
    assert!(service.iter().all(|r| r["probe"] == "breaker"), "unproven, as planned");
    let git = env.githost().requests().into_iter().filter(|r| r.path.ends_with("/info/refs"));
    assert_eq!(git.count(), 0, "a token the watch found invalid is not probed");
    assert_eq!(env.githost().host_stats("github.com").failed_logins, 0);
    let out = env.run(&args(&["apply", "plan.csv", "--yes", "--allow-expiring-token"]));
    out.exit(1);
    assert!(env.writes().is_empty());
}

#[test]
fn the_credentials_file_can_date_a_token_and_a_host_can_be_left_unprobed() {
    if !git_or_skip("the_credentials_file_can_date_a_token_and_a_host_can_be_left_unprobed") {
        return;
    }
    let env = Env::demo();
    let out = env.run(&args(&["plan", "--out", "plan.csv"]));
    out.ok();
    // The file's date is earlier than the API's "never": it counts.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(3)).date();
    let creds = format!(
        "[[host]]\nhost = \"github.com\"\ntoken_env = \"MIRROR_TOKEN\"\nexpires_at = \"{soon}\"\n"
    );
    std::fs::write(env.path("creds.toml"), creds).expect("write");
    let out = env.run(&["apply", "plan.csv", "--credentials", "creds.toml", "--yes"]);
    out.exit(1);
    assert!(stderr(&out).contains(&format!("expires on {soon}")), "{}", text(&out));
    // --no-probe-host: neither probed nor watched, written unproven (and said at start).
    env.githost().reset_stats();
    let out = env.run(&args(&["apply", "plan.csv", "--yes", "--no-probe-host", "github.com"]));
    out.ok();
    assert!(
        stderr(&out).contains("github.com is not probed, nor its token watched"),
        "{}",
        text(&out)
    );
    assert!(env.githost().requests().is_empty());
    assert!(env.githost().connects().is_empty());
    let out = env.run(&["apply", "plan.csv", "--no-probe-host", "gitlab.example", "--yes"]);
    out.context("not a source host").exit(2);
}

#[test]
fn status_watches_the_service_token_and_the_gitlab_token() {
    if !git_or_skip("status_watches_the_service_token_and_the_gitlab_token") {
        return;
    }
    // One healthy mirror on github.com: status passes, and says what it watched.
    let scope = ["status", "--project", "platform/api-gateway", "--format", "csv"];
    let env = Env::demo();
    let out = env.run(&args(&scope));
    out.ok();
    let err = stderr(&out);
    assert!(
        err.contains("the service token for github.com does not expire; 1 mirror depends on it"),
        "{err}"
    );
    assert!(err.contains("the GitLab API token expires on 2099-12-31"), "{err}");
    assert_nothing_left_this_machine(&env);
    // The same with the service token 6 days from expiry, then with the GitLab token 4 days
    // from it: exit 3, so a scheduled status job does not die silently.
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(6);
    env.githost().set_token("github.com", "svc", TokenState::Active, Some(expires));
    let out = env.run(&args(&scope));
    out.exit(3);
    assert!(stderr(&out).contains("rotate it now"), "{}", text(&out));
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(4)).date().to_string();
    let env = Env::with(|o| o.fixture.tokens[0].expires_at = Some(soon.clone()));
    let out = env.run(&scope);
    out.exit(3);
    assert!(
        stderr(&out).contains(&format!("the GitLab API token expires on {soon}")),
        "{}",
        text(&out)
    );
}

#[test]
fn a_host_the_stand_in_does_not_serve_is_refused_at_the_proxy_and_recorded() {
    if !git_or_skip("a_host_the_stand_in_does_not_serve_is_refused_at_the_proxy_and_recorded") {
        return;
    }
    // gitlab.acme-corp.example (project 20) is in no fixture remote: the proxy refuses it.
    let env = Env::demo();
    let host = "gitlab.acme-corp.example";
    let out = env.run(&[
        "plan",
        "--source-host",
        host,
        "--source-user",
        "svc",
        "--probe",
        "--out",
        "plan.csv",
    ]);
    out.ok();
    let row = &rows(&read(&env, "plan.csv"))["20/pull/"];
    assert_eq!(row["probe"], "unreachable", "{row:?}");
    assert_eq!((row["action"].as_str(), row["new_auth"].as_str()), ("update", "service"));
    assert!(row["reason"].contains("Not proven"), "{}", row["reason"]);
    assert!(stderr(&out).contains("1 mirror(s) unproven"), "{}", text(&out));
    let connects = env.githost().connects();
    assert!(
        connects.iter().any(|c| c.target == format!("{host}:443") && !c.allowed),
        "{connects:?}"
    );
    assert!(connects.iter().all(|c| c.allowed || c.target.starts_with(host)), "{connects:?}");
    assert!(env.githost().requests().is_empty(), "a refused CONNECT reached the stand-in");
}

#[test]
fn a_command_without_the_stand_in_reaches_only_the_refusing_proxy() {
    // What a test that forgets the stand-in gets: the token watch asks api.github.com through
    // the refusing proxy, is refused (and recorded), and the run goes on without a verdict.
    let env = Env::demo();
    let out = crate::util::glmirror()
        .args(["status", "--project", "platform/api-gateway", "--source-host", "github.com"])
        .current_dir(env.dir.path())
        .env("GITLAB_URL", env.base_url())
        .env("GITLAB_TOKEN", env.sim().admin_token())
        .env("MIRROR_TOKEN", CANARY)
        .output()
        .expect("runs");
    crate::util::assert_no_canary(&out);
    out.ok();
    assert!(stderr(&out).contains("not checked: api.github.com did not answer"), "{}", text(&out));
    assert!(crate::util::refused_targets().iter().any(|t| t == "api.github.com:443"));
}

/// `--probe-per-host` and `--probe-concurrency` bound the probes of `plan --probe` and of
/// apply's guard (here its dry run): with a limit of 1 the stand-in never sees two probes of
/// github.com at once, while the default lets them overlap.
#[test]
fn a_per_host_probe_limit_of_one_is_honoured_by_plan_and_apply() {
    if !git_or_skip("a_per_host_probe_limit_of_one_is_honoured_by_plan_and_apply") {
        return;
    }
    let env = Env::with_githost(|_| {}, |g| g.latency = std::time::Duration::from_millis(60));
    let git = env.githost();
    let probes = |label: &str| {
        let s = git.host_stats("github.com");
        let refs = git.requests().iter().filter(|r| r.path.ends_with("/info/refs")).count();
        eprintln!(
            "{label}: {} github.com requests, at most {} in flight",
            s.requests, s.max_in_flight
        );
        (s.max_in_flight, refs)
    };
    git.reset_stats();
    env.run(&args(&["plan", "--probe", "--out", "default.csv"])).ok();
    let (default_max, default_refs) = probes("plan, default limits");
    assert!(default_refs >= 10, "{default_refs} probes");
    assert!(default_max >= 2, "the default limits let probes overlap: {default_max}");
    assert!(default_max <= 4, "{default_max}");

    git.reset_stats();
    env.run(&args(&["plan", "--probe", "--probe-per-host", "1", "--out", "plan.csv"])).ok();
    let (max, refs) = probes("plan, --probe-per-host 1");
    assert_eq!(refs, default_refs, "every service row is still probed");
    assert_eq!(max, 1, "at most one probe of github.com in flight");
    assert_eq!(
        read(&env, "plan.csv"),
        read(&env, "default.csv"),
        "the limit changes the pace, not the plan"
    );

    git.reset_stats();
    let out = env.run(&args(&[
        "apply",
        "plan.csv",
        "--dry-run",
        "--probe-per-host",
        "1",
        "--probe-concurrency",
        "2",
    ]));
    out.ok();
    let (max, refs) = probes("apply --dry-run, --probe-per-host 1");
    assert!(refs >= 10, "{refs} probes");
    assert_eq!(max, 1, "at most one probe of github.com in flight");
    assert!(git.max_in_flight_total() <= 2, "{}", git.max_in_flight_total());
    assert!(env.writes().is_empty());
}

#[test]
fn probe_limits_out_of_range_are_usage_errors() {
    let env = Env::demo();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--probe-per-host", "0"],
            "--probe-per-host 0 is out of range: it must be between 1 and 32",
        ),
        (&["--probe-per-host", "33"], "--probe-per-host 33 is out of range"),
        (
            &["--probe-concurrency", "0"],
            "--probe-concurrency 0 is out of range: it must be between 1 and 64",
        ),
        (&["--probe-concurrency", "65"], "--probe-concurrency 65 is out of range"),
        (
            &["--probe-concurrency", "2", "--probe-per-host", "3"],
            "--probe-per-host 3 is above the overall limit of 2 probes in flight",
        ),
        (&["--probe-per-host", "9"], "--probe-per-host 9 is above the overall limit of 8"),
    ];
    for (extra, want) in cases {
        for head in [&["plan", "--probe", "--out", "p.csv"][..], &["apply", "p.csv", "--dry-run"]] {
            let all: Vec<&str> = head.iter().chain(extra.iter()).copied().collect();
            let out = env.run(&args(&all));
            out.exit(2);
            let err = stderr(&out);
            assert!(err.contains(want), "{all:?}: {err}");
            assert!(err.contains("hint:"), "{all:?}: {err}");
        }
    }
    // Not a number: clap's own usage error.
    let out = env.run(&args(&["plan", "--probe-per-host", "many", "--out", "p.csv"]));
    out.exit(2);
    assert!(stderr(&out).contains("--probe-per-host"), "{}", stderr(&out));
    assert!(env.writes().is_empty());
    assert!(!env.path("p.csv").exists());
}
