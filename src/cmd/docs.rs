//! `glmirror completions` and `glmirror man`: generated from the clap definition.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{AppError, ExitCode};

/// Print a completion script for the requested shell.
pub fn completions(args: CompletionsArgs) -> Result<ExitCode, AppError> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "glmirror", &mut std::io::stdout());
    Ok(ExitCode::Success)
}

/// Print the man page in roff.
pub fn man() -> Result<ExitCode, AppError> {
    let man = clap_mangen::Man::new(Cli::command());
    man.render(&mut std::io::stdout()).map_err(|e| AppError::io("cannot write", "<stdout>", e))?;
    Ok(ExitCode::Success)
}
