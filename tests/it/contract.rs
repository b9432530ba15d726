//! The simulator held to GitLab's own contract, the files GitLab wrote that are vendored in
//! `fixtures/gitlab-contract/` (see `docs/gitlab-contract.md`).
//!
//! Every route of the simulator's router ([`glmirror::sim::ROUTES`]) is called in the states
//! the other tests use: GitLab 17.8 and 16.11 (plus 18.4 for `host_keys`), admin, maintainer,
//! developer and narrow-scope tokens, mirrors with and without stored credentials, SSH and
//! password push mirrors, and error cases. Each success body is validated against GitLab's
//! JSON Schema where one exists; a stale schema (the remote-mirror and `simple=true` project
//! schemas predate fields GitLab now sends) is checked for its required keys and types only.
//! Every call is also checked against the GitLab OpenAPI operation of its route: the
//! documented success status and, where the operation's entity was vendored, the entity's
//! keys and types. Error bodies are checked against the shapes GitLab's API helpers produce,
//! and exactly where GitLab's request specs pin a body. The test names the sources it used
//! per route, and fails when a route has none or was never called.
//!
//! The second half checks the client: glmirror's models read GitLab's documented examples and
//! schema-valid samples with every nullable field null and unknown fields added.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use glmirror::sim::fixture::Token;
use glmirror::sim::{Fixture, ROUTES, RemoteAccept, Route, SimHandle, SimOptions, find_route};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::util::{Env, ExitExt as _, Table};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/gitlab-contract/");

// ----- GitLab's files ---------------------------------------------------------------------

const PROJECT_MIRROR: &str = "spec/fixtures/api/schemas/project_mirror.json";
const REMOTE_MIRROR: &str = "spec/fixtures/api/schemas/remote_mirror.json";
const REMOTE_MIRRORS: &str = "spec/fixtures/api/schemas/remote_mirrors.json";
const METADATA: &str = "spec/fixtures/api/schemas/public_api/v4/metadata.json";
const PROJECTS_SIMPLE: &str = "spec/fixtures/api/schemas/public_api/v4/projects.json";
const USER_PUBLIC: &str = "spec/fixtures/api/schemas/public_api/v4/user/public.json";
const USER_ADMIN: &str = "spec/fixtures/api/schemas/public_api/v4/user/admin.json";
const USER_BASIC: &str = "spec/fixtures/api/schemas/public_api/v4/user/basic.json";
const USERS_BASIC: &str = "spec/fixtures/api/schemas/public_api/v4/user/basics.json";
const USERS_ADMIN: &str = "spec/fixtures/api/schemas/public_api/v4/user/admins.json";
const MEMBERS: &str = "spec/fixtures/api/schemas/public_api/v4/members.json";
const PULL_EXAMPLES: &[&str] = &[
    "doc/api/project_pull_mirroring.md.example-GET-mirror-pull-response.json",
    "doc/api/project_pull_mirroring.md.example-PUT-mirror-pull-response.json",
];
const PUSH_EXAMPLES: &[&str] = &[
    "doc/api/remote_mirrors.md.example-GET-single-response.json",
    "doc/api/remote_mirrors.md.example-POST-create-response.json",
    "doc/api/remote_mirrors.md.example-PUT-update-response.json",
];
const PUSH_LIST_EXAMPLE: &str = "doc/api/remote_mirrors.md.example-GET-list-response.json";
const PUBLIC_KEY_EXAMPLE: &str = "doc/api/remote_mirrors.md.example-GET-public-key-response.json";
/// The attribute table of `doc/api/settings.md` (not vendored): `silent_mode_enabled` is a
/// boolean. The OpenAPI v3 entity of `/application/settings` could not be extracted.
const SETTINGS_DOC: &str = "doc/api/settings.md (silent_mode_enabled: boolean)";

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn json_file(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(r) => r.parse::<f64>().map(Value::from).unwrap_or(Value::Null),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => format!("{other:?}"),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

fn yaml_file(rel: &str) -> Map<String, Value> {
    let docs = yaml_rust2::YamlLoader::load_from_str(&read(rel))
        .unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"));
    match docs.first().map(yaml_to_json) {
        Some(Value::Object(m)) => m,
        other => panic!("{rel}: expected a mapping, got {other:?}"),
    }
}

/// A GitLab schema, with `$ref`s to sibling files inlined and the known defects that make it
/// invalid Draft 4 repaired. Each repair asserts the defect is still there, so a corrected
/// upstream file shows up here instead of being silently patched.
fn schema(rel: &str) -> Value {
    let mut v = json_file(rel);
    if rel == USER_PUBLIC {
        // `"type": "string "` (a stray space) is no JSON type.
        assert_eq!(v["properties"]["twitter"]["type"], "string ", "{rel} was fixed upstream");
        v["properties"]["twitter"]["type"] = json!("string");
    }
    if rel == PROJECTS_SIMPLE {
        // `"type": "date"` is no JSON type: GitLab's timestamps are ISO 8601 strings.
        for key in ["created_at", "last_activity_at"] {
            assert_eq!(v["items"]["properties"][key]["type"], "date", "{rel} was fixed upstream");
            v["items"]["properties"][key] = json!({"type": "string"});
        }
    }
    let dir = rel.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
    inline_refs(&mut v, &dir);
    v
}

fn inline_refs(v: &mut Value, dir: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref")
                && r.ends_with(".json")
            {
                *v = schema(&format!("{dir}/{r}"));
                return;
            }
            m.values_mut().for_each(|x| inline_refs(x, dir));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| inline_refs(x, dir)),
        _ => {}
    }
}

/// A stale schema reduced to what is still true: its required keys and their types, with
/// `additionalProperties: false` dropped (GitLab has added fields since it was written).
fn relaxed(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("additionalProperties");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// Draft 4 validation (the draft GitLab's schemas are written for), formats included.
fn validate(schema: &Value, body: &Value) -> Result<(), String> {
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| format!("the schema does not compile: {e}"))?;
    let errors: Vec<String> =
        validator.iter_errors(body).map(|e| format!("{} (at {})", e, e.instance_path())).collect();
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

// ----- GitLab's OpenAPI documents -----------------------------------------------------------

/// One generated OpenAPI document, from the vendored excerpts: its paths and its entities
/// (`definitions` in v2, `components/schemas` in v3).
struct OpenApi {
    name: &'static str,
    paths: Map<String, Value>,
    entities: Map<String, Value>,
}

const V2_FILES: &[&str] = &[
    "doc/api/openapi/openapi_v2.yaml.excerpt-02-path-groups-id-projects.yaml",
    "doc/api/openapi/openapi_v2.yaml.excerpt-03-path-projects.yaml",
    "doc/api/openapi/openapi_v2.yaml.excerpt-04-path-projects-id-get.yaml",
    "doc/api/openapi/openapi_v2.yaml.excerpt-05-paths-remote-mirrors.yaml",
    "doc/api/openapi/openapi_v2.yaml.excerpt-06-path-personal-access-tokens-self.yaml",
    "doc/api/openapi/openapi_v2.yaml.excerpt-07-paths-metadata-version.yaml",
    "doc/api/openapi/openapi_v2.yaml.excerpt-08-def-API_Entities_Project.yaml",
    "doc/api/openapi/openapi_v2.yaml.excerpt-09-defs-LicenseBasic-NamespaceBasic-BasicProjectDetails.yaml",
    "doc/api/openapi/openapi_v2.yaml.excerpt-12-defs-RemoteMirror-MirrorHostKey-post-put-bodies.yaml",
    "doc/api/openapi/openapi_v2.yaml.excerpt-13-defs-PersonalAccessTokenWithLastUsedIps-PersonalAccessToken.yaml",
    "doc/api/openapi/openapi_v2.yaml.excerpt-14-def-Metadata.yaml",
];
const V3_FILES: &[&str] = &[
    "doc/api/openapi/openapi_v3.yaml.excerpt-02-path-projects-id-mirror-pull.yaml",
    "doc/api/openapi/openapi_v3.yaml.excerpt-04-components-APIEntitiesPullMirror.yaml",
    "doc/api/openapi/openapi_v3.yaml.excerpt-05-path-user.yaml",
    "doc/api/openapi/openapi_v3.yaml.excerpt-06-path-users-get.yaml",
    "doc/api/openapi/openapi_v3.yaml.excerpt-07-path-application-settings.yaml",
    "doc/api/openapi/openapi_v3.yaml.excerpt-08-paths-remote-mirrors.yaml",
];

/// Where GitLab's generated OpenAPI types are wrong, and what the value really is. Its types
/// fall back to `string` when an entity field has no documentation type, and one field is
/// documented with the wrong type; GitLab's JSON Schemas and docs give the real ones.
fn openapi_type_fixes() -> BTreeMap<(&'static str, &'static str), Value> {
    let nullable = |t: &str| json!({"type": [t, "null"]});
    let mut fixes = BTreeMap::new();
    // `documentation: { type: 'integer' }` on a message: `remote_mirror.json` and
    // `doc/api/remote_mirrors.md` say string or null.
    fixes.insert(("API_Entities_RemoteMirror", "last_error"), nullable("string"));
    // The EE project fields (`ee/lib/ee/api/entities/project.rb`) carry no documentation
    // type; `doc/api/projects.md` shows booleans and a user id.
    for field in [
        "mirror",
        "mirror_trigger_builds",
        "only_mirror_protected_branches",
        "mirror_overwrites_diverged_branches",
    ] {
        for entity in ["API_Entities_Project", "API_Entities_ProjectWithAccess"] {
            fixes.insert((entity, field), nullable("boolean"));
        }
    }
    for entity in ["API_Entities_Project", "API_Entities_ProjectWithAccess"] {
        fixes.insert((entity, "mirror_user_id"), nullable("integer"));
    }
    fixes
}

impl OpenApi {
    fn load(name: &'static str, files: &[&str]) -> OpenApi {
        let (mut paths, mut entities) = (Map::new(), Map::new());
        for file in files {
            for (key, value) in yaml_file(file) {
                if key.starts_with("/api/v4/") {
                    paths.insert(key, value);
                } else {
                    entities.insert(key, value);
                }
            }
        }
        // `API_Entities_ProjectWithAccess` is `API_Entities_Project` plus `permissions`
        // (`lib/api/entities/project_with_access.rb`); its definition's head was not vendored.
        if let Some(Value::Object(project)) = entities.get("API_Entities_Project").cloned() {
            let mut with_access = project;
            if let Some(Value::Object(props)) = with_access.get_mut("properties") {
                // The shape check makes every value nullable and does not enforce presence;
                // `get_project_tells_the_callers_access` in sim.rs does.
                let access = json!({"type": "object", "required": ["access_level", "notification_level"],
                    "properties": {"access_level": {"type": "integer"}, "notification_level": {"type": "integer"}}});
                props.insert(
                    "permissions".into(),
                    json!({"type": "object", "required": ["project_access", "group_access"],
                           "properties": {"project_access": access, "group_access": access}}),
                );
            }
            entities.insert("API_Entities_ProjectWithAccess".into(), Value::Object(with_access));
        }
        OpenApi { name, paths, entities }
    }

    /// The operation documenting a simulator route, if this document has it.
    fn operation(&self, route: &Route) -> Option<&Value> {
        let path: Vec<String> = route
            .path
            .split('/')
            .map(|s| match s.strip_prefix(':') {
                Some(p) => format!("{{{p}}}"),
                None => s.to_owned(),
            })
            .collect();
        self.paths.get(&format!("/api/v4/{}", path.join("/")))?.get(route.method.to_lowercase())
    }

    /// The documented success statuses of an operation, with the body schema's `$ref` or
    /// inline schema for each (v2 `schema`, v3 `content.application/json.schema`).
    fn successes(op: &Value) -> Vec<(u16, Option<Value>)> {
        let Some(Value::Object(responses)) = op.get("responses") else { return Vec::new() };
        responses
            .iter()
            .filter_map(|(code, r)| {
                let code: u16 = code.parse().ok()?;
                let schema =
                    r.get("schema").or_else(|| r.pointer("/content/application~1json/schema"));
                (200..300).contains(&code).then(|| (code, schema.cloned()))
            })
            .collect()
    }

    /// An OpenAPI schema as a Draft 4 JSON Schema of its shape: the declared keys only
    /// (`additionalProperties: false`: the generator lists every exposed field) with their
    /// types, every value nullable (v2 cannot say which are; v3's entities omit it), formats
    /// and examples dropped, [`openapi_type_fixes`] applied. `None` when it names an entity
    /// whose definition was not vendored.
    fn shape(&self, node: &Value) -> Option<Value> {
        let fixes = openapi_type_fixes();
        self.convert(node, None, &fixes, 0)
    }

    fn convert(
        &self,
        node: &Value,
        owner: Option<&str>,
        fixes: &BTreeMap<(&'static str, &'static str), Value>,
        depth: usize,
    ) -> Option<Value> {
        assert!(depth < 8, "{}: $ref loop", self.name);
        if let Some(Value::String(r)) = node.get("$ref") {
            let name = r.rsplit('/').next().unwrap_or(r);
            let entity = self.entities.get(name)?;
            return self.convert(entity, Some(name), fixes, depth + 1);
        }
        match node.get("type").and_then(Value::as_str) {
            Some("object") => {
                let mut props = Map::new();
                if let Some(Value::Object(declared)) = node.get("properties") {
                    for (key, prop) in declared {
                        let fixed = owner.and_then(|o| {
                            fixes.iter().find(|((e, f), _)| *e == o && f == key).map(|(_, v)| v)
                        });
                        let converted = match fixed {
                            Some(v) => v.clone(),
                            // An entity that was not vendored: its keys are unknown.
                            None => self.convert(prop, None, fixes, depth + 1).unwrap_or(json!({})),
                        };
                        props.insert(key.clone(), converted);
                    }
                }
                let open = props.is_empty();
                Some(json!({
                    "type": ["object", "null"],
                    "properties": props,
                    "additionalProperties": open,
                }))
            }
            Some("array") => {
                let items = match node.get("items") {
                    Some(i) => self.convert(i, None, fixes, depth + 1)?,
                    None => json!({}),
                };
                Some(json!({"type": ["array", "null"], "items": items}))
            }
            Some(t) => Some(json!({"type": [t, "null"]})),
            None => Some(json!({})),
        }
    }
}

// ----- what a call must look like -----------------------------------------------------------

/// The state a response was produced in.
#[derive(Clone, Copy)]
struct Seen {
    version: (u32, u32),
    admin: bool,
    simple: bool,
}

struct Contract {
    v2: OpenApi,
    v3: OpenApi,
    /// Per route (`METHOD path`): the sources its success bodies were checked against.
    checked: BTreeMap<String, BTreeSet<String>>,
    /// Per route: the error statuses seen.
    errors: BTreeMap<String, BTreeSet<u16>>,
}

fn key(route: &Route) -> String {
    format!("{} {}", route.method, route.path)
}

impl Contract {
    fn new() -> Contract {
        Contract {
            v2: OpenApi::load("openapi_v2.yaml", V2_FILES),
            v3: OpenApi::load("openapi_v3.yaml", V3_FILES),
            checked: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    /// Check one answer of `route`; panics with the source that disagrees.
    fn check(&mut self, route: &'static Route, seen: Seen, status: u16, body: &Value) {
        let what = key(route);
        if (200..300).contains(&status) {
            let sources = self.check_success(route, seen, status, body);
            assert!(!sources.is_empty(), "{what}: no source checked its answer");
            self.checked.entry(what).or_default().extend(sources);
        } else {
            check_error(&what, status, body);
            self.errors.entry(what).or_default().insert(status);
        }
    }

    fn check_success(
        &self,
        route: &'static Route,
        seen: Seen,
        status: u16,
        body: &Value,
    ) -> Vec<String> {
        let what = key(route);
        let mut sources = Vec::new();
        let mut fail = |source: &str, r: Result<(), String>| match r {
            Ok(()) => sources.push(source.to_owned()),
            Err(e) => panic!("{what}: the answer disagrees with {source}: {e}\n{body:#}"),
        };
        // The OpenAPI operations: the documented success status, and the entity's shape.
        let mut documented = false;
        for doc in [&self.v2, &self.v3] {
            let Some(op) = doc.operation(route) else { continue };
            documented = true;
            let successes = OpenApi::successes(op);
            let codes: Vec<u16> = successes.iter().map(|(c, _)| *c).collect();
            if !codes.contains(&status) {
                panic!("{what}: status {status}, but {} documents {codes:?}", doc.name);
            }
            let mut declared =
                successes.iter().find(|(c, _)| *c == status).and_then(|(_, s)| s.clone());
            let mut label = format!("{} entity", doc.name);
            if (route.method, route.path) == ("GET", "projects") && !seen.simple {
                // v2 declares `API_Entities_BasicProjectDetails[]`, but without `simple=true`
                // `lib/api/projects.rb` presents `ProjectWithAccess`.
                let with_access = "#/definitions/API_Entities_ProjectWithAccess";
                declared = Some(json!({"type": "array", "items": {"$ref": with_access}}));
                label = format!("{} entity API_Entities_ProjectWithAccess", doc.name);
            }
            match declared.as_ref().and_then(|s| doc.shape(s)) {
                Some(shape) => fail(&label, validate(&shape, body)),
                None => fail(&format!("{} status {status}", doc.name), Ok(())),
            }
        }
        // `PUT /projects/:id` was not vendored; it presents `Entities::Project`.
        if (route.method, route.path) == ("PUT", "projects/:id") {
            let shape = self.v2.shape(&json!({"$ref": "#/definitions/API_Entities_Project"}));
            let shape = shape.expect("API_Entities_Project is vendored");
            fail("openapi_v2.yaml API_Entities_Project", validate(&shape, body));
            documented = true;
        }
        // `GET /users/:id` has no vendored operation; the schemas below cover it.
        documented |= route.path == "users/:id";
        // Nor `GET /projects/:id/members/all/:user_id`: GitLab's members schema covers it.
        documented |= route.path == "projects/:id/members/all/:user_id";
        assert!(documented, "{what}: no OpenAPI operation and no stand-in");

        // GitLab's JSON Schemas, doc examples and documented attributes.
        let (major, minor) = seen.version;
        match (route.method, route.path) {
            ("GET", "version") | ("GET", "metadata") => {
                // `spec/requests/api/metadata_spec.rb` checks both against this schema.
                fail(METADATA, validate(&schema(METADATA), body));
            }
            ("GET", "user") => {
                // `lib/api/users.rb`: `UserWithAdmin` for admins, `UserPublic` otherwise.
                let file = if seen.admin { USER_ADMIN } else { USER_PUBLIC };
                fail(file, validate(&schema(file), body));
                if !seen.admin {
                    fail("no is_admin for non-admins", check(body.get("is_admin").is_none()));
                }
            }
            ("GET", "users") => {
                let file = if seen.admin { USERS_ADMIN } else { USERS_BASIC };
                fail(file, validate(&schema(file), body));
            }
            ("GET", "users/:id") => {
                // users_spec checks the admin view against `admin.json`; the non-admin
                // `Entities::User` extends `UserBasic`, whose schema is open.
                let file = if seen.admin { USER_ADMIN } else { USER_BASIC };
                fail(file, validate(&schema(file), body));
            }
            ("GET", "projects/:id/members/all/:user_id") => {
                // `members.json` describes a list of members; one member is its item.
                let item = schema(MEMBERS)["items"].clone();
                fail(&format!("{MEMBERS} (its item schema)"), validate(&item, body));
            }
            ("GET", "application/settings") | ("PUT", "application/settings") => {
                let doc = json!({"type": "object", "required": ["silent_mode_enabled"],
                                 "properties": {"silent_mode_enabled": {"type": "boolean"}}});
                fail(SETTINGS_DOC, validate(&doc, body));
            }
            ("GET", "projects") if seen.simple => {
                // Stale: no `topics`, `namespace` or `readme_url`, which GitLab now sends.
                let file = format!("{PROJECTS_SIMPLE} (stale: required keys and types)");
                fail(&file, validate(&relaxed(schema(PROJECTS_SIMPLE)), body));
            }
            ("GET", "projects")
            | ("GET", "groups/:id/projects")
            | ("GET", "projects/:id")
            | ("PUT", "projects/:id") => {
                // No schema exists for the full project entity; the OpenAPI entity above is
                // the contract. GitLab shows the EE mirror fields only on mirrors.
                let items = body.as_array().cloned().unwrap_or_else(|| vec![body.clone()]);
                let ok = items
                    .iter()
                    .all(|p| p["mirror"] == json!(true) || p.get("mirror_user_id").is_none());
                fail(
                    "ee/lib/ee/api/entities/project.rb (mirror fields only on mirrors)",
                    check(ok),
                );
            }
            ("GET", "projects/:id/mirror/pull") | ("PUT", "projects/:id/mirror/pull") => {
                let mut s = schema(PROJECT_MIRROR);
                let source = if (major, minor) >= (17, 5) {
                    PROJECT_MIRROR.to_owned()
                } else {
                    // Before 17.5 the entity had only its first seven fields
                    // (`doc/api/project_pull_mirroring.md`); the rest still holds.
                    s["required"] = json!([
                        "id",
                        "url",
                        "update_status",
                        "last_update_at",
                        "last_update_started_at",
                        "last_successful_update_at",
                        "last_error"
                    ]);
                    format!("{PROJECT_MIRROR} (before 17.5: its first seven fields)")
                };
                fail(&source, validate(&s, body));
                for example in PULL_EXAMPLES {
                    if (major, minor) >= (17, 5) {
                        fail(example, same_keys(&json_file(example), body));
                    }
                }
            }
            ("POST", "projects/:id/mirror/pull") => {
                // No body is documented; the status was checked above.
            }
            ("GET", "projects/:id/remote_mirrors") => {
                let file = format!("{REMOTE_MIRRORS} (stale: required keys and types)");
                fail(&file, validate(&relaxed(schema(REMOTE_MIRRORS)), body));
                for m in body.as_array().into_iter().flatten() {
                    fail(PUSH_LIST_EXAMPLE, push_keys(PUSH_LIST_EXAMPLE, m, seen));
                }
            }
            ("GET", "projects/:id/remote_mirrors/:mirror_id")
            | ("POST", "projects/:id/remote_mirrors")
            | ("PUT", "projects/:id/remote_mirrors/:mirror_id") => {
                let file = format!("{REMOTE_MIRROR} (stale: required keys and types)");
                fail(&file, validate(&relaxed(schema(REMOTE_MIRROR)), body));
                let example = match route.method {
                    "GET" => PUSH_EXAMPLES[0],
                    "POST" => PUSH_EXAMPLES[1],
                    _ => PUSH_EXAMPLES[2],
                };
                fail(example, push_keys(example, body, seen));
            }
            ("DELETE", "projects/:id/remote_mirrors/:mirror_id")
            | ("POST", "projects/:id/remote_mirrors/:mirror_id/sync") => {
                fail("204 without a body", check(body.is_null()));
            }
            ("GET", "projects/:id/remote_mirrors/:mirror_id/public_key") => {
                fail(PUBLIC_KEY_EXAMPLE, same_keys(&json_file(PUBLIC_KEY_EXAMPLE), body));
                let key = body["public_key"].as_str().unwrap_or("");
                fail("an OpenSSH public key", check(key.starts_with("ssh-")));
            }
            ("GET", "personal_access_tokens/self") => {
                // The OpenAPI entity above is the only machine-readable source.
            }
            _ => panic!(
                "{what}: no contract: add GitLab's source for this route to tests/it/contract.rs \
                 and docs/gitlab-contract.md"
            ),
        }
        sources
    }
}

fn check(ok: bool) -> Result<(), String> {
    if ok { Ok(()) } else { Err("does not hold".into()) }
}

/// The same keys as GitLab's documented example.
fn same_keys(example: &Value, body: &Value) -> Result<(), String> {
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    let (want, got) = (keys(example), keys(body));
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "missing {:?}, extra {:?}",
            want.difference(&got).collect::<Vec<_>>(),
            got.difference(&want).collect::<Vec<_>>()
        ))
    }
}

/// The keys of a documented remote-mirror example, as the entity in the simulated version
/// has them: the examples are 18.4+ CE payloads, so `host_keys` goes before 18.4, EE's
/// `mirror_branch_regex` (`ee/lib/ee/api/entities/remote_mirror.rb`) is added, and so is
/// `auth_method` where an example leaves it out (the entity always exposes it). `host_keys`
/// must be an array of `{fingerprint_sha256}`.
fn push_keys(example: &str, body: &Value, seen: Seen) -> Result<(), String> {
    let mut want = json_file(example);
    if want.is_array() {
        want = want[0].clone();
    }
    let want = want.as_object_mut().ok_or("the example is no object")?;
    want.insert("mirror_branch_regex".into(), Value::Null);
    want.insert("auth_method".into(), Value::Null);
    if seen.version < (18, 4) {
        want.remove("host_keys");
    } else {
        for k in body["host_keys"].as_array().ok_or("host_keys is not an array")? {
            let fp = k["fingerprint_sha256"].as_str().ok_or("host key without fingerprint")?;
            if !fp.starts_with("SHA256:") || k.as_object().is_none_or(|m| m.len() != 1) {
                return Err(format!("host key {k}"));
            }
        }
    }
    same_keys(&Value::Object(want.clone()), body)
}

/// GitLab's error bodies (no schema exists for them anywhere): `render_api_error!` gives
/// `{"message": text}` or, for model validation errors, `{"message": {attribute: [texts]}}`
/// (`lib/api/helpers.rb`); Grape's parameter errors and unknown routes give `{"error": text}`;
/// token errors give `{"error", "error_description"(, "scope")}`
/// (`doc/api/rest/troubleshooting.md`, `doc/api/rest/authentication.md`). 429s from the
/// throttle are plain text and never reach here.
fn check_error(what: &str, status: u16, body: &Value) {
    let shape = json!({
        "oneOf": [
            {"type": "object", "required": ["message"], "additionalProperties": false,
             "properties": {"message": {"oneOf": [
                 {"type": "string"},
                 {"type": "object", "minProperties": 1,
                  "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "string"}}}
             ]}}},
            {"type": "object", "required": ["error"], "additionalProperties": false,
             "properties": {"error": {"type": "string"}}},
            {"type": "object", "required": ["error", "error_description"], "additionalProperties": false,
             "properties": {"error": {"type": "string"}, "error_description": {"type": "string"},
                            "scope": {"type": "string"}}}
        ]
    });
    if let Err(e) = validate(&shape, body) {
        panic!("{what}: HTTP {status} body is no GitLab error shape: {e}\n{body}");
    }
    let text = body["message"].as_str().or(body["error"].as_str()).unwrap_or("");
    match status {
        401 => assert!(
            text == "401 Unauthorized" || body["error"] == "invalid_token",
            "{what}: 401 body {body}"
        ),
        404 => assert!(text.starts_with("404 "), "{what}: 404 body {body}"),
        _ => {}
    }
}

// ----- calling the simulator ----------------------------------------------------------------

struct Client {
    http: reqwest::Client,
    base: String,
    version: (u32, u32),
    admins: BTreeSet<String>,
}

impl Client {
    fn new(h: &SimHandle, version: (u32, u32)) -> Client {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let admins = [h.admin_token().to_owned()].into();
        Client { http, base: format!("{}api/v4/", h.base_url()), version, admins }
    }

    /// Call the simulator, check the answer against the contract, and return it.
    async fn call(
        &self,
        c: &mut Contract,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        self.call_with(c, method, path, token, body, &[], want).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn call_with(
        &self,
        c: &mut Contract,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
        want: u16,
    ) -> Value {
        let route_path = path.split('?').next().unwrap_or(path);
        let route = find_route(method, route_path)
            .unwrap_or_else(|| panic!("{method} {path} is no route of the simulator"));
        let mut req = self.http.request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", self.base),
        );
        if let Some(t) = token {
            req = req.header("PRIVATE-TOKEN", t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("the simulator answers");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, want, "{method} {path}: {text}");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        };
        let sudo_admin =
            headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("sudo") && *v == "root");
        let has_sudo = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("sudo"));
        let admin =
            if has_sudo { sudo_admin } else { token.is_some_and(|t| self.admins.contains(t)) };
        let seen = Seen { version: self.version, admin, simple: path.contains("simple=true") };
        c.check(route, seen, status, &value);
        value
    }
}

fn token(id: u64, value: &str, user_id: u64, scopes: &[&str]) -> Token {
    Token {
        id,
        token: value.into(),
        user_id,
        name: "contract".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        revoked: false,
        expires_at: None,
        created_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

const DEVELOPER: &str = "glsim-contract-developer";
const READ_REPOSITORY: &str = "glsim-contract-read-repository";
const READ_API: &str = "glsim-demo-read-0000000000000000000004";
const SERVICE: &str = "glpat-CONTRACTserviceToken0001";

async fn start(version: &str) -> (SimHandle, Client) {
    let mut opts = SimOptions::new(Fixture::demo());
    opts.gitlab_version = Some(version.to_owned());
    opts.update_delay_ms = 20;
    opts.fixture.tokens.push(token(90, DEVELOPER, 6, &["api"]));
    opts.fixture.tokens.push(token(91, READ_REPOSITORY, 2, &["read_repository"]));
    opts.remote_accepts.push(RemoteAccept {
        host: "github.com".into(),
        user: Some("svc-mirror".into()),
        password: Some(SERVICE.into()),
    });
    let h = glmirror::sim::start(opts).await.unwrap();
    let parsed = glmirror::sim::state::parse_version(version);
    let client = Client::new(&h, parsed);
    (h, client)
}

/// The instance, user and project endpoints, in any version.
async fn instance_and_projects(c: &mut Contract, api: &Client, h: &SimHandle) {
    let (a, m) = (h.admin_token().to_owned(), h.maintainer_token().to_owned());
    let (a, m) = (a.as_str(), m.as_str());
    for t in [a, m] {
        let version = api.call(c, "GET", "version", Some(t), None, 200).await;
        let metadata = api.call(c, "GET", "metadata", Some(t), None, 200).await;
        assert_eq!(version, metadata, "/version answers the same body as /metadata");
        api.call(c, "GET", "user", Some(t), None, 200).await;
        api.call(c, "GET", "personal_access_tokens/self", Some(t), None, 200).await;
        api.call(c, "GET", "users?username=svc-mirror", Some(t), None, 200).await;
        api.call(c, "GET", "users?search=o", Some(t), None, 200).await;
        api.call(c, "GET", "users/4", Some(t), None, 200).await;
        api.call(c, "GET", "users/1", Some(t), None, 200).await;
        api.call(c, "GET", "projects/3", Some(t), None, 200).await;
        api.call(c, "GET", "projects/platform%2Fbilling", Some(t), None, 200).await;
        api.call(c, "GET", "projects?per_page=100", Some(t), None, 200).await;
        api.call(c, "GET", "projects?per_page=100&simple=true", Some(t), None, 200).await;
        let keyset = "projects?pagination=keyset&order_by=id&sort=asc&per_page=10";
        api.call(c, "GET", keyset, Some(t), None, 200).await;
        api.call(c, "GET", "groups/vendor/projects?per_page=100", Some(t), None, 200).await;
        let sub = "groups/20/projects?include_subgroups=true&with_shared=false";
        api.call(c, "GET", sub, Some(t), None, 200).await;
    }
    api.call(c, "GET", "projects?min_access_level=40", Some(m), None, 200).await;
    // Memberships, inherited ones included; a user with none is 404 (`doc/api/members.md`).
    api.call(c, "GET", "projects/3/members/all/3", Some(a), None, 200).await;
    api.call(c, "GET", "projects/3/members/all/3", Some(m), None, 200).await;
    api.call(c, "GET", "projects/3/members/all/5", Some(a), None, 404).await;
    api.call(c, "GET", "projects/3/members/all/3", None, None, 401).await;
    // Sudo: an admin acting as a non-admin sees `UserPublic`.
    let sudo = [("Sudo", "svc-mirror")];
    api.call_with(c, "GET", "user", Some(a), None, &sudo, 200).await;
    // A developer sees the project without `import_url`, but not its mirror.
    let dev = api.call(c, "GET", "projects/3", Some(DEVELOPER), None, 200).await;
    assert!(dev.get("import_url").is_none(), "{dev}");
    // Any scope reads its own token; `/metadata` wants `api`, `read_api` or `read_user`.
    api.call(c, "GET", "personal_access_tokens/self", Some(READ_REPOSITORY), None, 200).await;
    api.call(c, "GET", "metadata", Some(READ_REPOSITORY), None, 403).await;
    api.call(c, "GET", "version", Some(READ_REPOSITORY), None, 403).await;
    // Settings: admins only.
    api.call(c, "GET", "application/settings", Some(a), None, 200).await;
    let off = json!({"silent_mode_enabled": false});
    api.call(c, "PUT", "application/settings", Some(a), Some(off.clone()), 200).await;
    api.call(c, "GET", "application/settings", Some(m), None, 403).await;
    api.call(c, "PUT", "application/settings", Some(m), Some(off), 403).await;
    // Without a token: 401, but `GET /users?username=` is public and the rest of `/users`
    // is 403 (`lib/api/users.rb`).
    for path in [
        "version",
        "metadata",
        "user",
        "personal_access_tokens/self",
        "projects",
        "projects/3",
        "users/1",
        "groups/vendor/projects",
        "application/settings",
    ] {
        api.call(c, "GET", path, None, None, 401).await;
    }
    let anon = api.call(c, "GET", "users?username=svc-mirror", None, None, 200).await;
    assert_eq!(anon[0]["username"], "svc-mirror");
    let r = api.call(c, "GET", "users", None, None, 403).await;
    assert_eq!(r, json!({"message": "Not authorized to access /api/v4/users"}));
    api.call(c, "GET", "user", Some("glpat-not-a-token"), None, 401).await;
    api.call(c, "GET", "projects", Some("glsim-demo-expired-000000000000000005"), None, 401).await;
    // Not found.
    api.call(c, "GET", "users/5", Some(a), None, 404).await;
    api.call(c, "GET", "projects/22", Some(m), None, 404).await;
    api.call(c, "GET", "projects/999", Some(a), None, 404).await;
    api.call(c, "GET", "groups/nope/projects", Some(a), None, 404).await;
    api.call(c, "GET", "projects?pagination=keyset&order_by=name", Some(a), None, 405).await;
}

/// The deprecated `PUT /projects/:id` pull-mirror path (any version).
async fn old_project_api(c: &mut Contract, api: &Client, h: &SimHandle) {
    let m = h.maintainer_token().to_owned();
    let public = json!({"import_url": "https://github.com/acme/linux-tools.git", "mirror": true});
    let p = api.call(c, "PUT", "projects/30", Some(&m), Some(public), 200).await;
    assert_eq!(p["import_url"], "https://github.com/acme/linux-tools.git");
    let archived = json!({"archived": false});
    api.call(c, "PUT", "projects/3", Some(&m), Some(archived), 200).await;
    let blocked = json!({"import_url": "https://github.com:21/acme/x.git", "mirror": true});
    let r = api.call(c, "PUT", "projects/30", Some(&m), Some(blocked), 400).await;
    let attribute = if api.version >= (17, 8) { "unsafe_import_url" } else { "import_url" };
    assert_eq!(
        r,
        json!({"message": {attribute: ["is blocked: Only allowed ports are 22, 80, 443, and any over 1024"]}})
    );
    let probe =
        json!({"import_url": "https://nobody:wrong@github.com/acme/billing.git", "mirror": true});
    let r = api.call(c, "PUT", "projects/30", Some(&m), Some(probe), 422).await;
    assert_eq!(r["message"], "Unable to access repository with the URL and credentials provided");
    let other = json!({"mirror_user_id": 3, "mirror": true});
    let r = api.call(c, "PUT", "projects/30", Some(&m), Some(other), 400).await;
    assert_eq!(r, json!({"message": {"mirror_user_id": ["is invalid"]}}));
}

/// The pull-mirror API (`GET`/`PUT`/`POST …/mirror/pull`).
async fn pull_mirrors(c: &mut Contract, api: &Client, h: &SimHandle) {
    let (a, m) = (h.admin_token().to_owned(), h.maintainer_token().to_owned());
    let (a, m) = (a.as_str(), m.as_str());
    // Stored credentials: masked. None stored: the plain URL (ee/spec/requests/api/project_mirror_spec.rb).
    let masked = api.call(c, "GET", "projects/3/mirror/pull", Some(a), None, 200).await;
    assert_eq!(masked["url"], "https://*****:*****@github.com/acme/billing.git");
    let plain = api.call(c, "GET", "projects/30/mirror/pull", Some(m), None, 200).await;
    assert_eq!(plain["url"], "https://github.com/acme/linux-tools.git");
    api.call(c, "GET", "projects/3/mirror/pull", Some(READ_API), None, 200).await;
    api.call(c, "GET", "projects/11/mirror/pull", Some(a), None, 400).await;
    api.call(c, "GET", "projects/3/mirror/pull", Some(DEVELOPER), None, 403).await;
    api.call(c, "GET", "projects/3/mirror/pull", None, None, 401).await;
    api.call(c, "GET", "projects/999/mirror/pull", Some(a), None, 404).await;
    api.call(c, "POST", "projects/13/mirror/pull", Some(a), None, 200).await;
    let r = api.call(c, "POST", "projects/11/mirror/pull", Some(a), None, 400).await;
    assert_eq!(r, json!({"message": "The project is not mirrored"}));
    api.call(c, "POST", "projects/13/mirror/pull", Some(DEVELOPER), None, 403).await;
    if api.version < (17, 6) {
        // No `PUT …/mirror/pull` before 17.6: the route is missing.
        let r =
            api.call_unrouted("PUT", "projects/13/mirror/pull", a, json!({"enabled": true})).await;
        assert_eq!(r, (404, json!({"error": "404 Not Found"})));
        return;
    }
    let service = json!({"url": "https://github.com/acme/analytics.git",
                         "auth_user": "svc-mirror", "auth_password": SERVICE});
    let r = api.call(c, "PUT", "projects/13/mirror/pull", Some(m), Some(service), 200).await;
    assert_eq!(r["url"], "https://*****:*****@github.com/acme/analytics.git");
    let url_only = json!({"url": "https://github.com/acme/linux-tools.git"});
    let r = api.call(c, "PUT", "projects/30/mirror/pull", Some(a), Some(url_only), 200).await;
    assert_eq!(r["url"], "https://github.com/acme/linux-tools.git", "no credentials: plain");
    // Disabling answers the full entity; afterwards the project is not mirrored.
    let off = json!({"enabled": false});
    let r = api.call(c, "PUT", "projects/29/mirror/pull", Some(a), Some(off), 200).await;
    assert_eq!(r["enabled"], false);
    api.call(c, "GET", "projects/29/mirror/pull", Some(a), None, 400).await;
    // Errors pinned by `ee/spec/requests/api/project_mirror_spec.rb`.
    let attribute = if api.version >= (17, 8) { "unsafe_import_url" } else { "import_url" };
    let r = api
        .call(c, "PUT", "projects/3/mirror/pull", Some(a), Some(json!({"url": "wrong"})), 400)
        .await;
    assert_eq!(
        r,
        json!({"message": {attribute: ["is blocked: Only allowed schemes are http, https, ssh, git"]}})
    );
    let r = api.call(c, "PUT", "projects/3/mirror/pull", Some(a), Some(json!({})), 400).await;
    assert!(r["error"].as_str().unwrap().contains("at least one parameter must be provided"));
    let both = json!({"only_mirror_protected_branches": true, "mirror_branch_regex": "x"});
    let r = api.call(c, "PUT", "projects/3/mirror/pull", Some(a), Some(both), 400).await;
    assert_eq!(
        r,
        json!({"error": "only_mirror_protected_branches, mirror_branch_regex are mutually exclusive"})
    );
    let write = json!({"enabled": true});
    let r = api.call(c, "PUT", "projects/3/mirror/pull", Some(READ_API), Some(write), 403).await;
    assert_eq!(r["error"], "insufficient_scope");
}

impl Client {
    /// A request to a route the simulated version does not have (no contract applies).
    async fn call_unrouted(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = self
            .http
            .request(Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", self.base))
            .header("PRIVATE-TOKEN", token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
}

/// The push-mirror API (`/projects/:id/remote_mirrors`).
async fn push_mirrors(c: &mut Contract, api: &Client, h: &SimHandle) {
    let a = h.admin_token().to_owned();
    let a = a.as_str();
    // Password mirrors with credentials, an SSH-key mirror (its user `git` stays visible).
    for p in [9, 26, 27, 32, 33] {
        api.call(c, "GET", &format!("projects/{p}/remote_mirrors"), Some(a), None, 200).await;
    }
    let ssh = api.call(c, "GET", "projects/27/remote_mirrors/3", Some(a), None, 200).await;
    assert_eq!(ssh["url"], "ssh://git@gitlab.com/acme-backup/k8s-manifests.git");
    if api.version >= (18, 4) {
        assert_eq!(
            ssh["host_keys"][0]["fingerprint_sha256"].as_str().map(|f| &f[..7]),
            Some("SHA256:")
        );
        let none = api.call(c, "GET", "projects/26/remote_mirrors/2", Some(a), None, 200).await;
        assert_eq!(none["host_keys"], json!([]), "no known hosts: an empty array");
    }
    if api.version >= (17, 9) {
        api.call(c, "GET", "projects/27/remote_mirrors/3/public_key", Some(a), None, 200).await;
        api.call(c, "GET", "projects/26/remote_mirrors/2/public_key", Some(a), None, 404).await;
    } else {
        let r = api
            .call_unrouted("GET", "projects/27/remote_mirrors/3/public_key", a, Value::Null)
            .await;
        assert_eq!(r, (404, json!({"error": "404 Not Found"})), "public_key is new in 17.9");
    }
    // Create: with credentials, without (a public target), and an SSH-key mirror.
    let with = json!({"url": "https://backup-bot:glpat-x@gitlab.com/acme-backup/docs2.git", "enabled": true});
    let created = api.call(c, "POST", "projects/26/remote_mirrors", Some(a), Some(with), 201).await;
    assert_eq!(created["url"], "https://*****:*****@gitlab.com/acme-backup/docs2.git");
    let without = json!({"url": "https://gitlab.com/acme-backup/open.git"});
    let open = api.call(c, "POST", "projects/26/remote_mirrors", Some(a), Some(without), 201).await;
    assert_eq!(
        (open["url"].clone(), open["enabled"].clone()),
        (json!("https://gitlab.com/acme-backup/open.git"), json!(false))
    );
    let key = json!({"url": "ssh://git@gitlab.com/acme-backup/k8s2.git", "auth_method": "ssh_public_key"});
    api.call(c, "POST", "projects/27/remote_mirrors", Some(a), Some(key), 201).await;
    let id = created["id"].as_u64().unwrap();
    let one = format!("projects/26/remote_mirrors/{id}");
    api.call(c, "GET", &one, Some(a), None, 200).await;
    let change =
        json!({"enabled": true, "only_protected_branches": true, "keep_divergent_refs": true});
    api.call(c, "PUT", &one, Some(a), Some(change), 200).await;
    api.call(c, "POST", &format!("{one}/sync"), Some(a), None, 204).await;
    // Errors pinned by `spec/requests/api/remote_mirrors_spec.rb`.
    let bad = json!({"url": "https://gitlab.com/x/y.git", "auth_method": "invalid"});
    let r = api.call(c, "POST", "projects/26/remote_mirrors", Some(a), Some(bad), 400).await;
    assert_eq!(r, json!({"error": "auth_method does not have a valid value"}));
    let r = api.call(c, "PUT", &one, Some(a), Some(json!({"auth_method": "invalid"})), 400).await;
    assert_eq!(r, json!({"message": {"auth_method": ["is not included in the list"]}}));
    let blank = json!({"only_protected_branches": null});
    let r = api.call(c, "PUT", &one, Some(a), Some(blank.clone()), 400).await;
    assert_eq!(r, json!({"message": {"only_protected_branches": ["can't be blank"]}}));
    let mut post_blank = blank;
    post_blank["url"] = json!("https://gitlab.com/x/y.git");
    let r = api.call(c, "POST", "projects/26/remote_mirrors", Some(a), Some(post_blank), 400).await;
    assert_eq!(r, json!({"message": {"only_protected_branches": ["can't be blank"]}}));
    let ftp = json!({"url": "ftp://gitlab.com/x/y.git"});
    let r = api.call(c, "POST", "projects/26/remote_mirrors", Some(a), Some(ftp), 400).await;
    assert_eq!(
        r,
        json!({"message": {"url": ["is blocked: Only allowed schemes are http, https, ssh, git"]}})
    );
    let r = api.call(c, "POST", "projects/32/remote_mirrors/4/sync", Some(a), None, 400).await;
    assert!(r["message"].as_str().unwrap().starts_with("Cannot proceed with the push mirroring"));
    api.call(c, "POST", "projects/26/remote_mirrors/999/sync", Some(a), None, 404).await;
    api.call(c, "GET", "projects/26/remote_mirrors/999", Some(a), None, 404).await;
    // No 403 on these endpoints: too little permission is 401 (B10 in docs/gitlab-contract.md).
    api.call(c, "GET", "projects/9/remote_mirrors", Some(DEVELOPER), None, 401).await;
    api.call(c, "GET", "projects/9/remote_mirrors", None, None, 401).await;
    api.call(c, "DELETE", &one, Some(a), None, 204).await;
    api.call(c, "DELETE", &one, Some(a), None, 404).await;
}

#[tokio::test]
async fn every_route_answers_as_gitlab_documents_it() {
    let mut c = Contract::new();
    for version in ["17.8.1-ee", "16.11.0-ee", "18.4.0-ee"] {
        // 17.8: the demo's version; 16.11: before the pull-mirror API's PUT (17.6) and the
        // flags of its entity (17.5); 18.4: `host_keys` and the `public_key` route (17.9).
        let (h, api) = start(version).await;
        instance_and_projects(&mut c, &api, &h).await;
        old_project_api(&mut c, &api, &h).await;
        pull_mirrors(&mut c, &api, &h).await;
        push_mirrors(&mut c, &api, &h).await;
        h.shutdown().await;
    }
    // Every route was called and checked against at least one GitLab source.
    let routes: BTreeSet<String> = ROUTES.iter().map(key).collect();
    let checked: BTreeSet<String> = c.checked.keys().cloned().collect();
    assert_eq!(
        routes.difference(&checked).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes never answered successfully here: call them and add their contract"
    );
    for (route, sources) in &c.checked {
        let errors = c.errors.get(route).map(|e| format!(" errors {e:?}")).unwrap_or_default();
        eprintln!("{route}: {}{errors}", sources.iter().cloned().collect::<Vec<_>>().join(", "));
    }
}

// ----- the client reads GitLab's payloads ---------------------------------------------------

/// Every property whose schema allows `null`, set to `null` (recursively, for the nested
/// objects and arrays the schema describes).
fn nulled(schema: &Value, sample: &Value) -> Value {
    let allows_null = |s: &Value| match &s["type"] {
        Value::String(t) => t == "null",
        Value::Array(ts) => ts.iter().any(|t| t == "null"),
        _ => false,
    };
    match sample {
        Value::Object(m) => {
            let mut out = m.clone();
            for (k, v) in out.iter_mut() {
                let prop = &schema["properties"][k];
                *v = if allows_null(prop) { Value::Null } else { nulled(prop, v) };
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| nulled(&schema["items"], x)).collect()),
        other => other.clone(),
    }
}

/// Fields GitLab may add in a later version.
fn with_unknown_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.insert("added_in_a_later_gitlab".into(), json!({"nested": [1, null, "x"]}));
        m.insert("another_new_flag".into(), json!(null));
    }
    v
}

/// The variants of a valid sample the client must read: as is, with every nullable field
/// null, and with unknown fields. Each is first checked against `schema`.
fn variants(schema: &Value, sample: &Value, what: &str) -> Vec<Value> {
    let all =
        [sample.clone(), nulled(schema, sample), with_unknown_fields(&nulled(schema, sample))];
    for v in &all[..2] {
        validate(schema, v).unwrap_or_else(|e| panic!("{what}: sample not schema-valid: {e}\n{v}"));
    }
    all.to_vec()
}

#[test]
fn the_client_reads_gitlabs_pull_mirror_examples_and_nulls() {
    let s = schema(PROJECT_MIRROR);
    for file in PULL_EXAMPLES {
        for v in variants(&s, &json_file(file), file) {
            let m: glmirror::gitlab::PullMirror =
                serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{file}: {e}\n{v}"));
            assert_eq!(m.id, Some(101486), "{file}");
            assert!(m.url.is_some() && m.enabled.is_some(), "{file}");
            if v["last_update_at"].is_null() {
                assert_eq!(
                    (m.last_update_at, m.last_error, m.flags.mirror_branch_regex),
                    (None, None, None)
                );
                assert_eq!(m.flags.only_mirror_protected_branches, None);
            }
        }
    }
    // Before 17.5 only seven fields: the flags read as unknown.
    let old: glmirror::gitlab::PullMirror = serde_json::from_value(json!({
        "id": 1, "url": "https://h/x.git", "update_status": "none", "last_update_at": null,
        "last_update_started_at": null, "last_successful_update_at": null, "last_error": null}))
    .unwrap();
    assert_eq!((old.enabled, old.flags.mirror_trigger_builds), (None, None));
}

#[test]
fn the_client_reads_gitlabs_push_mirror_examples_and_nulls() {
    let s = relaxed(schema(REMOTE_MIRROR));
    let list = json_file(PUSH_LIST_EXAMPLE);
    let mut samples: Vec<(String, Value)> =
        PUSH_EXAMPLES.iter().map(|f| (f.to_string(), json_file(f))).collect();
    samples.push((PUSH_LIST_EXAMPLE.into(), list[0].clone()));
    for (file, sample) in samples {
        // `mirror_branch_regex` (EE) is null when unset.
        let mut sample = sample;
        sample["mirror_branch_regex"] = Value::Null;
        for v in variants(&s, &sample, &file) {
            let m: glmirror::gitlab::RemoteMirror =
                serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{file}: {e}\n{v}"));
            assert_eq!(m.id, 101486, "{file}");
            assert!(m.url.contains("*****"), "{file}");
            assert_eq!(m.last_error, None, "{file}");
            if v["last_update_at"].is_null() {
                assert_eq!((m.last_update_at, m.last_successful_update_at), (None, None));
            }
        }
    }
    let all: Vec<glmirror::gitlab::RemoteMirror> = serde_json::from_value(list).unwrap();
    assert_eq!(all[0].auth_method.as_deref(), Some("ssh_public_key"));
}

#[tokio::test]
async fn the_client_reads_schema_valid_users_tokens_metadata_and_projects() {
    // Samples the simulator produced (they pass GitLab's schemas in the test above), with
    // every nullable field null and unknown fields added.
    let (h, api) = start("17.8.1-ee").await;
    let get = |path: &'static str, token: String| {
        let http = api.http.clone();
        let url = format!("{}{path}", api.base);
        async move {
            http.get(url)
                .header("PRIVATE-TOKEN", token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let (a, m) = (h.admin_token().to_owned(), h.maintainer_token().to_owned());
    for (path, token, file) in [
        ("user", a.clone(), USER_ADMIN),
        ("user", m.clone(), USER_PUBLIC),
        ("users/4", a.clone(), USER_ADMIN),
    ] {
        let s = schema(file);
        for v in variants(&s, &get(path, token).await, file) {
            let u: glmirror::gitlab::User =
                serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{file}: {e}\n{v}"));
            assert!(u.id > 0 && !u.username.is_empty());
        }
    }
    let basics = schema(USERS_BASIC);
    for v in variants(&basics, &get("users?username=svc-mirror", m.clone()).await, USERS_BASIC) {
        let users: Vec<glmirror::gitlab::User> = serde_json::from_value(v).unwrap();
        assert_eq!(users[0].username, "svc-mirror");
        assert!(!users[0].is_admin, "no is_admin key: not an admin");
    }
    let meta_schema = schema(METADATA);
    for v in variants(&meta_schema, &get("metadata", a.clone()).await, METADATA) {
        let meta: glmirror::gitlab::Metadata = serde_json::from_value(v).unwrap();
        assert_eq!(meta.parsed_version(), Some(glmirror::gitlab::GitLabVersion::new(17, 8, 1)));
    }
    // The token and project entities have only their OpenAPI shape, where every value may
    // be null; null the ones GitLab's docs say can be (`doc/api/personal_access_tokens.md`,
    // `doc/api/projects.md`).
    let c = Contract::new();
    let token_shape = c
        .v2
        .shape(&json!({"$ref": "#/definitions/API_Entities_PersonalAccessTokenWithLastUsedIps"}))
        .unwrap();
    let mut t = get("personal_access_tokens/self", a.clone()).await;
    for k in ["description", "expires_at", "last_used_at"] {
        t[k] = Value::Null;
    }
    validate(&token_shape, &t).unwrap();
    let t: glmirror::gitlab::TokenSelf = serde_json::from_value(with_unknown_fields(&t)).unwrap();
    assert!(t.scopes.iter().any(|s| s == "api") && t.expires_at.is_none());
    let project_shape =
        c.v2.shape(&json!({"$ref": "#/definitions/API_Entities_ProjectWithAccess"})).unwrap();
    let mut p = get("projects/3", a.clone()).await;
    for k in [
        "description",
        "default_branch",
        "readme_url",
        "avatar_url",
        "import_url",
        "import_type",
        "import_error",
        "mirror_user_id",
        "mirror_trigger_builds",
        "only_mirror_protected_branches",
        "mirror_overwrites_diverged_branches",
    ] {
        p[k] = Value::Null;
    }
    p["namespace"]["parent_id"] = Value::Null;
    validate(&project_shape, &p).unwrap();
    let p: glmirror::gitlab::Project = serde_json::from_value(with_unknown_fields(&p)).unwrap();
    assert!(p.mirror && p.import_url.is_none() && p.mirror_user_id.is_none());
    let settings: glmirror::gitlab::ApplicationSettings =
        serde_json::from_value(json!({"silent_mode_enabled": null, "added_later": 1})).unwrap();
    assert_eq!(settings.silent_mode_enabled, None);
    h.shutdown().await;
}

// ----- the client reports GitLab's errors ---------------------------------------------------

/// GitLab reports a refused pull-mirror URL under `message.unsafe_import_url` (17.8+), here
/// from the `validate_pull_mirror_url` probe of a remote that refuses the credentials: apply
/// records each such row as `failed`, with GitLab's own message.
#[test]
fn a_url_gitlab_refuses_fails_the_row_with_gitlabs_message() {
    let env = Env::with(|o| {
        o.fixture.validate_pull_mirror_url = true;
        // github.com accepts none of the service credentials.
        o.remote_accepts.clear();
    });
    let out = env.run(&["plan", "--source-host", "github.com", "--out", "plan.csv"]);
    out.ok();
    let before = env.sim().snapshot();
    // GitLab's own pre-save check is the point: this machine does not probe or watch the
    // token (it would refuse the run before GitLab is asked).
    let out = env.run(&[
        "apply",
        "plan.csv",
        "--source-host",
        "github.com",
        "--yes",
        "--no-probe-host",
        "github.com",
    ]);
    out.exit(3);
    let report = Table::read(env.path("plan.report.csv"));
    let line = report.find("billing (project 3)", |r| r.cell("project_id") == "3");
    assert_eq!(line.cell("outcome"), "failed", "{line:?}");
    let detail = line.cell("outcome_detail");
    assert!(
        detail.contains("HTTP 400")
            && detail.contains("unsafe_import_url")
            && detail.contains("Unable to access repository with the URL and credentials provided"),
        "{line:?}"
    );
    let (was, now) = (before.project(3).unwrap(), env.sim().snapshot());
    let now = now.project(3).unwrap().pull.as_ref().unwrap().clone();
    let was = was.pull.as_ref().unwrap();
    assert_eq!(
        (&now.import_url, &now.password),
        (&was.import_url, &was.password),
        "nothing stored"
    );
}
