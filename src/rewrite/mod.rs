//! The URL rewrite rules (docs/url-rules.md, the order in §7): pure functions, no I/O, no async,
//! and no panics on any input.
//!
//! `rewrite` turns one mirror URL (as GitLab shows it, usually with credentials masked as
//! `*****`) into a decision: the new URL without credentials, which credentials a write sends,
//! the fix codes, and an action (`update`, `skip`, `manual`) with a reason. The service token
//! is only ever attached to a URL whose *parsed* host is exactly a configured source host, and
//! only over https; `authenticated_url` is the one place a token meets a URL.
//!
//! Decisions worth knowing:
//! - ssh URLs never carry a token; their `new_auth` is `unchanged` (GitLab keeps the SSH key
//!   pair or host-key settings of the mirror; nothing of ours is sent).
//! - `git+ssh://` and `ssh+git://` become `ssh://` under the `lowercase-host` fix (scheme
//!   normalization: GitLab's scheme allowlist is exact and case-sensitive).
//! - Query strings, dot segments, a raw `@` in the path and low ports are `manual` on every
//!   host, not only on source hosts: GitLab refuses them or git misreads them.
//!
//! Size: about 800 lines, all of it the rule engine (its tests are in `tests.rs`); the rules
//! run in one order over one parsed URL, and splitting them apart would hide that order.

mod codes;
mod syntax;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

pub(crate) use codes::UnknownCode;
pub(crate) use codes::code_traits;
pub use codes::{Action, Fix, NewAuth};
pub(crate) use syntax::normalize_host;
use syntax::{Form, RawUrl, Scheme};

use crate::redact::{MASK, looks_like_token, split_authority};

/// A host whose mirrors get the service account's credentials.
///
/// Credentials are scoped to host *and* port, as git and curl scope them: an https URL gets
/// the token only on the source host's https port (443 unless the source host names one,
/// `--source-host git.example.com:8443`). `https://github.com:8443/…` is another server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceHost {
    /// Normalized parsed host (lowercase, A-label, IPv6 in brackets), compared exactly.
    pub(crate) host: String,
    /// Username sent with the token (already decoded); `None`: the token is the username.
    pub(crate) user: Option<String>,
    /// The https port the credentials are for; `None`: 443.
    pub(crate) port: Option<u16>,
}

impl SourceHost {
    /// The https port the credentials are for.
    pub(crate) fn https_port(&self) -> u16 {
        self.port.unwrap_or(443)
    }
}

/// The source host whose credentials a parsed URL may get: the same host, and for https the
/// same port (the default 443 unless the source host names one). Other schemes are matched by
/// host alone (their port belongs to another service); the https URL built for them uses the
/// source host's port.
fn source_for<'r>(url: &RawUrl, rules: &'r Rules) -> Option<&'r SourceHost> {
    rules.source_hosts.iter().find(|s| {
        s.host == url.host
            && (url.scheme != Scheme::Https || url.port.unwrap_or(443) == s.https_port())
    })
}

/// How a URL's host relates to the source hosts, for the reason of a row left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostRole {
    /// A source host.
    Source,
    /// An https URL on a source host's name but another port: the source host's https port.
    OtherPort(u16),
    /// Not a source host.
    Other,
}

fn host_role(url: &RawUrl, rules: &Rules) -> HostRole {
    if source_for(url, rules).is_some() {
        return HostRole::Source;
    }
    match rules.source_hosts.iter().find(|s| s.host == url.host) {
        Some(s) if url.scheme == Scheme::Https => HostRole::OtherPort(s.https_port()),
        _ => HostRole::Other,
    }
}

/// One `--map OLD=NEW` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrefixMap {
    /// The prefix to replace.
    pub(crate) from: String,
    /// Its replacement.
    pub(crate) to: String,
}

/// Everything the rules need besides the URL.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Hosts that get the service credentials.
    pub(crate) source_hosts: Vec<SourceHost>,
    /// `--map` rules (longest matching `from` wins).
    pub(crate) maps: Vec<PrefixMap>,
    /// `--prefer-https`: ssh on a source host becomes https.
    pub(crate) prefer_https: bool,
}

/// Pull or push mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A pull mirror (the project's import URL).
    Pull,
    /// A push (remote) mirror.
    Push,
}

/// One mirror as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct MirrorInput<'a> {
    /// The URL as GitLab shows it (credentials usually masked).
    pub(crate) url: &'a str,
    /// Pull or push.
    pub(crate) direction: Direction,
    /// GitLab's last error for the mirror, if any.
    pub(crate) last_error: Option<&'a str>,
}

/// The rules' decision for one mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// Target URL without credentials (an ssh `git@` user stays); `None` on skip/manual.
    pub(crate) new_url: Option<String>,
    /// Username sent with the service token; `"<token>"` where the token is the username.
    /// `None` unless `new_auth` is `Service`.
    pub(crate) new_user: Option<String>,
    /// Which credentials the write sends; `None` on skip/manual.
    pub(crate) new_auth: Option<NewAuth>,
    /// Fixes, in table order.
    pub(crate) fixes: Vec<Fix>,
    /// What to do.
    pub(crate) action: Action,
    /// One sentence a reviewer can act on.
    pub(crate) reason: String,
    /// On `Manual` only: the URL as stored is well-formed and safe to keep; what was refused is
    /// the fix it needs (a write without the stored credentials would erase them, or a stale
    /// percent-encoded username must be re-entered by hand). A write that leaves the URL alone
    /// (a mirror-user-only row) is still safe.
    pub(crate) url_safe_to_keep: bool,
}

/// The `new_user` value meaning "the token itself is the username".
pub(crate) const TOKEN_AS_USER: &str = "<token>";

const NOTHING_TO_CHANGE: &str = "Nothing to change";

impl Rewrite {
    fn manual(reason: impl Into<String>) -> Self {
        Rewrite {
            new_url: None,
            new_user: None,
            new_auth: None,
            fixes: Vec::new(),
            action: Action::Manual,
            reason: reason.into(),
            url_safe_to_keep: false,
        }
    }

    /// A fix the URL needs is refused, but the URL itself may stay as it is.
    fn refused_fix(fixes: Vec<Fix>, reason: impl Into<String>) -> Self {
        Rewrite { fixes: sorted(fixes), url_safe_to_keep: true, ..Rewrite::manual(reason) }
    }
}

fn sorted(mut fixes: Vec<Fix>) -> Vec<Fix> {
    fixes.sort();
    fixes.dedup();
    fixes
}

/// Apply the URL rules to one mirror.
pub fn rewrite(input: &MirrorInput<'_>, rules: &Rules) -> Rewrite {
    let mut out = rewrite_inner(input, rules);
    out.reason = sentence(&out.reason);
    out
}

/// Capitalize the first letter and end with a period.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut s: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

fn rewrite_inner(input: &MirrorInput<'_>, rules: &Rules) -> Rewrite {
    let text = match syntax::check_text(input.url) {
        Ok(t) => t,
        Err(reason) => return Rewrite::manual(reason),
    };
    let mut fixes = Vec::new();
    // --map applies first, to the text as typed (like git's insteadOf). It also matches the
    // URL with its userinfo removed, so masked GitLab URLs can be mapped.
    let mut dropped_credentials = false;
    let mapped;
    let text = match apply_maps(text, &rules.maps) {
        Some((new, dropped)) => {
            fixes.push(Fix::MapPrefix);
            dropped_credentials = dropped;
            mapped = new;
            match syntax::check_text(&mapped) {
                Ok(t) => t,
                Err(reason) => {
                    return Rewrite::manual(format!("after --map: {reason}"));
                }
            }
        }
        None => text,
    };
    let form = match syntax::classify(text) {
        Ok(f) => f,
        Err(reason) => return Rewrite::manual(reason),
    };
    let url_text = match form {
        Form::Url => text.to_owned(),
        Form::Scp => match syntax::scp_to_ssh(text) {
            Ok(u) => {
                fixes.push(Fix::ScpToSsh);
                u
            }
            Err(reason) => return Rewrite::manual(reason),
        },
    };
    let url = match syntax::split_url(&url_text) {
        Ok(u) => u,
        Err(reason) => return Rewrite::manual(reason),
    };
    if let Err(reason) = syntax::check_path(&url).and_then(|()| syntax::check_port(&url)) {
        return Rewrite::manual(reason);
    }
    if let Err(reason) = check_bitbucket_path(&url) {
        return Rewrite::manual(reason);
    }
    if input.direction == Direction::Push && url.scheme == Scheme::Git {
        // The git protocol is read-only; only a source host can be moved to https for it.
        if !rules.source_hosts.iter().any(|s| s.host == url.host) {
            return Rewrite::manual(
                "git:// is read-only and cannot push; enter an https or ssh URL for this push \
                 mirror",
            );
        }
    }
    let had_credentials = dropped_credentials || url.has_credentials();
    let source = source_for(&url, rules);
    match source {
        // Only GitHub takes the token as the username (docs/url-rules.md §6); `Credentials` refuses
        // this configuration, so this only guards callers that build `Rules` by hand.
        Some(src)
            if src.user.is_none() && src.host != "github.com" && url.scheme != Scheme::Ssh =>
        {
            Rewrite::manual(format!(
                "{} does not accept the token as the username; configure --source-user \
                     for it",
                src.host
            ))
        }
        Some(src) => {
            let to_https = match url.scheme {
                Scheme::Https => true,
                Scheme::Http | Scheme::Git => true,
                Scheme::Ssh => rules.prefer_https,
            };
            if to_https {
                source_https(input, src, &url, fixes)
            } else {
                syntax_only(input, &url, fixes, had_credentials, HostRole::Source)
            }
        }
        None => syntax_only(input, &url, fixes, had_credentials, host_role(&url, rules)),
    }
}

/// Bitbucket Cloud repository paths are exactly `/WORKSPACE/REPO` (`.git` and a trailing `/`
/// optional), on every scheme: a path without the workspace (`bitbucket.org/repo.git`) or a
/// web page below the repository (`…/src/master`) is not guessed at.
fn check_bitbucket_path(url: &RawUrl) -> Result<(), String> {
    if url.host != "bitbucket.org" {
        return Ok(());
    }
    let segments: Vec<&str> = url.path.trim_end_matches('/').split('/').skip(1).collect();
    if segments.len() == 2 && segments.iter().all(|s| !s.is_empty()) {
        return Ok(());
    }
    Err("a Bitbucket Cloud repository URL is exactly bitbucket.org/WORKSPACE/REPO(.git), and \
         this path is not: enter the workspace and repository (the clone URL) by hand"
        .into())
}

/// Does `last_error` show an HTTP 301 (GitLab does not follow redirects)?
fn shows_301(last_error: Option<&str>) -> bool {
    let Some(err) = last_error else { return false };
    let b = err.as_bytes();
    err.match_indices("301").any(|(i, _)| {
        let before = i.checked_sub(1).and_then(|j| b.get(j));
        let after = b.get(i + 3);
        !before.is_some_and(u8::is_ascii_digit) && !after.is_some_and(u8::is_ascii_digit)
    })
}

fn is_azure(host: &str, path: &str) -> bool {
    host == "dev.azure.com"
        || host.ends_with(".visualstudio.com")
        || host.ends_with(".azure.com")
        || path.contains("/_git/")
}

/// Strip trailing `/` and append `.git` when missing. Returns `None` when nothing changed.
fn with_dot_git(path: &str) -> Option<String> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return None;
    }
    let has = trimmed.len() >= 4
        && trimmed.is_char_boundary(trimmed.len() - 4)
        && trimmed[trimmed.len() - 4..].eq_ignore_ascii_case(".git");
    let out = if has { trimmed.to_owned() } else { format!("{trimmed}.git") };
    (out != path).then_some(out)
}

/// Rows that only get syntax fixes: hosts that are not source hosts, and ssh on source hosts.
/// The URL is rebuilt from its raw parts, so every byte except the fixed ones is kept.
fn syntax_only(
    input: &MirrorInput<'_>,
    url: &RawUrl,
    mut fixes: Vec<Fix>,
    had_credentials: bool,
    role: HostRole,
) -> Rewrite {
    let scheme_changed = url.scheme_raw != url.scheme.as_str();
    // ssh (and so git, and GitLab's SSH checks) does not convert a Unicode host name: write
    // its IDNA A-label (`bücher.example` → `xn--bcher-kva.example`), the host it resolves.
    // https keeps the host as typed: curl converts it.
    let host_lower = if url.scheme == Scheme::Ssh && !url.host_raw.is_ascii() {
        url.host.clone()
    } else {
        lowercase_host_text(&url.host_raw)
    };
    if scheme_changed || host_lower != url.host_raw {
        fixes.push(Fix::LowercaseHost);
    }
    let mut path = url.path.clone();
    if matches!(url.scheme, Scheme::Http | Scheme::Https)
        && shows_301(input.last_error)
        && !is_azure(&url.host, &url.path)
        && let Some(p) = with_dot_git(&url.path)
    {
        path = p;
        fixes.push(Fix::AddDotGit);
    }
    // Only a stale encoding forces a change here: `%2540` always, and `%40` on push mirrors,
    // whose URL GitLab stores without unescaping and re-encodes (docs/url-rules.md §3).
    let needs_decode = matches!(url.scheme, Scheme::Http | Scheme::Https | Scheme::Git)
        && url.user.as_deref().is_some_and(|u| {
            let lower = u.to_ascii_lowercase();
            lower.contains("%2540") || (input.direction == Direction::Push && lower.contains("%40"))
        });
    let fixes = sorted(fixes);
    if fixes.is_empty() && !needs_decode {
        return Rewrite {
            new_url: None,
            new_user: None,
            new_auth: None,
            fixes,
            action: Action::Skip,
            reason: format!("{NOTHING_TO_CHANGE}: {}", host_note(url, role)),
            url_safe_to_keep: false,
        };
    }
    // The URL we would write, without credentials (an ssh username stays).
    let mut out = format!("{}://", url.scheme.as_str());
    if url.scheme == Scheme::Ssh
        && !url.is_masked()
        && let Some(user) = &url.user
    {
        out.push_str(user);
        out.push('@');
    }
    out.push_str(&host_lower);
    if let Some(p) = &url.port_raw {
        out.push(':');
        out.push_str(p);
    }
    out.push_str(&path);
    if let Some(f) = &url.fragment {
        out.push('#');
        out.push_str(f);
    }
    if needs_decode {
        return Rewrite::refused_fix(
            fixes,
            format!(
                "the username is stored percent-encoded (`%40`/`%2540`, the \"Deadline \
                 Exceeded\" problem) and {} is not a source host: re-enter the username with \
                 a plain `@` in the GitLab UI",
                url.host
            ),
        );
    }
    if had_credentials {
        let what = if url.is_masked() { "masked credentials" } else { "credentials" };
        return Rewrite::refused_fix(
            fixes.clone(),
            format!(
                "the URL needs fixing ({}), but this mirror has {what} that an API write \
                 without them would erase: re-enter them in the GitLab UI with the URL {out}",
                Fix::join(&fixes)
            ),
        );
    }
    if url::Url::parse(&out).is_err() {
        return Rewrite::manual("the repaired URL would not parse; fix it by hand");
    }
    let new_auth = if url.scheme == Scheme::Ssh { NewAuth::Unchanged } else { NewAuth::None };
    Rewrite {
        new_url: Some(out),
        new_user: None,
        new_auth: Some(new_auth),
        reason: format!("{}; {}.", describe(&fixes, None), host_note(url, role)),
        fixes,
        action: Action::Update,
        url_safe_to_keep: false,
    }
}

/// ASCII-lowercase a host as typed, leaving `%XX` escapes (and non-ASCII) untouched.
fn lowercase_host_text(host: &str) -> String {
    let mut out = String::with_capacity(host.len());
    let mut escape = 0;
    for c in host.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c);
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn host_note(url: &RawUrl, role: HostRole) -> String {
    if let HostRole::OtherPort(source_port) = role {
        return format!(
            "port {} of {} is not a source host (its service credentials are for port \
             {source_port} only), credentials are left alone",
            url.port.unwrap_or(443),
            url.host
        );
    }
    if url.scheme == Scheme::Ssh && role == HostRole::Source {
        format!(
            "ssh to {} uses the mirror's SSH keys, no token (--prefer-https moves it to https \
             with the service token)",
            url.host
        )
    } else if url.scheme == Scheme::Ssh {
        format!("ssh to {} uses the mirror's SSH keys, no token", url.host)
    } else {
        format!("{} is not a source host, credentials are left alone", url.host)
    }
}

/// Whether a raw username carries a stale `%40` / `%2540`.
fn user_needs_decode(user: &str) -> bool {
    let lower = user.to_ascii_lowercase();
    lower.contains("%40") || lower.contains("%2540")
}

/// Decode a username once, and turn a left-over `%40` into `@` (docs/url-rules.md §3, rule (c)).
pub(crate) fn decode_user(user: &str) -> String {
    let once = percent_decode_str(user).decode_utf8_lossy().into_owned();
    once.replace("%40", "@")
}

/// https on a source host: rebuilt canonically with the service credentials.
fn source_https(
    input: &MirrorInput<'_>,
    src: &SourceHost,
    url: &RawUrl,
    mut fixes: Vec<Fix>,
) -> Rewrite {
    let mut notes: Vec<&str> = Vec::new();
    // The https port: the URL's own (which `source_for` matched), or the source host's.
    let port = match url.scheme {
        Scheme::Https => url.port.filter(|&p| p != 443),
        Scheme::Http => match url.port {
            None | Some(80) => {
                fixes.push(Fix::ToHttps);
                src.port
            }
            Some(p) => {
                return Rewrite::manual(format!(
                    "plain http on port {p} of a source host: the https port is unknown and a \
                         token must not travel in clear text; enter the https URL by hand"
                ));
            }
        },
        Scheme::Git => match url.port {
            None | Some(9418) => {
                fixes.push(Fix::ToHttps);
                src.port
            }
            Some(p) => {
                return Rewrite::manual(format!(
                    "the git:// port {p} says nothing about the https URL; enter it by hand"
                ));
            }
        },
        Scheme::Ssh => {
            if url.path.starts_with("/~") {
                return Rewrite::manual(
                    "the ssh path is relative to a home directory (`~`), which has no https \
                     equivalent; enter the https URL by hand",
                );
            }
            fixes.push(Fix::SshToHttps);
            src.port
        }
    };
    if url.scheme_raw != url.scheme.as_str()
        || lowercase_host_text(&url.host_raw) != url.host_raw
        || (url.scheme == Scheme::Https && url.host_raw != url.host)
    {
        fixes.push(Fix::LowercaseHost);
    }
    if url.fragment.is_some() {
        notes.push("the `#…` fragment is dropped");
    }
    let trimmed = url.path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Rewrite::manual("the URL has no repository path; enter it by hand");
    }
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Rewrite::manual("the path has an empty segment (`//`); check it");
    }
    if segments.contains(&"-") {
        return Rewrite::manual(
            "the path has a `/-/` web UI segment, not a repository path; use the clone URL",
        );
    }
    if src.host == "github.com" && segments.len() != 2 {
        return Rewrite::manual(
            "a GitHub repository URL has exactly owner/repo; this looks like a web page \
             (tree/blob/…), use the clone URL",
        );
    }
    let mut path = url.path.clone();
    if !is_azure(&url.host, &url.path) {
        if let Some(p) = with_dot_git(&url.path) {
            path = p;
            if !path.trim_end_matches('/').eq(url.path.trim_end_matches('/')) {
                fixes.push(Fix::AddDotGit);
            } else {
                notes.push("the trailing `/` is removed");
            }
        }
    } else if trimmed.len() != url.path.len() {
        path = trimmed.to_owned();
        notes.push("the trailing `/` is removed");
    }
    let masked = url.is_masked();
    if let Some(user) = &url.user
        && user != MASK
        && user_needs_decode(user)
    {
        fixes.push(Fix::DecodeUser);
    }
    if masked
        && input.last_error.is_some_and(|e| e.to_ascii_lowercase().contains("deadline exceeded"))
    {
        fixes.push(Fix::DecodeUser);
    }
    fixes.push(Fix::ServiceToken);
    let has_user = url.user.as_deref().is_some_and(|u| !u.is_empty());
    if src.host == "bitbucket.org" && !has_user && src.user.is_some() {
        fixes.push(Fix::BitbucketOwner);
    }
    let mut candidate = format!("https://{}", url.host);
    if let Some(p) = port {
        candidate.push(':');
        candidate.push_str(&p.to_string());
    }
    candidate.push_str(&path);
    let new_url = match url::Url::parse(&candidate) {
        Ok(u) if u.host_str() == Some(src.host.as_str()) => u.as_str().to_owned(),
        _ => return Rewrite::manual("the rewritten URL would not parse; check it"),
    };
    let fixes = sorted(fixes);
    let mut reason = describe(&fixes, Some(src));
    for n in notes {
        reason.push_str("; ");
        reason.push_str(n);
    }
    reason.push('.');
    Rewrite {
        new_url: Some(new_url),
        new_user: Some(src.user.clone().unwrap_or_else(|| TOKEN_AS_USER.to_owned())),
        new_auth: Some(NewAuth::Service),
        fixes,
        action: Action::Update,
        reason,
        url_safe_to_keep: false,
    }
}

/// A human description of a set of fixes.
fn describe(fixes: &[Fix], src: Option<&SourceHost>) -> String {
    let parts: Vec<String> = fixes
        .iter()
        .map(|f| match f {
            Fix::ScpToSsh => "SCP-like URL converted to ssh:// (GitLab refuses SCP syntax)".into(),
            Fix::ToHttps => "switched to https so the token never travels in clear text".into(),
            Fix::SshToHttps => "ssh switched to https (--prefer-https; LFS needs https)".into(),
            Fix::AddDotGit => "missing .git added".into(),
            Fix::DecodeUser => "stale percent-encoded username replaced".into(),
            Fix::ServiceToken => match src {
                Some(s) => format!(
                    "credentials replaced by the service account's for {} (user {})",
                    s.host,
                    s.user.as_deref().unwrap_or(TOKEN_AS_USER)
                ),
                None => "credentials replaced by the service account's".into(),
            },
            Fix::BitbucketOwner => "Bitbucket username added".into(),
            Fix::MapPrefix => "--map prefix rule applied".into(),
            Fix::LowercaseHost => "scheme and host normalized to lowercase".into(),
            Fix::MirrorUser => "mirror user changed".into(),
        })
        .collect();
    let mut s = parts.join("; ");
    if let Some(first) = s.get(..1) {
        let upper = first.to_uppercase();
        s.replace_range(..1, &upper);
    }
    s
}

/// Find the longest `--map` prefix matching the text as typed, or the URL with its userinfo
/// removed. Returns the new text and whether credentials were dropped by the match.
fn apply_maps(text: &str, maps: &[PrefixMap]) -> Option<(String, bool)> {
    let stripped = strip_userinfo(text);
    let mut best: Option<(&PrefixMap, bool)> = None;
    for m in maps {
        if m.from.is_empty() {
            continue;
        }
        for (candidate, dropped) in [(Some(text), false), (stripped.as_deref(), true)] {
            let Some(c) = candidate else { continue };
            if c.starts_with(&m.from) && best.is_none_or(|(b, _)| m.from.len() > b.from.len()) {
                best = Some((m, dropped));
            }
        }
    }
    let (m, dropped) = best?;
    let source = if dropped { stripped? } else { text.to_owned() };
    Some((format!("{}{}", m.to, &source[m.from.len()..]), dropped))
}

/// `scheme://user:pw@host/…` without the `user:pw@`; `None` when there is no userinfo.
fn strip_userinfo(text: &str) -> Option<String> {
    let url = split_authority(text)?;
    url.userinfo?;
    Some(url.without_userinfo())
}

/// The source host whose parsed host is exactly this URL's (SCP-like input included), and for
/// https whose port is the URL's (see `SourceHost`).
pub(crate) fn source_host_for<'r>(url: &str, rules: &'r Rules) -> Option<&'r SourceHost> {
    let text = syntax::check_text(url).ok()?;
    let url_text = match syntax::classify(text).ok()? {
        Form::Url => text.to_owned(),
        Form::Scp => syntax::scp_to_ssh(text).ok()?,
    };
    let parsed = syntax::split_url(&url_text).ok()?;
    source_for(&parsed, rules)
}

/// Parse a `--map OLD=NEW` rule (split at the first `=`).
pub(crate) fn parse_map(spec: &str) -> Result<PrefixMap, String> {
    let Some((from, to)) = spec.split_once('=') else {
        return Err("--map expects OLD_PREFIX=NEW_PREFIX".into());
    };
    if from.is_empty() || to.is_empty() {
        return Err("--map needs a non-empty OLD_PREFIX and NEW_PREFIX".into());
    }
    for part in [from, to] {
        if part.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("--map prefixes must not contain whitespace or control characters".into());
        }
    }
    if looks_like_token(from) || looks_like_token(to) {
        return Err("--map value looks like a token; maps must not carry credentials".into());
    }
    if let Some(userinfo) = split_authority(to).and_then(|url| url.userinfo)
        && (userinfo.contains(':') || userinfo.contains(MASK))
    {
        return Err("--map NEW_PREFIX must not contain credentials".into());
    }
    if to.starts_with(from) {
        return Err(
            "--map NEW_PREFIX must not start with OLD_PREFIX (the rule would match its own output)"
                .into(),
        );
    }
    Ok(PrefixMap { from: from.to_owned(), to: to.to_owned() })
}

/// Bytes kept as-is in URL userinfo: RFC 3986 unreserved (`A-Z a-z 0-9 - . _ ~`).
const USERINFO_ENCODE: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encode every byte outside RFC 3986 unreserved (uppercase hex).
pub(crate) fn encode_userinfo_part(value: &str) -> String {
    utf8_percent_encode(value, USERINFO_ENCODE).to_string()
}

/// For the old `PUT /projects/:id` API: `new_url` with the userinfo inserted, every byte
/// outside RFC 3986 unreserved percent-encoded (uppercase hex). `user` `None` = token as
/// username (with an empty password).
pub(crate) fn authenticated_url(
    new_url: &str,
    user: Option<&str>,
    token: &SecretString,
) -> SecretString {
    let (scheme, rest) = new_url.split_once("://").unwrap_or(("https", new_url));
    let token = encode_userinfo_part(token.expose_secret());
    let userinfo = match user {
        Some(u) => format!("{}:{token}", encode_userinfo_part(u)),
        None => token,
    };
    SecretString::from(format!("{scheme}://{userinfo}@{rest}"))
}

/// Re-validate a reviewer-edited `new_url`: Ok when it is a fixed point of the rules
/// (rewriting it again gives the same URL as an `update`, or nothing to change).
pub(crate) fn validate_new_url(
    new_url: &str,
    direction: Direction,
    rules: &Rules,
) -> Result<(), String> {
    if new_url.trim() != new_url {
        return Err("new_url has surrounding whitespace".into());
    }
    let no_maps = Rules { maps: Vec::new(), ..rules.clone() };
    let again = rewrite(&MirrorInput { url: new_url, direction, last_error: None }, &no_maps);
    match again.action {
        Action::Update if again.new_url.as_deref() == Some(new_url) => Ok(()),
        Action::Skip if again.reason.starts_with(NOTHING_TO_CHANGE) => {
            if let Some(parsed) = parse_for_check(new_url)
                && parsed.has_credentials()
            {
                return Err("new_url must not contain credentials".into());
            }
            Ok(())
        }
        Action::Update => Err(format!(
            "new_url is not in final form; the rules would write {}",
            again.new_url.unwrap_or_default()
        )),
        _ => Err(format!("new_url is refused by the URL rules: {}", again.reason)),
    }
}

fn parse_for_check(url: &str) -> Option<RawUrl> {
    syntax::split_url(url).ok()
}

/// Mask the credentials of a URL for display: any userinfo of http(s)/git URLs, the password
/// (or a masked user) of ssh URLs, the password of an SCP-like `user:pw@host:path`. Other
/// text is returned as is.
pub(crate) fn mask_url(text: &str) -> String {
    let Some(url) = split_authority(text) else {
        // SCP-like text has no password, but `user:pw@host:path` was meant as one.
        return match crate::redact::scp_userinfo(text) {
            Some(userinfo) if userinfo.contains(':') => {
                format!("{MASK}:{MASK}{}", &text[userinfo.len()..])
            }
            _ => text.to_owned(),
        };
    };
    let Some(userinfo) = url.userinfo else {
        return text.to_owned();
    };
    let is_ssh = matches!(url.scheme.to_ascii_lowercase().as_str(), "ssh" | "git+ssh" | "ssh+git");
    let masked = match url.password() {
        None if is_ssh => userinfo.to_owned(),
        Some(_) => format!("{MASK}:{MASK}"),
        None => MASK.to_owned(),
    };
    format!("{}://{masked}@{}{}", url.scheme, url.host_port, url.rest)
}

#[cfg(test)]
pub(crate) mod authority_tests;
#[cfg(test)]
mod tests;
