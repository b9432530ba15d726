//! The guard on every service-credential write in `apply`: before the run, the token watch
//! (an invalid token, or one within 7 days of expiry without `--allow-expiring-token`,
//! refuses the run before any write); before each write, one probe of the row's `new_url`
//! with exactly the credentials the write sends. A probe that does not allow the write
//! leaves the row unwritten, `failed` with the probe's reason (`apply --dry-run`: `would
//! fail: <code>`), and a rerun probes again. docs/remote-probe.md has the rules.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::config::{ApplyRequest, Settings};
use crate::error::AppError;
use crate::inventory::Preflight;
use crate::inventory::probe::{self as probing, RowProber};
use crate::plan::PlanRow;
use crate::probe::ProbeCode;
use crate::probe::watch::WatchMode;
use crate::rewrite::NewAuth;

/// The run's prober and what it found, for the summary.
#[derive(Debug)]
pub(crate) struct ApplyProbe {
    rows: RowProber,
    found: Mutex<BTreeMap<&'static str, usize>>,
}

impl ApplyProbe {
    /// Probe results so far, per code.
    pub(crate) fn counts(&self) -> BTreeMap<&'static str, usize> {
        self.found.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Before the run: watch the service tokens the plan's writes need and the GitLab token,
/// say what was found and how probing will go, and set up the prober. Refuses (exit 1) for
/// an invalid service token, or one within 7 days of expiry without
/// `--allow-expiring-token`; a dry run only warns.
pub(crate) async fn prepare(
    settings: &Settings,
    req: &ApplyRequest,
    pre: &Preflight,
    gitlab_host: &str,
    pending: &[&PlanRow],
) -> Result<Option<ApplyProbe>, AppError> {
    let quiet = settings.quiet;
    let say = |line: String| {
        if !quiet {
            eprintln!("{}", crate::redact::for_terminal(&line));
        }
    };
    let creds = &req.credentials;
    let service: Vec<&str> = pending
        .iter()
        .filter(|r| r.new_auth == Some(NewAuth::Service))
        .map(|r| r.new_url.as_str())
        .collect();
    let mode = if req.dry_run {
        WatchMode::DryRun
    } else {
        WatchMode::Apply { allow_expiring: req.allow_expiring_token }
    };
    let http = probing::http_settings(settings, &req.probe)?;
    let by_host = probing::service_rows_by_host(service.iter().copied());
    // Only the tokens this plan's writes use are watched (and refused for).
    let mut watched = creds.clone();
    watched.hosts.retain(|h| by_host.contains_key(&h.host));
    let tokens = probing::watch_tokens(&http, &watched, &req.probe).await?;
    let mut verdicts = probing::verdicts(&tokens, &by_host, mode);
    // The API token's own expiry is reported, not refused for: no mirror depends on it.
    verdicts.push(probing::gitlab_token_verdict(pre, gitlab_host, WatchMode::Plan));
    if probing::say_verdicts(&verdicts, quiet, "") {
        return Err(AppError::fatal_hint(
            "refusing to apply: a service token the plan's writes need is invalid or about to \
             expire (see above); nothing was written",
            "rotate the token, or pass --allow-expiring-token to apply one that expires within \
             7 days",
        ));
    }
    for host in &req.probe.skip_hosts {
        say(format!(
            "note: {host} is not probed, nor its token watched, from this machine: its rows \
             are written unproven"
        ));
    }
    if !by_host.keys().any(|h| req.probe.reaches(h)) {
        return Ok(None);
    }
    if !req.probe.enabled {
        say("note: probes are off (--no-probe): service credentials are written unproven".into());
        return Ok(None);
    }
    let missing: Vec<&str> = creds
        .hosts
        .iter()
        .filter(|h| h.token.is_none() && by_host.contains_key(&h.host))
        .map(|h| h.host.as_str())
        .collect();
    if !missing.is_empty() {
        say(format!(
            "note: no service token for {}: this dry run does not probe its rows",
            missing.join(", ")
        ));
    }
    let rows = RowProber::new(http, creds, &req.probe)?;
    rows.know(&tokens);
    say("note: each service-credential write is first proven with one read-only git request \
         from this machine (not from GitLab's network); a row whose probe fails is not written"
        .into());
    Ok(Some(ApplyProbe { rows, found: Mutex::default() }))
}

/// What the probe says about one write.
pub(crate) enum Guarded {
    /// Write it (with the probe code, when the row was probed).
    Write(Option<ProbeCode>),
    /// Do not write it.
    Stop {
        /// A dry run's detail: what a real run would do.
        would_fail: String,
        /// A real run's detail.
        not_written: String,
    },
}

impl ApplyProbe {
    /// Probe a row's service credentials right before its write.
    pub(crate) async fn before_write(&self, row: &PlanRow) -> Guarded {
        if row.new_auth != Some(NewAuth::Service) {
            return Guarded::Write(None);
        }
        let Some(found) = self.rows.probe_row(&row.new_url, row.mirror_type.into()).await else {
            return Guarded::Write(None);
        };
        *self
            .found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(found.code.code())
            .or_default() += 1;
        if found.code.allows_write() {
            return Guarded::Write(Some(found.code));
        }
        tracing::info!(project_id = row.project_id, code = found.code.code(), "probe: not written");
        Guarded::Stop { would_fail: found.would_fail(), not_written: found.not_written() }
    }
}
