//! Instance, user, group and project endpoints: `/version`, `/metadata`, `/user`,
//! `/personal_access_tokens/self`, `/application/settings`, `/users(/:id)`, `/groups/:id/projects`,
//! `/projects(/:id)`. Project entity fields follow docs/gitlab-behaviour.md §1.1.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    Ctx, authenticate, forbidden, grape_error, json_response, keyset_page, message, offset_page,
    page_params,
};
use crate::sim::fixture::{Project, User};
use crate::sim::state::{Caller, State};

type Answer = Result<Response, Response>;

/// The `Metadata` entity (`lib/api/entities/metadata.rb`), which `GET /metadata` and, since
/// `/metadata` exists (15.2), `GET /version` both present. `enterprise` is true: the
/// simulator is EE.
fn metadata_body(st: &State) -> Value {
    json!({
        "version": st.version_string,
        "revision": "6a6cfbd1c5a",
        "kas": {"enabled": false, "externalUrl": null, "externalK8sProxyUrl": null, "version": null},
        "enterprise": true,
    })
}

/// `GET /version` (`doc/api/version.md`, deprecated in 15.5): the same body as `/metadata`
/// (GitLab's `spec/requests/api/metadata_spec.rb` runs the same examples against both);
/// before 15.2 only `version` and `revision`.
pub(crate) fn version(st: &State, ctx: &Ctx) -> Answer {
    authenticate(st, ctx, &["read_user"])?;
    let body = if st.at_least(15, 2) {
        metadata_body(st)
    } else {
        json!({"version": st.version_string, "revision": "6a6cfbd1c5a"})
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /metadata` (`doc/api/metadata.md`).
pub(crate) fn metadata(st: &State, ctx: &Ctx) -> Answer {
    authenticate(st, ctx, &["read_user"])?;
    Ok(json_response(StatusCode::OK, &metadata_body(st)))
}

/// When every simulated account was created and confirmed.
const USER_CREATED_AT: &str = "2023-02-01T10:00:00.000Z";

/// `UserBasic` (`lib/api/entities/user_basic.rb`): what any caller may see of a user.
fn user_basic(st: &State, u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "name": u.name,
        "state": u.state,
        // `access_locked?` (too many failed sign-ins), not the blocked state.
        "locked": false,
        // GitLab answers a Gravatar or default avatar URL for users without an upload.
        "avatar_url": format!("{}/uploads/-/system/user/avatar/{}/avatar.png", st.external_url, u.id),
        "web_url": format!("{}/{}", st.external_url, u.username),
    })
}

fn extend(mut v: Value, extra: Value) -> Value {
    if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
        v.extend(extra);
    }
    v
}

/// `User` (`lib/api/entities/user.rb`): `UserBasic` plus the public profile.
fn user_entity(st: &State, u: &User) -> Value {
    extend(
        user_basic(st, u),
        json!({
            "created_at": USER_CREATED_AT,
            "bio": "",
            "location": "",
            "public_email": null,
            "skype": "",
            "linkedin": "",
            "twitter": "",
            "discord": "",
            "website_url": "",
            "organization": "",
            "job_title": "",
            "pronouns": null,
            "bot": u.bot,
            "work_information": null,
            "followers": 0,
            "following": 0,
            "local_time": null,
        }),
    )
}

/// `UserPublic` (`lib/api/entities/user_public.rb`): `User` plus what users see of
/// themselves.
fn user_public(st: &State, u: &User) -> Value {
    let email = format!("{}@example.com", u.username);
    extend(
        user_entity(st, u),
        json!({
            "last_sign_in_at": null,
            "confirmed_at": USER_CREATED_AT,
            "last_activity_on": null,
            "email": email,
            "theme_id": 1,
            "color_scheme_id": 1,
            "projects_limit": 100_000,
            "current_sign_in_at": null,
            "identities": [],
            "can_create_group": true,
            "can_create_project": true,
            "two_factor_enabled": false,
            "external": false,
            "private_profile": false,
            "commit_email": email,
        }),
    )
}

/// `UserWithAdmin` (`lib/api/entities/user_with_admin.rb`): `UserPublic` plus `is_admin`
/// and the admin-only fields.
fn user_with_admin(st: &State, u: &User) -> Value {
    extend(
        user_public(st, u),
        json!({"is_admin": u.is_admin, "note": null, "namespace_id": 1000 + u.id}),
    )
}

/// `GET /user`: `UserWithAdmin` for an admin (`admin?`, whether or not admin mode is on),
/// `UserPublic`, which has no `is_admin` key, for everyone else (`lib/api/users.rb`).
pub(crate) fn current_user(st: &State, ctx: &Ctx) -> Answer {
    let caller = authenticate(st, ctx, &["read_user"])?;
    let u = st.users.get(&caller.user_id).ok_or_else(super::unauthorized)?;
    let body = if u.is_admin { user_with_admin(st, u) } else { user_public(st, u) };
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /personal_access_tokens/self` (15.5+): the `PersonalAccessTokenWithLastUsedIps`
/// entity. Any scope may call it (`spec/requests/api/personal_access_tokens/self_information_spec.rb`).
pub(crate) fn token_self(st: &State, ctx: &Ctx) -> Answer {
    let caller = authenticate(st, ctx, super::ANY_SCOPE)?;
    let t = st.tokens.values().find(|t| t.id == caller.token_id).ok_or_else(super::unauthorized)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "id": t.id,
            "name": t.name,
            "revoked": t.revoked,
            "created_at": t.created_at,
            "description": null,
            "scopes": t.scopes,
            "user_id": t.user_id,
            "last_used_at": crate::sim::state::now_rfc3339(),
            "active": !t.revoked,
            "expires_at": t.expires_at,
            // The simulator only listens on the loopback interface.
            "last_used_ips": ["127.0.0.1"],
        }),
    ))
}

fn settings_body(st: &State) -> Value {
    json!({
        "id": 1,
        "silent_mode_enabled": st.silent_mode,
        "mirror_available": st.mirror_available,
        "mirror_max_delay": 300,
        "mirror_max_capacity": 100,
        "mirror_capacity_threshold": 50,
        "pull_mirror_interval_seconds": 300,
    })
}

/// `GET /application/settings`: admins only (docs/gitlab-behaviour.md §8.2).
pub(crate) fn settings(st: &State, ctx: &Ctx) -> Answer {
    let caller = authenticate(st, ctx, &[])?;
    if !caller.is_admin {
        return Err(forbidden());
    }
    Ok(json_response(StatusCode::OK, &settings_body(st)))
}

/// `PUT /application/settings`: `silent_mode_enabled` and `mirror_available`.
pub(crate) fn update_settings(st: &mut State, ctx: &Ctx) -> Answer {
    let caller = authenticate(st, ctx, &[])?;
    if !caller.is_admin {
        return Err(forbidden());
    }
    if let Some(v) = ctx.params.bool("silent_mode_enabled")? {
        st.silent_mode = v;
    }
    if let Some(v) = ctx.params.bool("mirror_available")? {
        st.mirror_available = v;
    }
    Ok(json_response(StatusCode::OK, &settings_body(st)))
}

/// `GET /users` (`username`, `search` filters; deleted users are gone): `UserWithAdmin`
/// items for a caller who can read everything (an admin), `UserBasic` for anyone else.
/// Without a token only `username=` lookups are allowed (`lib/api/users.rb`).
pub(crate) fn users(st: &State, ctx: &Ctx) -> Answer {
    let anonymous = super::auth::request_token(&ctx.headers, ctx.raw_query.as_deref()).is_none();
    let admin = if anonymous {
        if !ctx.params.has("username") {
            return Err(forbidden_message("Not authorized to access /api/v4/users"));
        }
        false
    } else {
        authenticate(st, ctx, &["read_user"])?.is_admin
    };
    let (page, per_page) = page_params(ctx)?;
    let username = ctx.params.str("username").map(|s| s.to_lowercase());
    let search = ctx.params.str("search").map(|s| s.to_lowercase());
    let list: Vec<&User> = st
        .users
        .values()
        .filter(|u| !u.deleted)
        .filter(|u| username.as_ref().is_none_or(|n| u.username.to_lowercase() == *n))
        .filter(|u| {
            search.as_ref().is_none_or(|s| {
                u.username.to_lowercase().contains(s) || u.name.to_lowercase().contains(s)
            })
        })
        .collect();
    let items = list
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|u| if admin { user_with_admin(st, u) } else { user_basic(st, u) })
        .collect();
    Ok(offset_page(st, ctx, list.len(), page, per_page, items))
}

fn forbidden_message(text: &str) -> Response {
    message(StatusCode::FORBIDDEN, text)
}

/// `GET /users/:id`: `UserWithAdmin` for an admin, `User` for anyone else; blocked users
/// show `state: blocked`; deleted users are 404.
pub(crate) fn user(st: &State, ctx: &Ctx, id: &str) -> Answer {
    let caller = authenticate(st, ctx, &["read_user"])?;
    let not_found = || message(StatusCode::NOT_FOUND, "404 User Not Found");
    let id: u64 = id.parse().map_err(|_| not_found())?;
    let u = st.users.get(&id).filter(|u| !u.deleted).ok_or_else(not_found)?;
    let body = if caller.is_admin { user_with_admin(st, u) } else { user_entity(st, u) };
    Ok(json_response(StatusCode::OK, &body))
}

fn group_visible(st: &State, caller: &Caller, id: u64) -> bool {
    caller.is_admin
        || st.group_access(caller.user_id, id) > 0
        || st.groups.get(&id).is_some_and(|g| g.visibility != "private")
}

fn namespace_json(st: &State, id: u64) -> Value {
    let g = st.groups.get(&id);
    let full_path = st.group_full_paths.get(&id).cloned().unwrap_or_default();
    json!({
        "id": id,
        "name": g.map(|g| g.name.as_str()),
        "path": g.map(|g| g.path.as_str()),
        "kind": "group",
        "full_path": full_path,
        "parent_id": g.and_then(|g| g.parent_id),
        "avatar_url": null,
        "web_url": format!("{}/groups/{full_path}", st.external_url),
    })
}

/// The project entity. `single` adds what only `GET /projects/:id` shows (`import_error`).
pub(crate) fn project_json(
    st: &State,
    caller: &Caller,
    p: &Project,
    single: bool,
    simple: bool,
) -> Value {
    let full_path = st.full_path(p);
    let ns_name = st
        .groups
        .get(&p.namespace_id)
        .map(|_| {
            let mut names = Vec::new();
            let mut cursor = Some(p.namespace_id);
            while let Some(g) = cursor.and_then(|c| st.groups.get(&c)) {
                names.push(g.name.clone());
                cursor = g.parent_id;
                if names.len() > 20 {
                    break;
                }
            }
            names.reverse();
            names.join(" / ")
        })
        .unwrap_or_default();
    let host = st.external_url.trim_start_matches("http://");
    let host = host.split(':').next().unwrap_or(host);
    let mut v = json!({
        "id": p.id,
        "description": null,
        "name": p.name,
        "name_with_namespace": format!("{ns_name} / {}", p.name),
        "path": p.path,
        "path_with_namespace": full_path,
        "created_at": p.created_at,
        "default_branch": "main",
        "tag_list": [],
        "topics": [],
        "ssh_url_to_repo": format!("git@{host}:{full_path}.git"),
        "http_url_to_repo": format!("{}/{full_path}.git", st.external_url),
        "web_url": format!("{}/{full_path}", st.external_url),
        "readme_url": null,
        "forks_count": 0,
        "avatar_url": null,
        "star_count": 0,
        "last_activity_at": p.last_activity_at,
        "namespace": namespace_json(st, p.namespace_id),
    });
    if simple {
        return v;
    }
    let pull = p.pull.as_deref();
    let admin_project = st.can_admin_project(caller, p);
    let extra = json!({
        "visibility": p.visibility,
        "archived": p.archived,
        "empty_repo": false,
        "import_status": pull.map(|m| m.update_status.as_str()).unwrap_or("none"),
        "open_issues_count": 0,
        "creator_id": 1,
        // EE: the licensed feature `repository_mirrors` is on in the simulator.
        "mirror": pull.is_some_and(|m| m.mirror),
    });
    if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
        v.extend(extra);
    }
    if admin_project {
        // The raw column: no credentials for any URL GitLab could parse (§1.1).
        v["import_url"] = json!(pull.map(|m| m.import_url.as_str()).filter(|u| !u.is_empty()));
        v["import_type"] = json!(pull.and_then(|m| m.import_type.as_deref()));
        if single {
            v["import_error"] = json!(pull.and_then(|m| m.last_error.as_deref()));
        }
    }
    if let Some(m) = pull.filter(|m| m.mirror) {
        // Shown whenever the project is a mirror, without a permission check (§1.1).
        v["mirror_user_id"] = json!(m.mirror_user_id);
        v["mirror_trigger_builds"] = json!(m.mirror_trigger_builds);
        v["only_mirror_protected_branches"] = json!(m.only_mirror_protected_branches);
        v["mirror_overwrites_diverged_branches"] = json!(m.mirror_overwrites_diverged_branches);
    }
    v
}

/// Load a project the caller can see, or 404 "404 Project Not Found".
pub(crate) fn visible_project(st: &State, caller: &Caller, key: &str) -> Result<u64, Response> {
    st.find_project(key)
        .filter(|id| st.projects.get(id).is_some_and(|p| st.can_read(caller, p)))
        .ok_or_else(|| message(StatusCode::NOT_FOUND, "404 Project Not Found"))
}

/// `GET /projects/:id/members/all/:user_id`: the user's effective membership, inherited and
/// invited ones included (`doc/api/members.md`); 404 when the user is no member. An
/// administrator without a membership is no member here either.
pub(crate) fn project_member(st: &State, ctx: &Ctx, key: &str, user: &str) -> Answer {
    let caller = authenticate(st, ctx, &[])?;
    let id = visible_project(st, &caller, key)?;
    let not_found = || message(StatusCode::NOT_FOUND, "404 Not found");
    let uid: u64 = user.parse().map_err(|_| not_found())?;
    let u = st.users.get(&uid).filter(|u| !u.deleted).ok_or_else(not_found)?;
    let level = st.project_access(uid, &st.projects[&id]);
    if level == 0 {
        return Err(not_found());
    }
    let mut v = user_public(st, u);
    v["access_level"] = json!(level);
    v["created_at"] = json!("2024-01-01T00:00:00.000Z");
    v["expires_at"] = Value::Null;
    v["membership_state"] = json!("active");
    Ok(json_response(StatusCode::OK, &v))
}

/// `GET /projects/:id`.
pub(crate) fn get_project(st: &State, ctx: &Ctx, key: &str) -> Answer {
    let caller = authenticate(st, ctx, &[])?;
    let id = visible_project(st, &caller, key)?;
    let p = st.projects.get(&id).ok_or_else(super::route_not_found)?;
    let mut v = project_json(st, &caller, p, true, false);
    v["permissions"] = permissions_json(st, caller.user_id, p);
    Ok(json_response(StatusCode::OK, &v))
}

/// `permissions` of `ProjectWithAccess` (`lib/api/entities/project_with_access.rb`): the
/// caller's direct project membership and its membership of the project's group (ancestors
/// included), each `null` when there is none; notification level 3 is "global".
fn permissions_json(st: &State, user: u64, p: &Project) -> Value {
    let access = |level: u32| {
        if level == 0 {
            Value::Null
        } else {
            json!({"access_level": level, "notification_level": 3})
        }
    };
    let direct = p.members.iter().filter(|m| m.user_id == user).map(|m| m.access_level).max();
    json!({
        "project_access": access(direct.unwrap_or(0)),
        "group_access": access(st.group_access(user, p.namespace_id)),
    })
}

/// The filters `/projects` and `/groups/:id/projects` share.
struct Filters {
    archived: Option<bool>,
    search: Option<String>,
    visibility: Option<String>,
    min_access_level: Option<u64>,
    membership: bool,
    owned: bool,
    id_after: Option<u64>,
    id_before: Option<u64>,
}

impl Filters {
    fn parse(ctx: &Ctx) -> Result<Filters, Response> {
        Ok(Filters {
            archived: ctx.params.bool("archived")?,
            search: ctx.params.str("search").map(|s| s.to_lowercase()),
            visibility: ctx.params.str("visibility"),
            min_access_level: ctx.params.u64("min_access_level")?,
            membership: ctx.params.bool("membership")?.unwrap_or(false),
            owned: ctx.params.bool("owned")?.unwrap_or(false),
            id_after: ctx.params.u64("id_after")?,
            id_before: ctx.params.u64("id_before")?,
        })
    }

    fn keep(&self, st: &State, caller: &Caller, p: &Project) -> bool {
        if !st.can_read(caller, p) {
            return false;
        }
        if self.archived.is_some_and(|a| a != p.archived)
            || self.visibility.as_ref().is_some_and(|v| *v != p.visibility)
            || self.id_after.is_some_and(|a| p.id <= a)
            || self.id_before.is_some_and(|b| p.id >= b)
        {
            return false;
        }
        if let Some(s) = &self.search
            && !p.name.to_lowercase().contains(s)
            && !p.path.to_lowercase().contains(s)
        {
            return false;
        }
        // Memberships only, with no exception for admins (docs/gitlab-behaviour.md §1.3).
        let needs_membership = self.min_access_level.is_some() || self.membership || self.owned;
        if needs_membership {
            let level = u64::from(st.project_access(caller.user_id, p));
            let min = self.min_access_level.unwrap_or(if self.owned { 50 } else { 10 });
            if level < min.max(if self.owned { 50 } else { 1 }) {
                return false;
            }
        }
        true
    }
}

fn sort_ids(st: &State, ids: &mut [u64], order_by: &str, asc: bool) -> Result<(), Response> {
    let key = |id: &u64| -> (String, u64) {
        let p = &st.projects[id];
        let k = match order_by {
            "name" => p.name.to_lowercase(),
            "path" => p.path.to_lowercase(),
            "created_at" => p.created_at.clone(),
            "updated_at" | "last_activity_at" => p.last_activity_at.clone(),
            _ => String::new(),
        };
        (k, *id)
    };
    match order_by {
        "id" => ids.sort_unstable(),
        "name" | "path" | "created_at" | "updated_at" | "last_activity_at" | "similarity"
        | "star_count" => ids.sort_by_cached_key(key),
        _ => return Err(grape_error("order_by does not have a valid value")),
    }
    if !asc {
        ids.reverse();
    }
    Ok(())
}

fn sort_param(ctx: &Ctx) -> Result<bool, Response> {
    match ctx.params.str("sort").as_deref() {
        None | Some("desc") => Ok(false),
        Some("asc") => Ok(true),
        Some(_) => Err(grape_error("sort does not have a valid value")),
    }
}

/// `offset_pagination_limit` (docs/gitlab-behaviour.md §5): applied to `Project` as older versions did.
const OFFSET_LIMIT: usize = 50_000;

/// `GET /projects`: offset pagination, or keyset with `pagination=keyset&order_by=id`.
pub(crate) fn list_projects(st: &State, ctx: &Ctx) -> Answer {
    let caller = authenticate(st, ctx, &[])?;
    let filters = Filters::parse(ctx)?;
    let simple = ctx.params.bool("simple")?.unwrap_or(false);
    let asc = sort_param(ctx)?;
    let order_by = ctx.params.str("order_by").unwrap_or_else(|| "created_at".to_owned());
    if ctx.params.str("pagination").as_deref() == Some("keyset") {
        // Only `order_by=id` is keyset-capable for projects; the default `created_at` is not.
        if order_by != "id" {
            return Err(json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"error": "Keyset pagination is not yet available for this type of request"}),
            ));
        }
        let (_, per_page) = page_params(ctx)?;
        let keep = |p: &&Project| filters.keep(st, &caller, p);
        let items: Vec<Value> = if asc {
            let start = filters.id_after.map_or(0, |a| a.saturating_add(1));
            st.projects
                .range(start..)
                .map(|(_, p)| p)
                .filter(keep)
                .take(per_page)
                .map(|p| project_json(st, &caller, p, false, simple))
                .collect()
        } else {
            let end = filters.id_before.unwrap_or(u64::MAX);
            st.projects
                .range(..end)
                .rev()
                .map(|(_, p)| p)
                .filter(keep)
                .take(per_page)
                .map(|p| project_json(st, &caller, p, false, simple))
                .collect()
        };
        return Ok(keyset_page(st, ctx, items, per_page, asc));
    }
    let (page, per_page) = page_params(ctx)?;
    if page * per_page > OFFSET_LIMIT {
        return Err(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "Offset pagination has a maximum allowed offset of 50000 for requests that return objects of type Project. Remaining records can be retrieved using keyset pagination."}),
        ));
    }
    let mut ids: Vec<u64> =
        st.projects.values().filter(|p| filters.keep(st, &caller, p)).map(|p| p.id).collect();
    sort_ids(st, &mut ids, &order_by, asc)?;
    let items = ids
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|id| project_json(st, &caller, &st.projects[id], false, simple))
        .collect();
    Ok(offset_page(st, ctx, ids.len(), page, per_page, items))
}

/// `GET /groups/:id/projects`: offset only; `include_subgroups` defaults to false and
/// `with_shared` to true (docs/gitlab-behaviour.md §1.4).
pub(crate) fn group_projects(st: &State, ctx: &Ctx, key: &str) -> Answer {
    let caller = authenticate(st, ctx, &[])?;
    let gid = st
        .find_group(key)
        .filter(|id| group_visible(st, &caller, *id))
        .ok_or_else(|| message(StatusCode::NOT_FOUND, "404 Group Not Found"))?;
    let filters = Filters::parse(ctx)?;
    let simple = ctx.params.bool("simple")?.unwrap_or(false);
    let include_subgroups = ctx.params.bool("include_subgroups")?.unwrap_or(false);
    let with_shared = ctx.params.bool("with_shared")?.unwrap_or(true);
    let asc = sort_param(ctx)?;
    let order_by = ctx.params.str("order_by").unwrap_or_else(|| "created_at".to_owned());
    let in_tree = |ns: u64| {
        if ns == gid {
            return true;
        }
        if !include_subgroups {
            return false;
        }
        let mut cursor = st.groups.get(&ns).and_then(|g| g.parent_id);
        let mut depth = 0;
        while let Some(c) = cursor {
            if c == gid {
                return true;
            }
            cursor = st.groups.get(&c).and_then(|g| g.parent_id);
            depth += 1;
            if depth > 20 {
                break;
            }
        }
        false
    };
    let mut ids: Vec<u64> = st
        .projects
        .values()
        .filter(|p| in_tree(p.namespace_id) || (with_shared && p.shared_with_groups.contains(&gid)))
        .filter(|p| filters.keep(st, &caller, p))
        .map(|p| p.id)
        .collect();
    sort_ids(st, &mut ids, &order_by, asc)?;
    let (page, per_page) = page_params(ctx)?;
    let items = ids
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|id| project_json(st, &caller, &st.projects[id], false, simple))
        .collect();
    Ok(offset_page(st, ctx, ids.len(), page, per_page, items))
}
