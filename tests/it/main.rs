//! The single integration-test binary: runs the real `glmirror` binary (and the simulator).

mod apply;
mod cli;
mod client;
mod faults;
mod journal;
mod plan;
mod plan_csv;
mod rewrite;
mod sim;
mod util;
