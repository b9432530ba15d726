//! `glmirror completions` and `glmirror man`: generated from the clap definition.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{AppError, ExitCode};

/// Print a completion script for the requested shell.
pub(crate) fn completions(args: &CompletionsArgs) -> Result<ExitCode, AppError> {
    // Generate into memory first: clap_complete panics when its writer fails (`| head`).
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "glmirror", &mut script);
    std::io::stdout()
        .write_all(&script)
        .map_err(|e| AppError::io("cannot write", "<stdout>", e))?;
    Ok(ExitCode::Success)
}

/// Print the man page in roff.
pub(crate) fn man() -> Result<ExitCode, AppError> {
    let man = clap_mangen::Man::new(Cli::command());
    man.render(&mut std::io::stdout()).map_err(|e| AppError::io("cannot write", "<stdout>", e))?;
    Ok(ExitCode::Success)
}
