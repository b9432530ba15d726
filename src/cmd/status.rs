//! `glmirror status`: a read-only health report of every mirror in scope, for people and
//! for schedulers. Reads the request, has the instance surveyed ([`survey`]) and prints the
//! report; the exit rule is [`HealthReport::exit_code`] (3 when an enabled mirror of a live
//! project is unhealthy, reads were refused, or the token watch finds a service token, or the
//! GitLab API token, invalid or within 7 days of expiry).

use std::io::Write;

use crate::cli::StatusFormat;
use crate::config::{Connection, ConnectionRequest, ProbeRequest, Scope, Settings, StatusRequest};
use crate::error::{AppError, ExitCode};
use crate::health::{HealthReport, STATUS_COLUMNS, StatusRow, junit, prometheus};
use crate::inventory;
use crate::inventory::probe as probing;
use crate::inventory::survey::{self, Survey};
use crate::plan;
use crate::redact::for_terminal;

/// Run `glmirror status`.
pub(crate) async fn run(
    settings: &Settings,
    conn: ConnectionRequest,
    req: StatusRequest,
) -> Result<ExitCode, AppError> {
    let conn = conn.resolve()?;
    let gitlab = conn.base_url.clone();
    let found = collect_with_details(settings, &req.scope, conn, req.details).await?;
    let http = probing::http_settings(settings, &ProbeRequest::default())?;
    let tokens =
        survey::watch_tokens(&http, &req.credentials, &found.rows, &found.pre, &gitlab).await?;
    probing::say_verdicts(&tokens.verdicts, settings.quiet, "  ");
    let (silent, not_read_again, unreadable) =
        (found.silent, found.not_read_again, found.unreadable());
    let report = found.report(tokens);
    write_report(&report, req.format, req.out.as_deref())?;
    if let Some(path) = &req.csv {
        write_report(&report, StatusFormat::Csv, Some(path))?;
    }
    if !settings.quiet {
        eprintln!(
            "glmirror status: {} mirrors, {} unhealthy{}",
            report.rows.len(),
            report.unhealthy(),
            if silent { " (Silent Mode is on: no mirror updates)" } else { "" }
        );
        if report.refused > 0 {
            eprintln!(
                "  warning: {} mirror reads were refused (401/403): the report is incomplete",
                report.refused
            );
        }
        if unreadable > 0 {
            eprintln!(
                "  warning: {unreadable} mirrors could not be read (GitLab kept answering an \
                 error): they are reported unhealthy, diagnosis unreadable"
            );
        }
        if not_read_again > 0 {
            eprintln!(
                "  {not_read_again} pull mirrors the project list shows finished were not read \
                 again (--details reads them for their timestamps)"
            );
        }
        for path in [req.out.as_ref(), req.csv.as_ref()].into_iter().flatten() {
            eprintln!("  written to {}", for_terminal(&path.display().to_string()));
        }
    }
    Ok(report.exit_code())
}

/// Read the health of every mirror in scope (every mirror's details: the demo compares
/// before and after).
pub(crate) async fn collect(
    settings: &Settings,
    scope: &Scope,
    conn: Connection,
) -> Result<Survey, AppError> {
    collect_with_details(settings, scope, conn, true).await
}

/// Pre-flight, then the survey with a progress bar.
async fn collect_with_details(
    settings: &Settings,
    scope: &Scope,
    conn: Connection,
    details: bool,
) -> Result<Survey, AppError> {
    let client = inventory::client(settings, conn)?;
    let pre = inventory::preflight(&client, false).await?;
    let progress = crate::output::progress_bar(settings, "reading mirrors");
    let found = survey::survey(&client, scope, pre, details, settings.concurrency, &progress).await;
    progress.finish_and_clear();
    found
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
