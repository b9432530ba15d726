//! `glmirror plan`: read every mirror in scope, diagnose it, decide the fix and write the
//! reviewable CSV plan. Makes no write request to GitLab.

use std::time::Instant;

use time::OffsetDateTime;

use crate::config::{Connection, ConnectionRequest, PlanRequest, Settings};
use crate::error::{AppError, ExitCode};
use crate::inventory::probe::{self as probing, RowProber};
use crate::inventory::walk::{self, StreamError};
use crate::inventory::{self, ReadContext};
use crate::output::{counts, progress_bar};
use crate::plan::{self, PlanContext, Summary};
use crate::probe::watch::WatchMode;

/// Run `glmirror plan`.
pub(crate) async fn run(
    settings: &Settings,
    conn: ConnectionRequest,
    req: PlanRequest,
) -> Result<ExitCode, AppError> {
    let summary = execute(settings, &req, conn.resolve()?).await?;
    // A plan with unreadable rows is complete but not whole: say so in the exit code too.
    Ok(if summary.unreadable() > 0 { ExitCode::RowsFailed } else { ExitCode::Success })
}

/// Plan with an already resolved connection (also used by `demo`). Returns the summary of
/// the written plan.
pub(crate) async fn execute(
    settings: &Settings,
    req: &PlanRequest,
    conn: Connection,
) -> Result<Summary, AppError> {
    let rules = req.rules.rules();
    let client = inventory::client(settings, conn)?;
    let started = Instant::now();
    let pre = inventory::preflight(&client, false).await?;
    let quiet = settings.quiet;
    let say = |line: String| {
        if !quiet {
            eprintln!("{}", crate::redact::for_terminal(&line));
        }
    };
    for w in pre.warnings.iter().chain(&req.rules.map_warnings) {
        say(format!("warning: {w}"));
    }
    if pre.silent_mode == Some(true) {
        say("warning: Silent Mode is on: mirrors do not update and `apply` will refuse to run"
            .into());
    }
    if !pre.is_admin {
        say(format!(
            "note: {} is not an administrator: only projects it maintains are planned",
            pre.user.username
        ));
    }
    for host in req.rules.credentials.hosts.iter().filter(|h| h.user.is_none()) {
        // GitLab stores the username apart from the password and shows it in the mirror
        // settings (EE `username_only_import_url`): a token sent as the username is visible
        // to the project's Maintainers.
        say(format!(
            "warning: the service token is sent as the username for {}: GitLab shows mirror \
             usernames to each project's Maintainers; GitHub also accepts the token as the \
             password with any --source-user",
            host.host
        ));
    }
    let creds = &req.rules.credentials;
    if req.probe.enabled {
        crate::config::require_tokens(creds)?;
    }
    // The token watch (only for tokens this run has), before any probe: a token its host
    // rejects is not probed at all.
    let http = probing::http_settings(settings, &req.probe)?;
    let tokens = probing::watch_tokens(&http, creds, &req.probe).await?;
    let prober = if req.probe.enabled {
        let p = RowProber::new(http, creds, &req.probe)?;
        p.know(&tokens);
        for host in &req.probe.skip_hosts {
            say(format!("note: {host} is not probed, nor its token watched, from this machine"));
        }
        Some(p)
    } else {
        None
    };
    let target_user =
        walk::resolve_target_user(&client, &pre, req.rules.mirror_user.as_deref()).await?;
    let ctx = PlanContext {
        rules,
        target_user,
        include_archived: req.scope.include_archived,
        silent_mode: pre.silent_mode == Some(true),
        now: OffsetDateTime::now_utc(),
    };
    let reads = ReadContext::skipping_forbidden();

    // Open the output first: a bad path fails before anything is read. Rows are streamed to
    // it, so memory does not grow with the size of the instance.
    let write_err = |e| AppError::io("cannot write", &req.out, e);
    let mut out = plan::AtomicOutput::create(&req.out).map_err(write_err)?;
    let mut writer = plan::PlanWriter::new(&mut out).map_err(write_err)?;
    let mut summary = Summary::new(&ctx.target_user.username);
    let progress = progress_bar(settings, "reading mirrors");
    let scanned = walk::stream_rows(
        &client,
        &req.scope,
        &pre,
        &ctx,
        &reads,
        settings.concurrency,
        prober.as_ref(),
        &progress,
        |row| {
            summary.add(&row);
            writer.write_row(&row)
        },
    )
    .await
    .map_err(|e| match e {
        StreamError::App(e) => e,
        StreamError::Write(e) => write_err(e),
    })?;
    progress.finish_and_clear();
    writer.finish().map_err(write_err)?;
    out.commit().map_err(write_err)?;

    let stats = client.stats();
    say(format!(
        "glmirror plan: {scanned} projects read, {} mirrors ({} pull, {} push)",
        summary.pull + summary.push,
        summary.pull,
        summary.push
    ));
    say(format!("  actions:   {}", summary.actions()));
    say(format!("  diagnoses: {}", counts(&summary.diagnoses)));
    say(format!("  fixes:     {}", counts(&summary.fixes)));
    // GitLab never shows which credentials a mirror has, so only the planned side is known.
    say(format!(
        "  on service credentials after apply: {} (of {} mirrors; GitLab does not show which \
         credentials a mirror uses now)",
        summary.service_after,
        summary.pull + summary.push
    ));
    say(format!(
        "  running as {}: {} before, {} after (of {} enabled pull mirrors{})",
        summary.target_user,
        summary.running_as_target_before,
        summary.running_as_target_after,
        summary.movable_pull,
        if req.scope.include_archived {
            ", archived projects included"
        } else {
            " of live projects"
        }
    ));
    if summary.unreadable() > 0 {
        say(format!(
            "  warning: {} mirrors could not be read (GitLab kept answering an error): they \
             are manual rows with diagnosis unreadable; plan those projects again later",
            summary.unreadable()
        ));
    }
    if reads.skipped() > 0 {
        say(format!(
            "  warning: {} mirror reads were refused (401/403): those mirrors are not in the \
             plan; use an administrator's token to plan every project",
            reads.skipped()
        ));
    }
    if summary.pull_updates > 0 {
        say(format!("  pull mirrors will run as: {}", ctx.target_user.username));
        if req.rules.mirror_user.is_none() && !pre.user.bot {
            say(format!(
                "  warning: {} looks like a person's account; mirrors (and the pipelines they \
                 trigger) stop when it is blocked. Use a service account's token, or \
                 --mirror-user",
                pre.user.username
            ));
        }
    }
    if prober.is_some() {
        say(format!(
            "  probes:    {} (from this machine, not from GitLab's network)",
            if summary.probes.is_empty() { "none".to_owned() } else { counts(&summary.probes) }
        ));
        if summary.kept_off > 0 {
            say(format!(
                "  warning: {} mirror(s) keep their current credentials: the service \
                 credentials cannot read or write them (see `reason` in the plan)",
                summary.kept_off
            ));
        }
        if summary.unproven > 0 {
            say(format!(
                "  {} mirror(s) unproven (no verdict: errors, rate limits, network): planned \
                 as usual; apply probes them again before writing",
                summary.unproven
            ));
        }
    }
    let mut watched = probing::verdicts(&tokens, &summary.service_by_host, WatchMode::Plan);
    watched.push(probing::gitlab_token_verdict(
        &pre,
        client.base_url().host_str().unwrap_or_default(),
        WatchMode::Plan,
    ));
    probing::say_verdicts(&watched, quiet, "  ");
    say(format!(
        "  requests:  {} (retries {}, rate-limited {}), elapsed {:.1}s",
        stats.requests,
        stats.retries,
        stats.rate_limited,
        started.elapsed().as_secs_f64()
    ));
    if req.out.as_os_str() != "-" {
        say(format!("  plan written to {}", req.out.display()));
    }
    Ok(summary)
}
