//! `glmirror apply`: read the plan, run the checks and pre-flight, confirm with the user, open
//! the journal, hand the `update` rows to the executor (`crate::apply`), then write the report
//! and the summary.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use crate::apply::executor::{self, Exec, ExecSettings};
use crate::apply::interrupt::Interrupt;
use crate::apply::journal::Journal;
use crate::apply::{self, LoadedPlan, checks};
use crate::config::{ApplyRequest, ConnectionRequest, Settings};
use crate::error::{AppError, ExitCode};
use crate::inventory;
use crate::output::{counts, progress_bar};
use crate::plan::{self, MirrorType, Outcome, PlanRow, ReportRow};
use crate::redact::for_terminal;
use crate::rewrite::{Action, NewAuth};

/// Run `glmirror apply` (also used by `demo`). The connection is resolved only once the plan
/// file has been validated.
pub async fn run(
    settings: &Settings,
    conn: ConnectionRequest,
    req: ApplyRequest,
) -> Result<ExitCode, AppError> {
    let creds = &req.credentials;
    let plan = LoadedPlan::read(&req.plan)?;
    let rules = creds.rules(Vec::new(), false);
    checks::validate_rows(&plan.path, plan.lined(), &rules)?;
    let journal_path = &req.journal;
    let report_path = &req.report;

    let updates: Vec<&PlanRow> = plan.rows.iter().filter(|r| r.action == Action::Update).collect();
    let say = |line: String| {
        if !settings.quiet {
            eprintln!("{}", for_terminal(&line));
        }
    };
    if updates.is_empty() {
        let report: Vec<ReportRow> =
            plan.rows.iter().map(|r| executor::not_applied(r, None)).collect();
        plan::write_report_file(report_path, &report)
            .map_err(|e| AppError::io("cannot write", report_path, e))?;
        say(format!("glmirror apply: no `update` rows in {}: nothing to do", plan.path.display()));
        return Ok(ExitCode::Success);
    }
    if updates.iter().any(|r| r.new_auth == Some(NewAuth::Service)) {
        creds.require_tokens()?;
    }

    let client = inventory::client(settings, conn.resolve()?)?;
    let pre = inventory::preflight(&client, !req.dry_run).await?;
    if pre.silent_mode == Some(true) {
        return Err(AppError::fatal_hint(
            "Silent Mode is on: GitLab would accept the changes but run no mirror update",
            "turn Silent Mode off (Admin > Settings > General), then rerun apply",
        ));
    }
    for w in &pre.warnings {
        say(format!("warning: {w}"));
    }
    checks::check_instance(&client, &plan.path, plan.lined()).await?;
    checks::check_mirror_users(&plan.path, plan.lined(), &pre)?;

    // Read what earlier runs did (refusing a journal of another plan) and confirm before
    // anything is created: a declined run leaves no journal behind.
    let preview = apply::journal_preview(journal_path, &plan)?;
    let pending: Vec<&PlanRow> =
        updates.iter().copied().filter(|r| !preview.should_skip(&r.key())).collect();
    let (todo, already) = (pending.len(), updates.len() - pending.len());
    let pull_writes = pending.iter().filter(|r| r.mirror_type == MirrorType::Pull).count();
    let mut summary = format!(
        "{todo} mirror(s) to update on {} as {}{} ({already} already done by an earlier run, {} \
         other rows left alone)",
        client.base_url(),
        pre.user.username,
        if req.dry_run { " — dry run, nothing will be written" } else { "" },
        plan.rows.len() - todo - already,
    );
    if pull_writes > 0 {
        // GitLab starts a mirror update on every pull-mirror write.
        summary.push_str(&format!(
            "\n  {pull_writes} pull-mirror write(s): GitLab starts a mirror update on each, at \
             most {} at a time (--concurrency)",
            settings.concurrency
        ));
    }
    confirm(&req, &summary, todo)?;
    let (journal, state) = if req.dry_run {
        // A dry run records nothing, so it can never make a later real run skip a row.
        (None, preview)
    } else {
        let (j, s) = Journal::open(journal_path, &plan.path, &plan.sha256)?;
        if let Some(pid) = j.took_over_stale_lock() {
            say(format!(
                "warning: took over the lock of an earlier apply (pid {pid}) that is gone"
            ));
        }
        (Some(j), s)
    };
    let todo: Vec<&PlanRow> =
        updates.iter().copied().filter(|r| !state.should_skip(&r.key())).collect();

    let interrupt = Interrupt::install()
        .map_err(|e| AppError::fatal(format!("cannot install the Ctrl-C handler: {e}")))?;
    let exec_settings = ExecSettings {
        dry_run: req.dry_run,
        verify: req.verify,
        verify_timeout: req.verify_timeout,
    };
    let exec =
        Arc::new(Exec::new(client, pre, creds.clone(), journal, exec_settings, interrupt.clone()));
    let started = Instant::now();
    let progress = progress_bar(settings, "applying");
    let concurrency = usize::from(settings.concurrency);
    let results = executor::apply_rows(exec.clone(), &todo, &state, concurrency, &progress).await?;
    progress.finish_and_clear();

    let interrupted = interrupt.is_requested();
    let report = executor::report_rows(&plan.rows, results, &state);
    plan::write_report_file(report_path, &report)
        .map_err(|e| AppError::io("cannot write", report_path, e))?;

    let mut outcomes: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for r in &report {
        *outcomes.entry(r.outcome.code()).or_default() += 1;
    }
    let stats = exec.client.stats();
    say(format!(
        "glmirror apply{}: {} rows: {}",
        if req.dry_run { " (dry run)" } else { "" },
        report.len(),
        counts(&outcomes)
    ));
    say(format!(
        "  requests: {} (retries {}, rate-limited {}), elapsed {:.1}s",
        stats.requests,
        stats.retries,
        stats.rate_limited,
        started.elapsed().as_secs_f64()
    ));
    say(format!("  report written to {}", report_path.display()));
    if exec.journal.is_some() {
        say(format!("  journal: {}", journal_path.display()));
    }
    if interrupted {
        say("interrupted: rerun the same command to resume".into());
        return Ok(ExitCode::Interrupted);
    }
    let bad = report.iter().any(|r| matches!(r.outcome, Outcome::Failed | Outcome::Drifted));
    Ok(if bad { ExitCode::RowsFailed } else { ExitCode::Success })
}

/// Show what will happen and ask (terminal), or require `--yes`.
fn confirm(args: &ApplyRequest, summary: &str, todo: usize) -> Result<(), AppError> {
    let summary: Vec<String> = summary.lines().map(for_terminal).collect();
    let summary = summary.join("\n");
    if args.dry_run || args.yes || todo == 0 {
        eprintln!("{}", summary);
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(AppError::usage_hint(
            "refusing to change mirrors without confirmation: stdin is not a terminal",
            "review the plan, then pass --yes (or --dry-run to only see what would happen)",
        ));
    }
    eprint!("{}\nApply these changes? [y/N] ", summary);
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| AppError::io("cannot read", "<stdin>", e))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(AppError::usage("cancelled: nothing was changed"))
    }
}
