//! The probe's stable codes: what one smart-HTTP discovery request proved ([`ProbeCode`]),
//! which git service a direction asks for ([`service`]) and what kind of host answered
//! ([`HostKind`]).
//!
//! These strings are a file format (the plan's `probe` column, the credentials file's `kind`
//! key): never rename one.

use std::fmt;
use std::str::FromStr;

use crate::rewrite::{Direction, UnknownCode, code_traits};

/// The result of probing one row, a closed list (docs/remote-probe.md has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProbeCode {
    /// Smart HTTP answered with the service's advertisement.
    Ok,
    /// Smart HTTP answered, and the repository has no refs yet (seen only in a v0 answer).
    OkEmpty,
    /// `200`, but a dumb-HTTP ref list, which GitLab's Gitaly cannot mirror.
    DumbHttp,
    /// A 3xx: GitLab does not follow redirects.
    Redirect,
    /// The host rejected the credentials (bad, revoked or expired token; on Bitbucket Cloud
    /// also no access or a missing repository).
    AuthRejected,
    /// The credentials work, but the repository is hidden or missing (GitHub's 404; GitLab's
    /// 401 to a valid service-account token; GitLab's 404).
    NoAccessOrMissing,
    /// `403`: the credentials are known but may not do this (scope, role, SSO, push rights).
    Forbidden,
    /// `404`/`410` from a host that says plainly the repository does not exist.
    NotFound,
    /// `200` that is no git endpoint (a login or SSO page, a smart type with a broken body).
    NotGit,
    /// `5xx`, or another status the probe cannot read: no verdict.
    ServerError,
    /// `429`: no verdict.
    RateLimited,
    /// GitLab's failed-login ban answered (`403` `Forbidden`): no verdict, the host is left alone.
    Banned,
    /// DNS, connection, proxy or timeout failure: no verdict.
    Unreachable,
    /// The TLS handshake or the certificate check failed: no verdict.
    Tls,
    /// Not probed: the host protection stopped probing this host.
    Breaker,
}

/// What a code means for the row, in the terms plan and apply act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ProbeClass {
    /// The credentials were proven to work (`ok`, `ok-empty`).
    Proven,
    /// The credentials work, but the URL will fail in GitLab (`dumb-http`, `redirect`): a
    /// diagnosis, not a credential verdict.
    Diagnosis,
    /// The credentials cannot read (pull) or write (push) this repository: keep the row off
    /// the service credentials.
    CredentialVerdict,
    /// The host gave no verdict (errors, rate limits, bans, network, TLS).
    NoVerdict,
    /// The row was not probed.
    NotProbed,
}

impl ProbeCode {
    /// Every code, in table order.
    pub(crate) const ALL: [ProbeCode; 15] = [
        ProbeCode::Ok,
        ProbeCode::OkEmpty,
        ProbeCode::DumbHttp,
        ProbeCode::Redirect,
        ProbeCode::AuthRejected,
        ProbeCode::NoAccessOrMissing,
        ProbeCode::Forbidden,
        ProbeCode::NotFound,
        ProbeCode::NotGit,
        ProbeCode::ServerError,
        ProbeCode::RateLimited,
        ProbeCode::Banned,
        ProbeCode::Unreachable,
        ProbeCode::Tls,
        ProbeCode::Breaker,
    ];

    /// The stable code written in the plan's `probe` column.
    pub(crate) fn code(self) -> &'static str {
        match self {
            ProbeCode::Ok => "ok",
            ProbeCode::OkEmpty => "ok-empty",
            ProbeCode::DumbHttp => "dumb-http",
            ProbeCode::Redirect => "redirect",
            ProbeCode::AuthRejected => "auth-rejected",
            ProbeCode::NoAccessOrMissing => "no-access-or-missing",
            ProbeCode::Forbidden => "forbidden",
            ProbeCode::NotFound => "not-found",
            ProbeCode::NotGit => "not-git",
            ProbeCode::ServerError => "server-error",
            ProbeCode::RateLimited => "rate-limited",
            ProbeCode::Banned => "banned",
            ProbeCode::Unreachable => "unreachable",
            ProbeCode::Tls => "tls",
            ProbeCode::Breaker => "breaker",
        }
    }

    /// What the code means for the row.
    pub(crate) fn class(self) -> ProbeClass {
        match self {
            ProbeCode::Ok | ProbeCode::OkEmpty => ProbeClass::Proven,
            ProbeCode::DumbHttp | ProbeCode::Redirect => ProbeClass::Diagnosis,
            ProbeCode::AuthRejected
            | ProbeCode::NoAccessOrMissing
            | ProbeCode::Forbidden
            | ProbeCode::NotFound
            | ProbeCode::NotGit => ProbeClass::CredentialVerdict,
            ProbeCode::ServerError
            | ProbeCode::RateLimited
            | ProbeCode::Banned
            | ProbeCode::Unreachable
            | ProbeCode::Tls => ProbeClass::NoVerdict,
            ProbeCode::Breaker => ProbeClass::NotProbed,
        }
    }

    /// Whether `apply` may write the row's service credentials after this probe result:
    /// only when the host answered as a git server that accepts them.
    pub(crate) fn allows_write(self) -> bool {
        matches!(self.class(), ProbeClass::Proven | ProbeClass::Diagnosis)
    }
}

/// The git service a probe of this direction asks for: what GitLab will run against the URL
/// (pull: `git-upload-pack`, push: `git-receive-pack`).
pub fn service(direction: Direction) -> &'static str {
    match direction {
        Direction::Pull => "git-upload-pack",
        Direction::Push => "git-receive-pack",
    }
}

/// What software a source host runs, which decides how its answers read and where its
/// token-watch API is.
///
/// github.com, gitlab.com and bitbucket.org are known; any other host is [`HostKind::Other`]
/// unless the credentials file gives its `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostKind {
    /// github.com (its API is api.github.com).
    GitHub,
    /// A GitHub Enterprise Server (API at `https://HOST/api/v3`).
    GitHubEnterprise,
    /// gitlab.com or a self-managed GitLab (API at `https://HOST/api/v4`).
    GitLab,
    /// bitbucket.org.
    BitbucketCloud,
    /// A Bitbucket Server / Data Center (no token API is used).
    BitbucketServer,
    /// Anything else: answers read as plain git smart HTTP.
    Other,
}

/// The credentials file names a kind that does not fit its host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host {host} cannot have kind {given}: {why}")]
pub struct KindConflict {
    /// The host.
    pub(crate) host: String,
    /// The kind given.
    pub(crate) given: HostKind,
    /// Why not.
    pub(crate) why: &'static str,
}

impl HostKind {
    /// Every kind, for tests that cover each.
    #[cfg(test)]
    pub(crate) const ALL: [HostKind; 6] = [
        HostKind::GitHub,
        HostKind::GitHubEnterprise,
        HostKind::GitLab,
        HostKind::BitbucketCloud,
        HostKind::BitbucketServer,
        HostKind::Other,
    ];

    /// The stable code (`github`, `github-enterprise`, `gitlab`, `bitbucket`,
    /// `bitbucket-server`, `other`).
    pub(crate) fn code(self) -> &'static str {
        match self {
            HostKind::GitHub => "github",
            HostKind::GitHubEnterprise => "github-enterprise",
            HostKind::GitLab => "gitlab",
            HostKind::BitbucketCloud => "bitbucket",
            HostKind::BitbucketServer => "bitbucket-server",
            HostKind::Other => "other",
        }
    }

    /// The kind of a host whose software is public knowledge.
    pub(crate) fn known(host: &str) -> Option<HostKind> {
        match host {
            "github.com" => Some(HostKind::GitHub),
            "gitlab.com" => Some(HostKind::GitLab),
            "bitbucket.org" => Some(HostKind::BitbucketCloud),
            _ => None,
        }
    }

    /// A host's kind: the known kind for github.com, gitlab.com and bitbucket.org, else the
    /// one given (the credentials file's `kind`), else [`HostKind::Other`].
    ///
    /// `github` and `bitbucket` name the public services only; a known host given another
    /// kind is a conflict.
    pub fn resolve(host: &str, given: Option<HostKind>) -> Result<HostKind, KindConflict> {
        let conflict = |given, why| Err(KindConflict { host: host.to_owned(), given, why });
        match (HostKind::known(host), given) {
            (Some(known), None) => Ok(known),
            (Some(known), Some(g)) if g == known => Ok(known),
            (Some(_), Some(g)) => conflict(g, "the host's kind is known"),
            (None, Some(g @ HostKind::GitHub)) => {
                conflict(g, "`github` is github.com only; use `github-enterprise`")
            }
            (None, Some(g @ HostKind::BitbucketCloud)) => {
                conflict(g, "`bitbucket` is bitbucket.org only; use `bitbucket-server`")
            }
            (None, Some(g)) => Ok(g),
            (None, None) => Ok(HostKind::Other),
        }
    }
}

code_traits!(
    ProbeCode,
    "probe",
    [
        ProbeCode::Ok,
        ProbeCode::OkEmpty,
        ProbeCode::DumbHttp,
        ProbeCode::Redirect,
        ProbeCode::AuthRejected,
        ProbeCode::NoAccessOrMissing,
        ProbeCode::Forbidden,
        ProbeCode::NotFound,
        ProbeCode::NotGit,
        ProbeCode::ServerError,
        ProbeCode::RateLimited,
        ProbeCode::Banned,
        ProbeCode::Unreachable,
        ProbeCode::Tls,
        ProbeCode::Breaker,
    ]
);
code_traits!(
    HostKind,
    "host kind",
    [
        HostKind::GitHub,
        HostKind::GitHubEnterprise,
        HostKind::GitLab,
        HostKind::BitbucketCloud,
        HostKind::BitbucketServer,
        HostKind::Other,
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ProbeCode::ALL {
            assert_eq!(code.code().parse::<ProbeCode>(), Ok(code));
            assert!(seen.insert(code.code()));
        }
        for kind in HostKind::ALL {
            assert_eq!(kind.code().parse::<HostKind>(), Ok(kind));
        }
        assert_eq!(service(Direction::Pull), "git-upload-pack");
        assert_eq!(service(Direction::Push), "git-receive-pack");
        assert!("OK".parse::<ProbeCode>().is_err());
    }

    #[test]
    fn classes_follow_the_table() {
        use ProbeClass::*;
        let cases = [
            ("ok", Proven, true),
            ("ok-empty", Proven, true),
            ("dumb-http", Diagnosis, true),
            ("redirect", Diagnosis, true),
            ("auth-rejected", CredentialVerdict, false),
            ("no-access-or-missing", CredentialVerdict, false),
            ("forbidden", CredentialVerdict, false),
            ("not-found", CredentialVerdict, false),
            ("not-git", CredentialVerdict, false),
            ("server-error", NoVerdict, false),
            ("rate-limited", NoVerdict, false),
            ("banned", NoVerdict, false),
            ("unreachable", NoVerdict, false),
            ("tls", NoVerdict, false),
            ("breaker", NotProbed, false),
        ];
        assert_eq!(cases.len(), ProbeCode::ALL.len());
        for (code, class, write) in cases {
            let c: ProbeCode = code.parse().unwrap();
            assert_eq!(c.class(), class, "{code}");
            assert_eq!(c.allows_write(), write, "{code}");
        }
    }

    #[test]
    fn host_kinds_resolve() {
        use HostKind::*;
        let cases: [(&str, Option<HostKind>, Result<HostKind, ()>); 10] = [
            ("github.com", None, Ok(GitHub)),
            ("gitlab.com", None, Ok(GitLab)),
            ("bitbucket.org", None, Ok(BitbucketCloud)),
            ("git.example.com", None, Ok(Other)),
            ("git.example.com", Some(GitLab), Ok(GitLab)),
            ("ghe.example.com", Some(GitHubEnterprise), Ok(GitHubEnterprise)),
            ("gitlab.com", Some(GitLab), Ok(GitLab)),
            ("github.com", Some(GitHubEnterprise), Err(())),
            ("ghe.example.com", Some(GitHub), Err(())),
            ("bb.example.com", Some(BitbucketCloud), Err(())),
        ];
        for (host, given, want) in cases {
            assert_eq!(HostKind::resolve(host, given).map_err(|_| ()), want, "{host} {given:?}");
        }
    }
}
