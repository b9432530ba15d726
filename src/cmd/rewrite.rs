//! `glmirror rewrite`.

use crate::cli::{GlobalArgs, RewriteArgs};
use crate::error::{AppError, ExitCode};

/// Run `glmirror rewrite`.
pub async fn run(_global: &GlobalArgs, _args: RewriteArgs) -> Result<ExitCode, AppError> {
    Err(AppError::fatal("`glmirror rewrite` is not implemented yet"))
}
