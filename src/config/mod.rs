//! Arguments and environment become typed requests here, and only here (besides the log
//! filter in `logging`): the GitLab URL and token, the service credentials, `--map` rules, the
//! scope, and one request per command. The commands and the domain never see clap types or
//! read the environment for settings. Two reads are not settings and stay where they are
//! used: the local git server (`githost`) passes `PATH` on to the `git` it runs, and `demo`
//! makes its directory in the system's temporary directory (`TMPDIR`).
//!
//! Size: about 630 lines of code, one request builder per command plus the shared pieces
//! (connection, rules, scope, probe limits); the credentials and token files are in their
//! own modules.

mod credentials;
mod error;
pub(crate) mod tokens;

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

pub(crate) use credentials::{MIRROR_TOKEN_ENV, require_tokens};
pub(crate) use error::ConfigError;

use crate::cli::{
    ApplyArgs, GlobalArgs, MirrorSelection, PlanArgs, ProbeLimitArgs, RewriteArgs, RuleArgs,
    ScopeArgs, StatusArgs, StatusFormat,
};
use crate::credentials::Credentials;
use crate::redact;
use crate::rewrite::{self, PrefixMap, Rules};

/// Environment variables consulted, in order, for the GitLab base URL.
pub(crate) const GITLAB_URL_ENV: &[&str] = &["GITLAB_URL", "GITLAB_HOST", "CI_SERVER_URL"];
/// Environment variables consulted, in order, for the GitLab API token.
pub(crate) const GITLAB_TOKEN_ENV: &[&str] = &["GITLAB_TOKEN", "GITLAB_PRIVATE_TOKEN"];

/// Settings every command shares: how to talk to GitLab and how much to say.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Extra PEM roots (`--ca-cert`).
    pub(crate) ca_cert: Option<PathBuf>,
    /// Requests in flight at once.
    pub(crate) concurrency: u16,
    /// `-q`: only errors on stderr.
    pub(crate) quiet: bool,
    /// Never draw a progress bar.
    pub(crate) no_progress: bool,
}

impl Settings {
    /// From the global options.
    pub(crate) fn from_args(global: &GlobalArgs) -> Settings {
        Settings {
            ca_cert: global.ca_cert.clone(),
            concurrency: global.concurrency,
            quiet: global.quiet,
            no_progress: global.no_progress,
        }
    }
}

/// Where to reach GitLab and with which token.
pub(crate) struct Connection {
    /// Base URL of the instance (no `/api/v4`), without credentials.
    pub(crate) base_url: Url,
    /// The API token.
    pub(crate) token: SecretString,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("base_url", &self.base_url.as_str())
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// The GitLab URL and token as given (flag or environment), checked only when resolved, so a
/// command can report a bad plan file before a missing URL.
#[derive(Debug)]
pub(crate) enum ConnectionRequest {
    /// From the command line and the environment.
    Given {
        /// `--gitlab-url`, else the first set variable of [`GITLAB_URL_ENV`].
        url: Option<String>,
        /// `--gitlab-token-file`.
        token_file: Option<PathBuf>,
        /// The first set variable of [`GITLAB_TOKEN_ENV`].
        env_token: Option<SecretString>,
    },
    /// Already resolved (the demo's simulator).
    Resolved(Connection),
}

impl ConnectionRequest {
    /// Read the flags and the environment.
    pub(crate) fn from_args(global: &GlobalArgs) -> ConnectionRequest {
        let url = global.gitlab_url.clone().or_else(|| {
            GITLAB_URL_ENV
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        });
        let env_token = match global.gitlab_token_file {
            Some(_) => None,
            None => tokens::token_from_env(GITLAB_TOKEN_ENV).map(|(token, _)| token),
        };
        ConnectionRequest::Given { url, token_file: global.gitlab_token_file.clone(), env_token }
    }

    /// Check the URL and read the token.
    pub(crate) fn resolve(self) -> Result<Connection, ConfigError> {
        let (url, token_file, env_token) = match self {
            ConnectionRequest::Resolved(conn) => return Ok(conn),
            ConnectionRequest::Given { url, token_file, env_token } => (url, token_file, env_token),
        };
        let raw = url.ok_or_else(|| {
            ConfigError::invalid_hint(
                "no GitLab URL given",
                "pass --gitlab-url https://gitlab.example.com or set GITLAB_URL",
            )
        })?;
        let base_url = parse_gitlab_url(&raw)?;
        let token = match token_file {
            Some(path) => tokens::read_token_file(&path, "--gitlab-token-file")?,
            None => env_token.ok_or_else(|| {
                ConfigError::invalid_hint(
                    "no GitLab API token",
                    "set GITLAB_TOKEN (a token with the `api` scope) or pass --gitlab-token-file PATH",
                )
            })?,
        };
        Ok(Connection { base_url, token })
    }
}

/// Register the tokens of the well-known environment variables (the GitLab token's and
/// [`MIRROR_TOKEN_ENV`]) with the scrubber, so that no output shows them even in a command
/// that does not use them (GitLab may quote a service token in any mirror's error).
pub(crate) fn register_env_secrets() {
    for name in GITLAB_TOKEN_ENV.iter().chain([&MIRROR_TOKEN_ENV]) {
        let _ = tokens::token_from_var(name);
    }
}

/// Parse and check a GitLab base URL: http(s) only, no credentials, plain http only on
/// loopback. A trailing `/api/v4` is tolerated and removed.
pub(crate) fn parse_gitlab_url(raw: &str) -> Result<Url, ConfigError> {
    let raw = raw.trim();
    // GITLAB_HOST is sometimes a bare host name.
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("https://{raw}") };
    let mut url = Url::parse(&with_scheme).map_err(|e| {
        ConfigError::invalid(format!("invalid GitLab URL {}: {e}", redact::excerpt(raw, 200)))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid_hint(
            "the GitLab URL must not contain credentials",
            "put the token in GITLAB_TOKEN or --gitlab-token-file instead",
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(ConfigError::invalid_hint(
                format!(
                    "refusing plain http:// for {}: the token would travel in clear text",
                    url.host_str().unwrap_or("")
                ),
                "use https:// (plain http is only accepted for loopback addresses)",
            ));
        }
        other => {
            return Err(ConfigError::invalid(format!("unsupported GitLab URL scheme {other}:")));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid("the GitLab URL must not have a query or fragment"));
    }
    let path = url.path().trim_end_matches('/').trim_end_matches("/api/v4").to_owned();
    url.set_path(&format!("{path}/"));
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Which mirror directions to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mirrors {
    /// Pull mirrors.
    pub(crate) pull: bool,
    /// Push (remote) mirrors.
    pub(crate) push: bool,
}

impl Mirrors {
    /// Both directions.
    pub(crate) const ALL: Mirrors = Mirrors { pull: true, push: true };
    /// Pull mirrors only.
    pub(crate) const PULL: Mirrors = Mirrors { pull: true, push: false };
}

impl From<MirrorSelection> for Mirrors {
    fn from(s: MirrorSelection) -> Mirrors {
        match s {
            MirrorSelection::Pull => Mirrors::PULL,
            MirrorSelection::Push => Mirrors { pull: false, push: true },
            MirrorSelection::All => Mirrors::ALL,
        }
    }
}

/// Which projects and mirrors a command looks at.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// `--group` paths or ids (subgroups included).
    pub(crate) groups: Vec<String>,
    /// `--project` paths or ids.
    pub(crate) projects: Vec<String>,
    /// Which directions.
    pub(crate) mirrors: Mirrors,
    /// Plan archived projects too.
    pub(crate) include_archived: bool,
}

impl Scope {
    /// Every project the token can administer, both directions.
    pub(crate) fn whole_instance() -> Scope {
        Scope {
            groups: Vec::new(),
            projects: Vec::new(),
            mirrors: Mirrors::ALL,
            include_archived: false,
        }
    }

    /// The whole instance rather than some groups or projects.
    pub(crate) fn is_whole_instance(&self) -> bool {
        self.groups.is_empty() && self.projects.is_empty()
    }

    fn from_args(args: &ScopeArgs) -> Scope {
        Scope {
            groups: args.groups.clone(),
            projects: args.projects.clone(),
            mirrors: args.mirrors.into(),
            include_archived: args.include_archived,
        }
    }
}

/// The URL rules' inputs shared by `plan` and `rewrite`.
#[derive(Debug, Clone)]
pub(crate) struct RuleRequest {
    /// Service credentials per source host.
    pub(crate) credentials: Credentials,
    /// `--map` rules.
    pub(crate) maps: Vec<PrefixMap>,
    /// What the user should hear about the `--map` rules (see [`parse_maps`]).
    pub(crate) map_warnings: Vec<String>,
    /// `--prefer-https`.
    pub(crate) prefer_https: bool,
    /// `--mirror-user`.
    pub(crate) mirror_user: Option<String>,
}

impl RuleRequest {
    fn from_args(args: &RuleArgs) -> Result<RuleRequest, ConfigError> {
        let maps = parse_maps(&args.maps)?;
        Ok(RuleRequest {
            credentials: credentials::from_args(&args.credentials)?,
            maps: maps.maps,
            map_warnings: maps.warnings,
            prefer_https: args.prefer_https,
            mirror_user: args.mirror_user.clone(),
        })
    }

    /// The rewrite rules.
    pub(crate) fn rules(&self) -> Rules {
        self.credentials.rules(self.maps.clone(), self.prefer_https)
    }
}

/// `--map` rules as parsed, and warnings for the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ParsedMaps {
    /// The rules, in the order given.
    pub(crate) maps: Vec<PrefixMap>,
    /// One line per rule whose OLD does not end at a boundary (`/` or `:`).
    pub(crate) warnings: Vec<String>,
}

/// Parse every `--map OLD=NEW`: the one parser of `--map`. The same OLD twice is a usage
/// error (only one of the two could ever win). An OLD that does not end in `/` or `:` also
/// matches longer names (`https://github.com/a` matches `https://github.com/abc/…`, and
/// `https://github.com` matches `https://github.com.evil.example/…`): that is allowed, like
/// git's `insteadOf`, but warned about.
pub(crate) fn parse_maps(specs: &[String]) -> Result<ParsedMaps, ConfigError> {
    let mut parsed = ParsedMaps::default();
    for spec in specs {
        let map =
            rewrite::parse_map(spec).map_err(|e| ConfigError::invalid(format!("--map: {e}")))?;
        let old = redact::excerpt(&map.from, 200);
        if parsed.maps.iter().any(|m| m.from == map.from) {
            return Err(ConfigError::invalid_hint(
                format!("--map {old} is given twice"),
                "give each OLD prefix once: only one of the two rules could ever apply",
            ));
        }
        if !map.from.ends_with(['/', ':']) {
            parsed.warnings.push(format!(
                "--map {old} does not end in `/` or `:`, so it also matches every URL that only                  starts with it, such as {old}-other/…; end it with `/` if only this path is meant"
            ));
        }
        parsed.maps.push(map);
    }
    Ok(parsed)
}

/// Whether and how service credentials are probed (docs/remote-probe.md), and how the
/// probe and the token watch reach the source hosts.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProbeRequest {
    /// Probe the rows that get service credentials (`plan --probe`; `apply` unless
    /// `--no-probe`).
    pub(crate) enabled: bool,
    /// `--no-probe-host`: source hosts this machine cannot reach (normalized). Neither probed
    /// nor asked about their token.
    pub(crate) skip_hosts: Vec<String>,
    /// TLS and proxy settings for the probe and the token watch; `None`: `--ca-cert` and the
    /// environment's `HTTPS_PROXY`/`NO_PROXY`, as for the API (the demo passes its stand-in's).
    pub(crate) http: Option<crate::probe::HttpSettings>,
    /// Host protection: `--probe-concurrency`, `--probe-per-host`, and the fixed failed-login
    /// limit and breaker.
    pub(crate) limits: crate::probe::Limits,
}

/// The largest `--probe-concurrency`.
pub(crate) const MAX_PROBE_CONCURRENCY: u32 = 64;
/// The largest `--probe-per-host`.
pub(crate) const MAX_PROBE_PER_HOST: u32 = 32;

/// The probe limits from `--probe-concurrency` and `--probe-per-host` (unset: the defaults).
/// Only the concurrency is configurable: the failed-login limit and the breaker protect this
/// machine from GitLab's IP ban and stay as they are.
pub(crate) fn probe_limits(args: &ProbeLimitArgs) -> Result<crate::probe::Limits, ConfigError> {
    let mut limits = crate::probe::Limits::default();
    let check = |flag: &str, value: u32, max: u32| {
        if (1..=max).contains(&value) {
            Ok(value as usize)
        } else {
            Err(ConfigError::invalid_hint(
                format!("{flag} {value} is out of range: it must be between 1 and {max}"),
                format!("pass {flag} N with 1 <= N <= {max}, or leave it out for the default"),
            ))
        }
    };
    if let Some(n) = args.probe_concurrency {
        limits.overall = check("--probe-concurrency", n, MAX_PROBE_CONCURRENCY)?;
    }
    match args.probe_per_host {
        Some(n) => limits.per_host = check("--probe-per-host", n, MAX_PROBE_PER_HOST)?,
        // A lower overall limit given alone lowers the per-host default with it.
        None => limits.per_host = limits.per_host.min(limits.overall),
    }
    if limits.per_host > limits.overall {
        return Err(ConfigError::invalid_hint(
            format!(
                "--probe-per-host {} is above the overall limit of {} probes in flight",
                limits.per_host, limits.overall
            ),
            "raise --probe-concurrency as well, or lower --probe-per-host",
        ));
    }
    Ok(limits)
}

impl ProbeRequest {
    /// Probing on or off, every source host reached as the environment says.
    pub(crate) fn enabled(enabled: bool) -> ProbeRequest {
        ProbeRequest { enabled, ..ProbeRequest::default() }
    }

    fn from_args(
        enabled: bool,
        skip: &[String],
        limits: &ProbeLimitArgs,
        creds: &Credentials,
    ) -> Result<ProbeRequest, ConfigError> {
        let limits = probe_limits(limits)?;
        let mut skip_hosts = Vec::new();
        for raw in skip {
            let host = crate::rewrite::normalize_host(raw.trim()).map_err(|e| {
                ConfigError::invalid(format!(
                    "--no-probe-host {}: {e}",
                    redact::sanitize_for_terminal(raw)
                ))
            })?;
            if !creds.hosts.iter().any(|h| h.host == host) {
                return Err(ConfigError::invalid_hint(
                    format!("--no-probe-host {host} is not a source host"),
                    "name a host given with --source-host (or in the --credentials file)",
                ));
            }
            if !skip_hosts.contains(&host) {
                skip_hosts.push(host);
            }
        }
        Ok(ProbeRequest { enabled, skip_hosts, http: None, limits })
    }

    /// Whether `host` is probed (and its token watched).
    pub(crate) fn reaches(&self, host: &str) -> bool {
        !self.skip_hosts.iter().any(|h| h == host)
    }
}

/// `glmirror plan`.
#[derive(Debug)]
pub(crate) struct PlanRequest {
    /// Which projects.
    pub(crate) scope: Scope,
    /// URL rules and target mirror user.
    pub(crate) rules: RuleRequest,
    /// Where the plan goes (`-`: stdout).
    pub(crate) out: PathBuf,
    /// `--probe`, `--no-probe-host`.
    pub(crate) probe: ProbeRequest,
}

impl PlanRequest {
    /// From `glmirror plan`'s arguments.
    pub(crate) fn from_args(args: &PlanArgs) -> Result<PlanRequest, ConfigError> {
        let rules = RuleRequest::from_args(&args.rules)?;
        let probe = ProbeRequest::from_args(
            args.probe,
            &args.no_probe_hosts,
            &args.probe_limits,
            &rules.credentials,
        )?;
        Ok(PlanRequest {
            scope: Scope::from_args(&args.scope),
            rules,
            out: args.out.clone(),
            probe,
        })
    }
}

/// `glmirror apply`.
#[derive(Debug)]
pub(crate) struct ApplyRequest {
    /// The reviewed plan.
    pub(crate) plan: PathBuf,
    /// Service credentials per source host.
    pub(crate) credentials: Credentials,
    /// No confirmation prompt.
    pub(crate) yes: bool,
    /// Write nothing.
    pub(crate) dry_run: bool,
    /// The journal (default: the plan with extension `.journal`).
    pub(crate) journal: PathBuf,
    /// The report (default: the plan with extension `.report.csv`).
    pub(crate) report: PathBuf,
    /// Wait for each mirror's update.
    pub(crate) verify: bool,
    /// How long `verify` waits for one mirror.
    pub(crate) verify_timeout: Duration,
    /// Apply rows whose `new_url` a reviewer edited.
    pub(crate) accept_edited_urls: bool,
    /// Where the per-plan run locks live (see [`lock_dir`]).
    pub(crate) lock_dir: PathBuf,
    /// Probe before each service-credential write (default on; `--no-probe`,
    /// `--no-probe-host`).
    pub(crate) probe: ProbeRequest,
    /// `--allow-expiring-token`: a service token within 7 days of expiry warns instead of
    /// refusing.
    pub(crate) allow_expiring_token: bool,
}

/// The per-user directory for `apply`'s run locks: `$XDG_RUNTIME_DIR/glmirror` when that is
/// set (an absolute path), else `glmirror-<uid>` in the temporary directory (`apply` refuses
/// it unless only this user can write to it).
pub(crate) fn lock_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && dir.is_absolute()
    {
        return dir.join("glmirror");
    }
    let user = user_id()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "user".to_owned());
    let user: String =
        user.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    std::env::temp_dir().join(format!("glmirror-{user}"))
}

/// This process's uid, where it can be read without `libc` (Linux: the owner of
/// `/proc/self`).
fn user_id() -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid().to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

impl ApplyRequest {
    /// From `glmirror apply`'s arguments.
    pub(crate) fn from_args(args: &ApplyArgs) -> Result<ApplyRequest, ConfigError> {
        let credentials = credentials::from_args(&args.credentials)?;
        let probe = ProbeRequest::from_args(
            !args.no_probe,
            &args.no_probe_hosts,
            &args.probe_limits,
            &credentials,
        )?;
        Ok(ApplyRequest {
            credentials,
            probe,
            allow_expiring_token: args.allow_expiring_token,
            ..ApplyRequest::for_plan(args.plan.clone(), Credentials::default())
        }
        .with_paths(args.journal.clone(), args.report.clone())
        .with_flags(args.yes, args.dry_run, args.verify, args.verify_timeout)
        .with_edited_urls(args.accept_edited_urls))
    }

    /// A request for `plan` with default file names and no flags.
    pub(crate) fn for_plan(plan: PathBuf, credentials: Credentials) -> ApplyRequest {
        ApplyRequest {
            journal: plan.with_extension("journal"),
            report: plan.with_extension("report.csv"),
            plan,
            credentials,
            yes: false,
            dry_run: false,
            verify: false,
            verify_timeout: Duration::from_secs(300),
            accept_edited_urls: false,
            lock_dir: lock_dir(),
            probe: ProbeRequest::enabled(true),
            allow_expiring_token: false,
        }
    }

    fn with_edited_urls(mut self, accept: bool) -> ApplyRequest {
        self.accept_edited_urls = accept;
        self
    }

    fn with_paths(mut self, journal: Option<PathBuf>, report: Option<PathBuf>) -> ApplyRequest {
        if let Some(j) = journal {
            self.journal = j;
        }
        if let Some(r) = report {
            self.report = r;
        }
        self
    }

    fn with_flags(mut self, yes: bool, dry_run: bool, verify: bool, timeout: u64) -> ApplyRequest {
        self.yes = yes;
        self.dry_run = dry_run;
        self.verify = verify;
        self.verify_timeout = Duration::from_secs(timeout);
        self
    }
}

/// `glmirror status`.
#[derive(Debug)]
pub(crate) struct StatusRequest {
    /// Which projects.
    pub(crate) scope: Scope,
    /// Output format.
    pub(crate) format: StatusFormat,
    /// Where the report goes (`None`: stdout), written atomically.
    pub(crate) out: Option<PathBuf>,
    /// Also write the report as CSV here.
    pub(crate) csv: Option<PathBuf>,
    /// Read every mirror's details, also of pull mirrors the project list shows finished.
    pub(crate) details: bool,
    /// Service credentials, for the token watch only.
    pub(crate) credentials: Credentials,
}

impl StatusRequest {
    /// From `glmirror status`'s arguments.
    pub(crate) fn from_args(args: &StatusArgs) -> Result<StatusRequest, ConfigError> {
        Ok(StatusRequest {
            scope: Scope::from_args(&args.scope),
            format: args.format,
            out: args.out.clone(),
            csv: args.csv.clone(),
            details: args.details,
            credentials: credentials::from_args(&args.credentials)?,
        })
    }
}

/// `glmirror rewrite`.
#[derive(Debug)]
pub(crate) struct RewriteRequest {
    /// The rules.
    pub(crate) rules: Rules,
    /// URLs given as arguments (none: read stdin).
    pub(crate) urls: Vec<String>,
    /// Warnings about the rules (printed on stderr).
    pub(crate) warnings: Vec<String>,
}

impl RewriteRequest {
    /// From `glmirror rewrite`'s arguments.
    pub(crate) fn from_args(args: &RewriteArgs) -> Result<RewriteRequest, ConfigError> {
        let rules = RuleRequest::from_args(&args.rules)?;
        Ok(RewriteRequest {
            rules: rules.rules(),
            urls: args.urls.clone(),
            warnings: rules.map_warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_limits_take_their_defaults_from_each_other() {
        let limits =
            |c, h| probe_limits(&ProbeLimitArgs { probe_concurrency: c, probe_per_host: h });
        let (d, o) = (crate::probe::Limits::default(), limits(None, None).unwrap());
        assert_eq!((o.overall, o.per_host), (d.overall, d.per_host));
        // A low overall limit alone lowers the per-host default with it.
        let o = limits(Some(2), None).unwrap();
        assert_eq!((o.overall, o.per_host), (2, 2));
        let o = limits(Some(16), Some(1)).unwrap();
        assert_eq!((o.overall, o.per_host), (16, 1));
        // Given both, per-host above overall is a usage error.
        assert!(limits(Some(2), Some(3)).unwrap_err().to_string().contains("--probe-per-host 3"));
        assert!(limits(Some(0), None).is_err());
    }

    #[test]
    fn gitlab_urls_are_checked() {
        assert_eq!(
            parse_gitlab_url("https://gitlab.example.com").unwrap().as_str(),
            "https://gitlab.example.com/"
        );
        assert_eq!(
            parse_gitlab_url("gitlab.example.com").unwrap().as_str(),
            "https://gitlab.example.com/"
        );
        assert_eq!(
            parse_gitlab_url("https://example.com/gitlab/api/v4/").unwrap().as_str(),
            "https://example.com/gitlab/"
        );
        assert!(parse_gitlab_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_gitlab_url("http://localhost:8080").is_ok());
        assert!(parse_gitlab_url("http://[::1]:8080").is_ok());
        assert!(parse_gitlab_url("http://gitlab.example.com").is_err());
        assert!(parse_gitlab_url("https://u:p@gitlab.example.com").is_err());
        assert!(parse_gitlab_url("ftp://gitlab.example.com").is_err());
    }

    #[test]
    fn apply_paths_default_next_to_the_plan() {
        let req = ApplyRequest::for_plan("dir/plan.csv".into(), Credentials::default());
        assert_eq!(req.journal, PathBuf::from("dir/plan.journal"));
        assert_eq!(req.report, PathBuf::from("dir/plan.report.csv"));
        let req = req.with_paths(Some("j".into()), None);
        assert_eq!(req.journal, PathBuf::from("j"));
        assert_eq!(req.report, PathBuf::from("dir/plan.report.csv"));
    }

    #[test]
    fn maps_refuse_a_repeated_old_and_warn_about_loose_prefixes() {
        let specs = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let parsed = parse_maps(&specs(&["https://a.example/o/=https://b.example/o/"])).unwrap();
        assert_eq!(parsed.maps.len(), 1);
        assert!(parsed.warnings.is_empty());
        let parsed = parse_maps(&specs(&["git@a.example:=https://a.example/"])).unwrap();
        assert!(parsed.warnings.is_empty(), "`:` is a boundary too");
        for loose in ["https://github.com", "https://github.com/a"] {
            let parsed = parse_maps(&specs(&[&format!("{loose}=https://x.example/")])).unwrap();
            assert_eq!(parsed.warnings.len(), 1);
            assert!(
                parsed.warnings[0].contains(&format!("{loose}-other/…")),
                "{:?}",
                parsed.warnings
            );
        }
        let twice = specs(&[
            "https://a.example/=https://b.example/",
            "https://a.example/=https://c.example/",
        ]);
        let e = parse_maps(&twice).unwrap_err();
        assert!(e.to_string().contains("https://a.example/ is given twice"), "{e}");
        assert!(matches!(e, ConfigError::Invalid { .. }));
        // Two different OLDs, one a prefix of the other, are fine: the longest wins.
        assert!(
            parse_maps(&specs(&[
                "https://a.example/=https://b.example/",
                "https://a.example/x/=https://c.example/"
            ]))
            .is_ok()
        );
    }

    #[test]
    fn scope_directions() {
        assert_eq!(Mirrors::from(MirrorSelection::Push), Mirrors { pull: false, push: true });
        assert!(Scope::whole_instance().is_whole_instance());
    }
}
