//! One userinfo splitter: [`crate::redact::split_authority`] agrees with each hand-written
//! copy it replaces, on the inputs those copies see (mirror URLs as typed or as GitLab masks
//! them, plan `new_url` cells, `--map` prefixes, `rewrite` input lines).
//!
//! `legacy` holds the copies as they were before they were rebuilt on the splitter, verbatim,
//! as the oracle: each function today must give the same answer on every input.
//!
//! The input strategies and the fixture corpus here ([`url_text`], [`well_formed_url`],
//! [`web_url`], [`fixture_texts`]) are shared with the agreement tests of the copies outside
//! `rewrite/` (in `apply::matching`, `apply::journal::scrub`, `plan::decide`,
//! `plan::fingerprint`).

use proptest::prelude::*;

use crate::redact::split_authority;

#[allow(clippy::all)]
mod legacy {
    use super::super::PrefixMap;
    use super::super::syntax::{RawUrl, Scheme, normalize_host};
    use crate::plan::CurrentAuth;
    use crate::redact::{MASK, looks_like_token, mask_userinfo};

    pub(super) fn legacy_strip_userinfo(text: &str) -> Option<String> {
        let (scheme, rest) = text.split_once("://")?;
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let at = rest[..auth_end].rfind('@')?;
        Some(format!("{scheme}://{}", &rest[at + 1..]))
    }

    pub(super) fn legacy_mask_url(text: &str) -> String {
        let Some((scheme, rest)) = text.split_once("://") else {
            // SCP-like text has no password, but `user:pw@host:path` was meant as one.
            if let Some(at) = text.find('@')
                && text[..at].contains(':')
                && !text[..at].contains('/')
            {
                return format!("{0}:{0}{1}", MASK, &text[at..]);
            }
            return mask_userinfo(text);
        };
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let Some(at) = rest[..auth_end].rfind('@') else {
            return text.to_owned();
        };
        let userinfo = &rest[..at];
        let is_ssh = matches!(scheme.to_ascii_lowercase().as_str(), "ssh" | "git+ssh" | "ssh+git");
        let mask = MASK;
        let masked = if is_ssh && !userinfo.contains(':') {
            userinfo.to_owned()
        } else if userinfo.contains(':') {
            format!("{mask}:{mask}")
        } else {
            mask.to_owned()
        };
        format!("{scheme}://{masked}{}", &rest[at..])
    }

    pub(super) fn legacy_parse_map(spec: &str) -> Result<PrefixMap, String> {
        let Some((from, to)) = spec.split_once('=') else {
            return Err("--map expects OLD_PREFIX=NEW_PREFIX".into());
        };
        if from.is_empty() || to.is_empty() {
            return Err("--map needs a non-empty OLD_PREFIX and NEW_PREFIX".into());
        }
        for part in [from, to] {
            if part.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(
                    "--map prefixes must not contain whitespace or control characters".into()
                );
            }
        }
        if looks_like_token(from) || looks_like_token(to) {
            return Err("--map value looks like a token; maps must not carry credentials".into());
        }
        if legacy_strip_userinfo(to).is_some() {
            let (_, rest) = to.split_once("://").unwrap_or(("", to));
            let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let userinfo = rest[..auth_end].rsplit_once('@').map_or("", |(u, _)| u);
            if userinfo.contains(':') || userinfo.contains(MASK) {
                return Err("--map NEW_PREFIX must not contain credentials".into());
            }
        }
        if to.starts_with(from) {
            return Err(
                "--map NEW_PREFIX must not start with OLD_PREFIX (the rule would match its own output)"
                    .into(),
            );
        }
        Ok(PrefixMap { from: from.to_owned(), to: to.to_owned() })
    }

    pub(super) fn legacy_split_url(text: &str) -> Result<RawUrl, String> {
        let Some((scheme_raw, rest)) = text.split_once("://") else {
            return Err("not a URL".into());
        };
        let scheme = match scheme_raw.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
            "git" => Scheme::Git,
            "file" => {
                return Err(
                    "a file:// URL is a local path; GitLab mirrors need a remote URL".into()
                );
            }
            other => {
                return Err(format!(
                    "scheme `{}` is not one GitLab mirrors accept (https, ssh, git, http)",
                    other.chars().take(20).collect::<String>()
                ));
            }
        };
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, remainder) = rest.split_at(auth_end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
                None => (Some(ui.to_owned()), None),
            },
            None => (None, None),
        };
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
                p.parse::<u16>()
                    .map_err(|_| "the URL's port is out of range (0-65535)".to_string())?,
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
        let check = format!("{}://{}", parsed.scheme.as_str(), rest);
        url::Url::parse(&check).map_err(|e| format!("not a valid URL ({e})"))?;
        Ok(parsed)
    }

    pub(super) fn legacy_from_masked_url(url: &str) -> CurrentAuth {
        let url = url.trim();
        let userinfo = if let Some(pos) = url.find("://") {
            let rest = &url[pos + 3..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..end];
            authority.rfind('@').map(|at| &authority[..at])
        } else {
            // SCP-like `user@host:path`: userinfo only when the `@` comes before the `:`.
            match (url.find('@'), url.find(':')) {
                (Some(at), Some(colon)) if at < colon => Some(&url[..at]),
                (Some(at), None) => Some(&url[..at]),
                _ => None,
            }
        };
        let Some(userinfo) = userinfo else {
            return CurrentAuth::None;
        };
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, p),
            None => (userinfo, ""),
        };
        match (!user.is_empty(), !password.is_empty()) {
            (true, true) => CurrentAuth::UserPassword,
            (true, false) => CurrentAuth::User,
            (false, true) => CurrentAuth::Password,
            (false, false) => CurrentAuth::None,
        }
    }

    pub(super) fn legacy_has_credentials(url: &str) -> bool {
        let Some((scheme, rest)) = url.split_once("://") else {
            return false;
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let Some(at) = rest[..end].rfind('@') else {
            return false;
        };
        let userinfo = &rest[..at];
        let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
        http || userinfo.contains(':') || userinfo.contains(MASK)
    }

    pub(super) fn legacy_input_secrets(input: &str) -> Vec<String> {
        let Some((scheme, rest)) = input.trim().split_once("://") else { return Vec::new() };
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let Some((userinfo, _)) = rest[..auth_end].rsplit_once('@') else { return Vec::new() };
        let is_ssh = matches!(scheme.to_ascii_lowercase().as_str(), "ssh" | "git+ssh" | "ssh+git");
        // Passwords, and usernames that look like a token (the token-as-username form). Plain
        // usernames are not scrubbed: they may legitimately equal a path segment.
        let mut parts = Vec::new();
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        parts.extend(password.map(str::to_owned));
        if !is_ssh && looks_like_token(user) {
            parts.push(user.to_owned());
        }
        let decoded: Vec<String> = parts
            .iter()
            .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned())
            .collect();
        parts.extend(decoded);
        parts.retain(|p| p != MASK);
        parts
    }
}

use legacy::*;

// ---- inputs --------------------------------------------------------------------------------

/// Mirror-URL-shaped text: a scheme (or none, or SCP-like), userinfo with masks, tokens and
/// stray delimiters, hosts, ports and paths with `@`, `?`, `#`; plus arbitrary text.
pub(crate) fn url_text() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec![
        "https://",
        "http://",
        "HTTPS://",
        "ssh://",
        "SSH://",
        "git+ssh://",
        "ssh+git://",
        "git://",
        "file://",
        "ftp://",
        "://",
        "",
        "git@",
    ]);
    let piece = prop_oneof![
        prop::sample::select(vec![
            "@",
            ":",
            "/",
            "?",
            "#",
            "*****",
            "*****:*****",
            "://",
            "u",
            "pw",
            "git",
            "oauth2",
            "svc@corp",
            "h.example",
            "github.com",
            "[::1]",
            "[2001:db8::1]",
            "%40",
            "%3A",
            "8080",
            "22",
            ".",
            "..",
            "-",
            " ",
            "glpat-CANARY0123456789",
            "ghp_0123456789abcdef",
            "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9]{1,4}",
    ];
    let host =
        prop::sample::select(vec!["h.example", "github.com", "[::1]", "h:22", "H.Example.:8443"]);
    let pieces = move |n| prop::collection::vec(piece.clone(), 0..n).prop_map(|p| p.concat());
    prop_oneof![
        3 => (scheme.clone(), pieces(10)).prop_map(|(s, p)| format!("{s}{p}")),
        3 => (scheme, pieces(4), host, "(/[a-z@.?#%]{0,6}){0,3}", pieces(4))
            .prop_map(|(s, ui, h, path, tail)| format!("{s}{ui}@{h}{path}{tail}")),
        1 => "\\PC{0,40}",
    ]
}

/// Well-formed mirror URLs as people type them and GitLab shows them: a scheme GitLab
/// mirrors accept (in any case), userinfo or none (plain, masked, percent-encoded,
/// token-shaped), a host (name, IPv4, IPv6), a port or none, a path (which may hold `@`), and
/// a query and fragment only after the path; or SCP-like `user@host:path`.
pub(crate) fn well_formed_url() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec![
        "https", "http", "ssh", "git+ssh", "ssh+git", "git", "HTTPS", "SSH", "Https",
    ]);
    let userinfo = prop_oneof![
        2 => Just(String::new()),
        2 => prop::sample::select(vec![
            "git@",
            "*****@",
            "*****:*****@",
            ":*****@",
            "oauth2:*****@",
            "deploy@",
            "svc%40corp:p%3Aw%2Fd@",
            "x-access-token:glpat-CANARY0123456789@",
            "glpat-CANARY0123456789@",
            "ghp_0123456789abcdef@",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z][a-z0-9._-]{0,8}(:[A-Za-z0-9%._~-]{1,12})?@",
    ];
    let host = prop_oneof![
        prop::sample::select(vec![
            "github.com",
            "gitlab.example.com",
            "h.example",
            "Git.Internal.Example",
            "10.0.0.7",
            "[::1]",
            "[2001:db8::1]",
        ])
        .prop_map(str::to_owned),
        "[a-z][a-z0-9-]{0,8}(\\.[a-z]{2,4}){1,2}",
    ];
    let port = prop::sample::select(vec!["", "", ":22", ":443", ":2222", ":8080"]);
    let path = "(/[A-Za-z0-9._~@-]{1,10}){1,4}(\\.git)?/?";
    let query = prop_oneof![3 => Just(String::new()), 1 => "\\?[a-z]{1,4}=[a-z0-9@/:]{0,6}"];
    let fragment = prop_oneof![3 => Just(String::new()), 1 => "#[a-z0-9@/:]{0,6}"];
    let url = (scheme, userinfo, host.clone(), port, path, query, fragment).prop_map(
        |(scheme, userinfo, host, port, path, query, fragment)| {
            format!("{scheme}://{userinfo}{host}{port}{path}{query}{fragment}")
        },
    );
    let scp = ("[a-z]{1,6}", host, "[a-z0-9~][a-z0-9/._-]{0,15}")
        .prop_map(|(user, host, path)| format!("{user}@{host}:{path}"));
    prop_oneof![6 => url, 1 => scp]
}

/// A project's `web_url` as GitLab reports it: `http(s)://host[:port][/relative root]/` and
/// the project's full path.
pub(crate) fn web_url() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["https", "http"]);
    let host = prop::sample::select(vec!["gitlab.example.com", "127.0.0.1", "[::1]", "gl.corp"]);
    let port = prop::sample::select(vec!["", ":8443", ":3000"]);
    let root = prop::sample::select(vec!["", "/gitlab"]);
    let path = "[a-z][a-z0-9_.-]{0,8}(/[a-z0-9][a-z0-9_.-]{0,8}){1,3}";
    (scheme, host, port, root, path).prop_map(|(scheme, host, port, root, path)| {
        format!("{scheme}://{host}{port}{root}/{path}")
    })
}

/// The mirror URLs, plan cells and journal lines in the repository's fixtures (the
/// `rewrite` corpus, the simulator's seed, the golden and journal plans), one text each: what
/// the callers of the copies see in the tests that run the binary.
pub(crate) fn fixture_texts() -> Vec<String> {
    let files = [
        include_str!("../../fixtures/rewrite/urls.txt"),
        include_str!("../../fixtures/rewrite/expected.csv"),
        include_str!("../../fixtures/sim/demo.json"),
        include_str!("../../fixtures/golden/demo-plan.csv"),
        include_str!("../../fixtures/golden/demo-plan-mirror-user.csv"),
        include_str!("../../fixtures/journal/plan.csv"),
        include_str!("../../fixtures/journal/finished.jsonl"),
        include_str!("../../fixtures/journal/interrupted.jsonl"),
    ];
    let mut texts = Vec::new();
    for file in files {
        for line in file.lines() {
            texts.push(line.to_owned());
            // The cells and JSON strings of the line, too.
            texts.extend(
                line.split([',', '"'])
                    .map(str::trim)
                    .filter(|cell| cell.contains("://") || cell.contains('@'))
                    .map(str::to_owned),
            );
        }
    }
    texts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// `rewrite::strip_userinfo` (used by `--map` matching).
    #[test]
    fn strip_userinfo_agrees(text in url_text()) {
        prop_assert_eq!(super::strip_userinfo(&text), legacy_strip_userinfo(&text));
    }

    /// `rewrite::mask_url` (the `rewrite` command's input column, `plan`'s current_url). One
    /// deliberate change, for text without `://`: the userinfo runs to the last `@` before the
    /// first `/` (`redact::scp_userinfo`), so `git@:@h` or `oauth2:p@ss@h/r` is masked whole
    /// where the old copy stopped at the first `@`. It never masks less.
    #[test]
    fn mask_url_agrees(text in url_text()) {
        let (new, old) = (super::mask_url(&text), legacy_mask_url(&text));
        match crate::redact::scp_userinfo(&text) {
            Some(userinfo) if !text.contains("://") && new != old => {
                prop_assert!(userinfo.contains(':'), "{:?}: {} vs {}", text, new, old);
                prop_assert_eq!(new, format!("*****:*****{}", &text[userinfo.len()..]));
            }
            _ => prop_assert_eq!(new, old),
        }
    }

    /// `rewrite::parse_map`, whose NEW_PREFIX must carry no credentials.
    #[test]
    fn parse_map_agrees(from in url_text(), to in url_text()) {
        let spec = format!("{from}={to}");
        prop_assert_eq!(super::parse_map(&spec), legacy_parse_map(&spec));
    }

    /// `rewrite::syntax::split_url`: user, password, host and port, and the remainder are the
    /// splitter's parts.
    #[test]
    fn split_url_agrees(text in url_text()) {
        let old = legacy_split_url(&text);
        let new = super::syntax::split_url(&text);
        prop_assert_eq!(format!("{new:?}"), format!("{old:?}"));
        match (&old, split_authority(&text)) {
            (Err(e), None) => prop_assert_eq!(e.as_str(), "not a URL"),
            (Err(_), Some(_)) => {}
            (Ok(_), None) => prop_assert!(false, "split_url accepted text without ://"),
            (Ok(u), Some(a)) => {
                prop_assert_eq!(u.user.as_deref(), a.user());
                prop_assert_eq!(u.password.as_deref(), a.password());
                let port = u.port_raw.as_ref().map(|p| format!(":{p}")).unwrap_or_default();
                prop_assert_eq!(format!("{}{port}", u.host_raw), a.host_port);
                let query = u.query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
                let fragment = u.fragment.as_ref().map(|f| format!("#{f}")).unwrap_or_default();
                prop_assert_eq!(format!("{}{query}{fragment}", u.path), a.rest);
            }
        }
    }

    /// `plan::CurrentAuth::from_masked_url` (GitLab's masked URL to a credential kind). One
    /// deliberate change, for text without `://` only: it is read by `redact::scp_userinfo`
    /// (up to the last `@` before the first `/`), so `user:pw@host:path` counts as a password,
    /// as `mask_url` masks it; plain `user@host:path` reads as before.
    #[test]
    fn from_masked_url_agrees(text in url_text()) {
        let (new, old) = (crate::plan::CurrentAuth::from_masked_url(&text), legacy_from_masked_url(&text));
        let t = text.trim();
        if t.contains("://") || !t.contains('@') {
            prop_assert_eq!(new, old);
        } else {
            // Text without `://`: the userinfo runs to the last `@` before the first `/`.
            use crate::plan::CurrentAuth;
            let head = t.find('/').map_or(t, |slash| &t[..slash]);
            let expected = match head.rfind('@') {
                None => CurrentAuth::None,
                Some(at) => {
                    let (user, password) = t[..at].split_once(':').unwrap_or((&t[..at], ""));
                    match (!user.is_empty(), !password.is_empty()) {
                        (true, true) => CurrentAuth::UserPassword,
                        (true, false) => CurrentAuth::User,
                        (false, true) => CurrentAuth::Password,
                        (false, false) => CurrentAuth::None,
                    }
                }
            };
            prop_assert_eq!(new, expected, "{:?}", t);
            // Where the old reading saw no `:` before the `@` and no `/` either, both agree.
            if let Some(at) = t.find('@')
                && head.matches('@').count() == 1
                && !t[..at].contains(':')
                && !t[..at].contains('/')
                && t[at..].contains(':')
            {
                prop_assert_eq!(new, old, "{:?}", t);
            }
        }
    }

    /// `plan::csv_io::has_credentials` (a plan's `new_url` must not carry credentials).
    #[test]
    fn csv_has_credentials_agrees(text in url_text()) {
        prop_assert_eq!(crate::plan::csv_io::has_credentials(&text), legacy_has_credentials(&text));
    }

    /// `cmd::rewrite::input_secrets` (credential values scrubbed from the `rewrite` output).
    #[test]
    fn input_secrets_agrees(text in url_text()) {
        prop_assert_eq!(crate::cmd::rewrite::input_secrets(&text), legacy_input_secrets(&text));
    }
}
