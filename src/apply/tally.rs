//! What a run's report adds up to: outcomes per code (with the dry-run rows a real run would
//! not write), the `--verify` results (finished, failed, timed out), and the exit code they
//! make. A failed or timed-out verification fails
//! the run like a failed row — except a timeout on a row diagnosed `stuck`, whose update is
//! known not to run until the stuck one is cleared. Pure; table tests below.

use std::collections::BTreeMap;

use crate::error::ExitCode;
use crate::plan::{Diagnosis, Outcome, ReportRow};

/// How one `verified_status` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verified {
    /// Not verified (no `--verify`, or the row was not written in this run).
    None,
    /// The mirror's update finished.
    Finished,
    /// The update failed, or the verification could not be made (`unknown: …`, the mirror
    /// vanished): either way the write was not shown to work.
    Failed,
    /// `--verify-timeout` passed first.
    TimedOut,
}

/// Read a report's `verified_status` (see `Exec::poll_until_done` for what it holds).
pub(crate) fn verified(status: &str) -> Verified {
    match status {
        "" => Verified::None,
        "finished" => Verified::Finished,
        "timeout" => Verified::TimedOut,
        _ => Verified::Failed,
    }
}

/// The counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Rows per outcome code.
    pub(crate) outcomes: BTreeMap<&'static str, usize>,
    /// Verifications that finished.
    pub(crate) finished: usize,
    /// Verifications that failed.
    pub(crate) failed: usize,
    /// Verifications that timed out.
    pub(crate) timed_out: usize,
    /// Of those, timeouts on rows diagnosed `stuck` (they do not fail the run).
    pub(crate) timed_out_stuck: usize,
    /// Rows `failed` or `drifted`.
    pub(crate) bad_rows: usize,
    /// `dry-run` rows a real run would not write (their probe failed: `would fail: …`).
    pub(crate) would_fail: usize,
}

/// How a `dry-run` row's detail says a real run would not write it (`ProbeFinding::would_fail`;
/// an edited row's note may come before it).
const WOULD_FAIL: &str = "would fail: ";

/// Whether a report row is a dry run's row that a real run would not write.
fn would_fail(r: &ReportRow) -> bool {
    r.outcome == Outcome::DryRun && r.outcome_detail.contains(WOULD_FAIL)
}

impl Tally {
    /// Count a report.
    pub(crate) fn of(report: &[ReportRow]) -> Tally {
        let mut t = Tally::default();
        for r in report {
            *t.outcomes.entry(r.outcome.code()).or_default() += 1;
            if r.outcome.is_problem() {
                t.bad_rows += 1;
            }
            if would_fail(r) {
                t.would_fail += 1;
            }
            match verified(&r.verified_status) {
                Verified::None => {}
                Verified::Finished => t.finished += 1,
                Verified::Failed => t.failed += 1,
                Verified::TimedOut => {
                    t.timed_out += 1;
                    if r.row.diagnosis == Some(Diagnosis::Stuck) {
                        t.timed_out_stuck += 1;
                    }
                }
            }
        }
        t
    }

    /// The outcomes for the summary, `applied 3, dry-run 29 (would fail 18), skipped 9`
    /// (`none` for an empty report).
    pub(crate) fn outcomes_line(&self) -> String {
        if self.outcomes.is_empty() {
            return "none".into();
        }
        let part = |(code, n): (&&str, &usize)| match *code {
            "dry-run" if self.would_fail > 0 => {
                format!("{code} {n} (would fail {})", self.would_fail)
            }
            _ => format!("{code} {n}"),
        };
        self.outcomes.iter().map(part).collect::<Vec<_>>().join(", ")
    }

    /// The summary line for `--verify`.
    pub(crate) fn verify_line(&self) -> String {
        let mut line = format!(
            "verified: finished {}, failed {}, timed out {}",
            self.finished, self.failed, self.timed_out
        );
        if self.timed_out_stuck > 0 {
            line.push_str(&format!(
                " ({} of them on rows diagnosed `stuck`, which do not fail the run: clear the \
                 stuck update, then check with `glmirror status`)",
                self.timed_out_stuck
            ));
        }
        line
    }

    /// Success, or 3 when a row failed or drifted, or a verification failed or timed out
    /// (other than on a `stuck` row).
    pub(crate) fn exit_code(&self) -> ExitCode {
        let verify_bad = self.failed + self.timed_out - self.timed_out_stuck;
        if self.bad_rows > 0 || verify_bad > 0 { ExitCode::RowsFailed } else { ExitCode::Success }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::row::tests::sample_row;
    use crate::plan::{MirrorType, ProbeFinding};
    use crate::probe::ProbeCode;

    fn row(outcome: Outcome, verified: &str, diagnosis: Option<Diagnosis>) -> ReportRow {
        let mut row = sample_row(1, MirrorType::Pull, None);
        row.diagnosis = diagnosis;
        ReportRow {
            row,
            outcome,
            outcome_detail: String::new(),
            verified_status: verified.into(),
            finished_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn verified_status_is_read() {
        for (text, want) in [
            ("", Verified::None),
            ("finished", Verified::Finished),
            ("timeout", Verified::TimedOut),
            ("failed: 13:fetch remote: Authentication failed", Verified::Failed),
            ("unknown: GET …: HTTP 500", Verified::Failed),
            ("mirror not found", Verified::Failed),
        ] {
            assert_eq!(verified(text), want, "{text}");
        }
    }

    #[test]
    fn exit_codes_follow_rows_and_verifications() {
        let stuck = Some(Diagnosis::Stuck);
        let auth = Some(Diagnosis::AuthFailed);
        let cases: Vec<(Vec<ReportRow>, ExitCode)> = vec![
            (vec![row(Outcome::Applied, "", auth)], ExitCode::Success),
            (vec![row(Outcome::Applied, "finished", auth)], ExitCode::Success),
            (vec![row(Outcome::Applied, "failed: x", auth)], ExitCode::RowsFailed),
            (vec![row(Outcome::Applied, "unknown: x", auth)], ExitCode::RowsFailed),
            (vec![row(Outcome::Applied, "timeout", auth)], ExitCode::RowsFailed),
            (vec![row(Outcome::Applied, "timeout", stuck)], ExitCode::Success),
            (vec![row(Outcome::Applied, "failed: x", stuck)], ExitCode::RowsFailed),
            (vec![row(Outcome::Drifted, "", auth)], ExitCode::RowsFailed),
            (vec![row(Outcome::Failed, "", auth)], ExitCode::RowsFailed),
            (
                vec![row(Outcome::Skipped, "", auth), row(Outcome::DryRun, "", auth)],
                ExitCode::Success,
            ),
        ];
        for (i, (report, want)) in cases.into_iter().enumerate() {
            assert_eq!(Tally::of(&report).exit_code(), want, "case {i}");
        }
    }

    #[test]
    fn the_verify_line_counts_each_kind() {
        let report = vec![
            row(Outcome::Applied, "finished", None),
            row(Outcome::Applied, "finished", None),
            row(Outcome::Applied, "failed: x", None),
            row(Outcome::Applied, "timeout", Some(Diagnosis::Stuck)),
        ];
        let t = Tally::of(&report);
        assert!(
            t.verify_line().starts_with("verified: finished 2, failed 1, timed out 1 (1 of them")
        );
        assert_eq!(t.outcomes.get("applied"), Some(&4));
    }

    #[test]
    fn the_summary_counts_the_dry_run_rows_that_would_fail() {
        let probe = ProbeFinding::new(ProbeCode::Unreachable, "github.com", "timed out");
        let with_detail = |outcome, detail: String| ReportRow {
            outcome_detail: detail,
            ..row(outcome, "", None)
        };
        let report = vec![
            with_detail(
                Outcome::DryRun,
                "would call PUT /projects/:id/mirror/pull (probe: ok)".into(),
            ),
            with_detail(Outcome::DryRun, probe.would_fail()),
            with_detail(
                Outcome::DryRun,
                format!(
                    "edited new_url (path; planned https://github.com/a/b.git): {}",
                    probe.would_fail()
                ),
            ),
            with_detail(Outcome::Failed, "the service username or token has characters …".into()),
            with_detail(Outcome::Skipped, "planned as skip".into()),
        ];
        let t = Tally::of(&report);
        assert_eq!(t.would_fail, 2);
        assert_eq!(t.outcomes_line(), "dry-run 3 (would fail 2), failed 1, skipped 1");
        // Nothing would fail: no note; an empty report: none.
        let t = Tally::of(&report[..1]);
        assert_eq!((t.would_fail, t.outcomes_line().as_str()), (0, "dry-run 1"));
        assert_eq!(Tally::of(&[]).outcomes_line(), "none");
        // A real run's failed rows are not "would fail", whatever their detail says.
        let real = [with_detail(Outcome::Failed, probe.would_fail())];
        assert_eq!(Tally::of(&real).would_fail, 0);
    }
}
