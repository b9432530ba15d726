//! Applying a reviewed plan: the durable journal that makes `apply` resumable, and the
//! Ctrl-C/SIGTERM handling that lets a run stop cleanly after the rows in flight.
//!
//! This module owns only that plumbing. It does not read the plan CSV or talk to GitLab:
//! rows are identified by their [`crate::plan::RowKey`] (`project_id`, `mirror_type`,
//! `mirror_id`), the same key the plan CSV uses, so the executor can map its own row type
//! onto it.

pub mod interrupt;
pub mod journal;
