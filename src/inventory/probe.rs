//! Probing rows and watching service tokens for the commands: one [`RowProber`] per run
//! (the probe library's [`Prober`] with the run's service credentials and the hosts not to
//! probe), the token watch over every source host with a token ([`watch_tokens`]), and the
//! probe's TLS and proxy settings from `--ca-cert` and the environment.
//!
//! `plan --probe` calls [`RowProber::probe_row`] from the walk, `apply` from its guard
//! before each write (the apply probe guard): both send exactly the username and
//! password GitLab will store (`Credentials::service_pair`).

use std::collections::BTreeMap;

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::config::{ProbeRequest, Settings};
use crate::credentials::{Credentials, HostCredential};
use crate::error::AppError;
use crate::plan::ProbeFinding;
use crate::probe::watch::{self, Expiry, ExpirySource, TokenState, TokenWatch, Validity};
use crate::probe::{HostKind, HttpSettings, ProbeSettings, ProbeTarget, Prober};
use crate::rewrite::Direction;

/// The probe's and the token watch's HTTP settings: the request's own (the demo's stand-in),
/// else `--ca-cert` and the environment's proxies, as for the API client.
pub(crate) fn http_settings(
    settings: &Settings,
    req: &ProbeRequest,
) -> Result<HttpSettings, AppError> {
    if let Some(http) = &req.http {
        return Ok(http.clone());
    }
    let mut http = HttpSettings::default();
    if let Some(path) = &settings.ca_cert {
        let pem =
            std::fs::read(path).map_err(|e| AppError::io("cannot read --ca-cert", path, e))?;
        http.ca_cert_pem = Some(pem);
    }
    Ok(http)
}

/// Probes rows with the run's service credentials, under one host protection.
#[derive(Debug, Clone)]
pub(crate) struct RowProber {
    prober: Prober,
    creds: Credentials,
    skip: Vec<String>,
}

impl RowProber {
    /// A prober for these credentials; `req.skip_hosts` are never probed.
    pub(crate) fn new(
        http: HttpSettings,
        creds: &Credentials,
        req: &ProbeRequest,
    ) -> Result<RowProber, AppError> {
        let prober = Prober::new(ProbeSettings {
            http,
            limits: req.limits.clone(),
            ..ProbeSettings::default()
        })
        .map_err(|e| AppError::fatal(e.to_string()))?;
        Ok(RowProber { prober, creds: creds.clone(), skip: req.skip_hosts.clone() })
    }

    /// Tell host protection what the token watch found (an invalid token's host is not
    /// probed; a valid one reads GitLab's 401 as "no access").
    pub(crate) fn know(&self, states: &[TokenState]) {
        for s in states {
            self.prober.set_token_knowledge(&s.host, s.validity.knowledge());
        }
    }

    /// Whether a row with this `new_url` is probed: its host is a source host with a token,
    /// and not one of `--no-probe-host`.
    pub(crate) fn covers(&self, new_url: &str) -> bool {
        host_of(new_url).is_some_and(|h| !self.skip.contains(&h))
            && self.creds.service_pair(new_url).is_some()
    }

    /// Probe one row that gets service credentials: `GET <new_url>/info/refs?service=…` with
    /// exactly the pair GitLab will store. `None` when the row is not covered (see
    /// [`covers`](RowProber::covers)).
    pub(crate) async fn probe_row(
        &self,
        new_url: &str,
        direction: Direction,
    ) -> Option<ProbeFinding> {
        if !self.covers(new_url) {
            return None;
        }
        let (user, password) = self.creds.service_pair(new_url)?;
        let kind = self.creds.for_url(new_url).map_or(HostKind::Other, |c| c.kind());
        let target = match ProbeTarget::new(new_url, direction, kind, user, password) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("not probed: {e}");
                return None;
            }
        };
        let outcome = self.prober.probe(&target).await;
        Some(ProbeFinding::from_outcome(&outcome, target.host()))
    }
}

/// The host of a URL, lowercase.
fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.host_str().map(str::to_ascii_lowercase)
}

/// Read the state of every source host's token from the host's own API, once, concurrently:
/// hosts without a token and `--no-probe-host` hosts are left out.
/// The states come in [`watched`] order.
pub(crate) async fn watch_tokens(
    http: &HttpSettings,
    creds: &Credentials,
    req: &ProbeRequest,
) -> Result<Vec<TokenState>, AppError> {
    let watch = TokenWatch::new(http).map_err(|e| AppError::fatal(e.to_string()))?;
    let reads = watched(creds, req).map(|(h, token)| {
        let watch = &watch;
        async move { watch.read(&h.host, h.port, h.kind(), token, h.expires_at).await }
    });
    Ok(futures::future::join_all(reads).await)
}

/// The credentials [`watch_tokens`] reads, in its order: those with a token, on hosts not
/// skipped.
pub(crate) fn watched<'a>(
    creds: &'a Credentials,
    req: &'a ProbeRequest,
) -> impl Iterator<Item = (&'a HostCredential, &'a SecretString)> {
    creds.hosts.iter().filter(|h| req.reaches(&h.host)).filter_map(|h| Some((h, h.token.as_ref()?)))
}

/// The GitLab API token as a token-watch state, from pre-flight's `expires_at`
/// (`YYYY-MM-DD`; `None`: no expiry, or GitLab did not say).
pub(crate) fn gitlab_token_state(host: &str, expires_at: Option<&str>, known: bool) -> TokenState {
    let expiry = match expires_at.map(watch::parse_expires_at) {
        Some(Ok(at)) => Expiry::At(at),
        Some(Err(_)) => Expiry::Unknown,
        None if known => Expiry::Never,
        None => Expiry::Unknown,
    };
    TokenState {
        host: host.to_owned(),
        kind: HostKind::GitLab,
        validity: Validity::Valid,
        expiry,
        expiry_source: (expiry != Expiry::Unknown).then_some(ExpirySource::HostApi),
        scopes: None,
        note: if known {
            String::new()
        } else {
            "GitLab did not describe the token (personal_access_tokens/self)".into()
        },
    }
}

/// The verdict on the GitLab API token's own expiry (read at pre-flight), reported like a
/// service token's: `plan`, `apply` and `status` say it; `status` fails within 7 days.
pub(crate) fn gitlab_token_verdict(
    pre: &crate::inventory::Preflight,
    host: &str,
    mode: watch::WatchMode,
) -> watch::TokenVerdict {
    let state = gitlab_token_state(host, pre.token_expires_at.as_deref(), pre.token_described);
    watch::verdict_about("the GitLab API token", None, &state, OffsetDateTime::now_utc(), mode)
}

/// One line per watched token: its verdict for `mode`, with the number of mirrors that
/// depend on it (`mirrors` by host).
pub(crate) fn verdicts(
    states: &[TokenState],
    mirrors: &BTreeMap<String, usize>,
    mode: watch::WatchMode,
) -> Vec<watch::TokenVerdict> {
    let now = OffsetDateTime::now_utc();
    states
        .iter()
        .map(|s| watch::verdict(s, mirrors.get(&s.host).copied().unwrap_or(0), now, mode))
        .collect()
}

/// Print verdicts on stderr, each line starting with `indent` and `note:`, `warning:` or (a
/// refusal, for the caller to act on) `error:`; `quiet` leaves out the notes. Returns
/// whether any verdict refuses.
pub(crate) fn say_verdicts(verdicts: &[watch::TokenVerdict], quiet: bool, indent: &str) -> bool {
    let mut refuse = false;
    for v in verdicts {
        let lead = match v.severity {
            watch::Severity::Info => "note",
            watch::Severity::Warn => "warning",
            watch::Severity::Refuse => {
                refuse = true;
                "error"
            }
        };
        if !quiet || v.severity != watch::Severity::Info {
            eprintln!("{indent}{lead}: {}", crate::redact::for_terminal(&v.message));
        }
    }
    refuse
}

/// The mirror count per source host of rows that get service credentials.
pub(crate) fn service_rows_by_host<'a>(
    new_urls: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for url in new_urls {
        if let Some(h) = host_of(url) {
            *counts.entry(h).or_default() += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_covered_only_on_source_hosts_with_a_token_not_skipped() {
        let token = Some(SecretString::from("ghp_CANARYtok".to_owned()));
        let creds = Credentials {
            hosts: vec![
                HostCredential::new("github.com", None, token.clone(), "env"),
                HostCredential::new("gitlab.example.com", Some("svc".into()), token, "env"),
                HostCredential::new("bitbucket.org", Some("x-token-auth".into()), None, "env"),
            ],
        };
        let req = ProbeRequest {
            enabled: true,
            skip_hosts: vec!["gitlab.example.com".into()],
            ..ProbeRequest::default()
        };
        let p = RowProber::new(HttpSettings::default(), &creds, &req).unwrap();
        assert!(p.covers("https://github.com/a/b.git"));
        assert!(!p.covers("http://github.com/a/b.git"), "never over plain http");
        assert!(!p.covers("https://gitlab.example.com/a/b.git"), "--no-probe-host");
        assert!(!p.covers("https://bitbucket.org/a/b.git"), "no token");
        assert!(!p.covers("https://example.org/a/b.git"), "not a source host");
        assert!(!format!("{p:?}").contains("CANARY"));
    }

    #[test]
    fn the_gitlab_token_reads_like_a_watched_one() {
        let s = gitlab_token_state("gitlab.example.com", Some("2026-07-01"), true);
        assert!(matches!(s.expiry, Expiry::At(_)));
        assert_eq!(gitlab_token_state("h", None, true).expiry, Expiry::Never);
        assert_eq!(gitlab_token_state("h", None, false).expiry, Expiry::Unknown);
        let counts = service_rows_by_host(["https://github.com/a.git", "https://GitHub.com/b.git"]);
        assert_eq!(counts.get("github.com"), Some(&2));
    }
}
