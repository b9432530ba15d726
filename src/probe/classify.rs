//! The pure reading of one smart-HTTP discovery answer: (host kind, direction, status,
//! content type, body prefix, `Location`) → [`ProbeCode`] with a reason a reviewer can act on.
//!
//! The host-specific readings of 401/403/404 live in one table, `READINGS`; everything else
//! (2xx parsing, redirects, 429, 5xx) is the same on every host. No I/O, no secrets: the body
//! excerpt quoted in a reason has already been redacted by the caller (see [`Redactor`]).
//!
//! Size: about 670 lines of code, most of it the `READINGS` table and the 2xx parser; the rest
//! are table tests, one per host and status, kept beside the table they check.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::codes::{HostKind, ProbeCode, service};
use crate::rewrite::Direction;

/// What the token watch knows about the token the probe sends (see `probe::watch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TokenKnowledge {
    /// Not checked, or the host has no API to check it.
    #[default]
    Unknown,
    /// The host's API accepted the token.
    Valid,
    /// The host's API rejected the token (invalid, revoked, inactive or expired).
    Invalid,
}

/// One answer to `GET …/info/refs?service=…`, as far as the probe read it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer<'a> {
    /// HTTP status.
    pub(crate) status: u16,
    /// The `Content-Type` header, raw.
    pub(crate) content_type: Option<&'a str>,
    /// The first bytes of the body (at most the probe's body limit), already redacted.
    pub(crate) body: &'a [u8],
    /// The `Location` header, raw (may be relative, may carry userinfo).
    pub(crate) location: Option<&'a str>,
    /// Whether a `Retry-After` header was present.
    pub(crate) retry_after: bool,
}

/// What the probe asked, for reading the answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked<'a> {
    /// The mirror URL without userinfo (no `/info/refs`).
    pub(crate) url: &'a Url,
    /// Pull or push.
    pub(crate) direction: Direction,
    /// How the host's answers read.
    pub(crate) kind: HostKind,
    /// What the token watch found.
    pub(crate) token: TokenKnowledge,
}

/// The reading of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reading {
    /// The code.
    pub(crate) code: ProbeCode,
    /// Why, in words a reviewer can act on (no secrets, terminal-safe).
    pub(crate) reason: String,
    /// A 3xx's target when it is on the same origin, userinfo removed (else `None`).
    pub(crate) location: Option<String>,
    /// The mirror URL the same-origin `Location` points at (its `/info/refs?…` tail removed).
    pub(crate) suggested_url: Option<String>,
    /// The suggested URL is exactly the probed URL plus `.git` (GitLab's fix: `add-dot-git`).
    pub(crate) adds_dot_git: bool,
    /// What a smart answer told about the server.
    pub(crate) advert: Option<Advert>,
}

/// A parsed smart-HTTP advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Protocol version of the answer (0 or 2; v1 reads as 0).
    pub version: u8,
    /// The repository has no refs (only visible in a v0 answer).
    pub(crate) empty: bool,
    /// The server's `agent=` capability.
    pub agent: Option<String>,
    /// The default branch from `symref=HEAD:…` (v0 upload-pack answers only).
    pub(crate) head: Option<String>,
}

/// How much of an error body a reason quotes.
const EXCERPT_CHARS: usize = 200;

/// Which bodies a table row matches.
#[derive(Debug, Clone, Copy)]
enum BodyMatch {
    /// Any body.
    Anything,
    /// The body's text contains this (ASCII case-insensitive).
    Contains(&'static str),
    /// The trimmed body is exactly this (ASCII case-insensitive), or empty.
    IsOrEmpty(&'static str),
}

/// Which hosts a table row is for.
#[derive(Debug, Clone, Copy)]
enum Hosts {
    EveryHost,
    GitHubLike,
    GitLab,
    BitbucketCloud,
}

impl Hosts {
    fn matches(self, kind: HostKind) -> bool {
        match self {
            Hosts::EveryHost => true,
            Hosts::GitHubLike => matches!(kind, HostKind::GitHub | HostKind::GitHubEnterprise),
            Hosts::GitLab => kind == HostKind::GitLab,
            Hosts::BitbucketCloud => kind == HostKind::BitbucketCloud,
        }
    }
}

/// One host-specific reading of an error status.
#[derive(Debug, Clone, Copy)]
struct HostReading {
    hosts: Hosts,
    status: u16,
    body: BodyMatch,
    /// `Some(k)`: only when the token watch found `k`.
    token: Option<TokenKnowledge>,
    code: ProbeCode,
    /// `{access}` becomes "read" (pull) or "write" (push); `{repo}` the URL's path.
    reason: &'static str,
}

const fn row(
    hosts: Hosts,
    status: u16,
    body: BodyMatch,
    token: Option<TokenKnowledge>,
    code: ProbeCode,
    reason: &'static str,
) -> HostReading {
    HostReading { hosts, status, body, token, code, reason }
}

/// How each host means 401, 403 and 404 (first match wins). Sources per host are in
/// docs/remote-probe.md.
static READINGS: &[HostReading] = {
    use BodyMatch::*;
    use Hosts::*;
    use ProbeCode::*;
    &[
        // GitHub: bad tokens get 401; a valid token that cannot see a private repository
        // gets the same 404 as a missing one; 403 is a permission, scope or SSO refusal.
        row(
            GitHubLike,
            401,
            Anything,
            None,
            AuthRejected,
            "GitHub rejected the credentials: the token is invalid, revoked or expired",
        ),
        row(
            GitHubLike,
            403,
            Anything,
            None,
            Forbidden,
            "GitHub refused: the token lacks {access} permission on {repo} (fine-grained \
             tokens need Contents), or is not authorized for the organization's SAML SSO",
        ),
        row(
            GitHubLike,
            404,
            Anything,
            None,
            NoAccessOrMissing,
            "GitHub answers 404 both for a repository the account cannot see and for one \
             that does not exist: grant the service account {access} access to {repo}, or \
             fix the URL",
        ),
        // GitLab: its failed-login ban is a bare 403; a service account's valid token gets
        // 401 for a project it cannot see; a person's token gets 404.
        row(
            GitLab,
            403,
            IsOrEmpty("Forbidden"),
            None,
            Banned,
            "GitLab answered a bare 403 Forbidden, its failed-login ban for this IP address: \
             no more requests go to this host in this run",
        ),
        row(
            GitLab,
            401,
            Anything,
            Some(TokenKnowledge::Valid),
            NoAccessOrMissing,
            "the token is valid, so GitLab's 401 means the service account cannot see {repo} \
             or it does not exist: add the service account to the project with {access} \
             access, or fix the URL",
        ),
        row(
            GitLab,
            401,
            Anything,
            None,
            AuthRejected,
            "GitLab rejected the credentials: the token is invalid, revoked, expired or \
             wrongly scoped (a service account's token also gets 401 for a project it cannot \
             see)",
        ),
        row(
            GitLab,
            403,
            Anything,
            None,
            Forbidden,
            "GitLab refused {access} access to {repo} (token scope, role, branch rules or \
             an archived project)",
        ),
        row(
            GitLab,
            404,
            Contains("does not exist yet"),
            None,
            NotFound,
            "the GitLab project {repo} has no repository yet",
        ),
        row(
            GitLab,
            404,
            Anything,
            None,
            NoAccessOrMissing,
            "GitLab answers 404 both for a project the account cannot see and for one that \
             does not exist: add the service account to {repo} with {access} access, or fix \
             the URL",
        ),
        // Bitbucket Cloud: one 401 for a bad token, no access and a missing repository.
        row(
            BitbucketCloud,
            401,
            Anything,
            None,
            AuthRejected,
            "Bitbucket Cloud answers 401 alike for a wrong token, no access and a missing \
             repository: check the token and its username (x-token-auth for access tokens), \
             the service account's {access} access to {repo}, and the workspace in the URL",
        ),
        row(
            BitbucketCloud,
            403,
            Anything,
            None,
            Forbidden,
            "Bitbucket Cloud refused: the token lacks a scope for {access} access \
             (read:repository, plus write for push)",
        ),
        // Plain git smart HTTP (git's own http-backend behind an authenticating server).
        row(EveryHost, 401, Anything, None, AuthRejected, "the host rejected the credentials"),
        row(
            EveryHost,
            403,
            Anything,
            None,
            Forbidden,
            "the host refused {access} access to {repo} with these credentials",
        ),
        row(EveryHost, 404, Anything, None, NotFound, "the host says {repo} does not exist"),
        row(EveryHost, 410, Anything, None, NotFound, "the host says {repo} is gone"),
    ]
};

/// Read one answer.
pub(crate) fn classify(asked: &Asked<'_>, answer: &Answer<'_>) -> Reading {
    let plain = |code, reason: String| Reading {
        code,
        reason,
        location: None,
        suggested_url: None,
        adds_dot_git: false,
        advert: None,
    };
    let status = answer.status;
    let said = host_said(answer);
    match status {
        200..=299 | 304 => read_success(asked, answer),
        300..=399 => read_redirect(asked, answer),
        429 => plain(ProbeCode::RateLimited, format!("the host is rate limiting (429){said}")),
        403 if answer.retry_after => plain(
            ProbeCode::RateLimited,
            format!("the host is rate limiting (403 with Retry-After){said}"),
        ),
        500..=599 => plain(ProbeCode::ServerError, format!("the host answered {status}{said}")),
        _ => match host_reading(asked, answer) {
            Some(r) => plain(r.code, format!("{}{said}", fill(r.reason, asked))),
            None => plain(
                ProbeCode::ServerError,
                format!("the host answered an unexpected HTTP {status}{said}"),
            ),
        },
    }
}

fn host_reading(asked: &Asked<'_>, answer: &Answer<'_>) -> Option<&'static HostReading> {
    let text = String::from_utf8_lossy(answer.body);
    READINGS.iter().find(|r| {
        r.status == answer.status
            && r.hosts.matches(asked.kind)
            && r.token.is_none_or(|t| t == asked.token)
            && match r.body {
                BodyMatch::Anything => true,
                BodyMatch::Contains(s) => {
                    text.to_ascii_lowercase().contains(&s.to_ascii_lowercase())
                }
                BodyMatch::IsOrEmpty(s) => {
                    let t = text.trim();
                    t.is_empty() || t.eq_ignore_ascii_case(s)
                }
            }
    })
}

fn fill(template: &str, asked: &Asked<'_>) -> String {
    let access = match asked.direction {
        Direction::Pull => "read",
        Direction::Push => "write",
    };
    let repo = asked.url.path().trim_start_matches('/');
    template.replace("{access}", access).replace("{repo}", repo)
}

/// `: the host said "…"` for a text/plain error body (what git shows as `remote:`), else "".
fn host_said(answer: &Answer<'_>) -> String {
    if media_type(answer.content_type).as_deref() != Some("text/plain") {
        return String::new();
    }
    let text = String::from_utf8_lossy(answer.body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if line.is_empty() {
        return String::new();
    }
    let mut excerpt: String = line.chars().take(EXCERPT_CHARS).collect();
    if line.chars().count() > EXCERPT_CHARS {
        excerpt.push('…');
    }
    let excerpt = crate::redact::sanitize_for_terminal(&crate::redact::mask_userinfo(&excerpt));
    format!(": the host said \"{excerpt}\"")
}

/// The media type: lowercase, parameters removed.
fn media_type(content_type: Option<&str>) -> Option<String> {
    let ct = content_type?;
    let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    (!media.is_empty()).then_some(media)
}

fn read_success(asked: &Asked<'_>, answer: &Answer<'_>) -> Reading {
    let svc = service(asked.direction);
    let media = media_type(answer.content_type).unwrap_or_default();
    let (code, reason, advert) = if media == format!("application/x-{svc}-advertisement") {
        match parse_smart(answer.body, svc) {
            Ok(advert) => {
                let code = if advert.empty { ProbeCode::OkEmpty } else { ProbeCode::Ok };
                let reason = format!(
                    "smart HTTP {svc} (protocol v{}){}{}",
                    advert.version,
                    if advert.empty { ", empty repository" } else { "" },
                    advert
                        .agent
                        .as_deref()
                        .map(|a| format!(", agent {}", crate::redact::sanitize_for_terminal(a)))
                        .unwrap_or_default(),
                );
                (code, reason, Some(advert))
            }
            Err(why) => (
                ProbeCode::NotGit,
                format!(
                    "200 with the {svc} content type, but the body is no git advertisement \
                     ({why}): a proxy or a broken server in between"
                ),
                None,
            ),
        }
    } else if media.starts_with("application/x-git-") {
        (
            ProbeCode::NotGit,
            format!("200 with content type {media}, not the {svc} advertisement"),
            None,
        )
    } else if is_html(&media, answer.body) {
        (
            ProbeCode::NotGit,
            "200 with an HTML page, not git: a login or SSO page, a proxy, or a wrong URL"
                .to_owned(),
            None,
        )
    } else if is_dumb_ref_list(answer.body) {
        (
            ProbeCode::DumbHttp,
            format!(
                "the host serves dumb HTTP ({}), which GitLab cannot mirror: move the \
                 repository to a smart-HTTP server, or use SSH",
                if media.is_empty() { "no content type".to_owned() } else { media }
            ),
            None,
        )
    } else {
        (
            ProbeCode::NotGit,
            format!(
                "200 that is no git answer (content type {})",
                if media.is_empty() { "none".to_owned() } else { media }
            ),
            None,
        )
    };
    Reading { code, reason, location: None, suggested_url: None, adds_dot_git: false, advert }
}

fn is_html(media: &str, body: &[u8]) -> bool {
    if media == "text/html" || media == "application/xhtml+xml" {
        return true;
    }
    let start = String::from_utf8_lossy(&body[..body.len().min(64)]).trim_start().to_lowercase();
    start.starts_with("<!doctype") || start.starts_with("<html")
}

/// A dumb `info/refs`: zero or more `<oid>\t<refname>` lines.
fn is_dumb_ref_list(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    text.lines().filter(|l| !l.is_empty()).all(|line| match line.split_once('\t') {
        Some((oid, name)) => is_oid(oid) && !name.is_empty() && !name.contains(char::is_whitespace),
        None => false,
    })
}

fn is_oid(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One pkt-line: `Some(Some(data))`, a special packet (`Some(None)`: flush, delim,
/// response-end), or an error.
fn next_pkt<'a>(buf: &mut &'a [u8]) -> Result<Option<&'a [u8]>, &'static str> {
    if buf.len() < 4 {
        return Err("it ends before the first lines are complete");
    }
    let len = std::str::from_utf8(&buf[..4])
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .ok_or("it does not start with a pkt-line length")?;
    if len < 4 {
        *buf = &buf[4..];
        return Ok(None);
    }
    if buf.len() < len {
        return Err("a pkt-line is cut short");
    }
    let data = &buf[4..len];
    *buf = &buf[len..];
    Ok(Some(data))
}

fn text_of(data: &[u8]) -> String {
    String::from_utf8_lossy(data).trim_end_matches('\n').to_owned()
}

/// Parse the start of a smart advertisement the way git checks it: an optional
/// `# service=<svc>` line and flush, then `version 2` capabilities or a v0 ref list. A bare
/// v0 ref list without the service line is refused, as git refuses it.
fn parse_smart(body: &[u8], svc: &str) -> Result<Advert, &'static str> {
    let mut buf = body;
    let mut first = next_pkt(&mut buf)?.map(text_of);
    let mut had_service = false;
    if let Some(line) = first.as_deref().and_then(|l| l.strip_prefix("# service=")) {
        if line != svc {
            return Err("it advertises another service");
        }
        had_service = true;
        if next_pkt(&mut buf)?.is_some() {
            return Err("no flush after the service line");
        }
        if buf.is_empty() {
            // Nothing after the flush: a repository without refs.
            return Ok(Advert { version: 0, empty: true, agent: None, head: None });
        }
        first = next_pkt(&mut buf)?.map(text_of);
    }
    if first.as_deref() == Some("version 1") {
        first = next_pkt(&mut buf)?.map(text_of);
    }
    match first.as_deref() {
        Some("version 2") => {
            let mut agent = None;
            while let Some(data) = next_pkt(&mut buf)? {
                if let Some(a) = text_of(data).strip_prefix("agent=") {
                    agent = Some(a.to_owned());
                }
            }
            Ok(Advert { version: 2, empty: false, agent, head: None })
        }
        _ if !had_service => Err("no service line"),
        None => Ok(Advert { version: 0, empty: true, agent: None, head: None }),
        Some(_) => {
            // Re-read the raw first ref line: it carries the capabilities after a NUL.
            let raw = first_ref_raw(body)?;
            let (refpart, caps) = match raw.iter().position(|&b| b == 0) {
                Some(nul) => (&raw[..nul], text_of(&raw[nul + 1..])),
                None => (raw, String::new()),
            };
            let refpart = text_of(refpart);
            let (oid, name) = refpart.split_once(' ').ok_or("the first ref line has no name")?;
            if !is_oid(oid) {
                return Err("the first ref line has no object id");
            }
            let empty = oid.bytes().all(|b| b == b'0') && name == "capabilities^{}";
            let cap =
                |key: &str| caps.split(' ').find_map(|c| c.strip_prefix(key)).map(str::to_owned);
            let head = cap("symref=HEAD:");
            Ok(Advert { version: 0, empty, agent: cap("agent="), head })
        }
    }
}

/// The raw bytes of the first ref line after the service header (and `version 1`, if any).
fn first_ref_raw(body: &[u8]) -> Result<&[u8], &'static str> {
    let mut buf = body;
    let mut data = next_pkt(&mut buf)?;
    if data.is_some_and(|d| d.starts_with(b"# service=")) {
        next_pkt(&mut buf)?;
        data = next_pkt(&mut buf)?;
    }
    if data.is_some_and(|d| d.starts_with(b"version 1")) {
        data = next_pkt(&mut buf)?;
    }
    data.ok_or("no ref line")
}

fn read_redirect(asked: &Asked<'_>, answer: &Answer<'_>) -> Reading {
    let status = answer.status;
    let info = answer.location.map(|loc| location_info(asked.url, loc));
    let reason = match &info {
        None => format!("the host redirects ({status}) without a Location"),
        Some(LocationInfo { shown: None, .. }) => format!(
            "the host redirects ({status}) to another origin (not shown; never followed with \
             credentials): GitLab does not follow redirects"
        ),
        Some(LocationInfo { suggested: Some(s), adds_dot_git: true, .. }) => format!(
            "the host redirects ({status}) to {s}, the URL with .git: GitLab does not follow \
             redirects; use that URL"
        ),
        Some(LocationInfo { suggested: Some(s), .. }) => format!(
            "the host redirects ({status}) to {s} (moved or renamed?): GitLab does not follow \
             redirects; review the new URL"
        ),
        Some(LocationInfo { shown: Some(s), suggested: None, .. }) => format!(
            "the host redirects ({status}) to {s}, which is no git URL: GitLab does not follow \
             redirects"
        ),
    };
    let info = info.unwrap_or_default();
    Reading {
        code: ProbeCode::Redirect,
        reason: crate::redact::sanitize_for_terminal(&reason),
        location: info.shown,
        suggested_url: info.suggested,
        adds_dot_git: info.adds_dot_git,
        advert: None,
    }
}

#[derive(Debug, Default)]
struct LocationInfo {
    shown: Option<String>,
    suggested: Option<String>,
    adds_dot_git: bool,
}

/// A `Location` resolved against the probe URL: shown only on the same origin (scheme, host,
/// port), always without userinfo; the mirror URL it suggests when it ends in `/info/refs`.
fn location_info(url: &Url, location: &str) -> LocationInfo {
    let base = probe_url(url, Direction::Pull);
    let Ok(mut target) = base.join(location.trim()) else {
        return LocationInfo::default();
    };
    let _ = target.set_username("");
    let _ = target.set_password(None);
    let same_origin = target.scheme() == url.scheme()
        && target.host_str() == url.host_str()
        && target.port_or_known_default() == url.port_or_known_default();
    if !same_origin {
        return LocationInfo::default();
    }
    let suggested = target.path().strip_suffix("/info/refs").map(|path| {
        let mut s = target.clone();
        s.set_path(path);
        s.set_query(None);
        s.set_fragment(None);
        s.to_string()
    });
    let original = url.as_str().trim_end_matches('/');
    let adds_dot_git = suggested.as_deref() == Some(format!("{original}.git").as_str());
    target.set_fragment(None);
    LocationInfo { shown: Some(target.to_string()), suggested, adds_dot_git }
}

/// `<url>/info/refs?service=…` as git builds it: one trailing `/` removed, then the tail.
pub(crate) fn probe_url(url: &Url, direction: Direction) -> Url {
    let mut u = url.clone();
    let path = u.path().strip_suffix('/').unwrap_or(u.path()).to_owned();
    u.set_path(&format!("{path}/info/refs"));
    u.set_query(Some(&format!("service={}", service(direction))));
    u.set_fragment(None);
    u
}

/// Removes the probe's own secrets from text a host sent back (a body echoing the
/// credentials must not reach a reason, a log or a file).
pub(crate) struct Redactor {
    needles: Vec<SecretString>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.needles.len())
    }
}

impl Redactor {
    /// Redact the username and password, each alone, in `user:password` form and in the
    /// base64 of the `Authorization: Basic` header.
    pub(crate) fn new(username: &SecretString, password: &SecretString) -> Redactor {
        use base64::Engine as _;
        let (u, p) = (username.expose_secret(), password.expose_secret());
        let pair = format!("{u}:{p}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
        // Short usernames (`oauth2`, `git`) are not secrets and would mangle text; a
        // username that long is a token (the token-as-username form).
        let mut needles = vec![pair, b64];
        if p.len() >= 4 {
            needles.push(p.to_owned());
        }
        if u.len() >= 8 {
            needles.push(u.to_owned());
        }
        let needles = needles.into_iter().map(SecretString::from).collect();
        Redactor { needles }
    }

    /// Replace every occurrence of a secret in `bytes` with `*****`.
    pub(crate) fn redact(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for needle in &self.needles {
            let n = needle.expose_secret().as_bytes();
            if n.is_empty() {
                continue;
            }
            let mut result = Vec::with_capacity(out.len());
            let mut i = 0;
            while i < out.len() {
                if out[i..].starts_with(n) {
                    result.extend_from_slice(crate::redact::MASK.as_bytes());
                    i += n.len();
                } else {
                    result.push(out[i]);
                    i += 1;
                }
            }
            out = result;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostKind::*;
    use ProbeCode::*;

    const UP: &str = "application/x-git-upload-pack-advertisement";
    const RP: &str = "application/x-git-receive-pack-advertisement";

    fn pkt(s: &str) -> String {
        format!("{:04x}{s}", s.len() + 4)
    }

    fn v0(svc: &str, first_ref: &str) -> Vec<u8> {
        format!("{}0000{}0000", pkt(&format!("# service={svc}\n")), pkt(first_ref)).into_bytes()
    }

    fn v2_body() -> Vec<u8> {
        format!(
            "{}{}{}{}0000",
            pkt("version 2\n"),
            pkt("agent=git/2.47.3\n"),
            pkt("ls-refs=unborn\n"),
            pkt("fetch=shallow wait-for-done\n")
        )
        .into_bytes()
    }

    fn read(
        kind: HostKind,
        dir: Direction,
        token: TokenKnowledge,
        status: u16,
        ct: Option<&str>,
        body: &[u8],
        location: Option<&str>,
    ) -> Reading {
        let url = Url::parse("https://host.example/acme/api.git").unwrap();
        let asked = Asked { url: &url, direction: dir, kind, token };
        classify(&asked, &Answer { status, content_type: ct, body, location, retry_after: false })
    }

    #[test]
    fn host_readings_table() {
        use Direction::{Pull, Push};
        use TokenKnowledge::{Unknown, Valid};
        let oid = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        let first = format!("{oid} HEAD\0multi_ack symref=HEAD:refs/heads/main agent=git/2.47\n");
        let empty = format!("{} capabilities^{{}}\0report-status agent=x\n", "0".repeat(40));
        let smart_up = v0("git-upload-pack", &first);
        let smart_rp_empty = v0("git-receive-pack", &empty);
        let dumb = format!("{oid}\trefs/heads/main\n{oid}\trefs/tags/v1\n");
        let html = b"<!DOCTYPE html><html><title>Sign in</title></html>".to_vec();
        let v2 = v2_body();
        let bare_v0 = format!("{}0000", pkt(&first)).into_bytes();
        let wrong_service = v0("git-receive-pack", &first);
        type Case<'a> =
            (HostKind, Direction, TokenKnowledge, u16, Option<&'a str>, &'a [u8], ProbeCode);
        let cases: Vec<Case> = vec![
            // Success, on every kind.
            (GitHub, Pull, Unknown, 200, Some(UP), &smart_up, Ok),
            (
                GitLab,
                Pull,
                Unknown,
                200,
                Some("Application/X-Git-Upload-Pack-Advertisement; charset=x"),
                &smart_up,
                Ok,
            ),
            (Other, Pull, Unknown, 200, Some(UP), &v2, Ok),
            (Other, Push, Unknown, 200, Some(RP), &smart_rp_empty, OkEmpty),
            (Other, Push, Unknown, 200, Some(UP), &smart_up, NotGit),
            (Other, Pull, Unknown, 200, Some(UP), &wrong_service, NotGit),
            (Other, Pull, Unknown, 200, Some(UP), &bare_v0, NotGit),
            (Other, Pull, Unknown, 200, Some(UP), b"garbage", NotGit),
            (
                Other,
                Pull,
                Unknown,
                200,
                Some("text/plain; charset=utf-8"),
                dumb.as_bytes(),
                DumbHttp,
            ),
            (
                Other,
                Pull,
                Unknown,
                200,
                Some("application/octet-stream"),
                dumb.as_bytes(),
                DumbHttp,
            ),
            (Other, Pull, Unknown, 200, Some("text/plain"), b"", DumbHttp),
            (Other, Pull, Unknown, 200, Some("text/html; charset=utf-8"), &html, NotGit),
            (Other, Pull, Unknown, 200, None, &html, NotGit),
            (Other, Pull, Unknown, 200, Some("text/plain"), b"hello world", NotGit),
            // GitHub.
            (
                GitHub,
                Pull,
                Unknown,
                401,
                Some("text/plain"),
                b"Invalid username or token.",
                AuthRejected,
            ),
            (
                GitHub,
                Pull,
                Valid,
                404,
                Some("text/plain"),
                b"Repository not found.",
                NoAccessOrMissing,
            ),
            (GitHubEnterprise, Pull, Unknown, 404, None, b"", NoAccessOrMissing),
            (
                GitHub,
                Pull,
                Unknown,
                403,
                Some("text/plain"),
                b"Write access to repository not granted.",
                Forbidden,
            ),
            (GitHub, Push, Unknown, 403, Some("text/plain"), b"Forbidden", Forbidden),
            // GitLab.
            (
                GitLab,
                Pull,
                Unknown,
                401,
                Some("text/plain"),
                b"HTTP Basic: Access denied.",
                AuthRejected,
            ),
            (GitLab, Pull, TokenKnowledge::Invalid, 401, None, b"", AuthRejected),
            (
                GitLab,
                Pull,
                Valid,
                401,
                Some("text/plain"),
                b"HTTP Basic: Access denied.",
                NoAccessOrMissing,
            ),
            (
                GitLab,
                Pull,
                Unknown,
                404,
                Some("text/plain"),
                b"The project you were looking for could not be found",
                NoAccessOrMissing,
            ),
            (
                GitLab,
                Pull,
                Unknown,
                404,
                Some("text/plain"),
                b"A repository for this project does not exist yet.",
                NotFound,
            ),
            (
                GitLab,
                Push,
                Unknown,
                403,
                Some("text/plain"),
                b"You are not allowed to push code to this project.",
                Forbidden,
            ),
            (GitLab, Pull, Unknown, 403, Some("text/plain"), b"Forbidden\n", Banned),
            (GitLab, Pull, Unknown, 403, None, b"", Banned),
            // Bitbucket Cloud.
            (
                BitbucketCloud,
                Pull,
                Unknown,
                401,
                Some("text/plain"),
                b"You may not have access to this repository or it no longer exists",
                AuthRejected,
            ),
            (
                BitbucketCloud,
                Pull,
                Unknown,
                403,
                Some("text/plain"),
                b"Your credentials lack one or more required privilege scopes.",
                Forbidden,
            ),
            (BitbucketCloud, Pull, Unknown, 404, None, b"", NotFound),
            // Plain git (http-backend behind basic auth), and hosts without a reading.
            (Other, Pull, Unknown, 401, None, b"", AuthRejected),
            (BitbucketServer, Pull, Unknown, 401, None, b"", AuthRejected),
            (Other, Push, Unknown, 403, None, b"", Forbidden),
            (Other, Pull, Unknown, 404, None, b"", NotFound),
            (Other, Pull, Unknown, 410, None, b"", NotFound),
            (Other, Pull, Unknown, 403, Some("text/plain"), b"Forbidden", Forbidden),
            // Same on every host.
            (GitHub, Pull, Unknown, 429, None, b"", RateLimited),
            (GitLab, Pull, Unknown, 500, None, b"", ServerError),
            (
                GitLab,
                Pull,
                Unknown,
                503,
                Some("text/plain"),
                b"The git server, Gitaly, is not available",
                ServerError,
            ),
            (Other, Pull, Unknown, 400, None, b"", ServerError),
            (Other, Pull, Unknown, 405, None, b"", ServerError),
            (Other, Pull, Unknown, 301, None, b"", Redirect),
        ];
        for (kind, dir, token, status, ct, body, want) in cases {
            let got = read(kind, dir, token, status, ct, body, None);
            assert_eq!(got.code, want, "{kind:?} {dir:?} {token:?} {status} {ct:?} -> {got:?}");
            assert!(!got.reason.is_empty());
        }
    }

    #[test]
    fn every_table_row_is_reachable() {
        // Each row must be the first match for some input: no row shadows a later one.
        for (i, r) in READINGS.iter().enumerate() {
            let kind = match r.hosts {
                Hosts::EveryHost => Other,
                Hosts::GitHubLike => GitHub,
                Hosts::GitLab => GitLab,
                Hosts::BitbucketCloud => BitbucketCloud,
            };
            let body = match r.body {
                BodyMatch::Anything => "something else",
                BodyMatch::Contains(s) | BodyMatch::IsOrEmpty(s) => s,
            };
            let url = Url::parse("https://h.example/a/b.git").unwrap();
            let asked = Asked {
                url: &url,
                direction: Direction::Pull,
                kind,
                token: r.token.unwrap_or_default(),
            };
            let answer = Answer {
                status: r.status,
                content_type: None,
                body: body.as_bytes(),
                location: None,
                retry_after: false,
            };
            let first = READINGS
                .iter()
                .position(|x| std::ptr::eq(x, host_reading(&asked, &answer).unwrap()));
            assert_eq!(first, Some(i), "row {i} ({:?} {}) is shadowed", r.hosts, r.status);
        }
    }

    #[test]
    fn reasons_say_what_to_grant_and_quote_the_host() {
        let r = read(
            GitHub,
            Direction::Push,
            TokenKnowledge::Valid,
            404,
            Some("text/plain"),
            b"Repository not found.\nmore",
            None,
        );
        assert!(
            r.reason.contains("grant the service account write access to acme/api.git"),
            "{}",
            r.reason
        );
        assert!(r.reason.ends_with(": the host said \"Repository not found.\""), "{}", r.reason);
        // Bodies that are not text/plain are not quoted; control characters never pass.
        let r = read(
            Other,
            Direction::Pull,
            TokenKnowledge::Unknown,
            403,
            Some("text/html"),
            b"<b>x</b>",
            None,
        );
        assert!(!r.reason.contains("<b>"));
        let r = read(
            Other,
            Direction::Pull,
            TokenKnowledge::Unknown,
            403,
            Some("text/plain"),
            b"a\x1b[31mb",
            None,
        );
        assert!(!r.reason.contains('\x1b'));
    }

    #[test]
    fn smart_answers_are_parsed() {
        let oid = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        let first = format!("{oid} HEAD\0symref=HEAD:refs/heads/trunk agent=git/2.47.3\n");
        let a = parse_smart(&v0("git-upload-pack", &first), "git-upload-pack").unwrap();
        assert_eq!(
            a,
            Advert {
                version: 0,
                empty: false,
                agent: Some("git/2.47.3".into()),
                head: Some("refs/heads/trunk".into())
            }
        );
        let a = parse_smart(&v2_body(), "git-upload-pack").unwrap();
        assert_eq!(a.version, 2);
        assert_eq!(a.agent.as_deref(), Some("git/2.47.3"));
        // GitHub sends the service line before a v2 answer.
        let gh = format!(
            "{}0000{}",
            pkt("# service=git-upload-pack\n"),
            String::from_utf8(v2_body()).unwrap()
        );
        assert_eq!(parse_smart(gh.as_bytes(), "git-upload-pack").unwrap().version, 2);
        // sha256 object ids.
        let long = format!("{} HEAD\0agent=x\n", "a".repeat(64));
        assert!(parse_smart(&v0("git-upload-pack", &long), "git-upload-pack").is_ok());
        // A service line with nothing after the flush: no refs at all.
        let bare = format!("{}0000", pkt("# service=git-upload-pack\n"));
        assert!(parse_smart(bare.as_bytes(), "git-upload-pack").unwrap().empty);
        assert!(parse_smart(b"00", "git-upload-pack").is_err());
        assert!(parse_smart(b"zzzz", "git-upload-pack").is_err());
        assert!(parse_smart(b"00ff# service=git-upload-pack\n", "git-upload-pack").is_err());
    }

    #[test]
    fn redirects_show_only_same_origin_locations_without_credentials() {
        let cases: [(&str, Option<&str>, Option<&str>, bool); 7] = [
            (
                "/acme/api.git.git/info/refs?service=git-upload-pack",
                Some("https://host.example/acme/api.git.git/info/refs?service=git-upload-pack"),
                Some("https://host.example/acme/api.git.git"),
                true,
            ),
            (
                "https://user:secret@host.example/acme/new.git/info/refs?service=git-upload-pack",
                Some("https://host.example/acme/new.git/info/refs?service=git-upload-pack"),
                Some("https://host.example/acme/new.git"),
                false,
            ),
            ("https://host.example:8443/acme/api.git/info/refs", None, None, false),
            ("http://host.example/acme/api.git/info/refs", None, None, false),
            ("https://evil.example/acme/api.git/info/refs", None, None, false),
            ("https://host.example/login", Some("https://host.example/login"), None, false),
            (
                "https://host.example:443/x/info/refs",
                Some("https://host.example/x/info/refs"),
                Some("https://host.example/x"),
                false,
            ),
        ];
        for (loc, shown, suggested, dot_git) in cases {
            let url = Url::parse("https://host.example/acme/api.git").unwrap();
            let asked = Asked {
                url: &url,
                direction: Direction::Pull,
                kind: Other,
                token: TokenKnowledge::Unknown,
            };
            let r = classify(
                &asked,
                &Answer {
                    status: 301,
                    content_type: None,
                    body: b"",
                    location: Some(loc),
                    retry_after: false,
                },
            );
            assert_eq!(r.code, Redirect);
            assert_eq!(r.location.as_deref(), shown, "{loc}");
            assert_eq!(r.suggested_url.as_deref(), suggested, "{loc}");
            assert_eq!(r.adds_dot_git, dot_git, "{loc}");
            assert!(!r.reason.contains("secret") && !r.reason.contains("evil"), "{}", r.reason);
        }
        // GitLab's missing-.git redirect is recognised as add-dot-git.
        let url = Url::parse("https://gitlab.example.com/g/p").unwrap();
        let asked = Asked {
            url: &url,
            direction: Direction::Pull,
            kind: GitLab,
            token: TokenKnowledge::Unknown,
        };
        let r = classify(
            &asked,
            &Answer {
                status: 301,
                content_type: None,
                body: b"",
                location: Some(
                    "https://gitlab.example.com/g/p.git/info/refs?service=git-upload-pack",
                ),
                retry_after: false,
            },
        );
        assert!(r.adds_dot_git);
        assert_eq!(r.suggested_url.as_deref(), Some("https://gitlab.example.com/g/p.git"));
        assert!(r.reason.contains("the URL with .git"));
    }

    #[test]
    fn forbidden_with_retry_after_is_a_rate_limit() {
        let url = Url::parse("https://github.com/a/b.git").unwrap();
        let asked = Asked {
            url: &url,
            direction: Direction::Pull,
            kind: GitHub,
            token: TokenKnowledge::Unknown,
        };
        let r = classify(
            &asked,
            &Answer {
                status: 403,
                content_type: None,
                body: b"",
                location: None,
                retry_after: true,
            },
        );
        assert_eq!(r.code, RateLimited);
    }

    #[test]
    fn probe_urls_are_built_like_git() {
        let cases = [
            (
                "https://h/a/b.git",
                Direction::Pull,
                "https://h/a/b.git/info/refs?service=git-upload-pack",
            ),
            ("https://h/a/b/", Direction::Push, "https://h/a/b/info/refs?service=git-receive-pack"),
            (
                "https://h:8443/x",
                Direction::Pull,
                "https://h:8443/x/info/refs?service=git-upload-pack",
            ),
        ];
        for (url, dir, want) in cases {
            assert_eq!(probe_url(&Url::parse(url).unwrap(), dir).as_str(), want);
        }
    }

    #[test]
    fn redactor_removes_every_form_of_the_secret() {
        let user = SecretString::from("x-access-token".to_owned());
        let pass = SecretString::from("ghp_CANARYtoken0123".to_owned());
        let r = Redactor::new(&user, &pass);
        use base64::Engine as _;
        let b64 =
            base64::engine::general_purpose::STANDARD.encode("x-access-token:ghp_CANARYtoken0123");
        let text = format!("echo ghp_CANARYtoken0123 and Basic {b64} end");
        let out = String::from_utf8(r.redact(text.as_bytes())).unwrap();
        assert!(!out.contains("CANARY") && !out.contains(&b64), "{out}");
        assert!(out.starts_with("echo ***** and Basic ***** end"), "{out}");
        let short = Redactor::new(&SecretString::from("git".to_owned()), &pass);
        assert_eq!(short.redact(b"git is fine"), b"git is fine");
        let short_pass = Redactor::new(&user, &SecretString::from("hunter2".to_owned()));
        assert_eq!(short_pass.redact(b"pw hunter2!"), b"pw *****!");
        // Token as username, empty password.
        let as_user = Redactor::new(&pass, &SecretString::from(String::new()));
        assert_eq!(as_user.redact(b"ghp_CANARYtoken0123"), b"*****");
    }
}
