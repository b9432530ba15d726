//! The git host stand-in, exercised with real `git ls-remote`/`clone`/`push` through its
//! CONNECT proxy (git honours `https_proxy` and `GIT_SSL_CAINFO`), and with raw HTTPS
//! requests for the host-style answers git would hide.
//!
//! These tests need `git` on PATH; without it they skip with a message, unless
//! `GLMIRROR_REQUIRE_GIT=1`, which makes a missing git a failure (CI sets it).

use std::path::PathBuf;
use std::time::Duration;

use glmirror::githost::{
    self, Access, GitHost, GitHostOptions, HostSpec, HostStyle, RepoContent, RepoSpec, Scripted,
    TokenState, scenario,
};
use secrecy::SecretString;

/// The service token every stand-in host gives `svc`; it must never show up anywhere.
pub const SVC_TOKEN: &str = "glpat-CANARYsvc0token0never0leak";
/// `person`'s token.
pub const PERSON_TOKEN: &str = "ghp_CANARYperson0token0never0leak";

pub use crate::util::git_or_skip;

pub fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// A running stand-in with its CA written to a file, and a scratch directory.
pub struct World {
    pub host: GitHost,
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
}

impl World {
    pub async fn standard() -> World {
        World::with(scenario::standard(&secret(SVC_TOKEN), &secret(PERSON_TOKEN))).await
    }

    pub async fn with(opts: GitHostOptions) -> World {
        let host = githost::start(opts).await.expect("the stand-in starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        host.write_ca_pem(&ca).expect("write CA");
        World { host, dir, ca }
    }

    /// A `git` command that reaches the stand-in through its proxy, with Basic credentials
    /// sent up front from the environment (never in argv).
    pub fn git(&self, creds: Option<(&str, &str)>) -> tokio::process::Command {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let mut cmd = tokio::process::Command::new("git");
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in self.host.git_env(&self.ca, &home) {
            cmd.env(k, v);
        }
        if let Some((user, pass)) = creds {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", format!("Authorization: Basic {b64}"));
        }
        cmd.current_dir(self.dir.path()).kill_on_drop(true);
        cmd
    }

    /// A reqwest client that goes through the proxy and trusts the stand-in's CA.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .proxy(reqwest::Proxy::https(self.host.proxy_url().as_str()).expect("proxy"))
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.host.ca_pem().as_bytes()).expect("pem"),
            )
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    /// Assert every proxy CONNECT went to a served name on port 443 (nothing left 127.0.0.1).
    pub fn assert_all_connects_local(&self) {
        let connects = self.host.connects();
        assert!(!connects.is_empty(), "nothing went through the proxy");
        for c in &connects {
            let (name, port) = c.target.rsplit_once(':').expect("host:port");
            assert!(c.allowed, "a CONNECT was refused: {c:?}");
            assert_eq!(port, "443");
            assert!(self.host.names().iter().any(|n| n == name), "unknown target {c:?}");
        }
    }
}

async fn output(mut cmd: tokio::process::Command) -> (bool, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("git finishes")
        .expect("git runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SVC: (&str, &str) = ("x-access-token", SVC_TOKEN);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_ls_remote_and_clone_go_through_the_proxy_with_real_tls_names() {
    if !git_or_skip("git_ls_remote_and_clone_go_through_the_proxy_with_real_tls_names") {
        return;
    }
    let w = World::standard().await;
    let mut ls = w.git(Some(SVC));
    ls.args(["ls-remote", "https://github.com/acme/api.git"]);
    let (ok, out, err) = output(ls).await;
    assert!(ok, "ls-remote failed: {err}");
    assert!(out.contains("refs/heads/main"), "{out}");

    let mut clone = w.git(Some(SVC));
    clone.args(["clone", "--quiet", "https://github.com/acme/api.git", "api"]);
    let (ok, _, err) = output(clone).await;
    assert!(ok, "clone failed: {err}");
    let readme = std::fs::read_to_string(w.dir.path().join("api/README.md")).expect("README");
    assert!(readme.contains("acme/api.git"));

    // The token never reached a URL the stand-in saw.
    for r in w.host.requests() {
        let seen = format!("{} {:?}", r.path, r.query);
        assert!(!seen.contains("CANARY"), "{seen}");
        assert_eq!(r.host, "github.com");
    }
    let stats = w.host.host_stats("github.com");
    assert!(stats.requests >= 3, "{stats:?}");
    assert_eq!(stats.in_flight, 0);
    assert!(stats.max_in_flight >= 1);
    w.assert_all_connects_local();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_need_write_access() {
    if !git_or_skip("pushes_need_write_access") {
        return;
    }
    let w = World::standard().await;
    let mut clone = w.git(Some(SVC));
    clone.args(["clone", "--quiet", "https://github.com/acme/readonly.git", "ro"]);
    let (ok, _, err) = output(clone).await;
    assert!(ok, "{err}");
    let repo = w.dir.path().join("ro");
    std::fs::write(repo.join("new.txt"), "x\n").expect("write");
    for args in [
        vec!["add", "new.txt"],
        vec!["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "x"],
    ] {
        let mut c = w.git(None);
        c.arg("-C").arg(&repo).args(args);
        assert!(output(c).await.0);
    }
    let push = |url: &'static str| {
        let mut c = w.git(Some(SVC));
        c.arg("-C").arg(&repo).args(["push", "--quiet", url, "HEAD:refs/heads/probe-test"]);
        c
    };
    // Read-only: refused at the ref advertisement.
    let (ok, _, err) = output(push("https://github.com/acme/readonly.git")).await;
    assert!(!ok, "a read-only account pushed");
    assert!(err.contains("403") || err.contains("denied"), "{err}");
    // Write access: the push lands.
    let (ok, _, err) = output(push("https://github.com/acme/api.git")).await;
    assert!(ok, "push failed: {err}");
    let mut ls = w.git(Some(SVC));
    ls.args(["ls-remote", "https://github.com/acme/api.git", "refs/heads/probe-test"]);
    let (ok, out, _) = output(ls).await;
    assert!(ok && out.contains("refs/heads/probe-test"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dumb_and_empty_repositories_and_access_lists() {
    if !git_or_skip("dumb_and_empty_repositories_and_access_lists") {
        return;
    }
    let w = World::standard().await;
    // git reads the dumb repository (GitLab's Gitaly would not).
    let mut ls = w.git(Some(SVC));
    ls.args(["ls-remote", "https://git.example.com/dumb/repo.git"]);
    let (ok, out, err) = output(ls).await;
    assert!(ok && out.contains("refs/heads/main"), "{out} {err}");
    // The empty repository lists no refs.
    let mut ls = w.git(Some(SVC));
    ls.args(["ls-remote", "https://github.com/acme/empty.git"]);
    let (ok, out, err) = output(ls).await;
    assert!(ok && out.trim().is_empty(), "{out} {err}");
    // Without credentials a private repository is refused; a public one is not.
    let mut ls = w.git(None);
    ls.args(["ls-remote", "https://github.com/acme/api.git"]);
    assert!(!output(ls).await.0);
    let mut ls = w.git(None);
    ls.args(["ls-remote", "https://github.com/acme/public.git"]);
    assert!(output(ls).await.0);
    // Access can change at run time.
    w.host.set_access("github.com", "acme/api.git", "svc", Access::None);
    let mut ls = w.git(Some(SVC));
    ls.args(["ls-remote", "https://github.com/acme/api.git"]);
    let (ok, _, err) = output(ls).await;
    assert!(!ok && err.contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_refuses_and_records_unknown_hosts() {
    if !git_or_skip("the_proxy_refuses_and_records_unknown_hosts") {
        return;
    }
    let w = World::standard().await;
    let mut ls = w.git(Some(SVC));
    ls.args(["ls-remote", "https://example.org/a/b.git"]);
    let (ok, _, _) = output(ls).await;
    assert!(!ok);
    let connects = w.host.connects();
    assert!(connects.iter().any(|c| c.target == "example.org:443" && !c.allowed), "{connects:?}");
    // A served name on another port is refused too.
    let r = w.http().get("https://github.com:8443/acme/api.git/info/refs").send().await;
    assert!(r.is_err());
    assert!(w.host.connects().iter().any(|c| c.target == "github.com:8443" && !c.allowed));
    assert_eq!(w.host.requests().len(), 0, "a refused CONNECT reached the server");
}

async fn get(
    w: &World,
    url: &str,
    auth: Option<(&str, &str)>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = w.http().get(url);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.expect("answer");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_host_style_answers_like_its_host() {
    if !git_or_skip("each_host_style_answers_like_its_host") {
        return;
    }
    let w = World::standard().await;
    let refs =
        |host: &str, repo: &str| format!("https://{host}/{repo}/info/refs?service=git-upload-pack");
    let bad = ("x", "wrong-token");
    let bb = ("x-token-auth", SVC_TOKEN);
    type Case<'a> = (String, Option<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        // GitHub: 401 bad token, 404 hidden or missing, 301 renamed, 200 SSO page.
        (refs("github.com", "acme/api.git"), Some(bad), 401, "Invalid username or token"),
        (refs("github.com", "acme/private.git"), Some(SVC), 404, "Repository not found"),
        (refs("github.com", "acme/nothing.git"), Some(SVC), 404, "Repository not found"),
        (refs("github.com", "acme/old-name.git"), Some(SVC), 301, ""),
        (refs("github.com", "corp/sso.git"), Some(SVC), 200, "Sign in"),
        (refs("github.com", "acme/api"), Some(SVC), 200, "# service=git-upload-pack"),
        // GitLab: 301 without .git (before auth), 401 for a service account without access.
        (refs(scenario::GITLAB_HOST, "group/app"), None, 301, ""),
        (
            refs(scenario::GITLAB_HOST, "group/hidden.git"),
            Some(SVC),
            401,
            "HTTP Basic: Access denied",
        ),
        (
            refs(scenario::GITLAB_HOST, "group/nothing.git"),
            Some(SVC),
            401,
            "HTTP Basic: Access denied",
        ),
        (
            refs(scenario::GITLAB_HOST, "group/hidden.git"),
            Some(("oauth2", PERSON_TOKEN)),
            200,
            "service=git-upload-pack",
        ),
        (
            refs(scenario::GITLAB_HOST, "group/app.git"),
            Some(("oauth2", PERSON_TOKEN)),
            404,
            "could not be found",
        ),
        // Bitbucket: 401 for everything it will not serve.
        (refs("bitbucket.org", "team/secret.git"), Some(bb), 401, "You may not have access"),
        (refs("bitbucket.org", "team/nothing.git"), Some(bb), 401, "You may not have access"),
        (refs("bitbucket.org", "team/repo.git"), Some(bad), 401, "You may not have access"),
        (refs("bitbucket.org", "team/repo.git"), Some(("someone", SVC_TOKEN)), 401, ""),
        (refs("bitbucket.org", "team/repo.git"), Some(bb), 200, "service=git-upload-pack"),
        // Plain: 404 missing, 403 no access, dumb 200 text/plain.
        (refs(scenario::PLAIN_HOST, "nothing.git"), Some(SVC), 404, ""),
        (refs(scenario::PLAIN_HOST, "plain/locked.git"), Some(SVC), 403, ""),
        (refs(scenario::PLAIN_HOST, "dumb/repo.git"), Some(SVC), 200, "\trefs/heads/main"),
    ];
    for (url, auth, want, body) in cases {
        let (status, headers, text) = get(&w, &url, auth).await;
        assert_eq!(status, want, "{url}: {text}");
        assert!(text.contains(body), "{url}: {text:?}");
        if status == 401 {
            assert!(headers.contains_key("www-authenticate"), "{url}");
        }
    }
    let (_, headers, _) = get(&w, &refs(scenario::GITLAB_HOST, "group/app"), None).await;
    assert_eq!(
        headers["location"],
        "https://gitlab.example.com/group/app.git/info/refs?service=git-upload-pack"
    );
    let (_, headers, _) = get(&w, &refs(scenario::PLAIN_HOST, "dumb/repo.git"), Some(SVC)).await;
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    // Push probes: receive-pack needs write access.
    let rp = |host: &str, repo: &str| {
        format!("https://{host}/{repo}/info/refs?service=git-receive-pack")
    };
    let (s, _, t) = get(&w, &rp("github.com", "acme/readonly.git"), Some(SVC)).await;
    assert_eq!(s, 403, "{t}");
    let (s, h, _) = get(&w, &rp("github.com", "acme/api.git"), Some(SVC)).await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], "application/x-git-receive-pack-advertisement");
    let (s, _, t) =
        get(&w, &rp(scenario::GITLAB_HOST, "group/hidden.git"), Some(("oauth2", PERSON_TOKEN)))
            .await;
    assert_eq!(s, 200, "{t}");
    w.assert_all_connects_local();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_watch_endpoints_report_the_token_state() {
    if !git_or_skip("token_watch_endpoints_report_the_token_state") {
        return;
    }
    let w = World::standard().await;
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    w.host.set_token("github.com", "svc", TokenState::Active, Some(expires));
    let resp =
        w.http().get("https://api.github.com/user").bearer_auth(SVC_TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let stamp =
        resp.headers()["github-authentication-token-expiration"].to_str().unwrap().to_owned();
    assert!(stamp.ends_with(" UTC") && stamp.starts_with(&expires.date().to_string()), "{stamp}");
    assert_eq!(resp.headers()["x-oauth-scopes"], "repo");
    let resp =
        w.http().get("https://api.github.com/user").bearer_auth("nope").send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let gl = "https://gitlab.example.com/api/v4/personal_access_tokens/self";
    let resp = w.http().get(gl).header("PRIVATE-TOKEN", SVC_TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let json: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(json["active"], true);
    assert_eq!(json["expires_at"], serde_json::Value::Null);
    assert_eq!(json["scopes"][0], "read_repository");
    w.host.set_token(scenario::GITLAB_HOST, "svc", TokenState::Revoked, None);
    let resp = w.http().get(gl).header("PRIVATE-TOKEN", SVC_TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // A revoked token also fails git.
    let (s, _, _) = get(
        &w,
        "https://gitlab.example.com/group/app.git/info/refs?service=git-upload-pack",
        Some(("oauth2", SVC_TOKEN)),
    )
    .await;
    assert_eq!(s, 401);

    let resp = w
        .http()
        .get("https://ghe.example.com/api/v3/user")
        .bearer_auth(SVC_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("github-authentication-token-expiration").is_none());
    // Every watch request carried the token in a header, never in the URL.
    for r in w.host.requests() {
        assert!(!format!("{}{:?}", r.path, r.query).contains("CANARY"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_answers_then_normal_ones() {
    if !git_or_skip("scripted_answers_then_normal_ones") {
        return;
    }
    let w = World::standard().await;
    w.host.script(
        "github.com",
        "/acme/api.git/",
        vec![
            Scripted::status(503).text("unavailable"),
            Scripted::status(429).header("Retry-After", "2"),
            Scripted::gitlab_ban(),
        ],
    );
    let url = "https://github.com/acme/api.git/info/refs?service=git-upload-pack";
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (s, h, _) = get(&w, url, Some(SVC)).await;
        seen.push(s);
        if s == 429 {
            assert_eq!(h["retry-after"], "2");
        }
    }
    assert_eq!(seen, [503, 429, 403, 200]);
    let stats = w.host.host_stats("github.com");
    assert_eq!(stats.statuses.get(&503), Some(&1));
    assert_eq!(stats.requests, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_style_bans_after_repeated_failed_logins() {
    if !git_or_skip("gitlab_style_bans_after_repeated_failed_logins") {
        return;
    }
    let clock = glmirror::probe::ManualClock::new();
    let token = secret(SVC_TOKEN);
    let mut gitlab = HostSpec::new("gitlab.example.com", HostStyle::GitLab)
        .account(githost::AccountSpec::new("svc", &token))
        .repo(RepoSpec::new("g/p.git", RepoContent::Commit).read(&["svc"]));
    gitlab.ban_after = Some(3);
    let mut opts = GitHostOptions::new(vec![gitlab]);
    opts.clock = std::sync::Arc::new(clock.clone());
    let w = World::with(opts).await;
    let url = "https://gitlab.example.com/g/p.git/info/refs?service=git-upload-pack";
    for _ in 0..3 {
        assert_eq!(get(&w, url, Some(("oauth2", "bad"))).await.0, 401);
    }
    // Banned: even good credentials get a bare 403.
    let (s, _, body) = get(&w, url, Some(("oauth2", SVC_TOKEN))).await;
    assert_eq!((s, body.trim()), (403, "Forbidden"));
    assert_eq!(w.host.host_stats("gitlab.example.com").failed_logins, 3);
    clock.advance(Duration::from_secs(3601));
    assert_eq!(get(&w, url, Some(("oauth2", SVC_TOKEN))).await.0, 200);
}
