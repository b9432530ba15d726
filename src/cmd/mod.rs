//! One module per subcommand: turns parsed arguments into checked settings and runs the job.
//! Shared pieces (resolving the GitLab URL and token) live here.

pub mod apply;
pub mod demo;
pub mod docs;
pub mod inventory;
pub mod plan;
pub mod rewrite;
pub mod sim;
pub mod status;

use secrecy::SecretString;
use url::Url;

use crate::cli::GlobalArgs;
use crate::error::AppError;
use crate::redact;
use crate::secret;

/// Environment variables consulted, in order, for the GitLab base URL.
pub const GITLAB_URL_ENV: &[&str] = &["GITLAB_URL", "GITLAB_HOST", "CI_SERVER_URL"];
/// Environment variables consulted, in order, for the GitLab API token.
pub const GITLAB_TOKEN_ENV: &[&str] = &["GITLAB_TOKEN", "GITLAB_PRIVATE_TOKEN"];

/// Where to reach GitLab and with which token.
pub struct Connection {
    /// Base URL of the instance (no `/api/v4`), without credentials.
    pub base_url: Url,
    /// The API token.
    pub token: SecretString,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("base_url", &self.base_url.as_str())
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// Resolve `--gitlab-url` (or its env fallbacks) and the API token.
pub fn connection(global: &GlobalArgs) -> Result<Connection, AppError> {
    let raw = match &global.gitlab_url {
        Some(url) => url.clone(),
        None => GITLAB_URL_ENV
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
            .ok_or_else(|| {
                AppError::usage_hint(
                    "no GitLab URL given",
                    "pass --gitlab-url https://gitlab.example.com or set GITLAB_URL",
                )
            })?,
    };
    let base_url = parse_gitlab_url(&raw)?;
    let token = match &global.gitlab_token_file {
        Some(path) => secret::read_token_file(path, "--gitlab-token-file")?,
        None => secret::token_from_env(GITLAB_TOKEN_ENV)
            .map(|(token, _)| token)
            .ok_or_else(|| {
                AppError::usage_hint(
                    "no GitLab API token",
                    "set GITLAB_TOKEN (a token with the `api` scope) or pass --gitlab-token-file PATH",
                )
            })?,
    };
    Ok(Connection { base_url, token })
}

/// Parse and check a GitLab base URL: http(s) only, no credentials, plain http only on
/// loopback. A trailing `/api/v4` is tolerated and removed.
pub fn parse_gitlab_url(raw: &str) -> Result<Url, AppError> {
    let raw = raw.trim();
    // GITLAB_HOST is sometimes a bare host name.
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("https://{raw}") };
    let mut url = Url::parse(&with_scheme).map_err(|e| {
        AppError::usage(format!("invalid GitLab URL {}: {e}", redact::mask_userinfo(raw)))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AppError::usage_hint(
            "the GitLab URL must not contain credentials",
            "put the token in GITLAB_TOKEN or --gitlab-token-file instead",
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(AppError::usage_hint(
                format!(
                    "refusing plain http:// for {}: the token would travel in clear text",
                    url.host_str().unwrap_or("")
                ),
                "use https:// (plain http is only accepted for loopback addresses)",
            ));
        }
        other => return Err(AppError::usage(format!("unsupported GitLab URL scheme {other}:"))),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(AppError::usage("the GitLab URL must not have a query or fragment"));
    }
    let path = url.path().trim_end_matches('/').trim_end_matches("/api/v4").to_owned();
    url.set_path(&format!("{path}/"));
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_urls_are_checked() {
        assert_eq!(
            parse_gitlab_url("https://gitlab.example.com").unwrap().as_str(),
            "https://gitlab.example.com/"
        );
        assert_eq!(
            parse_gitlab_url("gitlab.example.com").unwrap().as_str(),
            "https://gitlab.example.com/"
        );
        assert_eq!(
            parse_gitlab_url("https://example.com/gitlab/api/v4/").unwrap().as_str(),
            "https://example.com/gitlab/"
        );
        assert!(parse_gitlab_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_gitlab_url("http://localhost:8080").is_ok());
        assert!(parse_gitlab_url("http://[::1]:8080").is_ok());
        assert!(parse_gitlab_url("http://gitlab.example.com").is_err());
        assert!(parse_gitlab_url("https://u:p@gitlab.example.com").is_err());
        assert!(parse_gitlab_url("ftp://gitlab.example.com").is_err());
    }
}
