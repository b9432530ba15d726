//! The stable codes shared by the rewrite engine, the plan CSV and the report: fix codes,
//! row actions and the kind of credentials a row will send.
//!
//! These strings are a file format (docs/url-rules.md §8 and docs/plan-format.md): never rename one.

use std::fmt;
use std::str::FromStr;

/// One URL or credential repair. The declaration order is the order of docs/url-rules.md's table,
/// which is also the order fixes are listed in the `fixes` column (`Ord` follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fix {
    /// SCP-like `[user@]host:path` became `ssh://[user@]host/path`.
    ScpToSsh,
    /// `http://` (default port) or `git://` became `https://` on a source host.
    ToHttps,
    /// `ssh://` became `https://` on a source host (`--prefer-https`).
    SshToHttps,
    /// The missing `.git` suffix was added.
    AddDotGit,
    /// A stale percent-encoded username (`%40`, `%2540`) was decoded.
    DecodeUser,
    /// Credentials replaced by the service account's.
    ServiceToken,
    /// A bitbucket.org mirror without a username got the service account's username.
    BitbucketOwner,
    /// A `--map` prefix rule matched.
    MapPrefix,
    /// Scheme and host were lowercased.
    LowercaseHost,
    /// The pull mirror's user changes (to `--mirror-user` or the caller).
    MirrorUser,
}

impl Fix {
    /// Every fix, in table order.
    pub(crate) const ALL: [Fix; 10] = [
        Fix::ScpToSsh,
        Fix::ToHttps,
        Fix::SshToHttps,
        Fix::AddDotGit,
        Fix::DecodeUser,
        Fix::ServiceToken,
        Fix::BitbucketOwner,
        Fix::MapPrefix,
        Fix::LowercaseHost,
        Fix::MirrorUser,
    ];

    /// The stable code written in CSV files.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Fix::ScpToSsh => "scp-to-ssh",
            Fix::ToHttps => "to-https",
            Fix::SshToHttps => "ssh-to-https",
            Fix::AddDotGit => "add-dot-git",
            Fix::DecodeUser => "decode-user",
            Fix::ServiceToken => "service-token",
            Fix::BitbucketOwner => "bitbucket-owner",
            Fix::MapPrefix => "map-prefix",
            Fix::LowercaseHost => "lowercase-host",
            Fix::MirrorUser => "mirror-user",
        }
    }

    /// Join fixes for the `fixes` column: sorted in table order, deduplicated, `;`-separated.
    pub(crate) fn join(fixes: &[Fix]) -> String {
        let mut sorted = fixes.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted.iter().map(|f| f.code()).collect::<Vec<_>>().join(";")
    }

    /// Parse a `fixes` cell (empty means none). Unknown codes are an error.
    pub(crate) fn parse_list(cell: &str) -> Result<Vec<Fix>, UnknownCode> {
        if cell.trim().is_empty() {
            return Ok(Vec::new());
        }
        cell.split(';').map(|c| c.trim().parse()).collect()
    }
}

/// What `apply` does with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Write the new URL/credentials.
    Update,
    /// Nothing to do, or a reviewer chose to skip.
    Skip,
    /// Needs a human; `reason` says what to do.
    Manual,
}

impl Action {
    /// The stable code written in CSV files.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Action::Update => "update",
            Action::Skip => "skip",
            Action::Manual => "manual",
        }
    }
}

/// Which credentials a row's write sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NewAuth {
    /// The service account's credentials for the row's host.
    Service,
    /// No credentials (e.g. public https, or ssh keys).
    None,
    /// The stored credentials are kept as they are.
    Unchanged,
}

impl NewAuth {
    /// The stable code written in CSV files.
    pub(crate) fn code(self) -> &'static str {
        match self {
            NewAuth::Service => "service",
            NewAuth::None => "none",
            NewAuth::Unchanged => "unchanged",
        }
    }
}

/// A code in a CSV cell that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} code {value:?}")]
pub struct UnknownCode {
    /// Which column's codes ("fix", "action", "auth").
    pub(crate) kind: &'static str,
    /// The offending text (sanitized by the caller before display).
    pub(crate) value: String,
}

/// `Display` and `FromStr` for a code enum, from its `code()` and the list of its variants.
macro_rules! code_traits {
    ($ty:ty, $kind:literal, [$($v:expr),* $(,)?]) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
        impl FromStr for $ty {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                [$($v),*]
                    .into_iter()
                    .find(|v: &$ty| v.code() == s)
                    .ok_or_else(|| UnknownCode { kind: $kind, value: s.to_owned() })
            }
        }
    };
}

pub(crate) use code_traits;

code_traits!(
    Fix,
    "fix",
    [
        Fix::ScpToSsh,
        Fix::ToHttps,
        Fix::SshToHttps,
        Fix::AddDotGit,
        Fix::DecodeUser,
        Fix::ServiceToken,
        Fix::BitbucketOwner,
        Fix::MapPrefix,
        Fix::LowercaseHost,
        Fix::MirrorUser,
    ]
);
code_traits!(Action, "action", [Action::Update, Action::Skip, Action::Manual]);
code_traits!(NewAuth, "auth", [NewAuth::Service, NewAuth::None, NewAuth::Unchanged]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for fix in Fix::ALL {
            assert_eq!(fix.code().parse::<Fix>(), Ok(fix));
        }
        for a in [Action::Update, Action::Skip, Action::Manual] {
            assert_eq!(a.code().parse::<Action>(), Ok(a));
        }
        for a in [NewAuth::Service, NewAuth::None, NewAuth::Unchanged] {
            assert_eq!(a.code().parse::<NewAuth>(), Ok(a));
        }
        assert!("Update".parse::<Action>().is_err());
    }

    #[test]
    fn fixes_join_in_table_order() {
        let joined =
            Fix::join(&[Fix::LowercaseHost, Fix::ScpToSsh, Fix::ServiceToken, Fix::ScpToSsh]);
        assert_eq!(joined, "scp-to-ssh;service-token;lowercase-host");
        assert_eq!(
            Fix::parse_list(&joined).unwrap(),
            vec![Fix::ScpToSsh, Fix::ServiceToken, Fix::LowercaseHost]
        );
        assert_eq!(Fix::parse_list("").unwrap(), vec![]);
        assert!(Fix::parse_list("scp-to-ssh;bogus").is_err());
    }
}
