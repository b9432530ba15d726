//! Service-account credentials per source host, at run time: the rules they give, the
//! credential of one host, and the check that every token `apply` needs is there. They are
//! built from the command line or a `--credentials` file by `crate::config`. No message here
//! ever contains a token value.

use secrecy::SecretString;

use crate::config::ConfigError;
use crate::rewrite::{PrefixMap, Rules, SourceHost};

/// The service account for one source host.
#[derive(Clone)]
pub struct HostCredential {
    /// Normalized host (lowercase, A-label), compared exactly with mirror URL hosts.
    pub host: String,
    /// The https port the credentials are for; `None`: 443. Another port of the same host
    /// gets no token.
    pub port: Option<u16>,
    /// Username sent with the token (decoded); `None`: the token itself is the username.
    pub user: Option<String>,
    /// The token, when it was available (`apply` requires it).
    pub token: Option<SecretString>,
    /// Where the token comes from, for messages ("env MIRROR_TOKEN", "file /path").
    pub token_source: String,
}

impl std::fmt::Debug for HostCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCredential")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("token_source", &self.token_source)
            .finish()
    }
}

/// Every source host's credentials.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    /// One entry per source host, hosts unique.
    pub hosts: Vec<HostCredential>,
}

impl Credentials {
    /// The rewrite rules for these credentials.
    pub fn rules(&self, maps: Vec<PrefixMap>, prefer_https: bool) -> Rules {
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
    pub fn for_host(&self, host: &str, port: Option<u16>) -> Option<&HostCredential> {
        let port = port.unwrap_or(443);
        self.hosts.iter().find(|h| h.host == host && h.port.unwrap_or(443) == port)
    }

    /// `apply` needs every host's token: fail naming the missing source, never a value.
    pub fn require_tokens(&self) -> Result<(), ConfigError> {
        if let Some(h) = self.hosts.iter().find(|h| h.token.is_none()) {
            return Err(ConfigError::invalid_hint(
                format!("no service token for {} ({} is not set)", h.host, h.token_source),
                "set MIRROR_TOKEN, or pass --source-token-file PATH or a --credentials file",
            ));
        }
        Ok(())
    }
}
