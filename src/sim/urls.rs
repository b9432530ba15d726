//! GitLab's handling of mirror URLs, re-implemented for the simulator: how `import_url=` splits
//! off and stores credentials (`UrlSanitizer#parse_url`), how URLs are masked, and which URLs
//! the URL blocker refuses. docs/gitlab-behaviour.md §1.2, §2.5 and §4.

/// The mask GitLab puts in place of a user or password.
pub(crate) const MASK: &str = "*****";

/// Schemes a persisted project's `import_url` may use (`VALID_MIRROR_PROTOCOLS`).
pub(crate) const MIRROR_SCHEMES: &[&str] = &["http", "https", "ssh", "git"];
/// Ports below 1024 a mirror URL may use (`VALID_MIRROR_PORTS`).
pub(crate) const MIRROR_PORTS: &[u16] = &[22, 80, 443];

/// A URL split the way `UrlSanitizer#parse_url` splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    /// What goes into the `import_url` column: the URL without userinfo, or the input verbatim
    /// when it is not a URL GitLab recognises (SCP-like, unknown scheme).
    pub(crate) stored: String,
    /// Whether GitLab recognised it (`UrlSanitizer.valid?`).
    pub(crate) valid: bool,
    /// Decoded user (`CGI.unescape`), `None` when absent or empty.
    pub(crate) user: Option<String>,
    /// Decoded password, `None` when absent or empty.
    pub(crate) password: Option<String>,
}

/// Split a URL as `Project#import_url=` does: the scheme must be exactly (case-sensitively)
/// `git`, `ssh`, `http` or `https`; the userinfo runs up to the LAST `@` (greedy regex
/// `//(.+)@(.+)`) and is split at the FIRST `:`; each part is CGI-unescaped (`%XX` decoded and
/// `+` turned into a space). Anything else is stored verbatim with no credentials.
pub(crate) fn split(raw: &str) -> Split {
    let raw = raw.trim();
    let verbatim = || Split { stored: raw.to_owned(), valid: false, user: None, password: None };
    let Some((scheme, rest)) = raw.split_once("://") else { return verbatim() };
    if !MIRROR_SCHEMES.contains(&scheme) || rest.is_empty() {
        return verbatim();
    }
    let (userinfo, hostpart) = match rest.rfind('@') {
        Some(at) if at > 0 && at + 1 < rest.len() => (Some(&rest[..at]), &rest[at + 1..]),
        _ => (None, rest),
    };
    let (user, password) = match userinfo {
        Some(info) => {
            let (u, p) = info.split_once(':').unwrap_or((info, ""));
            (non_empty(cgi_unescape(u)), non_empty(cgi_unescape(p)))
        }
        None => (None, None),
    };
    Split { stored: format!("{scheme}://{hostpart}"), valid: true, user, password }
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// Ruby's `CGI.unescape`: `+` is a space, `%XX` is decoded, invalid escapes stay as they are.
pub(crate) fn cgi_unescape(s: &str) -> String {
    let replaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&replaced).decode_utf8_lossy().into_owned()
}

/// GitLab's `encode_percent`: `CGI.escape`, then `+` (an escaped space) becomes `%20`.
pub(crate) fn cgi_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Insert userinfo after `scheme://` (used for masking and for `full_url`).
fn with_userinfo(stored: &str, userinfo: &str) -> String {
    match stored.split_once("://") {
        Some((scheme, rest)) if !userinfo.is_empty() => format!("{scheme}://{userinfo}@{rest}"),
        _ => stored.to_owned(),
    }
}

/// `UrlSanitizer#masked_url`: the user and the password, where present, become `*****`.
/// A stored value GitLab could not parse is returned as it is \[I\].
pub(crate) fn masked(stored: &str, user: Option<&str>, password: Option<&str>) -> String {
    masked_keeping(stored, user, password, &[])
}

/// `SafeUrl#safe_url(allowed_usernames:)`: like [`masked`], but a user in `allowed` (push
/// mirrors allow `git`) is kept.
pub(crate) fn masked_keeping(
    stored: &str,
    user: Option<&str>,
    password: Option<&str>,
    allowed: &[&str],
) -> String {
    if !stored.contains("://") {
        return stored.to_owned();
    }
    let user = user.filter(|u| !u.is_empty());
    let password = password.filter(|p| !p.is_empty());
    let user_part = match user {
        Some(u) if allowed.contains(&u) => u.to_owned(),
        Some(_) => MASK.to_owned(),
        None => String::new(),
    };
    let userinfo = match password {
        Some(_) => format!("{user_part}:{MASK}"),
        None => user_part,
    };
    with_userinfo(stored, &userinfo)
}

/// `UrlSanitizer#full_url`: the stored URL with the stored credentials re-escaped.
pub(crate) fn full_url(stored: &str, user: Option<&str>, password: Option<&str>) -> String {
    let user = user.filter(|u| !u.is_empty()).map(cgi_escape).unwrap_or_default();
    let userinfo = match password.filter(|p| !p.is_empty()) {
        Some(p) => format!("{user}:{}", cgi_escape(p)),
        None => user,
    };
    with_userinfo(stored, &userinfo)
}

/// Which checks the URL blocker runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockRules {
    /// Allowed schemes.
    pub(crate) schemes: &'static [&'static str],
    /// Ports below 1024 that are allowed (`None`: no port rule, as for push mirrors).
    pub(crate) ports: Option<&'static [u16]>,
}

/// Pull-mirror rules for a persisted project.
pub(crate) const PULL_RULES: BlockRules =
    BlockRules { schemes: MIRROR_SCHEMES, ports: Some(MIRROR_PORTS) };
/// Push-mirror rules (`app/models/remote_mirror.rb`: the same schemes, no port list). The
/// message lists them as `http, https, ssh, git`, as `spec/requests/api/remote_mirrors_spec.rb`
/// expects.
pub(crate) const PUSH_RULES: BlockRules = BlockRules { schemes: MIRROR_SCHEMES, ports: None };

/// The URL blocker (`PublicUrlValidator` with `enforce_user: true`, local requests not
/// allowed): `Some("is blocked: …")` when GitLab would refuse `full` (the URL as the model
/// reads it, credentials included).
pub(crate) fn blocked(full: &str, rules: BlockRules) -> Option<String> {
    let msg = |m: &str| Some(format!("is blocked: {m}"));
    let schemes = rules.schemes.join(", ");
    let Some((scheme, _)) = full.split_once("://") else {
        // SCP-like `git@host:path` and bare paths: GitLab stores them raw and the blocker
        // reports the scheme [I] (docs/gitlab-behaviour.md §4 leaves "invalid scheme or URI" open).
        return msg(&format!("Only allowed schemes are {schemes}"));
    };
    // The scheme check is case-sensitive: `HTTPS://` is refused.
    if !rules.schemes.contains(&scheme) {
        return msg(&format!("Only allowed schemes are {schemes}"));
    }
    let Ok(url) = url::Url::parse(full) else { return msg("URI is invalid") };
    if let (Some(port), Some(allowed)) = (url.port(), rules.ports)
        && port < 1024
        && !allowed.contains(&port)
    {
        let list: Vec<String> = allowed.iter().map(u16::to_string).collect();
        return msg(&format!("Only allowed ports are {}, and any over 1024", list.join(", ")));
    }
    if let Some(first) = url.username().chars().next()
        && !first.is_ascii_alphanumeric()
    {
        return msg("Username needs to start with an alphanumeric character");
    }
    match url.host() {
        None => msg("Hostname or IP address invalid"),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            msg("Requests to localhost are not allowed")
        }
        Some(url::Host::Domain(d)) if d.len() > 1024 => {
            msg("Host is too long (maximum is 1024 characters)")
        }
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => {
            msg("Requests to loopback addresses are not allowed")
        }
        Some(url::Host::Ipv4(ip)) if ip.is_private() => {
            msg("Requests to the local network are not allowed")
        }
        Some(url::Host::Ipv4(ip)) if ip.is_link_local() => {
            msg("Requests to the link local network are not allowed")
        }
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => {
            msg("Requests to loopback addresses are not allowed")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_greedy_to_the_last_at_and_splits_at_the_first_colon() {
        let s = split("https://u%40corp:p:w@d@github.com/org/x.git");
        assert!(s.valid);
        assert_eq!(s.stored, "https://github.com/org/x.git");
        assert_eq!(s.user.as_deref(), Some("u@corp"));
        assert_eq!(s.password.as_deref(), Some("p:w@d"));
        let t = split("https://TOKEN@github.com/x");
        assert_eq!((t.user.as_deref(), t.password), (Some("TOKEN"), None));
        let plus = split("https://a+b:c@h/x");
        assert_eq!(plus.user.as_deref(), Some("a b"));
    }

    #[test]
    fn unrecognised_urls_are_stored_verbatim() {
        for raw in ["git@github.com:org/x.git", "HTTPS://github.com/x", "ftp://h/x"] {
            let s = split(raw);
            assert!(!s.valid);
            assert_eq!(s.stored, raw);
            assert_eq!(s.user, None);
        }
    }

    #[test]
    fn masking_follows_url_sanitizer() {
        let url = "https://github.com/org/x.git";
        assert_eq!(masked(url, Some("u"), Some("p")), "https://*****:*****@github.com/org/x.git");
        assert_eq!(masked(url, Some("u"), None), "https://*****@github.com/org/x.git");
        assert_eq!(masked(url, None, Some("p")), "https://:*****@github.com/org/x.git");
        assert_eq!(masked(url, None, None), url);
        assert_eq!(
            masked_keeping("ssh://h/x.git", Some("git"), None, &["git"]),
            "ssh://git@h/x.git"
        );
        assert_eq!(
            full_url(url, Some("a@b"), Some("p q")),
            "https://a%40b:p%20q@github.com/org/x.git"
        );
    }

    #[test]
    fn the_blocker_refuses_what_gitlab_refuses() {
        let b = |u: &str| blocked(u, PULL_RULES);
        assert_eq!(b("https://github.com/x.git"), None);
        assert_eq!(b("ssh://git@github.com:22/x.git"), None);
        assert_eq!(b("https://h.example:8443/x.git"), None);
        assert!(b("git@github.com:org/x.git").unwrap().contains("Only allowed schemes"));
        assert!(b("HTTPS://github.com/x").unwrap().contains("Only allowed schemes"));
        assert!(b("https://h.example:21/x").unwrap().contains("Only allowed ports"));
        assert!(b("https://*****:*****@github.com/x").unwrap().contains("Username needs"));
        assert!(b("http://localhost/x").unwrap().contains("localhost"));
        assert!(b("http://10.1.2.3/x").unwrap().contains("local network"));
        assert_eq!(blocked("https://h.example:21/x", PUSH_RULES), None);
    }
}
