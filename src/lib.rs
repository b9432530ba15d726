//! glmirror: move every GitLab repository mirror onto one service account's credentials and
//! repair broken mirror URLs, through a reviewable CSV plan.
//!
//! The library is laid out as: [`cli`] (argument definitions), [`cmd`] (one module per
//! subcommand: validation and orchestration), [`rewrite`] (pure URL rules), [`plan`] (the plan
//! model, diagnosis and CSV), [`gitlab`] (the REST client), [`sim`] (the GitLab simulator),
//! plus [`config`] (arguments and environment → typed requests), [`inventory`] (reading the
//! instance), [`apply`] (the executor and journal), [`error`], `redact` (masking, a leaf),
//! [`output`] and [`logging`].
//!
//! Items are `pub(crate)` unless the binary, the integration tests (`tests/it`) or the
//! benchmark (`examples/bench.rs`) use them. The library exists for those three, so its
//! documentation is built with `--document-private-items` (as `.ci/run` does), where links
//! to crate-private items resolve.
#![allow(rustdoc::private_intra_doc_links)]
#![warn(unreachable_pub)]

pub mod apply;
pub mod cli;
pub(crate) mod cmd;
pub(crate) mod config;
pub(crate) mod credentials;
pub mod error;
pub mod githost;
pub mod gitlab;
pub(crate) mod health;
pub(crate) mod inventory;
pub mod logging;
pub(crate) mod output;
pub mod plan;
pub mod probe;
pub(crate) mod redact;
pub mod rewrite;
pub mod sim;

use cli::{Cli, Command};
use error::{AppError, ExitCode};

/// Run one parsed command line to completion.
pub async fn run(cli: Cli) -> Result<ExitCode, AppError> {
    // Every token this process can see is scrubbed from every output, whichever command
    // reads it (tokens read later, from files or a credentials file, register themselves).
    config::register_env_secrets();
    let settings = config::Settings::from_args(&cli.global);
    let conn = || config::ConnectionRequest::from_args(&cli.global);
    match &cli.command {
        Command::Plan(args) => {
            cmd::plan::run(&settings, conn(), config::PlanRequest::from_args(args)?).await
        }
        Command::Apply(args) => {
            cmd::apply::run(&settings, conn(), config::ApplyRequest::from_args(args)?).await
        }
        Command::Status(args) => {
            cmd::status::run(&settings, conn(), config::StatusRequest::from_args(args)?).await
        }
        Command::Rewrite(args) => cmd::rewrite::run(config::RewriteRequest::from_args(args)?),
        Command::Demo(args) => cmd::demo::run(&settings, args).await,
        Command::Sim(args) => cmd::sim::run(args).await,
        Command::Completions(args) => cmd::docs::completions(args),
        Command::Man => cmd::docs::man(),
    }
}

/// The longest error or hint line printed, in characters: every message quotes at most a short
/// excerpt of any input, and this is the last guard that an error stays one readable line.
const MAX_ERROR_LINE_CHARS: usize = 2000;

/// Print an error the way every command does: `glmirror: error: …` on one line, an optional
/// hint line, and with `-v` the debug form. Text is scrubbed (`redact::scrub`), made safe for
/// the terminal, folded to one line and bounded first.
pub fn report_error(err: &AppError, verbose: u8) {
    eprintln!("glmirror: error: {}", redact::excerpt(&err.to_string(), MAX_ERROR_LINE_CHARS));
    if let Some(hint) = err.hint() {
        eprintln!("  hint: {}", redact::excerpt(&hint, MAX_ERROR_LINE_CHARS));
    }
    if verbose > 1 {
        // The chain of causes, each through the same scrubbing and bound as the message.
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            eprintln!("  caused by: {}", redact::excerpt(&cause.to_string(), MAX_ERROR_LINE_CHARS));
            source = cause.source();
        }
    }
}

/// The longest line of a command-line error printed, in characters.
const MAX_USAGE_LINE_CHARS: usize = 300;

/// Print a command-line parsing error (or `--help`/`--version`, which clap reports the same
/// way) and return its exit code. Each line of an error is cut to a few hundred characters, so
/// an argument of 100 kB quoted back by clap stays short; help and version are printed whole.
pub fn report_usage_error(err: &clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return std::process::ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
    }
    for line in err.render().to_string().lines() {
        let line = redact::sanitize_for_terminal(line);
        if line.chars().count() > MAX_USAGE_LINE_CHARS {
            let cut: String = line.chars().take(MAX_USAGE_LINE_CHARS).collect();
            eprintln!("{cut}…");
        } else {
            eprintln!("{line}");
        }
    }
    std::process::ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}
