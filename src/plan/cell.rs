//! The one CSV cell writer: every CSV glmirror writes (the plan, the report, `status --format
//! csv`, `rewrite`) passes each cell through [`write_record`], and the plan reader checks
//! cells with [`check_cell`].
//!
//! Writing a cell: tokens this process holds are masked (`redact::mask_secrets`; URL userinfo
//! is masked where free text is made, with `redact::scrub`, because an SSH username in a URL
//! cell is not a secret), line breaks and tabs are folded to one space, other control
//! characters, bidirectional controls and zero-width characters are removed ([`clean`]), and the formula guard is
//! added ([`guard`]). The same rules apply to GitLab's text and to a reviewer's edits written
//! back in the report.
//!
//! Reading a plan cell: NUL and every other control character except tab, CR and LF refuse
//! the file; tab, CR and LF are refused too except in the free-text columns
//! ([`FREE_TEXT_COLUMNS`]), where a reviewer may paste them (they are folded when written).

use std::borrow::Cow;
use std::io::Write;

/// Plan columns that hold free text, where tab, CR and LF may appear when read (a reviewer's
/// `reason`, GitLab's text). Every other column (keys, codes, URLs, usernames, `observed`)
/// refuses them.
pub(crate) const FREE_TEXT_COLUMNS: [&str; 5] =
    ["project_path", "current_mirror_user", "update_status", "last_error", "reason"];

/// The longest `new_url` read, in bytes: the URL rules refuse longer URLs anyway.
pub(crate) const MAX_URL_BYTES: usize = 4096;

/// The longest `reason` read, in bytes: glmirror writes a few hundred; a reviewer's note fits
/// easily, a pasted log does not (it would be copied into the report).
pub(crate) const MAX_REASON_BYTES: usize = 4096;

/// The characters a spreadsheet may treat as the start of a formula.
fn is_guarded(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// Whether `cell` is `'`* followed by a guarded character.
fn needs_guard(cell: &str) -> bool {
    cell.trim_start_matches('\'').chars().next().is_some_and(is_guarded)
}

/// Add the formula guard to a cell when needed.
pub(crate) fn guard(cell: &str) -> Cow<'_, str> {
    if needs_guard(cell) { Cow::Owned(format!("'{cell}")) } else { Cow::Borrowed(cell) }
}

/// Remove the formula guard from a cell read back.
pub(crate) fn unguard(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_guard(rest) => rest,
        _ => cell,
    }
}

/// A `reason` as written: cut (at a character boundary, with `…`) well below
/// [`MAX_REASON_BYTES`], so the reader never refuses a reason glmirror wrote, even one
/// quoting a 4 KiB URL. Room is left for the formula guard and for masks longer than what
/// they replace.
pub(crate) fn cap_reason(reason: &str) -> String {
    const KEEP: usize = MAX_REASON_BYTES - 256;
    if reason.len() <= KEEP {
        return reason.to_owned();
    }
    let mut end = KEEP;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
}

/// A CSV writer with the house settings: RFC 4180 quoting where needed, LF line endings.
pub(crate) fn csv_writer<W: Write>(w: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(w)
}

/// Whether `c` is removed from a written cell: control characters (C0, DEL, C1), the
/// bidirectional controls that can make a cell read differently from what it holds, and the
/// zero-width characters (`redact::is_invisible`).
fn is_removed(c: char) -> bool {
    crate::redact::is_invisible(c)
}

/// Whether `c` is folded to a space in a written cell.
fn is_folded(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// A cell's text as written: each run of line breaks and tabs folded to one space, other
/// control characters, bidirectional controls and zero-width characters removed, then held
/// tokens masked (in this order, so a token split by an invisible character is still found).
/// Idempotent, and borrowed when there is nothing to change.
pub(crate) fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_removed(c) || is_folded(c)) {
        return crate::redact::mask_secrets(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut folding = false;
    for c in text.chars() {
        if is_folded(c) {
            if !folding {
                out.push(' ');
            }
            folding = true;
        } else if !is_removed(c) {
            out.push(c);
            folding = false;
        }
    }
    Cow::Owned(crate::redact::mask_secrets(&out).into_owned())
}

/// Clean every text cell of a plan row the way the writer will ([`clean`]). `plan` calls it
/// before sealing the row, so what is sealed is exactly what the file holds and GitLab text
/// with control characters (a hostile project path, an escape in an error) never breaks the
/// seal.
pub(crate) fn clean_row(row: &mut crate::plan::PlanRow) {
    for cell in [
        &mut row.project_path,
        &mut row.web_url,
        &mut row.current_url,
        &mut row.current_mirror_user,
        &mut row.update_status,
        &mut row.last_error,
        &mut row.new_url,
        &mut row.new_user,
        &mut row.new_mirror_user,
        &mut row.reason,
    ] {
        if let Cow::Owned(clean) = clean(cell) {
            *cell = clean;
        }
    }
}

/// Write one record: every cell [`clean`]ed, then formula-guarded.
pub(crate) fn write_record<W: Write, S: AsRef<str>>(
    csv: &mut csv::Writer<W>,
    cells: &[S],
) -> std::io::Result<()> {
    csv.write_record(cells.iter().map(|c| guard(&clean(c.as_ref())).into_owned()))?;
    Ok(())
}

/// What is wrong with one cell of a plan being read, if anything: a control character (which
/// one, by code point, never the cell), an invisible character outside the free-text columns,
/// or an over-long `new_url` or `reason`. `column` is the cell's column name.
pub(crate) fn check_cell(column: &str, cell: &str) -> Result<(), String> {
    let free_text = FREE_TEXT_COLUMNS.contains(&column);
    if let Some(c) = cell.chars().find(|&c| c.is_control() && !matches!(c, '\t' | '\r' | '\n')) {
        return Err(format!(
            "{column} contains the control character U+{:04X}; plan cells never hold control \
             characters",
            u32::from(c)
        ));
    }
    if !free_text && let Some(c) = cell.chars().find(|c| matches!(c, '\t' | '\r' | '\n')) {
        let what = if c == '\t' { "a tab" } else { "a line break" };
        return Err(format!("{column} contains {what}; only reason and other text cells may"));
    }
    if !free_text && let Some(c) = cell.chars().find(|&c| crate::redact::is_invisible(c)) {
        return Err(format!(
            "{column} contains the invisible character U+{:04X} (a bidirectional control or a \
             zero-width character); only reason and other text cells may",
            u32::from(c)
        ));
    }
    if column == "reason" && cell.len() > MAX_REASON_BYTES {
        return Err(format!(
            "reason is {} bytes long; a reason holds at most {MAX_REASON_BYTES} bytes",
            cell.len()
        ));
    }
    if column == "new_url" && cell.len() > MAX_URL_BYTES {
        return Err(format!(
            "new_url is {} bytes long; the URL rules refuse URLs over {MAX_URL_BYTES} bytes",
            cell.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_when_written_so_it_reads_back() {
        let long = "é".repeat(MAX_REASON_BYTES);
        let capped = cap_reason(&long);
        assert!(capped.len() < MAX_REASON_BYTES && capped.ends_with('…'), "{}", capped.len());
        assert_eq!(check_cell("reason", &capped), Ok(()));
        assert_eq!(cap_reason("short"), "short");
    }

    #[test]
    fn invisible_characters_and_long_reasons_are_refused_by_name() {
        let e = check_cell("new_url", "https://github.com/acme/\u{202E}git.evil").unwrap_err();
        assert!(e.contains("new_url contains the invisible character U+202E"), "{e}");
        let e = check_cell("new_mirror_user", "svc\u{200B}mirror").unwrap_err();
        assert!(e.contains("U+200B"), "{e}");
        assert_eq!(check_cell("reason", "a \u{202E} note"), Ok(()));
        assert_eq!(check_cell("reason", &"r".repeat(MAX_REASON_BYTES)), Ok(()));
        let e = check_cell("reason", &"r".repeat(MAX_REASON_BYTES + 1)).unwrap_err();
        assert!(e.contains("at most 4096 bytes") && e.len() < 100, "{e}");
    }

    #[test]
    fn cells_are_cleaned_then_guarded() {
        let cases = [
            ("plain", "plain"),
            ("a\r\nb\tc", "a b c"),
            ("\u{1b}[31mred\u{7}", "[31mred"),
            ("x\u{0}y\u{202E}z", "xyz"),
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("@SUM(1)*cmd|' /C calc'!A0", "'@SUM(1)*cmd|' /C calc'!A0"),
            ("\t=1", " =1"),
            ("\r\n-2", " -2"),
            ("\u{1b}=1", "'=1"),
            ("ssh://git@host/x.git", "ssh://git@host/x.git"),
        ];
        for (input, want) in cases {
            let mut csv = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
            write_record(&mut csv, &[input]).unwrap();
            let written = String::from_utf8(csv.into_inner().unwrap()).unwrap();
            let mut reader =
                csv::ReaderBuilder::new().has_headers(false).from_reader(written.as_bytes());
            let cell = reader.records().next().unwrap().unwrap()[0].to_owned();
            assert_eq!(cell, want, "{input:?}");
            assert_eq!(clean(&clean(input)), clean(input), "idempotent: {input:?}");
        }
    }

    #[test]
    fn cells_read_refuse_control_characters() {
        assert!(check_cell("reason", "two\r\nlines\tand a tab").is_ok());
        let nul = check_cell("reason", "a\u{0}b").unwrap_err();
        assert!(nul.contains("U+0000") && nul.contains("reason"), "{nul}");
        let esc = check_cell("project_path", "g/\u{1b}p").unwrap_err();
        assert!(esc.contains("U+001B"), "{esc}");
        for column in ["new_url", "project_id", "action", "observed", "new_user", "web_url"] {
            let e = check_cell(column, "https://h/x\tyz").unwrap_err();
            assert!(e.contains(column) && e.contains("a tab"), "{e}");
            assert!(check_cell(column, "a\r\nb").unwrap_err().contains("a line break"));
        }
        let long = format!("https://github.com/{}", "a".repeat(5000));
        let e = check_cell("new_url", &long).unwrap_err();
        assert!(e.contains("4096") && e.len() < 200, "{e}");
    }
}
