//! The guard on every service-credential write in `apply`: before the run, the token watch
//! (an invalid token, or one within 7 days of expiry without `--allow-expiring-token`,
//! refuses the run before any write); before each write, one probe of the row's `new_url`
//! with exactly the credentials the write sends. A probe that does not allow the write
//! leaves the row unwritten, `failed` with the probe's reason (`apply --dry-run`: `would
//! fail: <code>`), and a rerun probes again. docs/remote-probe.md has the rules.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::apply::results::RowResult;
use crate::config::{ApplyRequest, ProbeRequest, Settings};
use crate::error::AppError;
use crate::inventory::Preflight;
use crate::inventory::probe::{self as probing, RowProber};
use crate::plan::PlanRow;
use crate::plan::ProbeFinding;
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
    match probing(&req.probe, by_host.keys().map(String::as_str)) {
        Probing::Unneeded => return Ok(None),
        Probing::Off => {
            say("note: probes are off (--no-probe): service credentials are written unproven"
                .into());
            return Ok(None);
        }
        Probing::On => {}
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

/// Whether a run probes its service-credential writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probing {
    /// No write needs a probe from here: none sends service credentials, or every host they
    /// go to is skipped (`--no-probe-host`).
    Unneeded,
    /// `--no-probe`: written unproven, and the run says so.
    Off,
    /// Each service-credential write is probed first.
    On,
}

/// How a run probes, from the request and the hosts its service-credential writes go to.
pub(crate) fn probing<'a>(
    probe: &ProbeRequest,
    mut service_hosts: impl Iterator<Item = &'a str>,
) -> Probing {
    if !service_hosts.any(|h| probe.reaches(h)) {
        Probing::Unneeded
    } else if !probe.enabled {
        Probing::Off
    } else {
        Probing::On
    }
}

/// What the probe says about one write.
#[derive(Debug, Clone, PartialEq, Eq)]
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
            return verdict(None);
        }
        let found = self.rows.probe_row(&row.new_url, row.mirror_type.into()).await;
        if let Some(found) = &found {
            *self
                .found
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(found.code.code())
                .or_default() += 1;
        }
        let verdict = verdict(found.as_ref());
        if let (Guarded::Stop { .. }, Some(found)) = (&verdict, &found) {
            tracing::info!(
                project_id = row.project_id,
                code = found.code.code(),
                "probe: not written"
            );
        }
        verdict
    }
}

/// What a probe finding means for the write: none (not a service-credential row, or its host
/// is not probed from here) writes unproven; a code that allows the write writes; any other
/// stops it with the finding's reason.
pub(crate) fn verdict(found: Option<&ProbeFinding>) -> Guarded {
    match found {
        None => Guarded::Write(None),
        Some(f) if f.code.allows_write() => Guarded::Write(Some(f.code)),
        Some(f) => Guarded::Stop { would_fail: f.would_fail(), not_written: f.not_written() },
    }
}

/// The row's next step from the probe's verdict: `Ok`: write (with the probe code, when the
/// row was probed); `Err`: end the row with this (`dry-run`, saying it would fail, in a dry
/// run; `failed`, not written, in a real one).
pub(crate) fn guarded(verdict: Guarded, dry_run: bool) -> Result<Option<ProbeCode>, RowResult> {
    match verdict {
        Guarded::Write(code) => Ok(code),
        Guarded::Stop { would_fail, .. } if dry_run => Err(RowResult::dry_run(would_fail)),
        Guarded::Stop { not_written, .. } => Err(RowResult::failed(not_written)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Outcome;

    fn finding(code: ProbeCode) -> ProbeFinding {
        ProbeFinding::new(code, "github.com", "GitHub answers 404: grant read access.")
    }

    #[test]
    fn a_probe_verdict_writes_or_stops_with_the_reason() {
        // No finding (not probed from here: a skipped host, no token in a dry run): written
        // unproven.
        assert_eq!(verdict(None), Guarded::Write(None));
        for code in [ProbeCode::Ok, ProbeCode::OkEmpty, ProbeCode::DumbHttp, ProbeCode::Redirect] {
            assert_eq!(verdict(Some(&finding(code))), Guarded::Write(Some(code)), "{code}");
        }
        for code in [
            ProbeCode::AuthRejected,
            ProbeCode::NoAccessOrMissing,
            ProbeCode::Forbidden,
            ProbeCode::NotFound,
            ProbeCode::NotGit,
            ProbeCode::ServerError,
            ProbeCode::RateLimited,
            ProbeCode::Banned,
            ProbeCode::Unreachable,
            ProbeCode::Tls,
            ProbeCode::Breaker,
        ] {
            let f = finding(code);
            let want = Guarded::Stop { would_fail: f.would_fail(), not_written: f.not_written() };
            assert_eq!(verdict(Some(&f)), want, "{code}");
        }
    }

    #[test]
    fn a_stop_is_a_failed_row_or_a_dry_run_that_would_fail() {
        let f = finding(ProbeCode::NoAccessOrMissing);
        let stop = || verdict(Some(&f));
        let real = guarded(stop(), false).unwrap_err();
        assert_eq!(real.outcome, Outcome::Failed);
        assert!(real.detail.starts_with("probe no-access-or-missing ("), "{}", real.detail);
        assert!(real.detail.contains("not written"), "{}", real.detail);
        let dry = guarded(stop(), true).unwrap_err();
        assert_eq!(dry.outcome, Outcome::DryRun);
        assert!(dry.detail.starts_with("would fail: no-access-or-missing ("), "{}", dry.detail);
        for dry_run in [false, true] {
            assert_eq!(guarded(Guarded::Write(None), dry_run), Ok(None));
            let ok = Guarded::Write(Some(ProbeCode::Ok));
            assert_eq!(guarded(ok, dry_run), Ok(Some(ProbeCode::Ok)));
        }
    }

    #[test]
    fn probing_is_set_up_only_for_hosts_it_reaches() {
        let on = ProbeRequest::enabled(true);
        let off = ProbeRequest::enabled(false);
        let skipping =
            ProbeRequest { skip_hosts: vec!["github.com".into()], ..ProbeRequest::enabled(true) };
        let cases = [
            (&on, vec!["github.com"], Probing::On),
            (&on, vec![], Probing::Unneeded),
            (&off, vec!["github.com"], Probing::Off),
            (&off, vec![], Probing::Unneeded),
            (&skipping, vec!["github.com"], Probing::Unneeded),
            (&skipping, vec!["github.com", "gitlab.com"], Probing::On),
        ];
        for (i, (req, hosts, want)) in cases.into_iter().enumerate() {
            assert_eq!(probing(req, hosts.into_iter()), want, "case {i}");
        }
    }
}
