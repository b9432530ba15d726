//! `glmirror apply`.

use crate::cli::{ApplyArgs, GlobalArgs};
use crate::error::{AppError, ExitCode};

/// Run `glmirror apply`.
pub async fn run(_global: &GlobalArgs, _args: ApplyArgs) -> Result<ExitCode, AppError> {
    Err(AppError::fatal("`glmirror apply` is not implemented yet"))
}
