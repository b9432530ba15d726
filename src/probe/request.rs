//! The HTTP side of the probe and the token watch: one client setup (TLS verified with an
//! optional extra CA, proxies as the API client uses them, no redirects, timeouts) and one
//! discovery request with its transport errors sorted into `unreachable` and `tls`.
//!
//! The client setup repeats the `--ca-cert` and proxy rules of `gitlab::client` (a CA bundle
//! in PEM; no proxy for loopback URLs; otherwise the environment's `HTTPS_PROXY`/`NO_PROXY`).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::classify::probe_url;
use super::codes::service;
use crate::rewrite::Direction;

/// Errors setting the probe up (never about one row: those are probe codes).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The extra CA certificate cannot be used.
    #[error("--ca-cert: {0}")]
    CaCert(String),
    /// The HTTP client cannot be built, or the proxy URL is unusable.
    #[error("cannot set up the probe's HTTP client: {0}")]
    Client(String),
    /// A probe target is not a URL the probe may send credentials to.
    #[error("cannot probe {url}: {why}")]
    Target {
        /// The URL, without userinfo.
        url: String,
        /// Why not.
        why: &'static str,
    },
    /// A credential contains bytes that cannot go into an HTTP header.
    #[error("the credentials for {host} cannot be sent in an HTTP header")]
    Credentials {
        /// The host.
        host: String,
    },
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// As the environment says (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`), as the API client.
    #[default]
    FromEnv,
    /// Through this HTTP proxy, for every https request (tests, without touching the env).
    Via(Url),
    /// Never through a proxy.
    Direct,
}

/// How the probe and the token watch talk HTTP.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Extra trusted root certificates, PEM (the content of `--ca-cert`).
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Proxy choice.
    pub proxy: ProxyMode,
    /// Connect timeout (default 10 s).
    pub(crate) connect_timeout: Duration,
    /// Whole-request timeout, body included (default 30 s).
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|p| format!("{} bytes", p.len())))
            .field("proxy", &self.proxy)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            ca_cert_pem: None,
            proxy: ProxyMode::FromEnv,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
        }
    }
}

/// The probe's User-Agent: some git hosts only speak smart HTTP to agents named `git/…`.
pub(crate) const USER_AGENT: &str =
    concat!("git/2.0 (compatible; glmirror/", env!("CARGO_PKG_VERSION"), ")");

/// A proxied client and a direct one (for loopback URLs).
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    proxied: reqwest::Client,
    direct: reqwest::Client,
}

impl Clients {
    pub(crate) fn build(s: &HttpSettings, user_agent: &str) -> Result<Clients, ProbeError> {
        let certs = match &s.ca_cert_pem {
            None => Vec::new(),
            Some(pem) => {
                let certs = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| ProbeError::CaCert(format!("not a PEM certificate ({e})")))?;
                if certs.is_empty() {
                    return Err(ProbeError::CaCert("no PEM certificate found".into()));
                }
                certs
            }
        };
        let base = || {
            let mut b = reqwest::Client::builder()
                .user_agent(user_agent)
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(s.connect_timeout.min(s.timeout))
                .timeout(s.timeout);
            for c in &certs {
                b = b.add_root_certificate(c.clone());
            }
            b
        };
        let proxied = match &s.proxy {
            ProxyMode::FromEnv => base(),
            ProxyMode::Via(url) => base().proxy(
                reqwest::Proxy::https(url.as_str())
                    .map_err(|e| ProbeError::Client(format!("proxy URL: {e}")))?,
            ),
            ProxyMode::Direct => base().no_proxy(),
        };
        let build = |b: reqwest::ClientBuilder| {
            b.build().map_err(|e| ProbeError::Client(e.without_url().to_string()))
        };
        Ok(Clients { proxied: build(proxied)?, direct: build(base().no_proxy())? })
    }

    /// The client for a URL: loopback hosts are never reached through a proxy.
    pub(crate) fn for_url(&self, url: &Url) -> &reqwest::Client {
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        if loopback { &self.direct } else { &self.proxied }
    }
}

/// The parts of an answer the probe reads.
#[derive(Debug, Clone)]
pub(crate) struct RawAnswer {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) retry_after: Option<String>,
    /// At most the body limit; cut back to the last full line when it was cut.
    pub(crate) body: Vec<u8>,
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// DNS, connect, proxy, reset or timeout.
    Unreachable(String),
    /// TLS handshake or certificate.
    Tls(String),
}

/// `Authorization: Basic …` for the exact username and password GitLab will store, marked
/// sensitive so no debug output of the request shows it.
pub(crate) fn basic_auth(
    host: &str,
    username: &SecretString,
    password: &SecretString,
) -> Result<HeaderValue, ProbeError> {
    use base64::Engine as _;
    let pair =
        SecretString::from(format!("{}:{}", username.expose_secret(), password.expose_secret()));
    let encoded = SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(pair.expose_secret().as_bytes()),
    );
    let mut value = HeaderValue::from_str(&format!("Basic {}", encoded.expose_secret()))
        .map_err(|_| ProbeError::Credentials { host: host.to_owned() })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Send one discovery request: `GET <url>/info/refs?service=…` with the credentials up
/// front, `Git-Protocol: version=2` for upload-pack only, redirects not followed.
pub(crate) async fn discover(
    client: &reqwest::Client,
    url: &Url,
    direction: Direction,
    auth: &HeaderValue,
    max_body: usize,
) -> Result<RawAnswer, Failure> {
    let mut headers = HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, auth.clone());
    headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("*/*"));
    headers.insert(reqwest::header::PRAGMA, HeaderValue::from_static("no-cache"));
    if direction == Direction::Pull {
        // git itself never asks for v2 on a push, and git http-backend then leaves out the
        // service line, which would read as a broken answer.
        headers.insert("git-protocol", HeaderValue::from_static("version=2"));
    }
    let target = probe_url(url, direction);
    debug_assert!(target.query() == Some(&format!("service={}", service(direction))[..]));
    let mut resp = client.get(target).headers(headers).send().await.map_err(failure)?;
    let header = |name: reqwest::header::HeaderName| {
        resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let status = resp.status().as_u16();
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let location = header(reqwest::header::LOCATION);
    let retry_after = header(reqwest::header::RETRY_AFTER);
    let mut body = Vec::new();
    let mut cut = false;
    while body.len() < max_body {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            // A body that breaks off is read as far as it came.
            Err(e) if !body.is_empty() => {
                tracing::debug!("probe body cut short: {}", e.without_url());
                break;
            }
            Err(e) => return Err(failure(e)),
        }
    }
    if body.len() >= max_body {
        body.truncate(max_body);
        cut = true;
    }
    if cut && let Some(nl) = body.iter().rposition(|&b| b == b'\n') {
        body.truncate(nl + 1);
    }
    Ok(RawAnswer { status, content_type, location, retry_after, body })
}

/// Sort a transport error into `tls` or `unreachable`, with a short cause (no URL).
pub(crate) fn failure(e: reqwest::Error) -> Failure {
    let is_timeout = e.is_timeout();
    let mut tls = false;
    let mut cause = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if err.is::<rustls::Error>()
            || err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            tls = true;
        }
        cause = err.to_string();
        source = err.source();
    }
    let cause = crate::redact::sanitize_for_terminal(&crate::redact::mask_userinfo(&cause));
    if tls {
        Failure::Tls(format!(
            "TLS failed: {cause} (pass --ca-cert with your CA's certificate if the host uses one)"
        ))
    } else if is_timeout {
        Failure::Unreachable(format!("timed out: {cause}"))
    } else {
        Failure::Unreachable(format!("no answer: {cause}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_sensitive_and_exact() {
        let v = basic_auth(
            "h",
            &SecretString::from("x-access-token".to_owned()),
            &SecretString::from("tok".to_owned()),
        )
        .unwrap();
        assert!(v.is_sensitive());
        assert_eq!(v.to_str().unwrap(), "Basic eC1hY2Nlc3MtdG9rZW46dG9r");
        assert!(!format!("{v:?}").contains("eC1h"));
        // Token as username, empty password: `token:` as git sends it.
        let v = basic_auth(
            "h",
            &SecretString::from("tok".to_owned()),
            &SecretString::from(String::new()),
        )
        .unwrap();
        assert_eq!(v.to_str().unwrap(), "Basic dG9rOg==");
        let err = basic_auth(
            "h",
            &SecretString::from("a\nb".to_owned()),
            &SecretString::from(String::new()),
        );
        assert!(err.is_ok(), "base64 never contains a newline");
    }

    #[test]
    fn bad_ca_pem_is_refused() {
        let s =
            HttpSettings { ca_cert_pem: Some(b"not a pem".to_vec()), ..HttpSettings::default() };
        assert!(matches!(Clients::build(&s, USER_AGENT), Err(ProbeError::CaCert(_))));
    }

    #[test]
    fn user_agent_starts_with_git() {
        assert!(USER_AGENT.starts_with("git/"));
        assert!(USER_AGENT.contains("glmirror/"));
    }
}
