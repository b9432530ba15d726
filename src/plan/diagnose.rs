//! Diagnosis: what is wrong with a mirror, from its state and `last_error` (README.md, "Diagnosis codes").
//!
//! The codes and advice follow GitLab's troubleshooting page
//! (`doc/user/project/repository/mirror/troubleshooting.md`). Matching is case-insensitive
//! substring search on the error text; the rules run in a fixed order, most specific first,
//! and the first match wins:
//!
//! 0. `unreadable` — GitLab kept answering an error for the mirror reads, so there is no state
//!    to diagnose (set by the reader, `MirrorFacts::diagnose`, never from text).
//! 1. `mirror-user-blocked` — the pull mirror's user is blocked or deleted (state, not text).
//! 2. `not-mirrored` — the mirror is disabled, Silent Mode is on, or the error says
//!    "The project is not mirrored".
//! 3. On the error text, in this order: `rst-stream`, `deadline-exceeded`, `host-key`,
//!    `publickey-only`, `no-username`, `mirror-user-blocked` (text), `invalid-url`,
//!    `geo-302`, `http-301`, `dumb-http`, `auth-failed`, `not-found`, else `unknown`.
//!    Transport-level and URL-shape messages come before the HTTP status codes because git
//!    often adds a generic "Authentication failed"/"not found" line after the real cause.
//! 4. No error: `stuck` when the update has been running (`started`, `scheduled`,
//!    `updating`) for more than three hours; `unknown` when the status is `failed` with no
//!    error text; otherwise healthy (`None`).

use std::fmt;
use std::str::FromStr;

use time::{Duration, OffsetDateTime};

use crate::plan::mirror_type::MirrorType;
use crate::rewrite::UnknownCode;
use crate::rewrite::code_traits;

/// A diagnosis code (README.md, "Diagnosis codes"). The strings are a file format: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diagnosis {
    /// `RST_STREAM with error code 2` (GitHub: email privacy, or a file over 100 MB).
    RstStream,
    /// `Deadline Exceeded`: a stale `%40` in the stored username.
    DeadlineExceeded,
    /// The server only allows public key authentication (firewall SSH inspection).
    PublickeyOnly,
    /// `could not read Username … terminal prompts disabled` (Bitbucket owner missing).
    NoUsername,
    /// SCP-like or blocked URL.
    InvalidUrl,
    /// `Host key verification failed`.
    HostKey,
    /// HTTP 301: the URL is missing `.git`.
    Http301,
    /// HTTP 302: a push to a Geo secondary.
    Geo302,
    /// `Unable to get pack index`: a "dumb" HTTP server.
    DumbHttp,
    /// Mirror disabled, or Silent Mode on.
    NotMirrored,
    /// Updating for hours with no error.
    Stuck,
    /// 401/403, access denied, token expired or revoked.
    AuthFailed,
    /// Repository not found.
    NotFound,
    /// The mirror user is blocked or deleted.
    MirrorUserBlocked,
    /// GitLab kept answering an error for this project's mirror reads (a 5xx, or 404 for a
    /// project deleted mid-run): nothing is known about the mirror.
    Unreadable,
    /// An error that matched none of the above.
    Unknown,
}

impl Diagnosis {
    /// Every code, in the order of the README's "Diagnosis codes" table.
    pub(crate) const ALL: [Diagnosis; 16] = [
        Diagnosis::RstStream,
        Diagnosis::DeadlineExceeded,
        Diagnosis::PublickeyOnly,
        Diagnosis::NoUsername,
        Diagnosis::InvalidUrl,
        Diagnosis::HostKey,
        Diagnosis::Http301,
        Diagnosis::Geo302,
        Diagnosis::DumbHttp,
        Diagnosis::NotMirrored,
        Diagnosis::Stuck,
        Diagnosis::AuthFailed,
        Diagnosis::NotFound,
        Diagnosis::MirrorUserBlocked,
        Diagnosis::Unreadable,
        Diagnosis::Unknown,
    ];

    /// The stable code written in CSV files.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Diagnosis::RstStream => "rst-stream",
            Diagnosis::DeadlineExceeded => "deadline-exceeded",
            Diagnosis::PublickeyOnly => "publickey-only",
            Diagnosis::NoUsername => "no-username",
            Diagnosis::InvalidUrl => "invalid-url",
            Diagnosis::HostKey => "host-key",
            Diagnosis::Http301 => "http-301",
            Diagnosis::Geo302 => "geo-302",
            Diagnosis::DumbHttp => "dumb-http",
            Diagnosis::NotMirrored => "not-mirrored",
            Diagnosis::Stuck => "stuck",
            Diagnosis::AuthFailed => "auth-failed",
            Diagnosis::NotFound => "not-found",
            Diagnosis::MirrorUserBlocked => "mirror-user-blocked",
            Diagnosis::Unreadable => "unreadable",
            Diagnosis::Unknown => "unknown",
        }
    }

    /// One sentence a reviewer can act on, after GitLab's troubleshooting page
    /// (`doc/user/project/repository/mirror/troubleshooting.md`).
    pub fn advice(self) -> &'static str {
        match self {
            Diagnosis::RstStream => {
                "The remote reset the stream (HTTP/2 RST_STREAM): on GitHub, make the commit \
                 email public (or turn off \"Block command line pushes that expose my email\") \
                 or move files over 100 MB to Git LFS; on another host, check its limits on \
                 push size and content."
            }
            Diagnosis::DeadlineExceeded => {
                "The stored username still holds a percent-encoded %40: re-enter the mirror \
                 credentials with a plain @ (the service-credential rewrite does this)."
            }
            Diagnosis::PublickeyOnly => {
                "Something on the network path (often a firewall doing deep SSH inspection) \
                 blocks the connection: check the route from GitLab to the remote."
            }
            Diagnosis::NoUsername => {
                "The URL has no username, and the remote asks for one: add it (for Bitbucket \
                 Cloud the repository owner, e.g. https://OWNER@bitbucket.org/ACCOUNT/REPO.git; \
                 the service-credential rewrite adds one)."
            }
            Diagnosis::InvalidUrl => {
                "This URL cannot work: GitLab refuses SCP-like URLs (use \
                 ssh://git@host/group/repo.git instead of git@host:group/repo.git) and some \
                 schemes, ports and hosts, and GitHub no longer serves git://; use a standard \
                 https or ssh URL."
            }
            Diagnosis::HostKey => {
                "The remote's SSH host key changed: if the new key is genuine, delete the \
                 mirror and create it again."
            }
            Diagnosis::Http301 => {
                "HTTP redirects are not followed: give the exact repository URL, ending in .git."
            }
            Diagnosis::Geo302 => {
                "The push was redirected (a Geo secondary): send it to the Geo primary (hosts \
                 entry or reverse proxy), use SSH, or set up a pull mirror on the target instead."
            }
            Diagnosis::DumbHttp => {
                "The remote speaks the dumb HTTP protocol, which Gitaly cannot mirror: move the \
                 repository to a smart HTTP server or mirror it over SSH."
            }
            Diagnosis::NotMirrored => {
                "The mirror is disabled or GitLab Silent Mode is on: enable the mirror, or ask \
                 an administrator to turn Silent Mode off."
            }
            Diagnosis::Stuck => {
                "The update has run for hours without finishing: check the mirror capacity in \
                 Redis and the Sidekiq workers, then trigger an update."
            }
            Diagnosis::AuthFailed => {
                "The remote refused the credentials: they are wrong, expired or revoked, so \
                 replace them (the service-credential rewrite does this)."
            }
            Diagnosis::NotFound => {
                "The remote repository was not found: check that it still exists at this path \
                 and that the credentials can see it (use --map if it moved)."
            }
            Diagnosis::MirrorUserBlocked => {
                "The mirror user is blocked or deleted, so updates and their pipelines stop: \
                 rewrite the mirror so that an active service account becomes its user."
            }
            Diagnosis::Unreadable => {
                "GitLab kept answering an error for this project's mirror settings (a server \
                 error, e.g. import data it cannot decrypt, or the project was deleted): check \
                 the project in GitLab, then plan it again."
            }
            Diagnosis::Unknown => {
                "The error matches no known cause: read last_error and the troubleshooting page \
                 for repository mirroring."
            }
        }
    }
}

code_traits!(
    Diagnosis,
    "diagnosis",
    [
        Diagnosis::RstStream,
        Diagnosis::DeadlineExceeded,
        Diagnosis::PublickeyOnly,
        Diagnosis::NoUsername,
        Diagnosis::InvalidUrl,
        Diagnosis::HostKey,
        Diagnosis::Http301,
        Diagnosis::Geo302,
        Diagnosis::DumbHttp,
        Diagnosis::NotMirrored,
        Diagnosis::Stuck,
        Diagnosis::AuthFailed,
        Diagnosis::NotFound,
        Diagnosis::MirrorUserBlocked,
        Diagnosis::Unreadable,
        Diagnosis::Unknown,
    ]
);

/// The state of a pull mirror's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MirrorUserState {
    /// The user exists and is active.
    Active,
    /// The user is blocked (or banned, deactivated: any state that is not active).
    Blocked,
    /// The user no longer exists.
    Deleted,
    /// Not known (e.g. the caller may not read users).
    Unknown,
    /// Push mirrors have no mirror user.
    NotApplicable,
}

/// Everything [`diagnose`] looks at.
#[derive(Debug, Clone)]
pub struct DiagnoseInput<'a> {
    /// Pull or push.
    pub mirror_type: MirrorType,
    /// Whether the mirror is enabled (`mirror` for pull, `enabled` for push).
    pub enabled: bool,
    /// GitLab's `update_status`.
    pub update_status: &'a str,
    /// GitLab's `last_error`, raw or normalised.
    pub last_error: Option<&'a str>,
    /// When the last update started.
    pub last_update_started_at: Option<OffsetDateTime>,
    /// When the last update succeeded.
    pub last_successful_update_at: Option<OffsetDateTime>,
    /// The time to judge "for hours" against (injected for tests).
    pub now: OffsetDateTime,
    /// The pull mirror user's state.
    pub mirror_user_state: MirrorUserState,
    /// Whether GitLab Silent Mode is on (known only to admins).
    pub silent_mode: bool,
}

/// How long an update may run without an error before it counts as `stuck`.
pub(crate) const STUCK_AFTER: Duration = Duration::hours(3);

/// Statuses of an update that is running or queued.
const RUNNING_STATUSES: [&str; 3] = ["started", "scheduled", "updating"];

/// Work out what is wrong with a mirror; `None` means nothing is (see the module docs for
/// the order of the rules).
pub fn diagnose(input: &DiagnoseInput<'_>) -> Option<Diagnosis> {
    if input.mirror_type == MirrorType::Pull
        && matches!(input.mirror_user_state, MirrorUserState::Blocked | MirrorUserState::Deleted)
    {
        return Some(Diagnosis::MirrorUserBlocked);
    }
    if !input.enabled || input.silent_mode {
        return Some(Diagnosis::NotMirrored);
    }
    let error = input.last_error.map(str::trim).filter(|e| !e.is_empty());
    if let Some(error) = error {
        return Some(diagnose_error(input.mirror_type, error));
    }
    let status = input.update_status.trim().to_ascii_lowercase();
    if RUNNING_STATUSES.contains(&status.as_str()) {
        let started = input.last_update_started_at?;
        // A success after the start means the "running" status is stale, not stuck.
        if input.last_successful_update_at.is_some_and(|ok| ok >= started) {
            return None;
        }
        return (input.now - started > STUCK_AFTER).then_some(Diagnosis::Stuck);
    }
    (status == "failed").then_some(Diagnosis::Unknown)
}

/// Classify an error message alone (step 3 of the module docs). Never returns `stuck` or
/// `not-mirrored` unless the text says "not mirrored".
pub(crate) fn diagnose_error(mirror_type: MirrorType, error: &str) -> Diagnosis {
    let e = error.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| e.contains(n));

    if has(&["the project is not mirrored"]) {
        return Diagnosis::NotMirrored;
    }
    if has(&["rst_stream"]) || contains_phrase_number(&e, "error code", "2") {
        return Diagnosis::RstStream;
    }
    if has(&["deadline exceeded", "deadlineexceeded", "deadline_exceeded"]) {
        return Diagnosis::DeadlineExceeded;
    }
    if has(&[
        "host key verification failed",
        "remote host identification has changed",
        "no matching host key",
    ]) {
        return Diagnosis::HostKey;
    }
    if has(&[
        "permission denied (publickey)",
        "only allows public key authentication",
        "server only allows public key",
    ]) {
        return Diagnosis::PublickeyOnly;
    }
    if has(&["could not read username"]) {
        return Diagnosis::NoUsername;
    }
    if has(&["mirror user is blocked", "mirror user has been blocked", "user is blocked"]) {
        return Diagnosis::MirrorUserBlocked;
    }
    if has(&[
        "is blocked",
        "invalid url",
        "uri is invalid",
        "bad uri",
        "only allowed schemes",
        "only allowed ports",
        "is not a valid",
        "hostname or ip address invalid",
        "ssh url must",
        "protocol not supported",
        "unsupported protocol",
        // GitHub retired git:// ("The unauthenticated git protocol on port 9418 is no longer
        // supported"): a URL problem that `to-https` fixes on a source host.
        "unauthenticated git protocol",
    ]) {
        return Diagnosis::InvalidUrl;
    }
    if contains_phrase_number(&e, "error:", "302") || has(&["302 found"]) {
        return Diagnosis::Geo302;
    }
    if contains_phrase_number(&e, "error:", "301") || has(&["301 moved"]) {
        return Diagnosis::Http301;
    }
    if has(&["unable to get pack index", "dumb http", "dumb protocol"]) {
        return Diagnosis::DumbHttp;
    }
    if has(&[
        "access denied",
        "authentication failed",
        "token expired",
        "token has expired",
        "token is expired",
        "revoked",
        "invalid credentials",
        "bad credentials",
        "invalid username or password",
        "could not read password",
        "unauthorized",
        "forbidden",
    ]) || ["401", "403"].iter().any(|n| contains_number(&e, n))
        || (mirror_type == MirrorType::Push && has(&["permission to ", "denied to "]))
    {
        return Diagnosis::AuthFailed;
    }
    if has(&[
        "repository not found",
        "not found",
        "does not appear to be a git repository",
        "does not exist",
        "could not be found",
    ]) || contains_number(&e, "404")
    {
        return Diagnosis::NotFound;
    }
    Diagnosis::Unknown
}

/// Whether `number` occurs in `hay` as a whole number: not preceded or followed by a digit or
/// letter (so `403` matches "error: 403" but not a commit id "a403f" or "14030").
fn contains_number(hay: &str, number: &str) -> bool {
    hay.match_indices(number).any(|(pos, _)| {
        let before = hay[..pos].chars().next_back();
        let after = hay[pos + number.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_alphanumeric())
    })
}

/// Whether `phrase` is followed (after optional spaces) by exactly the whole `number`.
fn contains_phrase_number(hay: &str, phrase: &str, number: &str) -> bool {
    hay.match_indices(phrase).any(|(pos, _)| {
        let rest = hay[pos + phrase.len()..].trim_start();
        rest.strip_prefix(number)
            .is_some_and(|after| !after.starts_with(|c: char| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-27 12:00 UTC);

    fn input(mirror_type: MirrorType, error: Option<&str>) -> DiagnoseInput<'_> {
        DiagnoseInput {
            mirror_type,
            enabled: true,
            update_status: if error.is_some() { "failed" } else { "finished" },
            last_error: error,
            last_update_started_at: Some(NOW - Duration::minutes(10)),
            last_successful_update_at: Some(NOW - Duration::minutes(9)),
            now: NOW,
            mirror_user_state: match mirror_type {
                MirrorType::Pull => MirrorUserState::Active,
                MirrorType::Push => MirrorUserState::NotApplicable,
            },
            silent_mode: false,
        }
    }

    /// Real messages, as GitLab stores them in `last_error`.
    const TABLE: &[(MirrorType, &str, Diagnosis)] = &[
        (MirrorType::Push, "13:Received RST_STREAM with error code 2", Diagnosis::RstStream),
        (
            MirrorType::Push,
            "push to mirror: git push: exit status 128, stderr: \"error: RPC failed; HTTP 200 curl 92 HTTP/2 stream 5 was not closed cleanly: PROTOCOL_ERROR (err 1)\\nsend-pack: unexpected disconnect while reading sideband packet\\nerror code 2\"",
            Diagnosis::RstStream,
        ),
        (MirrorType::Pull, "4:Deadline Exceeded", Diagnosis::DeadlineExceeded),
        (
            MirrorType::Pull,
            "13:fetch remote: \"context deadline exceeded\": exit status 128.",
            Diagnosis::DeadlineExceeded,
        ),
        (
            MirrorType::Push,
            "13:get remote references: create git ls-remote: exit status 128, stderr: \"Host key verification failed.\\r\\nfatal: Could not read from remote repository.\\n\\nPlease make sure you have the correct access rights\\nand the repository exists.\\n\".",
            Diagnosis::HostKey,
        ),
        (
            MirrorType::Pull,
            "13:fetch remote: \"git@github.com: Permission denied (publickey).\\r\\nfatal: Could not read from remote repository.\\n\": exit status 128.",
            Diagnosis::PublickeyOnly,
        ),
        (
            MirrorType::Pull,
            "Connection blocked: server only allows public key authentication",
            Diagnosis::PublickeyOnly,
        ),
        (
            MirrorType::Pull,
            "2:fetch remote: \"fatal: could not read Username for 'https://bitbucket.org': terminal prompts disabled\\n\": exit status 128.",
            Diagnosis::NoUsername,
        ),
        (
            MirrorType::Pull,
            "Import url is blocked: Only allowed schemes are http, https, ssh, git",
            Diagnosis::InvalidUrl,
        ),
        (
            MirrorType::Pull,
            "is blocked: Requests to the local network are not allowed",
            Diagnosis::InvalidUrl,
        ),
        (MirrorType::Push, "Url is blocked: URI is invalid", Diagnosis::InvalidUrl),
        (MirrorType::Push, "Invalid URL", Diagnosis::InvalidUrl),
        (MirrorType::Pull, "bad URI(is not URI?): \"https://x@y@host/r\"", Diagnosis::InvalidUrl),
        (
            MirrorType::Pull,
            "13:fetch remote: \"fatal: unable to access 'https://gitlab.com/group/project': The requested URL returned error: 301\\n\": exit status 128.",
            Diagnosis::Http301,
        ),
        (
            MirrorType::Push,
            "13:get remote references: create git ls-remote: exit status 128, stderr: \"fatal: unable to access 'https://gitlab.example.com/group/destination.git/': The requested URL returned error: 302\".",
            Diagnosis::Geo302,
        ),
        (
            MirrorType::Pull,
            "13:fetch remote: \"error: Unable to open local file /var/opt/gitlab/git-data/repositories/+gitaly/tmp/quarantine-x.idx.temp.temp\\nerror: Unable to get pack index https://git.example.org/ebtables/objects/pack/pack-1.idx\\nerror: fetch failed.\\n\": exit status 128.",
            Diagnosis::DumbHttp,
        ),
        (
            MirrorType::Pull,
            "13:fetch remote: \"fatal: unable to access 'https://*****:*****@github.com/org/r.git/': The requested URL returned error: 403\"",
            Diagnosis::AuthFailed,
        ),
        (
            MirrorType::Pull,
            "13:fetch remote: \"remote: HTTP Basic: Access denied. The provided password or token is incorrect or your account has 2FA enabled and you must use a personal access token instead of a password.\\nfatal: Authentication failed for 'https://gitlab.example.com/g/r.git/'\\n\": exit status 128.",
            Diagnosis::AuthFailed,
        ),
        (
            MirrorType::Pull,
            "13:fetch remote: \"remote: Invalid username or password.\\nfatal: Authentication failed for 'https://github.com/org/r.git/'\\n\": exit status 128.",
            Diagnosis::AuthFailed,
        ),
        (
            MirrorType::Push,
            "13:push to mirror: git push: exit status 128, stderr: \"remote: Permission to org/r.git denied to someone.\\nfatal: unable to access 'https://github.com/org/r.git/': The requested URL returned error: 403\\n\".",
            Diagnosis::AuthFailed,
        ),
        (
            MirrorType::Pull,
            "remote: Your token has expired. fatal: unable to access: error: 401",
            Diagnosis::AuthFailed,
        ),
        (MirrorType::Pull, "The token was revoked", Diagnosis::AuthFailed),
        (
            MirrorType::Pull,
            "13:fetch remote: \"remote: Repository not found.\\nfatal: repository 'https://github.com/org/gone.git/' not found\\n\": exit status 128.",
            Diagnosis::NotFound,
        ),
        (
            MirrorType::Pull,
            "13:fetch remote: \"fatal: 'org/r.git' does not appear to be a git repository\\nfatal: Could not read from remote repository.\\n\": exit status 128.",
            Diagnosis::NotFound,
        ),
        (
            MirrorType::Pull,
            "fatal: unable to access 'https://h/r.git/': The requested URL returned error: 404",
            Diagnosis::NotFound,
        ),
        (MirrorType::Pull, "The project is not mirrored", Diagnosis::NotMirrored),
        (MirrorType::Pull, "The mirror user is blocked", Diagnosis::MirrorUserBlocked),
        (
            MirrorType::Pull,
            "13:preparing reference update: file directory conflict",
            Diagnosis::Unknown,
        ),
        (
            MirrorType::Push,
            "remote: GitLab: LFS objects are missing. Ensure LFS is properly set up or try a manual \"git lfs push --all\".",
            Diagnosis::Unknown,
        ),
        // A commit id that contains 403 is not an HTTP status.
        (MirrorType::Pull, "cannot lock ref: a403b1c is at 1403", Diagnosis::Unknown),
        (MirrorType::Pull, "error code 22 from somewhere", Diagnosis::Unknown),
    ];

    #[test]
    fn error_table() {
        for (mirror_type, error, want) in TABLE {
            assert_eq!(diagnose(&input(*mirror_type, Some(error))), Some(*want), "{error}");
            // Case-insensitive, and the normalised form diagnoses the same.
            let upper = error.to_uppercase();
            assert_eq!(diagnose_error(*mirror_type, &upper), *want, "{upper}");
            let normalized = crate::plan::normalize_last_error(error);
            assert_eq!(diagnose_error(*mirror_type, &normalized), *want, "{normalized}");
        }
        // Every error-derived code is covered by the table.
        for code in Diagnosis::ALL {
            if !matches!(code, Diagnosis::Stuck | Diagnosis::Unreadable) {
                assert!(TABLE.iter().any(|(_, _, d)| *d == code), "{code} not in table");
            }
        }
    }

    /// The same advice goes to a mirror on any host (a bitbucket.org mirror can be
    /// `rst-stream` too): what it says is the cause names no host, and where one host's
    /// behaviour is the likely cause, the advice says whose it is.
    #[test]
    fn advice_is_worded_for_any_host() {
        const HOSTS: [&str; 7] =
            ["GitHub", "github.com", "Bitbucket", "bitbucket.org", "GitLab.com", "Gitea", "Azure"];
        for d in Diagnosis::ALL {
            let advice = d.advice();
            let (cause, _) = advice.split_once(':').unwrap_or((advice, ""));
            for host in HOSTS {
                assert!(!cause.contains(host), "{d}: the cause names {host}: {advice}");
            }
        }
        let host_specific = [
            (Diagnosis::RstStream, "on GitHub, make the commit email public"),
            (Diagnosis::RstStream, "on another host, check its limits"),
            (Diagnosis::NoUsername, "for Bitbucket Cloud the repository owner"),
            (Diagnosis::InvalidUrl, "GitHub no longer serves git://"),
        ];
        for (d, phrase) in host_specific {
            assert!(d.advice().contains(phrase), "{d}: {}", d.advice());
        }
    }

    #[test]
    fn healthy_mirror_has_no_diagnosis() {
        assert_eq!(diagnose(&input(MirrorType::Pull, None)), None);
        let mut blank = input(MirrorType::Push, Some("   "));
        blank.update_status = "finished";
        assert_eq!(diagnose(&blank), None);
    }

    #[test]
    fn blocked_or_deleted_mirror_user_comes_first() {
        for state in [MirrorUserState::Blocked, MirrorUserState::Deleted] {
            let mut i = input(MirrorType::Pull, Some("4:Deadline Exceeded"));
            i.mirror_user_state = state;
            i.enabled = false;
            assert_eq!(diagnose(&i), Some(Diagnosis::MirrorUserBlocked));
        }
        let mut i = input(MirrorType::Pull, None);
        i.mirror_user_state = MirrorUserState::Unknown;
        assert_eq!(diagnose(&i), None);
        // Push mirrors have no mirror user, whatever the caller passes.
        let mut i = input(MirrorType::Push, None);
        i.mirror_user_state = MirrorUserState::Deleted;
        assert_eq!(diagnose(&i), None);
    }

    #[test]
    fn disabled_or_silent_mode_is_not_mirrored() {
        let mut i = input(MirrorType::Push, Some("fatal: Authentication failed"));
        i.enabled = false;
        assert_eq!(diagnose(&i), Some(Diagnosis::NotMirrored));
        let mut i = input(MirrorType::Pull, None);
        i.silent_mode = true;
        assert_eq!(diagnose(&i), Some(Diagnosis::NotMirrored));
    }

    #[test]
    fn stuck_after_three_hours_without_error() {
        let mut i = input(MirrorType::Pull, None);
        i.update_status = "started";
        i.last_update_started_at = Some(NOW - Duration::hours(4));
        i.last_successful_update_at = Some(NOW - Duration::days(2));
        assert_eq!(diagnose(&i), Some(Diagnosis::Stuck));
        for status in ["scheduled", "updating", "STARTED"] {
            i.update_status = status;
            assert_eq!(diagnose(&i), Some(Diagnosis::Stuck), "{status}");
        }
        i.last_update_started_at = Some(NOW - Duration::hours(2));
        assert_eq!(diagnose(&i), None, "two hours is not stuck yet");
        i.last_update_started_at = None;
        assert_eq!(diagnose(&i), None, "no start time: cannot tell");
        i.last_update_started_at = Some(NOW - Duration::hours(5));
        i.last_successful_update_at = Some(NOW - Duration::hours(1));
        assert_eq!(diagnose(&i), None, "a later success means the status is stale");
        i.update_status = "finished";
        i.last_successful_update_at = None;
        assert_eq!(diagnose(&i), None);
        i.update_status = "failed";
        assert_eq!(diagnose(&i), Some(Diagnosis::Unknown), "failed without an error");
    }

    #[test]
    fn codes_round_trip_and_classes() {
        for d in Diagnosis::ALL {
            assert_eq!(d.code().parse::<Diagnosis>(), Ok(d));
            assert!(d.advice().ends_with('.'), "{d}");
            assert!(!d.advice().contains("  "), "{d}");
        }
        assert!("RST-STREAM".parse::<Diagnosis>().is_err());
    }
}
