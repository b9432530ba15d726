//! The health report: one row per mirror with its health (the rule `status` exits 3 on), and
//! the renderings for the places administrators look — JUnit XML for a GitLab CI pipeline's
//! test report ([`junit`]) and the Prometheus text exposition format for node_exporter's
//! textfile collector ([`prometheus`]). Pure: the `status` command reads the instance.

pub(crate) mod junit;
pub(crate) mod prometheus;

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ExitCode;
use crate::plan::{self, Diagnosis, MirrorFacts, MirrorType};
use crate::redact::{self, MASK};
use crate::rewrite::{UnknownCode, code_traits};

/// How a mirror is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Health {
    /// Enabled and working.
    Ok,
    /// Enabled and failing, stuck, without a usable mirror user, or unreadable.
    Unhealthy,
    /// Disabled, or its project is archived: not judged.
    Ignored,
}

impl Health {
    /// The stable code written in reports.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Unhealthy => "unhealthy",
            Health::Ignored => "ignored",
        }
    }

    /// The health rule: an enabled mirror of a live project is unhealthy when its status is
    /// `failed`, or it is diagnosed `stuck`, `mirror-user-blocked` or `unreadable`.
    pub(crate) fn of(
        enabled: bool,
        archived: bool,
        update_status: &str,
        diagnosis: Option<Diagnosis>,
    ) -> Health {
        if !enabled || archived {
            Health::Ignored
        } else if update_status == "failed"
            || matches!(
                diagnosis,
                Some(Diagnosis::Stuck | Diagnosis::MirrorUserBlocked | Diagnosis::Unreadable)
            )
        {
            Health::Unhealthy
        } else {
            Health::Ok
        }
    }
}

code_traits!(Health, "health", [Health::Ok, Health::Unhealthy, Health::Ignored]);

impl Serialize for Health {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// The columns of `status --format csv`, in order (the JSON field names).
pub(crate) const STATUS_COLUMNS: [&str; 14] = [
    "project_id",
    "project_path",
    "mirror_type",
    "mirror_id",
    "url",
    "enabled",
    "archived",
    "update_status",
    "last_successful_update_at",
    "last_update_at",
    "mirror_user",
    "diagnosis",
    "last_error",
    "health",
];

/// One line of the health report. Its text comes from GitLab and is cleaned when the row is
/// made (held tokens and URL credentials masked, control characters removed), so every
/// format shows the same safe text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct StatusRow {
    /// Project id.
    pub(crate) project_id: u64,
    /// `path_with_namespace`.
    pub(crate) project_path: String,
    /// Pull or push.
    #[serde(serialize_with = "code_of_type")]
    pub(crate) mirror_type: MirrorType,
    /// Push mirror id (empty for pull).
    pub(crate) mirror_id: Option<u64>,
    /// The URL as GitLab shows it (masked).
    pub(crate) url: String,
    /// Whether the mirror is enabled.
    pub(crate) enabled: bool,
    /// Whether the project is archived.
    pub(crate) archived: bool,
    /// GitLab's `update_status`.
    pub(crate) update_status: String,
    /// The last successful update, if GitLab said.
    #[serde(serialize_with = "rfc3339")]
    pub(crate) last_successful_update_at: Option<OffsetDateTime>,
    /// The last update, successful or not, if GitLab said.
    #[serde(serialize_with = "rfc3339")]
    pub(crate) last_update_at: Option<OffsetDateTime>,
    /// Username of the pull mirror's user.
    pub(crate) mirror_user: String,
    /// What is wrong, if anything.
    #[serde(serialize_with = "code_of_diagnosis")]
    pub(crate) diagnosis: Option<Diagnosis>,
    /// Last error, normalized and masked.
    pub(crate) last_error: String,
    /// How it is doing.
    pub(crate) health: Health,
}

fn code_of_type<S: Serializer>(t: &MirrorType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.code())
}

fn code_of_diagnosis<S: Serializer>(d: &Option<Diagnosis>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.map(|d| d.code()).unwrap_or_default())
}

fn rfc3339<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time_text(*t))
}

fn time_text(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

impl StatusRow {
    /// The health of one mirror, from its facts.
    pub(crate) fn of(facts: &MirrorFacts, now: OffsetDateTime, silent_mode: bool) -> StatusRow {
        let diagnosis = facts.diagnose(now, silent_mode);
        let archived = facts.project.archived;
        // GitLab's text, cleaned like any cell glmirror writes (held tokens masked, no control
        // characters); the URL as the plan shows it (a malformed one GitLab stored verbatim is
        // masked here, an ssh username stays), `last_error` scrubbed by its normalisation.
        //
        // Credentials glmirror does not hold are masked too ([`mask_foreign`]): query values
        // and fragments of the URL, token-shaped words in the error.
        let text = |s: &str| plan::cell::clean(s).into_owned();
        let url = if facts.url.contains(crate::redact::MASK) {
            facts.url.clone()
        } else {
            crate::rewrite::mask_url(&facts.url)
        };
        let url = mask_url_tail(&url);
        StatusRow {
            project_id: facts.project.id,
            project_path: text(&facts.project.path),
            mirror_type: facts.mirror_type(),
            mirror_id: facts.kind.mirror_id(),
            url: text(&url),
            enabled: facts.enabled,
            archived,
            update_status: text(&facts.update_status),
            last_successful_update_at: facts.last_successful_update_at,
            last_update_at: facts.last_update_at,
            mirror_user: text(&facts.user_name),
            diagnosis,
            last_error: text(
                &facts
                    .last_error
                    .as_deref()
                    // Invisible characters first, so a foreign token split by one is seen.
                    .map(|e| {
                        plan::normalize_last_error(&mask_foreign(&redact::without_invisible(e)))
                    })
                    .unwrap_or_default(),
            ),
            health: Health::of(facts.enabled, archived, &facts.update_status, diagnosis),
        }
    }

    /// The row's cells in [`STATUS_COLUMNS`] order.
    pub(crate) fn cells(&self) -> [String; 14] {
        [
            self.project_id.to_string(),
            self.project_path.clone(),
            self.mirror_type.code().to_owned(),
            self.mirror_id.map(|id| id.to_string()).unwrap_or_default(),
            self.url.clone(),
            self.enabled.to_string(),
            self.archived.to_string(),
            self.update_status.clone(),
            time_text(self.last_successful_update_at),
            time_text(self.last_update_at),
            self.mirror_user.clone(),
            self.diagnosis.map(|d| d.code().to_owned()).unwrap_or_default(),
            self.last_error.clone(),
            self.health.code().to_owned(),
        ]
    }

    /// The mirror's name in test reports and metrics: its URL without credentials, query or
    /// fragment, which survives `apply` (a replaced push mirror gets a new id, not a new URL).
    pub(crate) fn name_url(&self) -> String {
        let url = plan::without_credentials(&self.url);
        match url.find(['?', '#']) {
            Some(at) => url[..at].to_owned(),
            None => url,
        }
    }

    /// Why an ignored mirror is ignored.
    pub(crate) fn ignored_because(&self) -> &'static str {
        match (self.enabled, self.archived) {
            (_, true) => "archived project",
            (false, _) => "mirror disabled",
            _ => "",
        }
    }
}

/// A token the mirrors depend on, and when it expires (when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenExpiry {
    /// The host whose token it is (the GitLab instance's host for the API token), with
    /// `:port` when the port is not the scheme's default ([`TokenExpiry::host_port`]): two
    /// credentials for one host on two ports are two tokens.
    pub(crate) host: String,
    /// Which token: `service` (a source host's) or `gitlab-api`.
    pub(crate) token: &'static str,
    /// When it expires; `None` when it does not or nobody says.
    pub(crate) expires_at: Option<OffsetDateTime>,
}

impl TokenExpiry {
    /// `host`, or `host:port` when a port other than the scheme's default is given.
    pub(crate) fn host_port(host: &str, port: Option<u16>) -> String {
        match port {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }
}

/// Everything one `status` run reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthReport {
    /// One row per mirror, in plan order.
    pub(crate) rows: Vec<StatusRow>,
    /// Mirror reads refused (401/403) or unreadable: the report is incomplete by this much.
    pub(crate) scrape_errors: u64,
    /// Mirror reads refused (401/403).
    pub(crate) refused: u64,
    /// The tokens the mirrors depend on.
    pub(crate) tokens: Vec<TokenExpiry>,
    /// A token the mirrors depend on is invalid, expired or within 7 days of expiry.
    pub(crate) tokens_failing: bool,
    /// When the report was made.
    pub(crate) generated_at: OffsetDateTime,
}

impl HealthReport {
    /// Mirrors judged unhealthy.
    pub(crate) fn unhealthy(&self) -> usize {
        self.rows.iter().filter(|r| r.health == Health::Unhealthy).count()
    }

    /// `status`'s exit code: 3 when an enabled mirror of a live project is unhealthy, when
    /// reads were refused (an incomplete report must not pass for a healthy one on a
    /// schedule), or when a token the mirrors depend on is failing; else 0.
    pub(crate) fn exit_code(&self) -> ExitCode {
        if self.unhealthy() > 0 || self.refused > 0 || self.tokens_failing {
            ExitCode::RowsFailed
        } else {
            ExitCode::Success
        }
    }
}

/// A URL with every query value and its fragment masked (`?access_token=*****`, `#*****`):
/// a git remote needs neither, and a token there is one glmirror does not hold, so the
/// scrubber would not know it.
fn mask_url_tail(url: &str) -> String {
    match url.find(['?', '#']) {
        Some(at) => format!("{}{}", &url[..at], mask_query(&url[at..])),
        None => url.to_owned(),
    }
}

/// `?query#fragment` (either may be missing) with every query value and the fragment masked.
fn mask_query(tail: &str) -> String {
    let (query, fragment) = match tail.find('#') {
        Some(at) => (&tail[..at], Some(&tail[at + 1..])),
        None => (tail, None),
    };
    let mut out = String::with_capacity(tail.len());
    if let Some(pairs) = query.strip_prefix('?') {
        out.push('?');
        let masked: Vec<String> = pairs
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) if !value.is_empty() => format!("{key}={MASK}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&masked.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(if fragment.is_empty() { "" } else { MASK });
    }
    out
}

/// Credentials glmirror does not hold, masked in GitLab's free text (what [`redact::scrub`]
/// cannot know): the query values and fragment of every URL in it ([`mask_query`]), then
/// every token-shaped word ([`redact::looks_like_token`]: a known prefix such as `glpat-` or
/// `ghp_`, or 32 or more letters, digits, `_` and `-` mixing letters and digits). A word is a
/// run of those characters; a long hexadecimal object id is masked too.
pub(crate) fn mask_foreign(text: &str) -> String {
    // The query and fragment of each URL, as byte ranges of `text`, merged where they overlap
    // (`a://b?x=c://d` holds two URLs).
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (_, authority) in redact::urls_in(text) {
        let rest = authority.rest;
        let start = rest.as_ptr() as usize - text.as_ptr() as usize;
        if let Some(at) = rest.find(['?', '#']) {
            let range = (start + at, start + rest.len());
            match ranges.last_mut() {
                Some(last) if range.0 <= last.1 => last.1 = last.1.max(range.1),
                _ => ranges.push(range),
            }
        }
    }
    let mut queries_masked = String::with_capacity(text.len());
    let mut from = 0;
    for (start, end) in ranges {
        queries_masked.push_str(&text[from..start]);
        queries_masked.push_str(&mask_query(&text[start..end]));
        from = end;
    }
    queries_masked.push_str(&text[from..]);
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(queries_masked.len());
    let mut rest = queries_masked.as_str();
    while let Some(start) = rest.find(word_char) {
        out.push_str(&rest[..start]);
        let word_len = rest[start..].find(|c| !word_char(c)).unwrap_or(rest.len() - start);
        let word = &rest[start..start + word_len];
        out.push_str(if redact::looks_like_token(word) { MASK } else { word });
        rest = &rest[start + word_len..];
    }
    out.push_str(rest);
    out
}

/// The part of a path before its last `/`: a project's namespace (`platform/infra` for
/// `platform/infra/terraform-modules`).
pub(crate) fn namespace(project_path: &str) -> &str {
    project_path.rsplit_once('/').map_or("", |(ns, _)| ns)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A row for tests.
    pub(crate) fn row(path: &str, ty: MirrorType, url: &str, health: Health) -> StatusRow {
        StatusRow {
            project_id: 1,
            project_path: path.into(),
            mirror_type: ty,
            mirror_id: (ty == MirrorType::Push).then_some(7),
            url: url.into(),
            enabled: health != Health::Ignored,
            archived: false,
            update_status: "finished".into(),
            last_successful_update_at: None,
            last_update_at: None,
            mirror_user: String::new(),
            diagnosis: None,
            last_error: String::new(),
            health,
        }
    }

    #[test]
    fn health_codes_round_trip() {
        for h in [Health::Ok, Health::Unhealthy, Health::Ignored] {
            assert_eq!(h.code().parse::<Health>(), Ok(h));
        }
        assert_eq!(serde_json::to_string(&Health::Unhealthy).unwrap(), "\"unhealthy\"");
    }

    #[test]
    fn the_health_rule() {
        use Diagnosis::*;
        let cases = [
            (true, false, "finished", None, Health::Ok),
            (true, false, "failed", Some(AuthFailed), Health::Unhealthy),
            (true, false, "started", Some(Stuck), Health::Unhealthy),
            (true, false, "finished", Some(MirrorUserBlocked), Health::Unhealthy),
            (true, false, "", Some(Unreadable), Health::Unhealthy),
            // A remote-side diagnosis on a mirror that is not failing is not unhealthy.
            (true, false, "finished", Some(NotMirrored), Health::Ok),
            (false, false, "failed", Some(AuthFailed), Health::Ignored),
            (true, true, "failed", Some(AuthFailed), Health::Ignored),
        ];
        for (enabled, archived, status, d, want) in cases {
            assert_eq!(Health::of(enabled, archived, status, d), want, "{status} {d:?}");
        }
    }

    #[test]
    fn rows_serialize_with_codes_and_times() {
        let mut r = row("a/b", MirrorType::Push, "https://*****@h/x.git", Health::Unhealthy);
        r.diagnosis = Some(Diagnosis::AuthFailed);
        r.last_update_at = Some(OffsetDateTime::UNIX_EPOCH);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["mirror_type"], "push");
        assert_eq!(json["diagnosis"], "auth-failed");
        assert_eq!(json["health"], "unhealthy");
        assert_eq!(json["last_update_at"], "1970-01-01T00:00:00Z");
        assert_eq!(json["last_successful_update_at"], "");
        assert_eq!(r.cells().len(), STATUS_COLUMNS.len());
        assert_eq!(r.name_url(), "https://h/x.git");
    }

    #[test]
    fn the_exit_rule() {
        let ok = row("a/b", MirrorType::Pull, "https://h/b.git", Health::Ok);
        let bad = row("a/c", MirrorType::Pull, "https://h/c.git", Health::Unhealthy);
        let off = row("a/d", MirrorType::Pull, "https://h/d.git", Health::Ignored);
        let cases = [
            (vec![ok.clone(), off.clone()], 0, false, ExitCode::Success),
            (vec![], 0, false, ExitCode::Success),
            (vec![ok.clone(), bad], 0, false, ExitCode::RowsFailed),
            (vec![ok.clone()], 1, false, ExitCode::RowsFailed),
            (vec![ok, off], 0, true, ExitCode::RowsFailed),
        ];
        for (rows, refused, tokens_failing, want) in cases {
            let report = HealthReport {
                rows,
                scrape_errors: refused,
                refused,
                tokens: Vec::new(),
                tokens_failing,
                generated_at: OffsetDateTime::UNIX_EPOCH,
            };
            assert_eq!(report.exit_code(), want, "{refused} {tokens_failing}");
        }
    }

    #[test]
    fn token_hosts_carry_a_port_other_than_the_default() {
        assert_eq!(TokenExpiry::host_port("git.example.org", None), "git.example.org");
        assert_eq!(TokenExpiry::host_port("git.example.org", Some(8443)), "git.example.org:8443");
    }

    #[test]
    fn credentials_glmirror_does_not_hold_are_masked() {
        let cases = [
            ("plain text, no token", "plain text, no token"),
            ("token glpat-AbCdEfGhIjKlMnOpQrSt.", "token *****."),
            ("\"ghp_abcdefabcdef\" and github_pat_11AAA_xyz", "\"*****\" and *****"),
            (
                "fatal: https://github.com/acme/q.git?access_token=abc&x=&y#frag failed",
                "fatal: https://github.com/acme/q.git?access_token=*****&x=&y#***** failed",
            ),
            (
                "'https://h/x?private_token=short1' then https://h/y",
                "'https://h/x?private_token=*****' then https://h/y",
            ),
            ("a://b?t=c://d?u=v e", "a://b?t=***** e"),
            ("opaque 0123456789abcdef0123456789abcdef01 end", "opaque ***** end"),
            (
                "names stay: terraform-modules api-gateway-v2",
                "names stay: terraform-modules api-gateway-v2",
            ),
            ("ünïcode ✓ glpat-x", "ünïcode ✓ *****"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_foreign(input), want, "{input:?}");
        }
        assert_eq!(
            mask_url_tail("https://h/x.git?access_token=ghp_x#f"),
            "https://h/x.git?access_token=*****#*****"
        );
        assert_eq!(mask_url_tail("git@h:x.git"), "git@h:x.git");
        let mut r = row(
            "a/b",
            MirrorType::Pull,
            "https://*****@h/x.git?access_token=*****#*****",
            Health::Ok,
        );
        assert_eq!(r.name_url(), "https://h/x.git");
        r.url = "git@h:a/b.git".into();
        assert_eq!(r.name_url(), "git@h:a/b.git");
    }

    #[test]
    fn namespaces() {
        assert_eq!(namespace("platform/infra/terraform-modules"), "platform/infra");
        assert_eq!(namespace("a/b"), "a");
        assert_eq!(namespace("solo"), "");
    }
}
