//! The plan CSV (docs/plan-format.md): writing (streaming or whole, atomically) and strict reading.
//!
//! Format: UTF-8, one header row, RFC 4180 quoting, LF line endings. A cell that begins with
//! `=`, `+`, `-`, `@`, tab or CR gets a leading `'` so a spreadsheet shows it as text instead
//! of running it as a formula. To keep this lossless, a cell that already begins with one or
//! more `'` followed by such a character gets one more `'`; reading removes exactly one `'`
//! from a cell that begins with `'`s followed by a guarded character.
//!
//! Reading accepts what a reviewer's tools produce (CRLF, a byte-order mark, reordered or
//! deleted rows, blank trailing rows) and refuses everything else with the physical line of the
//! offending record, before anything is applied. Untrusted cell text quoted in an error is
//! masked, sanitised for the terminal and truncated.
//!
//! Size: about 490 lines of code; the rest are its read/write table tests, kept beside the
//! code so each reading rule and its refusal are reviewed together.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::plan::cell::{csv_writer, unguard};
use crate::plan::fingerprint::{SealKey, check_observed_cell, planned_action};
use crate::plan::row::{CurrentAuth, MirrorType, PlanRow, RowKey};
use crate::plan::{Diagnosis, sort_rows};
use crate::probe::ProbeCode;
use crate::redact::{Authority, MASK, sanitize_for_terminal, split_authority};
use crate::rewrite::{Action, Fix, NewAuth};

/// The plan's columns, in file order (docs/plan-format.md). Reading also accepts the header without
/// the last column, `probe` ([`PLAN_COLUMNS_WITHOUT_PROBE`]): plans written before it existed.
pub(crate) const PLAN_COLUMNS: [&str; 20] = [
    "project_id",
    "project_path",
    "web_url",
    "mirror_type",
    "mirror_id",
    "current_url",
    "current_auth",
    "current_mirror_user",
    "update_status",
    "last_error",
    "diagnosis",
    "action",
    "new_url",
    "new_user",
    "new_auth",
    "new_mirror_user",
    "fixes",
    "reason",
    "observed",
    "probe",
];

/// How many columns a plan written before the `probe` column has.
pub(crate) const PLAN_COLUMNS_WITHOUT_PROBE: usize = 19;

/// A plan file that cannot be used: where and why. Displayed as `FILE:LINE: message`
/// (`FILE: message` when it concerns the whole file, line 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PlanError {
    /// The file as given by the user.
    pub(crate) file: String,
    /// Physical line where the offending record starts (1 = header), 0 for the whole file.
    pub(crate) line: usize,
    /// One line saying what is wrong (already sanitised).
    pub(crate) message: String,
    /// A next step, if one is known.
    pub(crate) hint: Option<String>,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// The cells of a row in [`PLAN_COLUMNS`] order (unguarded).
pub(crate) fn plan_cells(row: &PlanRow) -> [String; 20] {
    [
        row.project_id.to_string(),
        row.project_path.clone(),
        row.web_url.clone(),
        row.mirror_type.code().to_owned(),
        row.mirror_id.map(|id| id.to_string()).unwrap_or_default(),
        row.current_url.clone(),
        crate::plan::unreadable::current_auth_cell(row).to_owned(),
        row.current_mirror_user.clone(),
        row.update_status.clone(),
        row.last_error.clone(),
        row.diagnosis.map(|d| d.code().to_owned()).unwrap_or_default(),
        row.action.code().to_owned(),
        row.new_url.clone(),
        row.new_user.clone(),
        row.new_auth.map(|a| a.code().to_owned()).unwrap_or_default(),
        row.new_mirror_user.clone(),
        Fix::join(&row.fixes),
        crate::plan::cell::cap_reason(&row.reason),
        row.observed.clone(),
        row.probe.map(|p| p.code().to_owned()).unwrap_or_default(),
    ]
}

/// Write one record through the one cell writer ([`crate::plan::cell::write_record`]):
/// every cell cleaned and formula-guarded.
pub(crate) fn write_guarded<W: Write, S: AsRef<str>>(
    csv: &mut csv::Writer<W>,
    cells: &[S],
) -> io::Result<()> {
    crate::plan::cell::write_record(csv, cells)
}

/// Streams plan rows to a writer: the header on creation, then one row per
/// [`write_row`](PlanWriter::write_row), in the order given (the caller sorts).
pub(crate) struct PlanWriter<W: Write> {
    csv: csv::Writer<W>,
}

impl<W: Write> PlanWriter<W> {
    /// Start a plan: writes the header row.
    pub(crate) fn new(w: W) -> io::Result<Self> {
        let mut csv = csv_writer(w);
        csv.write_record(PLAN_COLUMNS)?;
        Ok(PlanWriter { csv })
    }

    /// Write one row.
    pub(crate) fn write_row(&mut self, row: &PlanRow) -> io::Result<()> {
        write_guarded(&mut self.csv, &plan_cells(row))
    }

    /// Flush everything and give the writer back.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|e| e.into_error())
    }
}

/// Write a whole plan, rows sorted in plan order (the input slice is left as it is).
pub(crate) fn write_plan<W: Write>(rows: &[PlanRow], w: W) -> io::Result<()> {
    let mut sorted = rows.to_vec();
    sort_rows(&mut sorted);
    let mut writer = PlanWriter::new(w)?;
    for row in &sorted {
        writer.write_row(row)?;
    }
    writer.finish()?.flush()
}

/// Write a whole plan to `path` atomically (`-` = stdout), rows sorted in plan order.
pub fn write_plan_file(path: &Path, rows: &[PlanRow]) -> io::Result<()> {
    let mut out = AtomicOutput::create(path)?;
    write_plan(rows, &mut out)?;
    out.commit()
}

/// An output file that appears complete or not at all: written to a temporary file in the
/// same directory and renamed over the destination on [`commit`](AtomicOutput::commit).
/// Dropped without commit (an error, Ctrl-C), the temporary file is removed and an existing
/// destination is left untouched. The path `-` means stdout: there too the output goes to a
/// temporary file first and reaches stdout only on commit, so a run that fails half-way never
/// leaves a plausible-looking partial plan in a pipe.
pub(crate) struct AtomicOutput {
    inner: Inner,
}

enum Inner {
    Stdout(tempfile::NamedTempFile),
    File { tmp: tempfile::NamedTempFile, dest: PathBuf },
}

impl AtomicOutput {
    /// Start writing `path` (`-` = stdout).
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        if path.as_os_str() == "-" {
            let tmp = tempfile::Builder::new().prefix(".glmirror-").suffix(".tmp").tempfile()?;
            return Ok(AtomicOutput { inner: Inner::Stdout(tmp) });
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new().prefix(".glmirror-").suffix(".tmp").tempfile_in(dir)?;
        Ok(AtomicOutput { inner: Inner::File { tmp, dest: path.to_path_buf() } })
    }

    /// Make the finished file readable by every user (0644 on unix), for files another
    /// service reads and that hold no secret (Prometheus metrics). Plans stay private.
    pub(crate) fn readable_by_all(&mut self) -> io::Result<()> {
        #[cfg(unix)]
        if let Inner::File { tmp, .. } = &self.inner {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        Ok(())
    }

    /// Finish: flush, sync and move the file into place (or flush stdout).
    pub(crate) fn commit(self) -> io::Result<()> {
        match self.inner {
            Inner::Stdout(mut tmp) => {
                tmp.flush()?;
                let mut file = tmp.reopen()?;
                let mut out = io::stdout().lock();
                io::copy(&mut file, &mut out)?;
                out.flush()
            }
            Inner::File { mut tmp, dest } => {
                tmp.flush()?;
                tmp.as_file().sync_all()?;
                tmp.persist(&dest).map_err(|e| e.error)?;
                Ok(())
            }
        }
    }
}

impl Write for AtomicOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Stdout(tmp) => tmp.write(buf),
            Inner::File { tmp, .. } => tmp.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Stdout(tmp) | Inner::File { tmp, .. } => tmp.flush(),
        }
    }
}

/// The instance base of a project's `web_url`: the URL minus the trailing `/<project_path>`
/// (`https://gitlab.example.com/group/p` → `https://gitlab.example.com`; a relative URL root
/// such as `/gitlab` stays). `None` when the URL does not end with the path.
pub fn instance_base(web_url: &str, project_path: &str) -> Option<String> {
    let path = project_path.trim_matches('/');
    if path.is_empty() {
        return None;
    }
    let web_url = web_url.trim_end_matches('/');
    let base = web_url.strip_suffix(path)?.strip_suffix('/')?;
    let (scheme, rest) = base.split_once("://")?;
    (!scheme.is_empty() && !rest.is_empty() && !rest.starts_with('/')).then(|| base.to_owned())
}

/// The instance base every row of a validated plan shares (`None` for a plan without rows,
/// or rows whose `web_url` does not end with their path): how GitLab names itself, whatever
/// URL `apply` is given. `apply`'s run lock is keyed by it.
pub(crate) fn plan_instance_base(rows: &[PlanRow]) -> Option<String> {
    rows.iter().find_map(|r| instance_base(&r.web_url, &r.project_path))
}

/// Read and validate a plan file. See [`parse_plan`] for what is refused.
pub fn read_plan(path: &Path) -> Result<Vec<PlanRow>, PlanError> {
    let file = crate::redact::path_excerpt(path);
    let bytes = std::fs::read(path).map_err(|e| PlanError {
        file: file.clone(),
        line: 0,
        message: format!("cannot read the plan: {e}"),
        hint: None,
    })?;
    parse_plan(&bytes, &file)
}

/// Quote untrusted cell text for an error message: credentials masked, control characters
/// neutralised, at most 60 characters.
fn excerpt(cell: &str) -> String {
    const MAX: usize = 60;
    let clean = sanitize_for_terminal(&crate::redact::mask_userinfo(cell));
    let text = if clean.chars().count() > MAX {
        let mut cut: String = clean.chars().take(MAX - 1).collect();
        cut.push('…');
        cut
    } else {
        clean
    };
    format!("`{text}`")
}

/// Builds errors for one file.
struct Errors<'a> {
    file: &'a str,
}

impl Errors<'_> {
    fn at(&self, line: usize, message: impl Into<String>) -> PlanError {
        PlanError { file: self.file.to_owned(), line, message: message.into(), hint: None }
    }

    fn hint(&self, line: usize, message: impl Into<String>, hint: impl Into<String>) -> PlanError {
        PlanError {
            file: self.file.to_owned(),
            line,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// Parse and validate plan bytes (`file` names the source in errors). Rows come back in
/// file order; [`sort_rows`] puts them in plan order.
///
/// Accepted: a UTF-8 byte-order mark, CRLF or LF line endings, rows in any order, deleted
/// rows, wholly empty records (a spreadsheet's trailing `,,,` rows), `update` demoted to
/// `skip`, edited `reason` and `new_url` (the planned `new_url` stays sealed in `observed`, so
/// `apply` can list the edits). Refused, with the record's physical line:
/// non-UTF-8 bytes; an empty file; a header that is not exactly [`PLAN_COLUMNS`]; a record
/// with another number of fields; a bad number or unknown code; a pull row with a `mirror_id`
/// or a push row without one; a duplicate key; an `observed` cell that is malformed, belongs
/// to another row, shows a changed action other than `update` → `skip`, or no longer fits an
/// edited sealed column (every column but `action`, `new_url`, `reason`); an `update` row
/// missing `new_url` or `new_auth`; a `service` row missing `new_user`, `new_user` on a row
/// that is not `service`, or a `new_user` that looks like a token; credentials in `new_url`;
/// `new_mirror_user` on a push row; target columns filled on a row planned as `skip` or
/// `manual`; a `web_url` that does not end with its `project_path`, or rows on different
/// instance bases.
pub(crate) fn parse_plan(bytes: &[u8], file: &str) -> Result<Vec<PlanRow>, PlanError> {
    Ok(parse_plan_lines(bytes, file)?.into_iter().map(|(_, row)| row).collect())
}

/// [`parse_plan`], with each row's physical line (1 = header), so that checks made later
/// (by `apply`, against the credentials it is given) can name the line too.
pub(crate) fn parse_plan_lines(
    bytes: &[u8],
    file: &str,
) -> Result<Vec<(usize, PlanRow)>, PlanError> {
    let errors = Errors { file };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        errors.hint(line, "the plan is not valid UTF-8", "save the file as CSV UTF-8")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(errors.hint(
            1,
            "the plan is empty: expected a header row and one row per mirror",
            "write a plan with `glmirror plan --out FILE`",
        ));
    }

    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = reader.records();
    let mut lines = LineCursor::new(text);
    let header = next_record(&mut records, &mut lines, &errors)?
        .ok_or_else(|| errors.at(1, "the plan has no header row"))?;
    let columns = check_header(&header.0, header.1, &errors)?;

    let mut rows = Vec::new();
    let mut seen: HashMap<RowKey, usize> = HashMap::new();
    let mut base: Option<(String, usize)> = None;
    while let Some((record, line)) = next_record(&mut records, &mut lines, &errors)? {
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let row = parse_row(&record, columns, line, &errors)?;
        if let Some(first) = seen.insert(row.key(), line) {
            let mirror = match row.mirror_id {
                Some(id) => format!("push mirror {id}"),
                None => "pull mirror".to_owned(),
            };
            return Err(errors.hint(
                line,
                format!(
                    "duplicate row: project {} {mirror} is already on line {first}",
                    row.project_id
                ),
                "each mirror may appear once; delete one of the two rows",
            ));
        }
        let row_base = instance_base(&row.web_url, &row.project_path).ok_or_else(|| {
            errors.at(
                line,
                format!(
                    "web_url {} does not end with the project path {}",
                    excerpt(&row.web_url),
                    excerpt(&row.project_path)
                ),
            )
        })?;
        match &base {
            None => base = Some((row_base, line)),
            Some((first, first_line)) if *first != row_base => {
                return Err(errors.hint(
                    line,
                    format!(
                        "web_url is on another GitLab instance ({}) than line {first_line} ({})",
                        excerpt(&row_base),
                        excerpt(first)
                    ),
                    "a plan covers one GitLab instance; keep only rows planned against it",
                ));
            }
            Some(_) => {}
        }
        rows.push((line, row));
    }
    Ok(rows)
}

type Records<'r> = csv::StringRecordsIter<'r, &'r [u8]>;

/// The next record and its physical line (1-based), or `None` at the end.
fn next_record(
    records: &mut Records<'_>,
    lines: &mut LineCursor<'_>,
    errors: &Errors<'_>,
) -> Result<Option<(csv::StringRecord, usize)>, PlanError> {
    match records.next() {
        None => Ok(None),
        Some(Ok(record)) => {
            let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
            Ok(Some((record, line)))
        }
        Some(Err(e)) => {
            let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
            Err(errors
                .at(line, format!("not valid CSV: {}", sanitize_for_terminal(&e.to_string()))))
        }
    }
}

/// Counts lines incrementally as records move forward through the text, so a plan of N
/// rows costs O(size), not O(N × size).
struct LineCursor<'t> {
    bytes: &'t [u8],
    /// Bytes before `at` are counted...
    at: usize,
    /// ...and hold `newlines` line feeds.
    newlines: usize,
}

impl<'t> LineCursor<'t> {
    fn new(text: &'t str) -> Self {
        LineCursor { bytes: text.as_bytes(), at: 0, newlines: 0 }
    }

    /// `physical_line` (the plain definition, in the tests) of a record starting at `offset`.
    fn line_at(&mut self, offset: u64) -> usize {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX).min(self.bytes.len());
        if offset < self.at {
            // Records only move forward; recount from the start if that ever changes.
            self.at = 0;
            self.newlines = 0;
        }
        self.newlines += self.bytes[self.at..offset].iter().filter(|b| **b == b'\n').count();
        self.at = offset;
        let mut line = self.newlines + 1;
        let mut at = offset;
        while at < self.bytes.len() && matches!(self.bytes[at], b'\r' | b'\n') {
            if self.bytes[at] == b'\n' {
                line += 1;
            }
            at += 1;
        }
        line
    }
}

/// The 1-based line of the record starting at byte `offset`. The csv crate's own line counter
/// drifts with CRLF endings, so count `\n`s, and step over line terminators the reader may
/// report as the start of the record.
#[cfg(test)] // the plain definition, kept to check LineCursor against
fn physical_line(text: &str, offset: u64) -> usize {
    let bytes = text.as_bytes();
    let mut at = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
    let mut line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
    while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
        if bytes[at] == b'\n' {
            line += 1;
        }
        at += 1;
    }
    line
}

/// Check the header; returns how many columns the plan has (with or without `probe`).
fn check_header(
    header: &csv::StringRecord,
    line: usize,
    errors: &Errors<'_>,
) -> Result<usize, PlanError> {
    let found: Vec<&str> = header.iter().map(str::trim).collect();
    if found == PLAN_COLUMNS || found == PLAN_COLUMNS[..PLAN_COLUMNS_WITHOUT_PROBE] {
        return Ok(found.len());
    }
    // A plan without the optional last column is compared with the columns before it.
    let expected: &[&str] = if found.contains(&"probe") {
        &PLAN_COLUMNS
    } else {
        &PLAN_COLUMNS[..PLAN_COLUMNS_WITHOUT_PROBE]
    };
    let hint = "keep the header row exactly as `glmirror plan` wrote it: the columns from \
                project_id to observed (and probe, when present), in that order";
    let all_known = found.iter().all(|c| PLAN_COLUMNS.contains(c));
    for (i, name) in found.iter().enumerate() {
        if all_known && found[..i].contains(name) {
            return Err(errors.hint(
                line,
                format!("the header names column {} twice", excerpt(name)),
                hint,
            ));
        }
    }
    let missing: Vec<&str> = expected.iter().copied().filter(|c| !found.contains(c)).collect();
    let extra: Vec<String> =
        found.iter().filter(|c| !PLAN_COLUMNS.contains(c)).map(|c| excerpt(c)).collect();
    let message = if missing.is_empty() && extra.is_empty() {
        let (pos, (got, want)) = found
            .iter()
            .zip(expected.iter().copied())
            .enumerate()
            .find(|(_, (got, want))| *got != want)
            .expect("same set of distinct names in another order differs somewhere");
        format!(
            "the header's columns are in another order: column {} is {}, expected `{want}`",
            pos + 1,
            excerpt(got)
        )
    } else {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing column(s) {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            parts.push(format!("unknown column(s) {}", extra.join(", ")));
        }
        format!("not a glmirror plan header: {}", parts.join("; "))
    };
    let report_like = missing.is_empty()
        && found.iter().any(|c| crate::plan::REPORT_COLUMNS[PLAN_COLUMNS.len()..].contains(c));
    let hint = if report_like {
        "this looks like a report written by `apply`; pass the plan file instead"
    } else {
        hint
    };
    Err(errors.hint(line, message, hint))
}

/// Parse one code cell, with a message naming the column and the accepted codes.
fn code<T: FromStr>(
    cell: &str,
    column: &str,
    accepted: &[&str],
    line: usize,
    errors: &Errors<'_>,
) -> Result<T, PlanError> {
    cell.trim().parse().map_err(|_| {
        errors.at(
            line,
            format!(
                "unknown {column} {} (expected one of: {})",
                excerpt(cell),
                accepted.join(", ")
            ),
        )
    })
}

fn optional_code<T: FromStr>(
    cell: &str,
    column: &str,
    accepted: &[&str],
    line: usize,
    errors: &Errors<'_>,
) -> Result<Option<T>, PlanError> {
    if cell.trim().is_empty() {
        Ok(None)
    } else {
        code(cell, column, accepted, line, errors).map(Some)
    }
}

fn number(cell: &str, column: &str, line: usize, errors: &Errors<'_>) -> Result<u64, PlanError> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Err(errors.at(line, format!("{column} is empty")));
    }
    cell.parse().map_err(|_| errors.at(line, format!("{column} {} is not a number", excerpt(cell))))
}

/// The position of a known column in [`PLAN_COLUMNS`].
fn column_index(name: &str) -> usize {
    PLAN_COLUMNS.iter().position(|c| *c == name).expect("callers pass a known column name")
}

/// Whether a `new_url` carries credentials that must never be in a plan: any userinfo on
/// http(s) (the user goes in `new_user`), and a password or a `*****` mask on any scheme (an
/// SSH user such as `git@` may stay).
pub(crate) fn has_credentials(url: &str) -> bool {
    let Some(Authority { scheme, userinfo: Some(userinfo), .. }) = split_authority(url) else {
        return false;
    };
    let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    http || userinfo.contains(':') || userinfo.contains(MASK)
}

fn parse_row(
    record: &csv::StringRecord,
    columns: usize,
    line: usize,
    errors: &Errors<'_>,
) -> Result<PlanRow, PlanError> {
    if record.len() != columns {
        return Err(errors.hint(
            line,
            format!("expected {columns} fields, found {}", record.len()),
            "a cell holding a comma, quote or line break must be quoted (\"…\", quotes doubled)",
        ));
    }
    let cells: Vec<&str> = record.iter().map(unguard).collect();
    check_cells(&cells, line, errors)?;
    let cell = |name: &'static str| cells[column_index(name)];

    let project_id = number(cell("project_id"), "project_id", line, errors)?;
    let mirror_type: MirrorType =
        code(cell("mirror_type"), "mirror_type", &["pull", "push"], line, errors)?;
    let diagnosis_codes: Vec<&str> = Diagnosis::ALL.iter().map(|d| d.code()).collect();
    let diagnosis: Option<Diagnosis> =
        optional_code(cell("diagnosis"), "diagnosis", &diagnosis_codes, line, errors)?;
    // A mirror GitLab would not let `plan` read: nothing known, so `current_auth` is empty,
    // and a push list that failed is one row without a `mirror_id`.
    let unreadable = crate::plan::unreadable::is_unreadable(diagnosis);
    let mirror_id = match (mirror_type, cell("mirror_id").trim()) {
        (MirrorType::Pull, "") => None,
        (MirrorType::Pull, _) => {
            return Err(errors.at(line, "a pull row has no mirror_id; leave it empty"));
        }
        (MirrorType::Push, "") if unreadable => None,
        (MirrorType::Push, "") => {
            return Err(errors.at(line, "a push row needs its mirror_id"));
        }
        (MirrorType::Push, id) => Some(number(id, "mirror_id", line, errors)?),
    };
    let current_auth: CurrentAuth = match cell("current_auth").trim() {
        "" if unreadable => CurrentAuth::None,
        auth => code(
            auth,
            "current_auth",
            &["none", "user", "password", "user+password"],
            line,
            errors,
        )?,
    };
    let action: Action =
        code(cell("action"), "action", &["update", "skip", "manual"], line, errors)?;
    let new_auth: Option<NewAuth> = optional_code(
        cell("new_auth"),
        "new_auth",
        &["service", "none", "unchanged"],
        line,
        errors,
    )?;
    let fixes = Fix::parse_list(cell("fixes")).map_err(|e| {
        let known: Vec<&str> = Fix::ALL.iter().map(|f| f.code()).collect();
        errors.at(
            line,
            format!(
                "unknown fix {} (expected `;`-separated codes from: {})",
                excerpt(&e.value),
                known.join(", ")
            ),
        )
    })?;

    let row = PlanRow {
        project_id,
        project_path: cell("project_path").to_owned(),
        web_url: cell("web_url").to_owned(),
        mirror_type,
        mirror_id,
        current_url: cell("current_url").to_owned(),
        current_auth,
        current_mirror_user: cell("current_mirror_user").to_owned(),
        update_status: cell("update_status").to_owned(),
        last_error: cell("last_error").to_owned(),
        diagnosis,
        action,
        new_url: cell("new_url").trim().to_owned(),
        new_user: cell("new_user").to_owned(),
        new_auth,
        new_mirror_user: cell("new_mirror_user").to_owned(),
        fixes,
        reason: cell("reason").to_owned(),
        observed: cell("observed").trim().to_owned(),
        probe: if columns > PLAN_COLUMNS_WITHOUT_PROBE {
            let codes: Vec<&str> = ProbeCode::ALL.iter().map(|c| c.code()).collect();
            optional_code(cells[column_index("probe")], "probe", &codes, line, errors)?
        } else {
            None
        },
    };

    // The seal over key, action and target cells; when it breaks, a specific complaint about
    // the target cells (if there is one) says more than "edited".
    if let Err(reason) = check_observed_cell(&row.observed, SealKey::of(&row), row.action) {
        if !reason.starts_with("action was changed") {
            check_targets(&row, line, errors)?;
        }
        return Err(errors.hint(
            line,
            reason,
            "a reviewer may only change action from update to skip, and edit new_url or \
             reason; run `glmirror plan` again for a new plan",
        ));
    }
    check_targets(&row, line, errors)?;
    Ok(row)
}

/// No control characters, no tab or line break outside text cells, no over-long `new_url`
/// (`cell::check_cell`); checked before anything else of the row, so the reason is the real
/// one and no message quotes such a cell.
fn check_cells(cells: &[&str], line: usize, errors: &Errors<'_>) -> Result<(), PlanError> {
    for (column, cell) in PLAN_COLUMNS.iter().zip(cells) {
        crate::plan::cell::check_cell(column, cell).map_err(|message| {
            errors.hint(
                line,
                message,
                "glmirror never writes such characters: undo the edit, or plan again",
            )
        })?;
    }
    Ok(())
}

/// The target columns must fit the action (docs/plan-format.md).
fn check_targets(row: &PlanRow, line: usize, errors: &Errors<'_>) -> Result<(), PlanError> {
    if row.mirror_type == MirrorType::Push && !row.new_mirror_user.is_empty() {
        return Err(errors.at(line, "new_mirror_user must be empty on a push row"));
    }
    if has_credentials(&row.new_url) {
        return Err(errors.hint(
            line,
            "new_url must not contain credentials",
            "put the username in new_user and set new_auth to service; the token is supplied \
             at apply time and never written to the plan",
        ));
    }
    if crate::redact::looks_like_token(&row.new_user) {
        // Never echo it: it may be the live token.
        return Err(errors.hint(
            line,
            "new_user looks like an access token",
            "new_user names the account (or says <token>); the token itself is supplied at \
             apply time and must never be written to the plan",
        ));
    }
    match row.action {
        Action::Update => {
            if row.new_url.is_empty() {
                return Err(errors.at(line, "an update row needs new_url"));
            }
            let Some(auth) = row.new_auth else {
                return Err(
                    errors.at(line, "an update row needs new_auth (service, none or unchanged)")
                );
            };
            if auth == NewAuth::Service && row.new_user.trim().is_empty() {
                return Err(errors.at(
                    line,
                    "a service row needs new_user (the username sent with the token, or <token>)",
                ));
            }
            if auth != NewAuth::Service && !row.new_user.is_empty() {
                return Err(errors.at(
                    line,
                    format!("new_user is only used when new_auth is service, not {auth}"),
                ));
            }
        }
        Action::Skip | Action::Manual => {
            // A demoted update row keeps its targets (they are ignored); a row planned as skip
            // or manual never had any, so filled targets mean an edit apply would not honour.
            let planned = planned_action(&row.observed, SealKey::of(row));
            let filled = [
                ("new_url", row.new_url.is_empty()),
                ("new_user", row.new_user.is_empty()),
                ("new_auth", row.new_auth.is_none()),
                ("new_mirror_user", row.new_mirror_user.is_empty()),
            ]
            .into_iter()
            .find(|(_, empty)| !empty);
            if planned != Some(Action::Update)
                && let Some((column, _)) = filled
            {
                return Err(errors.hint(
                    line,
                    format!("{column} is filled on a {} row; it must be empty", row.action),
                    "skip and manual rows are never written; put a suggested fix in reason",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::cell::guard;
    use crate::plan::fingerprint::{MirrorFlags, ObservedState, observed_cell};
    use crate::plan::row::tests::sample_row;

    fn observed(row: &PlanRow) -> String {
        let state = ObservedState {
            masked_url: row.current_url.clone(),
            current_auth: row.current_auth,
            enabled: true,
            mirror_user_id: None,
            flags: MirrorFlags::default(),
        };
        observed_cell(SealKey::of(row), row.action, &state)
    }

    /// A valid update row.
    fn update_row(project_id: u64, mirror_type: MirrorType, mirror_id: Option<u64>) -> PlanRow {
        let mut row = sample_row(project_id, mirror_type, mirror_id);
        row.action = Action::Update;
        row.new_url = "https://github.com/org/r.git".into();
        row.new_user = "svc-mirror".into();
        row.new_auth = Some(NewAuth::Service);
        if mirror_type == MirrorType::Pull {
            row.new_mirror_user = "svc-gitlab".into();
        }
        row.fixes = vec![Fix::ServiceToken, Fix::MirrorUser];
        row.reason = "replace the expired credentials with the service account's".into();
        row.observed = observed(&row);
        row
    }

    fn skip_row(project_id: u64, mirror_type: MirrorType, mirror_id: Option<u64>) -> PlanRow {
        let mut row = sample_row(project_id, mirror_type, mirror_id);
        row.observed = observed(&row);
        row
    }

    fn manual_row(project_id: u64) -> PlanRow {
        let mut row = sample_row(project_id, MirrorType::Pull, None);
        row.action = Action::Manual;
        row.diagnosis = Some(Diagnosis::HostKey);
        row.reason = "=HYPERLINK(\"x\") host key changed; re-create the mirror".into();
        row.observed = observed(&row);
        row
    }

    fn sample_plan() -> Vec<PlanRow> {
        vec![
            update_row(3, MirrorType::Push, Some(20)),
            skip_row(1, MirrorType::Pull, None),
            update_row(3, MirrorType::Pull, None),
            manual_row(2),
            update_row(3, MirrorType::Push, Some(4)),
        ]
    }

    fn write_to_string(rows: &[PlanRow]) -> String {
        let mut buf = Vec::new();
        write_plan(rows, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn writes_header_sorted_rows_and_lf() {
        let text = write_to_string(&sample_plan());
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), PLAN_COLUMNS.join(","));
        assert!(!text.contains('\r'));
        assert!(text.ends_with('\n'));
        let ids: Vec<String> = text
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{}/{}/{}", f[0], f[3], f[4])
            })
            .collect();
        assert_eq!(ids, vec!["1/pull/", "2/pull/", "3/pull/", "3/push/4", "3/push/20"]);
    }

    #[test]
    fn round_trip() {
        let mut rows = sample_plan();
        let text = write_to_string(&rows);
        let back = parse_plan(text.as_bytes(), "plan.csv").unwrap();
        sort_rows(&mut rows);
        assert_eq!(back, rows);
    }

    #[test]
    fn the_probe_column_is_optional_on_reading() {
        let mut rows = sample_plan();
        rows[0].probe = Some(ProbeCode::NoAccessOrMissing);
        rows[2].probe = Some(ProbeCode::Ok);
        let text = write_to_string(&rows);
        assert!(text.lines().next().unwrap().ends_with(",observed,probe"));
        let back = parse_plan(text.as_bytes(), "p").unwrap();
        sort_rows(&mut rows);
        assert_eq!(back, rows);
        // A plan written before the column existed: 19 columns, every probe cell empty.
        let legacy: String = write_to_string(&sample_plan())
            .lines()
            .map(|l| {
                let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(l.as_bytes());
                let rec = r.records().next().unwrap().unwrap();
                let mut w = csv_writer(Vec::new());
                w.write_record(rec.iter().take(PLAN_COLUMNS_WITHOUT_PROBE)).unwrap();
                String::from_utf8(w.into_inner().unwrap()).unwrap()
            })
            .collect();
        assert!(legacy.lines().next().unwrap().ends_with(",reason,observed"));
        let back = parse_plan(legacy.as_bytes(), "p").unwrap();
        assert_eq!(back.len(), 5);
        assert!(back.iter().all(|r| r.probe.is_none()));
        // Each record must have as many fields as the header.
        let mixed = legacy + write_to_string(&rows).lines().nth(1).unwrap();
        let err = parse_plan(mixed.as_bytes(), "p").unwrap_err();
        assert!(err.message.contains("expected 19 fields, found 20"), "{err}");
        // An unknown code is refused like any other.
        let bad = write_to_string(&rows).replacen(",no-access-or-missing", ",maybe", 1);
        let err = parse_plan(bad.as_bytes(), "p").unwrap_err();
        assert!(err.message.contains("unknown probe `maybe`"), "{err}");
    }

    #[test]
    fn a_plan_with_a_huge_reason_reads_back() {
        let mut row = manual_row(5);
        row.reason = format!("=refused: {}", "u".repeat(2 * crate::plan::cell::MAX_REASON_BYTES));
        row.observed = observed(&row);
        let text = write_to_string(std::slice::from_ref(&row));
        let read = parse_plan(text.as_bytes(), "p").expect("glmirror reads what it wrote");
        assert!(read[0].reason.ends_with('…') && read[0].reason.starts_with("=refused"));
    }

    #[test]
    fn formula_guard_on_write_and_read() {
        for (cell, written) in [
            ("=1+2", "'=1+2"),
            ("+x", "'+x"),
            ("-x", "'-x"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("'abc", "'abc"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(guard(cell), written, "{cell:?}");
            assert_eq!(unguard(written), cell, "{written:?}");
        }
        // What a spreadsheet may save: the guard is removed only before a guarded character.
        assert_eq!(unguard("'hello"), "'hello");
        let mut row = manual_row(5);
        row.last_error = "-1 errors".into();
        row.current_mirror_user = "@someone".into();
        row.observed = observed(&row);
        let text = write_to_string(std::slice::from_ref(&row));
        assert!(text.contains(",'-1 errors,"), "{text}");
        assert!(text.contains(",'@someone,"), "{text}");
        assert!(text.contains("\"'=HYPERLINK(\"\"x\"\") host"), "{text}");
        assert_eq!(parse_plan(text.as_bytes(), "p").unwrap(), vec![row]);
    }

    #[test]
    fn accepts_bom_crlf_reordered_and_blank_rows() {
        let text = write_to_string(&sample_plan());
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1..].reverse();
        let crlf = format!("\u{feff}{}\r\n,,,,,,,,,,,,,,,,,,,\r\n", lines.join("\r\n"));
        let rows = parse_plan(crlf.as_bytes(), "plan.csv").unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            (rows[0].project_id, rows[0].mirror_type, rows[0].mirror_id),
            (3, MirrorType::Push, Some(20))
        );
    }

    #[test]
    fn accepts_demotion_and_edits_a_reviewer_may_make() {
        let mut rows = sample_plan();
        let mut text = write_to_string(&rows);
        // Demote an update row: its targets stay and are ignored.
        text = text.replacen(",update,", ",skip,", 1);
        rows.sort_by_key(PlanRow::key);
        let back = parse_plan(text.as_bytes(), "p").unwrap();
        assert_eq!(back[2].action, Action::Skip);
        assert_eq!(back[2].new_url, rows[2].new_url);
        // Edit new_url and reason on an update row.
        let text = write_to_string(&rows)
            .replace("https://github.com/org/r.git,svc", "https://github.com/org/renamed.git,svc")
            .replace(
                "replace the expired credentials with the service account's",
                "\"Replace, quickly, the \"\"expired\"\" credentials\"",
            );
        let back = parse_plan(text.as_bytes(), "p").unwrap();
        assert!(back.iter().any(|r| r.new_url == "https://github.com/org/renamed.git"));
    }

    /// (description, file text, expected line, expected message fragment)
    fn bad_files() -> Vec<(&'static str, Vec<u8>, usize, &'static str)> {
        let good = write_to_string(&sample_plan());
        let header = PLAN_COLUMNS.join(",");
        let lines: Vec<String> = good.lines().map(str::to_owned).collect();
        let with_line = |i: usize, new: String| -> Vec<u8> {
            let mut l = lines.clone();
            l[i] = new;
            (l.join("\n") + "\n").into_bytes()
        };
        let edit = |i: usize, from: &str, to: &str| -> Vec<u8> {
            assert!(lines[i].contains(from), "{} lacks {from}", lines[i]);
            with_line(i, lines[i].replacen(from, to, 1))
        };
        // Line 4 (3/pull update) changed and sealed again, as `plan` would have written it.
        let resealed = |change: fn(&mut PlanRow)| -> Vec<u8> {
            let mut rows = sample_plan();
            sort_rows(&mut rows);
            change(&mut rows[2]);
            rows[2].observed = observed(&rows[2]);
            write_to_string(&rows).into_bytes()
        };
        // Line numbers: 1 header, 2 = 1/pull skip, 3 = 2/pull manual, 4 = 3/pull update,
        // 5 = 3/push/4 update, 6 = 3/push/20 update.
        let mut bad = vec![
            ("empty", Vec::new(), 1, "the plan is empty"),
            ("bom only", "\u{feff}\r\n".as_bytes().to_vec(), 1, "the plan is empty"),
            ("not utf-8", [good.as_bytes(), b"9,\xff\xfe,x\n"].concat(), 7, "not valid UTF-8"),
            (
                "renamed column",
                with_line(0, header.replace("new_auth", "new_auth_kind")),
                1,
                "missing column(s) new_auth; unknown column(s) `new_auth_kind`",
            ),
            (
                "missing column",
                with_line(0, header.replace(",observed", "")),
                1,
                "missing column(s) observed",
            ),
            (
                "reordered columns",
                with_line(0, header.replace("new_url,new_user", "new_user,new_url")),
                1,
                "column 13 is `new_user`, expected `new_url`",
            ),
            (
                "duplicated column",
                with_line(0, header.replace("reason", "action")),
                1,
                "names column `action` twice",
            ),
            (
                "wrong field count",
                edit(3, ",update,", ",update,extra,"),
                4,
                "expected 20 fields, found 21",
            ),
            (
                "bad project id",
                edit(2, "2,group", "two,group"),
                3,
                "project_id `two` is not a number",
            ),
            ("unknown mirror type", edit(4, ",push,", ",pushy,"), 5, "unknown mirror_type `pushy`"),
            (
                "bad mirror id",
                edit(4, ",push,4,", ",push,x4,"),
                5,
                "mirror_id `x4` is not a number",
            ),
            (
                "pull with mirror id",
                edit(3, ",pull,,", ",pull,9,"),
                4,
                "a pull row has no mirror_id",
            ),
            ("push without mirror id", edit(4, ",push,4,", ",push,,"), 5, "needs its mirror_id"),
            ("unknown action", edit(3, ",update,", ",upd8,"), 4, "unknown action `upd8`"),
            ("unknown auth", edit(3, ",service,", ",svc,"), 4, "unknown new_auth `svc`"),
            (
                "unknown current auth",
                edit(3, ",user+password,", ",token,"),
                4,
                "unknown current_auth `token`",
            ),
            (
                "unknown fix",
                edit(3, "service-token;", "service-tok3n;"),
                4,
                "unknown fix `service-tok3n`",
            ),
            (
                "unknown diagnosis",
                edit(3, ",auth-failed,", ",auth-broken,"),
                4,
                "unknown diagnosis",
            ),
            ("duplicate key", with_line(5, lines[4].clone()), 6, "already on line 5"),
            (
                "manual promoted",
                edit(2, ",manual,", ",update,"),
                3,
                "action was changed from manual to update; only update → skip is allowed",
            ),
            ("skip promoted", edit(1, ",skip,", ",manual,"), 2, "changed from skip to manual"),
            ("observed edited", edit(3, ",v1-", ",v1-0"), 4, "not a glmirror fingerprint"),
            ("key edited", edit(4, ",push,4,", ",push,5,"), 5, "does not belong to this row"),
            (
                "update without new_url",
                edit(3, "https://github.com/org/r.git", ""),
                4,
                "needs new_url",
            ),
            ("update without new_auth", edit(3, ",service,", ",,"), 4, "needs new_auth"),
            ("service without new_user", edit(3, ",svc-mirror,", ",,"), 4, "needs new_user"),
            (
                "token as new_user",
                edit(3, ",svc-mirror,", ",glpat-CANARY0123456789,"),
                4,
                "new_user looks like an access token",
            ),
            (
                "new_user without service",
                edit(3, ",service,", ",unchanged,"),
                4,
                "new_user is only used when new_auth is service",
            ),
            (
                "credentials in new_url",
                edit(3, "https://github.com/org", "https://u:glpat-CANARY@github.com/org"),
                4,
                "new_url must not contain credentials",
            ),
            (
                "manual with new_url",
                edit(2, ",manual,,", ",manual,https://h/x.git,"),
                3,
                "new_url is filled",
            ),
            (
                "push with mirror user",
                edit(4, ",svc-mirror,service,", ",svc-mirror,service,someone"),
                5,
                "new_mirror_user must be empty",
            ),
            (
                "other instance",
                resealed(|r| {
                    r.web_url = r.web_url.replace("gitlab.example.com", "gitlab.other.com")
                }),
                4,
                "another GitLab instance (`https://gitlab.other.com`) than line 2",
            ),
            (
                "web_url without path",
                resealed(|r| r.web_url = r.web_url.replace("/group/p3", "/elsewhere/p3")),
                4,
                "does not end with",
            ),
            (
                "descriptive column edited",
                edit(3, ",fatal: Authentication failed,", ",fatal: something else,"),
                4,
                "last_error was edited, and only action (update → skip), new_url and reason may be",
            ),
            (
                "report given",
                {
                    let mut l = lines.clone();
                    l[0] = crate::plan::REPORT_COLUMNS.join(",");
                    (l[..1].join("\n") + "\n").into_bytes()
                },
                1,
                "unknown column(s) `outcome`",
            ),
        ];
        // Headerless: a data row where the header should be.
        bad.push((
            "no header",
            (lines[1..].join("\n") + "\n").into_bytes(),
            1,
            "not a glmirror plan header",
        ));
        bad
    }

    #[test]
    fn refuses_bad_files_with_line_numbers() {
        for (what, bytes, line, fragment) in bad_files() {
            let err = parse_plan(&bytes, "plan.csv").expect_err(what);
            assert_eq!(err.line, line, "{what}: {err}");
            let shown = err.to_string();
            assert!(shown.starts_with(&format!("plan.csv:{line}: ")), "{what}: {shown}");
            assert!(shown.contains(fragment), "{what}: {shown}");
            assert!(!shown.contains("CANARY"), "{what}: {shown}");
            assert!(!format!("{:?}", err.hint).contains("CANARY"));
        }
        // CRLF line endings report the same physical lines.
        for (what, bytes, line, _) in bad_files() {
            let Ok(text) = String::from_utf8(bytes) else { continue };
            if text.is_empty() {
                continue;
            }
            let crlf = text.replace('\n', "\r\n");
            let err = parse_plan(crlf.as_bytes(), "plan.csv").expect_err(what);
            assert_eq!(err.line, line, "{what} (CRLF): {err}");
        }
    }

    #[test]
    fn line_cursor_agrees_with_counting_from_the_start() {
        let text = "h\r\na,\"x\ny\"\r\n\r\nb\n\nc\n";
        let mut cursor = LineCursor::new(text);
        for offset in 0..=text.len() as u64 {
            assert_eq!(cursor.line_at(offset), physical_line(text, offset), "offset {offset}");
        }
        // Going back recounts rather than going wrong.
        assert_eq!(cursor.line_at(3), physical_line(text, 3));
    }

    #[test]
    fn multi_line_cells_keep_physical_line_numbers() {
        // glmirror folds line breaks when it writes, but a reviewer may paste them into reason.
        let text = write_to_string(&sample_plan()).replacen(
            ",nothing to do,",
            ",\"line one\nline two\nline three\",",
            1,
        ); // 1/pull, 3 lines
        // The manual row (2/pull) now starts on physical line 5.
        let bad = text.replacen(",manual,", ",update,", 1);
        let err = parse_plan(bad.as_bytes(), "p.csv").unwrap_err();
        assert_eq!(err.line, 5, "{err}");
    }

    #[test]
    fn untrusted_text_in_errors_is_sanitised_and_cut() {
        let good = write_to_string(&sample_plan());
        // A control character is refused by name, never quoted.
        let evil = format!("\u{1b}[2J{}", "x".repeat(200));
        let bad = good.replacen(",push,4,", &format!(",{evil},4,"), 1);
        let err = parse_plan(bad.as_bytes(), "p").unwrap_err();
        let shown = err.to_string();
        assert!(!shown.contains('\u{1b}'), "{shown}");
        assert!(shown.contains("mirror_type contains the control character U+001B"), "{shown}");
        // A long cell is quoted cut.
        let long = format!("[2J{}", "x".repeat(200));
        let bad = good.replacen(",push,4,", &format!(",{long},4,"), 1);
        let shown = parse_plan(bad.as_bytes(), "p").unwrap_err().to_string();
        assert!(shown.contains('…') && shown.len() < 200, "{shown}");
    }

    #[test]
    fn instance_base_strips_the_project_path() {
        let cases = [
            (
                "https://gitlab.example.com/group/sub/p",
                "group/sub/p",
                Some("https://gitlab.example.com"),
            ),
            ("https://h.example/gitlab/g/p", "g/p", Some("https://h.example/gitlab")),
            ("https://h.example:8443/g/p/", "g/p", Some("https://h.example:8443")),
            ("https://h.example/g/p", "g/q", None),
            ("https://h.example/xg/p", "g/p", None),
            ("g/p", "g/p", None),
            ("https://h/g/p", "", None),
        ];
        for (url, path, want) in cases {
            assert_eq!(instance_base(url, path).as_deref(), want, "{url} {path}");
        }
        assert_eq!(
            plan_instance_base(&sample_plan()).as_deref(),
            Some("https://gitlab.example.com")
        );
        assert_eq!(plan_instance_base(&[]), None);
    }

    #[test]
    fn file_io_is_atomic_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.csv");
        write_plan_file(&path, &sample_plan()).unwrap();
        let back = read_plan(&path).unwrap();
        assert_eq!(back.len(), 5);
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("plan.csv")], "no temp file left");
        // An unfinished output leaves the old file alone and no temp file behind.
        let mut out = AtomicOutput::create(&path).unwrap();
        out.write_all(b"partial").unwrap();
        drop(out);
        assert_eq!(read_plan(&path).unwrap().len(), 5);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = read_plan(&dir.path().join("missing.csv")).unwrap_err();
        assert_eq!(err.line, 0);
        assert!(err.to_string().contains("missing.csv: cannot read the plan"), "{err}");
    }

    #[test]
    fn streaming_writer_matches_write_plan() {
        let mut rows = sample_plan();
        sort_rows(&mut rows);
        let mut w = PlanWriter::new(Vec::new()).unwrap();
        for row in &rows {
            w.write_row(row).unwrap();
        }
        assert_eq!(String::from_utf8(w.finish().unwrap()).unwrap(), write_to_string(&rows));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[=+@\\-'\t\r\n\",; a-zé€😀]{0,20}",
                Just("=cmd|' /C calc'!A0".to_owned()),
                Just("''-x".to_owned()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
            #[test]
            fn arbitrary_text_survives_a_round_trip(
                path in text(), current_url in text(), user in text(), status in text(),
                error in text(), reason in text(), new_user in "[^\\s]{1,10}", url_tail in text(),
                update in any::<bool>(), push in any::<bool>(), id in 1u64..u64::MAX,
            ) {
                let (mirror_type, mirror_id) =
                    if push { (MirrorType::Push, Some(id)) } else { (MirrorType::Pull, None) };
                let mut row = if update { update_row(id, mirror_type, mirror_id) } else { skip_row(id, mirror_type, mirror_id) };
                row.project_path = format!("g/{path}");
                row.web_url = format!("https://gitlab.example.com/g/{path}");
                row.current_url = current_url;
                row.current_mirror_user = user;
                row.update_status = status;
                row.last_error = error;
                row.reason = reason;
                if update {
                    row.new_url = format!("https://github.com/{}", url_tail.trim());
                    row.new_user = new_user;
                }
                // As `plan` does: the cells are cleaned before the row is sealed.
                crate::plan::cell::clean_row(&mut row);
                if row.new_url.trim() != row.new_url || (update && row.new_user.is_empty()) {
                    // Cleaning left whitespace at an end of new_url (the reader trims it) or
                    // emptied new_user (refused): other tests cover those.
                    return Ok(());
                }
                row.observed = observed(&row);
                let text = write_to_string(std::slice::from_ref(&row));
                let back = parse_plan(text.as_bytes(), "p");
                prop_assert_eq!(back, Ok(vec![row]));
            }
        }
    }
}
