//! The remote probe and the token watch against the git host stand-in: each probe code from
//! a real `git http-backend` answer through the CONNECT proxy (or, where only a host can
//! produce it, from a scripted answer), what the probe sends, host protection (the
//! failed-login limit, the breaker, per-host concurrency over 500 rows), and that no token
//! reaches a URL, a log line, an error or a result.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glmirror::githost::{
    self, AuthSeen, GitHostOptions, HostSpec, HostStyle, RepoContent, RepoSpec, Scripted,
    TokenState, scenario,
};
use glmirror::probe::watch::{self, Expiry, TokenWatch, Validity, WatchMode};
use glmirror::probe::{
    Clock, HostKind, ManualClock, ProbeCode, ProbeOutcome, ProbeSettings, ProbeTarget, Prober,
    ProxyMode, TokenKnowledge,
};
use glmirror::rewrite::Direction;

use crate::githost::{PERSON_TOKEN, SVC_TOKEN, World, git_or_skip, secret};

fn settings(w: &World) -> ProbeSettings {
    let mut s = ProbeSettings::default();
    s.http.ca_cert_pem = Some(w.host.ca_pem().as_bytes().to_vec());
    s.http.proxy = ProxyMode::Via(w.host.proxy_url());
    s.http.timeout = Duration::from_secs(20);
    s.limits.backoff_base = Duration::from_millis(5);
    s
}

/// A prober on a manual clock (retries and waits take no real time).
fn prober(w: &World) -> Prober {
    Prober::with_clock(settings(w), Arc::new(ManualClock::new())).expect("prober")
}

fn target(url: &str, dir: Direction, kind: HostKind, user: &str, pass: &str) -> ProbeTarget {
    ProbeTarget::new(url, dir, kind, secret(user), secret(pass)).expect("target")
}

const GH: (&str, &str) = ("x-access-token", SVC_TOKEN);
const GL: (&str, &str) = ("oauth2", SVC_TOKEN);
const BB: (&str, &str) = (scenario::BITBUCKET_USER, SVC_TOKEN);

/// Every text a probe result shows.
fn texts(o: &ProbeOutcome) -> String {
    format!("{o} {o:?}")
}

fn assert_no_secret(text: &str) {
    use base64::Engine as _;
    for token in [SVC_TOKEN, PERSON_TOKEN] {
        assert!(!text.contains(token), "a token leaked: {text}");
        assert!(!text.contains("CANARY"), "a token leaked: {text}");
        for user in ["x-access-token", "oauth2", scenario::BITBUCKET_USER] {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
            assert!(!text.contains(&b64), "a Basic header leaked: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_code_from_the_real_git_server() {
    if !git_or_skip("each_code_from_the_real_git_server") {
        return;
    }
    use Direction::{Pull, Push};
    use HostKind::*;
    use ProbeCode::*;
    let w = World::standard().await;
    let gl = scenario::GITLAB_HOST;
    let plain = scenario::PLAIN_HOST;
    let ghe = scenario::GHE_HOST;
    type Case =
        (String, Direction, HostKind, (&'static str, &'static str), TokenKnowledge, ProbeCode);
    let u = |host: &str, path: &str| format!("https://{host}/{path}");
    let unknown = TokenKnowledge::Unknown;
    let valid = TokenKnowledge::Valid;
    let cases: Vec<Case> = vec![
        (u("github.com", "acme/api.git"), Pull, GitHub, GH, unknown, Ok),
        (u("github.com", "acme/api.git"), Push, GitHub, GH, unknown, Ok),
        (u("github.com", "acme/api"), Pull, GitHub, GH, unknown, Ok),
        (u("github.com", "acme/empty.git"), Push, GitHub, GH, unknown, OkEmpty),
        (u("github.com", "acme/empty.git"), Pull, GitHub, GH, unknown, Ok),
        (u(gl, "group/empty.git"), Push, GitLab, GL, unknown, OkEmpty),
        (u(ghe, "corp/tool.git"), Pull, GitHubEnterprise, GH, unknown, Ok),
        (u("bitbucket.org", "team/repo.git"), Pull, BitbucketCloud, BB, unknown, Ok),
        (u(plain, "plain/repo.git"), Push, Other, GH, unknown, Ok),
        (u(plain, "dumb/repo.git"), Pull, Other, GH, unknown, DumbHttp),
        (u("github.com", "acme/old-name.git"), Pull, GitHub, GH, unknown, Redirect),
        (u(gl, "group/app"), Pull, GitLab, GL, unknown, Redirect),
        (
            u("github.com", "acme/api.git"),
            Pull,
            GitHub,
            ("x-access-token", "ghp_wrong"),
            unknown,
            AuthRejected,
        ),
        (u(gl, "group/hidden.git"), Pull, GitLab, GL, unknown, AuthRejected),
        (u("bitbucket.org", "team/secret.git"), Pull, BitbucketCloud, BB, unknown, AuthRejected),
        (u(plain, "plain/repo.git"), Pull, Other, ("svc", "wrong"), unknown, AuthRejected),
        (u("github.com", "acme/private.git"), Pull, GitHub, GH, valid, NoAccessOrMissing),
        (u("github.com", "acme/gone.git"), Pull, GitHub, GH, unknown, NoAccessOrMissing),
        (u(gl, "group/hidden.git"), Pull, GitLab, GL, valid, NoAccessOrMissing),
        (u(gl, "group/hidden.git"), Pull, GitLab, ("oauth2", PERSON_TOKEN), unknown, Ok),
        (
            u(gl, "group/app.git"),
            Pull,
            GitLab,
            ("oauth2", PERSON_TOKEN),
            unknown,
            NoAccessOrMissing,
        ),
        (u("github.com", "acme/readonly.git"), Push, GitHub, GH, unknown, Forbidden),
        (u("bitbucket.org", "team/repo.git"), Push, BitbucketCloud, BB, unknown, Forbidden),
        (u(plain, "plain/locked.git"), Pull, Other, GH, unknown, Forbidden),
        (u(plain, "nothing/here.git"), Pull, Other, GH, unknown, NotFound),
        (u("github.com", "corp/sso.git"), Pull, GitHub, GH, unknown, NotGit),
        (u("unserved.example", "a/b.git"), Pull, Other, GH, unknown, Unreachable),
    ];
    for (url, dir, kind, (user, pass), knowledge, want) in cases {
        let p = prober(&w);
        let t = target(&url, dir, kind, user, pass);
        p.set_token_knowledge(t.host(), knowledge);
        let got = p.probe(&t).await;
        assert_eq!(got.code, want, "{url} {dir:?}: {got}");
        assert!(!got.reason.is_empty());
        assert_no_secret(&texts(&got));
    }

    // What a redirect reports.
    let p = prober(&w);
    let got = p.probe(&target(&u(gl, "group/app"), Pull, GitLab, GL.0, GL.1)).await;
    assert!(got.adds_dot_git, "{got:?}");
    assert_eq!(got.suggested_url.as_deref(), Some("https://gitlab.example.com/group/app.git"));
    let got =
        p.probe(&target(&u("github.com", "acme/old-name.git"), Pull, GitHub, GH.0, GH.1)).await;
    assert!(!got.adds_dot_git);
    assert_eq!(got.suggested_url.as_deref(), Some("https://github.com/acme/api.git"));
    assert!(got.reason.contains("https://github.com/acme/api.git"), "{}", got.reason);
    // Push answers are v0 (never v2), pull answers v2; both name the server's agent.
    let got = p.probe(&target(&u("github.com", "acme/api.git"), Push, GitHub, GH.0, GH.1)).await;
    let advert = got.advert.expect("advert");
    assert_eq!(advert.version, 0);
    assert!(advert.agent.as_deref().is_some_and(|a| a.starts_with("git/")), "{advert:?}");
    let got = p.probe(&target(&u("github.com", "acme/api.git"), Pull, GitHub, GH.0, GH.1)).await;
    assert_eq!(got.advert.expect("advert").version, 2);
    // Nothing left 127.0.0.1: the only refused CONNECT is the unserved host.
    for c in w.host.connects() {
        assert!(c.allowed || c.target == "unserved.example:443", "{c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_only_a_host_produces_come_from_scripted_answers() {
    if !git_or_skip("codes_only_a_host_produces_come_from_scripted_answers") {
        return;
    }
    let w = World::standard().await;
    let url = "https://github.com/acme/api.git";
    let t = || target(url, Direction::Pull, HostKind::GitHub, GH.0, GH.1);
    let script = |answers: Vec<Scripted>| {
        w.host.reset_stats();
        w.host.script("github.com", "/acme/api.git/", answers);
    };
    let requests = || w.host.host_stats("github.com").requests;

    // 502–504 are retried (twice), then reported.
    script(vec![Scripted::status(503); 3]);
    let got = prober(&w).probe(&t()).await;
    assert_eq!((got.code, got.attempts, requests()), (ProbeCode::ServerError, 3, 3), "{got}");
    // A 500 is not retried.
    script(vec![Scripted::status(500)]);
    let got = prober(&w).probe(&t()).await;
    assert_eq!((got.code, got.attempts, requests()), (ProbeCode::ServerError, 1, 1));
    // 429 with Retry-After is retried, and a later success counts.
    script(vec![Scripted::status(429).header("Retry-After", "30")]);
    let clock = ManualClock::new();
    let p = Prober::with_clock(settings(&w), Arc::new(clock.clone())).unwrap();
    let got = p.probe(&t()).await;
    assert_eq!((got.code, got.attempts), (ProbeCode::Ok, 2), "{got}");
    assert!(clock.now() >= Duration::from_secs(30), "Retry-After was not honoured");
    script(vec![Scripted::status(429); 3]);
    let got = prober(&w).probe(&t()).await;
    assert_eq!((got.code, got.attempts), (ProbeCode::RateLimited, 3));
    // 401/403/404 are never retried.
    for status in [401, 403, 404] {
        script(vec![Scripted::status(status)]);
        let got = prober(&w).probe(&t()).await;
        assert_eq!(got.attempts, 1, "{status} was retried");
        assert_eq!(requests(), 1);
    }
    // GitLab's ban: a bare 403 Forbidden stops the host.
    w.host.reset_stats();
    w.host.script(scenario::GITLAB_HOST, "/", vec![Scripted::gitlab_ban()]);
    let p = prober(&w);
    let gl = |repo: &str| {
        target(
            &format!("https://gitlab.example.com/{repo}"),
            Direction::Pull,
            HostKind::GitLab,
            GL.0,
            GL.1,
        )
    };
    let got = p.probe(&gl("group/app.git")).await;
    assert_eq!(got.code, ProbeCode::Banned, "{got}");
    let got = p.probe(&gl("group/empty.git")).await;
    assert_eq!((got.code, got.attempts), (ProbeCode::Breaker, 0), "{got}");
    assert_eq!(w.host.host_stats(scenario::GITLAB_HOST).requests, 1);
    // A GitHub SSO refusal: 403 whose body quotes the token back is redacted.
    script(vec![Scripted::status(403).text(&format!(
        "The `acme' organization has enabled or enforced SAML SSO. Token {SVC_TOKEN} is not authorized."
    ))]);
    let got = prober(&w).probe(&t()).await;
    assert_eq!(got.code, ProbeCode::Forbidden);
    assert!(got.reason.contains("SAML SSO") && got.reason.contains("*****"), "{}", got.reason);
    assert_no_secret(&texts(&got));
    // A login page on a smart URL.
    script(vec![Scripted::status(200).html("<html><body>Sign in to Acme SSO</body></html>")]);
    assert_eq!(prober(&w).probe(&t()).await.code, ProbeCode::NotGit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_unreachable_are_no_verdicts() {
    if !git_or_skip("tls_and_unreachable_are_no_verdicts") {
        return;
    }
    let w = World::standard().await;
    // Without the stand-in's CA the certificate is not trusted.
    let mut s = settings(&w);
    s.http.ca_cert_pem = None;
    let p = Prober::with_clock(s, Arc::new(ManualClock::new())).unwrap();
    let got = p
        .probe(&target(
            "https://github.com/acme/api.git",
            Direction::Pull,
            HostKind::GitHub,
            GH.0,
            GH.1,
        ))
        .await;
    assert_eq!((got.code, got.attempts), (ProbeCode::Tls, 1), "{got}");
    assert!(got.reason.contains("--ca-cert"), "{}", got.reason);
    // A closed port on loopback (reached directly, never through the proxy) is retried, then
    // reported.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let got = prober(&w)
        .probe(&target(
            &format!("https://127.0.0.1:{port}/a.git"),
            Direction::Pull,
            HostKind::Other,
            "u",
            "p",
        ))
        .await;
    assert_eq!((got.code, got.attempts), (ProbeCode::Unreachable, 3), "{got}");
    assert!(!w.host.connects().iter().any(|c| c.target.starts_with("127.0.0.1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_get_with_credentials_up_front_and_v2_only_for_upload_pack() {
    if !git_or_skip("one_get_with_credentials_up_front_and_v2_only_for_upload_pack") {
        return;
    }
    let w = World::standard().await;
    let p = prober(&w);
    for (dir, service, v2) in [
        (Direction::Pull, "service=git-upload-pack", Some("version=2")),
        (Direction::Push, "service=git-receive-pack", None),
    ] {
        w.host.reset_stats();
        // A public repository: git itself would not send credentials, the probe must.
        let got = p
            .probe(&target(
                "https://github.com/acme/public.git",
                dir,
                HostKind::GitHub,
                "x-access-token",
                "ghp_wrong",
            ))
            .await;
        assert_eq!(got.code, ProbeCode::AuthRejected, "{got}");
        let log = w.host.requests();
        assert_eq!(log.len(), 1, "{log:?}");
        let r = &log[0];
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/acme/public.git/info/refs"));
        assert_eq!(r.query.as_deref(), Some(service));
        assert_eq!(r.auth, AuthSeen::Basic);
        assert_eq!(r.git_protocol.as_deref(), v2);
        assert!(r.user_agent.as_deref().unwrap_or("").starts_with("git/"), "{r:?}");
    }
    // Redirects are never followed.
    w.host.reset_stats();
    let got = p
        .probe(&target(
            "https://github.com/acme/old-name.git",
            Direction::Pull,
            HostKind::GitHub,
            GH.0,
            GH.1,
        ))
        .await;
    assert_eq!(got.code, ProbeCode::Redirect);
    assert_eq!(w.host.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_stops_after_three_rejections() {
    if !git_or_skip("a_bad_token_stops_after_three_rejections") {
        return;
    }
    let w = World::standard().await;
    let p = prober(&w);
    let targets: Vec<ProbeTarget> = (0..20)
        .map(|i| {
            target(
                &format!("https://github.com/bulk/r{i}.git"),
                Direction::Pull,
                HostKind::GitHub,
                "x-access-token",
                "ghp_revoked",
            )
        })
        .collect();
    let got = p.probe_all(&targets).await;
    let rejected = got.iter().filter(|o| o.code == ProbeCode::AuthRejected).count();
    let breaker = got.iter().filter(|o| o.code == ProbeCode::Breaker).count();
    assert_eq!((rejected, breaker), (3, 17), "{got:?}");
    let stats = w.host.host_stats("github.com");
    assert_eq!((stats.requests, stats.failed_logins), (3, 3));
    assert!(got.iter().any(|o| o.reason.contains("3 consecutive rejected logins")));
    let report = p.host_reports();
    assert_eq!(report[0].1.failed_logins, 3);
    // Another host is still probed.
    let ok = p
        .probe(&target(
            "https://bitbucket.org/team/repo.git",
            Direction::Pull,
            HostKind::BitbucketCloud,
            BB.0,
            BB.1,
        ))
        .await;
    assert_eq!(ok.code, ProbeCode::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_never_exceed_ten_in_three_minutes_and_never_trip_the_ban() {
    if !git_or_skip("failed_logins_never_exceed_ten_in_three_minutes_and_never_trip_the_ban") {
        return;
    }
    // A GitLab whose ban trips at the 11th failed login in 3 minutes, on a clock shared with
    // the prober; the token is valid, but the service account can see none of the 40
    // projects, so each probe is a failed login.
    let clock = ManualClock::new();
    let token = secret(SVC_TOKEN);
    let mut gitlab = HostSpec::new(scenario::GITLAB_HOST, HostStyle::GitLab)
        .account(githost::AccountSpec::new("svc", &token).service_account())
        .repo(RepoSpec::new("g/*.git", RepoContent::Commit));
    gitlab.ban_after = Some(11);
    let mut opts = GitHostOptions::new(vec![gitlab]);
    opts.clock = Arc::new(clock.clone());
    let w = World::with(opts).await;
    let p = Prober::with_clock(settings(&w), Arc::new(clock.clone())).unwrap();
    p.set_token_knowledge(scenario::GITLAB_HOST, TokenKnowledge::Valid);
    let targets: Vec<ProbeTarget> = (0..40)
        .map(|i| {
            target(
                &format!("https://gitlab.example.com/g/p{i}.git"),
                Direction::Pull,
                HostKind::GitLab,
                GL.0,
                GL.1,
            )
        })
        .collect();
    let got = p.probe_all(&targets).await;
    for o in &got {
        assert_eq!(o.code, ProbeCode::NoAccessOrMissing, "{o}");
        assert!(o.reason.contains("add the service account"), "{}", o.reason);
    }
    let stats = w.host.host_stats(scenario::GITLAB_HOST);
    assert_eq!(stats.failed_logins, 40);
    assert_eq!(stats.statuses.get(&403), None, "the stand-in banned the prober: {stats:?}");
    // 40 failures at 10 per 3 minutes took at least three windows of (virtual) waiting.
    assert!(clock.now() >= Duration::from_secs(3 * 180), "{:?}", clock.now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_rows_stay_within_the_per_host_limits() {
    if !git_or_skip("five_hundred_rows_stay_within_the_per_host_limits") {
        return;
    }
    let mut opts = scenario::standard(&secret(SVC_TOKEN), &secret(PERSON_TOKEN));
    opts.latency = Duration::from_millis(20);
    let w = World::with(opts).await;
    let p = Prober::new(settings(&w)).unwrap();
    let hosts = [
        ("github.com", HostKind::GitHub, GH),
        (scenario::GITLAB_HOST, HostKind::GitLab, GL),
        ("bitbucket.org", HostKind::BitbucketCloud, BB),
    ];
    let targets: Vec<ProbeTarget> = (0..500)
        .map(|i| {
            let (host, kind, (user, pass)) = hosts[i % 3];
            let dir = if i % 5 == 0 { Direction::Push } else { Direction::Pull };
            target(&format!("https://{host}/bulk/repo{i}.git"), dir, kind, user, pass)
        })
        .collect();
    let started = Instant::now();
    let got = p.probe_all(&targets).await;
    let wall = started.elapsed();
    assert!(
        got.iter().all(|o| o.code == ProbeCode::Ok),
        "{:?}",
        got.iter().find(|o| o.code != ProbeCode::Ok)
    );
    let mut total = 0;
    for (host, _, _) in hosts {
        let s = w.host.host_stats(host);
        assert!(s.max_in_flight <= 4, "{host}: {} in flight at once", s.max_in_flight);
        assert!(s.max_in_flight >= 2, "{host}: probes never overlapped ({s:?})");
        total += s.requests;
        eprintln!(
            "probe scale: {host}: {} requests, at most {} in flight",
            s.requests, s.max_in_flight
        );
    }
    assert_eq!(total, 500, "one request per row");
    assert!(
        w.host.max_in_flight_total() <= 8,
        "{} in flight overall",
        w.host.max_in_flight_total()
    );
    eprintln!(
        "probe scale: 500 rows, 3 hosts, 20 ms added latency: {:.1} s wall, at most {} in flight overall",
        wall.as_secs_f64(),
        w.host.max_in_flight_total()
    );
    w.assert_all_connects_local();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_watch_reads_each_hosts_own_api() {
    if !git_or_skip("the_token_watch_reads_each_hosts_own_api") {
        return;
    }
    let w = World::standard().await;
    let watch = TokenWatch::new(&settings(&w).http).unwrap();
    let token = secret(SVC_TOKEN);
    let now = time::OffsetDateTime::now_utc();
    let in_5_days = now + time::Duration::days(5);
    w.host.set_token("github.com", "svc", TokenState::Active, Some(in_5_days));

    w.host.reset_stats();
    let gh = watch.read("github.com", None, HostKind::GitHub, &token, None).await;
    assert_eq!(gh.validity, Validity::Valid, "{gh:?}");
    assert!(
        matches!(gh.expiry, Expiry::At(at) if (at - in_5_days).abs() < time::Duration::seconds(2)),
        "{gh:?}"
    );
    assert_eq!(gh.scopes.as_deref(), Some(&["repo".to_owned()][..]));
    // The github.com token went to api.github.com, nowhere else.
    let targets: Vec<String> = w.host.connects().into_iter().map(|c| c.target).collect();
    assert_eq!(targets, ["api.github.com:443"]);
    let v = watch::verdict(&gh, 812, now, WatchMode::Apply { allow_expiring: false });
    assert_eq!(v.severity, watch::Severity::Refuse, "{}", v.message);
    assert!(
        v.message.contains("812 mirrors") && v.message.contains(&in_5_days.date().to_string()),
        "{}",
        v.message
    );
    let v = watch::verdict(&gh, 812, now, WatchMode::Apply { allow_expiring: true });
    assert_eq!(v.severity, watch::Severity::Warn);

    let gl = watch.read(scenario::GITLAB_HOST, None, HostKind::GitLab, &token, None).await;
    assert_eq!((gl.validity, gl.expiry), (Validity::Valid, Expiry::Never), "{gl:?}");
    w.host.set_token(scenario::GITLAB_HOST, "svc", TokenState::Revoked, None);
    let gl = watch.read(scenario::GITLAB_HOST, None, HostKind::GitLab, &token, None).await;
    assert_eq!(gl.validity, Validity::Invalid, "{gl:?}");
    assert_eq!(
        watch::verdict(&gl, 3, now, WatchMode::Apply { allow_expiring: true }).severity,
        watch::Severity::Refuse
    );

    let ghe = watch.read(scenario::GHE_HOST, None, HostKind::GitHubEnterprise, &token, None).await;
    assert_eq!((ghe.validity, ghe.expiry), (Validity::Valid, Expiry::Never), "{ghe:?}");
    let bad = watch.read("github.com", None, HostKind::GitHub, &secret("ghp_nope"), None).await;
    assert_eq!(bad.validity, Validity::Invalid);

    // No API for Bitbucket: nothing is sent, the file's date is used.
    w.host.reset_stats();
    let file = now + time::Duration::days(20);
    let bb = watch.read("bitbucket.org", None, HostKind::BitbucketCloud, &token, Some(file)).await;
    assert_eq!((bb.validity, bb.expiry), (Validity::Unknown, Expiry::At(file)));
    assert!(w.host.connects().is_empty(), "the Bitbucket token was sent somewhere");
    assert_eq!(watch::verdict(&bb, 40, now, WatchMode::Plan).severity, watch::Severity::Warn);
    // An earlier date in the file wins over the API's.
    let gh = watch
        .read("github.com", None, HostKind::GitHub, &token, Some(now + time::Duration::days(2)))
        .await;
    assert_eq!(gh.expiry, Expiry::At(now + time::Duration::days(2)));

    // What the watch found steers the probe: an invalid token is never probed.
    let p = prober(&w);
    p.set_token_knowledge(scenario::GITLAB_HOST, gl.validity.knowledge());
    w.host.reset_stats();
    let got = p
        .probe(&target(
            "https://gitlab.example.com/group/app.git",
            Direction::Pull,
            HostKind::GitLab,
            GL.0,
            GL.1,
        ))
        .await;
    assert_eq!((got.code, got.attempts), (ProbeCode::Breaker, 0), "{got}");
    assert_eq!(w.host.host_stats(scenario::GITLAB_HOST).requests, 0);
    for s in [&gh, &gl, &ghe, &bad, &bb] {
        assert_no_secret(&format!("{s:?}"));
    }
}

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_token_in_any_log_line_error_or_result() {
    if !git_or_skip("no_token_in_any_log_line_error_or_result") {
        return;
    }
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut shown = String::new();
    rt.block_on(async {
        let w = World::standard().await;
        w.host.script(
            "github.com",
            "/acme/echo.git/",
            vec![Scripted::status(401).text(&format!("bad token {SVC_TOKEN}"))],
        );
        let p = prober(&w);
        shown.push_str(&format!("{p:?}"));
        let rows = [
            ("https://github.com/acme/api.git", HostKind::GitHub, GH),
            ("https://github.com/acme/echo.git", HostKind::GitHub, GH),
            ("https://github.com/acme/private.git", HostKind::GitHub, GH),
            ("https://gitlab.example.com/group/app", HostKind::GitLab, GL),
            ("https://gitlab.example.com/group/hidden.git", HostKind::GitLab, GL),
            ("https://bitbucket.org/team/secret.git", HostKind::BitbucketCloud, BB),
            ("https://unserved.example/x.git", HostKind::Other, GH),
        ];
        for (url, kind, (user, pass)) in rows {
            for dir in [Direction::Pull, Direction::Push] {
                let t = target(url, dir, kind, user, pass);
                shown.push_str(&format!("{t:?}"));
                let o = p.probe(&t).await;
                shown.push_str(&texts(&o));
            }
        }
        shown.push_str(&format!("{:?}", p.host_reports()));
        // Errors: a target with credentials in its URL, a bad CA.
        let err = ProbeTarget::new(
            &format!("https://u:{SVC_TOKEN}@github.com/a.git"),
            Direction::Pull,
            HostKind::GitHub,
            secret("u"),
            secret(SVC_TOKEN),
        )
        .unwrap_err();
        shown.push_str(&format!("{err} {err:?}"));
        let mut bad = settings(&w);
        bad.http.ca_cert_pem = Some(SVC_TOKEN.as_bytes().to_vec());
        let err = Prober::new(bad).unwrap_err();
        shown.push_str(&format!("{err} {err:?}"));
        let err = HostKind::resolve("github.com", Some(HostKind::GitLab)).unwrap_err();
        shown.push_str(&format!("{err} {err:?}"));
        let mut dup = scenario::standard(&secret(SVC_TOKEN), &secret(PERSON_TOKEN));
        dup.hosts.push(dup.hosts[0].clone());
        let err = githost::start(dup).await.unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
        shown.push_str(&format!("{err} {err:?}"));
        // The token watch and its verdicts.
        let watch = TokenWatch::new(&settings(&w).http).unwrap();
        shown.push_str(&format!("{watch:?}"));
        for (host, kind) in [
            ("github.com", HostKind::GitHub),
            (scenario::GITLAB_HOST, HostKind::GitLab),
            ("bitbucket.org", HostKind::BitbucketCloud),
        ] {
            let s = watch.read(host, None, kind, &secret(SVC_TOKEN), None).await;
            let v = watch::verdict(&s, 5, time::OffsetDateTime::now_utc(), WatchMode::Status);
            shown.push_str(&format!("{s:?} {v:?} {}", v.message));
        }
        // The stand-in's own records.
        shown.push_str(&format!("{:?} {:?} {:?}", w.host.requests(), w.host.connects(), w.host));
    });
    drop(_guard);
    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(logs.contains("probe"), "the probe logged nothing, so this test proves nothing");
    assert_no_secret(&logs);
    assert_no_secret(&shown);
}
