//! The single integration-test binary: runs the real `glmirror` binary (and the simulator).

mod cli;
mod client;
mod apply;
mod journal;
mod plan;
mod plan_csv;
mod rewrite;
mod util;
