//! `glmirror demo`: the whole workflow (plan → apply → status) against the built-in GitLab
//! simulator, so a new user can see what glmirror does without a GitLab, a token or a network.
//! With `git` on PATH the source hosts are stood in for on 127.0.0.1 (`crate::githost`, from
//! the same fixture), so `plan --probe` and apply's probes show real results.

use std::collections::HashMap;

use std::time::Duration;

use secrecy::SecretString;

use crate::cli::DemoArgs;
use crate::config::{
    ApplyRequest, Connection, ConnectionRequest, PlanRequest, ProbeRequest, RuleRequest, Scope,
    Settings,
};
use crate::credentials::{Credentials, HostCredential};
use crate::error::{AppError, ExitCode};
use crate::githost;
use crate::health::{Health, StatusRow};
use crate::plan::MirrorType;
use crate::probe::{HttpSettings, ProbeClass, ProbeCode, ProxyMode};
use crate::redact::for_terminal;
use crate::sim::{self, Fixture, SimOptions, StateSnapshot};

/// `println!` that does not panic when stdout is closed (`glmirror demo | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Run `glmirror demo`.
pub(crate) async fn run(settings: &Settings, args: &DemoArgs) -> Result<ExitCode, AppError> {
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
    // The source hosts, stood in for on 127.0.0.1 (real git http-backend, reached through
    // the stand-in's own proxy, in this process): the service token is proven there, and
    // nothing leaves the machine. Without git, no probe and no token watch.
    let (githost, probe) = match githost::find_git() {
        Ok(_) => {
            let host = githost::start(githost::fixture::from_fixture(&fixture, &[]))
                .await
                .map_err(|e| AppError::fatal(format!("cannot start the git host stand-in: {e}")))?;
            let http = HttpSettings {
                ca_cert_pem: Some(host.ca_pem().as_bytes().to_vec()),
                proxy: ProxyMode::Via(host.proxy_url()),
                ..HttpSettings::default()
            };
            out!(
                "  and a stand-in for {} on this machine (git http-backend): the service token is \
                 proven against each repository before it replaces anyone's credentials",
                demo.source_hosts.join(", ")
            );
            let probe = ProbeRequest { enabled: true, http: Some(http), ..ProbeRequest::default() };
            (Some(host), probe)
        }
        Err(e) => {
            out!(
                "  without probes: {e}; the service token is neither proven against the \
                 repositories nor watched (install git to see that part)"
            );
            let probe = ProbeRequest {
                enabled: false,
                skip_hosts: demo.source_hosts.clone(),
                ..ProbeRequest::default()
            };
            (None, probe)
        }
    };
    out!();

    let mut settings = settings.clone();
    settings.no_progress = true;
    let creds = Credentials {
        hosts: demo
            .source_hosts
            .iter()
            .map(|host| {
                HostCredential::new(
                    host.clone(),
                    demo.source_user.clone(),
                    Some(SecretString::from(demo.service_token.clone())),
                    "the demo fixture",
                )
            })
            .collect(),
    };
    let scope = Scope::whole_instance();
    let before = status(&settings, &scope, conn()).await?;
    let depends_before =
        Dependence::of(&sim.snapshot(), &demo.service_token, demo.mirror_user.as_deref());

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
        probe: probe.clone(),
    };
    crate::cmd::plan::execute(&settings, &plan_req, conn()).await?;
    if githost.is_some() {
        say_probe_findings(&plan_path);
    }
    out!("  review it in a spreadsheet: {}", plan_path.display());
    out!();

    out!("== 2. apply (only `update` rows; journaled; drift-checked)");
    let apply_req = ApplyRequest {
        yes: true,
        verify: true,
        verify_timeout: Duration::from_secs(30),
        probe,
        ..ApplyRequest::for_plan(plan_path.clone(), creds)
    };
    let applied =
        crate::cmd::apply::run(&settings, ConnectionRequest::Resolved(conn()), apply_req).await?;
    out!();

    out!("== 3. status (read-only health report)");
    let after = status(&settings, &scope, conn()).await?;
    print_before_after(&before, &after);
    let healthy = |rows: &[StatusRow]| rows.iter().filter(|r| r.health == Health::Ok).count();
    out!();
    out!(
        "healthy mirrors: {} before, {} after (of {}); the rest need a person: see `reason` \
         in the plan.",
        healthy(&before),
        healthy(&after),
        after.len()
    );
    // Who the mirrors depend on, read from the simulator's stored credentials and mirror users
    // (GitLab's API never shows credentials; the simulator's own state does).
    let depends_after =
        Dependence::of(&sim.snapshot(), &demo.service_token, demo.mirror_user.as_deref());
    out!(
        "on service credentials: {} before, {} after (of {} mirrors)",
        depends_before.service,
        depends_after.service,
        depends_after.mirrors
    );
    if let Some(user) = &demo.mirror_user {
        out!(
            "running as {user}: {} before, {} after (of {} enabled pull mirrors of live projects)",
            depends_before.running_as,
            depends_after.running_as,
            depends_after.pull
        );
    }
    out!("files are in {}", dir.display());
    sim.shutdown().await;
    if let Some(host) = githost {
        host.shutdown().await;
    }
    Ok(match applied {
        ExitCode::Success | ExitCode::RowsFailed => ExitCode::Success,
        other => other,
    })
}

/// Say what the probe found where it changed the plan: the rows it kept off the service
/// credentials, and the ones it diagnosed.
fn say_probe_findings(plan_path: &std::path::Path) {
    let Ok(rows) = crate::plan::read_plan(plan_path) else { return };
    for r in rows.iter().filter(|r| r.probe.is_some_and(|p| p != ProbeCode::Ok)) {
        let code = r.probe.map(|p| p.code()).unwrap_or_default();
        let what = match r.probe.map(ProbeCode::class) {
            Some(ProbeClass::CredentialVerdict) if r.is_mirror_user_only() => {
                "the service account cannot read it: its credentials stay, only the mirror user \
                 moves"
            }
            Some(ProbeClass::CredentialVerdict) => {
                "the service account cannot read it: it keeps its credentials (manual)"
            }
            Some(ProbeClass::Diagnosis) => "moved, but GitLab cannot mirror it as it is",
            _ => "no verdict: planned as usual, unproven",
        };
        out!("  probe {code}: {} — {what}", for_terminal(&r.project_path));
    }
}

async fn status(
    settings: &Settings,
    scope: &Scope,
    conn: Connection,
) -> Result<Vec<StatusRow>, AppError> {
    Ok(crate::cmd::status::collect(settings, scope, conn).await?.rows)
}

fn print_before_after(before: &[StatusRow], after: &[StatusRow]) {
    // Push mirrors are replaced (new ids), so match rows by position within their project.
    let keyed = |rows: &[StatusRow]| {
        let mut seen: HashMap<(u64, MirrorType), usize> = HashMap::new();
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
    if let Some(d) = r.diagnosis {
        s.push_str(&format!(" ({d})"));
    }
    s
}

/// Who the simulated instance's mirrors depend on: how many store the service token, and how
/// many pull mirrors run as the planned mirror user.
struct Dependence {
    mirrors: usize,
    service: usize,
    pull: usize,
    running_as: usize,
}

impl Dependence {
    fn of(state: &StateSnapshot, token: &str, mirror_user: Option<&str>) -> Dependence {
        let uses = |user: &Option<String>, password: &Option<String>| {
            user.as_deref() == Some(token) || password.as_deref() == Some(token)
        };
        let target = mirror_user
            .and_then(|name| state.users.iter().find(|u| u.username == name))
            .map(|u| u.id);
        let mut d = Dependence { mirrors: 0, service: 0, pull: 0, running_as: 0 };
        for p in state.projects.iter().map(|p| &p.project) {
            if let Some(m) = p.pull.as_deref().filter(|m| !m.import_url.is_empty()) {
                d.mirrors += 1;
                d.service += usize::from(uses(&m.user, &m.password));
                // As `plan`'s summary counts: enabled pull mirrors of live projects.
                if m.mirror && !p.archived {
                    d.pull += 1;
                    d.running_as += usize::from(target.is_some() && m.mirror_user_id == target);
                }
            }
            for m in &p.remote_mirrors {
                d.mirrors += 1;
                d.service += usize::from(uses(&m.user, &m.password));
            }
        }
        d
    }
}
