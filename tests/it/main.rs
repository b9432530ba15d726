//! The single integration-test binary: runs the real `glmirror` binary (and the simulator).

mod cli;
mod sim;
mod util;
