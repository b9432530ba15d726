//! `glmirror apply`: read and check the plan (edited `new_url`s listed and refused unless
//! accepted), check the files it writes, take the plan's run lock, read (and lock) the
//! journal, run the pre-flight, confirm with the user, open the journal, hand the `update`
//! rows to the executor (`crate::apply`), then write the report and the summary.
//!
//! The order matters: a second run of a plan fails on the lock before it confirms anything,
//! and a declined confirmation leaves no journal behind.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use crate::apply::edits::{self, UrlEdits};
use crate::apply::executor::{self, Exec, ExecSettings};
use crate::apply::interrupt::Interrupt;
use crate::apply::journal::Journal;
use crate::apply::tally::Tally;
use crate::apply::{LoadedPlan, checks, paths, probe_guard, run_lock};
use crate::config::{ApplyRequest, ConnectionRequest, Settings};
use crate::error::{AppError, ExitCode};
use crate::inventory;
use crate::output::{counts, progress_bar};
use crate::plan::{self, MirrorType, PlanRow, ReportRow};
use crate::redact::for_terminal;
use crate::rewrite::{Action, NewAuth};

/// Print lines on stderr, cleaned for the terminal (also with `--quiet`: they explain a
/// refusal or a confirmation).
fn tell(lines: &[String]) {
    for line in lines {
        eprintln!("{}", for_terminal(line));
    }
}

/// Refuse a plan with edited `new_url`s unless `--accept-edited-urls`; refuse a plan sealed
/// in glmirror 0.1's format (which cannot tell an edited `new_url`) unless that flag is given
/// or this run resumes a journal of exactly this plan (whose first run that older glmirror
/// already confirmed).
fn check_edits(
    plan: &LoadedPlan,
    edits: &UrlEdits,
    req: &ApplyRequest,
    resuming: bool,
) -> Result<(), AppError> {
    let file = crate::redact::path_excerpt(&plan.path);
    if let Some(first) = edits.edited.first()
        && !req.accept_edited_urls
    {
        tell(&edits.listing(&file));
        let n = edits.edited.len();
        return Err(AppError::usage_hint(
            format!(
                "{file}:{}: {n} {} an edited new_url (listed above): refusing to apply the plan \
                 without --accept-edited-urls",
                first.line,
                if n == 1 { "row has" } else { "rows have" }
            ),
            "check each edit (a column pasted one row off points mirrors at other projects' \
             repositories), then pass --accept-edited-urls, or fix new_url, or plan again",
        ));
    }
    if let Some(first) = edits.unsealed.first() {
        let note = format!(
            "warning: {file} was written by an earlier glmirror: its `observed` seal does not \
             cover new_url or the descriptive columns, so edits there cannot be told (plan \
             again for a fully sealed plan)"
        );
        tell(&[note]);
        if !req.accept_edited_urls && !resuming {
            return Err(AppError::usage_hint(
                format!(
                    "{file}:{first}: the plan's new_url column is not sealed, so apply cannot \
                     tell whether a person edited it"
                ),
                "run `glmirror plan` again (a new plan sees what was applied), or pass \
                 --accept-edited-urls to apply its new_url column as it stands",
            ));
        }
    }
    Ok(())
}

/// Run `glmirror apply` (also used by `demo`). The connection is resolved only once the plan
/// file has been validated.
pub(crate) async fn run(
    settings: &Settings,
    conn: ConnectionRequest,
    req: ApplyRequest,
) -> Result<ExitCode, AppError> {
    let creds = &req.credentials;
    let say = |line: String| {
        if !settings.quiet {
            eprintln!("{}", for_terminal(&line));
        }
    };

    // 1. The plan, as a whole, and the files this run writes: nothing is written yet.
    let plan = LoadedPlan::read(&req.plan)?;
    let rules = creds.rules(Vec::new(), false);
    checks::validate_rows(&plan.path, plan.lined(), &rules)?;
    let edits = edits::url_edits(&plan);
    let (journal_path, report_path) = (&req.journal, &req.report);
    paths::check(&plan.path, journal_path, report_path, req.dry_run)?;

    let updates: Vec<&PlanRow> = plan.rows.iter().filter(|r| r.action == Action::Update).collect();
    if updates.is_empty() {
        let report: Vec<ReportRow> =
            plan.rows.iter().map(|r| executor::not_applied(r, None)).collect();
        plan::write_report_file(report_path, &report)
            .map_err(|e| AppError::io("cannot write", report_path, e))?;
        say(format!("glmirror apply: no `update` rows in {}: nothing to do", plan.path.display()));
        return Ok(ExitCode::Success);
    }
    let needs_token = updates.iter().any(|r| r.new_auth == Some(NewAuth::Service));
    let mut token_note = None;
    if needs_token {
        match crate::config::require_tokens(creds) {
            Ok(()) => {}
            // A dry run sends no credentials: say what it could not check.
            Err(e) if req.dry_run => {
                token_note = Some(format!(
                    "note: dry run without the service token ({e}): the credentials were not \
                     checked against a token"
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }

    // 2. One run of these rows per instance: the lock comes before anything else talks to
    // GitLab.
    let conn = conn.resolve()?;
    let lock_key = run_lock::lock_key(&plan.rows, conn.base_url.as_str());
    let _run_lock = run_lock::acquire(&req.lock_dir, &lock_key, &plan.path, journal_path)?;
    // The journal: what earlier runs did (a journal of another plan with a row in flight is
    // refused). A real run locks an existing journal file now; a dry run only reads it.
    let prepared = Journal::prepare(journal_path, &plan.path, &plan.sha256, !req.dry_run)?;
    check_edits(&plan, &edits, &req, prepared.is_resume())?;

    // 3. Pre-flight.
    let client = inventory::client(settings, conn)?;
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

    // 4. Confirm.
    let preview = prepared.state();
    let pending: Vec<&PlanRow> =
        updates.iter().copied().filter(|r| !preview.should_skip(&r.key())).collect();
    // The token watch refuses before anything is asked or written; then the probe guard.
    let gitlab_host = client.base_url().host_str().unwrap_or_default().to_owned();
    let probe = probe_guard::prepare(settings, &req, &pre, &gitlab_host, &pending).await?;
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
    for line in edits.listing(&crate::redact::path_excerpt(&plan.path)) {
        summary.push('\n');
        summary.push_str(&line);
    }
    if let Some(other) = prepared.other_plan() {
        summary.push_str(&format!(
            "\n  journal {} belongs to another plan ({other}) whose rows all ended: {}",
            journal_path.display(),
            if req.dry_run {
                "a real run archives it and starts a new one"
            } else {
                "it will be archived next to itself and a new one started"
            }
        ));
    }
    if let Some(note) = &token_note {
        summary.push('\n');
        summary.push_str(note);
    }
    confirm(&req, &summary, todo)?;

    // 5. The journal, created and locked.
    let (journal, state) = if req.dry_run {
        // A dry run records nothing, so it can never make a later real run skip a row.
        (None, preview)
    } else {
        let (j, s, archived) = prepared.open()?;
        if let Some(to) = archived {
            tell(&[format!(
                "journal {} belonged to another plan whose rows all ended: archived it as {} \
                 and started a new one",
                journal_path.display(),
                to.display()
            )]);
        }
        if let Some(pid) = j.took_over_stale_lock() {
            say(format!(
                "warning: removed the lock file of an earlier glmirror apply (pid {pid}) that is \
                 gone"
            ));
        }
        (Some(j), s)
    };
    let todo: Vec<&PlanRow> =
        updates.iter().copied().filter(|r| !state.should_skip(&r.key())).collect();

    // 6. Write.
    let interrupt = Interrupt::install()
        .map_err(|e| AppError::fatal(format!("cannot install the Ctrl-C handler: {e}")))?;
    let exec_settings = ExecSettings {
        dry_run: req.dry_run,
        verify: req.verify,
        verify_timeout: req.verify_timeout,
    };
    let exec = Exec::new(client, pre, creds.clone(), journal, exec_settings, interrupt.clone())
        .knowing(&plan.rows, &state)
        .with_probe(probe);
    let exec = Arc::new(exec);
    let started = Instant::now();
    let progress = progress_bar(settings, "applying");
    let concurrency = usize::from(settings.concurrency);
    let results = executor::apply_rows(exec.clone(), &todo, &state, concurrency, &progress).await?;
    progress.finish_and_clear();

    let interrupted = interrupt.is_requested();
    let mut report = executor::report_rows(&plan.rows, results, &state);
    for r in &mut report {
        if let Some(note) = edits.report_note(&r.row) {
            r.outcome_detail.insert_str(0, &note);
        }
    }
    plan::write_report_file(report_path, &report)
        .map_err(|e| AppError::io("cannot write", report_path, e))?;

    let tally = Tally::of(&report);
    let stats = exec.client.stats();
    say(format!(
        "glmirror apply{}: {} rows: {}",
        if req.dry_run { " (dry run)" } else { "" },
        report.len(),
        tally.outcomes_line()
    ));
    if req.verify && !req.dry_run {
        say(format!("  {}", tally.verify_line()));
    }
    say(format!(
        "  requests: {} (retries {}, rate-limited {}), elapsed {:.1}s",
        stats.requests,
        stats.retries,
        stats.rate_limited,
        started.elapsed().as_secs_f64()
    ));
    if let Some(p) = &exec.probe {
        let found = p.counts();
        if !found.is_empty() {
            say(format!(
                "  probes: {} (from this machine, not from GitLab's network)",
                counts(&found)
            ));
        }
    }
    say(format!("  report written to {}", report_path.display()));
    if exec.journal.is_some() {
        say(format!("  journal: {}", journal_path.display()));
    }
    if interrupted {
        say("interrupted: rerun the same command to resume".into());
        return Ok(ExitCode::Interrupted);
    }
    Ok(tally.exit_code())
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
