//! `glmirror apply`: validate the reviewed plan as a whole, pre-flight, then apply its
//! `update` rows concurrently — re-reading each mirror right before writing (drift check),
//! journaling intent and outcome so an interrupted run resumes without repeating work — and
//! write the report.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::apply::interrupt::Interrupt;
use crate::apply::journal::{
    self, Intent, Journal, JournalError, JournalState, OutcomeEntry, PushRepair,
    RowKey as JournalKey, RowState, StepKind, WriteStep,
};
use crate::cli::{ApplyArgs, GlobalArgs, MirrorSelection};
use crate::cmd::inventory::MirrorFacts;
use crate::cmd::inventory::{self, MirrorDetail, Preflight, ReadContext};
use crate::credentials::Credentials;
use crate::error::{AppError, ExitCode};
use crate::gitlab::{
    GitLabClient, GitLabError, ImportUrlUpdate, PullMirrorUpdate, RemoteMirror, RemoteMirrorCreate,
};
use crate::plan::MirrorFlags;
use crate::plan::{self, MirrorType, Outcome, PlanRow, ReportRow};
use crate::redact::{mask_userinfo, sanitize_for_terminal};
use crate::rewrite::{self, Action, Direction, NewAuth, Rules};

/// The `new_user` value meaning "the token itself is the username".
const TOKEN_AS_USER: &str = "<token>";

/// How often a write whose answer was lost is sent again, after a re-read showed it did not
/// land.
const MAX_RESENDS: u32 = 2;

/// Run `glmirror apply`.
pub async fn run(global: &GlobalArgs, args: ApplyArgs) -> Result<ExitCode, AppError> {
    let creds = Credentials::from_args(&args.credentials)?;
    execute(global, &args, || super::connection(global), &creds).await
}

/// Apply with resolved credentials; the connection is resolved only once the plan file has
/// been validated (also used by `demo`).
pub async fn execute(
    global: &GlobalArgs,
    args: &ApplyArgs,
    connection: impl FnOnce() -> Result<super::Connection, AppError>,
    creds: &Credentials,
) -> Result<ExitCode, AppError> {
    let plan_path = args.plan.clone();
    // Hash exactly the bytes that are parsed, so the plan cannot change in between.
    let bytes =
        std::fs::read(&plan_path).map_err(|e| AppError::io("cannot read", &plan_path, e))?;
    let sha = journal::sha256_hex(&bytes);
    // Each row with its line in the file, for messages about it.
    let (lines, rows): (Vec<usize>, Vec<PlanRow>) =
        plan::parse_plan_lines(&bytes, &plan_path.display().to_string())?.into_iter().unzip();
    drop(bytes);
    let lined = Lined { lines: &lines, rows: &rows };
    let rules = creds.rules(Vec::new(), false);
    validate_rows(&plan_path, lined, &rules)?;
    let journal_path = args.journal.clone().unwrap_or_else(|| plan_path.with_extension("journal"));
    let report_path = args.report.clone().unwrap_or_else(|| plan_path.with_extension("report.csv"));

    let updates: Vec<&PlanRow> = rows.iter().filter(|r| r.action == Action::Update).collect();
    let say = |line: String| {
        if !global.quiet {
            eprintln!("{}", sanitize_for_terminal(&line));
        }
    };
    if updates.is_empty() {
        let report: Vec<ReportRow> = rows.iter().map(|r| not_applied(r, None)).collect();
        plan::write_report_file(&report_path, &report)
            .map_err(|e| AppError::io("cannot write", &report_path, e))?;
        say(format!("glmirror apply: no `update` rows in {}: nothing to do", plan_path.display()));
        return Ok(ExitCode::Success);
    }
    if updates.iter().any(|r| r.new_auth == Some(NewAuth::Service)) {
        creds.require_tokens()?;
    }

    let conn = connection()?;
    let client = inventory::client(global, conn)?;
    let pre = inventory::preflight(&client, !args.dry_run).await?;
    if pre.silent_mode == Some(true) {
        return Err(AppError::fatal_hint(
            "Silent Mode is on: GitLab would accept the changes but run no mirror update",
            "turn Silent Mode off (Admin > Settings > General), then rerun apply",
        ));
    }
    for w in &pre.warnings {
        say(format!("warning: {w}"));
    }
    check_instance(&client, &plan_path, lined).await?;
    check_mirror_users(&plan_path, lined, &pre)?;

    // Read what earlier runs did (refusing a journal of another plan) and confirm before
    // anything is created: a declined run leaves no journal behind.
    let preview = dry_run_state(&journal_path, &plan_path, &sha)?;
    let todo_count = updates.iter().filter(|r| !preview.should_skip(&journal_key(r))).count();
    confirm(args, &pre, &client, todo_count, updates.len() - todo_count, rows.len())?;
    let (journal, state) = if args.dry_run {
        // A dry run records nothing, so it can never make a later real run skip a row.
        (None, preview)
    } else {
        let (j, s) = Journal::open(&journal_path, &plan_path, &sha)?;
        if let Some(pid) = j.took_over_stale_lock() {
            say(format!(
                "warning: took over the lock of an earlier apply (pid {pid}) that is gone"
            ));
        }
        (Some(j), s)
    };
    let todo: Vec<&PlanRow> =
        updates.iter().copied().filter(|r| !state.should_skip(&journal_key(r))).collect();

    let interrupt = Interrupt::install()
        .map_err(|e| AppError::fatal(format!("cannot install the Ctrl-C handler: {e}")))?;
    let exec = Arc::new(Exec {
        client,
        pre,
        creds: creds.clone(),
        journal,
        dry_run: args.dry_run,
        verify: args.verify,
        verify_timeout: Duration::from_secs(args.verify_timeout),
        users: ReadContext::default(),
        interrupt: interrupt.clone(),
        claimed: Default::default(),
    });
    let started = Instant::now();
    let progress = super::plan::progress_bar(global, "applying");
    let mut results: HashMap<JournalKey, RowResult> = HashMap::new();
    let mut stream = futures::stream::iter(todo.iter().map(|row| {
        let exec = exec.clone();
        let key = journal_key(row);
        let prior = Prior {
            in_flight: matches!(state.row(&key), Some(RowState::InFlight { .. })),
            attempted: state.attempted(&key),
            repair: state.push_repair(&key),
        };
        let row = (*row).clone();
        async move { exec.apply_row(&row, prior).await }
    }))
    .buffer_unordered(usize::from(global.concurrency));
    while let Some(result) = stream.next().await {
        progress.inc(1);
        let result = result?;
        results.insert(result.key.clone(), result);
    }
    progress.finish_and_clear();

    let interrupted = interrupt.is_requested();
    let report: Vec<ReportRow> = rows
        .iter()
        .map(|row| {
            let key = journal_key(row);
            match results.remove(&key) {
                Some(r) => ReportRow {
                    row: row.clone(),
                    outcome: r.outcome,
                    outcome_detail: r.detail,
                    verified_status: r.verified,
                    finished_at: r.finished_at,
                },
                None => not_applied(row, state.row(&key)),
            }
        })
        .collect();
    plan::write_report_file(&report_path, &report)
        .map_err(|e| AppError::io("cannot write", &report_path, e))?;

    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for r in &report {
        *counts.entry(r.outcome.code()).or_default() += 1;
    }
    let stats = exec.client.stats();
    say(format!(
        "glmirror apply{}: {} rows: {}",
        if args.dry_run { " (dry run)" } else { "" },
        report.len(),
        super::plan::counts(&counts)
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

/// The plan's rows with the file line of each, for messages.
#[derive(Clone, Copy)]
struct Lined<'a> {
    lines: &'a [usize],
    rows: &'a [PlanRow],
}

impl<'a> Lined<'a> {
    fn iter(self) -> impl Iterator<Item = (usize, &'a PlanRow)> {
        self.lines.iter().copied().zip(self.rows)
    }
}

/// What an existing journal says, read without writing or locking it (a dry run never writes
/// one; a real run reads it once before confirming).
fn dry_run_state(
    journal_path: &Path,
    plan_path: &Path,
    sha: &str,
) -> Result<JournalState, AppError> {
    if !journal_path.exists() {
        return Ok(JournalState::empty());
    }
    let state = journal::load(journal_path)?;
    if let Some(header) = state.header()
        && header.plan_sha256 != sha
    {
        return Err(JournalError::OtherPlan {
            journal: journal_path.to_owned(),
            plan_path: plan_path.display().to_string(),
            journal_plan_sha256: header.plan_sha256.clone(),
            plan_sha256: sha.to_owned(),
        }
        .into());
    }
    Ok(state)
}

/// What earlier runs recorded about a row.
#[derive(Debug, Clone, Copy)]
struct Prior {
    /// An intent without an outcome: the previous run died while writing this row.
    in_flight: bool,
    /// An earlier run wrote or tried to write this row since it last finished for good
    /// (`in_flight`, or it ended `failed` after a write that may have landed).
    attempted: bool,
    /// For push rows: what an earlier attempt already did.
    repair: Option<PushRepair>,
}

/// Checks that need the credentials given to `apply` (the file itself was checked by
/// `read_plan`): every `service` row must send the token to a host that is a source host *now*
/// with the user configured for it, and an edited `new_url` must pass the rules again.
fn validate_rows(path: &Path, rows: Lined<'_>, rules: &Rules) -> Result<(), AppError> {
    for (line, row) in rows.iter().filter(|(_, r)| r.action == Action::Update) {
        let at = |message: String, hint: Option<String>| AppError::Usage {
            message: format!("{}:{line}: {message}", path.display()),
            hint,
        };
        let direction = match row.mirror_type {
            MirrorType::Pull => Direction::Pull,
            MirrorType::Push => Direction::Push,
        };
        if row.new_auth == Some(NewAuth::Service) {
            // SPEC §3: service credentials only ever travel over https.
            if !is_https(&row.new_url) {
                return Err(at(
                    format!(
                        "new_url {} is not https: the service token is only sent over https",
                        sanitize_for_terminal(&mask_userinfo(&row.new_url))
                    ),
                    None,
                ));
            }
            let Some(host) = rewrite::source_host_for(&row.new_url, rules) else {
                return Err(at(
                    format!(
                        "new_url {} is not on a --source-host given to apply: the service token \
                         would go to another host",
                        sanitize_for_terminal(&mask_userinfo(&row.new_url))
                    ),
                    Some("pass the same --source-host/--credentials options as for plan".into()),
                ));
            };
            let configured = host.user.as_deref().unwrap_or(TOKEN_AS_USER);
            if row.new_user != configured {
                return Err(at(
                    format!(
                        "new_user {:?} is not the user configured for {} ({configured:?})",
                        sanitize_for_terminal(&row.new_user),
                        host.host
                    ),
                    None,
                ));
            }
        }
        if let Err(reason) = rewrite::validate_new_url(&row.new_url, direction, rules) {
            return Err(at(format!("new_url does not pass the rules: {reason}"), None));
        }
    }
    Ok(())
}

/// The plan must come from this instance: compare the `web_url` base of its rows with what
/// GitLab reports now for one of its projects.
async fn check_instance(
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
                    sanitize_for_terminal(&row.project_path)
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
                sanitize_for_terminal(planned.as_deref().unwrap_or("an unknown instance")),
                live.as_deref().unwrap_or("unknown")
            ),
            "check --gitlab-url, or plan again against this instance",
        ));
    }
    Ok(())
}

/// A row whose new mirror user is not the caller needs an admin (and `sudo` on the new API).
fn check_mirror_users(path: &Path, rows: Lined<'_>, pre: &Preflight) -> Result<(), AppError> {
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
                    sanitize_for_terminal(&row.new_mirror_user),
                    pre.user.username
                ),
                "use an administrator's token with the `sudo` scope, or that user's own token",
            ));
        }
    }
    Ok(())
}

/// Show what will happen and ask (terminal), or require `--yes`.
fn confirm(
    args: &ApplyArgs,
    pre: &Preflight,
    client: &GitLabClient,
    todo: usize,
    already: usize,
    total: usize,
) -> Result<(), AppError> {
    let summary = format!(
        "{todo} mirror(s) to update on {} as {}{} ({already} already done by an earlier run, {} \
         other rows left alone)",
        client.base_url(),
        pre.user.username,
        if args.dry_run { " — dry run, nothing will be written" } else { "" },
        total - todo - already,
    );
    if args.dry_run || args.yes || todo == 0 {
        eprintln!("{}", sanitize_for_terminal(&summary));
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(AppError::usage_hint(
            "refusing to change mirrors without confirmation: stdin is not a terminal",
            "review the plan, then pass --yes (or --dry-run to only see what would happen)",
        ));
    }
    eprint!("{}\nApply these changes? [y/N] ", sanitize_for_terminal(&summary));
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

/// The report line of a row that was not worked on in this run.
fn not_applied(row: &PlanRow, earlier: Option<RowState>) -> ReportRow {
    let (outcome, detail) = match (row.action, earlier) {
        (Action::Update, Some(RowState::Finished { outcome, detail })) if outcome.is_final() => {
            (outcome, format!("recorded by an earlier run: {detail}"))
        }
        (Action::Update, _) => {
            (Outcome::Skipped, "not started: the run was interrupted; rerun to resume".into())
        }
        (action, _) => (Outcome::Skipped, format!("planned as {}", action.code())),
    };
    ReportRow {
        row: row.clone(),
        outcome,
        outcome_detail: detail,
        verified_status: String::new(),
        finished_at: OffsetDateTime::now_utc(),
    }
}

/// The journal's key for a plan row.
fn journal_key(row: &PlanRow) -> JournalKey {
    JournalKey {
        project_id: row.project_id,
        mirror_type: row.mirror_type.code().to_owned(),
        mirror_id: row.mirror_id,
    }
}

/// What happened to one row in this run.
#[derive(Debug)]
struct RowResult {
    key: JournalKey,
    outcome: Outcome,
    detail: String,
    verified: String,
    finished_at: OffsetDateTime,
}

/// Shared state of one apply run.
struct Exec {
    client: GitLabClient,
    pre: Preflight,
    creds: Credentials,
    journal: Option<Journal>,
    dry_run: bool,
    verify: bool,
    verify_timeout: Duration,
    users: ReadContext,
    interrupt: Interrupt,
    /// Push mirrors created or adopted as replacements in this run, by (project, mirror id).
    claimed: std::sync::Mutex<std::collections::HashSet<(u64, u64)>>,
}

impl Exec {
    /// Apply one row; per-row failures become outcomes, only journal failures are fatal.
    async fn apply_row(&self, row: &PlanRow, prior: Prior) -> Result<RowResult, AppError> {
        let key = journal_key(row);
        if self.interrupt.is_requested() {
            return Ok(self.result(
                &key,
                Outcome::Skipped,
                "not started: interrupted; rerun to resume".into(),
                String::new(),
            ));
        }
        let attempt = match row.mirror_type {
            MirrorType::Pull => self.apply_pull(row, &key, prior).await,
            MirrorType::Push => self.apply_push(row, &key, prior).await,
        };
        let (outcome, detail, verified) = match attempt {
            Ok(done) => done,
            Err(Step::Journal(e)) => return Err(e),
            Err(Step::GitLab(e)) => (Outcome::Failed, mask_userinfo(&e.to_string()), String::new()),
            Err(Step::Refused(why)) => (Outcome::Failed, why, String::new()),
        };
        if !self.dry_run {
            self.record_outcome(&key, outcome, &detail).await?;
        }
        Ok(self.result(&key, outcome, detail, verified))
    }

    fn result(
        &self,
        key: &JournalKey,
        outcome: Outcome,
        detail: String,
        verified: String,
    ) -> RowResult {
        RowResult {
            key: key.clone(),
            outcome,
            detail,
            verified,
            finished_at: OffsetDateTime::now_utc(),
        }
    }

    async fn record_outcome(
        &self,
        key: &JournalKey,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), AppError> {
        if let Some(j) = &self.journal {
            j.record(OutcomeEntry::new(key.clone(), outcome, detail)).await?;
        }
        Ok(())
    }

    async fn record(&self, entry: impl Into<journal::Entry>) -> Result<(), Step> {
        if let Some(j) = &self.journal {
            j.record(entry).await.map_err(|e| Step::Journal(e.into()))?;
        }
        Ok(())
    }

    /// The credentials a row sends: (auth_user, auth_password), raw.
    fn credentials_for(&self, row: &PlanRow) -> Option<(SecretString, SecretString)> {
        // validate_rows already refused anything else; this is the second lock on the door.
        if row.new_auth != Some(NewAuth::Service) || !is_https(&row.new_url) {
            return None;
        }
        let rules = self.creds.rules(Vec::new(), false);
        let host = rewrite::source_host_for(&row.new_url, &rules)?;
        let cred = self.creds.for_host(&host.host)?;
        let token = cred.token.clone()?;
        Some(match &cred.user {
            None => (token, SecretString::from(String::new())),
            Some(user) => (SecretString::from(user.clone()), token),
        })
    }

    /// The row's `new_url` with its credentials in the userinfo, percent-encoded (the old
    /// pull-mirror API and push mirrors take credentials only that way).
    fn credentialed_url(&self, row: &PlanRow) -> SecretString {
        match self.credentials_for(row) {
            Some((user, password)) => {
                let (user, token) = if password.expose_secret().is_empty() {
                    (None, &user)
                } else {
                    (Some(user.expose_secret()), &password)
                };
                rewrite::authenticated_url(&row.new_url, user, token)
            }
            None => SecretString::from(row.new_url.clone()),
        }
    }

    /// GITLAB-FACTS §3: a push mirror stores the credentials of its URL without decoding them
    /// and encodes them again when it pushes, so any percent-encoded character would reach
    /// the remote double-encoded. Only credentials made of RFC 3986 unreserved characters
    /// (what tokens and service usernames usually are) survive; refuse the rest.
    fn push_credentials_survive(&self, row: &PlanRow) -> bool {
        self.credentials_for(row).is_none_or(|(user, password)| {
            [user.expose_secret(), password.expose_secret()]
                .iter()
                .all(|part| rewrite::encode_userinfo_part(part) == **part)
        })
    }

    /// The pull mirror as it is now.
    async fn read_pull(&self, project_id: u64) -> Result<Option<MirrorFacts>, GitLabError> {
        let project = self.client.project(&project_id.to_string()).await?;
        let reads =
            inventory::read_project(&self.client, &self.users, project, MirrorSelection::Pull)
                .await?;
        Ok(reads
            .iter()
            .find(|r| matches!(r.mirror, MirrorDetail::Pull { .. }))
            .map(MirrorFacts::of))
    }

    async fn apply_pull(
        &self,
        row: &PlanRow,
        key: &JournalKey,
        prior: Prior,
    ) -> Result<(Outcome, String, String), Step> {
        let planned = plan::check_observed_cell(&row.observed, plan::SealKey::of(row), row.action)
            .map_err(Step::Refused)?;
        let Some(live) = self.read_pull(row.project_id).await? else {
            return Ok((
                Outcome::Drifted,
                "the project is no longer pull-mirrored".into(),
                String::new(),
            ));
        };
        // Observed state first: GitLab masks credentials, so a write that only changes them
        // leaves the mirror looking the same. While it still looks as planned, (re)writing is
        // the safe choice — a pull-mirror PUT of the same URL and credentials is idempotent —
        // also after a crash between the write and its journaled outcome.
        if plan::fingerprint(&live.observed()) != planned {
            // SPEC §6: only a row an earlier run was writing (an intent without an outcome)
            // may be found already applied; any other change since planning is drift, even
            // one that looks like the target (credentials are not visible to compare).
            if prior.attempted && pull_matches(&live, row) {
                return Ok((
                    Outcome::AlreadyApplied,
                    "an earlier run's write had landed".into(),
                    String::new(),
                ));
            }
            return Ok((Outcome::Drifted, drift_detail(&live, row), String::new()));
        }
        let new_api = self.pre.version.supports_pull_mirror_api();
        if self.dry_run {
            let call = if new_api {
                "PUT /projects/:id/mirror/pull"
            } else {
                "PUT /projects/:id (import_url)"
            };
            return Ok((Outcome::DryRun, format!("would call {call}"), String::new()));
        }
        self.record(Intent::new(key.clone(), WriteStep::PullUpdate, &row.new_url)).await?;
        // A write whose answer was lost (500, dropped connection) may or may not have landed:
        // re-read, and send it again only while the mirror still shows the planned state.
        let mut resends = 0;
        let after = loop {
            let write = self.write_pull(row, new_api).await;
            // GITLAB-FACTS §2.2: the 17.6 API answers with the mirror as saved, and makes the
            // caller (the `Sudo` user) its mirror user: that answer is the confirmation, no
            // second read needed.
            if let Ok(Some(saved)) = &write {
                break live.after_put(saved, &row.new_mirror_user);
            }
            let Some(after) = self.read_pull(row.project_id).await? else {
                return Ok((
                    Outcome::Failed,
                    "the mirror disappeared after the write".into(),
                    String::new(),
                ));
            };
            let unchanged = plan::fingerprint(&after.observed()) == planned;
            match write {
                Ok(_) => break after,
                // Still as planned: the write did not land, or it only changed credentials,
                // which GitLab does not show. Sending it again is harmless either way.
                Err(e) if e.is_ambiguous() && unchanged && resends < MAX_RESENDS => {
                    resends += 1;
                    tracing::info!(
                        project_id = row.project_id,
                        "write outcome unknown; sending it again"
                    );
                }
                // Visibly changed into the target: the write landed, its answer was lost.
                Err(e) if e.is_ambiguous() && !unchanged && pull_matches(&after, row) => {
                    return self
                        .finish_pull(row, &live, after, "applied (confirmed by re-read)")
                        .await;
                }
                Err(e) => return Err(Step::GitLab(e)),
            }
        };
        if !pull_matches(&after, row) {
            return Ok((
                Outcome::Failed,
                format!("GitLab accepted the write but now shows: {}", drift_detail(&after, row)),
                String::new(),
            ));
        }
        self.record(journal::Step::new(key.clone(), StepKind::PullUpdated)).await?;
        // GITLAB-FACTS §2.4: the old API silently drops mirror changes the caller may not
        // make, and credentials are invisible on re-read: say so.
        let detail = if new_api {
            "applied"
        } else {
            "applied through PUT /projects/:id (GitLab < 17.6 may drop mirror changes \
             silently; --verify checks the mirror syncs)"
        };
        self.finish_pull(row, &live, after, detail).await
    }

    /// Restore flags GitLab changed, then verify if asked.
    async fn finish_pull(
        &self,
        row: &PlanRow,
        before: &MirrorFacts,
        after: MirrorFacts,
        detail: &str,
    ) -> Result<(Outcome, String, String), Step> {
        let mut detail = detail.to_owned();
        if flags_changed(&before.flags, &after.flags) && self.pre.version.supports_pull_mirror_api()
        {
            // SPEC §6: the flags seen at planning must be the same afterwards.
            let restore = restore_flags(&before.flags);
            self.client_for(row).update_pull_mirror(row.project_id, &restore).await?;
            detail.push_str("; mirror flags restored");
        }
        let verified =
            if self.verify { self.verify_pull(row.project_id).await } else { String::new() };
        Ok((Outcome::Applied, detail, verified))
    }

    /// The client to write with: `Sudo` as the planned mirror user when it is not the caller.
    fn client_for(&self, row: &PlanRow) -> GitLabClient {
        if !row.new_mirror_user.is_empty() && row.new_mirror_user != self.pre.user.username {
            self.client.with_sudo(&row.new_mirror_user)
        } else {
            self.client.clone()
        }
    }

    /// Write the row's pull mirror. Returns the mirror as saved when the API answers with it
    /// (17.6+), `None` on the old API (which answers with the project).
    async fn write_pull(
        &self,
        row: &PlanRow,
        new_api: bool,
    ) -> Result<Option<crate::gitlab::PullMirror>, GitLabError> {
        if new_api {
            // GITLAB-FACTS §2.2: send url, auth_user and auth_password together, raw; `url`
            // alone would wipe the stored credentials.
            // Without service credentials only the URL is sent: its own userinfo (an ssh
            // user) is what GitLab keeps, and a URL without userinfo clears the stored
            // credentials, which is what `new_auth=none` means.
            let (auth_user, auth_password) = match self.credentials_for(row) {
                Some((user, password)) => (Some(user), Some(password)),
                None => (None, None),
            };
            let req = PullMirrorUpdate {
                url: row.new_url.clone(),
                auth_user,
                auth_password,
                ..PullMirrorUpdate::default()
            };
            let saved = self.client_for(row).update_pull_mirror(row.project_id, &req).await?;
            Ok(Some(saved))
        } else {
            // GITLAB-FACTS §2.4: the old API takes the credentials inside import_url,
            // percent-encoded.
            let import_url = self.credentialed_url(row);
            let mirror_user_id = if !row.new_mirror_user.is_empty()
                && row.new_mirror_user != self.pre.user.username
            {
                self.client.user_by_username(&row.new_mirror_user).await?.map(|u| u.id)
            } else {
                None
            };
            let req = ImportUrlUpdate {
                import_url,
                mirror: true,
                mirror_user_id,
                mirror_trigger_builds: None,
                only_mirror_protected_branches: None,
                mirror_overwrites_diverged_branches: None,
                mirror_branch_regex: None,
            };
            self.client.update_project_import_url(row.project_id, &req).await?;
            Ok(None)
        }
    }

    async fn verify_pull(&self, project_id: u64) -> String {
        self.poll_until_done("not mirrored", || async {
            let mirror = self.client.pull_mirror(project_id).await?;
            Ok(mirror.map(|m| (m.update_status, m.last_error)))
        })
        .await
    }

    /// `--verify`: poll a mirror's `(update_status, last_error)` until its update finished or
    /// failed, or `--verify-timeout` passed, backing off from 250 ms to 5 s.
    async fn poll_until_done<F, Fut>(&self, absent: &str, mut read: F) -> String
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<
                Output = Result<Option<(Option<String>, Option<String>)>, GitLabError>,
            >,
    {
        let deadline = Instant::now() + self.verify_timeout;
        let mut wait = Duration::from_millis(250);
        loop {
            match read().await {
                Ok(Some((status, error))) => match status.as_deref() {
                    Some("finished") => return "finished".into(),
                    Some("failed") => {
                        let err =
                            error.as_deref().map(plan::normalize_last_error).unwrap_or_default();
                        return format!("failed: {err}");
                    }
                    _ => {}
                },
                Ok(None) => return absent.into(),
                Err(e) => return format!("unknown: {}", mask_userinfo(&e.to_string())),
            }
            if Instant::now() + wait > deadline {
                return "timeout".into();
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    async fn apply_push(
        &self,
        row: &PlanRow,
        key: &JournalKey,
        prior: Prior,
    ) -> Result<(Outcome, String, String), Step> {
        let planned = plan::check_observed_cell(&row.observed, plan::SealKey::of(row), row.action)
            .map_err(Step::Refused)?;
        let old_id = row.mirror_id.unwrap_or_default();
        let live = self.client.remote_mirrors(row.project_id).await?;
        let old = live.iter().find(|m| m.id == old_id);
        // A crash between create and delete: the replacement already exists. Never create a
        // second one; finish by deleting the old mirror.
        if let Some(repair) = prior.repair {
            let recorded = repair.replacement_id.and_then(|id| live.iter().find(|m| m.id == id));
            let replacement = match recorded {
                Some(m) if push_matches(m, row) => Some(m),
                Some(m) => {
                    return Ok((
                        Outcome::Failed,
                        format!(
                            "replacement push mirror {} exists but does not match the plan; \
                             resolve by hand (push mirror {old_id} was kept)",
                            m.id
                        ),
                        String::new(),
                    ));
                }
                // A crash after the create was sent but before its id was recorded: only a
                // mirror created after that moment, matching the target, can be it.
                None if repair.create_unrecorded && prior.in_flight => live.iter().find(|m| {
                    repair.newest_before.is_some_and(|n| m.id > n)
                        && push_matches(m, row)
                        && self.claim(row.project_id, m.id)
                }),
                None => None,
            };
            if let Some(new) = replacement {
                let new_id = new.id;
                if old.is_some() {
                    self.record(
                        Intent::new(key.clone(), WriteStep::PushDeleteOld, &row.new_url)
                            .with_old_mirror_id(old_id)
                            .with_new_mirror_id(new_id),
                    )
                    .await?;
                    self.delete_push(row.project_id, old_id).await?;
                    self.record(journal::Step::new(key.clone(), StepKind::PushOldDeleted)).await?;
                    let verified = if self.verify {
                        self.verify_push(row.project_id, new_id).await
                    } else {
                        String::new()
                    };
                    return Ok((
                        Outcome::Applied,
                        format!("replaced by push mirror {new_id} (resumed)"),
                        verified,
                    ));
                }
                return Ok((
                    Outcome::AlreadyApplied,
                    format!("replaced by push mirror {new_id}"),
                    String::new(),
                ));
            }
        }
        let Some(old) = old else {
            return Ok((
                Outcome::Drifted,
                format!("push mirror {old_id} no longer exists"),
                String::new(),
            ));
        };
        let facts = push_facts(row, old);
        if plan::fingerprint(&facts.observed()) != planned {
            return Ok((Outcome::Drifted, drift_detail(&facts, row), String::new()));
        }
        if !self.push_credentials_survive(row) {
            return Ok((
                Outcome::Failed,
                "the service username or token has characters a push mirror URL would store \
                 double-encoded; change this mirror in the UI"
                    .into(),
                String::new(),
            ));
        }
        if self.dry_run {
            return Ok((
                Outcome::DryRun,
                format!("would create a replacement for push mirror {old_id}, then delete it"),
                String::new(),
            ));
        }
        let newest_before = live.iter().map(|m| m.id).max();
        self.record(
            Intent::new(key.clone(), WriteStep::PushCreate, &row.new_url)
                .with_old_mirror_id(old_id)
                .with_newest_before(newest_before),
        )
        .await?;
        let url = self.credentialed_url(row);
        // GITLAB-FACTS §3: a push mirror's URL cannot change; create the replacement with the
        // same settings and enabled=true (new mirrors are disabled by default).
        // SPEC §6: ssh → https gets auth_method=password; otherwise copy the old settings.
        let to_https = !old.url.starts_with("https://") && row.new_url.starts_with("https://");
        let req = RemoteMirrorCreate {
            url,
            enabled: true,
            auth_method: if to_https { Some("password".into()) } else { old.auth_method.clone() },
            keep_divergent_refs: old.keep_divergent_refs,
            only_protected_branches: old.only_protected_branches,
            // An empty regex next to only_protected_branches would be refused as exclusive.
            mirror_branch_regex: old.mirror_branch_regex.clone().filter(|r| !r.is_empty()),
        };
        let mut resends = 0;
        let created = loop {
            match self.client.create_remote_mirror(row.project_id, &req).await {
                Ok(m) => break m,
                // A definite refusal: nothing was created.
                Err(e) if !e.is_ambiguous() => return Err(Step::GitLab(e)),
                Err(e) => {
                    // The answer was lost, perhaps after GitLab created it: look for a mirror
                    // that did not exist at planning time before creating another.
                    let again = self.client.remote_mirrors(row.project_id).await?;
                    if let Some(m) = again.into_iter().find(|m| {
                        newest_before.is_none_or(|n| m.id > n)
                            && push_matches(m, row)
                            && self.claim(row.project_id, m.id)
                    }) {
                        break m;
                    }
                    if resends >= MAX_RESENDS {
                        return Err(Step::GitLab(e));
                    }
                    resends += 1;
                }
            }
        };
        self.claim(row.project_id, created.id);
        self.record(journal::Step::push_created(key.clone(), created.id)).await?;
        // Confirm the replacement exists before removing the old mirror.
        match self.client.remote_mirror(row.project_id, created.id).await? {
            Some(m) if push_matches(&m, row) => {}
            _ => {
                return Ok((
                    Outcome::Failed,
                    format!(
                        "replacement push mirror {} could not be confirmed; the old mirror {old_id} was kept",
                        created.id
                    ),
                    String::new(),
                ));
            }
        }
        self.record(journal::Step::new(key.clone(), StepKind::PushConfirmed)).await?;
        self.record(
            Intent::new(key.clone(), WriteStep::PushDeleteOld, &row.new_url)
                .with_old_mirror_id(old_id)
                .with_new_mirror_id(created.id),
        )
        .await?;
        self.delete_push(row.project_id, old_id).await?;
        self.record(journal::Step::new(key.clone(), StepKind::PushOldDeleted)).await?;
        let verified = if self.verify {
            self.verify_push(row.project_id, created.id).await
        } else {
            String::new()
        };
        Ok((Outcome::Applied, format!("replaced by push mirror {}", created.id), verified))
    }

    /// Claim a push mirror as one row's replacement; false when another row of this run
    /// already has it (two rows of a project may share a target URL).
    fn claim(&self, project_id: u64, mirror_id: u64) -> bool {
        self.claimed.lock().expect("claims lock is never poisoned").insert((project_id, mirror_id))
    }

    /// Delete a push mirror. DELETE is idempotent here (a 404 counts as done), so a request
    /// whose answer was lost is simply sent again.
    async fn delete_push(&self, project_id: u64, mirror_id: u64) -> Result<(), GitLabError> {
        let mut resends = 0;
        loop {
            match self.client.delete_remote_mirror(project_id, mirror_id).await {
                Err(e) if e.is_ambiguous() && resends < MAX_RESENDS => resends += 1,
                other => return other,
            }
        }
    }

    async fn verify_push(&self, project_id: u64, mirror_id: u64) -> String {
        if let Err(e) = self.client.sync_remote_mirror(project_id, mirror_id).await {
            return format!("unknown: {}", mask_userinfo(&e.to_string()));
        }
        self.poll_until_done("mirror not found", || async {
            let mirror = self.client.remote_mirror(project_id, mirror_id).await?;
            Ok(mirror.map(|m| (m.update_status, m.last_error)))
        })
        .await
    }
}

/// Why a row step stopped: a GitLab failure or a refusal ends the row, a journal failure
/// ends the run.
enum Step {
    GitLab(GitLabError),
    Refused(String),
    Journal(AppError),
}

/// Whether GitLab changed a flag it exposes (a flag it does not expose is not compared).
fn flags_changed(before: &MirrorFlags, after: &MirrorFlags) -> bool {
    fn differs<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
        matches!((a, b), (Some(x), Some(y)) if x != y)
    }
    differs(&before.trigger_builds, &after.trigger_builds)
        || differs(&before.only_protected_branches, &after.only_protected_branches)
        || differs(&before.overwrite_diverged, &after.overwrite_diverged)
        || differs(&before.branch_regex, &after.branch_regex)
}

/// A flags-only pull-mirror update that puts back the flags seen at planning.
fn restore_flags(flags: &MirrorFlags) -> PullMirrorUpdate {
    // GitLab refuses only_mirror_protected_branches together with a branch regex.
    let regex = flags.branch_regex.clone().filter(|r| !r.is_empty());
    PullMirrorUpdate {
        mirror_trigger_builds: flags.trigger_builds,
        only_mirror_protected_branches: if regex.is_some() {
            None
        } else {
            flags.only_protected_branches
        },
        mirror_overwrites_diverged_branches: flags.overwrite_diverged,
        mirror_branch_regex: regex,
        ..PullMirrorUpdate::default()
    }
}

impl From<GitLabError> for Step {
    fn from(e: GitLabError) -> Self {
        Step::GitLab(e)
    }
}

/// The facts of a push mirror, in the shape the fingerprint uses.
fn push_facts(row: &PlanRow, m: &RemoteMirror) -> MirrorFacts {
    let read = inventory::MirrorRead {
        project: Arc::new(crate::gitlab::Project { id: row.project_id, ..Default::default() }),
        mirror: MirrorDetail::Push(m.clone()),
    };
    MirrorFacts::of(&read)
}

/// Whether a URL's parsed scheme is https.
fn is_https(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.scheme() == "https")
}

/// A URL without its userinfo (GitLab's `*****` mask, or an ssh user), for comparing a
/// live masked URL with a plan's `new_url`.
fn without_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

/// Does the live pull mirror already look like the row's target?
fn pull_matches(live: &MirrorFacts, row: &PlanRow) -> bool {
    let url_ok = without_userinfo(&live.url) == without_userinfo(&row.new_url);
    let auth = plan::CurrentAuth::from_masked_url(&live.url);
    let auth_ok = match row.new_auth {
        Some(NewAuth::Service) => auth != plan::CurrentAuth::None,
        Some(NewAuth::None) => auth == plan::CurrentAuth::None,
        _ => true,
    };
    let user_ok = row.new_mirror_user.is_empty() || live.user_name == row.new_mirror_user;
    url_ok && auth_ok && user_ok && live.enabled
}

/// Does a live push mirror look like the row's replacement?
fn push_matches(m: &RemoteMirror, row: &PlanRow) -> bool {
    without_userinfo(&m.url) == without_userinfo(&row.new_url) && m.enabled
}

/// What differs between the live mirror and the plan, for the report.
fn drift_detail(live: &MirrorFacts, row: &PlanRow) -> String {
    let mut parts = Vec::new();
    if live.url != row.current_url {
        parts.push(format!("url is now {}", mask_userinfo(&live.url)));
    }
    let auth = plan::CurrentAuth::from_masked_url(&live.url);
    if auth != row.current_auth {
        parts.push(format!("credentials are now {}", auth.code()));
    }
    if row.mirror_type == MirrorType::Pull && live.user_name != row.current_mirror_user {
        parts.push(format!("mirror user is now {:?}", live.user_name));
    }
    if parts.is_empty() {
        parts.push("enabled state or mirror settings changed".into());
    }
    format!("changed since planning: {}; plan again", parts.join(", "))
}
