//! One plan row (one mirror) and the small value types its columns hold: mirror type, the
//! credentials GitLab's mask reveals, row ordering and the `last_error` normalisation.
//!
//! Pure data: no I/O. The CSV encoding lives in `csv_io`, the diagnosis rules in `diagnose`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::plan::Diagnosis;
pub use crate::plan::mirror_type::MirrorType;
use crate::probe::ProbeCode;
use crate::rewrite::{Action, Fix, NewAuth, UnknownCode};

/// The credentials a mirror currently has, as far as GitLab's mask reveals them.
///
/// GitLab never returns stored credentials; `masked_url` shows `*****` for each part that is
/// set (`lib/gitlab/url_sanitizer.rb`), and push mirrors keep the username `git` visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CurrentAuth {
    /// No userinfo in the URL.
    None,
    /// A username only (masked `*****@`, or visible such as `git@`).
    User,
    /// A password only (`:*****@`).
    Password,
    /// Both (`*****:*****@`).
    UserPassword,
}

impl CurrentAuth {
    /// The stable code written in CSV files.
    pub(crate) fn code(self) -> &'static str {
        match self {
            CurrentAuth::None => "none",
            CurrentAuth::User => "user",
            CurrentAuth::Password => "password",
            CurrentAuth::UserPassword => "user+password",
        }
    }

    /// Read the credential kind from a URL as GitLab shows it.
    ///
    /// `https://*****:*****@h/p` is user+password, `https://*****@h/p` user,
    /// `https://:*****@h/p` password; a visible username (`ssh://git@h/p`, or an SCP-like
    /// `git@h:p` that GitLab stored verbatim) counts as a user; no userinfo is none. For a
    /// `scheme://` URL the userinfo is `redact::split_authority`'s: up to the last `@`
    /// of the authority, as in GitLab's own parser (`UrlSanitizer#parse_url`); for SCP-like
    /// text it is `redact::scp_userinfo`'s (`user:pw@host:path` has a password).
    pub fn from_masked_url(url: &str) -> CurrentAuth {
        let url = url.trim();
        let userinfo = match crate::redact::split_authority(url) {
            Some(authority) => authority.userinfo,
            None => crate::redact::scp_userinfo(url),
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
}

// Display and FromStr from `code()`, shared with the rewrite codes.
pub(crate) use crate::rewrite::code_traits;

code_traits!(
    CurrentAuth,
    "current_auth",
    [CurrentAuth::None, CurrentAuth::User, CurrentAuth::Password, CurrentAuth::UserPassword]
);

/// A row's identity: no two rows of a plan share it, and the apply journal names rows by it.
///
/// `Ord` is plan order: project id (numeric), pull before push, mirror id (numeric).
///
/// Serialized in every journal line that is about a row, flattened into it as
/// `"project_id":3,"mirror_type":"pull","mirror_id":null` (these names, in this order, `null`
/// kept): changing that changes the journal format.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowKey {
    /// GitLab project id.
    pub project_id: u64,
    /// Pull or push.
    pub mirror_type: MirrorType,
    /// The push mirror's id (for a push row in `apply`, the mirror being replaced); `None` for
    /// a pull mirror.
    pub mirror_id: Option<u64>,
}

impl fmt::Display for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mirror_id {
            Some(id) => write!(f, "project {} {} mirror {id}", self.project_id, self.mirror_type),
            None => write!(f, "project {} {} mirror", self.project_id, self.mirror_type),
        }
    }
}

/// One mirror in the plan: what GitLab shows now, what is wrong, and what `apply` will do.
///
/// Field order and meaning follow the columns of docs/plan-format.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// The project's numeric id.
    pub project_id: u64,
    /// `path_with_namespace`.
    pub project_path: String,
    /// GitLab's `web_url` for the project.
    pub web_url: String,
    /// Pull or push.
    pub mirror_type: MirrorType,
    /// The push mirror's id; `None` for a pull mirror.
    pub mirror_id: Option<u64>,
    /// The URL as GitLab shows it (credentials masked as `*****`).
    pub current_url: String,
    /// The credentials GitLab's mask reveals.
    pub current_auth: CurrentAuth,
    /// The pull mirror's user name; empty for push or when that user is gone.
    pub current_mirror_user: String,
    /// GitLab's `update_status`.
    pub update_status: String,
    /// GitLab's last error, normalised by [`normalize_last_error`].
    pub last_error: String,
    /// What is wrong, if anything.
    pub diagnosis: Option<Diagnosis>,
    /// What `apply` does with the row.
    pub action: Action,
    /// The target URL without credentials (an SSH user such as `git@` stays); empty unless
    /// `update`.
    pub new_url: String,
    /// The username sent with the service token (`<token>` when the token is the username);
    /// empty unless `new_auth` is `service`.
    pub new_user: String,
    /// Which credentials the write sends; `None` (empty cell) unless `update`.
    pub new_auth: Option<NewAuth>,
    /// Pull: the mirror user after apply. Empty for push and unless `update`.
    pub new_mirror_user: String,
    /// The fixes applied, in table order.
    pub fixes: Vec<Fix>,
    /// One sentence a reviewer can act on.
    pub reason: String,
    /// The `observed` cell: fingerprint plus seal (see `fingerprint`).
    pub observed: String,
    /// With `plan --probe`: what git's smart-HTTP discovery answered for `new_url` with the
    /// row's service credentials; `None` (an empty cell) when the row was not probed.
    pub probe: Option<ProbeCode>,
}

impl PlanRow {
    /// A pull row that only moves the mirror user: written without URL or credentials, so the
    /// URL and stored credentials stay byte for byte.
    pub(crate) fn is_mirror_user_only(&self) -> bool {
        self.mirror_type == MirrorType::Pull
            && self.action == Action::Update
            && self.new_auth == Some(NewAuth::Unchanged)
            && self.fixes == [Fix::MirrorUser]
    }

    /// The row's identity: no two rows of a plan share it.
    pub(crate) fn key(&self) -> RowKey {
        RowKey {
            project_id: self.project_id,
            mirror_type: self.mirror_type,
            mirror_id: self.mirror_id,
        }
    }
}

/// Compare two keys in plan order: project id, pull before push, mirror id (numeric).
pub(crate) fn cmp_keys(a: &RowKey, b: &RowKey) -> Ordering {
    a.cmp(b)
}

/// Sort rows in plan order: `project_id` (numeric), pull before push, `mirror_id` (numeric).
/// The sort is stable, so rows with equal keys keep their relative order.
pub(crate) fn sort_rows(rows: &mut [PlanRow]) {
    rows.sort_by(|a, b| cmp_keys(&a.key(), &b.key()));
}

/// The longest `last_error` kept, in characters, ellipsis included.
pub(crate) const LAST_ERROR_MAX_CHARS: usize = 500;

/// Normalise GitLab's `last_error` for the plan and `status`: every whitespace run (newlines
/// too) becomes one space, the ends are trimmed, other control characters, bidirectional
/// controls and zero-width characters are removed (`redact::is_invisible`), then the text is
/// scrubbed (`redact::scrub`: the tokens glmirror holds, in any encoding, and the userinfo of
/// every URL, which GitLab does not always mask, become `*****`), and text longer than 500
/// characters is cut to 499 characters plus `…` (500 in all; characters, not bytes).
/// Removing before scrubbing finds a token split by an invisible character; the result is
/// what every writer then shows and what the plan's seal covers.
pub fn normalize_last_error(raw: &str) -> String {
    let folded = raw
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|&c| !crate::redact::is_invisible(c))
        .collect::<String>();
    let folded = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    // Mask before cutting, so a cut can never leave half a credential behind the mask.
    let masked = crate::redact::scrub(&folded);
    if masked.chars().count() <= LAST_ERROR_MAX_CHARS {
        return masked;
    }
    let mut cut: String = masked.chars().take(LAST_ERROR_MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid row for tests; callers adjust fields.
    pub(crate) fn sample_row(
        project_id: u64,
        mirror_type: MirrorType,
        mirror_id: Option<u64>,
    ) -> PlanRow {
        PlanRow {
            project_id,
            project_path: format!("group/p{project_id}"),
            web_url: format!("https://gitlab.example.com/group/p{project_id}"),
            mirror_type,
            mirror_id,
            current_url: "https://*****:*****@github.com/org/r.git".into(),
            current_auth: CurrentAuth::UserPassword,
            current_mirror_user: String::new(),
            update_status: "failed".into(),
            last_error: "fatal: Authentication failed".into(),
            diagnosis: Some(Diagnosis::AuthFailed),
            action: Action::Skip,
            new_url: String::new(),
            new_user: String::new(),
            new_auth: None,
            new_mirror_user: String::new(),
            fixes: Vec::new(),
            reason: "nothing to do".into(),
            observed: String::new(),
            probe: None,
        }
    }

    #[test]
    fn codes_round_trip() {
        for t in [MirrorType::Pull, MirrorType::Push] {
            assert_eq!(t.code().parse::<MirrorType>(), Ok(t));
        }
        for a in
            [CurrentAuth::None, CurrentAuth::User, CurrentAuth::Password, CurrentAuth::UserPassword]
        {
            assert_eq!(a.code().parse::<CurrentAuth>(), Ok(a));
        }
        assert!("Pull".parse::<MirrorType>().is_err());
        assert!("user+pass".parse::<CurrentAuth>().is_err());
    }

    #[test]
    fn current_auth_from_gitlab_masks() {
        let cases = [
            ("https://*****:*****@github.com/org/r.git", CurrentAuth::UserPassword),
            ("https://*****@github.com/org/r.git", CurrentAuth::User),
            ("https://:*****@github.com/org/r.git", CurrentAuth::Password),
            ("https://github.com/org/r.git", CurrentAuth::None),
            ("ssh://git@gitlab.com/group/r.git", CurrentAuth::User),
            ("ssh://*****@host:2222/r.git", CurrentAuth::User),
            ("git@github.com:org/r.git", CurrentAuth::User),
            ("github.com:org/r.git", CurrentAuth::None),
            // What `mask_url` masks as a password is counted as one.
            ("git:secret@github.com:org/r.git", CurrentAuth::UserPassword),
            ("oauth2:tok@gitlab.com/g/r.git", CurrentAuth::UserPassword),
            ("host:org/a@b.git", CurrentAuth::None),
            ("https://github.com/org/r@v1.git", CurrentAuth::None),
            ("https://*****:*****@host/a@b", CurrentAuth::UserPassword),
            ("https://:@host/x", CurrentAuth::None),
            ("  https://*****@host/x ", CurrentAuth::User),
            ("", CurrentAuth::None),
        ];
        for (url, want) in cases {
            assert_eq!(CurrentAuth::from_masked_url(url), want, "{url}");
        }
    }

    #[test]
    fn rows_sort_numerically_pull_before_push() {
        let mut rows = vec![
            sample_row(10, MirrorType::Push, Some(12)),
            sample_row(9, MirrorType::Push, Some(3)),
            sample_row(10, MirrorType::Push, Some(2)),
            sample_row(10, MirrorType::Pull, None),
            sample_row(100, MirrorType::Pull, None),
        ];
        sort_rows(&mut rows);
        let keys: Vec<_> =
            rows.iter().map(|r| (r.project_id, r.mirror_type, r.mirror_id)).collect();
        assert_eq!(
            keys,
            vec![
                (9, MirrorType::Push, Some(3)),
                (10, MirrorType::Pull, None),
                (10, MirrorType::Push, Some(2)),
                (10, MirrorType::Push, Some(12)),
                (100, MirrorType::Pull, None),
            ]
        );
    }

    #[test]
    fn last_error_is_folded_and_masked() {
        let raw = "13:fetch remote: \"fatal: unable to access\n\n  'https://user:glpat-CANARY123@github.com/o/r.git/':\tThe requested URL returned error: 403\r\n\": exit status 128.";
        let got = normalize_last_error(raw);
        assert_eq!(
            got,
            "13:fetch remote: \"fatal: unable to access 'https://*****:*****@github.com/o/r.git/': \
             The requested URL returned error: 403 \": exit status 128."
        );
        assert!(!got.contains("CANARY"));
        assert_eq!(normalize_last_error("  \n "), "");
        assert_eq!(normalize_last_error("a\u{1b}[31mb"), "a[31mb");
        // A held token split by an invisible character is still found and masked.
        let token = "ghp_ROWtestSplitToken00000000000000000001";
        crate::redact::register_secret(&secrecy::SecretString::from(token));
        for split in ['\u{202E}', '\u{2066}', '\u{200B}', '\u{FEFF}', '\0', '\u{1b}', '\u{7f}'] {
            let raw = format!("remote: bad {}{split}{} x", &token[..6], &token[6..]);
            let got = normalize_last_error(&raw);
            assert_eq!(got, "remote: bad ***** x", "{split:?}");
        }
    }

    #[test]
    fn last_error_is_cut_at_500_characters() {
        let exact: String = "é".repeat(500);
        assert_eq!(normalize_last_error(&exact), exact);
        let long: String = "é".repeat(501);
        let got = normalize_last_error(&long);
        assert_eq!(got.chars().count(), 500);
        assert!(got.ends_with("é…"));
        // A credential beyond the cut is masked before cutting, never partly kept.
        let tail = format!("{} https://secret-user:secret-pass@h/x", "x".repeat(480));
        let got = normalize_last_error(&tail);
        assert!(!got.contains("secret"), "{got}");
    }
}
