//! Which `update` rows of a plan a person gave another `new_url`, found by comparing each row
//! with the planned URL its `observed` seal holds; how each edit changes the URL (another
//! host, another repository path, or something smaller such as a `.git` suffix); and the
//! listing `apply` shows in its confirmation, its dry run and its refusal. Rows sealed in the
//! first format (glmirror 0.1) cannot be checked: they are counted apart.
//!
//! Pure: no I/O. `cmd::apply` decides what to do with the result.

use crate::apply::LoadedPlan;
use crate::plan::{self, PlanRow, RowKey};
use crate::redact::split_authority;
use crate::rewrite::Action;

/// How an edited `new_url` differs from the planned one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum UrlChange {
    /// Another host (or port): the mirror would talk to another server.
    Host,
    /// Same host, another repository path: the mirror would copy another repository.
    Path,
    /// Same host and repository (scheme, user, a `.git` suffix, a trailing slash…).
    Other,
}

impl UrlChange {
    fn heading(self) -> &'static str {
        match self {
            UrlChange::Host => "another host",
            UrlChange::Path => "another repository path",
            UrlChange::Other => "same host and repository, other spelling",
        }
    }
}

/// One row whose `new_url` differs from the planned one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EditedUrl {
    /// The row's line in the plan file.
    pub(crate) line: usize,
    /// The row.
    pub(crate) key: RowKey,
    /// Its project path (sealed, so it is the planned project).
    pub(crate) project_path: String,
    /// The planned `new_url`.
    pub(crate) planned: String,
    /// The `new_url` in the file.
    pub(crate) now: String,
    /// What kind of change it is.
    pub(crate) change: UrlChange,
}

/// The `new_url` edits of a plan's `update` rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UrlEdits {
    /// Rows whose `new_url` differs from the planned one, in file order.
    pub(crate) edited: Vec<EditedUrl>,
    /// Lines of `update` rows sealed in the first format, where an edit cannot be told.
    pub(crate) unsealed: Vec<usize>,
}

/// Compare every `update` row's `new_url` with the planned one. The file was validated, so
/// every seal holds; a row whose seal cannot be read is left to the later checks.
pub(crate) fn url_edits(plan: &LoadedPlan) -> UrlEdits {
    let mut edits = UrlEdits::default();
    for (line, row) in plan.lined().iter().filter(|(_, r)| r.action == Action::Update) {
        let Ok(seal) = plan::read_seal(&row.observed, plan::SealKey::of(row), row.action) else {
            continue;
        };
        match seal.planned_new_url {
            None => edits.unsealed.push(line),
            Some(planned) if planned != row.new_url => edits.edited.push(EditedUrl {
                line,
                key: row.key(),
                project_path: row.project_path.clone(),
                change: classify(&planned, &row.new_url),
                now: row.new_url.clone(),
                planned,
            }),
            Some(_) => {}
        }
    }
    edits
}

impl UrlEdits {
    /// The listing, one line each: a count, then the rows grouped by kind of change, each as
    /// `FILE:LINE: project → planned → in the file`.
    pub(crate) fn listing(&self, file: &str) -> Vec<String> {
        let n = self.edited.len();
        if n == 0 {
            return Vec::new();
        }
        let mut lines = vec![format!(
            "{n} {} an edited new_url (project → planned → in the file):",
            if n == 1 { "row has" } else { "rows have" }
        )];
        for change in [UrlChange::Host, UrlChange::Path, UrlChange::Other] {
            let group: Vec<&EditedUrl> =
                self.edited.iter().filter(|e| e.change == change).collect();
            if group.is_empty() {
                continue;
            }
            lines.push(format!("  {} ({}):", change.heading(), group.len()));
            for e in group {
                lines.push(format!(
                    "    {file}:{}: {} → {} → {}",
                    e.line, e.project_path, e.planned, e.now
                ));
            }
        }
        lines
    }

    /// What the report's `outcome_detail` of an edited row starts with.
    pub(crate) fn report_note(&self, row: &PlanRow) -> Option<String> {
        let key = row.key();
        self.edited
            .iter()
            .find(|e| e.key == key)
            .map(|e| format!("edited new_url ({}; planned {}): ", e.change.heading(), e.planned))
    }
}

/// The parts of a mirror URL an edit is judged by.
#[derive(Debug, PartialEq, Eq)]
struct Parts {
    scheme: String,
    /// Lowercase host name.
    host: String,
    /// The port, the scheme's default when none is given.
    port: Option<u16>,
    /// The repository path without a leading or trailing `/` or a trailing `.git`.
    path: String,
}

/// `scheme://[user@]host[:port]/path`, or SCP-like `[user@]host:path` (scheme `ssh`).
fn parts(url: &str) -> Parts {
    let (scheme, host, port, path) = match (split_authority(url), url::Url::parse(url)) {
        (Some(_), Ok(u)) => (
            u.scheme().to_owned(),
            u.host_str().unwrap_or_default().to_ascii_lowercase(),
            u.port_or_known_default().or(if u.scheme() == "ssh" { Some(22) } else { None }),
            u.path().to_owned(),
        ),
        (Some(a), Err(_)) => (
            a.scheme.to_ascii_lowercase(),
            a.host_port.to_ascii_lowercase(),
            None,
            a.rest.to_owned(),
        ),
        (None, _) => {
            let after_user = match crate::redact::scp_userinfo(url) {
                Some(userinfo) => &url[userinfo.len() + 1..],
                None => url,
            };
            let (host, path) = after_user.split_once(':').unwrap_or(("", after_user));
            ("ssh".to_owned(), host.to_ascii_lowercase(), Some(22), path.to_owned())
        }
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).trim_end_matches('/').to_owned();
    Parts { scheme, host, port, path }
}

/// What kind of change turns `planned` into `now`. A port change is a host change; a change
/// of scheme alone (`ssh://` → `https://` on the same host) is not.
pub(crate) fn classify(planned: &str, now: &str) -> UrlChange {
    let (a, b) = (parts(planned), parts(now));
    let same_port = a.scheme != b.scheme || a.port == b.port;
    if a.host != b.host || !same_port {
        UrlChange::Host
    } else if a.path != b.path {
        UrlChange::Path
    } else {
        UrlChange::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_are_classified_by_what_they_change() {
        let cases = [
            ("https://github.com/acme/a.git", "https://github.com/acme/b.git", UrlChange::Path),
            ("https://github.com/acme/a.git", "https://github.com/other/a.git", UrlChange::Path),
            ("https://github.com/acme/a.git", "https://gitlab.com/acme/a.git", UrlChange::Host),
            (
                "https://github.com/acme/a.git",
                "https://github.com:8443/acme/a.git",
                UrlChange::Host,
            ),
            ("https://github.com/acme/a.git", "https://GitHub.com/acme/a.git", UrlChange::Other),
            (
                "https://github.com/acme/a.git",
                "https://github.com:443/acme/a.git",
                UrlChange::Other,
            ),
            ("https://github.com/acme/a.git", "https://github.com/acme/a", UrlChange::Other),
            ("https://github.com/acme/a.git", "https://github.com/acme/a/", UrlChange::Other),
            ("https://github.com/acme/a.git", "https://github.com/acme/A.git", UrlChange::Path),
            ("ssh://git@github.com/acme/a.git", "https://github.com/acme/a.git", UrlChange::Other),
            (
                "ssh://git@github.com/acme/a.git",
                "ssh://git@github.com:2222/acme/a.git",
                UrlChange::Host,
            ),
            ("git@github.com:acme/a.git", "ssh://git@github.com/acme/a.git", UrlChange::Other),
            ("ssh://git@github.com/acme/a.git", "ssh://github.com/acme/a.git", UrlChange::Other),
            ("git@github.com:acme/a.git", "git@github.com:acme/b.git", UrlChange::Path),
            ("git@github.com:acme/a.git", "git@gitlab.com:acme/a.git", UrlChange::Host),
            (
                "https://github.com@evil.example/acme/a.git",
                "https://github.com/acme/a.git",
                UrlChange::Host,
            ),
        ];
        for (planned, now, want) in cases {
            assert_eq!(classify(planned, now), want, "{planned} → {now}");
        }
    }

    #[test]
    fn the_listing_groups_by_change_and_counts() {
        let key = |id| RowKey {
            project_id: id,
            mirror_type: crate::plan::MirrorType::Pull,
            mirror_id: None,
        };
        let edit = |id, planned: &str, now: &str| EditedUrl {
            line: id as usize + 1,
            key: key(id),
            project_path: format!("g/p{id}"),
            planned: planned.into(),
            now: now.into(),
            change: classify(planned, now),
        };
        let edits = UrlEdits {
            edited: vec![
                edit(1, "https://h/a.git", "https://h/b.git"),
                edit(2, "https://h/b.git", "https://evil.example/b.git"),
            ],
            unsealed: Vec::new(),
        };
        assert_eq!(
            edits.listing("plan.csv"),
            vec![
                "2 rows have an edited new_url (project → planned → in the file):",
                "  another host (1):",
                "    plan.csv:3: g/p2 → https://h/b.git → https://evil.example/b.git",
                "  another repository path (1):",
                "    plan.csv:2: g/p1 → https://h/a.git → https://h/b.git",
            ]
        );
        assert!(UrlEdits::default().listing("p").is_empty());
        let one = UrlEdits { edited: edits.edited[..1].to_vec(), unsealed: Vec::new() };
        assert!(one.listing("p")[0].starts_with("1 row has an edited new_url"));
    }
}
