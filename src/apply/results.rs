//! What a row's work produces and what the decisions of `apply` read, in plain data: the
//! journal's record of earlier attempts at a row ([`Prior`]), how a row ended ([`RowResult`]),
//! how a write's request ended ([`WriteAnswer`]). A leaf of `apply/`: the executor, the pull
//! and push steps and the probe guard all use it, and it uses none of them.

use crate::apply::journal::{JournalState, PushRepair, RowState};
use crate::gitlab::GitLabError;
use crate::plan::{Outcome, RowKey};

/// How often a write whose answer was lost is sent again, after a re-read showed it did not
/// land.
pub(crate) const MAX_RESENDS: u32 = 2;

/// What earlier runs recorded about a row.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Prior {
    /// An intent without an outcome: the previous run died while writing this row.
    pub(crate) in_flight: bool,
    /// An earlier run wrote or tried to write this row since it last finished for good
    /// (`in_flight`, or it ended `failed` after a write that may have landed).
    pub(crate) attempted: bool,
    /// For push rows: what an earlier attempt already did.
    pub(crate) repair: Option<PushRepair>,
}

impl Prior {
    /// What the journal says about a row.
    pub(crate) fn of(state: &JournalState, key: &RowKey) -> Prior {
        Prior {
            in_flight: matches!(state.row(key), Some(RowState::InFlight { .. })),
            attempted: state.attempted(key),
            repair: state.push_repair(key),
        }
    }
}

/// How one row ended in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowResult {
    /// The outcome code.
    pub(crate) outcome: Outcome,
    /// The report's `outcome_detail`.
    pub(crate) detail: String,
    /// The report's `verified_status` (empty without `--verify`).
    pub(crate) verified: String,
}

impl RowResult {
    fn new(outcome: Outcome, detail: impl Into<String>) -> RowResult {
        RowResult { outcome, detail: detail.into(), verified: String::new() }
    }

    /// The write landed; `verified` is the `--verify` result (empty without it).
    pub(crate) fn applied(detail: impl Into<String>, verified: String) -> RowResult {
        RowResult { verified, ..RowResult::new(Outcome::Applied, detail) }
    }

    /// An earlier run's write had landed.
    pub(crate) fn already_applied(detail: impl Into<String>) -> RowResult {
        RowResult::new(Outcome::AlreadyApplied, detail)
    }

    /// The live mirror changed since planning: not written.
    pub(crate) fn drifted(detail: impl Into<String>) -> RowResult {
        RowResult::new(Outcome::Drifted, detail)
    }

    /// The row could not be applied.
    pub(crate) fn failed(detail: impl Into<String>) -> RowResult {
        RowResult::new(Outcome::Failed, detail)
    }

    /// What a real run would do.
    pub(crate) fn dry_run(detail: impl Into<String>) -> RowResult {
        RowResult::new(Outcome::DryRun, detail)
    }

    /// Not attempted.
    pub(crate) fn skipped(detail: impl Into<String>) -> RowResult {
        RowResult::new(Outcome::Skipped, detail)
    }
}

/// How a write's request ended, as far as the next step cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteAnswer {
    /// GitLab answered with success.
    Answered,
    /// The answer was lost: the write may or may not have landed (`GitLabError::Ambiguous`).
    Ambiguous,
    /// A definite refusal (a 4xx, …): nothing was written.
    Refused,
}

impl WriteAnswer {
    /// How a failed write ended.
    pub(crate) fn of(e: &GitLabError) -> WriteAnswer {
        if e.is_ambiguous() { WriteAnswer::Ambiguous } else { WriteAnswer::Refused }
    }
}

/// ` (probe: ok)` for a dry run's detail, when the row was probed.
pub(crate) fn probe_note(code: Option<crate::probe::ProbeCode>) -> String {
    code.map(|c| format!(" (probe: {c})")).unwrap_or_default()
}
