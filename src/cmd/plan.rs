//! `glmirror plan`: read every mirror in scope, diagnose it, decide the fix and write the
//! reviewable CSV plan. Makes no write request to GitLab.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;

use time::OffsetDateTime;

use crate::cli::{GlobalArgs, PlanArgs};
use crate::credentials::Credentials;
use crate::error::{AppError, ExitCode};
use crate::inventory::walk::{self, StreamError};
use crate::inventory::{self, ReadContext};
use crate::plan::{self, MirrorType, PlanContext, PlanRow};
use crate::rewrite::{self, Action};

/// Run `glmirror plan`.
pub async fn run(global: &GlobalArgs, args: PlanArgs) -> Result<ExitCode, AppError> {
    let creds = Credentials::from_args(&args.rules.credentials)?;
    let conn = super::connection(global)?;
    execute(global, &args, conn, &creds).await?;
    Ok(ExitCode::Success)
}

/// Plan with an already resolved connection and credentials (also used by `demo`).
/// Returns the summary of the written plan.
pub async fn execute(
    global: &GlobalArgs,
    args: &PlanArgs,
    conn: super::Connection,
    creds: &Credentials,
) -> Result<Summary, AppError> {
    let maps = parse_maps(&args.rules.maps)?;
    let rules = creds.rules(maps, args.rules.prefer_https);
    let client = inventory::client(global, conn)?;
    let started = Instant::now();
    let pre = inventory::preflight(&client, false).await?;
    let quiet = global.quiet;
    let say = |line: String| {
        if !quiet {
            eprintln!("{}", crate::output::sanitize_for_terminal(&line));
        }
    };
    for w in &pre.warnings {
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
    for host in creds.hosts.iter().filter(|h| h.user.is_none()) {
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
    let target_user =
        walk::resolve_target_user(&client, &pre, args.rules.mirror_user.as_deref()).await?;
    let ctx = PlanContext {
        rules,
        target_user,
        include_archived: args.scope.include_archived,
        silent_mode: pre.silent_mode == Some(true),
        now: OffsetDateTime::now_utc(),
    };
    let reads = ReadContext::skipping_forbidden();

    // Open the output first: a bad path fails before anything is read. Rows are streamed to
    // it, so memory does not grow with the size of the instance.
    let write_err = |e| AppError::io("cannot write", &args.out, e);
    let mut out = plan::AtomicOutput::create(&args.out).map_err(write_err)?;
    let mut writer = plan::PlanWriter::new(&mut out).map_err(write_err)?;
    let mut summary = Summary::default();
    let progress = progress_bar(global, "reading mirrors");
    let scanned = walk::stream_rows(
        &client,
        &args.scope,
        &pre,
        &ctx,
        &reads,
        global.concurrency,
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
    if reads.skipped() > 0 {
        say(format!(
            "  warning: {} mirror reads were refused (401/403): those mirrors are not in the \
             plan; use an administrator's token to plan every project",
            reads.skipped()
        ));
    }
    if summary.pull_updates > 0 {
        say(format!("  pull mirrors will run as: {}", ctx.target_user.username));
        if args.rules.mirror_user.is_none() && !pre.user.bot {
            say(format!(
                "  warning: {} looks like a person's account; mirrors (and the pipelines they \
                 trigger) stop when it is blocked. Use a service account's token, or \
                 --mirror-user",
                pre.user.username
            ));
        }
    }
    say(format!(
        "  requests:  {} (retries {}, rate-limited {}), elapsed {:.1}s",
        stats.requests,
        stats.retries,
        stats.rate_limited,
        started.elapsed().as_secs_f64()
    ));
    if args.out.as_os_str() != "-" {
        say(format!("  plan written to {}", args.out.display()));
    }
    Ok(summary)
}

/// Parse every `--map OLD=NEW`.
pub fn parse_maps(specs: &[String]) -> Result<Vec<rewrite::PrefixMap>, AppError> {
    specs
        .iter()
        .map(|s| rewrite::parse_map(s).map_err(|e| AppError::usage(format!("--map: {e}"))))
        .collect()
}

/// A progress bar on stderr, hidden unless stderr is a terminal and progress is wanted.
pub fn progress_bar(global: &GlobalArgs, message: &'static str) -> indicatif::ProgressBar {
    if global.no_progress || global.quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} projects ({elapsed})")
            .expect("static template is valid"),
    );
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Counts for the summary.
#[derive(Debug, Default)]
pub struct Summary {
    /// Pull mirror rows.
    pub pull: usize,
    /// Push mirror rows.
    pub push: usize,
    /// Pull rows with action update.
    pub pull_updates: usize,
    /// Rows per action.
    pub action_counts: BTreeMap<&'static str, usize>,
    /// Rows per diagnosis.
    pub diagnoses: BTreeMap<&'static str, usize>,
    /// Rows per fix.
    pub fixes: BTreeMap<&'static str, usize>,
}

impl Summary {
    /// Count one more row.
    pub fn add(&mut self, row: &PlanRow) {
        match row.mirror_type {
            MirrorType::Pull => self.pull += 1,
            MirrorType::Push => self.push += 1,
        }
        if row.mirror_type == MirrorType::Pull && row.action == Action::Update {
            self.pull_updates += 1;
        }
        *self.action_counts.entry(row.action.code()).or_default() += 1;
        if let Some(d) = row.diagnosis {
            *self.diagnoses.entry(d.code()).or_default() += 1;
        }
        for f in &row.fixes {
            *self.fixes.entry(f.code()).or_default() += 1;
        }
    }

    /// "update 3, skip 2, manual 1"
    pub fn actions(&self) -> String {
        ["update", "skip", "manual"]
            .iter()
            .map(|a| format!("{a} {}", self.action_counts.get(a).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// "a 2, b 1" or "none".
pub fn counts(map: &BTreeMap<&'static str, usize>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}
