//! URL syntax: the pre-parse safety checks, git's classification of `a:b` input, the SCP to
//! `ssh://` conversion and a splitter that keeps every part of a URL as typed.
//!
//! Everything here follows git's own parser (`url.c`, `connect.c`) and docs/url-rules.md §2 and §7.
//! The `url` crate is only used to normalize hosts and as a final validity check, because it
//! silently rewrites what it parses (tabs deleted, `%2E` decoded, dot segments resolved).

use std::net::Ipv6Addr;

use crate::redact::split_authority;

/// Longest input accepted, in bytes.
pub(crate) const MAX_LEN: usize = 4096;

/// The schemes GitLab accepts for mirrors (after normalization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
    Ssh,
    Git,
}

impl Scheme {
    /// The lowercase scheme name written in output URLs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ssh => "ssh",
            Scheme::Git => "git",
        }
    }
}

/// A `scheme://authority/path` URL with every part kept as typed, plus the normalized host.
#[derive(Debug, Clone)]
pub(crate) struct RawUrl {
    /// The scheme exactly as typed (`HTTPS`, `git+ssh`, …).
    pub(crate) scheme_raw: String,
    /// The scheme after lowercasing and mapping `git+ssh`/`ssh+git` to ssh.
    pub(crate) scheme: Scheme,
    /// Raw username (before the first `:` of the userinfo), if there is a userinfo.
    pub(crate) user: Option<String>,
    /// Raw password (after the first `:` of the userinfo).
    pub(crate) password: Option<String>,
    /// The host as typed (IPv6 with its brackets).
    pub(crate) host_raw: String,
    /// The host as compared against source hosts: lowercase, A-label, RFC 5952 IPv6.
    pub(crate) host: String,
    /// The port text as typed (may be empty for `host:`).
    pub(crate) port_raw: Option<String>,
    /// The port number, when one was given.
    pub(crate) port: Option<u16>,
    /// The path as typed (starts with `/`, or is empty).
    pub(crate) path: String,
    /// The query as typed, without the `?`.
    pub(crate) query: Option<String>,
    /// The fragment as typed, without the `#` (never set for ssh, where `#` is a path byte).
    pub(crate) fragment: Option<String>,
}

impl RawUrl {
    /// Whether the userinfo holds anything GitLab would store as credentials. An ssh username
    /// alone (`git@`) is part of the address, not a credential.
    pub(crate) fn has_credentials(&self) -> bool {
        match self.scheme {
            Scheme::Ssh => self.password.is_some() || self.is_masked(),
            _ => self.user.is_some() || self.password.is_some(),
        }
    }

    /// Whether the userinfo is GitLab's `*****` mask.
    pub(crate) fn is_masked(&self) -> bool {
        self.user.as_deref() == Some(crate::redact::MASK)
            || self.password.as_deref() == Some(crate::redact::MASK)
    }
}

/// Step 1: trim, then refuse empty, overlong, control characters (raw or percent-encoded),
/// invisible formatting characters and inner whitespace. Runs before any parser.
pub(crate) fn check_text(input: &str) -> Result<&str, String> {
    let text = input.trim_matches(|c: char| c.is_ascii_whitespace());
    if text.is_empty() {
        return Err("the URL is empty; enter the mirror's URL by hand".into());
    }
    if text.len() > MAX_LEN {
        return Err(format!("the URL is longer than {MAX_LEN} bytes; check it by hand"));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err("the URL contains a control character (tab, newline, …); \
                    retype it in the GitLab UI"
            .into());
    }
    if text.chars().any(char::is_whitespace) {
        return Err("the URL contains whitespace; retype it in the GitLab UI".into());
    }
    if text.chars().any(is_invisible) {
        return Err("the URL contains an invisible formatting character; retype it".into());
    }
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%'
            && let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = (hex_val(h), hex_val(l))
        {
            let v = h * 16 + l;
            if v < 0x20 || v == 0x7f {
                return Err("the URL contains a percent-encoded control character; \
                            retype it in the GitLab UI"
                    .into());
            }
        }
    }
    Ok(text)
}

/// The characters every cell writer removes (`redact::is_invisible`): a URL holding one would
/// be written as another URL, so the rules refuse it.
fn is_invisible(c: char) -> bool {
    crate::redact::is_invisible(c)
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// What kind of input git would see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `scheme://…`
    Url,
    /// `[user@]host:path`
    Scp,
}

/// Git's `is_urlschemechar`.
fn is_scheme_char(first: bool, c: char) -> bool {
    c.is_ascii_alphanumeric() || (!first && matches!(c, '+' | '-' | '.'))
}

/// Length of the leading run of scheme characters.
fn scheme_len(text: &str) -> usize {
    text.char_indices()
        .take_while(|&(i, c)| is_scheme_char(i == 0, c))
        .last()
        .map_or(0, |(i, c)| i + c.len_utf8())
}

/// Step 2: classify like git (`transport_get`, `is_url`, `url_is_local_not_ssh`), refusing the
/// forms that are local, remote helpers or ambiguous.
pub(crate) fn classify(text: &str) -> Result<Form, String> {
    let n = scheme_len(text);
    let after = &text[n..];
    if after.starts_with("::") || (n == 0 && text.starts_with("::")) {
        return Err("`transport::address` form runs a git remote helper; not a mirror URL".into());
    }
    if n > 0 && after.starts_with("://") {
        return Ok(Form::Url);
    }
    if text.contains('\\') {
        return Err("the URL contains a backslash; use `/` and check it by hand".into());
    }
    let Some(colon) = text.find(':') else {
        return Err("this is a local path or has no scheme; a mirror needs \
                    https://, ssh:// or git:// with a host"
            .into());
    };
    if text[..colon].contains('/') {
        return Err("this is a local path; GitLab mirrors need a remote URL".into());
    }
    let before = text[..colon].to_ascii_lowercase();
    const SCHEMES: &[&str] =
        &["http", "https", "ssh", "git", "file", "git+ssh", "ssh+git", "ftp", "ftps", "rsync"];
    if SCHEMES.contains(&before.as_str()) {
        return Err(format!("`{before}:` is missing its `//`; write {before}://host/path"));
    }
    if colon == 1 && text.as_bytes()[0].is_ascii_alphabetic() {
        return Err("this looks like a Windows drive path; GitLab mirrors need a remote URL".into());
    }
    Ok(Form::Scp)
}

/// Step 3: SCP-like `[user@]host:path` to `ssh://[user@]host[:port]/path`, following git's
/// `host_end` bracket rules. Returns the ssh URL text.
pub(crate) fn scp_to_ssh(text: &str) -> Result<String, String> {
    let first_colon = text.find(':').unwrap_or(text.len());
    // git looks for "@[" anywhere; only accept it in the host part.
    let bracket_start = match text.find("@[") {
        Some(i) if i < first_colon => Some(i + 1),
        Some(_) => return Err(ambiguous_scp()),
        None if text.starts_with('[') => Some(0),
        None => None,
    };
    let (user, host, port, path) = if let Some(start) = bracket_start {
        let Some(close) = text[start..].find(']').map(|i| i + start) else {
            return Err(ambiguous_scp());
        };
        let rest = &text[close + 1..];
        let Some(path) = rest.strip_prefix(':') else {
            return Err(ambiguous_scp());
        };
        let user = if start > 0 { Some(&text[..start - 1]) } else { None };
        let inner = &text[start + 1..close];
        let (host, port) = if inner.parse::<Ipv6Addr>().is_ok() {
            (format!("[{inner}]"), None)
        } else if let Some((h, p)) = inner.rsplit_once(':') {
            let port: u16 = p.parse().map_err(|_| ambiguous_scp())?;
            if h.is_empty() || h.contains(':') || p.starts_with('+') {
                return Err(ambiguous_scp());
            }
            (h.to_owned(), Some(port))
        } else {
            (inner.to_owned(), None)
        };
        (user, host, port, path)
    } else {
        let hostpart = &text[..first_colon];
        let path = &text[first_colon + 1..];
        let (user, host) = match hostpart.split_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, hostpart),
        };
        if host.contains('@') || host.contains('[') || host.contains(']') {
            return Err(ambiguous_scp());
        }
        (user, host.to_owned(), None, path)
    };
    if host.is_empty() || host == "[]" {
        return Err("the SCP-like URL has no host; check it by hand".into());
    }
    if let Some(user) = user {
        if user.contains(':') {
            return Err("the SCP-like URL has a `:` in its user part (a password?); \
                        SCP syntax has no password, check it by hand"
                .into());
        }
        if user.is_empty() || !user.chars().all(is_userinfo_char) {
            return Err("the SCP-like URL's user name has characters ssh would not see \
                        the same way; check it by hand"
                .into());
        }
    }
    if path.is_empty() {
        return Err("the SCP-like URL has no repository path".into());
    }
    let first_segment = path.split('/').next().unwrap_or("");
    if first_segment.contains(':') {
        return Err("the SCP-like URL has a second `:` (an unbracketed IPv6 address or a port?); \
                    SCP syntax ends the host at the first `:`, write ssh://host:port/path"
            .into());
    }
    let mut out = String::from("ssh://");
    if let Some(user) = user {
        out.push_str(user);
        out.push('@');
    }
    out.push_str(&host);
    if let Some(port) = port {
        out.push(':');
        out.push_str(&port.to_string());
    }
    if !path.starts_with('/') {
        out.push('/');
    }
    // git never decodes an SCP path but does decode an ssh:// one (docs/url-rules.md §2).
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            '?' => out.push_str("%3F"),
            // Non-ASCII is percent-encoded (git decodes it back; strict URI parsers need it).
            c if !c.is_ascii() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn ambiguous_scp() -> String {
    "the SCP-like URL is ambiguous (brackets, `@` or port in an unexpected place); \
     write it as ssh://[user@]host[:port]/path"
        .into()
}

/// RFC 3986 unreserved, sub-delims and `%` (for pre-encoded text).
fn is_userinfo_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '-' | '.' | '_' | '~' | '!' | '$' | '&' | '\'' | '(' | ')' | '*' | '+')
        || matches!(c, ',' | ';' | '=' | '%')
}

/// Split a `scheme://…` URL into raw parts (no re-serialization) and normalize its host. The
/// authority and userinfo are [`split_authority`]'s.
pub(crate) fn split_url(text: &str) -> Result<RawUrl, String> {
    let Some(parts) = split_authority(text) else {
        return Err("not a URL".into());
    };
    let scheme_raw = parts.scheme;
    let scheme = match scheme_raw.to_ascii_lowercase().as_str() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
        "git" => Scheme::Git,
        "file" => {
            return Err("a file:// URL is a local path; GitLab mirrors need a remote URL".into());
        }
        other => {
            return Err(format!(
                "scheme `{}` is not one GitLab mirrors accept (https, ssh, git, http)",
                other.chars().take(20).collect::<String>()
            ));
        }
    };
    let (hostport, remainder) = (parts.host_port, parts.rest);
    let user = parts.user().map(str::to_owned);
    let password = parts.password().map(str::to_owned);
    let (host_raw, port_raw) = if hostport.starts_with('[') {
        let Some(close) = hostport.find(']') else {
            return Err("the URL has an unclosed `[` in its host".into());
        };
        let after = &hostport[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("the URL has text after its bracketed host".into()),
        };
        (&hostport[..=close], port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host_raw.is_empty() {
        return Err("the URL has no host".into());
    }
    let port = match port_raw {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(
            p.parse::<u16>().map_err(|_| "the URL's port is out of range (0-65535)".to_string())?,
        ),
        Some(_) => return Err("the URL's port is not a number".into()),
    };
    let host = normalize_host(host_raw)?;
    // Path, query and fragment. git does not treat `#` as a fragment for ssh.
    let (path_q, fragment) = match scheme {
        Scheme::Ssh => (remainder, None),
        _ => match remainder.split_once('#') {
            Some((a, f)) => (a, Some(f.to_owned())),
            None => (remainder, None),
        },
    };
    let (path, query) = match path_q.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (path_q, None),
    };
    let parsed = RawUrl {
        scheme_raw: scheme_raw.to_owned(),
        scheme,
        user,
        password,
        host_raw: host_raw.to_owned(),
        host,
        port_raw: port_raw.map(str::to_owned),
        port,
        path: path.to_owned(),
        query,
        fragment,
    };
    // The url crate must accept the lowercase form too (apply and GitLab parse it).
    let check = format!("{}://{}", parsed.scheme.as_str(), &text[scheme_raw.len() + 3..]);
    url::Url::parse(&check).map_err(|e| format!("not a valid URL ({e})"))?;
    Ok(parsed)
}

/// Normalize a host the way the url crate does for https (lowercase, IDNA to A-label,
/// `%2E` decoded, RFC 5952 IPv6) and refuse hosts ssh would read as an option.
pub(crate) fn normalize_host(host_raw: &str) -> Result<String, String> {
    if host_raw.starts_with('-') {
        return Err("the host starts with `-` (it would be read as an ssh option)".into());
    }
    if host_raw.contains(['/', '?', '#', '@', '\\', ' ']) {
        return Err("the host contains characters that are not allowed in a host name".into());
    }
    let url = url::Url::parse(&format!("http://{host_raw}/"))
        .map_err(|e| format!("the host is not valid ({e})"))?;
    let host = url.host_str().unwrap_or("").to_owned();
    if url.port().is_some() || host.is_empty() {
        return Err("the host is not valid".into());
    }
    if !host.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '[') {
        return Err("the host must start with a letter or digit".into());
    }
    Ok(host)
}

/// Path checks that apply to every host: a query, a raw `@`, dot segments, and for ssh a `#`.
pub(crate) fn check_path(url: &RawUrl) -> Result<(), String> {
    if url.query.is_some() {
        return Err("the URL has a query string (`?…`); git sends it to the server and \
                    breaks on it, remove it by hand"
            .into());
    }
    if url.path.contains('@') {
        return Err("the path contains a raw `@`; parsers disagree where the credentials end, \
                    check the URL by hand"
            .into());
    }
    if url.scheme == Scheme::Ssh && url.path.contains('#') {
        return Err("the ssh path contains `#`, which git sends as part of the path; \
                    check the URL by hand"
            .into());
    }
    let bytes = url.path.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err("the path has a `%` that is not a valid percent-escape (`%XX`); \
                    git would decode it differently, check the URL by hand"
            .into());
    }
    for seg in url.path.split('/') {
        let decoded = seg.to_ascii_lowercase().replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Err("the path has `.` or `..` segments, which could point at another \
                        repository; write the path out in full"
                .into());
        }
    }
    Ok(())
}

/// Port checks: GitLab's URL blocker refuses ports below 1024 except 22, 80 and 443.
pub(crate) fn check_port(url: &RawUrl) -> Result<(), String> {
    match url.port {
        Some(p) if p < 1024 && !matches!(p, 22 | 80 | 443) => Err(format!(
            "port {p} is below 1024 and not 22, 80 or 443; GitLab refuses it, check the URL"
        )),
        _ => Ok(()),
    }
}
