//! `glmirror status`: a read-only health report of every mirror in scope, for people and
//! for schedulers (exit 3 when an enabled mirror of a live project is unhealthy, or when the
//! token watch finds a service token, or the GitLab API token, invalid or within 7 days of
//! expiry).

use std::io::Write;

use futures::TryStreamExt;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::StatusFormat;
use crate::config::{Connection, ConnectionRequest, Scope, Settings, StatusRequest};
use crate::error::{AppError, ExitCode};
use crate::inventory::probe as probing;
use crate::inventory::{self, MirrorRead, ReadContext, facts};
use crate::plan::{self, Diagnosis, MirrorType};
use crate::probe::watch::WatchMode;
use crate::redact::for_terminal;

/// The columns of `status --format csv`, in order (the JSON field names).
pub const STATUS_COLUMNS: [&str; 13] = [
    "project_id",
    "project_path",
    "mirror_type",
    "mirror_id",
    "url",
    "enabled",
    "archived",
    "update_status",
    "last_successful_update_at",
    "mirror_user",
    "diagnosis",
    "last_error",
    "health",
];

/// One line of the health report. Its text comes from GitLab and is cleaned when the row is
/// made (held tokens and URL credentials masked, control characters removed), so every
/// format shows the same safe text.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    /// Project id.
    pub project_id: u64,
    /// `path_with_namespace`.
    pub project_path: String,
    /// `pull` or `push`.
    pub mirror_type: &'static str,
    /// Push mirror id (empty for pull).
    pub mirror_id: Option<u64>,
    /// The URL as GitLab shows it (masked).
    pub url: String,
    /// Whether the mirror is enabled.
    pub enabled: bool,
    /// Whether the project is archived.
    pub archived: bool,
    /// GitLab's `update_status`.
    pub update_status: String,
    /// Last successful update (RFC 3339), if any.
    pub last_successful_update_at: String,
    /// Username of the pull mirror's user.
    pub mirror_user: String,
    /// Diagnosis code, if any.
    pub diagnosis: String,
    /// Last error, normalized and masked.
    pub last_error: String,
    /// `ok` or `unhealthy` (or `ignored` for disabled mirrors and archived projects).
    pub health: &'static str,
}

/// Run `glmirror status`.
pub async fn run(
    settings: &Settings,
    conn: ConnectionRequest,
    req: StatusRequest,
) -> Result<ExitCode, AppError> {
    let conn = conn.resolve()?;
    let gitlab_host = conn.base_url.host_str().unwrap_or_default().to_owned();
    let (rows, silent, refused, pre) = collect_with_preflight(settings, &req.scope, conn).await?;
    let unhealthy = rows.iter().filter(|r| r.health == "unhealthy").count();
    print_rows(&rows, req.format)?;
    let tokens_fail = watch_tokens(settings, &req, &rows, &pre, &gitlab_host).await?;
    if !settings.quiet {
        eprintln!(
            "glmirror status: {} mirrors, {} unhealthy{}",
            rows.len(),
            unhealthy,
            if silent { " (Silent Mode is on: no mirror updates)" } else { "" }
        );
        if refused > 0 {
            eprintln!(
                "  warning: {refused} mirror reads were refused (401/403): the report is \
                 incomplete"
            );
        }
        let unreadable =
            rows.iter().filter(|r| r.diagnosis == Diagnosis::Unreadable.code()).count();
        if unreadable > 0 {
            eprintln!(
                "  warning: {unreadable} mirrors could not be read (GitLab kept answering an \
                 error): they are reported unhealthy, diagnosis unreadable"
            );
        }
    }
    // An incomplete report must not pass for a healthy one on a schedule, nor a token that
    // is about to break every mirror on it.
    Ok(if unhealthy > 0 || refused > 0 || tokens_fail {
        ExitCode::RowsFailed
    } else {
        ExitCode::Success
    })
}

/// The token watch for `status`: every service token given (its mirrors counted by host)
/// and the GitLab API token. True when one is invalid, expired or within 7 days of expiry.
async fn watch_tokens(
    settings: &Settings,
    req: &StatusRequest,
    rows: &[StatusRow],
    pre: &inventory::Preflight,
    gitlab_host: &str,
) -> Result<bool, AppError> {
    let probe = crate::config::ProbeRequest::default();
    let http = probing::http_settings(settings, &probe)?;
    let tokens = probing::watch_tokens(&http, &req.credentials, &probe).await?;
    let on_host = probing::service_rows_by_host(
        rows.iter().filter(|r| r.health != "ignored").map(|r| r.url.as_str()),
    );
    let mut verdicts = probing::verdicts(&tokens, &on_host, WatchMode::Status);
    verdicts.push(probing::gitlab_token_verdict(pre, gitlab_host, WatchMode::Status));
    Ok(probing::say_verdicts(&verdicts, settings.quiet, "  "))
}

/// Read the health of every mirror in scope, sorted like a plan. Also returns whether Silent
/// Mode is on, and how many mirror reads were refused (401/403).
pub async fn collect(
    settings: &Settings,
    scope: &Scope,
    conn: Connection,
) -> Result<(Vec<StatusRow>, bool, u64), AppError> {
    let (rows, silent, refused, _) = collect_with_preflight(settings, scope, conn).await?;
    Ok((rows, silent, refused))
}

/// [`collect`], and what pre-flight found.
async fn collect_with_preflight(
    settings: &Settings,
    scope: &Scope,
    conn: Connection,
) -> Result<(Vec<StatusRow>, bool, u64, inventory::Preflight), AppError> {
    let client = inventory::client(settings, conn)?;
    let pre = inventory::preflight(&client, false).await?;
    let now = OffsetDateTime::now_utc();
    let silent = pre.silent_mode == Some(true);
    let users = ReadContext::skipping_forbidden();
    let progress = crate::output::progress_bar(settings, "reading mirrors");
    let mut reads = inventory::projects(&client, scope, &pre)
        .map_ok(|p| inventory::read_project(&client, &users, p, scope.mirrors))
        .try_buffer_unordered(usize::from(settings.concurrency));
    let mut rows = Vec::new();
    while let Some(project_reads) = reads.try_next().await? {
        progress.inc(1);
        rows.extend(project_reads.iter().map(|r| status_row(r, now, silent)));
    }
    progress.finish_and_clear();
    rows.sort_by_key(|r| (r.project_id, r.mirror_type != "pull", r.mirror_id));
    Ok((rows, silent, users.skipped(), pre))
}

/// The health of one mirror.
pub fn status_row(read: &MirrorRead, now: OffsetDateTime, silent_mode: bool) -> StatusRow {
    let facts = facts::facts_of(read);
    let (mirror_type, mirror_id) = (facts.mirror_type(), facts.kind.mirror_id());
    let diagnosis = facts.diagnose(now, silent_mode);
    let archived = read.project.archived;
    // Unhealthy: an enabled mirror of a non-archived project whose status is `failed`, or
    // diagnosed `stuck`, `mirror-user-blocked` or `unreadable` (GitLab would not answer).
    let health = if !facts.enabled || archived {
        "ignored"
    } else if facts.update_status == "failed"
        || matches!(
            diagnosis,
            Some(Diagnosis::Stuck | Diagnosis::MirrorUserBlocked | Diagnosis::Unreadable)
        )
    {
        "unhealthy"
    } else {
        "ok"
    };
    // GitLab's text, cleaned like any cell glmirror writes (held tokens masked, no control
    // characters); the URL as the plan shows it (a malformed one GitLab stored verbatim is
    // masked here, an ssh username stays), `last_error` scrubbed by its normalisation.
    let text = |s: &str| plan::cell::clean(s).into_owned();
    let url = if facts.url.contains(crate::redact::MASK) {
        facts.url.clone()
    } else {
        crate::rewrite::mask_url(&facts.url)
    };
    StatusRow {
        project_id: read.project.id,
        project_path: text(&read.project.path_with_namespace),
        mirror_type: match mirror_type {
            MirrorType::Pull => "pull",
            MirrorType::Push => "push",
        },
        mirror_id,
        url: text(&url),
        enabled: facts.enabled,
        archived,
        update_status: text(&facts.update_status),
        last_successful_update_at: facts
            .last_successful_update_at
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default(),
        mirror_user: text(&facts.user_name),
        diagnosis: diagnosis.map(|d| d.code().to_owned()).unwrap_or_default(),
        last_error: text(
            &facts.last_error.as_deref().map(plan::normalize_last_error).unwrap_or_default(),
        ),
        health,
    }
}

impl StatusRow {
    /// The row's cells in [`STATUS_COLUMNS`] order.
    pub fn cells(&self) -> [String; 13] {
        [
            self.project_id.to_string(),
            self.project_path.clone(),
            self.mirror_type.to_owned(),
            self.mirror_id.map(|id| id.to_string()).unwrap_or_default(),
            self.url.clone(),
            self.enabled.to_string(),
            self.archived.to_string(),
            self.update_status.clone(),
            self.last_successful_update_at.clone(),
            self.mirror_user.clone(),
            self.diagnosis.clone(),
            self.last_error.clone(),
            self.health.to_owned(),
        ]
    }
}

fn print_rows(rows: &[StatusRow], format: StatusFormat) -> Result<(), AppError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |e| AppError::io("cannot write", "<stdout>", e);
    match format {
        StatusFormat::Json => {
            serde_json::to_writer_pretty(&mut out, rows)
                .map_err(|e| AppError::io("cannot write", "<stdout>", e.into()))?;
            writeln!(out).map_err(io)?;
        }
        StatusFormat::Csv => {
            // The one cell writer of every CSV: formula guard, no control characters.
            let mut w = plan::cell::csv_writer(&mut out);
            w.write_record(STATUS_COLUMNS).map_err(|e| io(e.into()))?;
            for row in rows {
                plan::cell::write_record(&mut w, &row.cells()).map_err(io)?;
            }
            w.flush().map_err(io)?;
        }
        StatusFormat::Table => {
            let header =
                ["HEALTH", "PROJECT", "TYPE", "STATUS", "LAST SUCCESS", "DIAGNOSIS", "URL"];
            let lines: Vec<[String; 7]> = rows
                .iter()
                .map(|r| {
                    [
                        r.health.to_owned(),
                        match r.mirror_id {
                            Some(id) => format!("{}#{id}", r.project_path),
                            None => r.project_path.clone(),
                        },
                        r.mirror_type.to_owned(),
                        r.update_status.clone(),
                        r.last_successful_update_at.clone(),
                        r.diagnosis.clone(),
                        r.url.clone(),
                    ]
                    .map(|c| for_terminal(&c))
                })
                .collect();
            let mut widths = header.map(str::len);
            for l in &lines {
                for (w, c) in widths.iter_mut().zip(l) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let print = |out: &mut std::io::StdoutLock<'_>, cells: &[String]| {
                let mut line = String::new();
                for (i, c) in cells.iter().enumerate() {
                    if i + 1 == cells.len() {
                        line.push_str(c);
                    } else {
                        line.push_str(&format!("{c:<w$}  ", w = widths[i]));
                    }
                }
                writeln!(out, "{}", line.trim_end())
            };
            print(&mut out, &header.map(String::from)).map_err(io)?;
            for l in &lines {
                print(&mut out, l).map_err(io)?;
            }
        }
    }
    Ok(())
}
