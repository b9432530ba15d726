//! `glmirror sim`.

use crate::cli::{GlobalArgs, SimArgs};
use crate::error::{AppError, ExitCode};

/// Run `glmirror sim`.
pub async fn run(_global: &GlobalArgs, _args: SimArgs) -> Result<ExitCode, AppError> {
    Err(AppError::fatal("`glmirror sim` is not implemented yet"))
}
