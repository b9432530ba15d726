//! The stand-in's request handling: virtual host by `Host`, scripted answers, the
//! token-watch API endpoints, each host style's answers to who may read or write what, and
//! the CGI glue to `git http-backend` (or static files for dumb repositories).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use super::{
    AccountSpec, AuthSeen, HostRt, HostStyle, RepoContent, RepoSpec, RequestRecord, Scripted,
    Shared, TokenState,
};
use crate::rewrite::Direction;

/// Largest request body accepted (pushes in tests are small).
const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;
/// GitLab's ban lasts an hour.
const BAN_FOR: Duration = Duration::from_secs(3600);
/// GitLab counts failed logins over 3 minutes.
const BAN_WINDOW: Duration = Duration::from_secs(180);

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// Counts a request in flight from creation to drop.
struct InFlight {
    shared: Arc<Shared>,
    host: String,
}

impl InFlight {
    fn new(shared: &Arc<Shared>, host: &str) -> InFlight {
        let mut st = shared.lock();
        st.in_flight_total += 1;
        st.max_in_flight_total = st.max_in_flight_total.max(st.in_flight_total);
        let s = st.stats.entry(host.to_owned()).or_default();
        s.requests += 1;
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        InFlight { shared: Arc::clone(shared), host: host.to_owned() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.in_flight_total = st.in_flight_total.saturating_sub(1);
        if let Some(s) = st.stats.get_mut(&self.host) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

/// What the request carried, parsed once.
struct Req {
    host: String,
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.host())
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let _flight = InFlight::new(&shared, &host);
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    let body = axum::body::to_bytes(body, MAX_REQUEST_BODY).await.unwrap_or_default();
    let req = Req {
        host,
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    };
    let auth = auth_seen(&req.headers);
    let response = answer(&shared, &req).await;
    let status = response.status().as_u16();
    let record = RequestRecord {
        host: req.host.clone(),
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        status,
        auth,
        git_protocol: req.header("git-protocol").map(str::to_owned),
        user_agent: req.header("user-agent").map(str::to_owned),
    };
    let mut st = shared.lock();
    *st.stats.entry(req.host.clone()).or_default().statuses.entry(status).or_default() += 1;
    st.log.push(record);
    response
}

fn auth_seen(headers: &HeaderMap) -> AuthSeen {
    if headers.contains_key("private-token") {
        return AuthSeen::PrivateToken;
    }
    match headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        None => AuthSeen::None,
        Some(v) if v.len() > 6 && v[..6].eq_ignore_ascii_case("basic ") => AuthSeen::Basic,
        Some(v) if v.to_ascii_lowercase().starts_with("bearer ") => AuthSeen::Bearer,
        Some(v) if v.to_ascii_lowercase().starts_with("token ") => AuthSeen::Bearer,
        Some(_) => AuthSeen::Other,
    }
}

fn reply(status: u16, content_type: Option<&str>, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert(axum::http::header::CONTENT_TYPE, ct);
    }
    r
}

fn with_header(mut r: Response, name: &str, value: &str) -> Response {
    if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
        r.headers_mut().append(n, v);
    }
    r
}

const TEXT: Option<&str> = Some("text/plain; charset=utf-8");
const JSON: Option<&str> = Some("application/json");

fn scripted(s: Scripted) -> Response {
    let mut r = reply(s.status, s.content_type.as_deref(), s.body);
    for (n, v) in &s.headers {
        r = with_header(r, n, v);
    }
    r
}

fn take_script(host: &mut HostRt, path: &str) -> Option<Scripted> {
    let (_, queue) =
        host.scripts.iter_mut().find(|(p, q)| path.starts_with(p.as_str()) && !q.is_empty())?;
    queue.pop_front()
}

async fn answer(shared: &Arc<Shared>, req: &Req) -> Response {
    let api_github = req.host == "api.github.com";
    let vhost = if api_github { "github.com" } else { req.host.as_str() };
    // Everything that needs the state is decided under one lock; the CGI runs outside it.
    let decision = {
        let mut st = shared.lock();
        let Some(host) = st.hosts.get_mut(vhost) else {
            return reply(421, TEXT, "this stand-in does not serve that host\n");
        };
        if let Some(s) = take_script(host, &req.path) {
            return scripted(s);
        }
        if api_github || is_api_path(host.spec.style, &req.path) {
            return api(host, req, api_github);
        }
        let now = shared.clock.now();
        decide(host, req, now)
    };
    match decision {
        Decision::Answer(r) => r,
        Decision::FailedLogin(r) => {
            let mut st = shared.lock();
            st.stats.entry(req.host.clone()).or_default().failed_logins += 1;
            r
        }
        Decision::Static { backing, rest } => {
            serve_static(shared, &req.host, &backing, &rest).await
        }
        Decision::Cgi { backing, rest, remote_user, v2 } => {
            cgi(shared, req, &backing, &rest, remote_user.as_deref(), v2).await
        }
    }
}

fn is_api_path(style: HostStyle, path: &str) -> bool {
    match style {
        HostStyle::GitHub => path.starts_with("/api/v3/"),
        HostStyle::GitLab => path.starts_with("/api/v4/"),
        HostStyle::Bitbucket | HostStyle::Plain => false,
    }
}

enum Decision {
    Answer(Response),
    /// A 401 to credentials (counted).
    FailedLogin(Response),
    Static {
        backing: String,
        rest: String,
    },
    Cgi {
        backing: String,
        rest: String,
        remote_user: Option<String>,
        v2: bool,
    },
}

/// Who the credentials belong to.
enum Who<'a> {
    Anonymous,
    Bad,
    Account(&'a AccountSpec),
}

fn token_live(a: &AccountSpec) -> bool {
    a.state == TokenState::Active && a.expires_at.is_none_or(|at| at > OffsetDateTime::now_utc())
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':').unwrap_or((&text, ""));
    Some((u.to_owned(), p.to_owned()))
}

fn who<'a>(host: &'a HostRt, headers: &HeaderMap) -> Who<'a> {
    if headers.get(axum::http::header::AUTHORIZATION).is_none() {
        return Who::Anonymous;
    }
    let Some((user, pass)) = basic(headers) else {
        return Who::Bad;
    };
    let found = host.spec.accounts.iter().find(|a| {
        let token = a.token.expose_secret();
        let normal =
            pass == token && !user.is_empty() && a.username.as_deref().is_none_or(|u| u == user);
        // GitHub also takes the token as the username with an empty password.
        let token_as_user = host.spec.style == HostStyle::GitHub
            && a.username.is_none()
            && user == token
            && pass.is_empty();
        normal || token_as_user
    });
    match found {
        Some(a) if token_live(a) => Who::Account(a),
        _ => Who::Bad,
    }
}

fn has_scope(a: &AccountSpec, any_of: &[&str]) -> bool {
    a.scopes.is_empty() || a.scopes.iter().any(|s| any_of.contains(&s.as_str()))
}

fn can(repo: &RepoSpec, who: &Who<'_>, dir: Direction) -> bool {
    let name = match who {
        Who::Account(a) => Some(a.name.as_str()),
        _ => None,
    };
    let writes = name.is_some_and(|n| repo.write.iter().any(|w| w == n));
    match dir {
        Direction::Pull => {
            repo.public || writes || name.is_some_and(|n| repo.read.iter().any(|r| r == n))
        }
        Direction::Push => writes,
    }
}

/// The repository for a path part, with its backing directory. A `*` in a spec's path
/// matches any text without `/`.
fn find_repo<'a>(host: &'a HostRt, path: &str) -> Option<&'a RepoSpec> {
    host.spec.repos.iter().find(|r| match r.path.split_once('*') {
        None => r.path == path,
        Some((pre, post)) => {
            path.len() > pre.len() + post.len()
                && path.starts_with(pre)
                && path.ends_with(post)
                && !path[pre.len()..path.len() - post.len()].contains('/')
        }
    })
}

/// Split `/a/b.git/info/refs` into (`a/b.git`, `info/refs`).
fn split_git_path(path: &str) -> Option<(String, String)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segments.iter().any(|s| *s == ".." || *s == ".") {
        return None;
    }
    let i = (1..segments.len()).find(|&i| {
        matches!(segments[i], "info" | "objects" | "git-upload-pack" | "git-receive-pack" | "HEAD")
    })?;
    Some((segments[..i].join("/"), segments[i..].join("/")))
}

const GITHUB_BAD: &str =
    "Invalid username or token. Password authentication is not supported for Git operations.\n";
const GITHUB_MISSING: &str = "Repository not found.\n";
const GITLAB_DENIED: &str = "HTTP Basic: Access denied. If a password was provided for Git \
     authentication, the password was incorrect or you're required to use a token instead of a \
     password. If a token was provided, it was either incorrect, expired, or improperly scoped.\n";
const GITLAB_NOT_FOUND: &str = "The project you were looking for could not be found or you \
     don't have permission to view it.\n";
const BITBUCKET_DENIED: &str = "You may not have access to this repository or it no longer \
     exists in this workspace. If you think this repository exists and you have access, make \
     sure you are authenticated.\n";
const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\
     <body><form action=\"/sso/login\" method=\"post\">Single sign-on required</form></body></html>\n";

fn challenge(status: u16, realm: &str, body: &'static str) -> Response {
    with_header(reply(status, TEXT, body), "www-authenticate", &format!("Basic realm=\"{realm}\""))
}

fn decide(host: &mut HostRt, req: &Req, now: Duration) -> Decision {
    let style = host.spec.style;
    if style == HostStyle::GitLab && host.banned_until.is_some_and(|until| now < until) {
        return Decision::Answer(scripted(Scripted::gitlab_ban()));
    }
    let Some((repo_path, rest)) = split_git_path(&req.path) else {
        return Decision::Answer(reply(404, TEXT, "Not Found\n"));
    };
    let dir = match (rest.as_str(), req.query.as_deref()) {
        ("git-receive-pack", _) => Direction::Push,
        ("info/refs", Some(q)) if q.contains("service=git-receive-pack") => Direction::Push,
        _ => Direction::Pull,
    };
    let query = req.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
    // GitLab's router sends a path without .git to the .git one, before authentication.
    if style == HostStyle::GitLab && !repo_path.ends_with(".git") {
        let location = format!("https://{}/{repo_path}.git/{rest}{query}", req.host);
        return Decision::Answer(with_header(reply(301, TEXT, ""), "location", &location));
    }
    let repo = find_repo(host, &repo_path).or_else(|| {
        (!repo_path.ends_with(".git"))
            .then(|| find_repo(host, &format!("{repo_path}.git")))
            .flatten()
    });
    match repo.map(|r| &r.content) {
        Some(RepoContent::Moved { to }) => {
            let location = format!("https://{}/{to}/{rest}{query}", req.host);
            return Decision::Answer(with_header(reply(301, TEXT, ""), "location", &location));
        }
        Some(RepoContent::LoginPage) => {
            return Decision::Answer(reply(200, Some("text/html; charset=utf-8"), LOGIN_PAGE));
        }
        _ => {}
    }
    let who = who(host, &req.headers);
    let had_credentials = !matches!(who, Who::Anonymous);
    let readable = repo.is_some_and(|r| can(r, &who, Direction::Pull));
    let allowed = repo.is_some_and(|r| can(r, &who, dir));
    let user = match &who {
        Who::Account(a) => Some(a.username.clone().unwrap_or_else(|| a.name.clone())),
        _ => None,
    };
    let denial: Option<Response> = match style {
        HostStyle::GitHub => match &who {
            Who::Bad => Some(challenge(401, "GitHub", GITHUB_BAD)),
            Who::Anonymous if !allowed => Some(challenge(401, "GitHub", "")),
            Who::Account(_) if !readable => Some(reply(404, TEXT, GITHUB_MISSING)),
            Who::Account(_) if !allowed => Some(reply(
                403,
                TEXT,
                format!(
                    "Permission to {} denied to {}.\n",
                    repo_path,
                    user.as_deref().unwrap_or("you")
                ),
            )),
            _ => None,
        },
        HostStyle::GitLab => match &who {
            Who::Bad => Some(challenge(401, "GitLab", GITLAB_DENIED)),
            Who::Anonymous if !allowed => Some(challenge(401, "GitLab", GITLAB_DENIED)),
            // A service account that cannot read the project fails authentication itself.
            Who::Account(a) if a.service_account && !readable => {
                Some(challenge(401, "GitLab", GITLAB_DENIED))
            }
            Who::Account(a)
                if !has_scope(a, &["read_repository", "write_repository", "read_api", "api"]) =>
            {
                Some(reply(403, TEXT, "You are not allowed to download code.\n"))
            }
            Who::Account(_) if !readable => Some(reply(404, TEXT, GITLAB_NOT_FOUND)),
            Who::Account(a)
                if dir == Direction::Push && !has_scope(a, &["write_repository", "api"]) =>
            {
                Some(reply(403, TEXT, "You are not allowed to upload code.\n"))
            }
            Who::Account(_) if !allowed => {
                Some(reply(403, TEXT, "You are not allowed to push code to this project.\n"))
            }
            _ => None,
        },
        HostStyle::Bitbucket => match &who {
            Who::Bad => Some(challenge(401, "Bitbucket.org HTTP", BITBUCKET_DENIED)),
            Who::Anonymous if !allowed => {
                Some(challenge(401, "Bitbucket.org HTTP", BITBUCKET_DENIED))
            }
            Who::Account(_) if !readable => {
                Some(challenge(401, "Bitbucket.org HTTP", BITBUCKET_DENIED))
            }
            Who::Account(_) if !allowed => Some(reply(
                403,
                TEXT,
                "Your credentials lack one or more required privilege scopes.\n",
            )),
            _ => None,
        },
        HostStyle::Plain => match &who {
            Who::Bad => Some(challenge(401, "git", "")),
            Who::Anonymous if !allowed => Some(challenge(401, "git", "")),
            _ if repo.is_none() => Some(reply(404, None, "")),
            Who::Account(_) if !allowed => Some(reply(403, None, "")),
            _ => None,
        },
    };
    if let Some(r) = denial {
        if r.status() == StatusCode::UNAUTHORIZED && had_credentials {
            host.failures.push_back(now);
            while host.failures.front().is_some_and(|t| now.saturating_sub(*t) >= BAN_WINDOW) {
                host.failures.pop_front();
            }
            if let Some(limit) = host.spec.ban_after
                && host.failures.len() >= limit
            {
                host.banned_until = Some(now + BAN_FOR);
                host.failures = VecDeque::new();
            }
            return Decision::FailedLogin(r);
        }
        return Decision::Answer(r);
    }
    let Some(repo) = repo else {
        return Decision::Answer(reply(404, None, ""));
    };
    let backing = repo.backing();
    match repo.content {
        RepoContent::Dumb => Decision::Static { backing, rest },
        _ => Decision::Cgi { backing, rest, remote_user: user, v2: host.spec.v2 },
    }
}

/// The token-watch endpoints: GitHub `GET /user` (api.github.com or `/api/v3/user`) and
/// GitLab `GET /api/v4/personal_access_tokens/self`.
fn api(host: &HostRt, req: &Req, api_github: bool) -> Response {
    let token = req.header("private-token").map(str::to_owned).or_else(|| {
        let v = req.header("authorization")?;
        let (scheme, rest) = v.split_once(' ')?;
        matches!(scheme.to_ascii_lowercase().as_str(), "bearer" | "token")
            .then(|| rest.trim().to_owned())
    });
    let account = token.as_deref().and_then(|t| {
        host.spec.accounts.iter().find(|a| a.token.expose_secret() == t && token_live(a))
    });
    let github = api_github || host.spec.style == HostStyle::GitHub;
    let path = if api_github { req.path.clone() } else { req.path.replacen("/api/v3", "", 1) };
    if req.method != "GET" {
        return reply(405, JSON, r#"{"message":"405 Method Not Allowed"}"#);
    }
    if github {
        if path != "/user" {
            return reply(404, JSON, r#"{"message":"Not Found"}"#);
        }
        let Some(a) = account else {
            return reply(401, JSON, r#"{"message":"Bad credentials"}"#);
        };
        let body = serde_json::json!({ "login": a.name, "id": 1, "type": "User" }).to_string();
        let mut r = reply(200, JSON, body);
        if !a.scopes.is_empty() {
            r = with_header(r, "x-oauth-scopes", &a.scopes.join(", "));
        }
        if let Some(at) = a.expires_at {
            let at = at.to_offset(time::UtcOffset::UTC);
            let stamp =
                format!("{} {:02}:{:02}:{:02} UTC", at.date(), at.hour(), at.minute(), at.second());
            r = with_header(r, "github-authentication-token-expiration", &stamp);
        }
        return r;
    }
    if path != "/api/v4/personal_access_tokens/self" {
        return reply(404, JSON, r#"{"message":"404 Not Found"}"#);
    }
    let Some(a) = account else {
        return reply(401, JSON, r#"{"message":"401 Unauthorized"}"#);
    };
    let body = serde_json::json!({
        "id": 1,
        "name": a.name,
        "revoked": false,
        "created_at": "2025-01-01T00:00:00.000Z",
        "scopes": a.scopes,
        "user_id": 1,
        "last_used_at": null,
        "active": true,
        "expires_at": a.expires_at.map(|at| at.to_offset(time::UtcOffset::UTC).date().to_string()),
    });
    reply(200, JSON, body.to_string())
}

async fn serve_static(shared: &Shared, host: &str, backing: &str, rest: &str) -> Response {
    let path = shared.root.join(host).join(backing).join(rest);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let ct = if rest == "info/refs" || rest == "HEAD" || rest.starts_with("objects/info/") {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            reply(200, Some(ct), bytes)
        }
        Err(_) => reply(404, TEXT, "Not Found\n"),
    }
}

/// Run `git http-backend` for one request and turn its CGI output into a response.
async fn cgi(
    shared: &Shared,
    req: &Req,
    backing: &str,
    rest: &str,
    remote_user: Option<&str>,
    v2: bool,
) -> Response {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(&shared.git);
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &shared.root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", shared.root.join(&req.host))
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", format!("/{backing}/{rest}"))
        .env("QUERY_STRING", req.query.as_deref().unwrap_or(""))
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", req.body.len().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(ct) = req.header("content-type") {
        cmd.env("CONTENT_TYPE", ct);
    }
    if let Some(enc) = req.header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", enc);
    }
    if let Some(user) = remote_user {
        cmd.env("REMOTE_USER", user);
    }
    if v2 && let Some(p) = req.header("git-protocol") {
        cmd.env("HTTP_GIT_PROTOCOL", p);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return reply(500, TEXT, format!("cannot run git http-backend: {e}\n")),
    };
    let stdin = child.stdin.take();
    let body = req.body.clone();
    let writer = tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&body).await;
        }
    });
    let out = match child.wait_with_output().await {
        Ok(o) => o,
        Err(e) => return reply(500, TEXT, format!("git http-backend failed: {e}\n")),
    };
    let _ = writer.await;
    if !out.stderr.is_empty() {
        tracing::debug!("git http-backend: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    parse_cgi(&out.stdout)
}

/// CGI output: headers, a blank line, the body; `Status:` sets the status.
fn parse_cgi(out: &[u8]) -> Response {
    let (head, body) = match out.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&out[..i], &out[i + 4..]),
        None => match out.windows(2).position(|w| w == b"\n\n") {
            Some(i) => (&out[..i], &out[i + 2..]),
            None => return reply(502, TEXT, "git http-backend sent no headers\n"),
        },
    };
    let mut r = reply(200, None, body.to_vec());
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(500);
            *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
        } else {
            r = with_header(r, name.trim(), value);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_paths_split_at_the_git_tail() {
        let cases = [
            ("/acme/api.git/info/refs", Some(("acme/api.git", "info/refs"))),
            ("/a/b/c.git/git-upload-pack", Some(("a/b/c.git", "git-upload-pack"))),
            ("/r.git/objects/info/packs", Some(("r.git", "objects/info/packs"))),
            ("/r.git/HEAD", Some(("r.git", "HEAD"))),
            ("/info/refs", None),
            ("/a/../b.git/info/refs", None),
            ("/just/a/page", None),
        ];
        for (path, want) in cases {
            let got = split_git_path(path);
            assert_eq!(got.as_ref().map(|(a, b)| (a.as_str(), b.as_str())), want, "{path}");
        }
    }

    #[test]
    fn cgi_output_is_parsed() {
        let r = parse_cgi(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope");
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["content-type"], "text/plain");
        let r = parse_cgi(b"Content-Type: application/x-git-upload-pack-advertisement\n\n0000");
        assert_eq!(r.status(), 200);
        assert_eq!(parse_cgi(b"garbage").status(), 502);
    }
}
