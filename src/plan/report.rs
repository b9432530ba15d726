//! The report CSV (docs/plan-format.md, "The report CSV"): the plan's columns plus each row's outcome, written by
//! `apply` atomically, sorted like the plan and with the same formula guard.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::plan::cell::csv_writer;
use crate::plan::csv_io::{AtomicOutput, PLAN_COLUMNS, plan_cells, write_guarded};
use crate::plan::row::{PlanRow, code_traits};
use crate::rewrite::UnknownCode;

/// The report's columns: the plan's, then the outcome columns.
pub const REPORT_COLUMNS: [&str; 24] = [
    PLAN_COLUMNS[0],
    PLAN_COLUMNS[1],
    PLAN_COLUMNS[2],
    PLAN_COLUMNS[3],
    PLAN_COLUMNS[4],
    PLAN_COLUMNS[5],
    PLAN_COLUMNS[6],
    PLAN_COLUMNS[7],
    PLAN_COLUMNS[8],
    PLAN_COLUMNS[9],
    PLAN_COLUMNS[10],
    PLAN_COLUMNS[11],
    PLAN_COLUMNS[12],
    PLAN_COLUMNS[13],
    PLAN_COLUMNS[14],
    PLAN_COLUMNS[15],
    PLAN_COLUMNS[16],
    PLAN_COLUMNS[17],
    PLAN_COLUMNS[18],
    PLAN_COLUMNS[19],
    "outcome",
    "outcome_detail",
    "verified_status",
    "finished_at",
];

/// What happened to a row in `apply` (the report's `outcome` column and the journal's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Written, and (with `--verify`) checked.
    Applied,
    /// Found already at the target after a crash; not written again.
    AlreadyApplied,
    /// Not written: a `skip` or `manual` row.
    Skipped,
    /// Not written: the live mirror no longer matches `observed`.
    Drifted,
    /// The write failed; `outcome_detail` says why.
    Failed,
    /// `--dry-run`: would have been written.
    DryRun,
}

impl Outcome {
    /// The stable code written in the report.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::AlreadyApplied => "already-applied",
            Outcome::Skipped => "skipped",
            Outcome::Drifted => "drifted",
            Outcome::Failed => "failed",
            Outcome::DryRun => "dry-run",
        }
    }

    /// Whether a rerun skips a row that ended this way: only `applied` and
    /// `already-applied`. Failed, drifted and skipped rows are attempted again (after
    /// re-reading the live mirror); a dry run changed nothing, so it finishes nothing.
    pub(crate) fn is_final(self) -> bool {
        matches!(self, Outcome::Applied | Outcome::AlreadyApplied)
    }

    /// Whether this outcome makes `apply` exit 3 (README.md, "Exit codes").
    pub(crate) fn is_problem(self) -> bool {
        matches!(self, Outcome::Drifted | Outcome::Failed)
    }
}

code_traits!(
    Outcome,
    "outcome",
    [
        Outcome::Applied,
        Outcome::AlreadyApplied,
        Outcome::Skipped,
        Outcome::Drifted,
        Outcome::Failed,
        Outcome::DryRun,
    ]
);

/// One report line: the plan row as read, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    /// The plan row.
    pub row: PlanRow,
    /// What happened.
    pub outcome: Outcome,
    /// Why (GitLab's message for `failed`, what changed for `drifted`, …); masked by the
    /// caller, and masked again here before writing.
    pub outcome_detail: String,
    /// The mirror's `update_status` after `--verify`; empty without it.
    pub verified_status: String,
    /// When the row was finished.
    pub finished_at: OffsetDateTime,
}

fn cells(r: &ReportRow) -> io::Result<Vec<String>> {
    let finished_at = r.finished_at.format(&Rfc3339).map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidData, format!("finished_at is not RFC 3339: {e}"))
    })?;
    let mut cells = plan_cells(&r.row).to_vec();
    cells.push(r.outcome.code().to_owned());
    cells.push(crate::redact::scrub(&r.outcome_detail));
    cells.push(r.verified_status.clone());
    cells.push(finished_at);
    Ok(cells)
}

/// Write a report, rows sorted in plan order (stable for equal keys).
pub(crate) fn write_report<W: Write>(rows: &[ReportRow], w: W) -> io::Result<()> {
    let mut sorted: Vec<&ReportRow> = rows.iter().collect();
    sorted.sort_by_key(|r| r.row.key());
    let mut csv = csv_writer(w);
    csv.write_record(REPORT_COLUMNS)?;
    for row in sorted {
        write_guarded(&mut csv, &cells(row)?)?;
    }
    csv.into_inner().map_err(|e| e.into_error())?.flush()
}

/// Write a report to `path` atomically (`-` = stdout).
pub fn write_report_file(path: &Path, rows: &[ReportRow]) -> io::Result<()> {
    let mut out = AtomicOutput::create(path)?;
    write_report(rows, &mut out)?;
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::MirrorType;
    use crate::plan::row::tests::sample_row;
    use time::macros::datetime;

    fn report_row(id: u64, outcome: Outcome) -> ReportRow {
        ReportRow {
            row: sample_row(id, MirrorType::Pull, None),
            outcome,
            outcome_detail: "-HTTP 400: https://u:glpat-CANARY@github.com/x rejected".into(),
            verified_status: String::new(),
            finished_at: datetime!(2026-11-27 13:05:09.5 +01:00),
        }
    }

    #[test]
    fn outcome_codes_round_trip() {
        for o in [
            Outcome::Applied,
            Outcome::AlreadyApplied,
            Outcome::Skipped,
            Outcome::Drifted,
            Outcome::Failed,
            Outcome::DryRun,
        ] {
            assert_eq!(o.code().parse::<Outcome>(), Ok(o));
        }
        assert!(Outcome::Failed.is_problem() && !Outcome::DryRun.is_problem());
    }

    #[test]
    fn report_has_plan_columns_then_outcome_columns() {
        assert_eq!(&REPORT_COLUMNS[..20], &PLAN_COLUMNS[..]);
        let rows = vec![report_row(9, Outcome::Failed), report_row(2, Outcome::Applied)];
        let mut buf = Vec::new();
        write_report(&rows, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        assert_eq!(header, REPORT_COLUMNS);
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(&records[0][0], "2", "sorted like the plan");
        assert_eq!(&records[0][20], "applied");
        assert_eq!(&records[1][20], "failed");
        // Formula guard and masking on the detail, RFC 3339 time on every row.
        assert_eq!(&records[1][21], "'-HTTP 400: https://*****:*****@github.com/x rejected");
        assert_eq!(&records[1][22], "");
        assert_eq!(&records[1][23], "2026-11-27T13:05:09.5+01:00");
        assert!(!text.contains("CANARY"));
    }

    #[test]
    fn report_file_is_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.report.csv");
        write_report_file(&path, &[report_row(1, Outcome::DryRun)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("project_id,"));
        assert!(text.contains(",dry-run,"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
