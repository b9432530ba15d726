//! Checks of a whole plan before any write: every `service` row sends the token only to a
//! source host given to this run with the user configured for it, edited URLs pass the rules
//! again, the plan belongs to this instance, and this token can make the planned mirror
//! users. Each refusal names the plan line.

use std::path::Path;

use crate::apply::matching::is_https;
use crate::error::AppError;
use crate::gitlab::GitLabClient;
use crate::inventory::Preflight;
use crate::plan::{self, MirrorType, PlanRow};
use crate::redact::excerpt;
use crate::rewrite::{self, Action, NewAuth, Rules, TOKEN_AS_USER};

/// The most characters of any cell a message quotes.
const QUOTED: usize = 200;

/// The plan's rows with the file line of each, for messages.
#[derive(Clone, Copy)]
pub(crate) struct Lined<'a> {
    pub(crate) lines: &'a [usize],
    pub(crate) rows: &'a [PlanRow],
}

impl<'a> Lined<'a> {
    pub(crate) fn iter(self) -> impl Iterator<Item = (usize, &'a PlanRow)> {
        self.lines.iter().copied().zip(self.rows)
    }
}

/// Checks that need the credentials given to `apply` (the file itself was checked by
/// `read_plan`): every `service` row must send the token to a host that is a source host *now*
/// with the user configured for it, and an edited `new_url` must pass the rules again.
pub(crate) fn validate_rows(path: &Path, rows: Lined<'_>, rules: &Rules) -> Result<(), AppError> {
    for (line, row) in rows.iter().filter(|(_, r)| r.action == Action::Update) {
        let at = |message: String, hint: Option<String>| AppError::Usage {
            message: format!("{}:{line}: {message}", path.display()),
            hint,
        };
        let direction = row.mirror_type.into();
        if row.is_mirror_user_only() {
            // Written without a URL, so an edited new_url would never be applied; and a URL
            // write without credentials would wipe the stored ones.
            let kept = plan::without_credentials(&row.current_url);
            if row.new_url != kept {
                return Err(at(
                    format!(
                        "new_url of a row that only moves the mirror user must stay {}: this \
                         row is written without a URL, so GitLab keeps the URL and credentials",
                        excerpt(&kept, QUOTED)
                    ),
                    Some("plan again to change the URL".into()),
                ));
            }
            continue;
        }
        if row.new_auth == Some(NewAuth::Service) {
            // Service credentials only ever travel over https.
            if !is_https(&row.new_url) {
                return Err(at(
                    format!(
                        "new_url {} is not https: the service token is only sent over https",
                        excerpt(&row.new_url, QUOTED)
                    ),
                    None,
                ));
            }
            let Some(host) = rewrite::source_host_for(&row.new_url, rules) else {
                return Err(at(
                    format!(
                        "new_url {} is not on a --source-host given to apply: the service token \
                         would go to another host",
                        excerpt(&row.new_url, QUOTED)
                    ),
                    Some("pass the same --source-host/--credentials options as for plan".into()),
                ));
            };
            let configured = host.user.as_deref().unwrap_or(TOKEN_AS_USER);
            if row.new_user != configured {
                return Err(at(
                    format!(
                        "new_user {:?} is not the user configured for {} ({configured:?})",
                        excerpt(&row.new_user, QUOTED),
                        host.host
                    ),
                    None,
                ));
            }
        }
        if let Err(reason) = rewrite::validate_new_url(&row.new_url, direction, rules) {
            let reason = excerpt(&reason, 2 * QUOTED);
            return Err(at(format!("new_url does not pass the rules: {reason}"), None));
        }
    }
    Ok(())
}

/// The plan must come from this instance: compare the `web_url` base of its rows with what
/// GitLab reports now for one of its projects.
pub(crate) async fn check_instance(
    client: &GitLabClient,
    path: &Path,
    rows: Lined<'_>,
) -> Result<(), AppError> {
    let Some((line, row)) = rows.iter().find(|(_, r)| r.action == Action::Update) else {
        return Ok(());
    };
    let planned = plan::instance_base(&row.web_url, &row.project_path);
    let project = match client.project(&row.project_id.to_string()).await {
        Ok(p) => p,
        Err(e) if e.is_not_found() => {
            return Err(AppError::usage_hint(
                format!(
                    "{}:{line}: project {} ({}) does not exist on this GitLab",
                    path.display(),
                    row.project_id,
                    excerpt(&row.project_path, QUOTED)
                ),
                "was the plan made against another instance? check --gitlab-url",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let live = plan::instance_base(&project.web_url, &project.path_with_namespace);
    if !same_instance(planned.as_deref(), live.as_deref()) {
        return Err(AppError::usage_hint(
            format!(
                "{}:{line}: the plan was made for {} but this GitLab is {}",
                path.display(),
                excerpt(planned.as_deref().unwrap_or("an unknown instance"), QUOTED),
                live.as_deref().unwrap_or("unknown")
            ),
            "check --gitlab-url, or plan again against this instance",
        ));
    }
    Ok(())
}

/// A row whose new mirror user is not the caller needs an admin (and `sudo` on the new API).
pub(crate) fn check_mirror_users(
    path: &Path,
    rows: Lined<'_>,
    pre: &Preflight,
) -> Result<(), AppError> {
    for (line, row) in
        rows.iter().filter(|(_, r)| r.action == Action::Update && r.mirror_type == MirrorType::Pull)
    {
        if row.new_mirror_user.is_empty() || row.new_mirror_user == pre.user.username {
            continue;
        }
        if !may_name_other_mirror_users(pre) {
            return Err(AppError::usage_hint(
                format!(
                    "{}:{line}: this row would make {} the mirror user, but this token ({}) cannot",
                    path.display(),
                    excerpt(&row.new_mirror_user, QUOTED),
                    pre.user.username
                ),
                "use an administrator's token with the `sudo` scope, or that user's own token",
            ));
        }
    }
    Ok(())
}

/// Whether a plan's `web_url` base (`planned`) is this instance's (`live`); an unknown base
/// is never the same.
pub(crate) fn same_instance(planned: Option<&str>, live: Option<&str>) -> bool {
    planned.is_some() && planned == live
}

/// Whether this token may make another user the mirror user: an administrator's, with the
/// `sudo` scope on the 17.6 API (which writes as that user).
pub(crate) fn may_name_other_mirror_users(pre: &Preflight) -> bool {
    pre.is_admin && (!pre.version.supports_pull_mirror_api() || pre.has_scope("sudo"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitlab::{GitLabVersion, User};
    use crate::plan::row::tests::sample_row;
    use crate::rewrite::{Fix, SourceHost};

    fn rules() -> Rules {
        Rules {
            source_hosts: vec![SourceHost { host: "github.com".into(), user: None, port: None }],
            maps: Vec::new(),
            prefer_https: false,
        }
    }

    /// A service row on github.com that passes every check.
    fn service_row() -> PlanRow {
        let mut row = sample_row(1, MirrorType::Pull, None);
        row.action = Action::Update;
        row.new_url = "https://github.com/org/r.git".into();
        row.new_auth = Some(NewAuth::Service);
        row.new_user = TOKEN_AS_USER.into();
        row
    }

    fn check(row: PlanRow) -> Result<(), String> {
        let rows = [sample_row(9, MirrorType::Pull, None), row];
        let lined = Lined { lines: &[2, 3], rows: &rows };
        validate_rows(Path::new("plan.csv"), lined, &rules()).map_err(|e| e.to_string())
    }

    #[test]
    fn rows_are_refused_before_any_write_naming_the_line() {
        let mut user_only = service_row();
        user_only.new_auth = Some(NewAuth::Unchanged);
        user_only.fixes = vec![Fix::MirrorUser];
        user_only.new_url = "https://github.com/org/r.git".into();
        let mut edited_user_only = user_only.clone();
        edited_user_only.new_url = "https://github.com/org/other.git".into();
        let with = |f: &dyn Fn(&mut PlanRow)| {
            let mut row = service_row();
            f(&mut row);
            row
        };
        // (row, the refusal's text, or None: passes)
        let cases: Vec<(PlanRow, Option<&str>)> = vec![
            (service_row(), None),
            (user_only, None),
            (edited_user_only, Some("new_url of a row that only moves the mirror user must stay")),
            (
                with(&|r| r.new_url = "http://github.com/org/r.git".into()),
                Some("is not https: the service token is only sent over https"),
            ),
            (
                with(&|r| r.new_url = "https://gitlab.com/org/r.git".into()),
                Some("is not on a --source-host given to apply"),
            ),
            (
                with(&|r| r.new_user = "svc".into()),
                Some("new_user \"svc\" is not the user configured for github.com (\"<token>\")"),
            ),
            (
                with(&|r| {
                    r.new_auth = Some(NewAuth::None);
                    r.new_url = " https://github.com/org/r.git".into();
                }),
                Some("new_url does not pass the rules: new_url has surrounding whitespace"),
            ),
            // A row that is not an update is not checked at all.
            (
                with(&|r| {
                    r.action = Action::Manual;
                    r.new_url = "http://elsewhere.example/x".into();
                }),
                None,
            ),
        ];
        for (i, (row, want)) in cases.into_iter().enumerate() {
            match (check(row), want) {
                (Ok(()), None) => {}
                (Err(e), Some(want)) => {
                    assert!(e.starts_with("plan.csv:3: "), "case {i}: {e}");
                    assert!(e.contains(want), "case {i}: {e}");
                }
                (got, want) => panic!("case {i}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn the_plan_must_be_this_instance_s() {
        let cases = [
            (Some("https://gitlab.example.com"), Some("https://gitlab.example.com"), true),
            (Some("https://gitlab.example.com"), Some("https://other.example.com"), false),
            (None, None, false),
            (None, Some("https://gitlab.example.com"), false),
            (Some("https://gitlab.example.com"), None, false),
        ];
        for (planned, live, want) in cases {
            assert_eq!(same_instance(planned, live), want, "{planned:?} {live:?}");
        }
    }

    fn preflight(version: &str, is_admin: bool, scopes: Option<&[&str]>) -> Preflight {
        Preflight {
            version: GitLabVersion::parse(version).expect("version"),
            user: User { id: 1, username: "admin".into(), ..User::default() },
            is_admin,
            scopes: scopes.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
            silent_mode: None,
            mirror_available: None,
            warnings: Vec::new(),
            token_expires_at: None,
            token_described: false,
        }
    }

    #[test]
    fn only_an_admin_with_sudo_on_the_new_api_names_other_mirror_users() {
        let api: &[&str] = &["api"];
        let sudo: &[&str] = &["api", "sudo"];
        let cases = [
            (preflight("17.6.0", true, Some(sudo)), true),
            (preflight("17.6.0", true, None), true),
            (preflight("17.6.0", true, Some(api)), false),
            (preflight("17.5.0", true, Some(api)), true),
            (preflight("17.5.0", false, Some(sudo)), false),
            (preflight("17.6.0", false, Some(sudo)), false),
        ];
        for (i, (pre, want)) in cases.iter().enumerate() {
            assert_eq!(may_name_other_mirror_users(pre), *want, "case {i}");
        }
        // The check names the line, and skips rows whose mirror user is the caller or unset.
        let mut other = service_row();
        other.new_mirror_user = "svc".into();
        let mut mine = service_row();
        mine.new_mirror_user = "admin".into();
        let rows = [service_row(), mine, other];
        let lined = Lined { lines: &[2, 3, 4], rows: &rows };
        let path = Path::new("plan.csv");
        assert!(check_mirror_users(path, lined, &cases[0].0).is_ok());
        let e = check_mirror_users(path, lined, &cases[2].0).unwrap_err().to_string();
        assert!(e.starts_with("plan.csv:4: this row would make svc the mirror user"), "{e}");
        let lined = Lined { lines: &[2, 3], rows: &rows[..2] };
        assert!(check_mirror_users(path, lined, &cases[2].0).is_ok());
    }
}
