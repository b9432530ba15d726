//! `glmirror plan`: read every mirror in scope, diagnose it, decide the fix and write the
//! reviewable CSV plan. Makes no write request to GitLab.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;

use futures::TryStreamExt;
use time::OffsetDateTime;

use crate::cli::{GlobalArgs, PlanArgs, ScopeArgs};
use crate::cmd::inventory::{self, MirrorDetail, MirrorFacts, MirrorRead, Preflight, ReadContext};
use crate::credentials::Credentials;
use crate::error::{AppError, ExitCode};
use crate::gitlab::{GitLabClient, GitLabError, Project, User};
use crate::plan::{self, CurrentAuth, MirrorType, MirrorUserState, PlanRow};
use crate::rewrite::{self, Action, Direction, Fix, MirrorInput, NewAuth, Rules};

/// Everything row decisions depend on, fixed for one run.
pub struct PlanContext {
    /// URL rules.
    pub rules: Rules,
    /// Who pull mirrors will run as after apply.
    pub target_user: TargetUser,
    /// Plan archived projects too.
    pub include_archived: bool,
    /// Silent Mode seen at planning.
    pub silent_mode: bool,
    /// Planning time (for `stuck`).
    pub now: OffsetDateTime,
    /// User lookups and projects skipped for lack of permission.
    pub reads: ReadContext,
}

/// The mirror user pull mirrors get on apply, and whether apply can make it so.
#[derive(Debug, Clone)]
pub struct TargetUser {
    /// Username.
    pub username: String,
    /// Why apply cannot make this user the mirror user (then rows are `manual`).
    pub blocked_reason: Option<String>,
    /// Whether to check, through `Sudo`, that this user can see each project.
    pub check_access: bool,
}

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
            eprintln!("{}", crate::redact::sanitize_for_terminal(&line));
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
    let target_user = target_user(&client, &pre, args.rules.mirror_user.as_deref()).await?;
    let ctx = PlanContext {
        rules,
        target_user,
        include_archived: args.scope.include_archived,
        silent_mode: pre.silent_mode == Some(true),
        now: OffsetDateTime::now_utc(),
        reads: ReadContext::skipping_forbidden(),
    };

    // Open the output first: a bad path fails before anything is read. Rows are streamed to
    // it, so memory does not grow with the size of the instance.
    let write_err = |e| AppError::io("cannot write", &args.out, e);
    let mut out = plan::AtomicOutput::create(&args.out).map_err(write_err)?;
    let mut writer = plan::PlanWriter::new(&mut out).map_err(write_err)?;
    let mut summary = Summary::default();
    let progress = progress_bar(global, "reading mirrors");
    let scanned =
        stream_rows(&client, &args.scope, &pre, &ctx, global.concurrency, &progress, |row| {
            summary.add(&row);
            writer.write_row(&row)
        })
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
    if ctx.reads.skipped() > 0 {
        say(format!(
            "  warning: {} mirror reads were refused (401/403): those mirrors are not in the \
             plan; use an administrator's token to plan every project",
            ctx.reads.skipped()
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

/// Why streaming rows stopped.
pub enum StreamError {
    /// Reading GitLab failed.
    App(AppError),
    /// The sink failed (writing the plan).
    Write(std::io::Error),
}

impl From<GitLabError> for StreamError {
    fn from(e: GitLabError) -> Self {
        StreamError::App(e.into())
    }
}

/// Read all projects in scope, build their rows and hand them to `sink` in plan order.
/// Returns how many projects were read.
///
/// For the whole instance, projects arrive in id order (keyset pagination), so rows are
/// passed on as soon as their project is read, in order, and nothing accumulates. For
/// `--group`/`--project` scopes the rows are sorted first (such scopes are small).
pub async fn stream_rows(
    client: &GitLabClient,
    scope: &ScopeArgs,
    pre: &Preflight,
    ctx: &PlanContext,
    concurrency: u16,
    progress: &indicatif::ProgressBar,
    mut sink: impl FnMut(PlanRow) -> std::io::Result<()>,
) -> Result<u64, StreamError> {
    // The mirror user must be able to see the project (GitLab uses its permissions): when it
    // is not the caller, ask GitLab as that user.
    let sudo = ctx.target_user.check_access.then(|| client.with_sudo(&ctx.target_user.username));
    let sudo = sudo.as_ref();
    // Requests in flight are limited by permits, not by the stream's buffer: the ordered
    // buffer below may hold finished projects waiting for a slow one ahead of them (head-of-
    // line blocking) without leaving request slots idle.
    let permits = &tokio::sync::Semaphore::new(usize::from(concurrency));
    let users = &ctx.reads;
    let read = |p: Project| async move {
        let _permit = permits.acquire().await.expect("the semaphore is never closed");
        let id = p.id;
        let reads = inventory::read_project(client, users, p, scope.mirrors).await?;
        let has_pull = reads.iter().any(|r| matches!(r.mirror, MirrorDetail::Pull { .. }));
        let access = match sudo {
            Some(sudo) if has_pull => match sudo.project(&id.to_string()).await {
                Ok(_) => true,
                Err(e) if e.is_not_found() || e.status() == Some(403) => false,
                Err(e) => return Err(e),
            },
            _ => true,
        };
        let mut rows: Vec<PlanRow> = reads.iter().map(|r| build_row(r, ctx, access)).collect();
        plan::sort_rows(&mut rows);
        Ok::<_, GitLabError>((id, rows))
    };
    let whole_instance = scope.groups.is_empty() && scope.projects.is_empty();
    let projects = inventory::projects(client, scope, pre).map_ok(read);
    let mut scanned = 0u64;
    if whole_instance {
        let mut ordered = projects.try_buffered(usize::from(concurrency) * 8);
        let mut last_id = 0;
        while let Some((id, rows)) = ordered.try_next().await? {
            if id < last_id {
                return Err(StreamError::App(AppError::fatal(format!(
                    "GitLab listed project {id} after {last_id}: keyset pagination out of order"
                ))));
            }
            last_id = id;
            scanned += 1;
            progress.inc(1);
            rows.into_iter().try_for_each(&mut sink).map_err(StreamError::Write)?;
        }
    } else {
        let mut unordered = projects.try_buffer_unordered(usize::from(concurrency));
        let mut all = Vec::new();
        while let Some((_, rows)) = unordered.try_next().await? {
            scanned += 1;
            progress.inc(1);
            all.extend(rows);
        }
        plan::sort_rows(&mut all);
        all.into_iter().try_for_each(&mut sink).map_err(StreamError::Write)?;
    }
    Ok(scanned)
}

/// Decide who pull mirrors will run as, and whether apply can arrange it.
async fn target_user(
    client: &GitLabClient,
    pre: &Preflight,
    wanted: Option<&str>,
) -> Result<TargetUser, AppError> {
    let Some(wanted) = wanted else {
        return Ok(TargetUser {
            username: pre.user.username.clone(),
            blocked_reason: None,
            check_access: false,
        });
    };
    if wanted == pre.user.username {
        return Ok(TargetUser {
            username: wanted.to_owned(),
            blocked_reason: None,
            check_access: false,
        });
    }
    let user: Option<User> = client.user_by_username(wanted).await?;
    let Some(user) = user else {
        return Err(AppError::usage(format!("--mirror-user {wanted}: no such GitLab user")));
    };
    if user.state.as_deref().is_some_and(|s| s != "active") {
        return Err(AppError::usage(format!(
            "--mirror-user {wanted}: the account is {}, mirrors would stop",
            user.state.as_deref().unwrap_or("inactive")
        )));
    }
    // GITLAB-FACTS §2.2/§2.4: the caller always becomes the mirror user. Another user needs
    // `Sudo` (admin token with the sudo scope) on the new API, or an admin's mirror_user_id
    // on the old one.
    let blocked_reason = if !pre.is_admin {
        Some(format!(
            "only an administrator's token can make {wanted} the mirror user; run apply with \
             {wanted}'s own token instead"
        ))
    } else if pre.version.supports_pull_mirror_api() && !pre.has_scope("sudo") {
        Some(format!("making {wanted} the mirror user needs an admin token with the `sudo` scope"))
    } else {
        None
    };
    let check_access = blocked_reason.is_none() && pre.has_scope("sudo");
    Ok(TargetUser { username: user.username, blocked_reason, check_access })
}

/// Build one plan row from a mirror read. Pure apart from the context.
/// `target_can_access`: whether the future mirror user can see the project.
pub fn build_row(read: &MirrorRead, ctx: &PlanContext, target_can_access: bool) -> PlanRow {
    let project = &read.project;
    let (mirror_type, mirror_id) = match &read.mirror {
        MirrorDetail::Push(m) => (MirrorType::Push, Some(m.id)),
        _ => (MirrorType::Pull, None),
    };
    let facts = MirrorFacts::of(read);
    let current_auth = CurrentAuth::from_masked_url(&facts.url);
    let last_error =
        facts.last_error.as_deref().map(plan::normalize_last_error).unwrap_or_default();
    let diagnosis = facts.diagnose(mirror_type, ctx.now, ctx.silent_mode);
    let mut row = PlanRow {
        project_id: project.id,
        project_path: project.path_with_namespace.clone(),
        web_url: project.web_url.clone(),
        mirror_type,
        mirror_id,
        // GitLab masks what it can parse (kept as shown: `:*****@` tells of a missing user);
        // a malformed URL it stored verbatim is masked here.
        current_url: if facts.url.contains(crate::redact::MASK) {
            facts.url.clone()
        } else {
            rewrite::mask_url(&facts.url)
        },
        current_auth,
        current_mirror_user: facts.user_name.clone(),
        update_status: facts.update_status.clone(),
        last_error,
        diagnosis,
        action: Action::Skip,
        new_url: String::new(),
        new_user: String::new(),
        new_auth: None,
        new_mirror_user: String::new(),
        fixes: Vec::new(),
        reason: String::new(),
        observed: String::new(),
    };
    decide(&mut row, read, &facts, ctx, target_can_access);
    row.observed = plan::observed_cell(plan::SealKey::of(&row), row.action, &facts.observed());
    row
}

/// Fill action, new_* columns, fixes and reason.
fn decide(
    row: &mut PlanRow,
    read: &MirrorRead,
    facts: &MirrorFacts,
    ctx: &PlanContext,
    target_can_access: bool,
) {
    let skip = |row: &mut PlanRow, reason: String| {
        row.action = Action::Skip;
        row.reason = reason;
    };
    let manual = |row: &mut PlanRow, reason: String| {
        row.action = Action::Manual;
        row.reason = reason;
    };
    if read.project.archived && !ctx.include_archived {
        return skip(
            row,
            "Archived project: left alone (use --include-archived to plan it).".into(),
        );
    }
    if matches!(read.mirror, MirrorDetail::PullDisabled) {
        return skip(
            row,
            "Pull mirroring is off for this project (or it was only imported once); enable it \
             in Settings > Repository first if it should mirror."
                .into(),
        );
    }
    if !facts.enabled {
        return skip(
            row,
            "Push mirror is disabled; enable it in GitLab first if it should run.".into(),
        );
    }
    if let Some(d) = row.diagnosis.filter(|d| !d.auto_fixable()) {
        return manual(row, d.advice().to_owned());
    }
    let direction = match row.mirror_type {
        MirrorType::Pull => Direction::Pull,
        MirrorType::Push => Direction::Push,
    };
    let rw = rewrite::rewrite(
        &MirrorInput { url: &facts.url, direction, last_error: facts.last_error.as_deref() },
        &ctx.rules,
    );
    match rw.action {
        Action::Update => {}
        Action::Skip => {
            let mut reason = rw.reason;
            if let Some(d) = row.diagnosis {
                // Nothing glmirror may change in the URL, yet the mirror is failing.
                let why = reason.strip_prefix("Nothing to change: ").unwrap_or(&reason);
                return manual(row, format!("{} (Not fixed automatically: {why})", d.advice()));
            }
            if facts.user_state == MirrorUserState::Blocked
                || facts.user_state == MirrorUserState::Deleted
            {
                reason = format!(
                    "{reason} The mirror user is gone: re-save the mirror as an active user."
                );
                return manual(row, reason);
            }
            return skip(row, reason);
        }
        Action::Manual => return manual(row, rw.reason),
    }
    if row.mirror_type == MirrorType::Pull
        && let Some(why) = &ctx.target_user.blocked_reason
    {
        return manual(row, format!("{} ({})", rw.reason, why));
    }
    if row.mirror_type == MirrorType::Pull && !target_can_access {
        return manual(
            row,
            format!(
                "{} cannot see this project, so it cannot be its mirror user: add it as a \
                 Maintainer (or plan without --mirror-user). {}",
                ctx.target_user.username, rw.reason
            ),
        );
    }
    // GITLAB-FACTS §3: a push mirror is replaced, and a replacement with SSH key
    // authentication gets a new key pair that must be installed on the remote first.
    let new_url = rw.new_url.as_deref().unwrap_or_default();
    if row.mirror_type == MirrorType::Push
        && facts.flags.auth_method.as_deref() == Some("ssh_public_key")
        && !new_url.starts_with("https://")
    {
        return manual(
            row,
            format!(
                "{} Replacing an SSH push mirror creates a new key pair, which the remote must \
                 trust before it can push: change it in the UI and install the new public key.",
                rw.reason
            ),
        );
    }
    row.action = Action::Update;
    row.new_url = rw.new_url.unwrap_or_default();
    row.new_auth = rw.new_auth;
    row.new_user = if rw.new_auth == Some(NewAuth::Service) {
        rw.new_user.unwrap_or_default()
    } else {
        String::new()
    };
    row.fixes = rw.fixes;
    row.reason = rw.reason;
    if row.mirror_type == MirrorType::Pull {
        row.new_mirror_user = ctx.target_user.username.clone();
        if row.new_mirror_user != row.current_mirror_user {
            row.fixes.push(Fix::MirrorUser);
        }
    }
    row.fixes.sort();
    row.fixes.dedup();
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
