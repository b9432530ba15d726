//! `glmirror demo`.

use crate::cli::{DemoArgs, GlobalArgs};
use crate::error::{AppError, ExitCode};

/// Run `glmirror demo`.
pub async fn run(_global: &GlobalArgs, _args: DemoArgs) -> Result<ExitCode, AppError> {
    Err(AppError::fatal("`glmirror demo` is not implemented yet"))
}
