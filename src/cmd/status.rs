//! `glmirror status`: a read-only health report of every mirror in scope, for people and
//! for schedulers (exit 3 when an enabled mirror of a live project is unhealthy, or when the
//! token watch finds a service token, or the GitLab API token, invalid or within 7 days of
//! expiry).

use std::io::Write;

use futures::TryStreamExt;
use time::OffsetDateTime;

use crate::cli::StatusFormat;
use crate::config::{Connection, ConnectionRequest, Scope, Settings, StatusRequest};
use crate::error::{AppError, ExitCode};
use crate::health::{
    Health, HealthReport, STATUS_COLUMNS, StatusRow, TokenExpiry, junit, prometheus,
};
use crate::inventory::probe as probing;
use crate::inventory::{self, ReadContext, facts};
use crate::plan::{self, Diagnosis};
use crate::probe::watch::{Expiry, TokenState, WatchMode};
use crate::redact::for_terminal;

/// Run `glmirror status`.
pub(crate) async fn run(
    settings: &Settings,
    conn: ConnectionRequest,
    req: StatusRequest,
) -> Result<ExitCode, AppError> {
    let conn = conn.resolve()?;
    let gitlab_host = conn.base_url.host_str().unwrap_or_default().to_owned();
    let found = collect_with_preflight(settings, &req.scope, conn, req.details).await?;
    let (tokens_fail, tokens) =
        watch_tokens(settings, &req, &found.rows, &found.pre, &gitlab_host).await?;
    let unreadable =
        found.rows.iter().filter(|r| r.diagnosis == Some(Diagnosis::Unreadable)).count();
    let report = HealthReport {
        rows: found.rows,
        scrape_errors: found.refused + unreadable as u64,
        tokens,
        generated_at: OffsetDateTime::now_utc(),
    };
    write_report(&report, req.format, req.out.as_deref())?;
    if let Some(path) = &req.csv {
        write_report(&report, StatusFormat::Csv, Some(path))?;
    }
    let unhealthy = report.rows.iter().filter(|r| r.health == Health::Unhealthy).count();
    if !settings.quiet {
        eprintln!(
            "glmirror status: {} mirrors, {} unhealthy{}",
            report.rows.len(),
            unhealthy,
            if found.silent { " (Silent Mode is on: no mirror updates)" } else { "" }
        );
        if found.refused > 0 {
            eprintln!(
                "  warning: {} mirror reads were refused (401/403): the report is incomplete",
                found.refused
            );
        }
        if unreadable > 0 {
            eprintln!(
                "  warning: {unreadable} mirrors could not be read (GitLab kept answering an \
                 error): they are reported unhealthy, diagnosis unreadable"
            );
        }
        if found.not_read_again > 0 {
            eprintln!(
                "  {} pull mirrors the project list shows finished were not read again \
                 (--details reads them for their timestamps)",
                found.not_read_again
            );
        }
        for path in [req.out.as_ref(), req.csv.as_ref()].into_iter().flatten() {
            eprintln!("  written to {}", for_terminal(&path.display().to_string()));
        }
    }
    // An incomplete report must not pass for a healthy one on a schedule, nor a token that
    // is about to break every mirror on it.
    Ok(if unhealthy > 0 || found.refused > 0 || tokens_fail {
        ExitCode::RowsFailed
    } else {
        ExitCode::Success
    })
}

/// The token watch for `status`: every service token given (its mirrors counted by host)
/// and the GitLab API token. True when one is invalid, expired or within 7 days of expiry;
/// also each token's expiry, for the metrics.
async fn watch_tokens(
    settings: &Settings,
    req: &StatusRequest,
    rows: &[StatusRow],
    pre: &inventory::Preflight,
    gitlab_host: &str,
) -> Result<(bool, Vec<TokenExpiry>), AppError> {
    let probe = crate::config::ProbeRequest::default();
    let http = probing::http_settings(settings, &probe)?;
    let states = probing::watch_tokens(&http, &req.credentials, &probe).await?;
    let on_host = probing::service_rows_by_host(
        rows.iter().filter(|r| r.health != Health::Ignored).map(|r| r.url.as_str()),
    );
    let mut verdicts = probing::verdicts(&states, &on_host, WatchMode::Status);
    verdicts.push(probing::gitlab_token_verdict(pre, gitlab_host, WatchMode::Status));
    let gitlab = probing::gitlab_token_state(
        gitlab_host,
        pre.token_expires_at.as_deref(),
        pre.token_described,
    );
    let expiry = |s: &TokenState| match s.expiry {
        Expiry::At(at) => Some(at),
        Expiry::Never | Expiry::Unknown => None,
    };
    let mut tokens: Vec<TokenExpiry> = states
        .iter()
        .map(|s| TokenExpiry { host: s.host.clone(), token: "service", expires_at: expiry(s) })
        .collect();
    tokens.push(TokenExpiry {
        host: gitlab.host.clone(),
        token: "gitlab-api",
        expires_at: expiry(&gitlab),
    });
    Ok((probing::say_verdicts(&verdicts, settings.quiet, "  "), tokens))
}

/// What reading the instance for `status` found.
pub(crate) struct Collected {
    /// One row per mirror, sorted like a plan.
    pub(crate) rows: Vec<StatusRow>,
    /// Silent Mode is on.
    pub(crate) silent: bool,
    /// Mirror reads refused (401/403).
    pub(crate) refused: u64,
    /// Pull mirrors taken from the project list without a read of their own.
    pub(crate) not_read_again: u64,
    /// What pre-flight found.
    pub(crate) pre: inventory::Preflight,
}

/// Read the health of every mirror in scope (every mirror's details: the demo compares
/// before and after).
pub(crate) async fn collect(
    settings: &Settings,
    scope: &Scope,
    conn: Connection,
) -> Result<Collected, AppError> {
    collect_with_preflight(settings, scope, conn, true).await
}

/// [`collect`]; without `details`, pull mirrors the project list shows finished are not read
/// again.
async fn collect_with_preflight(
    settings: &Settings,
    scope: &Scope,
    conn: Connection,
    details: bool,
) -> Result<Collected, AppError> {
    let client = inventory::client(settings, conn)?;
    let pre = inventory::preflight(&client, false).await?;
    let now = OffsetDateTime::now_utc();
    let silent = pre.silent_mode == Some(true);
    let users = ReadContext::skipping_forbidden();
    let users = if details { users } else { users.trusting_the_list() };
    let progress = crate::output::progress_bar(settings, "reading mirrors");
    let mut reads = inventory::projects(&client, scope, &pre)
        .map_ok(|p| inventory::read_project(&client, &users, p, scope.mirrors))
        .try_buffer_unordered(usize::from(settings.concurrency));
    let mut rows = Vec::new();
    while let Some(project_reads) = reads.try_next().await? {
        progress.inc(1);
        rows.extend(project_reads.iter().map(|r| StatusRow::of(&facts::facts_of(r), now, silent)));
    }
    progress.finish_and_clear();
    rows.sort_by_key(|r| (r.project_id, r.mirror_type, r.mirror_id));
    Ok(Collected {
        rows,
        silent,
        refused: users.skipped(),
        not_read_again: users.not_read_again(),
        pre,
    })
}

/// Write the report in `format` to `out` (atomically) or stdout.
fn write_report(
    report: &HealthReport,
    format: StatusFormat,
    out: Option<&std::path::Path>,
) -> Result<(), AppError> {
    let Some(path) = out else {
        let stdout = std::io::stdout();
        return render(report, format, &mut stdout.lock())
            .map_err(|e| AppError::io("cannot write", "<stdout>", e));
    };
    let io = |e| AppError::io("cannot write", path, e);
    let mut file = plan::AtomicOutput::create(path).map_err(io)?;
    if format == StatusFormat::Prometheus {
        // node_exporter usually runs as another user: metrics hold no secret.
        file.readable_by_all().map_err(io)?;
    }
    render(report, format, &mut file).map_err(io)?;
    file.commit().map_err(io)
}

/// Render the report in `format`.
fn render(report: &HealthReport, format: StatusFormat, out: &mut dyn Write) -> std::io::Result<()> {
    let rows = &report.rows;
    match format {
        StatusFormat::Junit => out.write_all(junit::render(report).as_bytes()),
        StatusFormat::Prometheus => out.write_all(prometheus::render(report).as_bytes()),
        StatusFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)
        }
        StatusFormat::Csv => {
            // The one cell writer of every CSV: formula guard, no control characters.
            let mut w = plan::cell::csv_writer(out);
            w.write_record(STATUS_COLUMNS)?;
            for row in rows {
                plan::cell::write_record(&mut w, &row.cells())?;
            }
            w.flush()
        }
        StatusFormat::Table => write_table(rows, out),
    }
}

/// The aligned table for a terminal.
fn write_table(rows: &[StatusRow], out: &mut dyn Write) -> std::io::Result<()> {
    let header = ["HEALTH", "PROJECT", "TYPE", "STATUS", "LAST SUCCESS", "DIAGNOSIS", "URL"];
    let lines: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let cells = r.cells();
            [
                r.health.code().to_owned(),
                match r.mirror_id {
                    Some(id) => format!("{}#{id}", r.project_path),
                    None => r.project_path.clone(),
                },
                r.mirror_type.code().to_owned(),
                r.update_status.clone(),
                cells[8].clone(),
                cells[11].clone(),
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
    let mut print = |cells: &[String]| {
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
    print(&header.map(String::from))?;
    for l in &lines {
        print(l)?;
    }
    Ok(())
}
