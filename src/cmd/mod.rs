//! One module per subcommand: takes its typed request (`crate::config`), calls the domain and
//! prints. No GitLab write logic and no row policy live here.

pub(crate) mod apply;
pub(crate) mod demo;
pub(crate) mod docs;
pub(crate) mod plan;
pub(crate) mod rewrite;
pub(crate) mod sim;
pub(crate) mod status;
