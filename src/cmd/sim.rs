//! `glmirror sim`: run the GitLab simulator alone. The first stdout lines (flushed) are
//! `base_url=…`, `admin_token=…`, `maintainer_token=…` and, when the fixture names one (the
//! demo fixture and `--generate` do), `service_token=…`: the service token the simulated
//! remotes accept, to pass as `MIRROR_TOKEN`. All are simulator-only values, printed there and
//! nowhere else; logs go to stderr; it serves until Ctrl-C.

use std::io::Write;

use crate::cli::SimArgs;
use crate::error::{AppError, ExitCode};
use crate::sim::{Faults, Fixture, SimOptions};

/// Run `glmirror sim`.
pub(crate) async fn run(args: &SimArgs) -> Result<ExitCode, AppError> {
    let fixture = match (&args.fixture, args.generate) {
        (Some(path), _) => Fixture::load(path).map_err(|e| AppError::usage(e.to_string()))?,
        (None, Some(n)) => crate::sim::generate(n, args.seed.unwrap_or(0)),
        (None, None) => Fixture::demo(),
    };
    let rate = |name: &str, v: Option<f64>| -> Result<f64, AppError> {
        match v {
            None => Ok(0.0),
            Some(r) if (0.0..=1.0).contains(&r) => Ok(r),
            Some(_) => Err(AppError::usage(format!("--{name} must be between 0.0 and 1.0"))),
        }
    };
    let faults = Faults {
        latency_ms: args.latency_ms.unwrap_or(0),
        error_rate: rate("error-rate", args.error_rate)?,
        drop_rate: rate("drop-rate", args.drop_rate)?,
        rate_limit_per_minute: args.rate_limit,
        seed: args.seed.unwrap_or(0),
        ..Faults::default()
    };
    let (admin_token, maintainer_token) = crate::sim::fixture_tokens(&fixture);
    let service_token = fixture.demo.as_ref().map(|d| d.service_token.clone());
    let mut opts = SimOptions::new(fixture);
    opts.faults = faults;
    opts.gitlab_version = args.gitlab_version.clone();
    opts.update_delay_ms = 500;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| AppError::usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr().map_err(|e| AppError::fatal(e.to_string()))?;
    let shown = if addr.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    {
        let mut out = std::io::stdout().lock();
        let written = writeln!(out, "base_url=http://{shown}")
            .and_then(|()| writeln!(out, "admin_token={admin_token}"))
            .and_then(|()| writeln!(out, "maintainer_token={maintainer_token}"))
            .and_then(|()| match &service_token {
                Some(token) => writeln!(out, "service_token={token}"),
                None => Ok(()),
            })
            .and_then(|()| out.flush());
        written.map_err(|e| AppError::fatal(format!("cannot write to stdout: {e}")))?;
    }
    tracing::warn!(
        "GitLab simulator listening on http://{shown} (control endpoints: /__sim/requests, /__sim/state, /__sim/faults); Ctrl-C stops it"
    );
    tokio::select! {
        served = crate::sim::serve(listener, opts) => {
            served.map_err(|e| AppError::fatal(format!("simulator failed: {e}")))?;
        }
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::Success)
}
