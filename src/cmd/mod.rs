//! One module per subcommand: takes its typed request (`crate::config`), calls the domain and
//! prints. No GitLab write logic and no row policy live here.

pub mod apply;
pub mod demo;
pub mod docs;
pub mod plan;
pub mod rewrite;
pub mod sim;
pub mod status;
