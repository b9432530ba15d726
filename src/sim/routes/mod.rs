//! `/api/v4` request handling: parsing (query, form and JSON bodies merged like Grape does),
//! authentication (`PRIVATE-TOKEN`, `Authorization: Bearer`, scopes, `Sudo`), routing, GitLab's
//! error bodies and offset/keyset pagination headers. docs/gitlab-behaviour.md §5 and §7.

// Handlers return `Err(Response)` for GitLab's error answers; boxing them buys nothing here.
#![allow(clippy::result_large_err)]

pub(crate) mod auth;
mod mirrors;
mod projects;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::state::{Caller, Shared, State};
use auth::request_token;

/// Largest accepted request body.
const MAX_BODY: usize = 1 << 20;

/// One parsed API request.
pub(crate) struct Ctx {
    /// HTTP method.
    pub(crate) method: Method,
    /// Path after `/api/v4/`, as received (percent-encoded).
    pub(crate) raw_rest: String,
    /// Decoded path segments after `/api/v4/`.
    pub(crate) segments: Vec<String>,
    /// Query string pairs, in order.
    pub(crate) query_pairs: Vec<(String, String)>,
    /// Query, form and JSON parameters merged (body wins).
    pub(crate) params: Params,
    /// Request headers.
    pub(crate) headers: HeaderMap,
    /// Raw query string.
    pub(crate) raw_query: Option<String>,
}

/// Grape-style parameters.
#[derive(Default)]
pub(crate) struct Params(pub Map<String, Value>);

impl Params {
    /// Present and not null.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|v| !v.is_null())
    }

    /// A string (numbers and booleans are given as text).
    pub(crate) fn str(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A Grape `Boolean`: 400 `{"error":"key is invalid"}` when it does not coerce.
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, Response> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => match v.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("true" | "1" | "t" | "yes") => Ok(Some(true)),
                Some("false" | "0" | "f" | "no") => Ok(Some(false)),
                _ => Err(grape_error(&format!("{key} is invalid"))),
            },
        }
    }

    /// A Grape `Integer`.
    pub(crate) fn u64(&self, key: &str) -> Result<Option<u64>, Response> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_u64().map(Some).ok_or_else(|| grape_error(&format!("{key} is invalid")))
            }
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| grape_error(&format!("{key} is invalid")))
            }
            Some(_) => Err(grape_error(&format!("{key} is invalid"))),
        }
    }
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `{"message": …}` with a status (`render_api_error!`).
pub(crate) fn message(status: StatusCode, msg: impl Into<Value>) -> Response {
    json_response(status, &json!({ "message": msg.into() }))
}

/// A Grape parameter error: 400 `{"error": …}`.
pub(crate) fn grape_error(msg: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({ "error": msg }))
}

/// 401 `{"message":"401 Unauthorized"}`.
pub(crate) fn unauthorized() -> Response {
    message(StatusCode::UNAUTHORIZED, "401 Unauthorized")
}

/// 403 `{"message":"403 Forbidden"}`.
pub(crate) fn forbidden() -> Response {
    message(StatusCode::FORBIDDEN, "403 Forbidden")
}

/// 403 for a token whose scopes are too narrow (`doc/api/rest/authentication.md`).
fn insufficient_scope(scope: &str) -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        &json!({
            "error": "insufficient_scope",
            "error_description":
                "The request requires higher privileges than provided by the access token.",
            "scope": scope,
        }),
    )
}

/// The route-not-found answer of GitLab's API (`{"error":"404 Not Found"}`).
pub(crate) fn route_not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"error": "404 Not Found"}))
}

/// The fallback handler for everything that is not a control endpoint.
pub(crate) async fn api(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "413 Request Entity Too Large");
    };
    let path = parts.uri.path();
    let raw_rest = match path.strip_prefix("/api/v4/") {
        Some(rest) => rest.to_owned(),
        None => return route_not_found(),
    };
    let segments = decode_segments(&raw_rest);
    let raw_query = parts.uri.query().map(str::to_owned);
    let query_pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw_query.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let mut params = Params::default();
    for (k, v) in &query_pairs {
        params.0.insert(k.clone(), Value::String(v.clone()));
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !bytes.is_empty() {
        if content_type.starts_with("application/json") {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => params.0.extend(map),
                Ok(_) => {}
                Err(_) => {
                    return message(StatusCode::BAD_REQUEST, "400 Bad request - Invalid JSON");
                }
            }
        } else {
            for (k, v) in url::form_urlencoded::parse(&bytes) {
                params.0.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    let ctx = Ctx {
        method: parts.method,
        raw_rest,
        segments,
        query_pairs,
        params,
        headers: parts.headers,
        raw_query,
    };
    let mut st = shared.lock();
    dispatch(&shared, &mut st, &ctx).unwrap_or_else(|r| r)
}

/// What a route runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Version,
    Metadata,
    CurrentUser,
    TokenSelf,
    Settings,
    UpdateSettings,
    Users,
    User,
    GroupProjects,
    Projects,
    Project,
    PutProject,
    ProjectMember,
    PullMirror,
    PutPullMirror,
    TriggerPullMirror,
    PushMirrors,
    CreatePushMirror,
    PushMirror,
    UpdatePushMirror,
    DeletePushMirror,
    SyncPushMirror,
    PushMirrorPublicKey,
}

/// One route of the simulated `/api/v4`. [`ROUTES`] is the whole router: the dispatcher
/// finds every handler through it, so a route cannot exist without an entry there.
#[derive(Debug)]
pub struct Route {
    /// `GET` (which also answers `HEAD`), `PUT`, `POST` or `DELETE`.
    pub method: &'static str,
    /// The path below `/api/v4/`, with `:name` for a parameter (`projects/:id/mirror/pull`).
    pub path: &'static str,
    /// The first GitLab `(major, minor)` that has it; older simulated versions answer 404.
    pub(crate) since: Option<(u32, u32)>,
    pub(crate) endpoint: Endpoint,
}

const fn route(
    method: &'static str,
    path: &'static str,
    since: Option<(u32, u32)>,
    endpoint: Endpoint,
) -> Route {
    Route { method, path, since, endpoint }
}

/// Every route the simulator serves.
pub const ROUTES: &[Route] = &[
    route("GET", "version", None, Endpoint::Version),
    route("GET", "metadata", Some((15, 2)), Endpoint::Metadata),
    route("GET", "user", None, Endpoint::CurrentUser),
    route("GET", "personal_access_tokens/self", Some((15, 5)), Endpoint::TokenSelf),
    route("GET", "application/settings", None, Endpoint::Settings),
    route("PUT", "application/settings", None, Endpoint::UpdateSettings),
    route("GET", "users", None, Endpoint::Users),
    route("GET", "users/:id", None, Endpoint::User),
    route("GET", "groups/:id/projects", None, Endpoint::GroupProjects),
    route("GET", "projects", None, Endpoint::Projects),
    route("GET", "projects/:id", None, Endpoint::Project),
    route("PUT", "projects/:id", None, Endpoint::PutProject),
    route("GET", "projects/:id/members/all/:user_id", None, Endpoint::ProjectMember),
    route("GET", "projects/:id/mirror/pull", Some((15, 6)), Endpoint::PullMirror),
    // New in 17.6 (`doc/api/project_pull_mirroring.md`).
    route("PUT", "projects/:id/mirror/pull", Some((17, 6)), Endpoint::PutPullMirror),
    route("POST", "projects/:id/mirror/pull", None, Endpoint::TriggerPullMirror),
    route("GET", "projects/:id/remote_mirrors", None, Endpoint::PushMirrors),
    route("POST", "projects/:id/remote_mirrors", None, Endpoint::CreatePushMirror),
    route("GET", "projects/:id/remote_mirrors/:mirror_id", Some((14, 10)), Endpoint::PushMirror),
    route("PUT", "projects/:id/remote_mirrors/:mirror_id", None, Endpoint::UpdatePushMirror),
    route(
        "DELETE",
        "projects/:id/remote_mirrors/:mirror_id",
        Some((14, 10)),
        Endpoint::DeletePushMirror,
    ),
    // `doc/api/remote_mirrors.md`: sync is new in 16.11, public_key in 17.9.
    route(
        "POST",
        "projects/:id/remote_mirrors/:mirror_id/sync",
        Some((16, 11)),
        Endpoint::SyncPushMirror,
    ),
    route(
        "GET",
        "projects/:id/remote_mirrors/:mirror_id/public_key",
        Some((17, 9)),
        Endpoint::PushMirrorPublicKey,
    ),
];

impl Route {
    /// The parameter values if these (decoded) path segments match the route's path.
    fn captures<'a>(&self, segments: &[&'a str]) -> Option<Vec<&'a str>> {
        let pattern: Vec<&str> = self.path.split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (p, s) in pattern.iter().zip(segments) {
            if p.starts_with(':') {
                params.push(*s);
            } else if p != s {
                return None;
            }
        }
        Some(params)
    }

    fn answers(&self, method: &Method) -> bool {
        self.method == method.as_str() || (self.method == "GET" && method == Method::HEAD)
    }
}

/// The route a request would reach (ignoring version gates): `path` is below `/api/v4/`,
/// percent-encoded as sent (`projects/group%2Fproject/mirror/pull`).
pub fn find_route(method: &str, path: &str) -> Option<&'static Route> {
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let decoded = decode_segments(path);
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    ROUTES.iter().find(|r| r.answers(&method) && r.captures(&segments).is_some())
}

fn decode_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

/// Route through [`ROUTES`]; `Err` carries an error response. A path no available route has
/// is 404; a known path with another method is Grape's 405, except where the methods of that
/// path arrived in different versions: there the simulator answers 404, as though the route
/// were missing \[I\].
fn dispatch(shared: &Arc<Shared>, st: &mut State, ctx: &Ctx) -> Result<Response, Response> {
    let seg: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    let on_path: Vec<(&Route, Vec<&str>)> =
        ROUTES.iter().filter_map(|r| r.captures(&seg).map(|p| (r, p))).collect();
    let available = on_path.iter().filter(|(r, _)| r.since.is_none_or(|(a, b)| st.at_least(a, b)));
    let mut any_available = false;
    for (r, params) in available {
        any_available = true;
        if r.answers(&ctx.method) {
            return call(r.endpoint, shared, st, ctx, params);
        }
    }
    let mixed = on_path.iter().any(|(r, _)| r.since != on_path[0].0.since);
    Err(if !any_available || mixed { route_not_found() } else { method_not_allowed() })
}

fn call(
    endpoint: Endpoint,
    shared: &Arc<Shared>,
    st: &mut State,
    ctx: &Ctx,
    params: &[&str],
) -> Result<Response, Response> {
    let id = params.first().copied().unwrap_or_default();
    let mid = params.get(1).copied().unwrap_or_default();
    match endpoint {
        Endpoint::Version => projects::version(st, ctx),
        Endpoint::Metadata => projects::metadata(st, ctx),
        Endpoint::CurrentUser => projects::current_user(st, ctx),
        Endpoint::TokenSelf => projects::token_self(st, ctx),
        Endpoint::Settings => projects::settings(st, ctx),
        Endpoint::UpdateSettings => projects::update_settings(st, ctx),
        Endpoint::Users => projects::users(st, ctx),
        Endpoint::User => projects::user(st, ctx, id),
        Endpoint::GroupProjects => projects::group_projects(st, ctx, id),
        Endpoint::Projects => projects::list_projects(st, ctx),
        Endpoint::Project => projects::get_project(st, ctx, id),
        Endpoint::PutProject => mirrors::put_project(shared, st, ctx, id),
        Endpoint::ProjectMember => projects::project_member(st, ctx, id, mid),
        Endpoint::PullMirror => mirrors::get_pull(st, ctx, id),
        Endpoint::PutPullMirror => mirrors::put_pull(shared, st, ctx, id),
        Endpoint::TriggerPullMirror => mirrors::trigger_pull(shared, st, ctx, id),
        Endpoint::PushMirrors => mirrors::list_push(st, ctx, id),
        Endpoint::CreatePushMirror => mirrors::create_push(shared, st, ctx, id),
        Endpoint::PushMirror => mirrors::get_push(st, ctx, id, mid),
        Endpoint::UpdatePushMirror => mirrors::update_push(st, ctx, id, mid),
        Endpoint::DeletePushMirror => mirrors::delete_push(st, ctx, id, mid),
        Endpoint::SyncPushMirror => mirrors::sync_push(shared, st, ctx, id, mid),
        Endpoint::PushMirrorPublicKey => mirrors::push_public_key(st, ctx, id, mid),
    }
}

fn method_not_allowed() -> Response {
    json_response(StatusCode::METHOD_NOT_ALLOWED, &json!({"error": "405 Not Allowed"}))
}

fn today() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::now_utc().date().format(&format).unwrap_or_default()
}

/// For [`authenticate`]: an endpoint every token scope may call.
pub(crate) const ANY_SCOPE: &[&str] = &["*"];

/// Authenticate the request and apply `Sudo`. `extra_read_scopes` are scopes besides `api`
/// and `read_api` that allow this GET (e.g. `read_user` for `/user`; [`ANY_SCOPE`]: all).
pub(crate) fn authenticate(
    st: &State,
    ctx: &Ctx,
    extra_read_scopes: &[&str],
) -> Result<Caller, Response> {
    let token = request_token(&ctx.headers, ctx.raw_query.as_deref()).ok_or_else(unauthorized)?;
    let token = st.tokens.get(&token).ok_or_else(unauthorized)?;
    if token.revoked {
        return Err(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_token",
                    "error_description": "Token was revoked. You have to re-authorize from the user."}),
        ));
    }
    if token.expires_at.as_deref().is_some_and(|e| e < today().as_str()) {
        return Err(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_token", "error_description": "Token has expired."}),
        ));
    }
    let user = st.users.get(&token.user_id).ok_or_else(unauthorized)?;
    // A deleted user's tokens are gone [I]. A blocked user's token is refused by the API
    // guard with the reason (`lib/api/api_guard.rb` `find_current_user!`, message from
    // `lib/gitlab/auth/user_access_denied_reason.rb`).
    if user.deleted {
        return Err(unauthorized());
    }
    if user.state != "active" {
        return Err(message(
            StatusCode::FORBIDDEN,
            "403 Forbidden - Your account has been blocked.",
        ));
    }
    let has = |s: &str| token.scopes.iter().any(|t| t == s);
    let read = ctx.method == Method::GET || ctx.method == Method::HEAD;
    if read {
        let any = extra_read_scopes == ANY_SCOPE && !token.scopes.is_empty();
        if !(any || has("api") || has("read_api") || extra_read_scopes.iter().any(|s| has(s))) {
            return Err(insufficient_scope("api read_api"));
        }
    } else if !has("api") {
        return Err(insufficient_scope("api"));
    }
    let mut caller =
        Caller { user_id: user.id, is_admin: user.is_admin, token_id: token.id, sudo: None };
    if let Some(sudo) = ctx.headers.get("sudo").and_then(|v| v.to_str().ok()) {
        // `Sudo` needs an admin token with the `sudo` scope (`doc/api/rest/authentication.md`).
        if !user.is_admin {
            return Err(message(
                StatusCode::FORBIDDEN,
                "403 Forbidden - Must be admin to use sudo",
            ));
        }
        if !has("sudo") {
            return Err(insufficient_scope("sudo"));
        }
        let target = st
            .users
            .values()
            .filter(|u| !u.deleted)
            .find(|u| u.username.eq_ignore_ascii_case(sudo) || u.id.to_string() == sudo)
            .ok_or_else(|| {
                message(
                    StatusCode::NOT_FOUND,
                    format!("404 User with ID or username '{sudo}' Not Found"),
                )
            })?;
        caller.user_id = target.id;
        caller.is_admin = target.is_admin;
        caller.sudo = Some(target.username.clone());
    }
    Ok(caller)
}

/// `page`/`per_page` (default 20, at most 100; docs/gitlab-behaviour.md §5).
pub(crate) fn page_params(ctx: &Ctx) -> Result<(usize, usize), Response> {
    let page = ctx.params.u64("page")?.unwrap_or(1).max(1) as usize;
    let per_page = match ctx.params.u64("per_page")? {
        None | Some(0) => 20,
        Some(n) => n.min(100) as usize,
    };
    Ok((page, per_page))
}

/// The request URL with some query parameters replaced, for `Link` headers.
fn link_url(st: &State, ctx: &Ctx, replace: &[(&str, String)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &ctx.query_pairs {
        if replace.iter().any(|(r, _)| r == k) || k == "private_token" || k == "access_token" {
            continue;
        }
        ser.append_pair(k, v);
    }
    for (k, v) in replace {
        ser.append_pair(k, v);
    }
    format!("{}/api/v4/{}?{}", st.external_url, ctx.raw_rest, ser.finish())
}

/// Above this many records GitLab omits `X-Total`, `X-Total-Pages` and `rel="last"`.
const COUNT_LIMIT: usize = 10_000;

/// An offset-paginated answer with GitLab's headers.
pub(crate) fn offset_page(
    st: &State,
    ctx: &Ctx,
    total: usize,
    page: usize,
    per_page: usize,
    items: Vec<Value>,
) -> Response {
    let mut r = json_response(StatusCode::OK, &Value::Array(items));
    let pages = total.div_ceil(per_page).max(1);
    let next = if page < pages { page + 1 } else { 0 };
    let h = r.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("x-page", page.to_string());
    set("x-per-page", per_page.to_string());
    set("x-next-page", if next > 0 { next.to_string() } else { String::new() });
    set("x-prev-page", if page > 1 { (page - 1).to_string() } else { String::new() });
    let pp = ("per_page", per_page.to_string());
    let mut links = Vec::new();
    if page > 1 {
        let prev = link_url(st, ctx, &[("page", (page - 1).to_string()), pp.clone()]);
        links.push(format!("<{prev}>; rel=\"prev\""));
    }
    if next > 0 {
        let url = link_url(st, ctx, &[("page", next.to_string()), pp.clone()]);
        links.push(format!("<{url}>; rel=\"next\""));
    }
    links.push(format!(
        "<{}>; rel=\"first\"",
        link_url(st, ctx, &[("page", "1".into()), pp.clone()])
    ));
    if total <= COUNT_LIMIT {
        set("x-total", total.to_string());
        set("x-total-pages", pages.to_string());
        let last = link_url(st, ctx, &[("page", pages.to_string()), pp]);
        links.push(format!("<{last}>; rel=\"last\""));
    }
    set("link", links.join(", "));
    r
}

/// A keyset-paginated answer: `Link: <…id_after=N>; rel="next"` while pages are full.
pub(crate) fn keyset_page(
    st: &State,
    ctx: &Ctx,
    items: Vec<Value>,
    per_page: usize,
    asc: bool,
) -> Response {
    let last_id = items.last().and_then(|v| v.get("id")).and_then(Value::as_u64);
    let full = items.len() == per_page;
    let mut r = json_response(StatusCode::OK, &Value::Array(items));
    if let (true, Some(last)) = (full, last_id) {
        let key = if asc { "id_after" } else { "id_before" };
        let url = link_url(st, ctx, &[(key, last.to_string())]);
        if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")) {
            r.headers_mut().insert("link", v);
        }
    }
    r
}

/// An empty 204.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_find_their_route() {
        let pull = find_route("PUT", "projects/group%2Fsub%2Fp/mirror/pull").unwrap();
        assert_eq!((pull.method, pull.path), ("PUT", "projects/:id/mirror/pull"));
        assert_eq!(find_route("HEAD", "projects/1").unwrap().path, "projects/:id");
        assert_eq!(
            find_route("GET", "/projects/1/remote_mirrors/2/").unwrap().endpoint,
            Endpoint::PushMirror
        );
        assert!(find_route("DELETE", "projects/1/mirror/pull").is_none());
        assert!(find_route("GET", "projects/1/mirror").is_none());
        // One entry per method and path.
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(ROUTES[i + 1..].iter().all(|b| (a.method, a.path) != (b.method, b.path)));
        }
    }
}
