//! Service-account credentials per source host, at run time: the rules they give, the
//! credential of one host, and the pair GitLab stores for a mirror URL. They are
//! built from the command line or a `--credentials` file by `crate::config`. No message here
//! ever contains a token value.

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::probe::HostKind;
use crate::rewrite::{self, PrefixMap, Rules, SourceHost};

/// The service account for one source host.
#[derive(Clone)]
pub(crate) struct HostCredential {
    /// Normalized host (lowercase, A-label), compared exactly with mirror URL hosts.
    pub(crate) host: String,
    /// The https port the credentials are for; `None`: 443. Another port of the same host
    /// gets no token.
    pub(crate) port: Option<u16>,
    /// Username sent with the token (decoded); `None`: the token itself is the username.
    pub(crate) user: Option<String>,
    /// The token, when it was available (`apply` requires it).
    pub(crate) token: Option<SecretString>,
    /// Where the token comes from, for messages ("env MIRROR_TOKEN", "file /path").
    pub(crate) token_source: String,
    /// The host's software, when the credentials file names it (`kind`); github.com,
    /// gitlab.com and bitbucket.org are known without it (see [`HostCredential::kind`]).
    pub(crate) kind: Option<HostKind>,
    /// When the token expires, when the credentials file says (`expires_at`).
    pub(crate) expires_at: Option<OffsetDateTime>,
}

impl HostCredential {
    /// A credential for `host` with no `kind` or `expires_at`.
    pub(crate) fn new(
        host: impl Into<String>,
        user: Option<String>,
        token: Option<SecretString>,
        token_source: impl Into<String>,
    ) -> HostCredential {
        HostCredential {
            host: host.into(),
            port: None,
            user,
            token,
            token_source: token_source.into(),
            kind: None,
            expires_at: None,
        }
    }

    /// The host's kind: known for github.com, gitlab.com and bitbucket.org, else the one
    /// the credentials file gives, else `other` (a conflict was refused when the file was
    /// read, so it reads as the given kind here).
    pub(crate) fn kind(&self) -> HostKind {
        HostKind::resolve(&self.host, self.kind)
            .unwrap_or_else(|_| HostKind::known(&self.host).unwrap_or(HostKind::Other))
    }
}

impl std::fmt::Debug for HostCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCredential")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("token_source", &self.token_source)
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Every source host's credentials.
#[derive(Debug, Default, Clone)]
pub(crate) struct Credentials {
    /// One entry per source host, hosts unique.
    pub(crate) hosts: Vec<HostCredential>,
}

impl Credentials {
    /// The rewrite rules for these credentials.
    pub(crate) fn rules(&self, maps: Vec<PrefixMap>, prefer_https: bool) -> Rules {
        Rules {
            source_hosts: self
                .hosts
                .iter()
                .map(|h| SourceHost { host: h.host.clone(), user: h.user.clone(), port: h.port })
                .collect(),
            maps,
            prefer_https,
        }
    }

    /// The credential for exactly this (normalized) host and https port (`None`: 443).
    pub(crate) fn for_host(&self, host: &str, port: Option<u16>) -> Option<&HostCredential> {
        let port = port.unwrap_or(443);
        self.hosts.iter().find(|h| h.host == host && h.port.unwrap_or(443) == port)
    }

    /// The credential a mirror URL on a source host gets: the URL's parsed host and port
    /// compared exactly (`rewrite::source_host_for`).
    pub(crate) fn for_url(&self, url: &str) -> Option<&HostCredential> {
        let rules = self.rules(Vec::new(), false);
        let host = rewrite::source_host_for(url, &rules)?;
        self.for_host(&host.host, host.port)
    }

    /// The service username and password a mirror with this `new_url` gets: exactly the
    /// pair GitLab will store, raw (`apply` sends it, the probe proves it). `None` when the
    /// URL is not https, its host is not a source host, or the token is missing. Without a
    /// configured username the token itself is the username and the password is empty.
    pub(crate) fn service_pair(&self, new_url: &str) -> Option<(SecretString, SecretString)> {
        if !url::Url::parse(new_url).is_ok_and(|u| u.scheme() == "https") {
            return None;
        }
        let cred = self.for_url(new_url)?;
        let token = cred.token.clone()?;
        Some(match &cred.user {
            None => (token, SecretString::from(String::new())),
            Some(user) => (SecretString::from(user.clone()), token),
        })
    }
}
