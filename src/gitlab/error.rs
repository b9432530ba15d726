//! `GitLabError`: every way a GitLab API call can fail, classified for retry and hints.
//!
//! Messages carry the HTTP method, the API path (relative to `/api/v4`, never a full URL and
//! never a query string) and, for HTTP errors, the status and a short sanitized excerpt of the
//! response body. No variant ever holds a token.

/// How many characters of a response body an error keeps.
pub(crate) const BODY_EXCERPT_CHARS: usize = 200;

/// A failed GitLab API call.
#[derive(Debug, thiserror::Error)]
pub enum GitLabError {
    /// The client could not be built (bad base URL, unreadable `--ca-cert`, …).
    #[error("GitLab client configuration: {0}")]
    Config(String),

    /// GitLab answered with an error status (after any retries).
    #[error("{method} {path}: HTTP {status}{}", excerpt_suffix(body))]
    Http {
        /// `GET`, `PUT`, …
        method: String,
        /// API path below `/api/v4`, without query.
        path: String,
        /// The HTTP status code.
        status: u16,
        /// Sanitized excerpt of the response body (credentials masked, control characters
        /// replaced, at most `BODY_EXCERPT_CHARS` characters).
        body: String,
    },

    /// GitLab (or a proxy in front of it) answered with a redirect, which is never followed
    /// so the token cannot reach another origin.
    #[error("{method} {path}: HTTP {status} redirect to {location} (not followed)")]
    Redirect {
        /// `GET`, `PUT`, …
        method: String,
        /// API path below `/api/v4`, without query.
        path: String,
        /// The 3xx status.
        status: u16,
        /// Where it pointed: credentials masked, query removed.
        location: String,
    },

    /// The request never got an answer: DNS, connection refused, TLS, timeout, or the
    /// connection was closed without a response. For reads this is returned only once retries
    /// are exhausted.
    #[error("{method} {path}: {detail}")]
    Connection {
        /// `GET`, `PUT`, …
        method: String,
        /// API path below `/api/v4`, without query.
        path: String,
        /// What went wrong (masked, no URL).
        detail: String,
        /// True for certificate/TLS problems (never retried).
        tls: bool,
    },

    /// A write (PUT/POST/DELETE) may or may not have been applied: the connection dropped
    /// after the request was sent, it timed out, or GitLab answered 500. The client does not
    /// retry such a write blindly; the caller must re-read the state and decide (apply does
    /// this when it resumes).
    #[error("{method} {path}: outcome unknown, the write may have been applied ({detail})")]
    Ambiguous {
        /// `PUT`, `POST` or `DELETE`.
        method: String,
        /// API path below `/api/v4`, without query.
        path: String,
        /// What went wrong (masked, no URL).
        detail: String,
    },

    /// GitLab (or a proxy) asked to wait longer before retrying (`Retry-After`) than glmirror
    /// waits: the request fails instead of stalling the run silently.
    #[error(
        "{method} {path}: HTTP {status}, and GitLab asks to wait {wait_secs} s before retrying \
         (Retry-After), longer than the {max_secs} s glmirror waits"
    )]
    WaitTooLong {
        /// `GET`, `PUT`, …
        method: String,
        /// API path below `/api/v4`, without query.
        path: String,
        /// The status that came with the `Retry-After` (429 or 503).
        status: u16,
        /// What `Retry-After` asked for, in seconds.
        wait_secs: u64,
        /// The longest wait glmirror honours, in seconds.
        max_secs: u64,
    },

    /// The response was not what the API documents (bad JSON, a foreign `Link` header, …).
    #[error("{method} {path}: unexpected response: {detail}")]
    Protocol {
        /// `GET`, `PUT`, …
        method: String,
        /// API path below `/api/v4`, without query.
        path: String,
        /// What was wrong.
        detail: String,
    },
}

/// Whether an error body is GitLab refusing the token's account itself (blocked, deactivated,
/// pending approval, an LDAP account denied), rather than a permission or scope.
fn account_refused(body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    [
        "your account has been blocked",
        "your account has been deactivated",
        "pending approval from your administrator",
        "access denied for your ldap account",
    ]
    .iter()
    .any(|reason| body.contains(reason))
}

fn excerpt_suffix(body: &str) -> String {
    if body.is_empty() { String::new() } else { format!(": {body}") }
}

impl GitLabError {
    /// A next step for the user, when one is known (bad token, missing scope, …).
    pub fn hint(&self) -> Option<String> {
        match self {
            // lib/api/api_guard.rb answers a blocked, deactivated or unapproved account's
            // token with the reason of lib/gitlab/auth/user_access_denied_reason.rb.
            GitLabError::Http { status: 401 | 403, body, .. } if account_refused(body) => Some(
                "the GitLab token's user is blocked, deactivated or awaiting approval: an \
                 administrator must unblock or approve it (Admin > Users; a deactivated user \
                 reactivates by signing in), or use another account's token"
                    .to_owned(),
            ),
            GitLabError::Http { status: 401, path, .. } => {
                let mut hint =
                    "check that the GitLab token is valid, not expired and not revoked".to_owned();
                if path.contains("/remote_mirrors") {
                    // lib/api/remote_mirrors.rb answers 401 for missing permission too.
                    hint.push_str(
                        " (push-mirror endpoints also answer 401 when the token's user \
                         cannot administer the project's mirrors)",
                    );
                }
                Some(hint)
            }
            GitLabError::Http { status: 403, body, .. } if body.contains("insufficient_scope") => {
                Some(
                    "the token lacks a required scope: it needs `api` (and `sudo` to act as \
                     another user)"
                        .to_owned(),
                )
            }
            // ee/lib/api/project_mirror.rb: a hard-failed mirror refuses manual updates.
            GitLabError::Http { status: 403, body, .. } if body.contains("on pause") => Some(
                "the mirror failed too often and is paused: fix its URL or credentials; \
                 changing them resets the failure count"
                    .to_owned(),
            ),
            GitLabError::Http { status: 403, .. } => Some(
                "the token's user lacks permission: mirrors need the Maintainer role on the \
                 project, or an administrator"
                    .to_owned(),
            ),
            GitLabError::Http { status: 404, path, .. } => {
                let what = if path.starts_with("/groups/") {
                    "group"
                } else if path.starts_with("/users") {
                    "user"
                } else {
                    "project"
                };
                Some(format!(
                    "{what} not found, or not visible to this token's user (check the full path)"
                ))
            }
            GitLabError::Http { status: 429, .. } => Some(
                "GitLab's rate limit was hit repeatedly: lower --concurrency or retry later"
                    .to_owned(),
            ),
            // lib/api/helpers/projects_helpers.rb#validate_git_import_url! (422 on
            // `PUT /projects/:id`); `PUT …/mirror/pull` reports the same probe as a 400
            // validation error of the import URL (`message.unsafe_import_url` since 17.8).
            GitLabError::Http { status: 400 | 422, body, .. }
                if body.contains("Unable to access repository") =>
            {
                Some(
                    "GitLab probed the source URL with these credentials and could not read \
                     it: check the host, path and the source token"
                        .to_owned(),
                )
            }
            // app/validators/addressable_url_validator.rb: every message starts "is blocked:".
            GitLabError::Http { status: 400, body, .. } if body.contains("is blocked:") => Some(
                "GitLab's URL validation refused the mirror URL; local or private targets need \
                 the admin setting \"Allow requests to the local network from webhooks and \
                 integrations\""
                    .to_owned(),
            ),
            GitLabError::Http { .. } => None,
            GitLabError::WaitTooLong { .. } => Some(
                "GitLab's rate limit (or maintenance) holds for a long time: try again later, or \
                 lower --concurrency; an administrator can review the rate limits \
                 (doc/administration/settings/user_and_ip_rate_limits.md)"
                    .to_owned(),
            ),
            GitLabError::Redirect { .. } => Some(
                "check --gitlab-url: the API should not redirect (e.g. http:// instead of \
                 https://, a wrong path, or a proxy or login page in between)"
                    .to_owned(),
            ),
            GitLabError::Connection { tls: true, .. } => Some(
                "check --gitlab-url, and pass --ca-cert with your CA's PEM certificate if \
                 GitLab uses a private CA"
                    .to_owned(),
            ),
            GitLabError::Connection { .. } => Some(
                "check --gitlab-url, the network and any proxy settings (HTTPS_PROXY, \
                 NO_PROXY); for TLS problems pass --ca-cert"
                    .to_owned(),
            ),
            GitLabError::Ambiguous { .. } => Some(
                "re-read the mirror before retrying: the change may already be in place \
                 (rerunning apply does this)"
                    .to_owned(),
            ),
            GitLabError::Config(_) | GitLabError::Protocol { .. } => None,
        }
    }

    /// Could trying the same request again later succeed (429, 5xx, connection trouble)?
    ///
    /// The client has already retried such failures; this tells a caller whether the row may
    /// be retried on a later run. Ambiguous writes are not "retryable": re-read first.
    pub fn is_retryable(&self) -> bool {
        match self {
            GitLabError::Http { status, .. } => *status == 429 || (500..600).contains(status),
            GitLabError::WaitTooLong { .. } => true,
            GitLabError::Connection { tls, .. } => !tls,
            _ => false,
        }
    }

    /// The HTTP status, for errors that have one.
    pub fn status(&self) -> Option<u16> {
        match self {
            GitLabError::Http { status, .. }
            | GitLabError::Redirect { status, .. }
            | GitLabError::WaitTooLong { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Is this a 404 Not Found?
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Is this a write whose outcome is unknown (see [`GitLabError::Ambiguous`])?
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, GitLabError::Ambiguous { .. })
    }

    /// The sanitized body excerpt of an HTTP error (empty for other kinds).
    pub(crate) fn body(&self) -> &str {
        match self {
            GitLabError::Http { body, .. } => body,
            _ => "",
        }
    }
}

/// Turn untrusted text (a response body, an error chain) into a short excerpt that is safe to
/// show: scrubbed (held tokens and URL credentials masked), control characters replaced,
/// whitespace collapsed, at most `max_chars` characters (an ellipsis marks a cut).
pub(crate) fn sanitize_excerpt(text: &str, max_chars: usize) -> String {
    crate::redact::excerpt(text, max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, path: &str, body: &str) -> GitLabError {
        GitLabError::Http { method: "GET".into(), path: path.into(), status, body: body.into() }
    }

    #[test]
    fn excerpts_are_masked_cleaned_and_short() {
        let body = "fatal: https://user:glpat-CANARY@host/x.git\x1b[31m not\r\nfound";
        let e = sanitize_excerpt(body, 200);
        assert!(!e.contains("CANARY"), "{e}");
        assert!(!e.contains('\x1b') && !e.contains('\r') && !e.contains('\n'), "{e}");
        assert!(e.contains("https://*****:*****@host/x.git"));
        let long = "x".repeat(500);
        let e = sanitize_excerpt(&long, 200);
        assert_eq!(e.chars().count(), 201);
        assert!(e.ends_with('…'));
    }

    #[test]
    fn hints_name_the_fix() {
        let h401 = http(401, "/user", "{\"message\":\"401 Unauthorized\"}").hint().unwrap();
        assert!(h401.contains("token is valid"), "{h401}");
        let h401m = http(401, "/projects/1/remote_mirrors", "").hint().unwrap();
        assert!(h401m.contains("push-mirror"), "{h401m}");
        let scope = r#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api"}"#;
        let h403 = http(403, "/projects/1/mirror/pull", scope).hint().unwrap();
        assert!(h403.contains("`api`"), "{h403}");
        let h403p = http(403, "/projects/1", "{\"message\":\"403 Forbidden\"}").hint().unwrap();
        assert!(h403p.contains("Maintainer"), "{h403p}");
        for (status, body) in [
            (403, r#"{"message":"403 Forbidden - Your account has been blocked."}"#),
            (
                403,
                r#"{"message":"403 Forbidden - Your account has been deactivated by your administrator. Please log back in from a web browser to reactivate your account at https://gitlab.example.com"}"#,
            ),
            (
                403,
                r#"{"message":"403 Forbidden - Your account is pending approval from your administrator and hence blocked."}"#,
            ),
            (401, r#"{"message":"401 Unauthorized - Your account has been blocked."}"#),
        ] {
            let hint = http(status, "/user", body).hint().unwrap();
            assert!(hint.contains("blocked, deactivated"), "{body}: {hint}");
        }
        assert!(http(404, "/projects/x", "").hint().unwrap().contains("not found"));
        let paused = r#"{"message":"Mirroring for the project is on pause"}"#;
        assert!(http(403, "/projects/1/mirror/pull", paused).hint().unwrap().contains("paused"));
        let probe =
            r#"{"message":"Unable to access repository with the URL and credentials provided"}"#;
        assert!(http(422, "/projects/1", probe).hint().unwrap().contains("probed"));
        let blocked =
            r#"{"message":{"import_url":["is blocked: Requests to localhost are not allowed"]}}"#;
        assert!(http(400, "/projects/1", blocked).hint().unwrap().contains("local network"));
        // 17.8+ reports import-URL errors under the renamed model attribute.
        let renamed = r#"{"message":{"unsafe_import_url":["is blocked: Requests to localhost are not allowed"]}}"#;
        let e = http(400, "/projects/1/mirror/pull", renamed);
        assert!(e.hint().unwrap().contains("URL validation"), "{e}");
        assert!(e.to_string().contains("is blocked: Requests to localhost"), "{e}");
        let probe400 = r#"{"message":{"unsafe_import_url":["Unable to access repository with the URL and credentials provided"]}}"#;
        assert!(http(400, "/projects/1/mirror/pull", probe400).hint().unwrap().contains("probed"));
        assert!(http(400, "/projects/1", "{\"error\":\"url is missing\"}").hint().is_none());
        let redirect = GitLabError::Redirect {
            method: "GET".into(),
            path: "/user".into(),
            status: 301,
            location: "https://gitlab.example.com/api/v4/user".into(),
        };
        assert!(redirect.hint().unwrap().contains("--gitlab-url"));
        let tls = GitLabError::Connection {
            method: "GET".into(),
            path: "/user".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
            tls: true,
        };
        assert!(tls.hint().unwrap().contains("--ca-cert"));
    }

    #[test]
    fn classification() {
        assert!(http(429, "/x", "").is_retryable());
        assert!(http(503, "/x", "").is_retryable());
        assert!(!http(400, "/x", "").is_retryable());
        assert!(http(404, "/x", "").is_not_found());
        assert_eq!(http(401, "/x", "").status(), Some(401));
        let amb = GitLabError::Ambiguous {
            method: "PUT".into(),
            path: "/projects/1/mirror/pull".into(),
            detail: "HTTP 500".into(),
        };
        assert!(amb.is_ambiguous() && !amb.is_retryable());
        assert_eq!(amb.status(), None);
    }

    #[test]
    fn display_has_method_path_status_and_excerpt() {
        let e =
            http(400, "/projects/7/mirror/pull", "{\"message\":\"The project is not mirrored\"}");
        assert_eq!(
            e.to_string(),
            "GET /projects/7/mirror/pull: HTTP 400: {\"message\":\"The project is not mirrored\"}"
        );
        assert_eq!(http(502, "/user", "").to_string(), "GET /user: HTTP 502");
    }
}
