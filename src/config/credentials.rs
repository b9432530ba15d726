//! `--source-host`/`--source-user`/`MIRROR_TOKEN`/`--source-token-file`, or a `--credentials`
//! TOML file, into [`Credentials`]: hosts normalized, usernames decoded and checked, tokens read
//! when available.
//!
//! In a `--credentials` file, a relative `token_file` is resolved against the file's own
//! directory. Tokens are optional here: `rewrite` and `plan` only need the hosts and usernames;
//! `apply` calls [`require_tokens`]. No message here ever contains a token value.

use std::path::Path;

use crate::cli::CredentialArgs;
use crate::config::{ConfigError, tokens};
use crate::credentials::{Credentials, HostCredential};
use crate::probe::HostKind;
use crate::redact;

/// The environment variable holding the service token for `--source-host`.
pub(crate) const MIRROR_TOKEN_ENV: &str = "MIRROR_TOKEN";

const USER_FORMS: &str = "usual usernames: GitLab: any name or `oauth2`; Bitbucket Cloud: \
                          `x-token-auth`; Azure DevOps: any name";

/// `apply` (and `plan --probe`) need every source host's token: fail naming the missing
/// source, never a value.
pub(crate) fn require_tokens(creds: &Credentials) -> Result<(), ConfigError> {
    if let Some(h) = creds.hosts.iter().find(|h| h.token.is_none()) {
        return Err(ConfigError::invalid_hint(
            format!("no service token for {} ({} is not set)", h.host, h.token_source),
            "set MIRROR_TOKEN, or pass --source-token-file PATH or a --credentials file",
        ));
    }
    Ok(())
}

/// Build from the command line. Tokens are read when available (env or file) but not
/// required; see [`require_tokens`].
pub(crate) fn from_args(args: &CredentialArgs) -> Result<Credentials, ConfigError> {
    if let Some(path) = &args.credentials {
        if !args.source_hosts.is_empty()
            || args.source_user.is_some()
            || args.source_token_file.is_some()
        {
            return Err(ConfigError::invalid(
                "--credentials cannot be combined with --source-host, --source-user or \
                 --source-token-file",
            ));
        }
        return from_file(path);
    }
    if args.source_hosts.is_empty() {
        if args.source_user.is_some() || args.source_token_file.is_some() {
            return Err(ConfigError::invalid_hint(
                "--source-user and --source-token-file need --source-host",
                "add --source-host HOST for each host whose mirrors get the service token",
            ));
        }
        return Ok(Credentials::default());
    }
    let user = match &args.source_user {
        Some(u) => Some(check_user(u, "--source-user")?),
        None => None,
    };
    let (token, token_source) = match &args.source_token_file {
        Some(path) => {
            check_path_arg(path, "--source-token-file")?;
            (
                Some(tokens::read_token_file(path, "--source-token-file")?),
                format!("file {}", path.display()),
            )
        }
        None => (
            tokens::token_from_env(&[MIRROR_TOKEN_ENV]).map(|(t, _)| t),
            format!("env {MIRROR_TOKEN_ENV}"),
        ),
    };
    let mut hosts: Vec<HostCredential> = Vec::new();
    for raw in &args.source_hosts {
        let (host, port) = normalize_source_host(raw, "--source-host")?;
        if hosts.iter().any(|h| h.host == host && h.port == port) {
            return Err(ConfigError::invalid(format!(
                "--source-host {} is given twice",
                shown_host(&host, port)
            )));
        }
        hosts.push(HostCredential {
            port,
            ..HostCredential::new(host, user.clone(), token.clone(), token_source.clone())
        });
    }
    let creds = Credentials { hosts };
    check_users(&creds, "--source-user")?;
    Ok(creds)
}

fn from_file(path: &Path) -> Result<Credentials, ConfigError> {
    check_path_arg(path, "--credentials")?;
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::read(path, e))?;
    let shown = path.display();
    // The parser's own message can quote the offending line (maybe a token): report only
    // its position and a generic description.
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .and_then(|s| text.get(..s.start))
            .map_or(1, |before| before.matches('\n').count() + 1);
        ConfigError::invalid(format!("{shown}:{line}: not valid TOML"))
    })?;
    for key in table.keys() {
        if key != "host" {
            return Err(ConfigError::invalid_hint(
                format!("{shown}: unknown top-level key `{}`", sanitize_key(key)),
                "the file holds [[host]] entries with host, user, token_env or token_file",
            ));
        }
    }
    let entries = match table.get("host") {
        Some(toml::Value::Array(a)) => a.as_slice(),
        None => &[],
        Some(_) => {
            return Err(ConfigError::invalid(format!(
                "{shown}: `host` must be a list of [[host]] tables"
            )));
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut hosts: Vec<HostCredential> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let n = i + 1;
        let Some(t) = entry.as_table() else {
            return Err(ConfigError::invalid(format!(
                "{shown}: [[host]] entry {n} is not a table"
            )));
        };
        for key in t.keys() {
            match key.as_str() {
                "host" | "user" | "token_env" | "token_file" | "kind" | "expires_at" => {}
                "token" | "password" | "secret" => {
                    return Err(ConfigError::invalid_hint(
                        format!("{shown}: [[host]] entry {n} has a literal `{key}` key"),
                        "never write a token into this file: use token_env = \"VAR\" or \
                         token_file = \"/path/to/file\" (chmod 600)",
                    ));
                }
                other => {
                    return Err(ConfigError::invalid_hint(
                        format!(
                            "{shown}: [[host]] entry {n} has unknown key `{}`",
                            sanitize_key(other)
                        ),
                        "allowed keys: host, user, token_env, token_file, kind, expires_at",
                    ));
                }
            }
        }
        let get = |k: &str| -> Result<Option<&str>, ConfigError> {
            match t.get(k) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(ConfigError::invalid(format!(
                    "{shown}: [[host]] entry {n}: `{k}` must be a string"
                ))),
            }
        };
        let Some(raw_host) = get("host")? else {
            return Err(ConfigError::invalid(format!("{shown}: [[host]] entry {n} has no `host`")));
        };
        let (host, port) = normalize_source_host(raw_host, &format!("{shown}: entry {n}: host"))?;
        if hosts.iter().any(|h| h.host == host && h.port == port) {
            return Err(ConfigError::invalid(format!(
                "{shown}: host {} appears twice",
                shown_host(&host, port)
            )));
        }
        let user = match get("user")? {
            Some(u) => Some(check_user(u, &format!("{shown}: entry {n}: user"))?),
            None => None,
        };
        let (token, token_source) = match (get("token_env")?, get("token_file")?) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(format!(
                    "{shown}: [[host]] entry {n} has both token_env and token_file"
                )));
            }
            (Some(var), None) => {
                if redact::looks_like_token(var)
                    || var.is_empty()
                    || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(ConfigError::invalid_hint(
                        format!(
                            "{shown}: [[host]] entry {n}: token_env must be the name of an \
                             environment variable"
                        ),
                        "put the token in the environment and write its name, e.g. \
                         token_env = \"GITHUB_MIRROR_TOKEN\"",
                    ));
                }
                (tokens::token_from_var(var), format!("env {var}"))
            }
            (None, Some(file)) => {
                let p = base.join(file);
                if redact::looks_like_token(file) && !p.exists() {
                    return Err(ConfigError::invalid_hint(
                        format!(
                            "{shown}: [[host]] entry {n}: token_file looks like a token, \
                             not a path"
                        ),
                        "write the token to a file (chmod 600) and give its path",
                    ));
                }
                let token = tokens::read_token_file(&p, "token_file")?;
                (Some(token), format!("file {}", p.display()))
            }
            (None, None) => {
                return Err(ConfigError::invalid(format!(
                    "{shown}: [[host]] entry {n} ({host}) needs token_env or token_file"
                )));
            }
        };
        let kind = match get("kind")? {
            None => None,
            Some(k) => {
                let given: HostKind = k.parse().map_err(|_| {
                    ConfigError::invalid_hint(
                        format!(
                            "{shown}: [[host]] entry {n} ({host}): unknown kind `{}`",
                            sanitize_key(k)
                        ),
                        "kinds: github-enterprise, gitlab, bitbucket-server, other (github.com, \
                         gitlab.com and bitbucket.org are known)",
                    )
                })?;
                HostKind::resolve(&host, Some(given)).map_err(|e| {
                    ConfigError::invalid(format!("{shown}: [[host]] entry {n}: {e}"))
                })?;
                Some(given)
            }
        };
        let expires_at = match get("expires_at")? {
            None => None,
            Some(text) => Some(crate::probe::watch::parse_expires_at(text).map_err(|_| {
                ConfigError::invalid_hint(
                    format!("{shown}: [[host]] entry {n} ({host}): expires_at is not a date"),
                    "write expires_at = \"YYYY-MM-DD\" or an RFC 3339 time such as \
                     \"2026-07-01T12:00:00Z\"",
                )
            })?),
        };
        hosts.push(HostCredential {
            port,
            kind,
            expires_at,
            ..HostCredential::new(host, user, token, token_source)
        });
    }
    let creds = Credentials { hosts };
    check_users(&creds, &format!("{shown}: user"))?;
    Ok(creds)
}

/// Every source host other than github.com needs a username (only GitHub accepts the
/// token as the username).
fn check_users(creds: &Credentials, flag: &str) -> Result<(), ConfigError> {
    for h in &creds.hosts {
        if h.user.is_none() && h.host != "github.com" {
            return Err(ConfigError::invalid_hint(
                format!(
                    "{flag} is required for {}: only GitHub accepts the token as the username",
                    h.host
                ),
                USER_FORMS,
            ));
        }
        if h.host == "bitbucket.org" && h.user.is_none() {
            return Err(ConfigError::invalid_hint(
                format!("{flag} is required for bitbucket.org"),
                USER_FORMS,
            ));
        }
    }
    Ok(())
}

fn sanitize_key(key: &str) -> String {
    if redact::looks_like_token(key) {
        "<redacted>".into()
    } else {
        crate::redact::sanitize_for_terminal(&key.chars().take(40).collect::<String>())
    }
}

/// A path option whose value looks like a token is refused without echoing it.
fn check_path_arg(path: &Path, flag: &str) -> Result<(), ConfigError> {
    let shown = path.to_string_lossy();
    if redact::looks_like_token(&shown) && !path.exists() {
        return Err(ConfigError::invalid_hint(
            format!("{flag} expects a file path, and the value given looks like a token"),
            "never put a token on the command line: write it to a file (chmod 600) or set it \
             in the environment",
        ));
    }
    Ok(())
}

/// Check and decode a configured username (decode-user: `%40` -> `@`, once).
fn check_user(raw: &str, flag: &str) -> Result<String, ConfigError> {
    if redact::looks_like_token(raw) {
        return Err(ConfigError::invalid_hint(
            format!("{flag} looks like a token, not a username"),
            format!(
                "the token goes in env {MIRROR_TOKEN_ENV} or --source-token-file; {USER_FORMS}"
            ),
        ));
    }
    let user = crate::rewrite::decode_user(raw.trim());
    if user.is_empty() {
        return Err(ConfigError::invalid(format!("{flag} is empty")));
    }
    if user.chars().any(|c| c.is_control() || c.is_whitespace() || c == ':') {
        return Err(ConfigError::invalid(format!(
            "{flag} must not contain whitespace, control characters or `:`"
        )));
    }
    if !user.starts_with(|c: char| c.is_alphanumeric()) {
        return Err(ConfigError::invalid(format!(
            "{flag} must start with a letter or digit (GitLab refuses other mirror usernames)"
        )));
    }
    Ok(user)
}

/// `host` or `host:port`, for messages.
fn shown_host(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// Normalize a source host: lowercase, IDNA A-label, and the https port it names (`None`: the
/// default 443, also when `:443` is given); refuse schemes, paths, userinfo and bad ports.
/// Credentials are scoped to host and port: `github.com` gets no token on port 8443.
fn normalize_source_host(raw: &str, flag: &str) -> Result<(String, Option<u16>), ConfigError> {
    let raw = raw.trim();
    if redact::looks_like_token(raw) {
        return Err(ConfigError::invalid_hint(
            format!("{flag} looks like a token, not a host name"),
            format!("the token goes in env {MIRROR_TOKEN_ENV} or --source-token-file"),
        ));
    }
    let shown = crate::redact::excerpt(raw, 200);
    if raw.contains("://") {
        return Err(ConfigError::invalid_hint(
            format!("{flag} {shown}: give a host name, not a URL"),
            "for example --source-host github.com",
        ));
    }
    if raw.contains(['/', '@', '?', '#', '\\']) || raw.chars().any(char::is_whitespace) {
        return Err(ConfigError::invalid(format!(
            "{flag} {shown}: give only a host name (no path, user or spaces)"
        )));
    }
    // `host:port`, `[v6]:port`; a bare IPv6 address has colons but no port.
    let (name, port_text) = if let Some(rest) = raw.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, "")) => (format!("[{v6}]"), None),
            Some((v6, tail)) => match tail.strip_prefix(':') {
                Some(port) => (format!("[{v6}]"), Some(port)),
                None => {
                    return Err(ConfigError::invalid(format!(
                        "{flag} {shown}: text after the bracketed address"
                    )));
                }
            },
            None => return Err(ConfigError::invalid(format!("{flag} {shown}: unclosed `[`"))),
        }
    } else if raw.parse::<std::net::Ipv6Addr>().is_ok() {
        (format!("[{raw}]"), None)
    } else {
        match raw.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (raw.to_owned(), None),
        }
    };
    let port = match port_text {
        None => None,
        Some(text) => match text.parse::<u16>() {
            Ok(p) if p > 0 && text.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p).filter(|&p| p != 443)
            }
            _ => {
                return Err(ConfigError::invalid_hint(
                    format!("{flag} {shown}: the port must be a number from 1 to 65535"),
                    "name the port only when the source host serves https on another port than \
                     443, e.g. --source-host git.example.com:8443",
                ));
            }
        },
    };
    let host = crate::rewrite::normalize_host(&name)
        .map_err(|e| ConfigError::invalid(format!("{flag} {shown}: {e}")))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::path::PathBuf;

    fn args(hosts: &[&str], user: Option<&str>) -> CredentialArgs {
        CredentialArgs {
            source_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            source_user: user.map(str::to_owned),
            source_token_file: None,
            credentials: None,
        }
    }

    fn err_text(e: &ConfigError) -> String {
        format!("{e} {:?}", e.hint())
    }

    #[test]
    fn github_needs_no_user_others_do() {
        let c = from_args(&args(&["GitHub.com"], None)).expect("ok");
        assert_eq!(c.hosts[0].host, "github.com");
        assert_eq!(c.hosts[0].user, None);
        let e =
            from_args(&args(&["github.com", "gitlab.example.com"], None)).expect_err("needs user");
        let t = err_text(&e);
        assert!(t.contains("gitlab.example.com") && t.contains("oauth2"), "{t}");
        assert!(t.contains("x-token-auth"), "{t}");
        assert!(matches!(e, ConfigError::Invalid { .. }));
    }

    #[test]
    fn hosts_are_normalized_and_checked() {
        let c = from_args(&args(&["BÜCHER.example", "[::1]"], Some("svc"))).expect("ok");
        assert_eq!(c.hosts[0].host, "xn--bcher-kva.example");
        assert_eq!(c.hosts[1].host, "[::1]");
        for bad in [
            "https://github.com",
            "github.com/org",
            "u@github.com",
            "",
            "-oProxy",
            "github.com:",
            "github.com:0",
            "github.com:x",
            "github.com:99999",
            "github.com:+1",
        ] {
            assert!(from_args(&args(&[bad], Some("svc"))).is_err(), "{bad}");
        }
        assert!(from_args(&args(&["a.example", "A.example"], Some("s"))).is_err());
    }

    #[test]
    fn a_source_host_may_name_its_port() {
        let c = from_args(&args(
            &["git.example.com:8443", "GitHub.com:443", "[::1]:8443", "git.example.com"],
            Some("svc"),
        ))
        .expect("ok");
        let hosts: Vec<_> = c.hosts.iter().map(|h| (h.host.as_str(), h.port)).collect();
        assert_eq!(
            hosts,
            [
                ("git.example.com", Some(8443)),
                ("github.com", None),
                ("[::1]", Some(8443)),
                ("git.example.com", None)
            ]
        );
        let rules = c.rules(vec![], false);
        assert_eq!(rules.source_hosts[0].port, Some(8443));
        // The default port is the same source host as no port.
        let e =
            from_args(&args(&["github.com", "github.com:443"], Some("svc"))).expect_err("twice");
        assert!(err_text(&e).contains("twice"), "{}", err_text(&e));
        assert!(c.for_host("git.example.com", Some(8443)).is_some());
        assert!(c.for_host("git.example.com", Some(9443)).is_none());
        // The same in a credentials file.
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("creds.toml");
        std::fs::write(
            &f,
            "[[host]]\nhost = \"git.example.com:8443\"\nuser = \"oauth2\"\ntoken_env = \"X\"\n",
        )
        .expect("write");
        let a = CredentialArgs { credentials: Some(f), ..Default::default() };
        let c = from_args(&a).expect("ok");
        assert_eq!((c.hosts[0].host.as_str(), c.hosts[0].port), ("git.example.com", Some(8443)));
    }

    #[test]
    fn token_like_values_are_refused_without_echo() {
        let canary = "glpat-CANARY0123456789abcdef";
        for a in [args(&[canary], Some("svc")), args(&["github.com"], Some(canary))] {
            let e = from_args(&a).expect_err("refused");
            let t = err_text(&e);
            assert!(!t.contains("CANARY"), "{t}");
            assert!(t.contains("token"), "{t}");
        }
        let mut a = args(&["github.com"], None);
        a.source_token_file = Some(PathBuf::from(canary));
        let t = err_text(&from_args(&a).expect_err("refused"));
        assert!(!t.contains("CANARY"), "{t}");
    }

    #[test]
    fn user_is_decoded_and_checked() {
        let c = from_args(&args(&["h.example"], Some("svc%40corp"))).expect("ok");
        assert_eq!(c.hosts[0].user.as_deref(), Some("svc@corp"));
        let c = from_args(&args(&["h.example"], Some("svc%2540corp"))).expect("ok");
        assert_eq!(c.hosts[0].user.as_deref(), Some("svc@corp"));
        for bad in ["_svc", "a:b", " ", "*****"] {
            assert!(from_args(&args(&["h.example"], Some(bad))).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_file_is_read_and_required_for_apply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("tok");
        std::fs::write(&p, "glpat-CANARYfile\n").expect("write");
        let mut a = args(&["github.com"], None);
        a.source_token_file = Some(p.clone());
        let c = from_args(&a).expect("ok");
        assert_eq!(c.hosts[0].token.as_ref().expect("token").expose_secret(), "glpat-CANARYfile");
        require_tokens(&c).expect("has token");
        assert!(!format!("{c:?}").contains("CANARY"));

        let c = Credentials {
            hosts: vec![HostCredential::new("github.com", None, None, "env MIRROR_TOKEN")],
        };
        let t = err_text(&require_tokens(&c).expect_err("missing"));
        assert!(t.contains("MIRROR_TOKEN"), "{t}");
    }

    #[test]
    fn credentials_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tok = dir.path().join("gl.token");
        std::fs::write(&tok, "glpat-CANARYtoml").expect("write");
        let f = dir.path().join("creds.toml");
        std::fs::write(
            &f,
            "[[host]]\nhost = \"github.com\"\ntoken_env = \"GLMIRROR_TEST_UNSET_VAR\"\n\n\
             [[host]]\nhost = \"GitLab.Example.com\"\nuser = \"oauth2\"\ntoken_file = \"gl.token\"\n",
        )
        .expect("write");
        let a = CredentialArgs { credentials: Some(f.clone()), ..Default::default() };
        let c = from_args(&a).expect("ok");
        assert_eq!(c.hosts.len(), 2);
        assert!(c.hosts[0].token.is_none());
        assert_eq!(c.hosts[0].token_source, "env GLMIRROR_TEST_UNSET_VAR");
        assert_eq!(
            c.for_host("gitlab.example.com", None).and_then(|h| h.user.as_deref()),
            Some("oauth2")
        );
        assert!(require_tokens(&c).is_err());
        let rules = c.rules(vec![], true);
        assert_eq!(rules.source_hosts.len(), 2);
        assert!(rules.prefer_https);

        for (body, want) in [
            ("[[host]]\nhost = \"github.com\"\ntoken = \"glpat-CANARYliteral\"\n", "token_env"),
            ("[[host]]\nhost = \"github.com\"\ntoken_env = \"X\"\nextra = 1\n", "unknown key"),
            ("[[host]]\nhost = \"gitlab.example.com\"\ntoken_env = \"X\"\n", "required"),
            ("[[host]]\nhost = \"github.com\"\n", "token_env or token_file"),
            ("[[host]\nhost = \"glpat-CANARYbroken\n", ":1: not valid TOML"),
            ("foo = 1\n", "unknown top-level"),
        ] {
            std::fs::write(&f, body).expect("write");
            let e = from_args(&a).expect_err(body);
            let t = err_text(&e);
            assert!(t.contains(want), "{body}: {t}");
            assert!(!t.contains("CANARY"), "{t}");
        }
        let mixed = CredentialArgs {
            credentials: Some(f),
            source_hosts: vec!["github.com".into()],
            ..Default::default()
        };
        assert!(from_args(&mixed).is_err());
    }

    #[test]
    fn credentials_file_kind_and_expires_at() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("creds.toml");
        let a = CredentialArgs { credentials: Some(f.clone()), ..Default::default() };
        std::fs::write(
            &f,
            "[[host]]\nhost = \"ghe.example.com\"\nuser = \"svc\"\ntoken_env = \"X\"\n\
             kind = \"github-enterprise\"\nexpires_at = \"2026-07-01\"\n\n\
             [[host]]\nhost = \"bitbucket.org\"\nuser = \"x-token-auth\"\ntoken_env = \"X\"\n\
             expires_at = \"2026-07-01T12:00:00Z\"\n\n\
             [[host]]\nhost = \"git.example.com\"\nuser = \"svc\"\ntoken_env = \"X\"\n",
        )
        .expect("write");
        let c = from_args(&a).expect("ok");
        assert_eq!(c.hosts[0].kind(), HostKind::GitHubEnterprise);
        assert_eq!(c.hosts[0].expires_at, Some(time::macros::datetime!(2026-07-01 0:00 UTC)));
        assert_eq!(c.hosts[1].kind(), HostKind::BitbucketCloud, "known without `kind`");
        assert_eq!(c.hosts[1].expires_at, Some(time::macros::datetime!(2026-07-01 12:00 UTC)));
        assert_eq!(c.hosts[2].kind(), HostKind::Other);
        for (extra, want) in [
            ("kind = \"gitlab\"\n", "kind is known"),
            ("kind = \"sourceforge\"\n", "unknown kind"),
            ("expires_at = \"next week\"\n", "not a date"),
            ("kind = 3\n", "must be a string"),
        ] {
            std::fs::write(
                &f,
                format!("[[host]]\nhost = \"github.com\"\ntoken_env = \"X\"\n{extra}"),
            )
            .expect("write");
            let t = err_text(&from_args(&a).expect_err(extra));
            assert!(t.contains(want), "{extra}: {t}");
        }
    }

    #[test]
    fn user_without_host_is_a_usage_error() {
        assert!(from_args(&args(&[], Some("svc"))).is_err());
        assert!(from_args(&args(&[], None)).expect("empty").hosts.is_empty());
    }
}
