//! `glmirror status`.

use crate::cli::{GlobalArgs, StatusArgs};
use crate::error::{AppError, ExitCode};

/// Run `glmirror status`.
pub async fn run(_global: &GlobalArgs, _args: StatusArgs) -> Result<ExitCode, AppError> {
    Err(AppError::fatal("`glmirror status` is not implemented yet"))
}
