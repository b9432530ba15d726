//! `glmirror plan`.

use crate::cli::{GlobalArgs, PlanArgs};
use crate::error::{AppError, ExitCode};

/// Run `glmirror plan`.
pub async fn run(_global: &GlobalArgs, _args: PlanArgs) -> Result<ExitCode, AppError> {
    Err(AppError::fatal("`glmirror plan` is not implemented yet"))
}
