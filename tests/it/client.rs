//! The GitLab client against small scripted axum servers: pagination, faults and retries,
//! write safety, redirects, headers, pacing and error hygiene.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use futures::{StreamExt, TryStreamExt};
use glmirror::gitlab::{
    ClientConfig, GitLabClient, GitLabError, ProjectQuery, PullMirrorFlags, PullMirrorUpdate,
    RemoteMirrorCreate, Tuning,
};
use secrecy::SecretString;
use serde_json::json;
use url::Url;

const TOKEN: &str = "glpat-CANARYclienttest0123";

async fn spawn(router: Router) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    Url::parse(&format!("http://{addr}/")).expect("url")
}

fn tuning(concurrency: u32, max_delay_ms: u64) -> Tuning {
    Tuning {
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(max_delay_ms),
        concurrency,
        connect_timeout: Duration::from_secs(2),
        announce_wait: Duration::from_millis(100),
        ..Tuning::default()
    }
}

fn client_with(base: &Url, t: Tuning) -> GitLabClient {
    let cfg = ClientConfig {
        base_url: base.clone(),
        token: SecretString::from(TOKEN),
        ca_cert: None,
        timeout: Duration::from_secs(5),
        max_attempts: 6,
        sudo: None,
        ..ClientConfig::new(base.clone(), SecretString::from(TOKEN))
    };
    GitLabClient::with_tuning(cfg, t).expect("client")
}

fn client(base: &Url) -> GitLabClient {
    client_with(base, tuning(4, 50))
}

/// Close the connection without any response (the panic ends hyper's connection task;
/// `resume_unwind` skips the panic hook, so nothing is printed).
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("drop the connection"))
}

fn epoch_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

fn project_json(id: u64) -> serde_json::Value {
    json!({"id": id, "path_with_namespace": format!("g/p{id}"), "mirror": id.is_multiple_of(7),
           "unknown_field": {"nested": true}})
}

/// One keyset page: ids after `id_after`, up to `per_page`, with a `Link rel=next` built
/// from the Host header, as GitLab does.
fn keyset_page(total: u64, q: &HashMap<String, String>, headers: &HeaderMap) -> Response {
    let after: u64 = q.get("id_after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let per_page: u64 = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(20);
    let last = (after + per_page).min(total);
    let items: Vec<_> = (after + 1..=last).map(project_json).collect();
    let mut response = axum::Json(items).into_response();
    if last < total {
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
        // Like GitLab: the same parameters, with a new id_after.
        let mut params: Vec<String> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "id_after")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        params.sort();
        let link = format!(
            "<http://{host}/api/v4/projects?id_after={last}&{}>; rel=\"next\"",
            params.join("&")
        );
        response.headers_mut().insert("link", HeaderValue::from_str(&link).expect("link"));
    }
    response
}

#[tokio::test]
async fn keyset_walks_ten_thousand_projects_lazily_in_order() {
    #[derive(Clone, Default)]
    struct S {
        pages: Arc<AtomicUsize>,
        bad_query: Arc<AtomicUsize>,
    }
    async fn handler(
        State(s): State<S>,
        Query(q): Query<HashMap<String, String>>,
        headers: HeaderMap,
    ) -> Response {
        s.pages.fetch_add(1, Ordering::SeqCst);
        let wanted = [("pagination", "keyset"), ("order_by", "id"), ("sort", "asc")];
        if wanted.iter().any(|(k, v)| q.get(*k).map(String::as_str) != Some(*v))
            || q.get("per_page").map(String::as_str) != Some("100")
            || q.get("min_access_level").map(String::as_str) != Some("40")
        {
            s.bad_query.fetch_add(1, Ordering::SeqCst);
        }
        keyset_page(10_050, &q, &headers)
    }
    let state = S::default();
    let base =
        spawn(Router::new().route("/api/v4/projects", get(handler)).with_state(state.clone()))
            .await;
    let c = client(&base);
    let query = ProjectQuery { min_access_level: Some(40), archived: None };

    // Lazy: taking 150 items fetches two pages, and at most one more ahead.
    let first: Vec<_> = c.projects(query.clone()).take(150).try_collect().await.expect("first");
    assert_eq!(first.len(), 150);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let fetched = state.pages.load(Ordering::SeqCst);
    assert!((2..=3).contains(&fetched), "{fetched} pages for 150 items");
    // Nothing is fetched before the stream is polled.
    let stream = c.projects(query.clone());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(state.pages.load(Ordering::SeqCst), fetched);
    drop(stream);

    state.pages.store(0, Ordering::SeqCst);
    let mut expected = 1u64;
    let mut stream = std::pin::pin!(c.projects(query));
    while let Some(project) = stream.next().await {
        let project = project.expect("project");
        assert_eq!(project.id, expected, "every id once, in order");
        assert_eq!(project.mirror, project.id.is_multiple_of(7));
        expected += 1;
    }
    assert_eq!(expected - 1, 10_050);
    assert_eq!(state.pages.load(Ordering::SeqCst), 101);
    assert_eq!(state.bad_query.load(Ordering::SeqCst), 0, "keyset query parameters");
}

#[tokio::test]
async fn offset_pagination_without_totals() {
    #[derive(Clone, Default)]
    struct S {
        queries: Arc<Mutex<Vec<HashMap<String, String>>>>,
        group: Arc<Mutex<Vec<String>>>,
    }
    fn offset_page(total: u64, page: u64, announce_past_end: bool) -> Response {
        let start = (page - 1) * 100;
        let items: Vec<_> = (start + 1..=(start + 100).min(total))
            .map(|id| json!({"id": id, "url": "https://*****@h/x"}))
            .collect();
        let more = start + 100 < total || (announce_past_end && !items.is_empty());
        let next = if more { (page + 1).to_string() } else { String::new() };
        let mut r = axum::Json(items).into_response();
        r.headers_mut().insert("x-next-page", HeaderValue::from_str(&next).expect("hdr"));
        r.headers_mut().insert("x-page", HeaderValue::from(page));
        // Deliberately wrong total: the client must not trust it.
        r.headers_mut().insert("x-total", HeaderValue::from_static("3"));
        r
    }
    async fn group_projects(
        State(s): State<S>,
        axum::extract::Path(group): axum::extract::Path<String>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        let page = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        s.group.lock().unwrap().push(group);
        s.queries.lock().unwrap().push(q);
        offset_page(250, page, false)
    }
    async fn mirrors(Query(q): Query<HashMap<String, String>>) -> Response {
        let page = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        // Announces a next page after the last, which is empty: stop there.
        offset_page(230, page, true)
    }
    let state = S::default();
    let base = spawn(
        Router::new()
            .route("/api/v4/groups/{id}/projects", get(group_projects))
            .route("/api/v4/projects/{id}/remote_mirrors", get(mirrors))
            .with_state(state.clone()),
    )
    .await;
    let c = client(&base);
    let projects: Vec<_> =
        c.group_projects("top/sub", true).try_collect().await.expect("group projects");
    let ids: Vec<u64> = projects.iter().map(|p| p.id).collect();
    assert_eq!(ids, (1..=250).collect::<Vec<_>>());
    let queries = state.queries.lock().unwrap().clone();
    assert_eq!(queries.len(), 3);
    for q in &queries {
        assert_eq!(q.get("include_subgroups").map(String::as_str), Some("true"));
        assert_eq!(q.get("with_shared").map(String::as_str), Some("false"));
        assert_eq!(q.get("per_page").map(String::as_str), Some("100"));
    }
    assert!(state.group.lock().unwrap().iter().all(|g| g == "top/sub"));

    let mirrors = c.remote_mirrors(42).await.expect("mirrors");
    assert_eq!(mirrors.len(), 230);
    assert_eq!(mirrors.last().map(|m| m.id), Some(230));
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    RetryLaterText,
    JsonTooMany,
    ResetHeader,
    Internal,
    BadGateway,
    Unavailable,
    Drop,
}

fn fault_response(f: Fault) -> Response {
    match f {
        Fault::RetryLaterText => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "Retry later\n").into_response()
        }
        Fault::JsonTooMany => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"message": {"error":
                "This endpoint has been requested too many times. Try again later."}})),
        )
            .into_response(),
        Fault::ResetHeader => {
            let reset = epoch_secs().to_string(); // already due: falls back to backoff
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("ratelimit-reset", reset.as_str()), ("ratelimit-remaining", "0")],
                "Retry later\n",
            )
                .into_response()
        }
        Fault::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Fault::BadGateway => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response(),
        Fault::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Fault::Drop => drop_connection(),
    }
}

const ALL_FAULTS: [Fault; 7] = [
    Fault::RetryLaterText,
    Fault::JsonTooMany,
    Fault::ResetHeader,
    Fault::Internal,
    Fault::BadGateway,
    Fault::Unavailable,
    Fault::Drop,
];

#[tokio::test]
async fn reads_survive_every_fault_without_losing_items() {
    #[derive(Clone, Default)]
    struct S {
        requests: Arc<AtomicUsize>,
        faults: Arc<AtomicUsize>,
    }
    async fn handler(
        State(s): State<S>,
        Query(q): Query<HashMap<String, String>>,
        headers: HeaderMap,
    ) -> Response {
        let n = s.requests.fetch_add(1, Ordering::SeqCst);
        // Every other request fails, cycling through all fault kinds; some twice in a row.
        if n.is_multiple_of(2) || n % 11 == 1 {
            let k = s.faults.fetch_add(1, Ordering::SeqCst);
            return fault_response(ALL_FAULTS[k % ALL_FAULTS.len()]);
        }
        keyset_page(1_234, &q, &headers)
    }
    let state = S::default();
    let base =
        spawn(Router::new().route("/api/v4/projects", get(handler)).with_state(state.clone()))
            .await;
    let c = client(&base);
    let ids: Vec<u64> = c
        .projects(ProjectQuery::default())
        .map_ok(|p| p.id)
        .try_collect()
        .await
        .expect("all pages despite faults");
    assert_eq!(ids, (1..=1_234).collect::<Vec<_>>());
    let stats = c.stats();
    let faults = state.faults.load(Ordering::SeqCst) as u64;
    assert!(faults >= 13, "every fault kind was exercised: {faults}");
    assert_eq!(stats.retries, faults);
    assert!(stats.rate_limited >= 3, "{stats:?}");
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.requests, state.requests.load(Ordering::SeqCst) as u64);
}

#[tokio::test]
async fn reads_give_up_after_bounded_attempts() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let router = Router::new().route(
        "/api/v4/user",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::SERVICE_UNAVAILABLE }
        }),
    );
    let base = spawn(router).await;
    let c = client(&base);
    let err = c.current_user().await.expect_err("gives up");
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
    assert_eq!(hits.load(Ordering::SeqCst), 6);
    let stats = c.stats();
    assert_eq!((stats.requests, stats.retries, stats.errors), (6, 5, 1));
}

#[tokio::test]
async fn retry_after_and_ratelimit_reset_are_honoured() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let router = Router::new().route(
        "/api/v4/user",
        get(move || {
            let n = h.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "Retry later")
                        .into_response(),
                    1 => {
                        let reset = (epoch_secs() + 2).to_string();
                        (StatusCode::TOO_MANY_REQUESTS, [("ratelimit-reset", reset)], "Retry later")
                            .into_response()
                    }
                    _ => axum::Json(json!({"id": 1, "username": "root"})).into_response(),
                }
            }
        }),
    );
    let base = spawn(router).await;
    let c = client_with(&base, tuning(4, 3_000));
    let start = Instant::now();
    let user = c.current_user().await.expect("user");
    let elapsed = start.elapsed();
    assert_eq!(user.username, "root");
    // 1 s from Retry-After, then at least 1 s until the reset epoch second.
    assert!(elapsed >= Duration::from_millis(1_900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(c.stats().rate_limited, 2);
}

#[derive(Clone, Default)]
struct WriteServer {
    hits: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    script: Arc<Mutex<Vec<Option<Fault>>>>,
}

async fn write_handler(State(s): State<WriteServer>, headers: HeaderMap, body: Bytes) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    s.bodies.lock().unwrap().push((headers, body));
    let step = {
        let mut script = s.script.lock().unwrap();
        if script.is_empty() { None } else { script.remove(0) }
    };
    match step {
        Some(f) => fault_response(f),
        None => axum::Json(json!({"id": 5, "url": "https://*****:*****@src.example/x.git",
                                   "update_status": "scheduled", "enabled": true}))
        .into_response(),
    }
}

async fn write_server(script: Vec<Option<Fault>>) -> (Url, WriteServer) {
    let s = WriteServer { script: Arc::new(Mutex::new(script)), ..WriteServer::default() };
    let router = Router::new()
        .route("/api/v4/projects/{id}/mirror/pull", put(write_handler).post(write_handler))
        .route("/api/v4/projects/{id}/remote_mirrors", axum::routing::post(write_handler))
        .with_state(s.clone());
    (spawn(router).await, s)
}

fn pull_update() -> PullMirrorUpdate {
    PullMirrorUpdate {
        url: "https://src.example/x.git".into(),
        auth_user: Some(SecretString::from("svc-mirror")),
        auth_password: Some(SecretString::from("glpat-CANARYsource@:/pw")),
        flags: PullMirrorFlags { mirror_trigger_builds: Some(false), ..PullMirrorFlags::default() },
        ..PullMirrorUpdate::default()
    }
}

#[tokio::test]
async fn writes_send_raw_credentials_in_a_json_body() {
    let (base, s) = write_server(vec![]).await;
    let c = client(&base);
    let mirror = c.update_pull_mirror(7, &pull_update()).await.expect("update");
    assert_eq!(mirror.update_status.as_deref(), Some("scheduled"));
    let bodies = s.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let (headers, body) = &bodies[0];
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    assert_eq!(headers.get("private-token").unwrap(), TOKEN);
    let json: serde_json::Value = serde_json::from_slice(body).expect("json");
    assert_eq!(
        json,
        json!({"url": "https://src.example/x.git", "auth_user": "svc-mirror",
               "auth_password": "glpat-CANARYsource@:/pw", "mirror_trigger_builds": false})
    );
}

#[tokio::test]
async fn writes_are_not_blindly_retried_after_an_ambiguous_failure() {
    // 502 counts too: a proxy gave up waiting, and Rails may still have committed the write.
    for fault in [Fault::Internal, Fault::Drop, Fault::BadGateway] {
        let (base, s) = write_server(vec![Some(fault)]).await;
        let c = client(&base);
        let err = c.update_pull_mirror(7, &pull_update()).await.expect_err("ambiguous");
        assert!(err.is_ambiguous(), "{fault:?}: {err}");
        assert!(!err.is_retryable());
        assert_eq!(s.hits.load(Ordering::SeqCst), 1, "{fault:?}: sent once only");
        let text = format!("{err} {err:?} {:?}", err.hint());
        assert!(!text.contains("CANARY"), "{text}");
        assert!(err.hint().unwrap().contains("re-read"));

        let (base, s) = write_server(vec![Some(fault)]).await;
        let err = client(&base).trigger_pull_mirror(7).await.expect_err("ambiguous POST");
        assert!(err.is_ambiguous(), "{err}");
        assert_eq!(s.hits.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn writes_retry_when_surely_not_applied() {
    let script = vec![
        Some(Fault::RetryLaterText),
        Some(Fault::JsonTooMany),
        Some(Fault::Unavailable),
        Some(Fault::Unavailable),
        None,
    ];
    let (base, s) = write_server(script).await;
    let c = client(&base);
    let create = RemoteMirrorCreate {
        url: SecretString::from("https://svc:glpat-CANARYpush@dst.example/x.git"),
        enabled: true,
        auth_method: Some("password".into()),
        keep_divergent_refs: None,
        only_protected_branches: Some(true),
        mirror_branch_regex: None,
    };
    c.create_remote_mirror(3, &create).await.expect("created after retries");
    assert_eq!(s.hits.load(Ordering::SeqCst), 5);
    let bodies = s.bodies.lock().unwrap().clone();
    let json: serde_json::Value = serde_json::from_slice(&bodies[4].1).expect("json");
    assert_eq!(json["url"], "https://svc:glpat-CANARYpush@dst.example/x.git");
    assert_eq!(json["enabled"], true);
    assert_eq!(json["only_protected_branches"], true);
    assert!(json.get("mirror_branch_regex").is_none());

    // Connection refused: the write never reached anyone, so it is retried, then reported
    // as a connection error (not ambiguous).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let c = client(&closed);
    let err = c.trigger_pull_mirror(1).await.expect_err("refused");
    assert!(matches!(err, GitLabError::Connection { tls: false, .. }), "{err:?}");
    assert!(!err.is_ambiguous());
    assert_eq!(c.stats().requests, 6);
    assert!(err.hint().unwrap().contains("--gitlab-url"));
}

#[tokio::test]
async fn redirects_are_not_followed_and_the_token_stays_home() {
    #[derive(Clone, Default)]
    struct Other {
        seen: Arc<Mutex<Vec<HeaderMap>>>,
    }
    async fn record(State(o): State<Other>, headers: HeaderMap) -> Response {
        o.seen.lock().unwrap().push(headers);
        axum::Json(json!([{"id": 99999}])).into_response()
    }
    let other = Other::default();
    let other_base = spawn(Router::new().fallback(record).with_state(other.clone())).await;
    let port = other_base.port().expect("port");
    let location =
        format!("http://admin:hunter2pw@127.0.0.1:{port}/api/v4/user?private_token=QSECRET123");
    let loc = location.clone();
    let keyset_loc = format!(
        "<http://127.0.0.1:{port}/api/v4/projects?id_after=3&pagination=keyset&private_token=QSECRET123>; rel=\"next\""
    );
    let home = Router::new()
        .route(
            "/api/v4/user",
            get(move || {
                let loc = loc.clone();
                async move { (StatusCode::FOUND, [("location", loc)]).into_response() }
            }),
        )
        .route(
            "/api/v4/projects",
            get(move || {
                let link = keyset_loc.clone();
                async move {
                    ([("link", link)], axum::Json(json!([{"id": 1}, {"id": 2}]))).into_response()
                }
            }),
        );
    let base = spawn(home).await;
    let c = client(&base);

    let err = c.current_user().await.expect_err("redirect refused");
    assert_eq!(err.status(), Some(302));
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}/api/v4/user?…")), "{text}");
    assert!(text.contains("*****"), "{text}");
    for secret in ["hunter2pw", "QSECRET123", TOKEN, "admin"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
        assert!(!format!("{err:?}").contains(secret));
    }
    assert!(err.hint().unwrap().contains("--gitlab-url"));
    assert_eq!(c.stats().requests, 1, "a redirect is not retried");

    // A keyset next link to another origin: the first page is delivered, then an error.
    let results: Vec<_> = c.projects(ProjectQuery::default()).collect().await;
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().map(|p| p.id).ok(), Some(1));
    assert_eq!(results[1].as_ref().map(|p| p.id).ok(), Some(2));
    let err = results[2].as_ref().expect_err("foreign link");
    let text = err.to_string();
    assert!(text.contains("another origin") && !text.contains("QSECRET123"), "{text}");

    assert!(other.seen.lock().unwrap().is_empty(), "the other origin saw no request at all");
    drop(location);
}

#[tokio::test]
async fn token_user_agent_and_sudo_headers() {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let s = seen.clone();
    let router = Router::new().route(
        "/api/v4/user",
        get(move |headers: HeaderMap| {
            s.lock().unwrap().push(headers);
            async { axum::Json(json!({"id": 1, "username": "root", "is_admin": true})) }
        }),
    );
    let base = spawn(router).await;
    let c = client(&base);
    let admin = c.current_user().await.expect("user");
    assert!(admin.is_admin);
    let alice = c.with_sudo("alice");
    alice.current_user().await.expect("as alice");
    c.current_user().await.expect("again");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for h in &seen {
        assert_eq!(h.get("private-token").unwrap(), TOKEN);
        let ua = h.get("user-agent").unwrap().to_str().unwrap();
        assert!(ua.starts_with("glmirror/"), "{ua}");
    }
    assert!(seen[0].get("sudo").is_none());
    assert_eq!(seen[1].get("sudo").unwrap(), "alice");
    assert!(seen[2].get("sudo").is_none(), "with_sudo does not change the original");
    assert_eq!(c.stats().requests, 3, "clones share the counters");
    assert_eq!(alice.stats(), c.stats());
    assert_eq!(alice.sudo_user(), Some("alice"));

    // A username that cannot be a header never turns into another user: nothing is sent.
    let bad = c.with_sudo("evil\nname");
    assert!(matches!(bad.current_user().await, Err(GitLabError::Config(_))));
    assert!(c.try_with_sudo("evil\nname").is_err());
    assert_eq!(c.stats().requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_keeps_429s_rare() {
    const LIMIT: u64 = 60;
    #[derive(Clone, Default)]
    struct Window {
        state: Arc<Mutex<(u64, u64)>>, // (window second, requests counted)
        throttled: Arc<AtomicUsize>,
    }
    async fn handler(State(w): State<Window>) -> Response {
        let now = epoch_secs();
        let observed = {
            let mut st = w.state.lock().unwrap();
            if st.0 != now {
                *st = (now, 0);
            }
            st.1 += 1;
            st.1
        };
        let reset = (now + 1).to_string();
        let remaining = LIMIT.saturating_sub(observed).to_string();
        let headers = [
            ("ratelimit-limit", LIMIT.to_string()),
            ("ratelimit-remaining", remaining),
            ("ratelimit-reset", reset),
            ("ratelimit-name", "throttle_authenticated_api".to_owned()),
        ];
        if observed > LIMIT {
            w.throttled.fetch_add(1, Ordering::SeqCst);
            let mut r = (StatusCode::TOO_MANY_REQUESTS, headers, "Retry later\n").into_response();
            r.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
            return r;
        }
        (headers, axum::Json(json!({"id": 1, "username": "root"}))).into_response()
    }
    let w = Window::default();
    let base = spawn(Router::new().route("/api/v4/user", get(handler)).with_state(w.clone())).await;
    let c = client_with(&base, tuning(8, 2_000));
    let start = Instant::now();
    let results: Vec<_> =
        futures::stream::iter(0..240).map(|_| c.current_user()).buffer_unordered(8).collect().await;
    let elapsed = start.elapsed();
    assert!(results.iter().all(Result::is_ok), "every request succeeds");
    let stats = c.stats();
    let throttled = w.throttled.load(Ordering::SeqCst);
    eprintln!("pacing: 240 requests in {elapsed:?}, {throttled} throttled, {stats:?}");
    assert!(throttled <= 6, "429s should be rare with pacing: {throttled}");
    assert_eq!(stats.rate_limited, throttled as u64);
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
}

#[tokio::test]
async fn errors_name_the_call_and_leak_nothing() {
    let router = Router::new()
        .route(
            "/api/v4/user",
            get(|| async {
                let body = format!(
                    "{{\"message\":\"401 Unauthorized\",\"echo\":\"{TOKEN}\",\"from\":\"https://u:pw@x.example/y\"}}\u{1b}[31m"
                );
                (StatusCode::UNAUTHORIZED, body)
            }),
        )
        .route(
            "/api/v4/projects/{id}/mirror/pull",
            get(|| async {
                (StatusCode::FORBIDDEN, axum::Json(json!({"error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided by the access token.",
                    "scope": "api"})))
            })
            .put(|body: Bytes| async move {
                // A hostile or buggy server echoing the request, credentials included.
                let echo = String::from_utf8_lossy(&body).into_owned();
                (StatusCode::BAD_REQUEST, axum::Json(json!({"echo": echo,
                    "message": {"import_url": ["is blocked: Requests to localhost are not allowed"]}})))
            }),
        )
        .route(
            "/api/v4/projects/{id}",
            get(|| async { (StatusCode::NOT_FOUND, axum::Json(json!({"message": "404 Project Not Found"}))) }),
        );
    let base = spawn(router).await;
    let c = client(&base);

    let err = c.current_user().await.expect_err("401");
    let text = format!("{err} | {err:?} | {}", err.hint().unwrap_or_default());
    assert!(text.starts_with("GET /user: HTTP 401"), "{text}");
    assert!(
        !text.contains("CANARY") && !text.contains("pw@") && !text.contains('\u{1b}'),
        "{text}"
    );
    assert!(text.contains("[REDACTED]"), "{text}");
    assert!(err.hint().unwrap().contains("token is valid"));
    assert!(!err.is_retryable());

    let err = c.pull_mirror(12).await.expect_err("403");
    assert_eq!(err.status(), Some(403));
    assert!(err.hint().unwrap().contains("`api`"), "{:?}", err.hint());

    let err = c.update_pull_mirror(12, &pull_update()).await.expect_err("400");
    assert_eq!(err.status(), Some(400));
    let text = format!("{err} {err:?}");
    assert!(text.contains("https://src.example/x.git") && text.contains("[REDACTED]"), "{text}");
    assert!(!text.contains("CANARY") && !text.contains("svc-mirror"), "{text}");

    let err = c.project("group/sub/proj").await.expect_err("404");
    assert!(err.is_not_found());
    assert!(err.to_string().starts_with("GET /projects/group%2Fsub%2Fproj: HTTP 404"), "{err}");
    assert!(err.hint().unwrap().contains("not found"));
    assert_eq!(c.stats().errors, 4);
}

#[tokio::test]
async fn absent_things_are_none_and_versions_fall_back() {
    let router = Router::new()
        .route(
            "/api/v4/projects/{id}/mirror/pull",
            get(|| async {
                (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "The project is not mirrored"})))
            }),
        )
        .route("/api/v4/personal_access_tokens/self", get(|| async { StatusCode::NOT_FOUND }))
        .route("/api/v4/metadata", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/api/v4/version",
            get(|| async { axum::Json(json!({"version": "16.11.2-ee", "revision": "abc"})) }),
        )
        .route(
            "/api/v4/projects/{id}/remote_mirrors/{mid}",
            get(|| async { StatusCode::NOT_FOUND }).delete(|| async { StatusCode::NOT_FOUND }),
        )
        .route("/api/v4/users/{id}", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/api/v4/users",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let name = q.get("username").cloned().unwrap_or_default();
                if name == "svc-mirror" {
                    axum::Json(json!([{"id": 77, "username": "svc-mirror", "bot": true, "state": "active"}]))
                } else {
                    axum::Json(json!([]))
                }
            }),
        )
        .route(
            "/api/v4/application/settings",
            get(|| async { axum::Json(json!({"silent_mode_enabled": true, "other": 1})) }),
        );
    let base = spawn(router).await;
    let c = client(&base);
    assert_eq!(c.pull_mirror(1).await.expect("not mirrored"), None);
    assert_eq!(c.token_self().await.expect("old gitlab"), None);
    let meta = c.metadata().await.expect("version fallback");
    assert!(meta.enterprise);
    let v = meta.parsed_version().expect("parsed");
    assert!(!v.supports_pull_mirror_api() && !v.exposes_mirror_flags());
    assert_eq!(c.remote_mirror(1, 2).await.expect("gone"), None);
    c.delete_remote_mirror(1, 2).await.expect("delete is idempotent");
    assert_eq!(c.user(5).await.expect("no user"), None);
    let svc = c.user_by_username("svc-mirror").await.expect("lookup").expect("found");
    assert!(svc.bot && svc.is_active() && !svc.is_admin);
    assert_eq!(c.user_by_username("nobody").await.expect("lookup"), None);
    assert_eq!(c.application_settings().await.expect("settings").silent_mode_enabled, Some(true));
    assert_eq!(c.stats().errors, 0, "absent things are not errors");
}

/// Two public root certificates (copied from a system CA bundle), as a `--ca-cert` bundle.
const TWO_ROOTS_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBtjCCAVugAwIBAgITBmyf1XSXNmY/Owua2eiedgPySjAKBggqhkjOPQQDAjA5
MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRkwFwYDVQQDExBBbWF6b24g
Um9vdCBDQSAzMB4XDTE1MDUyNjAwMDAwMFoXDTQwMDUyNjAwMDAwMFowOTELMAkG
A1UEBhMCVVMxDzANBgNVBAoTBkFtYXpvbjEZMBcGA1UEAxMQQW1hem9uIFJvb3Qg
Q0EgMzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCmXp8ZBf8ANm+gBG1bG8lKl
ui2yEujSLtf6ycXYqm0fc4E7O5hrOXwzpcVOho6AF2hiRVd9RFgdszflZwjrZt6j
QjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgGGMB0GA1UdDgQWBBSr
ttvXBp43rDCGB5Fwx5zEGbF4wDAKBggqhkjOPQQDAgNJADBGAiEA4IWSoxe3jfkr
BqWTrBqYaGFy+uGh0PsceGCmQ5nFuMQCIQCcAu/xlJyzlvnrxir4tiz+OpAUFteM
YyRIHN8wfdVoOw==
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIB3DCCAYOgAwIBAgINAgPlfvU/k/2lCSGypjAKBggqhkjOPQQDAjBQMSQwIgYD
VQQLExtHbG9iYWxTaWduIEVDQyBSb290IENBIC0gUjQxEzARBgNVBAoTCkdsb2Jh
bFNpZ24xEzARBgNVBAMTCkdsb2JhbFNpZ24wHhcNMTIxMTEzMDAwMDAwWhcNMzgw
MTE5MDMxNDA3WjBQMSQwIgYDVQQLExtHbG9iYWxTaWduIEVDQyBSb290IENBIC0g
UjQxEzARBgNVBAoTCkdsb2JhbFNpZ24xEzARBgNVBAMTCkdsb2JhbFNpZ24wWTAT
BgcqhkjOPQIBBggqhkjOPQMBBwNCAAS4xnnTj2wlDp8uORkcA6SumuU5BwkWymOx
uYb4ilfBV85C+nOh92VC/x7BALJucw7/xyHlGKSq2XE/qNS5zowdo0IwQDAOBgNV
HQ8BAf8EBAMCAYYwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUVLB7rUW44kB/
+wpu+74zyTyjhNUwCgYIKoZIzj0EAwIDRwAwRAIgIk90crlgr/HmnKAWBVBfw147
bmF0774BxL4YSFlhgjICICadVGNA3jdgUM/I2O2dgq43mLyjj0xMqTQrbO/7lZsm
-----END CERTIFICATE-----
";

#[tokio::test]
async fn ca_cert_bundle_with_several_roots_is_accepted() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("roots.pem");
    std::fs::write(&path, TWO_ROOTS_PEM).expect("write");
    let mut cfg =
        ClientConfig::new(Url::parse("https://gl.example/").unwrap(), SecretString::from(TOKEN));
    cfg.ca_cert = Some(path);
    GitLabClient::new(cfg).expect("a PEM bundle of two roots is accepted");
}

#[tokio::test]
async fn bad_ca_cert_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").expect("write");
    let mut cfg =
        ClientConfig::new(Url::parse("https://gl.example/").unwrap(), SecretString::from(TOKEN));
    cfg.ca_cert = Some(path.clone());
    let err = GitLabClient::new(cfg).expect_err("bad pem");
    assert!(err.to_string().contains("--ca-cert"), "{err}");
    let mut cfg =
        ClientConfig::new(Url::parse("https://gl.example/").unwrap(), SecretString::from(TOKEN));
    cfg.ca_cert = Some(dir.path().join("missing.pem"));
    assert!(GitLabClient::new(cfg).is_err());
}

#[tokio::test]
async fn timeouts_are_retried_for_reads_and_ambiguous_for_writes() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let slow = move || {
        h.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            StatusCode::OK
        }
    };
    let router =
        Router::new().route("/api/v4/projects/{id}/mirror/pull", get(slow.clone()).put(slow));
    let base = spawn(router).await;
    let cfg = ClientConfig {
        timeout: Duration::from_millis(200),
        max_attempts: 2,
        ..ClientConfig::new(base.clone(), SecretString::from(TOKEN))
    };
    let c = GitLabClient::with_tuning(cfg, tuning(4, 20)).expect("client");

    let err = c.update_pull_mirror(1, &pull_update()).await.expect_err("timed out");
    assert!(err.is_ambiguous(), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a timed-out write is not resent");

    let err = c.pull_mirror(1).await.expect_err("timed out twice");
    assert!(matches!(err, GitLabError::Connection { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(hits.load(Ordering::SeqCst), 3, "the read was retried");
}

/// A server that answers every request with `status` and an endless (1 GiB) chunked body,
/// counting the bytes it hands out. It sends a little slower than the client reads (64 KiB
/// per millisecond) and its socket's send buffer is small, so the kernel holds next to nothing
/// ahead of the client: what it handed out is what the client read, give or take a chunk.
async fn endless_body(status: StatusCode) -> (Url, Arc<AtomicUsize>) {
    const CHUNK: usize = 64 << 10;
    let served = Arc::new(AtomicUsize::new(0));
    let s = served.clone();
    let handler = move || {
        let s = s.clone();
        async move {
            let chunks = futures::stream::iter(0..(1usize << 30) / CHUNK).then(move |_| {
                let s = s.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    s.fetch_add(CHUNK, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(Bytes::from(vec![b' '; CHUNK]))
                }
            });
            let mut r = Response::new(axum::body::Body::from_stream(chunks));
            *r.status_mut() = status;
            r.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
            r
        }
    };
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_send_buffer_size(64 << 10).expect("sndbuf");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let listener = socket.listen(16).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route("/api/v4/user", get(handler));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    (Url::parse(&format!("http://{addr}/")).expect("url"), served)
}

#[tokio::test]
async fn a_gigabyte_body_is_cut_at_the_cap_while_streaming() {
    const MIB: usize = 1 << 20;
    let (base, served) = endless_body(StatusCode::OK).await;
    let started = Instant::now();
    let err = client(&base).current_user().await.expect_err("too large");
    assert!(matches!(err, GitLabError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("larger than 16 MiB"), "{err}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let n = served.load(Ordering::SeqCst);
    assert!(n <= 17 * MIB, "the server handed out {} MiB", n / MIB);
    assert!(started.elapsed() < Duration::from_secs(20), "not retried");

    // An error status: only the start of its body is read, for the excerpt.
    let (base, served) = endless_body(StatusCode::NOT_FOUND).await;
    let err = client(&base).current_user().await.expect_err("404");
    assert_eq!(err.status(), Some(404), "{err:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let n = served.load(Ordering::SeqCst);
    assert!(n <= MIB + 64 * 1024, "the server handed out {n} bytes of an error body");
}

/// Log lines written while a test runs (a `tracing` writer for one thread).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    /// Collect the warnings of this thread (the test's runtime is single-threaded).
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_fails_at_once_and_long_waits_are_logged() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let router = Router::new().route(
        "/api/v4/user",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "999999")], "Retry later") }
        }),
    );
    let base = spawn(router).await;
    let started = Instant::now();
    let err = client(&base).current_user().await.expect_err("refused to wait");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(hits.load(Ordering::SeqCst), 1, "not retried");
    assert_eq!(err.status(), Some(429), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("999999 s") && shown.contains("Retry-After"), "{shown}");
    assert!(err.hint().is_some_and(|h| h.contains("later")), "{:?}", err.hint());

    // A wait above the announce threshold (100 ms in these tests) logs what, how long, why.
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let router = Router::new().route(
        "/api/v4/user",
        get(move || {
            let n = h.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "Retry later")
                        .into_response()
                } else {
                    axum::Json(json!({"id": 1, "username": "root"})).into_response()
                }
            }
        }),
    );
    let base = spawn(router).await;
    let logs = Captured::default();
    let guard = logs.install();
    client_with(&base, tuning(4, 3_000)).current_user().await.expect("user");
    drop(guard);
    let text = logs.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("GET /user") && text.contains("waiting 1 s") && text.contains("HTTP 429"),
        "{text}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_given_up_on_in_bounded_time() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let router = Router::new().route(
        "/api/v4/user",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<StatusCode>()
        }),
    );
    let base = spawn(router).await;
    let cfg = ClientConfig {
        timeout: Duration::from_millis(300),
        total_timeout: Duration::from_secs(1),
        max_attempts: 6,
        ..ClientConfig::new(base.clone(), SecretString::from(TOKEN))
    };
    let c = GitLabClient::with_tuning(cfg, tuning(4, 20)).expect("client");
    let logs = Captured::default();
    let guard = logs.install();
    let started = Instant::now();
    let err = c.current_user().await.expect_err("never answered");
    drop(guard);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(2_500), "{elapsed:?}");
    assert!(hits.load(Ordering::SeqCst) < 6, "the total timeout stopped the retries");
    let shown = err.to_string();
    assert!(shown.contains("timed out") && shown.contains("attempts in"), "{shown}");
    // Every attempt that waited out its timeout says so.
    let text = logs.text();
    assert!(text.contains("no answer") && text.contains("GET /user"), "{text}");
}
