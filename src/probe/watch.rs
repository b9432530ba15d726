//! The token watch: each service token's state, read once per run from its host's own API
//! (the one place a token goes to a host other than the mirror's: github.com's token to
//! api.github.com, a GitHub Enterprise token to `https://HOST/api/v3`, a GitLab token to
//! `https://HOST/api/v4`, nowhere else), and the pure [`verdict`] on it.
//!
//! Hosts without such an API (Bitbucket, others) take `expires_at` from the credentials file.

use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};
use url::Url;

use super::classify::TokenKnowledge;
use super::codes::HostKind;
use super::request::{Clients, HttpSettings, ProbeError};

/// Warn when a token has this little time left.
pub(crate) const WARN_WITHIN: Duration = Duration::from_secs(30 * 86_400);
/// `apply` refuses (unless `--allow-expiring-token`) and `status` fails with this little left.
pub(crate) const REFUSE_WITHIN: Duration = Duration::from_secs(7 * 86_400);

/// Whether the host accepts the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validity {
    /// The API accepted it.
    Valid,
    /// The API rejected it (401): wrong, expired or revoked.
    Invalid,
    /// The API says it was revoked.
    Revoked,
    /// The API says it is not active (GitLab: expired).
    Inactive,
    /// Not known: no API for this kind, or the API gave no clear answer.
    Unknown,
}

impl Validity {
    /// What host protection needs to know.
    pub fn knowledge(self) -> TokenKnowledge {
        match self {
            Validity::Valid => TokenKnowledge::Valid,
            Validity::Invalid | Validity::Revoked | Validity::Inactive => TokenKnowledge::Invalid,
            Validity::Unknown => TokenKnowledge::Unknown,
        }
    }
}

/// When the token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// At this instant (a GitLab date counts from the start of that day, UTC).
    At(OffsetDateTime),
    /// The host says it never expires.
    Never,
    /// Nobody said.
    Unknown,
}

/// Where the expiry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpirySource {
    /// The host's API.
    HostApi,
    /// The credentials file's `expires_at`.
    CredentialsFile,
}

/// One service token's state. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenState {
    /// The source host.
    pub(crate) host: String,
    /// Its kind.
    pub(crate) kind: HostKind,
    /// Accepted or not.
    pub validity: Validity,
    /// When it expires.
    pub expiry: Expiry,
    /// Where `expiry` came from (`None` when unknown).
    pub(crate) expiry_source: Option<ExpirySource>,
    /// Scopes the API reported (GitHub classic tokens: `X-OAuth-Scopes`; GitLab: `scopes`).
    pub scopes: Option<Vec<String>>,
    /// How it was read, or why it could not be.
    pub(crate) note: String,
}

/// The API a host kind's token watch asks: api.github.com for github.com, `/api/v3` on a
/// GitHub Enterprise host, `/api/v4` on a GitLab host; `None` for every other kind.
pub(crate) fn api_base(host: &str, port: Option<u16>, kind: HostKind) -> Option<Url> {
    // The token is for this host *and* port: its API is asked on that port, never another.
    let port = port.filter(|&p| p != 443);
    let authority = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let url = match kind {
        HostKind::GitHub if host == "github.com" && port.is_none() => {
            "https://api.github.com/".to_owned()
        }
        HostKind::GitHubEnterprise => format!("https://{authority}/api/v3/"),
        HostKind::GitLab => format!("https://{authority}/api/v4/"),
        _ => return None,
    };
    let parsed = Url::parse(&url).ok()?;
    // The host must be exactly the one given (no userinfo, no path tricks), on its port.
    let expected = if kind == HostKind::GitHub { "api.github.com" } else { host };
    (parsed.host_str() == Some(expected) && parsed.username().is_empty() && parsed.port() == port)
        .then_some(parsed)
}

/// `expires_at` as the credentials file gives it: `YYYY-MM-DD` (start of that day, UTC) or
/// an RFC 3339 instant.
pub(crate) fn parse_expires_at(text: &str) -> Result<OffsetDateTime, String> {
    let text = text.trim();
    if let Ok(d) = Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc());
    }
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("expires_at {text:?}: expected YYYY-MM-DD or an RFC 3339 time"))
}

/// GitHub's `GitHub-Authentication-Token-Expiration` (`2026-07-01 12:00:00 UTC`, or with a
/// numeric offset such as `-0700`).
pub(crate) fn parse_github_expiration(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    let (stamp, zone) = value.rsplit_once(' ')?;
    let dt = PrimitiveDateTime::parse(
        stamp,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .ok()?;
    let offset = if zone.eq_ignore_ascii_case("UTC") {
        UtcOffset::UTC
    } else {
        UtcOffset::parse(
            zone,
            time::macros::format_description!("[offset_hour sign:mandatory][offset_minute]"),
        )
        .ok()?
    };
    Some(dt.assume_offset(offset).to_offset(UtcOffset::UTC))
}

/// GitLab's `GET /personal_access_tokens/self` body → validity, expiry and scopes.
pub(crate) fn read_gitlab_self(body: &[u8]) -> Option<(Validity, Expiry, Vec<String>)> {
    #[derive(serde::Deserialize)]
    struct SelfToken {
        #[serde(default)]
        active: Option<bool>,
        #[serde(default)]
        revoked: Option<bool>,
        #[serde(default)]
        expires_at: Option<String>,
        #[serde(default)]
        scopes: Vec<String>,
    }
    let t: SelfToken = serde_json::from_slice(body).ok()?;
    let validity = if t.revoked == Some(true) {
        Validity::Revoked
    } else if t.active == Some(false) {
        Validity::Inactive
    } else {
        Validity::Valid
    };
    let expiry = match t.expires_at.as_deref() {
        None | Some("") => Expiry::Never,
        Some(s) => match parse_expires_at(s) {
            Ok(at) => Expiry::At(at),
            Err(_) => Expiry::Unknown,
        },
    };
    Some((validity, expiry, t.scopes))
}

/// Reads token states through the hosts' APIs.
#[derive(Debug, Clone)]
pub struct TokenWatch {
    clients: Clients,
}

impl TokenWatch {
    /// Set up with the same TLS and proxy rules as the probe.
    pub fn new(http: &HttpSettings) -> Result<TokenWatch, ProbeError> {
        Ok(TokenWatch {
            clients: Clients::build(http, concat!("glmirror/", env!("CARGO_PKG_VERSION")))?,
        })
    }

    /// Read one token's state. Never fails: what cannot be read is `Unknown` with a note.
    /// `file_expires_at` (the credentials file's `expires_at`) is used when the API gives no
    /// date, and wins when it is earlier.
    pub async fn read(
        &self,
        host: &str,
        port: Option<u16>,
        kind: HostKind,
        token: &SecretString,
        file_expires_at: Option<OffsetDateTime>,
    ) -> TokenState {
        let mut state = match api_base(host, port, kind) {
            None => TokenState {
                host: host.to_owned(),
                kind,
                validity: Validity::Unknown,
                expiry: Expiry::Unknown,
                expiry_source: None,
                scopes: None,
                note: format!("{} hosts have no API glmirror asks about tokens", kind.code()),
            },
            Some(base) => match kind {
                HostKind::GitLab => self.read_gitlab(host, &base, token).await,
                _ => self.read_github(host, kind, &base, token).await,
            },
        };
        if let Some(file) = file_expires_at {
            let earlier = match state.expiry {
                Expiry::At(api) => file < api,
                Expiry::Never | Expiry::Unknown => true,
            };
            if earlier {
                state.expiry = Expiry::At(file);
                state.expiry_source = Some(ExpirySource::CredentialsFile);
            }
        }
        state
    }

    async fn get(
        &self,
        url: Url,
        header: (&'static str, HeaderValue),
        accept: &'static str,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), String> {
        let client = self.clients.for_url(&url);
        let resp = client
            .get(url)
            .header(header.0, header.1)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| crate::redact::mask_userinfo(&e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Ok((status, headers, body))
    }

    async fn read_github(
        &self,
        host: &str,
        kind: HostKind,
        base: &Url,
        token: &SecretString,
    ) -> TokenState {
        let mut state = unknown(host, kind);
        let Ok(url) = base.join("user") else {
            return state;
        };
        let Some(auth) = sensitive(&format!("Bearer {}", token.expose_secret())) else {
            state.note = "the token cannot be sent in an HTTP header".into();
            return state;
        };
        let api = url.host_str().unwrap_or_default().to_owned();
        match self.get(url, ("authorization", auth), "application/vnd.github+json").await {
            Err(why) => state.note = format!("{api} did not answer: {why}"),
            Ok((200, headers, _)) => {
                state.validity = Validity::Valid;
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                match header("github-authentication-token-expiration") {
                    Some(v) => match parse_github_expiration(v) {
                        Some(at) => {
                            state.expiry = Expiry::At(at);
                            state.expiry_source = Some(ExpirySource::HostApi);
                        }
                        None => state.note = format!("{api} sent an unreadable expiry date"),
                    },
                    // GitHub sends the header only for tokens that expire.
                    None => {
                        state.expiry = Expiry::Never;
                        state.expiry_source = Some(ExpirySource::HostApi);
                    }
                }
                state.scopes = header("x-oauth-scopes").map(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                });
                if state.note.is_empty() {
                    state.note = format!("read from {api}");
                }
            }
            Ok((401, _, _)) => {
                state.validity = Validity::Invalid;
                state.note = format!("{api} rejected the token (401)");
            }
            Ok((status, _, _)) => state.note = format!("{api} answered {status}"),
        }
        state
    }

    async fn read_gitlab(&self, host: &str, base: &Url, token: &SecretString) -> TokenState {
        let mut state = unknown(host, HostKind::GitLab);
        let Ok(url) = base.join("personal_access_tokens/self") else {
            return state;
        };
        let Some(auth) = sensitive(token.expose_secret()) else {
            state.note = "the token cannot be sent in an HTTP header".into();
            return state;
        };
        match self.get(url, ("private-token", auth), "application/json").await {
            Err(why) => state.note = format!("{host} did not answer: {why}"),
            Ok((200, _, body)) => match read_gitlab_self(&body) {
                Some((validity, expiry, scopes)) => {
                    state.validity = validity;
                    state.expiry = expiry;
                    state.expiry_source = Some(ExpirySource::HostApi);
                    state.scopes = Some(scopes);
                    state.note = format!("read from {host}'s personal_access_tokens/self");
                }
                None => state.note = format!("{host} sent an unreadable token description"),
            },
            Ok((401, _, _)) => {
                state.validity = Validity::Invalid;
                state.note = format!("{host} rejected the token (401)");
            }
            Ok((404, _, _)) => {
                state.note = format!(
                    "{host} has no personal_access_tokens/self (GitLab before 15.5, or not a \
                     personal, project, group or service-account token)"
                );
            }
            Ok((status, _, _)) => state.note = format!("{host} answered {status}"),
        }
        state
    }
}

fn unknown(host: &str, kind: HostKind) -> TokenState {
    TokenState {
        host: host.to_owned(),
        kind,
        validity: Validity::Unknown,
        expiry: Expiry::Unknown,
        expiry_source: None,
        scopes: None,
        note: String::new(),
    }
}

fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Which command asks, which decides what a bad or expiring token does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// `plan`: warns, never refuses.
    Plan,
    /// `apply`: refuses for an invalid token, and within 7 days unless allowed.
    Apply {
        /// `--allow-expiring-token`.
        allow_expiring: bool,
    },
    /// `apply --dry-run`: warns, never refuses.
    DryRun,
    /// `status`: fails (exit 3) for an invalid, expired or nearly expired token.
    Status,
}

/// How serious a verdict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Say it once.
    Info,
    /// Say it as a warning.
    Warn,
    /// `apply`: refuse before any write (exit 1); `status`: exit 3.
    Refuse,
}

/// The verdict on one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenVerdict {
    /// How serious.
    pub severity: Severity,
    /// The message: always the date (or that none is known) and how many mirrors depend on
    /// the token.
    pub message: String,
    /// Whole days left, when the expiry is known.
    pub(crate) days_left: Option<i64>,
}

fn date(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    if at.time() == time::Time::MIDNIGHT {
        format!("{}", at.date())
    } else {
        format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())
    }
}

/// The verdict on one service token for `mode`, with `mirrors` the number of mirrors that
/// will depend on it. Pure.
pub fn verdict(
    state: &TokenState,
    mirrors: usize,
    now: OffsetDateTime,
    mode: WatchMode,
) -> TokenVerdict {
    let subject = format!("the service token for {}", state.host);
    verdict_about(&subject, Some(mirrors), state, now, mode)
}

/// The verdict on any token, named `subject` ("the GitLab API token"): [`verdict`] for a
/// service token (`mirrors` given: the message counts them and points at the credentials
/// file's `expires_at`), or for a token no mirror depends on (`mirrors` `None`). Pure.
pub(crate) fn verdict_about(
    subject: &str,
    mirrors: Option<usize>,
    state: &TokenState,
    now: OffsetDateTime,
    mode: WatchMode,
) -> TokenVerdict {
    let host = &state.host;
    let depend = match mirrors {
        Some(1) => "; 1 mirror depends on it".to_owned(),
        Some(n) => format!("; {n} mirrors depend on it"),
        None => String::new(),
    };
    let refuse_or = |warn: Severity| match mode {
        WatchMode::Apply { .. } | WatchMode::Status => Severity::Refuse,
        WatchMode::Plan | WatchMode::DryRun => warn,
    };
    let (days_left, remaining) = match state.expiry {
        Expiry::At(at) => {
            let left = at - now;
            (Some(left.whole_days()), Some(left))
        }
        Expiry::Never | Expiry::Unknown => (None, None),
    };
    let bad = match state.validity {
        Validity::Invalid => Some("was rejected by its host".to_owned()),
        Validity::Revoked => Some("is revoked".to_owned()),
        Validity::Inactive => Some("is inactive (expired or revoked)".to_owned()),
        Validity::Valid | Validity::Unknown => match (state.expiry, remaining) {
            (Expiry::At(at), Some(left)) if left <= time::Duration::ZERO => {
                Some(format!("expired on {}", date(at)))
            }
            _ => None,
        },
    };
    let dry = if mode == WatchMode::DryRun { " (a real apply would refuse)" } else { "" };
    if let Some(what) = bad {
        return TokenVerdict {
            severity: refuse_or(Severity::Warn),
            message: format!("{subject} {what}{depend}: replace it before applying{dry}"),
            days_left,
        };
    }
    let unchecked = if state.validity == Validity::Unknown && !state.note.is_empty() {
        format!(" (not checked: {})", state.note)
    } else {
        String::new()
    };
    match (state.expiry, remaining) {
        (Expiry::At(at), Some(left)) => {
            let days = left.whole_days();
            let when = format!(
                "{subject} expires on {} ({days} day{} left){depend}",
                date(at),
                if days == 1 { "" } else { "s" }
            );
            if left <= time::Duration::try_from(REFUSE_WITHIN).unwrap_or(time::Duration::ZERO) {
                let (severity, advice) = match mode {
                    WatchMode::Apply { allow_expiring: false } => (
                        Severity::Refuse,
                        ": rotate it first, or pass --allow-expiring-token".to_owned(),
                    ),
                    WatchMode::Apply { allow_expiring: true } => (
                        Severity::Warn,
                        ", allowed by --allow-expiring-token: rotate it soon".into(),
                    ),
                    WatchMode::Status => (Severity::Refuse, ": rotate it now".into()),
                    WatchMode::Plan | WatchMode::DryRun => (
                        Severity::Warn,
                        format!(": apply will refuse unless --allow-expiring-token{dry}"),
                    ),
                };
                TokenVerdict { severity, message: format!("{when}{advice}{unchecked}"), days_left }
            } else if left <= time::Duration::try_from(WARN_WITHIN).unwrap_or(time::Duration::ZERO)
            {
                TokenVerdict {
                    severity: Severity::Warn,
                    message: format!("{when}: rotate it soon{unchecked}"),
                    days_left,
                }
            } else {
                TokenVerdict {
                    severity: Severity::Info,
                    message: format!("{when}{unchecked}"),
                    days_left,
                }
            }
        }
        (Expiry::Never, _) => TokenVerdict {
            severity: Severity::Info,
            message: format!("{subject} does not expire{depend}{unchecked}"),
            days_left: None,
        },
        _ => TokenVerdict {
            severity: Severity::Info,
            message: if mirrors.is_some() {
                format!(
                    "{subject} has no known expiry date (set expires_at for {host} in the \
                     credentials file){depend}{unchecked}"
                )
            } else {
                format!("{subject} has no known expiry date{unchecked}")
            },
            days_left: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn api_bases_are_the_hosts_own() {
        let cases = [
            ("github.com", HostKind::GitHub, Some("https://api.github.com/")),
            (
                "ghe.example.com",
                HostKind::GitHubEnterprise,
                Some("https://ghe.example.com/api/v3/"),
            ),
            ("gitlab.com", HostKind::GitLab, Some("https://gitlab.com/api/v4/")),
            ("git.corp.example", HostKind::GitLab, Some("https://git.corp.example/api/v4/")),
            ("bitbucket.org", HostKind::BitbucketCloud, None),
            ("bb.corp.example", HostKind::BitbucketServer, None),
            ("git.example.com", HostKind::Other, None),
            ("evil.example@github.com", HostKind::GitLab, None),
            ("github.com.evil.example", HostKind::GitHub, None),
        ];
        for (host, kind, want) in cases {
            assert_eq!(api_base(host, None, kind).as_ref().map(Url::as_str), want, "{host}");
            assert_eq!(api_base(host, Some(443), kind).as_ref().map(Url::as_str), want, "{host}");
        }
        // A token for another port is asked about on that port; github.com has no other.
        let on = |host, port, kind| api_base(host, Some(port), kind).map(|u| u.to_string());
        assert_eq!(
            on("git.corp.example", 8443, HostKind::GitLab).as_deref(),
            Some("https://git.corp.example:8443/api/v4/")
        );
        assert_eq!(
            on("ghe.example.com", 8443, HostKind::GitHubEnterprise).as_deref(),
            Some("https://ghe.example.com:8443/api/v3/")
        );
        assert_eq!(on("github.com", 8443, HostKind::GitHub), None);
    }

    #[test]
    fn dates_parse() {
        assert_eq!(
            parse_github_expiration("2026-07-01 12:30:00 UTC"),
            Some(datetime!(2026-07-01 12:30 UTC))
        );
        assert_eq!(
            parse_github_expiration("2026-07-01 12:30:00 -0700"),
            Some(datetime!(2026-07-01 19:30 UTC))
        );
        assert_eq!(parse_github_expiration("tomorrow"), None);
        assert_eq!(parse_expires_at("2026-07-01"), Ok(datetime!(2026-07-01 0:00 UTC)));
        assert_eq!(
            parse_expires_at("2026-07-01T10:00:00+02:00"),
            Ok(datetime!(2026-07-01 8:00 UTC))
        );
        assert!(parse_expires_at("07/01/2026").is_err());
    }

    #[test]
    fn gitlab_self_reads() {
        let cases: [(&str, Option<(Validity, Expiry)>); 5] = [
            (
                r#"{"active":true,"revoked":false,"expires_at":"2026-07-01","scopes":["read_repository"]}"#,
                Some((Validity::Valid, Expiry::At(datetime!(2026-07-01 0:00 UTC)))),
            ),
            (
                r#"{"active":true,"revoked":false,"expires_at":null,"scopes":[]}"#,
                Some((Validity::Valid, Expiry::Never)),
            ),
            (
                r#"{"active":false,"revoked":false,"expires_at":"2020-01-01"}"#,
                Some((Validity::Inactive, Expiry::At(datetime!(2020-01-01 0:00 UTC)))),
            ),
            (r#"{"active":false,"revoked":true}"#, Some((Validity::Revoked, Expiry::Never))),
            ("not json", None),
        ];
        for (body, want) in cases {
            assert_eq!(read_gitlab_self(body.as_bytes()).map(|(v, e, _)| (v, e)), want, "{body}");
        }
    }

    fn state(validity: Validity, expiry: Expiry) -> TokenState {
        TokenState {
            host: "github.com".into(),
            kind: HostKind::GitHub,
            validity,
            expiry,
            expiry_source: Some(ExpirySource::HostApi),
            scopes: None,
            note: String::new(),
        }
    }

    #[test]
    fn verdict_table() {
        use Severity::*;
        use WatchMode::*;
        let now = datetime!(2026-06-01 12:00 UTC);
        let at = |days: i64| Expiry::At(now + time::Duration::days(days));
        let apply = Apply { allow_expiring: false };
        let allowed = Apply { allow_expiring: true };
        let cases: Vec<(Validity, Expiry, WatchMode, Severity)> = vec![
            // Invalid tokens: apply and status refuse, plan and dry run warn.
            (Validity::Invalid, Expiry::Unknown, apply, Refuse),
            (Validity::Invalid, Expiry::Unknown, allowed, Refuse),
            (Validity::Revoked, Expiry::Never, Status, Refuse),
            (Validity::Inactive, at(100), Plan, Warn),
            (Validity::Invalid, Expiry::Unknown, DryRun, Warn),
            // Expired by date.
            (Validity::Unknown, at(-1), apply, Refuse),
            (Validity::Unknown, at(-1), allowed, Refuse),
            (Validity::Unknown, at(-1), Plan, Warn),
            // Within 7 days.
            (Validity::Valid, at(5), apply, Refuse),
            (Validity::Valid, at(7), apply, Refuse),
            (Validity::Valid, at(5), allowed, Warn),
            (Validity::Valid, at(5), Status, Refuse),
            (Validity::Valid, at(5), Plan, Warn),
            (Validity::Valid, at(5), DryRun, Warn),
            // Within 30 days.
            (Validity::Valid, at(8), apply, Warn),
            (Validity::Valid, at(30), Status, Warn),
            (Validity::Valid, at(29), Plan, Warn),
            // Later, never, unknown.
            (Validity::Valid, at(31), apply, Info),
            (Validity::Valid, Expiry::Never, apply, Info),
            (Validity::Unknown, Expiry::Unknown, apply, Info),
            (Validity::Unknown, Expiry::Unknown, Status, Info),
        ];
        for (validity, expiry, mode, want) in cases {
            let v = verdict(&state(validity, expiry), 812, now, mode);
            assert_eq!(v.severity, want, "{validity:?} {expiry:?} {mode:?}: {}", v.message);
            assert!(v.message.contains("812 mirrors depend on it"), "{}", v.message);
            assert!(v.message.contains("github.com"), "{}", v.message);
        }
    }

    #[test]
    fn verdict_messages_say_the_date_and_what_to_do() {
        let now = datetime!(2026-06-01 12:00 UTC);
        let s = state(Validity::Valid, Expiry::At(datetime!(2026-06-06 0:00 UTC)));
        let v = verdict(&s, 1, now, WatchMode::Apply { allow_expiring: false });
        assert_eq!(v.days_left, Some(4));
        assert!(
            v.message.contains("expires on 2026-06-06 (4 days left); 1 mirror depends on it"),
            "{}",
            v.message
        );
        assert!(v.message.contains("--allow-expiring-token"), "{}", v.message);
        let mut s = state(Validity::Unknown, Expiry::Unknown);
        s.host = "bitbucket.org".into();
        s.note = "bitbucket hosts have no API glmirror asks about tokens".into();
        let v = verdict(&s, 40, now, WatchMode::Plan);
        assert!(v.message.contains("no known expiry date"), "{}", v.message);
        assert!(v.message.contains("expires_at"), "{}", v.message);
        let v = verdict(&state(Validity::Invalid, Expiry::Unknown), 3, now, WatchMode::DryRun);
        assert!(v.message.contains("a real apply would refuse"), "{}", v.message);
        let v = verdict(
            &state(Validity::Valid, Expiry::At(datetime!(2026-06-20 13:45 UTC))),
            2,
            now,
            WatchMode::Plan,
        );
        assert!(v.message.contains("2026-06-20 13:45 UTC"), "{}", v.message);
    }
}
