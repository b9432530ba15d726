//! The plan model: rows, diagnosis codes, fingerprints and the CSV formats (plan and report).
//!
//! Pure code: no network, no async, and no dependency on the GitLab client or the simulator.
//! File I/O happens only in the CSV read/write functions ([`read_plan`], [`write_plan_file`],
//! [`write_report_file`], [`AtomicOutput`]).
//!
//! - [`row`]: [`PlanRow`] and its column types, row order, `last_error` normalisation;
//!   `mirror_type`: [`MirrorType`], a leaf.
//! - [`facts`]: [`MirrorFacts`], a mirror as read, in plain data.
//! - [`decide`]: the row policy, facts → plan row.
//! - [`diagnose`](mod@diagnose): [`Diagnosis`] codes and the rules that pick one (README.md, "Diagnosis codes").
//! - [`fingerprint`](mod@fingerprint): the `observed` column and its seal.
//! - [`csv_io`]: the plan CSV (docs/plan-format.md): writing, and strict reading with line numbers.
//! - `cell`: the one cell writer of every CSV glmirror writes, and the plan reader's cell check.
//! - [`report`]: the report CSV (docs/plan-format.md, "The report CSV").
//! - [`probe`](mod@probe): [`ProbeFinding`], what probing a row found, and what plan and
//!   apply say about it.
//! - `unreadable`: rows for mirrors GitLab would not let us read (diagnosis `unreadable`).

pub(crate) mod cell;
pub(crate) mod csv_io;
pub(crate) mod decide;
pub mod diagnose;
pub(crate) mod facts;
pub mod fingerprint;
pub(crate) mod mirror_type;
pub mod probe;
pub(crate) mod report;
pub(crate) mod row;
pub(crate) mod summary;
pub(crate) mod unreadable;

pub(crate) use csv_io::{AtomicOutput, PlanWriter, parse_plan_lines};
pub use csv_io::{PlanError, instance_base, read_plan, write_plan_file};
pub(crate) use decide::{
    CallerRights, PlanContext, TargetRole, TargetUser, WantedUser, build_row,
    gets_service_credentials, target_user, without_credentials,
};
pub use diagnose::{DiagnoseInput, Diagnosis, MirrorUserState, diagnose};
pub(crate) use facts::{MirrorFacts, MirrorKind, ProjectFacts};
pub use fingerprint::{MirrorFlags, ObservedState, SealKey, fingerprint, observed_cell};
pub(crate) use fingerprint::{check_observed_cell, read_seal};
pub(crate) use probe::ProbeFinding;
pub use report::{Outcome, REPORT_COLUMNS, ReportRow, write_report_file};
pub(crate) use row::sort_rows;
pub use row::{CurrentAuth, MirrorType, PlanRow, RowKey, normalize_last_error};
pub(crate) use summary::Summary;
