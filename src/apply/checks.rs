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
    if planned.is_none() || planned != live {
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
        let ok = pre.is_admin && (!pre.version.supports_pull_mirror_api() || pre.has_scope("sudo"));
        if !ok {
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
