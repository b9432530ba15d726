//! Scheduled health checks: `status --format junit` is XML GitLab's JUnit parser reads,
//! `status --format prometheus` follows the text exposition format 0.0.4, both written
//! atomically with `--out`, with hostile text and canary tokens; and the commands of
//! examples/gitlab-ci.yml and docs/scheduled-checks.md run as written against the simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use glmirror::sim::Fixture;

use crate::util::{CANARY, Env, ExitExt as _, Table};

/// An error text a remote controls: markup, CDATA end, control characters, a formula, a
/// terminal escape, a bidi override and the canary token in a URL and bare.
fn hostile_error() -> String {
    format!(
        "13:fetch remote: <b>\"x\" & 'y'</b> ]]> \u{1}\u{1b}[31m =HYPERLINK(\"http://e\") \
         \u{202e} https://u:{CANARY}@github.com/acme/x.git token {CANARY}"
    )
}

/// A GitLab token glmirror does not hold (no scrubber knows it): only its shape gives it away.
const FOREIGN: &str = "glpat-FOREIGN0canary0not0held";

/// A token in a URL's query string, which glmirror does not hold either.
const FOREIGN_QUERY: &str = "ghp_FOREIGN0query0canary0never0held00001";

/// A token glmirror does not hold, planted split by zero-width characters into pieces too
/// short to look like tokens: it is found only once the invisible characters are gone.
const FOREIGN_SPLIT: &str = "ghp_FOREIGNsplit0canary0never0held0001";

/// A short opaque value in a `private_token=` query: masked because it is a query value.
const FOREIGN_SHORT: &str = "fOrEiGn5hort";

/// A hostile project path and name: quotes, markup, the CDATA end, control characters, a
/// terminal escape, a bidi override and the XML non-characters U+FFFE, U+FFFF.
const HOSTILE_PATH: &str = "we\"ird'\\x<&]]>\u{1}\u{7}\u{1b}[31m\u{202e}\u{fffe}\u{ffff}";

/// The demo instance with a hostile last error on one failing mirror, a project with a hostile
/// path and name whose mirror URL and error hold tokens glmirror does not hold, and a second
/// push mirror of platform/mobile-app to the same URL as its first.
fn hostile_env() -> Env {
    Env::with(|o| {
        let mut fixture = Fixture::demo();
        let p = fixture.projects.iter_mut().find(|p| p.id == 13).expect("platform/analytics");
        p.pull.as_mut().expect("pull").last_error = Some(hostile_error());
        let mut hostile = serde_json::to_value(&*p).expect("a project serializes");
        hostile["id"] = 990.into();
        hostile["path"] = HOSTILE_PATH.into();
        hostile["name"] = format!("{HOSTILE_PATH} name").into();
        hostile["pull"]["import_url"] = format!(
            "https://github.com/acme/q.git?access_token={FOREIGN_QUERY}&private_token={FOREIGN_SHORT}#{FOREIGN}"
        )
        .into();
        hostile["pull"]["last_error"] = format!(
            "fatal: unable to access 'https://github.com/acme/q.git?access_token={FOREIGN_QUERY}\
             &private_token={FOREIGN_SHORT}': Bearer {FOREIGN} {HOSTILE_PATH} token {}\u{200B}{}\u{2060}{}",
            &FOREIGN_SPLIT[..2],
            &FOREIGN_SPLIT[2..21],
            &FOREIGN_SPLIT[21..]
        )
        .into();
        fixture.projects.push(serde_json::from_value(hostile).expect("the hostile project"));
        let app = fixture.projects.iter_mut().find(|p| p.id == 9).expect("platform/mobile-app");
        let mut twin = serde_json::to_value(&app.remote_mirrors[0]).expect("a push mirror");
        twin["id"] = 901.into();
        twin["user"] = "other-bot".into();
        app.remote_mirrors.push(serde_json::from_value(twin).expect("the twin push mirror"));
        o.fixture = fixture;
    })
}

/// No credential in `text`, held or not.
#[track_caller]
fn assert_no_credentials(format: &str, text: &str) {
    for token in [CANARY, FOREIGN, FOREIGN_QUERY, FOREIGN_SHORT, FOREIGN_SPLIT] {
        assert!(!text.contains(token), "{token} in the {format} report:\n{text}");
    }
}

#[test]
fn no_credential_reaches_any_status_format() {
    let env = hostile_env();
    for format in ["table", "csv", "json", "junit", "prometheus"] {
        let out = env.run(&["status", "--details", "--format", format]);
        out.context(format).exit(3);
        assert_no_credentials(format, &String::from_utf8_lossy(&out.stdout));
        assert_no_credentials(format, &String::from_utf8_lossy(&out.stderr));
    }
    // The masked forms are there: the row is reported, not dropped.
    let out = env.run(&["status", "--details", "--format", "csv"]);
    let table = Table::parse("status --format csv", &out.stdout);
    let row = table.find("the hostile project", |r| r.cell("project_id") == "990");
    assert_eq!(
        row.cell("url"),
        "https://*****:*****@github.com/acme/q.git?access_token=*****&private_token=*****#*****"
    );
    assert!(row.cell("last_error").contains("Bearer *****"), "{}", row.cell("last_error"));
}

#[test]
fn junit_is_xml_gitlab_reads_one_case_per_mirror() {
    let env = hostile_env();
    let out = env.run(&["status", "--format", "junit", "--details"]);
    out.context("unhealthy mirrors").exit(3);
    let xml = String::from_utf8(out.stdout.clone()).expect("UTF-8");
    assert_no_credentials("junit", &xml);
    let doc =
        roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("invalid XML: {e}\n{xml}"));
    let root = doc.root_element();
    // GitLab's parser (`lib/gitlab/ci/parsers/test/junit.rb`): one top-level `testsuites`,
    // `testsuite` elements with a name, `testcase` with classname, name and time.
    assert_eq!(root.tag_name().name(), "testsuites");
    let mut names = BTreeSet::new();
    let (mut failures, mut skipped) = (0, 0);
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert!(suites.len() > 1, "one suite per namespace");
    for suite in &suites {
        assert_eq!(suite.tag_name().name(), "testsuite");
        let ns = suite.attribute("name").expect("suite name");
        for case in suite.children().filter(|n| n.is_element()) {
            assert_eq!(case.tag_name().name(), "testcase");
            let class = case.attribute("classname").expect("classname");
            let name = case.attribute("name").expect("name");
            case.attribute("time").expect("time").parse::<f64>().expect("time is a number");
            assert!(class.starts_with(ns), "{class} in suite {ns}");
            assert!(!name.contains("*****"), "named without credentials: {name}");
            assert!(names.insert(format!("{class} {name}")), "unique case names: {class} {name}");
            for child in case.children().filter(|n| n.is_element()) {
                match child.tag_name().name() {
                    "failure" => {
                        failures += 1;
                        child.attribute("message").expect("message is the diagnosis");
                    }
                    "skipped" => skipped += 1,
                    "error" => {}
                    other => panic!("unexpected element {other}"),
                }
            }
        }
    }
    assert_eq!(root.attribute("failures"), Some(failures.to_string().as_str()));
    assert_eq!(root.attribute("skipped"), Some(skipped.to_string().as_str()));
    // The hostile error is there as text, minus what XML cannot hold and the token.
    let analytics = doc
        .descendants()
        .find(|n| n.attribute("classname") == Some("platform/analytics"))
        .expect("the analytics mirror");
    let failure = analytics.children().find(|n| n.has_tag_name("failure")).expect("a failure");
    assert_eq!(failure.attribute("message"), Some("unknown"), "it matches no known cause");
    let body = failure.text().unwrap_or_default();
    assert!(body.contains("<b>\"x\" & 'y'</b> ]]>"), "{body}");
    assert!(body.contains("matches no known cause"), "the advice follows: {body}");
    assert!(!body.contains('\u{1b}') && !body.contains('\u{202e}'), "{body:?}");
    // The hostile project's path reads back as its path, minus what XML cannot hold and the
    // control characters every status text loses; no token of its URL or error is there.
    let hostile = doc
        .descendants()
        .find(|n| n.attribute("classname").is_some_and(|c| c.starts_with("platform/we\"ird'")))
        .expect("the hostile project's case");
    let class = hostile.attribute("classname").unwrap();
    assert!(class.contains("<&]]>"), "{class:?}");
    assert!(
        !class.chars().any(|c| c.is_control() || c == '\u{fffe}' || c == '\u{ffff}'),
        "{class:?}"
    );
    assert_eq!(hostile.attribute("name"), Some("pull https://github.com/acme/q.git"));
    // Two push mirrors of mobile-app to one URL: one case, the worst outcome, both counted.
    let app: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("classname") == Some("platform/mobile-app"))
        .collect();
    assert_eq!(app.len(), 1, "one case for two mirrors sharing a URL");
    let failure = app[0].children().find(|n| n.has_tag_name("failure")).expect("a failure");
    assert!(
        failure
            .text()
            .unwrap_or_default()
            .starts_with("2 push mirrors of this project share this URL"),
        "{:?}",
        failure.text()
    );
}

/// One sample of the text format: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A strict reader of the Prometheus text exposition format 0.0.4: `# HELP`/`# TYPE` before a
/// family's samples, valid names, escaped label values, numeric values, no duplicate series.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let name_ok = |n: &str| {
        n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "ends with a line feed");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().expect("a name"));
            assert!(name_ok(name), "{line}");
            match kind {
                "HELP" => {}
                "TYPE" => {
                    assert!(["gauge", "counter", "untyped"].contains(&parts.next().unwrap()));
                    assert!(typed.insert(name.to_owned()), "one TYPE per family: {line}");
                }
                _ => panic!("unknown comment {line}"),
            }
            continue;
        }
        let (name, rest) = match line.find('{') {
            Some(i) => (&line[..i], &line[i..]),
            None => line.split_at(line.find(' ').expect("name and value")),
        };
        assert!(name_ok(name), "{line}");
        assert!(typed.contains(name), "TYPE before the samples of {name}");
        let mut labels = BTreeMap::new();
        let value_text = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.chars();
            loop {
                let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                assert!(name_ok(&key), "label name {key:?} in {line}");
                assert_eq!(chars.next(), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    match chars.next().expect("closed label value") {
                        '\\' => match chars.next() {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => panic!("bad escape {other:?} in {line}"),
                        },
                        '"' => break,
                        '\n' => panic!("raw line feed in {line}"),
                        c => value.push(c),
                    }
                }
                labels.insert(key, value);
                match chars.next() {
                    Some(',') => continue,
                    Some('}') => break,
                    other => panic!("{other:?} after a label in {line}"),
                }
            }
            chars.collect::<String>()
        } else {
            rest.to_owned()
        };
        let value: f64 = value_text.trim().parse().unwrap_or_else(|_| panic!("value in {line}"));
        assert!(seen.insert(format!("{name}{labels:?}")), "duplicate series {line}");
        samples.push((name.to_owned(), labels, value));
    }
    samples
}

#[test]
fn prometheus_text_follows_the_exposition_format() {
    let env = hostile_env();
    // Two credentials for one host on two https ports are two tokens, two series.
    std::fs::write(
        env.path("creds.toml"),
        "[[host]]\nhost = \"github.com\"\ntoken_env = \"MIRROR_TOKEN\"\n\n\
         [[host]]\nhost = \"git.example.org\"\nuser = \"bot\"\ntoken_env = \"MIRROR_TOKEN\"\n\
         expires_at = \"2027-01-01\"\n\n\
         [[host]]\nhost = \"git.example.org:8443\"\nuser = \"bot\"\ntoken_env = \"MIRROR_TOKEN\"\n\
         expires_at = \"2027-02-01\"\n",
    )
    .expect("credentials file");
    let out =
        env.run(&["status", "--format", "prometheus", "--details", "--credentials", "creds.toml"]);
    out.exit(3);
    let body = String::from_utf8(out.stdout.clone()).expect("UTF-8");
    assert_no_credentials("prometheus", &body);
    let samples = parse_exposition(&body);
    let value = |name: &str, pick: &dyn Fn(&BTreeMap<String, String>) -> bool| {
        samples.iter().find(|(n, l, _)| n == name && pick(l)).map(|(_, _, v)| *v)
    };
    let healthy = |project: &str| {
        value("glmirror_mirror_healthy", &|l| l.get("project").map(String::as_str) == Some(project))
    };
    assert_eq!(healthy("platform/analytics"), Some(0.0), "{body}");
    let hostile = samples
        .iter()
        .find(|(n, l, _)| n == "glmirror_mirror_healthy" && l["project"].contains("we\"ird'"))
        .expect("the hostile project's series");
    assert!(hostile.1["project"].contains("\\x<&]]>"), "{hostile:?}");
    assert_eq!(hostile.1["url"], "https://github.com/acme/q.git", "no query, no fragment");
    assert_eq!(healthy("platform/api-gateway"), Some(1.0), "{body}");
    assert_eq!(healthy("archive/old-website"), None, "archived projects are not listed");
    for (_, labels, _) in samples.iter().filter(|(n, _, _)| n == "glmirror_mirror_healthy") {
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["project", "type", "url"], "no mirror id");
        assert!(!labels["url"].contains("*****"), "url without credentials: {labels:?}");
    }
    assert!(value("glmirror_mirror_last_successful_update_timestamp_seconds", &|_| true).is_some());
    assert_eq!(value("glmirror_mirror_diagnosis", &|l| l["diagnosis"] == "auth-failed"), Some(2.0));
    // platform/analytics and the hostile project match no known cause.
    assert_eq!(value("glmirror_mirror_diagnosis", &|l| l["diagnosis"] == "unknown"), Some(2.0));
    assert_eq!(value("glmirror_status_scrape_errors", &|_| true), Some(0.0));
    // The GitLab API token of the demo expires on 2099-12-31.
    let gitlab = value("glmirror_token_expiry_timestamp_seconds", &|l| l["token"] == "gitlab-api");
    assert_eq!(gitlab, Some(4_102_358_400.0), "{body}");
    let service = |host: &str| {
        value("glmirror_token_expiry_timestamp_seconds", &|l| {
            l["token"] == "service" && l["host"] == host
        })
    };
    assert_eq!(service("git.example.org"), Some(1_798_761_600.0), "2027-01-01: {body}");
    assert_eq!(service("git.example.org:8443"), Some(1_801_440_000.0), "2027-02-01: {body}");
}

#[test]
fn out_writes_atomically_and_prom_files_are_readable_by_the_collector() {
    let env = Env::demo();
    let out = env.run(&["status", "--format", "prometheus", "--out", "glmirror.prom", "-q"]);
    out.exit(3);
    assert!(out.stdout.is_empty(), "the report went to the file");
    let prom = std::fs::read_to_string(env.path("glmirror.prom")).expect("written");
    parse_exposition(&prom);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("glmirror.prom")).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "readable by node_exporter");
    }
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".glmirror-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left: {leftovers:?}");
    // --csv from the same reads.
    let out = env.run(&["status", "--format", "junit", "--out", "r.xml", "--csv", "r.csv"]);
    out.exit(3);
    roxmltree::Document::parse(&std::fs::read_to_string(env.path("r.xml")).expect("xml"))
        .expect("valid XML");
    let csv = std::fs::read_to_string(env.path("r.csv")).expect("csv");
    assert!(csv.starts_with("project_id,project_path,mirror_type"), "{csv}");
    env.assert_files_clean();
}

#[test]
fn a_quick_status_reads_pull_mirrors_only_where_the_list_is_not_enough() {
    let env = Env::demo();
    let pulls = |env: &Env| {
        env.sim().request_log().iter().filter(|r| r.path.ends_with("/mirror/pull")).count()
    };
    let out = env.run(&["status", "--details", "--format", "csv"]);
    out.exit(3);
    let detailed = pulls(&env);
    let full = String::from_utf8_lossy(&out.stdout).into_owned();
    let out = env.run(&["status", "--format", "csv"]);
    let quick = pulls(&env) - detailed;
    let fast = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(quick < detailed, "fewer pull-mirror reads: {quick} vs {detailed}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("were not read again"));
    // The same health for every mirror.
    let health = |csv: &str| -> Vec<(String, String)> {
        let table = Table::parse("status --format csv", csv);
        assert!(!table.rows().is_empty(), "{csv}");
        table
            .rows()
            .iter()
            .map(|r| (r.cell("project_path").to_owned(), r.cell("health").to_owned()))
            .collect()
    };
    assert_eq!(health(&fast), health(&full));
}

/// The `script` of the job in examples/gitlab-ci.yml, its junit report path and its
/// `allow_failure` exit codes.
fn ci_job() -> (Vec<String>, String, Vec<i64>, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gitlab-ci.yml");
    let text = std::fs::read_to_string(path).expect("the example exists");
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML");
    let job = &docs[0]["mirror-health"];
    let script = job["script"]
        .as_vec()
        .expect("a script")
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    let junit = job["artifacts"]["reports"]["junit"].as_str().expect("a junit report").to_owned();
    let codes = job["allow_failure"]["exit_codes"]
        .as_vec()
        .expect("exit codes")
        .iter()
        .map(|c| c.as_i64().unwrap())
        .collect();
    let paths = job["artifacts"]["paths"]
        .as_vec()
        .expect("paths")
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    (script, junit, codes, paths)
}

#[test]
fn the_ci_example_runs_against_the_simulator_and_produces_both_files() {
    let env = Env::demo();
    let (script, junit, codes, paths) = ci_job();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_glmirror")).parent().expect("bin dir").to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    for line in &script {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(line).current_dir(env.dir.path());
        for name in crate::util::CLEARED_ENV {
            cmd.env_remove(name);
        }
        // What the CI job has: CI_SERVER_URL and the masked GITLAB_TOKEN variable.
        cmd.env("PATH", &path)
            .env("HTTPS_PROXY", crate::util::refusing_proxy())
            .env("CI_SERVER_URL", env.base_url())
            .env("GITLAB_TOKEN", env.sim().admin_token())
            .env("GLMIRROR_CREDENTIAL_ARGS", "");
        let out = cmd.output().expect("sh runs");
        let allowed: Vec<i32> = std::iter::once(0)
            .chain(codes.iter().map(|&c| i32::try_from(c).expect("an exit code")))
            .collect();
        out.context(line).exit_in(&allowed);
        out.context(format!("{line}: the demo has unhealthy mirrors")).exit(3);
    }
    let xml = std::fs::read_to_string(env.path(&junit)).expect("the junit report");
    roxmltree::Document::parse(&xml).expect("valid XML");
    for p in paths {
        assert!(env.path(&p).exists(), "artifact {p}");
    }
}

/// The fenced `sh` blocks of docs/scheduled-checks.md that run glmirror, its systemd
/// `ExecStart=` lines and its crontab lines (variables and schedules).
fn doc_commands() -> (Vec<String>, Vec<String>, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scheduled-checks.md");
    let text = std::fs::read_to_string(path).expect("the page exists");
    let mut sh = Vec::new();
    let mut exec = Vec::new();
    let mut cron = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        if let Some(info) = line.strip_prefix("```") {
            block = if block.is_some() { None } else { Some(info.to_owned()) };
            continue;
        }
        match block.as_deref() {
            Some("sh") if line.starts_with("glmirror ") => sh.push(line.to_owned()),
            Some("crontab") => cron.push(line.to_owned()),
            Some("ini") => {
                if let Some(cmd) = line.strip_prefix("ExecStart=") {
                    exec.push(cmd.to_owned());
                }
            }
            _ => {}
        }
    }
    (sh, exec, cron)
}

#[test]
fn the_scheduled_check_commands_run_as_documented() {
    let env = Env::demo();
    let (sh, exec, cron) = doc_commands();
    assert!(!sh.is_empty() && exec.len() == 1, "{sh:?} {exec:?}");
    let bin = env!("CARGO_BIN_EXE_glmirror");
    let textfile = env.path("textfile");
    std::fs::create_dir(&textfile).expect("mkdir");
    std::fs::write(env.path("token"), env.sim().admin_token()).expect("token file");
    let run = |line: &str| {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(line).current_dir(env.dir.path());
        for name in crate::util::CLEARED_ENV {
            cmd.env_remove(name);
        }
        cmd.env("GITLAB_URL", env.base_url())
            .env("HTTPS_PROXY", crate::util::refusing_proxy())
            .env("GITLAB_TOKEN", env.sim().admin_token())
            .env("TEXTFILE_DIR", &textfile)
            .env("GLMIRROR_CREDENTIAL_ARGS", "");
        cmd.output().expect("sh runs")
    };
    // cron and systemd as documented: no GITLAB_TOKEN in the environment, the token file.
    let run_without_token = |line: &str| {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(line).current_dir(env.dir.path());
        for name in crate::util::CLEARED_ENV {
            cmd.env_remove(name);
        }
        cmd.env("GITLAB_URL", env.base_url())
            .env("HTTPS_PROXY", crate::util::refusing_proxy())
            .env("TEXTFILE_DIR", &textfile);
        cmd.output().expect("sh runs")
    };
    for line in sh {
        let out = run(&line.replacen("glmirror ", &format!("{bin} "), 1));
        out.context(line).exit(3);
    }
    let with_test_paths = |line: &str| {
        line.replace("/usr/local/bin/glmirror", bin)
            .replace("/etc/glmirror/token", &env.path("token").display().to_string())
            .replace("/var/lib/node_exporter/textfile_collector", &textfile.display().to_string())
    };
    // The crontab: it names where GITLAB_URL and TEXTFILE_DIR come from (this test sets
    // both to its own), and the one job runs every 15 minutes with the token from a file.
    let vars: Vec<&str> =
        cron.iter().filter_map(|l| l.split_once('=').map(|(name, _)| name)).collect();
    assert_eq!(vars, ["GITLAB_URL", "TEXTFILE_DIR"], "{cron:?}");
    let jobs: Vec<&String> =
        cron.iter().filter(|l| !l.contains('=') || l.starts_with('*')).collect();
    assert_eq!(jobs.len(), 1, "{cron:?}");
    let command = jobs[0].strip_prefix("*/15 * * * * ").expect("every 15 minutes");
    assert!(command.contains("--gitlab-token-file"), "no token in the crontab: {command}");
    let out = run_without_token(&with_test_paths(command));
    out.context(command).exit(3);
    assert!(textfile.join("glmirror.prom").exists(), "the cron line wrote its file");
    parse_exposition(&std::fs::read_to_string(textfile.join("glmirror.prom")).expect("prom"));
    std::fs::remove_file(textfile.join("glmirror.prom")).expect("rm");
    // The systemd unit's command, with this test's paths.
    let line = with_test_paths(&exec[0]);
    let out = run_without_token(&line);
    out.context(line).exit(3);
    parse_exposition(&std::fs::read_to_string(textfile.join("glmirror.prom")).expect("prom"));
}

/// A stand-in for GitLab in front of the simulator that passes every GET through, with the
/// simulator's address in `Link` headers rewritten to its own, and the pull mirror of
/// project 13 answered with invalid UTF-8 (`\xff\xfe`), markup and a control byte inside its
/// `last_error`.
fn invalid_utf8_gitlab(env: &Env) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;
    let sim = env.base_url().trim_end_matches('/').to_owned();
    let listener = env.rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let own = format!("http://{}", listener.local_addr().expect("addr"));
    let (sim_base, own_base) = (sim.clone(), own.clone());
    let handler = move |uri: Uri, headers: HeaderMap| {
        let (sim, own) = (sim_base.clone(), own_base.clone());
        async move {
            let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
            let mut req = reqwest::Client::new().get(format!("{sim}{path}"));
            for (name, value) in &headers {
                if name != "host" {
                    req = req.header(name.as_str(), value.as_bytes());
                }
            }
            let resp = req.send().await.expect("the simulator answers");
            let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
            let mut out = HeaderMap::new();
            for (name, value) in resp.headers() {
                let name = name.as_str();
                if name == "content-length" || name == "transfer-encoding" {
                    continue;
                }
                let value = value.to_str().unwrap_or_default().replace(&sim, &own);
                out.insert(
                    axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    value.parse().expect("value"),
                );
            }
            let mut body = resp.bytes().await.expect("body").to_vec();
            if path.starts_with("/api/v4/projects/13/mirror/pull") {
                let at = body
                    .windows(12)
                    .position(|w| w == b"fetch remote")
                    .expect("the analytics error");
                body.splice(at + 4..at + 4, [0xff, 0xfe, b'<', 0x01]);
            }
            (status, out, Bytes::from(body)).into_response()
        }
    };
    let router = axum::Router::new().fallback(handler);
    env.rt.spawn(async move { axum::serve(listener, router).await.expect("serve") });
    own
}

#[test]
fn invalid_utf8_from_gitlab_keeps_every_format_valid() {
    let env = hostile_env();
    let gitlab = invalid_utf8_gitlab(&env);
    let run = |format: &str| {
        let out = env
            .cmd(&["status", "--details", "--format", format])
            .env("GITLAB_URL", &gitlab)
            .output()
            .expect("glmirror runs");
        crate::util::assert_no_canary(&out);
        out.context(format).exit(3);
        String::from_utf8(out.stdout.clone()).unwrap_or_else(|e| panic!("{format} is UTF-8: {e}"))
    };
    let csv = run("csv");
    let table = Table::parse("status --format csv", &csv);
    let analytics = table.find("platform/analytics", |r| r.cell("project_id") == "13");
    // GitLab's answer does not parse: the mirror is unreadable, its error quotes the bytes
    // as replacement characters.
    assert_eq!(analytics.cell("diagnosis"), "unreadable", "{csv}");
    let json: serde_json::Value = serde_json::from_str(&run("json")).expect("valid JSON");
    assert!(json.as_array().is_some_and(|rows| !rows.is_empty()));
    let xml = run("junit");
    roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("invalid XML: {e}\n{xml}"));
    parse_exposition(&run("prometheus"));
    run("table");
}
