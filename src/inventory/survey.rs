//! Reading the instance for `status`: every mirror in scope becomes a health row
//! ([`StatusRow`]), and the token watch gives every token the mirrors depend on (each service
//! token given, and the GitLab API token) a verdict and an expiry for the metrics. Only reads;
//! the `status` command prints, and [`HealthReport::exit_code`] decides its exit code.

use futures::TryStreamExt;
use time::OffsetDateTime;
use url::Url;

use crate::config::{ProbeRequest, Scope};
use crate::credentials::Credentials;
use crate::error::AppError;
use crate::gitlab::GitLabClient;
use crate::health::{Health, HealthReport, StatusRow, TokenExpiry};
use crate::inventory::{self, Preflight, ReadContext, facts, probe as probing};
use crate::plan::Diagnosis;
use crate::probe::HttpSettings;
use crate::probe::watch::{Expiry, Severity, TokenState, TokenVerdict, WatchMode};

/// What reading the instance for `status` found.
pub(crate) struct Survey {
    /// One row per mirror, sorted like a plan.
    pub(crate) rows: Vec<StatusRow>,
    /// Silent Mode is on.
    pub(crate) silent: bool,
    /// Mirror reads refused (401/403).
    pub(crate) refused: u64,
    /// Pull mirrors taken from the project list without a read of their own.
    pub(crate) not_read_again: u64,
    /// What pre-flight found.
    pub(crate) pre: Preflight,
}

impl Survey {
    /// Rows GitLab kept answering an error for.
    pub(crate) fn unreadable(&self) -> u64 {
        self.rows.iter().filter(|r| r.diagnosis == Some(Diagnosis::Unreadable)).count() as u64
    }

    /// The report of this survey and the token watch, made now.
    pub(crate) fn report(self, tokens: TokenReport) -> HealthReport {
        HealthReport {
            scrape_errors: self.refused + self.unreadable(),
            refused: self.refused,
            rows: self.rows,
            tokens_failing: tokens.failing(),
            tokens: tokens.expiries,
            generated_at: OffsetDateTime::now_utc(),
        }
    }
}

/// Read the health of every mirror in scope, `concurrency` projects at a time. Without
/// `details`, pull mirrors the project list shows finished are not read again.
pub(crate) async fn survey(
    client: &GitLabClient,
    scope: &Scope,
    pre: Preflight,
    details: bool,
    concurrency: u16,
    progress: &indicatif::ProgressBar,
) -> Result<Survey, AppError> {
    let now = OffsetDateTime::now_utc();
    let silent = pre.silent_mode == Some(true);
    let users = ReadContext::skipping_forbidden();
    let users = if details { users } else { users.trusting_the_list() };
    let mut reads = inventory::projects(client, scope, &pre)
        .map_ok(|p| inventory::read_project(client, &users, p, scope.mirrors))
        .try_buffer_unordered(usize::from(concurrency));
    let mut rows = Vec::new();
    while let Some(project_reads) = reads.try_next().await? {
        progress.inc(1);
        rows.extend(project_reads.iter().map(|r| StatusRow::of(&facts::facts_of(r), now, silent)));
    }
    rows.sort_by_key(|r| (r.project_id, r.mirror_type, r.mirror_id));
    Ok(Survey {
        rows,
        silent,
        refused: users.skipped(),
        not_read_again: users.not_read_again(),
        pre,
    })
}

/// What the token watch found for `status`.
pub(crate) struct TokenReport {
    /// One verdict per watched token, the GitLab API token's last.
    pub(crate) verdicts: Vec<TokenVerdict>,
    /// Each token's expiry, for the metrics.
    pub(crate) expiries: Vec<TokenExpiry>,
}

impl TokenReport {
    /// A token is invalid, expired or within 7 days of expiry.
    pub(crate) fn failing(&self) -> bool {
        self.verdicts.iter().any(|v| v.severity == Severity::Refuse)
    }
}

/// The token watch for `status`: every service token given (its mirrors counted by host in
/// `rows`) and the GitLab API token at `gitlab`, as pre-flight described it.
pub(crate) async fn watch_tokens(
    http: &HttpSettings,
    creds: &Credentials,
    rows: &[StatusRow],
    pre: &Preflight,
    gitlab: &Url,
) -> Result<TokenReport, AppError> {
    let probe = ProbeRequest::default();
    let states = probing::watch_tokens(http, creds, &probe).await?;
    let on_host = probing::service_rows_by_host(
        rows.iter().filter(|r| r.health != Health::Ignored).map(|r| r.url.as_str()),
    );
    let gitlab_host = gitlab.host_str().unwrap_or_default();
    let mut verdicts = probing::verdicts(&states, &on_host, WatchMode::Status);
    verdicts.push(probing::gitlab_token_verdict(pre, gitlab_host, WatchMode::Status));
    let gitlab_state = probing::gitlab_token_state(
        gitlab_host,
        pre.token_expires_at.as_deref(),
        pre.token_described,
    );
    let expiry = |s: &TokenState| match s.expiry {
        Expiry::At(at) => Some(at),
        Expiry::Never | Expiry::Unknown => None,
    };
    // `watched` is the order of `states`; the port tells two credentials of one host apart.
    let mut expiries: Vec<TokenExpiry> = probing::watched(creds, &probe)
        .zip(&states)
        .map(|((cred, _), s)| TokenExpiry {
            host: TokenExpiry::host_port(&s.host, cred.port.filter(|&p| p != 443)),
            token: "service",
            expires_at: expiry(s),
        })
        .collect();
    expiries.push(TokenExpiry {
        host: TokenExpiry::host_port(&gitlab_state.host, gitlab.port()),
        token: "gitlab-api",
        expires_at: expiry(&gitlab_state),
    });
    Ok(TokenReport { verdicts, expiries })
}
