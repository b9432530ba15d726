//! glmirror: move every GitLab repository mirror onto one service account's credentials and
//! repair broken mirror URLs, through a reviewable CSV plan.
//!
//! The library is laid out as: [`cli`] (argument definitions), [`cmd`] (one module per
//! subcommand: validation and orchestration), [`rewrite`] (pure URL rules), [`plan`] (the plan
//! model, diagnosis and CSV), [`gitlab`] (the REST client), [`sim`] (the GitLab simulator),
//! plus [`error`], [`secret`], [`logging`] and [`output`].

pub mod apply;
pub mod cli;
pub mod cmd;
pub mod credentials;
pub mod error;
pub mod githost;
pub mod gitlab;
pub mod logging;
pub mod output;
pub mod plan;
pub mod probe;
pub mod rewrite;
pub mod secret;
pub mod sim;

use cli::{Cli, Command};
use error::{AppError, ExitCode};

/// Run one parsed command line to completion.
pub async fn run(cli: Cli) -> Result<ExitCode, AppError> {
    let global = cli.global;
    match cli.command {
        Command::Plan(args) => cmd::plan::run(&global, args).await,
        Command::Apply(args) => cmd::apply::run(&global, args).await,
        Command::Status(args) => cmd::status::run(&global, args).await,
        Command::Rewrite(args) => cmd::rewrite::run(&global, args).await,
        Command::Demo(args) => cmd::demo::run(&global, args).await,
        Command::Sim(args) => cmd::sim::run(&global, args).await,
        Command::Completions(args) => cmd::docs::completions(args),
        Command::Man => cmd::docs::man(),
    }
}

/// Print an error the way every command does: `glmirror: error: …` on one line, an optional
/// hint line, and with `-v` the debug form. Text is sanitized and masked first.
pub fn report_error(err: &AppError, verbose: u8) {
    let message = output::sanitize_for_terminal(&secret::mask_userinfo(&err.to_string()));
    eprintln!("glmirror: error: {message}");
    if let Some(hint) = err.hint() {
        eprintln!("  hint: {}", output::sanitize_for_terminal(&secret::mask_userinfo(&hint)));
    }
    if verbose > 1 {
        eprintln!("{}", secret::mask_userinfo(&format!("{err:?}")));
    }
}
