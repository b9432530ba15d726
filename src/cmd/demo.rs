//! `glmirror demo`: the whole workflow (plan → apply → status) against the built-in GitLab
//! simulator, so a new user can see what glmirror does without a GitLab, a token or a network.

use std::collections::HashMap;

use std::time::Duration;

use secrecy::SecretString;

use crate::cli::DemoArgs;
use crate::cmd::status::StatusRow;
use crate::config::{
    ApplyRequest, Connection, ConnectionRequest, PlanRequest, RuleRequest, Scope, Settings,
};
use crate::credentials::{Credentials, HostCredential};
use crate::error::{AppError, ExitCode};
use crate::redact::for_terminal;
use crate::sim::{self, Fixture, SimOptions};

/// `println!` that does not panic when stdout is closed (`glmirror demo | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Run `glmirror demo`.
pub async fn run(settings: &Settings, args: &DemoArgs) -> Result<ExitCode, AppError> {
    let (dir, _keep) = match args.dir.clone() {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| AppError::io("cannot create", &dir, e))?;
            (dir, None)
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("glmirror-demo-")
                .tempdir()
                .map_err(|e| AppError::io("cannot create", std::env::temp_dir(), e))?;
            // Keep the files for the user to look at.
            (tmp.keep(), None::<()>)
        }
    };
    let fixture = Fixture::demo();
    let demo = fixture.demo.clone().ok_or_else(|| {
        AppError::fatal("the built-in demo fixture has no `demo` settings (a build problem)")
    })?;
    let mut options = SimOptions::new(fixture.clone());
    options.update_delay_ms = 300;
    let sim = sim::start(options)
        .await
        .map_err(|e| AppError::fatal(format!("cannot start the simulator: {e}")))?;
    let base_url = sim.base_url();
    let conn = || Connection {
        base_url: base_url.clone(),
        token: SecretString::from(sim.admin_token().to_owned()),
    };
    out!(
        "glmirror demo: a simulated GitLab {} at {base_url} with {} projects",
        fixture.gitlab_version,
        fixture.projects.len()
    );
    out!(
        "  moving mirrors on {} onto one service token{}",
        demo.source_hosts.join(", "),
        demo.mirror_user.as_deref().map(|u| format!(", running as {u}")).unwrap_or_default()
    );
    out!();

    let mut settings = settings.clone();
    settings.no_progress = true;
    let creds = Credentials {
        hosts: demo
            .source_hosts
            .iter()
            .map(|host| HostCredential {
                host: host.clone(),
                port: None,
                user: demo.source_user.clone(),
                token: Some(SecretString::from(demo.service_token.clone())),
                token_source: "the demo fixture".into(),
            })
            .collect(),
    };
    let scope = Scope::whole_instance();
    let before = status(&settings, &scope, conn()).await?;

    let plan_path = dir.join("plan.csv");
    out!("== 1. plan (reads everything, changes nothing)");
    let plan_req = PlanRequest {
        scope: scope.clone(),
        rules: RuleRequest {
            credentials: creds.clone(),
            maps: Vec::new(),
            map_warnings: Vec::new(),
            prefer_https: false,
            mirror_user: demo.mirror_user.clone(),
        },
        out: plan_path.clone(),
    };
    crate::cmd::plan::execute(&settings, &plan_req, conn()).await?;
    out!("  review it in a spreadsheet: {}", plan_path.display());
    out!();

    out!("== 2. apply (only `update` rows; journaled; drift-checked)");
    let apply_req = ApplyRequest {
        yes: true,
        verify: true,
        verify_timeout: Duration::from_secs(30),
        ..ApplyRequest::for_plan(plan_path.clone(), creds)
    };
    let applied =
        crate::cmd::apply::run(&settings, ConnectionRequest::Resolved(conn()), apply_req).await?;
    out!();

    out!("== 3. status (read-only health report)");
    let after = status(&settings, &scope, conn()).await?;
    print_before_after(&before, &after);
    let healthy = |rows: &[StatusRow]| rows.iter().filter(|r| r.health == "ok").count();
    out!();
    out!(
        "healthy mirrors: {} before, {} after (of {}); the rest need a person: see `reason` \
         in the plan.",
        healthy(&before),
        healthy(&after),
        after.len()
    );
    out!("files are in {}", dir.display());
    sim.shutdown().await;
    Ok(match applied {
        ExitCode::Success | ExitCode::RowsFailed => ExitCode::Success,
        other => other,
    })
}

async fn status(
    settings: &Settings,
    scope: &Scope,
    conn: Connection,
) -> Result<Vec<StatusRow>, AppError> {
    let (rows, _, _) = crate::cmd::status::collect(settings, scope, conn).await?;
    Ok(rows)
}

fn print_before_after(before: &[StatusRow], after: &[StatusRow]) {
    // Push mirrors are replaced (new ids), so match rows by position within their project.
    let keyed = |rows: &[StatusRow]| {
        let mut seen: HashMap<(u64, &str), usize> = HashMap::new();
        rows.iter()
            .map(|r| {
                let n = seen.entry((r.project_id, r.mirror_type)).or_default();
                *n += 1;
                (r.project_id, r.mirror_type, *n)
            })
            .collect::<Vec<_>>()
    };
    let before: HashMap<_, _> = keyed(before).into_iter().zip(before).collect();
    let name = |r: &StatusRow| match r.mirror_id {
        Some(_) => format!("{} (push)", r.project_path),
        None => format!("{} (pull)", r.project_path),
    };
    let width = after.iter().map(|r| name(r).chars().count()).max().unwrap_or(7).max(7);
    let was: Vec<String> = keyed(after)
        .iter()
        .map(|k| before.get(k).map(|b| describe(b)).unwrap_or_else(|| "(new)".into()))
        .collect();
    let was_width = was.iter().map(|w| w.chars().count()).max().unwrap_or(6).max(6);
    out!("  {:<width$}  {:<was_width$}  AFTER", "MIRROR", "BEFORE");
    for (r, was) in after.iter().zip(&was) {
        out!("  {:<width$}  {was:<was_width$}  {}", for_terminal(&name(r)), describe(r));
    }
}

fn describe(r: &StatusRow) -> String {
    let mut s = format!("{} {}", r.health, r.update_status);
    if !r.diagnosis.is_empty() {
        s.push_str(&format!(" ({})", r.diagnosis));
    }
    s
}
