//! The `glmirror` binary: parse arguments, run, print the error, exit with its code.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match glmirror::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return glmirror::report_usage_error(&err),
    };
    glmirror::logging::init(cli.global.verbose, cli.global.quiet);
    let verbose = cli.global.verbose;
    match glmirror::run(cli).await {
        Ok(code) => code.into(),
        // The reader of our stdout went away (`| head`): stop quietly, like other CLIs.
        Err(err) if err.is_broken_pipe() => std::process::ExitCode::SUCCESS,
        Err(err) => {
            glmirror::report_error(&err, verbose);
            err.exit_code().into()
        }
    }
}
