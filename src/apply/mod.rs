//! Applying a reviewed plan: the checks of the whole file before any write (`checks`), the
//! executor that writes the `update` rows concurrently with a drift check and a journal
//! (`executor`, with the pull and push write paths, their pure decisions and the pure
//! comparisons beside it), the durable [`journal`] that makes `apply` resumable, and the
//! Ctrl-C/SIGTERM handling ([`interrupt`]) that lets a run stop cleanly after the rows in
//! flight; and the safety checks around a run: which `new_url`s a person edited (`edits`),
//! the files it writes (`paths`), one run per plan at a time (`run_lock`), and what its
//! outcomes add up to (`tally`).
//!
//! The command layer (`cmd::apply`) only reads the request, confirms with the user and prints.

pub(crate) mod checks;
pub(crate) mod edits;
pub(crate) mod executor;
pub mod interrupt;
pub mod journal;
pub(crate) mod matching;
pub(crate) mod paths;
pub(crate) mod probe_guard;
mod pull;
mod pull_steps;
mod push;
mod push_steps;
pub(crate) mod results;
pub(crate) mod run_lock;
pub(crate) mod tally;

use std::path::{Path, PathBuf};

use crate::error::AppError;
use crate::plan::{self, PlanError, PlanRow};

/// The largest plan `apply` reads: a row takes a few hundred bytes, so this is room for about
/// a million mirrors, and low enough that a wrong file never exhausts memory.
pub(crate) const PLAN_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// A plan file as read for `apply`: its rows, the line of each (for messages) and the SHA-256
/// of exactly the bytes that were parsed (the journal is tied to it).
#[derive(Debug)]
pub(crate) struct LoadedPlan {
    /// The file.
    pub(crate) path: PathBuf,
    /// Lowercase hex SHA-256 of its bytes.
    pub(crate) sha256: String,
    /// The file line of each row.
    pub(crate) lines: Vec<usize>,
    /// The rows, in file order.
    pub(crate) rows: Vec<PlanRow>,
}

impl LoadedPlan {
    /// Read and parse a plan (every file-level refusal names `FILE:LINE`). A plan larger than
    /// [`PLAN_MAX_BYTES`] is refused without reading it all.
    pub(crate) fn read(path: &Path) -> Result<LoadedPlan, AppError> {
        // Hash exactly the bytes that are parsed, so the plan cannot change in between.
        let bytes = paths::read_bounded(path, PLAN_MAX_BYTES)
            .map_err(|e| AppError::io("cannot read", path, e))?
            .ok_or_else(|| PlanError {
                file: crate::redact::path_excerpt(path),
                line: 0,
                message: "the plan is larger than 256 MiB: this is not a plan glmirror wrote"
                    .to_owned(),
                hint: Some(
                    "pass the plan CSV written by `glmirror plan` (split a huge instance with \
                     --group)"
                        .to_owned(),
                ),
            })?;
        let sha256 = journal::sha256_hex(&bytes);
        let (lines, rows) =
            plan::parse_plan_lines(&bytes, &crate::redact::path_excerpt(path))?.into_iter().unzip();
        Ok(LoadedPlan { path: path.to_owned(), sha256, lines, rows })
    }

    /// The rows with their lines.
    pub(crate) fn lined(&self) -> checks::Lined<'_> {
        checks::Lined { lines: &self.lines, rows: &self.rows }
    }
}
