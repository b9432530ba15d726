//! Fault injection: the middleware that logs every API request and applies the fault knobs
//! (latency, 5xx, dropped connections, both 429 shapes with `RateLimit-*` headers, redirects,
//! write stalls, one project's broken mirror endpoints, a project deleted mid-run).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};

use super::routes::auth::request_token;
use super::state::{Shared, State, now_rfc3339};
use super::{Faults, LoggedRequest, RateLimitShape};

/// Replace the fault knobs, re-seed the generator, and restart the rate-limit windows and
/// the write count `write_stall_after` compares with.
pub(crate) fn set(st: &mut State, f: Faults) {
    st.rng = rand::rngs::StdRng::seed_from_u64(f.seed);
    st.successful_writes = 0;
    st.rate_windows.clear();
    st.rate_window_epoch.clear();
    st.rate_flip = false;
    st.faults = f;
}

/// The kill switch of the connection a request arrived on: once set, the connection fails
/// every read and write, so the client gets no answer at all.
#[derive(Clone)]
pub(crate) struct ConnKill(Arc<AtomicBool>);

impl ConnKill {
    /// The switch of one connection.
    pub(crate) fn new(flag: Arc<AtomicBool>) -> ConnKill {
        ConnKill(flag)
    }
}

/// What the fault knobs decided for one request.
enum Decision {
    Pass,
    Redirect(String),
    Drop,
    ServerError(u16),
    Limited(RateLimitShape, u64),
    Stall,
    ProjectNotFound,
}

fn redact_query(query: Option<&str>) -> Option<String> {
    let query = query?;
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k == "private_token" || k == "access_token" => {
                format!("{k}=[REDACTED]")
            }
            _ => pair.to_owned(),
        })
        .collect();
    Some(pairs.join("&"))
}

fn epoch_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The middleware in front of every `/api/` request.
pub(crate) async fn fault_layer(
    AxState(shared): AxState<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnKill>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with("/api/") {
        return next.run(req).await;
    }
    let query = req.uri().query().map(str::to_owned);
    let method = req.method().clone();
    let is_write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let token = request_token(req.headers(), query.as_deref());
    let sudo = req.headers().get("sudo").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut entry = LoggedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: redact_query(query.as_deref()),
        status: 0,
        sudo,
        user: None,
        at: now_rfc3339(),
    };

    let (decision, latency, limit_headers) = {
        let mut st = shared.lock();
        entry.user = token
            .as_ref()
            .and_then(|t| st.tokens.get(t))
            .and_then(|t| st.users.get(&t.user_id))
            .map(|u| u.username.clone());
        let decision_and_headers = decide(&mut st, &path, token.as_deref(), is_write);
        (decision_and_headers.0, st.faults.latency_ms, decision_and_headers.1)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let mut response = match decision {
        Decision::Pass => {
            let response = next.run(req).await;
            if is_write && response.status().is_success() {
                shared.lock().successful_writes += 1;
            }
            response
        }
        Decision::Redirect(target) => redirect(&target, &path, query.as_deref()),
        Decision::ProjectNotFound => {
            (StatusCode::NOT_FOUND, Json(serde_json::json!({"message": "404 Project Not Found"})))
                .into_response()
        }
        Decision::ServerError(code) => server_error(code),
        Decision::Limited(RateLimitShape::Application, _) => {
            let r = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(serde_json::json!({"message": {"error":
                    "This endpoint has been requested too many times. Try again later."}})),
            )
                .into_response();
            // The application limiter sends no RateLimit-* or Retry-After headers.
            entry.status = r.status().as_u16();
            shared.lock().log.push(entry);
            return r;
        }
        Decision::Limited(_, retry_after) => {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, "Retry later\n").into_response();
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r
        }
        Decision::Drop => {
            conn.0.store(true, Ordering::SeqCst);
            shared.lock().log.push(entry);
            // Nothing of this response is ever written: the connection refuses writes.
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Decision::Stall => {
            shared.lock().log.push(entry);
            std::future::pending::<()>().await;
            unreachable!("a stalled write never resumes");
        }
    };
    for (name, value) in limit_headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    entry.status = response.status().as_u16();
    shared.lock().log.push(entry);
    response
}

/// The project id of a `/api/v4/projects/:id/…` path, and what follows the id.
fn project_path(path: &str) -> Option<(u64, &str)> {
    let rest = path.strip_prefix("/api/v4/projects/")?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    Some((id.parse().ok()?, tail))
}

/// Apply the knobs, in this order: redirect, rate limit (every request counts), a vanished
/// or broken project, dropped connection, server error, write stall.
fn decide(
    st: &mut State,
    path: &str,
    token: Option<&str>,
    is_write: bool,
) -> (Decision, Vec<(&'static str, String)>) {
    let faults = st.faults.clone();
    if let Some(target) = faults.redirect_to.as_deref() {
        return (Decision::Redirect(target.to_owned()), Vec::new());
    }
    let mut headers = Vec::new();
    if let Some(limit) = faults.rate_limit_per_minute {
        let key = token.unwrap_or("anonymous").to_owned();
        let now = Instant::now();
        let window = st.rate_windows.entry(key.clone()).or_insert((now, 0));
        if now.duration_since(window.0) >= Duration::from_secs(60) {
            *window = (now, 0);
            st.rate_window_epoch.remove(&key);
        }
        window.1 += 1;
        let observed = window.1;
        let started = now.duration_since(window.0).as_secs();
        let reset_epoch = *st.rate_window_epoch.entry(key).or_insert_with(|| epoch_secs() + 60);
        let retry_after = 60u64.saturating_sub(started).max(1);
        headers = vec![
            ("ratelimit-name", "throttle_authenticated_api".to_owned()),
            ("ratelimit-limit", limit.to_string()),
            ("ratelimit-observed", observed.to_string()),
            ("ratelimit-remaining", limit.saturating_sub(observed).to_string()),
            ("ratelimit-reset", reset_epoch.to_string()),
        ];
        if observed > limit {
            let shape = match faults.rate_limit_shape {
                RateLimitShape::Alternate => {
                    st.rate_flip = !st.rate_flip;
                    if st.rate_flip {
                        RateLimitShape::Throttle
                    } else {
                        RateLimitShape::Application
                    }
                }
                other => other,
            };
            return (Decision::Limited(shape, retry_after), headers);
        }
    }
    if let Some((id, tail)) = project_path(path) {
        if faults.vanished_projects.contains(&id) {
            return (Decision::ProjectNotFound, headers);
        }
        let mirror_endpoint = tail.starts_with("mirror/pull") || tail.starts_with("remote_mirrors");
        if faults.broken_projects.contains(&id) && mirror_endpoint {
            return (Decision::ServerError(500), headers);
        }
    }
    if faults.drop_rate > 0.0 && st.rng.random_bool(faults.drop_rate.clamp(0.0, 1.0)) {
        return (Decision::Drop, headers);
    }
    if faults.error_rate > 0.0 && st.rng.random_bool(faults.error_rate.clamp(0.0, 1.0)) {
        let code = [500, 502, 503][st.rng.random_range(0..3)];
        return (Decision::ServerError(code), headers);
    }
    if is_write && faults.write_stall_after.is_some_and(|n| st.successful_writes >= n) {
        return (Decision::Stall, headers);
    }
    (Decision::Pass, headers)
}

fn redirect(target: &str, path: &str, query: Option<&str>) -> Response {
    let location = match query {
        Some(q) => format!("{}{path}?{q}", target.trim_end_matches('/')),
        None => format!("{}{path}", target.trim_end_matches('/')),
    };
    let body =
        format!("<html><body>You are being <a href=\"{location}\">redirected</a>.</body></html>");
    let mut r = (StatusCode::FOUND, body).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// Realistic 5xx answers: Rails' JSON 500, and the HTML pages nginx and GitLab's front end
/// serve for 502 and 503.
fn server_error(code: u16) -> Response {
    let html = |status: StatusCode, text: &str| {
        let mut r = Response::new(Body::from(text.to_owned()));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        r
    };
    match code {
        502 => html(
            StatusCode::BAD_GATEWAY,
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        ),
        503 => html(
            StatusCode::SERVICE_UNAVAILABLE,
            "<!DOCTYPE html>\n<html>\n<head><title>GitLab is not responding (503)</title></head>\n<body><h1>503</h1><h3>GitLab is not responding.</h3><p>Please retry later.</p></body>\n</html>\n",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"message": "500 Internal Server Error"})),
        )
            .into_response(),
    }
}
