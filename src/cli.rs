//! Command-line definition (clap derive) and nothing else: no validation, no I/O.
//!
//! Every option that carries a secret takes a *path* or an *environment variable*, never the
//! value itself, so a token can never end up in `argv` (visible in `ps`, shell history, CI logs).
//! Turning these raw arguments into checked settings happens in the `cmd` modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Move every GitLab repository mirror onto one service account's credentials, and repair
/// broken mirror URLs: plan (dry run, CSV) → review → apply (journaled, resumable).
#[derive(Debug, Parser)]
#[command(name = "glmirror", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options accepted by every command, before or after the subcommand.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Base URL of the GitLab instance, e.g. `https://gitlab.example.com`
    ///
    /// Falls back to GITLAB_URL, then GITLAB_HOST, then CI_SERVER_URL. Plain http:// is only
    /// accepted for loopback addresses.
    #[arg(long, global = true, value_name = "URL", help_heading = "GitLab connection")]
    pub(crate) gitlab_url: Option<String>,

    /// Read the GitLab API token from this file (default: env GITLAB_TOKEN, then
    /// GITLAB_PRIVATE_TOKEN). The token is never accepted as a command-line value.
    #[arg(long, global = true, value_name = "PATH", help_heading = "GitLab connection")]
    pub(crate) gitlab_token_file: Option<PathBuf>,

    /// Add this PEM file's certificates to the trusted roots (self-signed or internal CA).
    #[arg(long, global = true, value_name = "PATH", help_heading = "GitLab connection")]
    pub(crate) ca_cert: Option<PathBuf>,

    /// How many requests may be in flight at once.
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=64),
        help_heading = "GitLab connection"
    )]
    pub(crate) concurrency: u16,

    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = "Output")]
    pub quiet: bool,

    /// Never draw a progress bar (it is only drawn when stderr is a terminal anyway).
    #[arg(long, global = true, help_heading = "Output")]
    pub(crate) no_progress: bool,
}

/// The subcommands, in workflow order.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Enumerate mirrors, diagnose them and write the reviewable CSV plan. Never writes to GitLab.
    Plan(PlanArgs),
    /// Apply the reviewed `update` rows of a plan, journaled and resumable.
    Apply(ApplyArgs),
    /// Read-only health report of every mirror; exit 3 when any enabled mirror is unhealthy.
    Status(StatusArgs),
    /// Offline: apply the URL rules to URLs (arguments or stdin) and print CSV.
    Rewrite(RewriteArgs),
    /// Run plan → apply → status against the built-in simulator. No GitLab or token needed.
    Demo(DemoArgs),
    /// Run the built-in GitLab simulator alone, for trying commands by hand and for tests.
    Sim(SimArgs),
    /// Print a shell completion script to stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout.
    Man,
}

/// Which projects to look at.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ScopeArgs {
    /// Only projects in this group (full path or id), subgroups included. Repeatable.
    #[arg(long = "group", value_name = "PATH", help_heading = "Scope")]
    pub(crate) groups: Vec<String>,

    /// Only this project (full path or numeric id). Repeatable.
    #[arg(long = "project", value_name = "PATH_OR_ID", help_heading = "Scope")]
    pub(crate) projects: Vec<String>,

    /// Which mirror directions to include.
    #[arg(long, value_enum, default_value_t = MirrorSelection::All, help_heading = "Scope")]
    pub(crate) mirrors: MirrorSelection,

    /// Plan archived projects too (by default they are listed with action `skip`).
    #[arg(long, help_heading = "Scope")]
    pub(crate) include_archived: bool,
}

/// Mirror directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum MirrorSelection {
    /// Pull mirrors only.
    Pull,
    /// Push (remote) mirrors only.
    Push,
    /// Both.
    #[default]
    All,
}

/// Where the service-account credentials come from, and for which hosts.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct CredentialArgs {
    /// A host whose mirrors get the service account's credentials, on https port 443 or the
    /// port named (HOST:PORT). Repeatable.
    #[arg(long = "source-host", value_name = "HOST", help_heading = "Credentials")]
    pub(crate) source_hosts: Vec<String>,

    /// Username sent with the service token. When absent the token itself is the username
    /// (only GitHub accepts that); GitLab sources take any name or `oauth2`, Bitbucket Cloud
    /// `x-token-auth`.
    #[arg(long, value_name = "NAME", help_heading = "Credentials")]
    pub(crate) source_user: Option<String>,

    /// Read the service token from this file (default: env MIRROR_TOKEN).
    #[arg(long, value_name = "PATH", help_heading = "Credentials")]
    pub(crate) source_token_file: Option<PathBuf>,

    /// TOML file with one `[[host]]` entry per source host: host, user, token_env or token_file.
    #[arg(long, value_name = "FILE", help_heading = "Credentials")]
    pub(crate) credentials: Option<PathBuf>,
}

/// URL rules shared by `plan` and `rewrite`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RuleArgs {
    #[command(flatten)]
    pub(crate) credentials: CredentialArgs,

    /// Rewrite a URL prefix, like git's insteadOf (longest match wins). Repeatable.
    #[arg(long = "map", value_name = "OLD_PREFIX=NEW_PREFIX", help_heading = "Rules")]
    pub(crate) maps: Vec<String>,

    /// Turn ssh:// and SCP-style URLs on source hosts into https:// (LFS is not mirrored over SSH).
    #[arg(long, help_heading = "Rules")]
    pub(crate) prefer_https: bool,

    /// GitLab user that pull mirrors should run as after apply (default: the caller).
    #[arg(long, value_name = "USERNAME", help_heading = "Rules")]
    pub(crate) mirror_user: Option<String>,
}

/// `glmirror plan`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # Plan every mirror on the instance, GitHub mirrors onto one machine account
  MIRROR_TOKEN=... glmirror plan --source-host github.com --out plan.csv
  # The same, proving the service token can read every repository first (column `probe`)
  MIRROR_TOKEN=... glmirror plan --source-host github.com --probe --out plan.csv
  # Only one group, pull mirrors only, to stdout
  glmirror plan --group platform --mirrors pull --out -")]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) scope: ScopeArgs,

    #[command(flatten)]
    pub(crate) rules: RuleArgs,

    /// Prove the service credentials: probe every row that would get them with one
    /// read-only git request from this machine, and record the answer in the `probe` column.
    /// Rows the service account cannot read or write keep their credentials.
    #[arg(long, help_heading = "Probe")]
    pub(crate) probe: bool,

    /// Do not probe this source host, nor ask its API about the token (this machine cannot
    /// reach it, although GitLab can). Repeatable.
    #[arg(long = "no-probe-host", value_name = "HOST", help_heading = "Probe")]
    pub(crate) no_probe_hosts: Vec<String>,

    #[command(flatten)]
    pub(crate) probe_limits: ProbeLimitArgs,

    /// Where to write the plan CSV (`-` for stdout). Written atomically.
    #[arg(long, short = 'o', value_name = "FILE", default_value = "plan.csv")]
    pub(crate) out: PathBuf,
}

/// `glmirror apply`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # See what would happen (and which probes would fail), change nothing
  MIRROR_TOKEN=... glmirror apply plan.csv --source-host github.com --dry-run
  # Apply without the confirmation prompt, then check every mirror synced
  MIRROR_TOKEN=... glmirror apply plan.csv --source-host github.com --yes --verify
  # A source host only GitLab's network reaches: write its rows unproven
  MIRROR_TOKEN=... glmirror apply plan.csv --source-host git.corp.example --source-user svc \\
    --no-probe-host git.corp.example --yes")]
pub(crate) struct ApplyArgs {
    /// The reviewed plan CSV.
    #[arg(value_name = "PLAN")]
    pub(crate) plan: PathBuf,

    #[command(flatten)]
    pub(crate) credentials: CredentialArgs,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y', help_heading = "Apply")]
    pub(crate) yes: bool,

    /// Do everything except writing to GitLab; report what would happen.
    #[arg(long, help_heading = "Apply")]
    pub(crate) dry_run: bool,

    /// Journal file (default: PLAN with extension `.journal`).
    #[arg(long, value_name = "FILE", help_heading = "Apply")]
    pub(crate) journal: Option<PathBuf>,

    /// Report CSV (default: PLAN with extension `.report.csv`).
    #[arg(long, value_name = "FILE", help_heading = "Apply")]
    pub(crate) report: Option<PathBuf>,

    /// After writing, wait for each mirror's update to finish and record the result.
    #[arg(long, help_heading = "Apply")]
    pub(crate) verify: bool,

    /// How long `--verify` waits for one mirror, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, help_heading = "Apply")]
    pub(crate) verify_timeout: u64,

    /// Apply rows whose new_url a reviewer changed (they are listed first); without it, a
    /// plan with an edited new_url is refused.
    #[arg(long, help_heading = "Apply")]
    pub(crate) accept_edited_urls: bool,
    /// Write service credentials without probing them first (by default each write is
    /// preceded by one read-only git request from this machine, and skipped if it fails).
    #[arg(long, help_heading = "Probe")]
    pub(crate) no_probe: bool,

    /// Do not probe this source host, nor ask its API about the token (this machine cannot
    /// reach it, although GitLab can): its rows are written unproven. Repeatable.
    #[arg(long = "no-probe-host", value_name = "HOST", help_heading = "Probe")]
    pub(crate) no_probe_hosts: Vec<String>,

    #[command(flatten)]
    pub(crate) probe_limits: ProbeLimitArgs,

    /// Apply even though a service token expires within 7 days.
    #[arg(long, help_heading = "Probe")]
    pub(crate) allow_expiring_token: bool,
}

/// How many probes may be in flight (docs/remote-probe.md, "Host protection"). The
/// failed-login limit and the breaker are fixed: they keep GitLab from banning this machine.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ProbeLimitArgs {
    /// Probes in flight at once over all source hosts (1 to 64; default 8).
    #[arg(long, value_name = "N", help_heading = "Probe")]
    pub(crate) probe_concurrency: Option<u32>,

    /// Probes in flight at once to one source host (1 to 32, at most --probe-concurrency;
    /// default 4, or --probe-concurrency when that is lower). Lower it for a host that limits
    /// concurrent git requests.
    #[arg(long, value_name = "N", help_heading = "Probe")]
    pub(crate) probe_per_host: Option<u32>,
}

/// Output formats of `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum StatusFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array.
    Json,
    /// JUnit XML for a GitLab CI test report (`artifacts:reports:junit`): one test suite per
    /// namespace, one test case per mirror; unhealthy mirrors fail.
    Junit,
    /// Prometheus text exposition format 0.0.4, for node_exporter's textfile collector.
    Prometheus,
}

/// `glmirror status`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # Every mirror on the instance, as a table; exit 3 if any is unhealthy (for cron)
  glmirror status
  # One group as CSV, or JSON for jq
  glmirror status --group platform --format csv
  glmirror status --format json | jq '.[] | select(.health == \"unhealthy\")'
  # Also watch the service token (exit 3 when it is invalid or expires within 7 days)
  MIRROR_TOKEN=... glmirror status --source-host github.com
  # A scheduled GitLab CI job: a JUnit test report and a CSV (examples/gitlab-ci.yml)
  glmirror status --format junit --out mirrors.xml --csv mirrors.csv
  # Metrics for node_exporter's textfile collector, written atomically
  glmirror status --format prometheus --out /var/lib/node_exporter/textfile/glmirror.prom")]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) scope: ScopeArgs,

    #[command(flatten)]
    pub(crate) credentials: CredentialArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    pub(crate) format: StatusFormat,

    /// Write the report to this file instead of stdout, atomically (a reader never sees half
    /// a file; a `.prom` file is made readable by the textfile collector).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,

    /// Also write the report as CSV to this file, atomically, from the same reads.
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,

    /// Read every mirror's details. By default a pull mirror the project list already shows
    /// as `finished` (healthy) is not read again, which saves a request per such mirror; its
    /// row then has no timestamps and GitLab's URL mask.
    #[arg(long)]
    pub(crate) details: bool,
}

/// `glmirror rewrite`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  glmirror rewrite git@github.com:org/repo.git
  MIRROR_TOKEN=... glmirror rewrite --source-host github.com http://github.com/org/repo
  glmirror rewrite --map https://old.example/org/=https://new.example/org/ < urls.txt")]
pub(crate) struct RewriteArgs {
    #[command(flatten)]
    pub(crate) rules: RuleArgs,

    /// URLs to rewrite; when none are given, one URL a line is read from stdin.
    #[arg(value_name = "URL")]
    pub(crate) urls: Vec<String>,
}

/// `glmirror demo`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # Plan, apply and check a simulated instance; files go to a temporary directory
  glmirror demo
  # Keep the plan, report and journal here
  glmirror demo --dir ./demo-out")]
pub(crate) struct DemoArgs {
    /// Directory for plan.csv, the journal and the report (default: a new temporary directory).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// `glmirror sim`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # The demo instance; prints base_url=, admin_token=, maintainer_token=
  glmirror sim
  # A big, slow, rate-limited instance for rehearsing a migration
  glmirror sim --generate 5000 --latency-ms 50 --rate-limit 600
  # GitLab before 17.6 (no PUT /projects/:id/mirror/pull)
  glmirror sim --gitlab-version 17.5.0")]
pub(crate) struct SimArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub(crate) listen: String,

    /// JSON fixture to seed the simulated instance with (default: the built-in demo fixture).
    #[arg(long, value_name = "FILE")]
    pub(crate) fixture: Option<PathBuf>,

    /// Instead of a fixture, generate this many projects with a realistic mix of mirrors.
    #[arg(long, value_name = "N", conflicts_with = "fixture")]
    pub(crate) generate: Option<u32>,

    /// Added latency per request, in milliseconds.
    #[arg(long, value_name = "MS", help_heading = "Faults")]
    pub(crate) latency_ms: Option<u64>,

    /// Fraction (0.0–1.0) of requests answered with a 5xx.
    #[arg(long, value_name = "RATE", help_heading = "Faults")]
    pub(crate) error_rate: Option<f64>,

    /// Fraction (0.0–1.0) of requests whose connection is dropped without an answer.
    #[arg(long, value_name = "RATE", help_heading = "Faults")]
    pub(crate) drop_rate: Option<f64>,

    /// Requests per minute per token before answering 429.
    #[arg(long, value_name = "N", help_heading = "Faults")]
    pub(crate) rate_limit: Option<u32>,

    /// GitLab version to pretend to be (e.g. 17.5.0 has no PUT /mirror/pull).
    #[arg(long, value_name = "VERSION")]
    pub(crate) gitlab_version: Option<String>,

    /// Seed for the fault knobs' random choices.
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
}

/// `glmirror completions`
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to generate for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_work_after_the_subcommand() {
        let cli = Cli::try_parse_from(["glmirror", "rewrite", "--concurrency", "8", "x"])
            .expect("parses");
        assert_eq!(cli.global.concurrency, 8);
    }
}
