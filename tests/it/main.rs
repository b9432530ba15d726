//! The single integration-test binary: runs the real `glmirror` binary (and the simulator).

mod apply;
mod cli;
mod client;
mod client_sim;
mod contract;
mod errors;
mod faults;
mod githost;
mod health;
mod hostile;
mod journal;
mod plan;
mod plan_csv;
mod policy;
mod probe;
mod probing;
mod readme;
mod rewrite;
mod safety;
mod scale;
mod sim;
mod util;
