//! Mirror endpoints: the EE pull-mirror API (`GET/PUT/POST /projects/:id/mirror/pull`,
//! docs/gitlab-behaviour.md §2.1–2.3, `ee/lib/api/project_mirror.rb`), the deprecated
//! `PUT /projects/:id` with `import_url` (§2.4) and push mirrors (`/remote_mirrors`, §3,
//! `lib/api/remote_mirrors.rb`).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::projects::{project_json, visible_project};
use super::{
    Ctx, authenticate, forbidden, grape_error, json_response, message, no_content, offset_page,
    page_params, unauthorized,
};
use crate::sim::fixture::{PullMirror, RemoteMirror};
use crate::sim::state::{Caller, Shared, State, start_pull_update, start_push_update};
use crate::sim::urls;

type Answer = Result<Response, Response>;

const NOT_MIRRORED: &str = "The project is not mirrored";
const UNREACHABLE: &str = "Unable to access repository with the URL and credentials provided";

/// Pull-mirror parameters of `PUT …/mirror/pull` (`at_least_one_of`).
const PULL_PARAMS: &[&str] = &[
    "enabled",
    "url",
    "auth_user",
    "auth_password",
    "mirror_trigger_builds",
    "only_mirror_protected_branches",
    "mirror_overwrites_diverged_branches",
    "mirror_branch_regex",
];

/// The `PullMirror` entity; the 17.5 fields are absent on older versions.
fn pull_json(st: &State, m: &PullMirror) -> Value {
    let mut v = json!({
        "id": m.state_id,
        "update_status": m.update_status,
        "url": urls::masked(&m.import_url, m.user.as_deref(), m.password.as_deref()),
        "last_error": m.last_error,
        "last_update_at": m.last_update_at,
        "last_update_started_at": m.last_update_started_at,
        "last_successful_update_at": m.last_successful_update_at,
    });
    if st.at_least(17, 5) {
        v["enabled"] = json!(m.mirror);
        v["mirror_trigger_builds"] = json!(m.mirror_trigger_builds);
        v["only_mirror_protected_branches"] = json!(m.only_mirror_protected_branches);
        v["mirror_overwrites_diverged_branches"] = json!(m.mirror_overwrites_diverged_branches);
        v["mirror_branch_regex"] = json!(m.mirror_branch_regex);
    }
    v
}

/// Authenticate, find the project, and require `admin_project` (403 otherwise).
fn admin_project(st: &State, ctx: &Ctx, key: &str) -> Result<(Caller, u64), Response> {
    let caller = authenticate(st, ctx, &[])?;
    let id = visible_project(st, &caller, key)?;
    if !st.can_admin_project(&caller, &st.projects[&id]) {
        return Err(forbidden());
    }
    Ok((caller, id))
}

/// `GET /projects/:id/mirror/pull`.
pub(crate) fn get_pull(st: &State, ctx: &Ctx, key: &str) -> Answer {
    let (_, id) = admin_project(st, ctx, key)?;
    match st.projects[&id].pull.as_deref().filter(|m| m.mirror) {
        Some(m) => Ok(json_response(StatusCode::OK, &pull_json(st, m))),
        None => Err(message(StatusCode::BAD_REQUEST, NOT_MIRRORED)),
    }
}

/// Grape `mutually_exclusive` on the two branch-selection options.
fn exclusive(ctx: &Ctx, a: &str, b: &str) -> Result<(), Response> {
    if ctx.params.has(a) && ctx.params.has(b) {
        return Err(grape_error(&format!("{a}, {b} are mutually exclusive")));
    }
    Ok(())
}

/// `Project#import_url=`: store the URL without userinfo and merge the URL's credentials;
/// a URL without userinfo clears them (docs/gitlab-behaviour.md §2.5).
fn assign_import_url(m: &mut PullMirror, raw: &str) {
    let split = urls::split(raw);
    m.import_url = split.stored;
    if split.valid {
        m.user = split.user;
        m.password = split.password;
    }
}

/// The attribute the project model reports import-URL validation errors under: GitLab
/// renamed it `unsafe_import_url` (MR 174634; `ee/spec/requests/api/project_mirror_spec.rb`
/// expects `message.unsafe_import_url`). The simulator does so from 17.8 on, the release
/// that rename went into \[I\].
fn import_url_attribute(st: &State) -> &'static str {
    if st.at_least(17, 8) { "unsafe_import_url" } else { "import_url" }
}

/// A 400 with a model validation error on the import URL.
fn import_url_error(st: &State, text: &str) -> Response {
    let mut errors = serde_json::Map::new();
    errors.insert(import_url_attribute(st).to_owned(), json!([text]));
    message(StatusCode::BAD_REQUEST, Value::Object(errors))
}

/// The model validation of `import_url` (`PublicUrlValidator`, `enforce_user`): it sees the
/// URL with the stored credentials, so a masked `*****` user is refused.
fn validate_import_url(st: &State, m: &PullMirror) -> Result<(), Response> {
    let full = urls::full_url(&m.import_url, m.user.as_deref(), m.password.as_deref());
    match urls::blocked(&full, urls::PULL_RULES) {
        Some(reason) => Err(import_url_error(st, &reason)),
        None => Ok(()),
    }
}

/// `PUT /projects/:id/mirror/pull` (17.6+), per `Repositories::PullMirrors::UpdateService`.
pub(crate) fn put_pull(shared: &Arc<Shared>, st: &mut State, ctx: &Ctx, key: &str) -> Answer {
    let (caller, id) = admin_project(st, ctx, key)?;
    if !PULL_PARAMS.iter().any(|p| ctx.params.has(p)) {
        return Err(grape_error(&format!(
            "{} are missing, at least one parameter must be provided",
            PULL_PARAMS.join(", ")
        )));
    }
    exclusive(ctx, "only_mirror_protected_branches", "mirror_branch_regex")?;
    let enabled = ctx.params.bool("enabled")?;
    let trigger = ctx.params.bool("mirror_trigger_builds")?;
    let protected = ctx.params.bool("only_mirror_protected_branches")?;
    let overwrite = ctx.params.bool("mirror_overwrites_diverged_branches")?;
    if !st.can_admin_mirror(&caller, &st.projects[&id]) {
        return Err(message(StatusCode::BAD_REQUEST, "Access Denied"));
    }
    let existing = st.projects[&id].pull.as_deref().cloned();
    let had_state = existing.is_some();
    let mut m = match existing {
        Some(m) => m,
        None => st.new_pull(),
    };
    let url_changed = ctx.params.has("url");
    if let Some(v) = enabled {
        m.mirror = v;
    }
    if let Some(url) = ctx.params.str("url") {
        assign_import_url(&mut m, &url);
        m.import_type = Some("git".to_owned());
    }
    // The caller (after Sudo) always becomes the mirror user.
    m.mirror_user_id = Some(caller.user_id);
    if let Some(v) = trigger {
        m.mirror_trigger_builds = v;
    }
    if let Some(v) = protected {
        m.only_mirror_protected_branches = v;
    }
    if let Some(v) = overwrite {
        m.mirror_overwrites_diverged_branches = v;
    }
    if ctx.params.has("mirror_branch_regex") {
        m.mirror_branch_regex = ctx.params.str("mirror_branch_regex").filter(|r| !r.is_empty());
    }
    if enabled == Some(false) {
        // `remove_import_data` when the request says `enabled: false` (GitLab's
        // `mirror_disabled?`): only then are the stored credentials deleted. Credentials sent
        // to a mirror that is merely not enabled (or to a project without one) are stored.
        m.user = None;
        m.password = None;
    } else {
        // Sent raw; merged after the URL's credentials, so they win.
        if ctx.params.has("auth_user") {
            m.user = ctx.params.str("auth_user").filter(|u| !u.is_empty());
        }
        if ctx.params.has("auth_password") {
            m.password = ctx.params.str("auth_password").filter(|p| !p.is_empty());
        }
    }
    m.last_error = None;
    if !had_state && m.import_url.is_empty() {
        return Err(message(StatusCode::BAD_REQUEST, json!({"url": ["is missing"]})));
    }
    if m.mirror && m.import_url.is_empty() {
        return Err(import_url_error(st, "can't be blank"));
    }
    if url_changed {
        validate_import_url(st, &m)?;
    }
    if st.validate_pull_mirror_url
        && url_changed
        && (!m.import_url.starts_with("http") && !m.import_url.starts_with("git://")
            || st.remote_outcome(&m.import_url, m.user.as_deref(), m.password.as_deref()).is_err())
    {
        return Err(import_url_error(st, UNREACHABLE));
    }
    let mirror = m.mirror;
    let body = pull_json(st, &m);
    if let Some(p) = st.projects.get_mut(&id) {
        p.pull = Some(Box::new(m));
    }
    if mirror {
        // `force_import_job!`: an immediate update.
        start_pull_update(shared, st, id);
    }
    let body = st.projects[&id].pull.as_deref().map(|m| pull_json(st, m)).unwrap_or(body);
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /projects/:id/mirror/pull`: trigger an update (200 even when nothing starts); a
/// mirror paused after too many failures answers 403 unless `force` (19.3+) is sent.
pub(crate) fn trigger_pull(shared: &Arc<Shared>, st: &mut State, ctx: &Ctx, key: &str) -> Answer {
    let (_, id) = admin_project(st, ctx, key)?;
    // `force` arrived in 19.3; before, Grape drops the undeclared parameter.
    let force = if st.at_least(19, 3) { ctx.params.bool("force")?.unwrap_or(false) } else { false };
    let Some(m) = st.projects[&id].pull.as_deref().filter(|m| m.mirror) else {
        return Err(message(StatusCode::BAD_REQUEST, NOT_MIRRORED));
    };
    if m.hard_failed && !force {
        return Err(message(StatusCode::FORBIDDEN, "Mirroring for the project is on pause"));
    }
    if let Some(m) = st.projects.get_mut(&id).and_then(|p| p.pull.as_mut()) {
        m.hard_failed = false;
    }
    start_pull_update(shared, st, id);
    Ok(json_response(StatusCode::OK, &Value::Null))
}

/// The deprecated `PUT /projects/:id` with `import_url` and mirror attributes (§2.4).
pub(crate) fn put_project(shared: &Arc<Shared>, st: &mut State, ctx: &Ctx, key: &str) -> Answer {
    let (caller, id) = admin_project(st, ctx, key)?;
    exclusive(ctx, "only_mirror_protected_branches", "mirror_branch_regex")?;
    let mirror_param = ctx.params.bool("mirror")?;
    let trigger = ctx.params.bool("mirror_trigger_builds")?;
    let protected = ctx.params.bool("only_mirror_protected_branches")?;
    let overwrite = ctx.params.bool("mirror_overwrites_diverged_branches")?;
    let mirror_user_param = ctx.params.u64("mirror_user_id")?;
    let archived = ctx.params.bool("archived")?;
    let pull_attrs = [
        "import_url",
        "mirror",
        "mirror_user_id",
        "mirror_trigger_builds",
        "only_mirror_protected_branches",
        "mirror_overwrites_diverged_branches",
        "mirror_branch_regex",
    ];
    // `verify_mirror_attrs!`: without `admin_mirror` every pull-mirror attribute is
    // silently dropped and the call still succeeds.
    let may_mirror = st.can_admin_mirror(&caller, &st.projects[&id]);
    let touches_mirror = may_mirror && pull_attrs.iter().any(|a| ctx.params.has(a));
    let import_url = ctx.params.str("import_url").filter(|_| may_mirror);
    if let Some(raw) = &import_url {
        // `validate_git_import_url!`: a live probe with the URL's own credentials, before the
        // save. Only http, https and git are probed; ssh:// fails it [I], and so does a
        // remote that refuses the credentials.
        let split = urls::split(raw);
        let scheme_ok = split.valid && !split.stored.starts_with("ssh://");
        if split.valid && urls::blocked(raw, urls::PULL_RULES).is_none() {
            let probe =
                st.remote_outcome(&split.stored, split.user.as_deref(), split.password.as_deref());
            if !scheme_ok || probe.is_err() {
                return Err(message(StatusCode::UNPROCESSABLE_ENTITY, UNREACHABLE));
            }
        }
    }
    if let Some(a) = archived
        && let Some(p) = st.projects.get_mut(&id)
    {
        p.archived = a;
    }
    if !touches_mirror {
        let p = &st.projects[&id];
        return Ok(json_response(StatusCode::OK, &project_json(st, &caller, p, true, false)));
    }
    // `mirror_user_setting`: the caller becomes the mirror user; only an admin may name
    // another user (a non-admin naming anyone else gets 400).
    let current_user = st.projects[&id].pull.as_deref().and_then(|m| m.mirror_user_id);
    let mirror_user = match mirror_user_param {
        // Quirk: passing the current mirror user also ends up as the caller (§2.4).
        Some(uid) if uid != caller.user_id && Some(uid) != current_user => {
            if !caller.is_admin || st.users.get(&uid).is_none_or(|u| u.deleted) {
                return Err(message(
                    StatusCode::BAD_REQUEST,
                    json!({"mirror_user_id": ["is invalid"]}),
                ));
            }
            uid
        }
        _ => caller.user_id,
    };
    let mut m = match st.projects[&id].pull.as_deref().cloned() {
        Some(m) => m,
        None => st.new_pull(),
    };
    if let Some(raw) = &import_url {
        assign_import_url(&mut m, raw);
        m.import_type = Some("git".to_owned());
    }
    if let Some(v) = mirror_param {
        m.mirror = v;
    }
    m.mirror_user_id = Some(mirror_user);
    if let Some(v) = trigger {
        m.mirror_trigger_builds = v;
    }
    if let Some(v) = protected {
        m.only_mirror_protected_branches = v;
    }
    if let Some(v) = overwrite {
        m.mirror_overwrites_diverged_branches = v;
    }
    if ctx.params.has("mirror_branch_regex") {
        m.mirror_branch_regex = ctx.params.str("mirror_branch_regex").filter(|r| !r.is_empty());
    }
    if m.mirror && m.import_url.is_empty() {
        return Err(import_url_error(st, "can't be blank"));
    }
    if import_url.is_some() {
        validate_import_url(st, &m)?;
        m.last_error = None;
    }
    if mirror_param == Some(false) {
        m.user = None;
        m.password = None;
    }
    let start = mirror_param.is_some() && m.mirror;
    if let Some(p) = st.projects.get_mut(&id) {
        p.pull = Some(Box::new(m));
    }
    if start {
        start_pull_update(shared, st, id);
    }
    let p = &st.projects[&id];
    Ok(json_response(StatusCode::OK, &project_json(st, &caller, p, true, false)))
}

/// The remote-mirror entity (`lib/api/entities/remote_mirror.rb`, EE adds
/// `mirror_branch_regex`); `url` is `safe_url` (masked, but the user `git` is kept). From
/// 18.4 `host_keys` is always there: the fingerprints of the known SSH host keys, `[]` when
/// there are none (`spec/requests/api/remote_mirrors_spec.rb`).
fn push_json(st: &State, m: &RemoteMirror) -> Value {
    let mut v = json!({
        "id": m.id,
        "enabled": m.enabled,
        "url": urls::masked_keeping(&m.url, m.user.as_deref(), m.password.as_deref(), &["git"]),
        "update_status": m.update_status,
        "last_update_at": m.last_update_at,
        "last_update_started_at": m.last_update_started_at,
        "last_successful_update_at": m.last_successful_update_at,
        "last_error": m.last_error,
        "only_protected_branches": m.only_protected_branches,
        "keep_divergent_refs": m.keep_divergent_refs,
        "auth_method": m.auth_method,
        "mirror_branch_regex": m.mirror_branch_regex,
    });
    if st.at_least(18, 4) {
        let keys: Vec<Value> =
            m.host_keys.iter().map(|f| json!({ "fingerprint_sha256": f })).collect();
        v["host_keys"] = Value::Array(keys);
    }
    v
}

/// The `before` filter of `lib/api/remote_mirrors.rb`: insufficient permission is 401.
fn push_access(st: &State, ctx: &Ctx, key: &str) -> Result<u64, Response> {
    let caller = authenticate(st, ctx, &[])?;
    let id = visible_project(st, &caller, key)?;
    if !st.can_admin_mirror(&caller, &st.projects[&id]) {
        return Err(unauthorized());
    }
    Ok(id)
}

fn find_push<'a>(st: &'a State, id: u64, mid: &str) -> Result<&'a RemoteMirror, Response> {
    let not_found = || message(StatusCode::NOT_FOUND, "404 Remote Mirror Not Found");
    let mid: u64 = mid.parse().map_err(|_| not_found())?;
    st.projects[&id].remote_mirrors.iter().find(|m| m.id == mid).ok_or_else(not_found)
}

/// `GET /projects/:id/remote_mirrors` (paginated).
pub(crate) fn list_push(st: &State, ctx: &Ctx, key: &str) -> Answer {
    let id = push_access(st, ctx, key)?;
    let (page, per_page) = page_params(ctx)?;
    let all = &st.projects[&id].remote_mirrors;
    let items =
        all.iter().skip((page - 1) * per_page).take(per_page).map(|m| push_json(st, m)).collect();
    Ok(offset_page(st, ctx, all.len(), page, per_page, items))
}

/// `GET /projects/:id/remote_mirrors/:mirror_id`.
pub(crate) fn get_push(st: &State, ctx: &Ctx, key: &str, mid: &str) -> Answer {
    let id = push_access(st, ctx, key)?;
    Ok(json_response(StatusCode::OK, &push_json(st, find_push(st, id, mid)?)))
}

/// `auth_method`: POST declares its values, so Grape refuses others with `{"error": …}`; PUT
/// does not, so the model's inclusion validation answers `{"message": {"auth_method": […]}}`
/// (`lib/api/remote_mirrors.rb`, `spec/requests/api/remote_mirrors_spec.rb`).
fn auth_method(ctx: &Ctx, on_update: bool) -> Result<Option<String>, Response> {
    match ctx.params.str("auth_method") {
        None => Ok(None),
        Some(m) if m == "password" || m == "ssh_public_key" => Ok(Some(m)),
        Some(_) if on_update => Err(message(
            StatusCode::BAD_REQUEST,
            json!({"auth_method": ["is not included in the list"]}),
        )),
        Some(_) => Err(grape_error("auth_method does not have a valid value")),
    }
}

/// `only_protected_branches: null` fails the model's presence validation (400
/// `{"message": {"only_protected_branches": ["can't be blank"]}}`, on POST and PUT).
fn protected_not_null(ctx: &Ctx) -> Result<(), Response> {
    if ctx.params.0.get("only_protected_branches").is_some_and(Value::is_null) {
        return Err(message(
            StatusCode::BAD_REQUEST,
            json!({"only_protected_branches": ["can't be blank"]}),
        ));
    }
    Ok(())
}

/// `POST /projects/:id/remote_mirrors`: 201; disabled unless `enabled=true`; the URL's
/// credentials are stored apart from the URL (without `CGI.unescape` \[I\], docs/gitlab-behaviour.md §3).
pub(crate) fn create_push(shared: &Arc<Shared>, st: &mut State, ctx: &Ctx, key: &str) -> Answer {
    let id = push_access(st, ctx, key)?;
    let Some(raw) = ctx.params.str("url") else {
        return Err(grape_error("url is missing"));
    };
    exclusive(ctx, "only_protected_branches", "mirror_branch_regex")?;
    let enabled = ctx.params.bool("enabled")?.unwrap_or(false);
    let method = auth_method(ctx, false)?.unwrap_or_else(|| "password".to_owned());
    let keep = ctx.params.bool("keep_divergent_refs")?.unwrap_or(false);
    let protected = ctx.params.bool("only_protected_branches")?.unwrap_or(false);
    protected_not_null(ctx)?;
    let (stored, user, password) = match raw.trim().split_once("://") {
        Some((scheme, rest)) if !raw.trim().is_empty() => match rest.rfind('@') {
            Some(at) if at > 0 => {
                let info = &rest[..at];
                let (u, p) = info.split_once(':').unwrap_or((info, ""));
                let opt = |s: &str| if s.is_empty() { None } else { Some(s.to_owned()) };
                (format!("{scheme}://{}", &rest[at + 1..]), opt(u), opt(p))
            }
            _ => (raw.trim().to_owned(), None, None),
        },
        _ => (raw.trim().to_owned(), None, None),
    };
    if raw.trim().is_empty() {
        return Err(message(StatusCode::BAD_REQUEST, json!({"url": ["can't be blank"]})));
    }
    let full = urls::full_url(&stored, user.as_deref(), password.as_deref());
    let check = if stored.contains("://") { full } else { stored.clone() };
    if let Some(reason) = urls::blocked(&check, urls::PUSH_RULES) {
        return Err(message(StatusCode::BAD_REQUEST, json!({"url": [reason]})));
    }
    let mirror = RemoteMirror {
        id: st.next_mirror_id,
        url: stored,
        user,
        password,
        enabled,
        auth_method: method,
        keep_divergent_refs: keep,
        only_protected_branches: protected,
        mirror_branch_regex: ctx.params.str("mirror_branch_regex").filter(|r| !r.is_empty()),
        update_status: "none".to_owned(),
        last_error: None,
        last_update_at: None,
        last_update_started_at: None,
        last_successful_update_at: None,
        host_keys: Vec::new(),
    };
    st.next_mirror_id += 1;
    let mid = mirror.id;
    if let Some(p) = st.projects.get_mut(&id) {
        p.remote_mirrors.push(mirror);
    }
    if enabled {
        // A new enabled mirror pushes soon after creation [I].
        start_push_update(shared, st, id, mid);
    }
    let m = find_push(st, id, &mid.to_string())?;
    Ok(json_response(StatusCode::CREATED, &push_json(st, m)))
}

/// `PUT /projects/:id/remote_mirrors/:mirror_id`: there is no `url` parameter, so a `url`
/// in the request is ignored (`declared_params` drops it).
pub(crate) fn update_push(st: &mut State, ctx: &Ctx, key: &str, mid: &str) -> Answer {
    let id = push_access(st, ctx, key)?;
    let mirror_id = find_push(st, id, mid)?.id;
    exclusive(ctx, "only_protected_branches", "mirror_branch_regex")?;
    let enabled = ctx.params.bool("enabled")?;
    let method = auth_method(ctx, true)?;
    let keep = ctx.params.bool("keep_divergent_refs")?;
    let protected = ctx.params.bool("only_protected_branches")?;
    protected_not_null(ctx)?;
    let regex =
        ctx.params.has("mirror_branch_regex").then(|| ctx.params.str("mirror_branch_regex"));
    let Some(m) = st
        .projects
        .get_mut(&id)
        .and_then(|p| p.remote_mirrors.iter_mut().find(|m| m.id == mirror_id))
    else {
        return Err(message(StatusCode::NOT_FOUND, "404 Remote Mirror Not Found"));
    };
    if let Some(v) = enabled {
        m.enabled = v;
    }
    if let Some(v) = method {
        m.auth_method = v;
    }
    if let Some(v) = keep {
        m.keep_divergent_refs = v;
    }
    if let Some(v) = protected {
        m.only_protected_branches = v;
    }
    if let Some(r) = regex {
        m.mirror_branch_regex = r.filter(|r| !r.is_empty());
    }
    let m = find_push(st, id, mid)?;
    Ok(json_response(StatusCode::OK, &push_json(st, m)))
}

/// `DELETE /projects/:id/remote_mirrors/:mirror_id`: 204.
pub(crate) fn delete_push(st: &mut State, ctx: &Ctx, key: &str, mid: &str) -> Answer {
    let id = push_access(st, ctx, key)?;
    let mirror_id = find_push(st, id, mid)?.id;
    if let Some(p) = st.projects.get_mut(&id) {
        p.remote_mirrors.retain(|m| m.id != mirror_id);
    }
    Ok(no_content())
}

/// `POST …/remote_mirrors/:mirror_id/sync`: 204; 400 when the mirror is disabled.
pub(crate) fn sync_push(
    shared: &Arc<Shared>,
    st: &mut State,
    ctx: &Ctx,
    key: &str,
    mid: &str,
) -> Answer {
    let id = push_access(st, ctx, key)?;
    let m = find_push(st, id, mid)?;
    if !m.enabled {
        return Err(message(
            StatusCode::BAD_REQUEST,
            "Cannot proceed with the push mirroring. Please verify your mirror configuration.",
        ));
    }
    let mirror_id = m.id;
    start_push_update(shared, st, id, mirror_id);
    Ok(no_content())
}

/// `GET …/remote_mirrors/:mirror_id/public_key`: only for SSH-key mirrors over `ssh://`.
pub(crate) fn push_public_key(st: &State, ctx: &Ctx, key: &str, mid: &str) -> Answer {
    let id = push_access(st, ctx, key)?;
    let m = find_push(st, id, mid)?;
    if m.auth_method != "ssh_public_key" || !m.url.starts_with("ssh://") {
        return Err(message(StatusCode::NOT_FOUND, "404 Not found"));
    }
    let key =
        format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{:0>40} glmirror-sim-mirror-{}", m.id, m.id);
    Ok(json_response(StatusCode::OK, &json!({ "public_key": key })))
}
