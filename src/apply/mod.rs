//! Applying a reviewed plan: the checks of the whole file before any write (`checks`), the
//! executor that writes the `update` rows concurrently with a drift check and a journal
//! (`executor`, with the pull and push write paths and the pure comparisons beside it), the
//! durable [`journal`] that makes `apply` resumable, and the Ctrl-C/SIGTERM handling
//! ([`interrupt`]) that lets a run stop cleanly after the rows in flight.
//!
//! The command layer (`cmd::apply`) only reads the request, confirms with the user and prints.

pub(crate) mod checks;
pub(crate) mod executor;
pub mod interrupt;
pub mod journal;
pub(crate) mod matching;
mod pull;
mod push;

use std::path::{Path, PathBuf};

use crate::apply::journal::{JournalError, JournalState};
use crate::error::AppError;
use crate::plan::{self, PlanRow};

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
    /// Read and parse a plan (every file-level refusal names `FILE:LINE`).
    pub(crate) fn read(path: &Path) -> Result<LoadedPlan, AppError> {
        // Hash exactly the bytes that are parsed, so the plan cannot change in between.
        let bytes = std::fs::read(path).map_err(|e| AppError::io("cannot read", path, e))?;
        let sha256 = journal::sha256_hex(&bytes);
        let (lines, rows) =
            plan::parse_plan_lines(&bytes, &path.display().to_string())?.into_iter().unzip();
        Ok(LoadedPlan { path: path.to_owned(), sha256, lines, rows })
    }

    /// The rows with their lines.
    pub(crate) fn lined(&self) -> checks::Lined<'_> {
        checks::Lined { lines: &self.lines, rows: &self.rows }
    }
}

/// What an existing journal says, read without writing or locking it (a dry run never writes
/// one; a real run reads it once before confirming). A journal of another plan is refused.
pub(crate) fn journal_preview(
    journal_path: &Path,
    plan: &LoadedPlan,
) -> Result<JournalState, AppError> {
    if !journal_path.exists() {
        return Ok(JournalState::empty());
    }
    let state = journal::load(journal_path)?;
    if let Some(header) = state.header()
        && header.plan_sha256 != plan.sha256
    {
        return Err(JournalError::OtherPlan {
            journal: journal_path.to_owned(),
            plan_path: plan.path.display().to_string(),
            journal_plan_sha256: header.plan_sha256.clone(),
            plan_sha256: plan.sha256.clone(),
        }
        .into());
    }
    Ok(state)
}
