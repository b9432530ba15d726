//! The single integration-test binary: runs the real `glmirror` binary (and the simulator).

mod cli;
mod client;
mod journal;
mod plan_csv;
mod rewrite;
mod util;
