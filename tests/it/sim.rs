//! The GitLab simulator, pinned behaviour by behaviour against docs/gitlab-behaviour.md, using reqwest
//! directly (never the crate's own GitLab client), plus `glmirror sim` and a python-gitlab run.

use std::io::BufRead;
use std::time::{Duration, Instant};

use glmirror::sim::fixture::Token;
use glmirror::sim::{
    Faults, Fixture, RateLimitShape, RemoteAccept, SimHandle, SimOptions, StateSnapshot,
};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::util::ExitExt as _;

/// A canary service token: it must never come back from the API.
const CANARY: &str = "glpat-CANARYsimServiceToken0001";

struct Resp {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(h: &SimHandle) -> Api {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Api { http, base: format!("{}api/v4", h.base_url()) }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let url =
            if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.header("PRIVATE-TOKEN", t);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request answered");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Resp { status, headers, text }
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(token), Some(body), &[]).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(token), Some(body), &[]).await
    }
}

fn demo_opts() -> SimOptions {
    let mut opts = SimOptions::new(Fixture::demo());
    opts.update_delay_ms = 30;
    opts.remote_accepts = vec![RemoteAccept {
        host: "github.com".into(),
        user: Some("svc-mirror".into()),
        password: Some(CANARY.into()),
    }];
    opts
}

async fn demo() -> (SimHandle, Api) {
    let h = glmirror::sim::start(demo_opts()).await.unwrap();
    let api = Api::new(&h);
    (h, api)
}

fn pull_of(snap: &StateSnapshot, id: u64) -> glmirror::sim::fixture::PullMirror {
    (**snap.project(id).unwrap().pull.as_ref().unwrap()).clone()
}

/// Poll a mirror until its update is no longer running.
async fn settle(api: &Api, path: &str, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let body = api.get(path, token).await.json();
        let status = body["update_status"].as_str().unwrap_or("").to_owned();
        if !matches!(status.as_str(), "started" | "scheduled") || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pull_mirror_urls_are_masked_and_unmirrored_projects_are_400() {
    let (h, api) = demo().await;
    let t = h.admin_token().to_owned();
    let r = api.get("/projects/3/mirror/pull", &t).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["url"], "https://*****:*****@github.com/acme/billing.git");
    assert_eq!(r.json()["last_error"], "4:Deadline Exceeded.");
    // Password only (Bitbucket without owner), user only (token as username).
    assert_eq!(
        api.get("/projects/5/mirror/pull", &t).await.json()["url"],
        "https://:*****@bitbucket.org/acme/shared-lib.git"
    );
    assert_eq!(
        api.get("/projects/22/mirror/pull", &t).await.json()["url"],
        "https://*****@github.com/acme/scanner.git"
    );
    for id in [11, 25] {
        let r = api.get(&format!("/projects/{id}/mirror/pull"), &t).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json(), json!({"message": "The project is not mirrored"}));
    }
    // The project entity: import_url without credentials, mirror fields.
    let p = api.get("/projects/platform%2Fbilling", &t).await.json();
    assert_eq!(p["import_url"], "https://github.com/acme/billing.git");
    assert_eq!(p["mirror"], true);
    assert_eq!(p["mirror_user_id"], 2);
    assert_eq!(p["import_error"], "4:Deadline Exceeded.");
    assert!(!r.text.contains("ghp_"));
    // A developer sees the project but not import_url.
    let mut opts = demo_opts();
    opts.fixture.tokens.push(token(90, "glsim-dev", 6, &["api"]));
    let h2 = glmirror::sim::start(opts).await.unwrap();
    let api2 = Api::new(&h2);
    let p = api2.get("/projects/3", "glsim-dev").await.json();
    assert!(p.get("import_url").is_none(), "{p}");
    assert_eq!(p["mirror"], true);
    assert_eq!(api2.get("/projects/3/mirror/pull", "glsim-dev").await.status, 403);
    assert_eq!(api2.get("/projects/9/remote_mirrors", "glsim-dev").await.status, 401);
    h2.shutdown().await;
    h.shutdown().await;
}

fn token(id: u64, value: &str, user_id: u64, scopes: &[&str]) -> Token {
    Token {
        id,
        token: value.into(),
        user_id,
        name: "test".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        revoked: false,
        expires_at: None,
        created_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

#[tokio::test]
async fn put_pull_makes_the_caller_mirror_user_and_stores_raw_credentials() {
    let (h, api) = demo().await;
    let m = h.maintainer_token().to_owned();
    // URL credentials lose to auth_user/auth_password, which are stored raw.
    let r = api
        .put(
            "/projects/13/mirror/pull",
            &m,
            json!({"url": "https://old:pw@github.com/acme/analytics.git",
                   "auth_user": "svc-mirror", "auth_password": "p%40ss"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["url"], "https://*****:*****@github.com/acme/analytics.git");
    let pull = pull_of(&h.snapshot(), 13);
    assert_eq!(pull.user.as_deref(), Some("svc-mirror"));
    assert_eq!(pull.password.as_deref(), Some("p%40ss"));
    assert_eq!(pull.mirror_user_id, Some(2));
    assert_eq!(pull.import_url, "https://github.com/acme/analytics.git");
    // The mirror user was the blocked jdoe on project 17; the caller (root) takes over.
    let a = h.admin_token().to_owned();
    let body = json!({"url": "https://github.com/acme/reporting.git", "auth_user": "svc-mirror",
                      "auth_password": CANARY});
    assert_eq!(api.put("/projects/17/mirror/pull", &a, body).await.status, 200);
    assert_eq!(pull_of(&h.snapshot(), 17).mirror_user_id, Some(1));
    // auth_password alone keeps the user and URL.
    let r = api.put("/projects/1/mirror/pull", &a, json!({"auth_password": "newpw"})).await;
    assert_eq!(r.status, 200);
    let pull = pull_of(&h.snapshot(), 1);
    assert_eq!((pull.user.as_deref(), pull.password.as_deref()), (Some("mwilson"), Some("newpw")));
    // Flags not sent stay as they were.
    assert!(pull.mirror_trigger_builds && pull.mirror_overwrites_diverged_branches);
    h.shutdown().await;
}

/// GitLab deletes the stored credentials only when the request says `enabled: false`
/// (`Repositories::PullMirrors::UpdateService#mirror_disabled?`); credentials sent to a
/// project without a pull mirror, or to a disabled one, are stored and masked.
#[tokio::test]
async fn put_pull_stores_credentials_unless_the_request_disables_the_mirror() {
    let (h, api) = demo().await;
    let a = h.admin_token().to_owned();
    // Project 9 has no pull mirror.
    let body = json!({"url": "https://github.com/acme/mobile-app.git", "auth_user": "u$/ser",
                      "auth_password": "pa$$w/o/rd"});
    let r = api.put("/projects/9/mirror/pull", &a, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["url"], "https://*****:*****@github.com/acme/mobile-app.git");
    assert_eq!(r.json()["enabled"], false);
    let pull = pull_of(&h.snapshot(), 9);
    assert_eq!(
        (pull.user.as_deref(), pull.password.as_deref()),
        (Some("u$/ser"), Some("pa$$w/o/rd"))
    );
    // Project 11's mirror is disabled; a password alone is stored there too.
    let r = api.put("/projects/11/mirror/pull", &a, json!({"auth_password": "pw"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(pull_of(&h.snapshot(), 11).password.as_deref(), Some("pw"));
    // Saying `enabled: false` deletes them, even with credentials in the same request.
    let body = json!({"enabled": false, "auth_user": "x", "auth_password": "y"});
    let r = api.put("/projects/9/mirror/pull", &a, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["url"], "https://github.com/acme/mobile-app.git");
    let pull = pull_of(&h.snapshot(), 9);
    assert_eq!((pull.user, pull.password), (None, None));
    h.shutdown().await;
}

#[tokio::test]
async fn put_pull_url_alone_wipes_stored_credentials() {
    let (h, api) = demo().await;
    let a = h.admin_token().to_owned();
    let r = api
        .put(
            "/projects/1/mirror/pull",
            &a,
            json!({"url": "https://github.com/acme/api-gateway.git"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["url"], "https://github.com/acme/api-gateway.git");
    let pull = pull_of(&h.snapshot(), 1);
    assert_eq!((pull.user, pull.password), (None, None));
    // URL userinfo is CGI-unescaped and split at the first ':' (greedy to the last '@').
    let r = api
        .put(
            "/projects/1/mirror/pull",
            &a,
            json!({"url": "https://svc%40corp:a:b@c@github.com/acme/api-gateway.git"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let pull = pull_of(&h.snapshot(), 1);
    assert_eq!(pull.user.as_deref(), Some("svc@corp"));
    assert_eq!(pull.password.as_deref(), Some("a:b@c"));
    // Disabling deletes the credentials.
    assert_eq!(api.put("/projects/1/mirror/pull", &a, json!({"enabled": false})).await.status, 200);
    let pull = pull_of(&h.snapshot(), 1);
    assert!(!pull.mirror && pull.user.is_none() && pull.password.is_none());
    h.shutdown().await;
}

#[tokio::test]
async fn put_pull_rejects_blocked_urls_and_bad_parameters_like_gitlab() {
    let (h, api) = demo().await;
    let a = h.admin_token().to_owned();
    let cases = [
        (
            "git@github.com:acme/billing.git",
            "is blocked: Only allowed schemes are http, https, ssh, git",
        ),
        (
            "ftp://github.com/acme/billing.git",
            "is blocked: Only allowed schemes are http, https, ssh, git",
        ),
        (
            "https://github.com:21/acme/billing.git",
            "is blocked: Only allowed ports are 22, 80, 443, and any over 1024",
        ),
        (
            "https://*****:*****@github.com/acme/billing.git",
            "is blocked: Username needs to start with an alphanumeric character",
        ),
        ("http://127.0.0.1/x.git", "is blocked: Requests to loopback addresses are not allowed"),
    ];
    for (url, msg) in cases {
        let r = api.put("/projects/3/mirror/pull", &a, json!({ "url": url })).await;
        assert_eq!(r.status, 400, "{url}");
        // 17.8+: the model attribute is `unsafe_import_url` (ee/spec/requests/api/project_mirror_spec.rb).
        assert_eq!(r.json(), json!({"message": {"unsafe_import_url": [msg]}}), "{url}");
    }
    // Nothing was stored by the refused calls.
    assert_eq!(pull_of(&h.snapshot(), 3).user.as_deref(), Some("ci%40acme.example"));
    let r = api.put("/projects/3/mirror/pull", &a, json!({})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"].as_str().unwrap().contains("at least one parameter must be provided")
    );
    let r = api
        .put(
            "/projects/3/mirror/pull",
            &a,
            json!({"only_mirror_protected_branches": true, "mirror_branch_regex": "x"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"],
        "only_mirror_protected_branches, mirror_branch_regex are mutually exclusive"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn auth_errors_are_401_403_404_as_on_gitlab() {
    let mut opts = demo_opts();
    opts.fixture.tokens.push(token(90, "glsim-admin-nosudo", 1, &["api"]));
    let h = glmirror::sim::start(opts).await.unwrap();
    let api = Api::new(&h);
    let r = api.send(Method::GET, "/projects", None, None, &[]).await;
    assert_eq!((r.status, r.json()), (401, json!({"message": "401 Unauthorized"})));
    assert_eq!(api.get("/projects", "glpat-wrong").await.status, 401);
    let expired = api.get("/projects", "glsim-demo-expired-000000000000000005").await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.json()["error"], "invalid_token");
    // Bearer works too.
    let bearer = format!("Bearer {}", h.maintainer_token());
    let r = api.send(Method::GET, "/user", None, None, &[("Authorization", &bearer)]).await;
    assert_eq!(r.status, 200);
    // Non-member of a private project: 404.
    let r = api.get("/projects/22", h.maintainer_token()).await;
    assert_eq!((r.status, r.json()), (404, json!({"message": "404 Project Not Found"})));
    assert_eq!(
        api.get("/projects/security%2Fscanner/mirror/pull", h.maintainer_token()).await.status,
        404
    );
    // read_api token writing: 403 insufficient_scope.
    let r = api
        .put(
            "/projects/1/mirror/pull",
            "glsim-demo-read-0000000000000000000004",
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "insufficient_scope");
    assert_eq!(
        api.get("/projects/1/mirror/pull", "glsim-demo-read-0000000000000000000004").await.status,
        200
    );
    // Sudo: honoured for an admin token with the sudo scope only.
    let sudo = [("Sudo", "svc-mirror")];
    let body = json!({"url": "https://github.com/acme/api-gateway.git", "auth_user": "svc-mirror", "auth_password": CANARY});
    let r = api
        .send(
            Method::PUT,
            "/projects/1/mirror/pull",
            Some(h.admin_token()),
            Some(body.clone()),
            &sudo,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(pull_of(&h.snapshot(), 1).mirror_user_id, Some(3));
    let r = api.send(Method::GET, "/user", Some(h.admin_token()), None, &sudo).await;
    assert_eq!(r.json()["username"], "svc-mirror");
    assert!(r.json().get("is_admin").is_none());
    let r = api.send(Method::GET, "/user", Some(h.maintainer_token()), None, &sudo).await;
    assert_eq!(r.status, 403);
    let r = api.send(Method::GET, "/user", Some("glsim-admin-nosudo"), None, &sudo).await;
    assert_eq!((r.status, r.json()["scope"].clone()), (403, json!("sudo")));
    let log = h.request_log();
    assert!(
        log.iter().any(|l| l.sudo.as_deref() == Some("svc-mirror")
            && l.method == "PUT"
            && l.status == 200)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn instance_endpoints_report_version_admin_scopes_and_silent_mode() {
    let (h, api) = demo().await;
    let a = h.admin_token().to_owned();
    let m = h.maintainer_token().to_owned();
    let meta = api.get("/metadata", &a).await.json();
    assert_eq!(
        (meta["version"].clone(), meta["enterprise"].clone()),
        (json!("17.8.1-ee"), json!(true))
    );
    assert_eq!(api.get("/user", &a).await.json()["is_admin"], true);
    assert!(api.get("/user", &m).await.json().get("is_admin").is_none());
    let pat = api.get("/personal_access_tokens/self", &a).await.json();
    assert_eq!(pat["scopes"], json!(["api", "sudo"]));
    assert_eq!(pat["active"], true);
    assert_eq!(pat["expires_at"], "2099-12-31");
    assert_eq!(api.get("/application/settings", &a).await.json()["silent_mode_enabled"], false);
    assert_eq!(api.get("/application/settings", &m).await.status, 403);
    assert_eq!(api.get("/users/4", &a).await.json()["state"], "blocked");
    assert_eq!(api.get("/users/5", &a).await.status, 404);
    let users = api.get("/users?username=svc-mirror", &a).await.json();
    assert_eq!(users[0]["bot"], true);
    assert_eq!(api.get("/no/such/route", &a).await.json(), json!({"error": "404 Not Found"}));
    h.shutdown().await;
}

/// A pull mirror GitLab paused after too many failures (`hard_failed`): `POST …/mirror/pull`
/// answers 403 "on pause"; `force=true` (19.3+) starts it anyway; before 19.3 the parameter is
/// not declared, so it changes nothing.
#[tokio::test]
async fn a_paused_pull_mirror_starts_only_when_forced_on_a_version_that_knows_force() {
    let demo_json: Value =
        serde_json::from_str(include_str!("../../fixtures/sim/demo.json")).unwrap();
    for (version, forced_status) in [("19.3.0-ee", 200), ("17.8.1-ee", 403)] {
        let mut fixture = demo_json.clone();
        fixture["gitlab_version"] = json!(version);
        let project =
            fixture["projects"].as_array_mut().unwrap().iter_mut().find(|p| p["id"] == 12).unwrap();
        project["pull"]["hard_failed"] = json!(true);
        let mut opts = demo_opts();
        opts.fixture = Fixture::parse(&fixture.to_string()).unwrap();
        let h = glmirror::sim::start(opts).await.unwrap();
        let api = Api::new(&h);
        let a = h.admin_token().to_owned();
        let r = api.post("/projects/12/mirror/pull", &a, json!({})).await;
        assert_eq!(r.status, 403, "{version}: {}", r.text);
        assert_eq!(r.json()["message"], "Mirroring for the project is on pause", "{version}");
        let r = api.post("/projects/12/mirror/pull", &a, json!({"force": true})).await;
        assert_eq!(r.status, forced_status, "{version}: {}", r.text);
        h.shutdown().await;
    }
}

/// `GET /projects/:id` presents `ProjectWithAccess`: `permissions` names the caller's direct
/// and group membership, `null` where there is none (an administrator who is no member).
#[tokio::test]
async fn get_project_tells_the_callers_access() {
    let (h, api) = demo().await;
    let m = h.maintainer_token().to_owned();
    let r = api.get("/projects/12", &m).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["permissions"],
        json!({"project_access": null,
               "group_access": {"access_level": 40, "notification_level": 3}})
    );
    let a = h.admin_token().to_owned();
    let r = api.get("/projects/12", &a).await;
    assert_eq!(r.json()["permissions"], json!({"project_access": null, "group_access": null}));
    // Lists present the plain entity.
    let r = api.get("/groups/10/projects", &a).await;
    assert!(r.json()[0].get("permissions").is_none(), "{}", r.text);
    h.shutdown().await;
}

/// Smaller contract points: push-mirror sync exists from 16.11 (`doc/api/remote_mirrors.md`),
/// Grape answers `HEAD` on a `GET` route (`/metadata`), and the token self-lookup presents
/// `PersonalAccessTokenWithLastUsedIps`.
#[tokio::test]
async fn sync_appears_in_16_11_head_reads_metadata_and_the_token_lists_its_ips() {
    for (version, sync_status) in [("16.10.0-ee", 404), ("16.11.0-ee", 204)] {
        let mut opts = demo_opts();
        opts.gitlab_version = Some(version.into());
        let h = glmirror::sim::start(opts).await.unwrap();
        let api = Api::new(&h);
        let a = h.admin_token().to_owned();
        let r = api.post("/projects/33/remote_mirrors/5/sync", &a, json!({})).await;
        assert_eq!(r.status, sync_status, "{version}: {}", r.text);
        h.shutdown().await;
    }
    let (h, api) = demo().await;
    let a = h.admin_token().to_owned();
    let head = api.send(Method::HEAD, "/metadata", Some(&a), None, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.text.is_empty(), "HEAD has no body: {}", head.text);
    let token = api.get("/personal_access_tokens/self", &a).await;
    assert_eq!(token.status, 200, "{}", token.text);
    assert!(token.json()["last_used_ips"].is_array(), "{}", token.text);
    h.shutdown().await;
}

#[tokio::test]
async fn version_gating_hides_the_new_pull_mirror_api() {
    for (version, put_status, has_enabled) in
        [("17.5.0-ee", 404, true), ("17.4.2-ee", 404, false), ("17.6.0-ee", 200, true)]
    {
        let mut opts = demo_opts();
        opts.gitlab_version = Some(version.into());
        let h = glmirror::sim::start(opts).await.unwrap();
        let api = Api::new(&h);
        let a = h.admin_token().to_owned();
        assert_eq!(api.get("/version", &a).await.json()["version"], version);
        let r = api.put("/projects/1/mirror/pull", &a, json!({"enabled": true})).await;
        assert_eq!(r.status, put_status, "{version}");
        if put_status == 404 {
            assert_eq!(r.json(), json!({"error": "404 Not Found"}));
        }
        let g = api.get("/projects/1/mirror/pull", &a).await.json();
        assert_eq!(g.get("enabled").is_some(), has_enabled, "{version}: {g}");
        assert!(g.get("update_status").is_some());
        h.shutdown().await;
    }
}

#[tokio::test]
async fn mirror_updates_finish_or_fail_in_the_background() {
    let (h, api) = demo().await;
    let a = h.admin_token().to_owned();
    // Accepted service credentials: finished.
    let body = json!({"url": "https://github.com/acme/analytics.git", "auth_user": "svc-mirror", "auth_password": CANARY});
    let r = api.put("/projects/13/mirror/pull", &a, body).await;
    assert_eq!(r.json()["update_status"], "started");
    let done = settle(&api, "/projects/13/mirror/pull", &a).await;
    assert_eq!(done["update_status"], "finished", "{done}");
    assert!(done["last_error"].is_null());
    assert!(done["last_successful_update_at"].as_str().unwrap().starts_with("20"));
    // Credentials the remote refuses: failed with a git-like, masked error.
    let body = json!({"url": "https://github.com/acme/analytics.git", "auth_user": "svc-mirror", "auth_password": "glpat-CANARYwrong"});
    api.put("/projects/13/mirror/pull", &a, body).await;
    let failed = settle(&api, "/projects/13/mirror/pull", &a).await;
    assert_eq!(failed["update_status"], "failed");
    let err = failed["last_error"].as_str().unwrap();
    assert!(
        err.contains(
            "Authentication failed for 'https://*****:*****@github.com/acme/analytics.git/'"
        ),
        "{err}"
    );
    assert!(!err.contains("CANARY"));
    // Old API: POST trigger on a mirror works; 400 on a non-mirror.
    assert_eq!(api.post("/projects/13/mirror/pull", &a, json!({})).await.status, 200);
    assert_eq!(api.post("/projects/25/mirror/pull", &a, json!({})).await.status, 400);
    // Every response so far kept the canary out.
    let all: Vec<String> = h.request_log().iter().map(|l| format!("{l:?}")).collect();
    assert!(!all.join("\n").contains(CANARY));
    h.shutdown().await;
}

#[tokio::test]
async fn silent_mode_keeps_mirror_updates_from_running() {
    let mut opts = demo_opts();
    opts.fixture.silent_mode = true;
    let h = glmirror::sim::start(opts).await.unwrap();
    let api = Api::new(&h);
    let a = h.admin_token().to_owned();
    assert_eq!(api.get("/application/settings", &a).await.json()["silent_mode_enabled"], true);
    let body = json!({"url": "https://github.com/acme/analytics.git", "auth_user": "svc-mirror", "auth_password": CANARY});
    let r = api.put("/projects/13/mirror/pull", &a, body).await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let pull = api.get("/projects/13/mirror/pull", &a).await.json();
    assert_eq!(pull["update_status"], "failed");
    assert_eq!(pull["last_update_at"], "2026-11-27T05:30:00.000Z");
    assert_eq!(pull_of(&h.snapshot(), 13).password.as_deref(), Some(CANARY));
    h.shutdown().await;
}

#[tokio::test]
async fn old_project_api_parses_url_credentials_and_probes_the_remote() {
    let mut opts = demo_opts();
    opts.remote_accepts.push(RemoteAccept {
        host: "github.com".into(),
        user: Some("svc@corp".into()),
        password: Some(CANARY.into()),
    });
    let h = glmirror::sim::start(opts).await.unwrap();
    let api = Api::new(&h);
    let m = h.maintainer_token().to_owned();
    let url = format!("https://svc%40corp:{CANARY}@github.com/acme/billing.git");
    let r = api.put("/projects/3", &m, json!({"import_url": url, "mirror": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["import_url"], "https://github.com/acme/billing.git");
    assert!(!r.text.contains(CANARY));
    let pull = pull_of(&h.snapshot(), 3);
    assert_eq!((pull.user.as_deref(), pull.password.as_deref()), (Some("svc@corp"), Some(CANARY)));
    assert_eq!(pull.mirror_user_id, Some(2));
    // The network check: refused credentials and ssh:// are 422.
    for bad in
        ["https://svc:nope@github.com/acme/billing.git", "ssh://git@github.com/acme/billing.git"]
    {
        let r = api.put("/projects/3", &m, json!({"import_url": bad, "mirror": true})).await;
        assert_eq!(r.status, 422, "{bad}");
        assert_eq!(
            r.json(),
            json!({"message": "Unable to access repository with the URL and credentials provided"})
        );
    }
    // A non-admin may not name another mirror user; an admin may.
    let r = api.put("/projects/3", &m, json!({"mirror": true, "mirror_user_id": 3})).await;
    assert_eq!((r.status, r.json()), (400, json!({"message": {"mirror_user_id": ["is invalid"]}})));
    let r =
        api.put("/projects/3", h.admin_token(), json!({"mirror": true, "mirror_user_id": 3})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["mirror_user_id"], 3);
    // Quirk: naming the current mirror user ends up as the caller.
    let r =
        api.put("/projects/3", h.admin_token(), json!({"mirror": true, "mirror_user_id": 3})).await;
    assert_eq!(r.json()["mirror_user_id"], 1);
    h.shutdown().await;

    // Without admin_mirror (mirror_available off) the attributes are silently dropped.
    let mut opts = demo_opts();
    opts.fixture.mirror_available = false;
    let h = glmirror::sim::start(opts).await.unwrap();
    let api = Api::new(&h);
    let r = api
        .put(
            "/projects/3",
            h.maintainer_token(),
            json!({"import_url": "https://github.com/acme/other.git", "mirror": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["import_url"], "https://github.com/acme/billing.git");
    assert_eq!(pull_of(&h.snapshot(), 3).user.as_deref(), Some("ci%40acme.example"));
    let r =
        api.put("/projects/3/mirror/pull", h.maintainer_token(), json!({"enabled": true})).await;
    assert_eq!((r.status, r.json()), (400, json!({"message": "Access Denied"})));
    h.shutdown().await;
}

#[tokio::test]
async fn push_mirrors_follow_the_remote_mirrors_api() {
    let (h, api) = demo().await;
    let a = h.admin_token().to_owned();
    let url = format!("https://svc-mirror:{CANARY}@github.com/acme/docs-copy.git");
    let r = api.post("/projects/26/remote_mirrors", &a, json!({ "url": url })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    assert_eq!(created["enabled"], false);
    assert_eq!(created["url"], "https://*****:*****@github.com/acme/docs-copy.git");
    assert_eq!(created["auth_method"], "password");
    let id = created["id"].as_u64().unwrap();
    let snap = h.snapshot();
    let stored =
        snap.project(26).unwrap().remote_mirrors.iter().find(|m| m.id == id).unwrap().clone();
    assert_eq!(stored.url, "https://github.com/acme/docs-copy.git");
    assert_eq!(stored.password.as_deref(), Some(CANARY));
    // Disabled: sync is refused.
    let r = api.post(&format!("/projects/26/remote_mirrors/{id}/sync"), &a, json!({})).await;
    assert_eq!(r.status, 400);
    // PUT ignores url.
    let r = api
        .put(
            &format!("/projects/26/remote_mirrors/{id}"),
            &a,
            json!({"url": "https://evil.example/x.git", "enabled": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["url"], "https://*****:*****@github.com/acme/docs-copy.git");
    assert_eq!(r.json()["enabled"], true);
    let r = api.post(&format!("/projects/26/remote_mirrors/{id}/sync"), &a, json!({})).await;
    assert_eq!(r.status, 204);
    let done = settle(&api, &format!("/projects/26/remote_mirrors/{id}"), &a).await;
    assert_eq!(done["update_status"], "finished", "{done}");
    // SSH mirrors keep the user git.
    let r = api.post("/projects/27/remote_mirrors", &a, json!({"url": "ssh://git@gitlab.com/acme-backup/k8s2.git", "enabled": true, "auth_method": "ssh_public_key"})).await;
    assert_eq!(r.json()["url"], "ssh://git@gitlab.com/acme-backup/k8s2.git");
    // Blocked URL shape uses the key "url".
    let r = api
        .post("/projects/27/remote_mirrors", &a, json!({"url": "git@gitlab.com:acme/x.git"}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"]["url"][0].as_str().unwrap().starts_with("is blocked: "));
    // List is paginated; DELETE is 204.
    let r = api.get("/projects/26/remote_mirrors?per_page=1", &a).await;
    assert_eq!(r.header("x-total").as_deref(), Some("2"));
    let r = api
        .send(Method::DELETE, &format!("/projects/26/remote_mirrors/{id}"), Some(&a), None, &[])
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(api.get(&format!("/projects/26/remote_mirrors/{id}"), &a).await.status, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn offset_pagination_headers_and_scoping() {
    let (h, api) = demo().await;
    let a = h.admin_token().to_owned();
    let r = api.get("/projects?per_page=500&order_by=id&sort=asc", &a).await;
    let total = Fixture::demo().projects.len();
    assert!(total < 100, "one page holds the demo instance");
    assert_eq!(r.header("x-per-page").as_deref(), Some("100"));
    assert_eq!(r.header("x-total"), Some(total.to_string()));
    assert_eq!(r.header("x-next-page").as_deref(), Some(""));
    assert_eq!(r.json().as_array().unwrap().len(), total);
    let r = api.get("/projects?per_page=10&page=2&order_by=id&sort=asc", &a).await;
    assert_eq!(r.header("x-next-page").as_deref(), Some("3"));
    assert!(r.header("link").unwrap().contains("rel=\"next\""));
    assert_eq!(r.json()[0]["id"], 11);
    // Admin + min_access_level: memberships only (root is a member of nothing).
    assert_eq!(
        api.get("/projects?min_access_level=40", &a).await.header("x-total").as_deref(),
        Some("0")
    );
    // Maintainer: member projects plus internal/public ones, not security/scanner.
    let m = api.get("/projects?per_page=100", h.maintainer_token()).await.json();
    let ids: Vec<u64> = m.as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert!(!ids.contains(&22) && ids.contains(&1) && ids.contains(&30));
    // Group projects: no subgroups by default, shared projects included unless with_shared=false.
    let g = api.get("/groups/vendor/projects?per_page=100", &a).await.json();
    let ids: Vec<u64> = g.as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert!(ids.contains(&25) && !ids.contains(&14), "{ids:?}");
    let g = api
        .get("/groups/20/projects?include_subgroups=true&with_shared=false&per_page=100", &a)
        .await
        .json();
    let ids: Vec<u64> = g.as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert!(!ids.contains(&25) && ids.contains(&14), "{ids:?}");
    // Keyset needs order_by=id.
    let r = api.get("/projects?pagination=keyset&order_by=name", &a).await;
    assert_eq!(r.status, 405);
    h.shutdown().await;
}

#[tokio::test]
async fn keyset_walks_a_large_generated_instance() {
    let n = 12_000;
    let mut opts = SimOptions::new(glmirror::sim::generate(n, 42));
    opts.update_delay_ms = 10;
    let h = glmirror::sim::start(opts).await.unwrap();
    let api = Api::new(&h);
    let a = h.admin_token().to_owned();
    // Offset over >10,000 records: no X-Total.
    let r = api.get("/projects?per_page=1", &a).await;
    assert!(r.header("x-total").is_none() && r.header("x-total-pages").is_none());
    assert!(!r.header("link").unwrap().contains("rel=\"last\""));
    let mut next = Some(format!(
        "{}/projects?pagination=keyset&order_by=id&sort=asc&per_page=100&simple=true",
        api.base
    ));
    let (mut count, mut pages, mut last_id) = (0u32, 0u32, 0u64);
    while let Some(url) = next.take() {
        let r = api.get(&url, &a).await;
        assert_eq!(r.status, 200);
        for p in r.json().as_array().unwrap() {
            let id = p["id"].as_u64().unwrap();
            assert!(id > last_id);
            last_id = id;
            count += 1;
        }
        pages += 1;
        next = r.header("link").and_then(|l| {
            l.split(',')
                .find(|p| p.contains("rel=\"next\""))
                .map(|p| p.trim().trim_start_matches('<').split('>').next().unwrap().to_owned())
        });
    }
    assert_eq!(count, n);
    assert_eq!(pages, n / 100 + 1, "the last full page links to an empty one");
    h.shutdown().await;
}

#[tokio::test]
async fn a_hundred_thousand_projects_work() {
    let fixture = glmirror::sim::generate(100_000, 1);
    let h = glmirror::sim::start(SimOptions::new(fixture)).await.unwrap();
    let api = Api::new(&h);
    let a = h.admin_token().to_owned();
    let first = api.get("/projects?pagination=keyset&order_by=id&sort=asc&per_page=100", &a).await;
    assert_eq!(first.json().as_array().unwrap().len(), 100);
    assert!(first.header("link").unwrap().contains("id_after=100"));
    let tail = api
        .get("/projects?pagination=keyset&order_by=id&sort=asc&per_page=100&id_after=99950", &a)
        .await;
    assert_eq!(tail.json().as_array().unwrap().len(), 50);
    assert!(tail.header("link").is_none());
    let desc = api.get("/projects?pagination=keyset&order_by=id&sort=desc&per_page=3", &a).await;
    assert_eq!(desc.json()[0]["id"], 100_000);
    assert!(desc.header("link").unwrap().contains("id_before=99998"));
    // Offset pagination stops at the instance's maximum offset for projects.
    let far = api.get("/projects?per_page=100&page=501", &a).await;
    assert_eq!(far.status, 405);
    assert!(far.json()["error"].as_str().unwrap().contains("keyset pagination"));
    h.shutdown().await;
}

#[tokio::test]
async fn fault_knobs_are_observable() {
    let (h, api) = demo().await;
    let a = h.admin_token().to_owned();
    // Latency.
    h.set_faults(Faults { latency_ms: 150, ..Faults::default() });
    let t0 = Instant::now();
    assert_eq!(api.get("/version", &a).await.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(150));
    // 5xx.
    h.set_faults(Faults { error_rate: 1.0, seed: 3, ..Faults::default() });
    for _ in 0..5 {
        let r = api.get("/version", &a).await;
        assert!([500, 502, 503].contains(&r.status), "{}", r.status);
    }
    // Dropped connections: no answer at all.
    h.set_faults(Faults { drop_rate: 1.0, ..Faults::default() });
    let err =
        api.http.get(format!("{}/version", api.base)).header("PRIVATE-TOKEN", &a).send().await;
    assert!(err.is_err(), "a dropped connection must not answer");
    assert_eq!(h.request_log().last().unwrap().status, 0);
    // Rate limit, plain-text throttle shape.
    h.set_faults(Faults { rate_limit_per_minute: Some(2), ..Faults::default() });
    let ok = api.get("/version", &a).await;
    assert_eq!(ok.header("ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(ok.header("ratelimit-remaining").as_deref(), Some("1"));
    assert_eq!(ok.header("ratelimit-name").as_deref(), Some("throttle_authenticated_api"));
    assert!(ok.header("ratelimit-reset").unwrap().parse::<u64>().unwrap() > 1_700_000_000);
    api.get("/version", &a).await;
    let limited = api.get("/version", &a).await;
    assert_eq!((limited.status, limited.text.trim()), (429, "Retry later"));
    assert!(limited.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(limited.header("ratelimit-observed").as_deref(), Some("3"));
    // Application-limit shape: JSON, no headers; alternate switches between the two.
    h.set_faults(Faults {
        rate_limit_per_minute: Some(0),
        rate_limit_shape: RateLimitShape::Application,
        ..Faults::default()
    });
    let app = api.get("/projects", &a).await;
    assert_eq!(app.status, 429);
    assert_eq!(
        app.json(),
        json!({"message": {"error": "This endpoint has been requested too many times. Try again later."}})
    );
    assert!(app.header("retry-after").is_none() && app.header("ratelimit-limit").is_none());
    h.set_faults(Faults {
        rate_limit_per_minute: Some(0),
        rate_limit_shape: RateLimitShape::Alternate,
        ..Faults::default()
    });
    let first = api.get("/projects", &a).await;
    let second = api.get("/projects", &a).await;
    assert_eq!((first.text.trim(), second.header("retry-after")), ("Retry later", None));
    // Redirect to another origin.
    h.set_faults(Faults { redirect_to: Some("https://other.example".into()), ..Faults::default() });
    let r = api.get("/projects?per_page=1", &a).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://other.example/api/v4/projects?per_page=1")
    );
    // Write stall: the first write succeeds, the second hangs.
    h.set_faults(Faults { write_stall_after: Some(1), ..Faults::default() });
    assert_eq!(
        api.put("/projects/1/mirror/pull", &a, json!({"mirror_trigger_builds": false}))
            .await
            .status,
        200
    );
    let stalled = api
        .http
        .put(format!("{}/projects/1/mirror/pull", api.base))
        .header("PRIVATE-TOKEN", &a)
        .json(&json!({"mirror_trigger_builds": true}))
        .timeout(Duration::from_millis(400))
        .send()
        .await;
    assert!(stalled.is_err());
    assert!(!pull_of(&h.snapshot(), 1).mirror_trigger_builds, "a stalled write is not applied");
    assert_eq!(api.get("/version", &a).await.status, 200, "reads still work");
    h.shutdown().await;
}

#[tokio::test]
async fn faults_are_deterministic_for_a_seed() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let mut opts = demo_opts();
        opts.faults = Faults { error_rate: 0.5, seed, ..Faults::default() };
        let h = glmirror::sim::start(opts).await.unwrap();
        let api = Api::new(&h);
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(api.get("/version", h.admin_token()).await.status);
        }
        h.shutdown().await;
        out
    }
    let a = statuses(9).await;
    assert_eq!(a, statuses(9).await);
    assert!(a.contains(&200) && a.iter().any(|s| *s >= 500));
}

#[tokio::test]
async fn control_endpoints_expose_log_state_and_faults() {
    let (h, api) = demo().await;
    let base = h.base_url();
    api.get("/projects/1", h.admin_token()).await;
    let log: Value =
        api.http.get(format!("{base}__sim/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(log[0]["path"], "/api/v4/projects/1");
    assert_eq!(log[0]["user"], "root");
    let state: Value =
        api.http.get(format!("{base}__sim/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        state["projects"][0]["pull"]["password"],
        "ghp_mwilsonPersonal0000000000000000000001"
    );
    let r = api
        .http
        .put(format!("{base}__sim/faults"))
        .json(&json!({"error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(api.get("/version", h.admin_token()).await.status >= 500);
    h.shutdown().await;
}

#[test]
fn sim_command_prints_its_connection_lines() {
    let mut child = crate::util::glmirror()
        .args(["sim", "--generate", "50", "--seed", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut first = Vec::new();
    for _ in 0..4 {
        first.push(lines.next().expect("a line").expect("utf-8"));
    }
    let base = first[0].strip_prefix("base_url=http://127.0.0.1:").expect(&first[0]).to_owned();
    assert!(base.parse::<u16>().is_ok());
    let admin = first[1].strip_prefix("admin_token=").unwrap().to_owned();
    assert!(first[2].starts_with("maintainer_token="));
    // The service token the generated remotes accept, for MIRROR_TOKEN.
    let service = glmirror::sim::generate(50, 1).demo.expect("demo settings").service_token;
    assert_eq!(first[3], format!("service_token={service}"));
    // It answers.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{base}/api/v4/projects?per_page=1"))
            .header("PRIVATE-TOKEN", admin)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// With the demo fixture, `sim` prints the demo's service token; following the README with it
/// (`MIRROR_TOKEN=<service_token>`) moves the github.com mirrors onto credentials the remotes
/// accept. The token is printed once, on stdout, and nowhere else (not in the log).
#[test]
fn sim_command_prints_the_service_token_its_remotes_accept() {
    let mut child = crate::util::glmirror()
        .args(["sim"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first: Vec<String> = (0..4).map(|_| lines.next().expect("a line").unwrap()).collect();
    let token = Fixture::demo().demo.expect("demo settings").service_token;
    assert_eq!(first[3], format!("service_token={token}"));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&token), "service token in the log");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().all(|l| !l.contains(&token)), "printed twice: {rest:?}");
    // A fixture without demo settings has no service token to print.
    let dir = tempfile::tempdir().unwrap();
    let mut fixture = serde_json::to_value(Fixture::demo()).unwrap();
    fixture.as_object_mut().unwrap().remove("demo");
    let path = dir.path().join("f.json");
    std::fs::write(&path, fixture.to_string()).unwrap();
    let mut child = crate::util::glmirror()
        .args(["sim", "--fixture"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawns");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Vec<String> = (0..3).map(|_| lines.next().expect("a line").unwrap()).collect();
    assert!(first[2].starts_with("maintainer_token="), "{first:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().all(|l| !l.starts_with("service_token=")), "{rest:?}");
}

#[test]
fn sim_command_refuses_a_bad_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, "{\"users\": 1}").unwrap();
    let out = crate::util::glmirror().args(["sim", "--fixture"]).arg(&path).output().unwrap();
    out.exit(2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid fixture"));
    let out = crate::util::glmirror().args(["sim", "--error-rate", "2"]).output().unwrap();
    out.exit(2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--error-rate must be between 0.0 and 1.0")
    );
}

#[test]
fn python_gitlab_reads_the_simulator() {
    let has_module = std::process::Command::new("python3")
        .args(["-c", "import gitlab"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_module {
        if std::env::var("GLMIRROR_REQUIRE_PYTHON_GITLAB").as_deref() == Ok("1") {
            panic!(
                "python-gitlab is required (GLMIRROR_REQUIRE_PYTHON_GITLAB=1) but `python3 -c 'import gitlab'` failed: run `python3 -m pip install python-gitlab`"
            );
        }
        eprintln!("skipping: python-gitlab is not installed");
        return;
    }
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let h = rt.block_on(glmirror::sim::start(demo_opts())).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/python_gitlab_check.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(h.base_url().as_str())
        .env("GLMIRROR_SIM_TOKEN", h.admin_token())
        .output()
        .unwrap();
    out.context("python-gitlab check").ok();
    rt.block_on(h.shutdown());
}

/// GitLab fails every update of a pull mirror whose mirror user is below Maintainer (it pushes
/// what it fetched as that user, and cannot push to protected branches); at Maintainer the
/// same mirror updates. In the demo, svc-mirror (user 3) is a Developer of security/audit-log
/// (project 35).
#[tokio::test]
async fn updates_fail_while_the_mirror_user_is_below_maintainer() {
    for (level, fails) in [(30, true), (20, true), (40, false)] {
        let mut opts = demo_opts();
        // Members are not public fields: edit the fixture as JSON, as a fixture file would.
        let mut fixture = serde_json::to_value(&opts.fixture).unwrap();
        let project = fixture["projects"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|p| p["id"] == 35)
            .expect("security/audit-log");
        project["pull"]["mirror_user_id"] = json!(3);
        for m in project["members"].as_array_mut().unwrap() {
            if m["user_id"] == 3 {
                m["access_level"] = json!(level);
            }
        }
        opts.fixture = serde_json::from_value(fixture).unwrap();
        opts.remote_accepts.push(RemoteAccept {
            host: "github.com".into(),
            user: Some("mwilson".into()),
            password: Some("ghp_mwilsonPersonal0000000000000000000001".into()),
        });
        let h = glmirror::sim::start(opts).await.unwrap();
        let api = Api::new(&h);
        let t = h.admin_token().to_owned();
        let r = api.post("/projects/35/mirror/pull", &t, json!({})).await;
        assert!(matches!(r.status, 200..=204), "{}: {}", r.status, r.text);
        let body = settle(&api, "/projects/35/mirror/pull", &t).await;
        let error = body["last_error"].as_str().unwrap_or_default();
        let refused = error.contains(
            "The mirror user is not allowed to push code to all branches on this project.",
        );
        assert_eq!(refused, fails, "access level {level}: {body}");
        assert_eq!(body["update_status"] == "failed", fails, "access level {level}: {body}");
        assert_eq!(pull_of(&h.snapshot(), 35).mirror_user_id, Some(3), "the POST keeps the user");
    }
}
