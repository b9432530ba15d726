//! `status --format junit`: the health report as JUnit XML, the shape GitLab CI reads from
//! `artifacts:reports:junit` (`lib/gitlab/ci/parsers/test/junit.rb`: one `<testsuites>` root,
//! `<testsuite name>` elements, `<testcase classname name time>` with an optional `<failure>`,
//! `<error>` or `<skipped>` child).
//!
//! One `<testsuite>` per project namespace (`platform/infra`), one `<testcase>` per mirror:
//! `classname` is the project's path and `name` is the mirror's type and URL without
//! credentials (`pull https://github.com/acme/api.git`), which survive `apply` (a replaced
//! push mirror gets a new id, not a new URL), so GitLab keeps each mirror's history. Unhealthy
//! mirrors are `<failure>` (message: the diagnosis code; text: the last error and the advice),
//! `unreadable` rows are `<error>`, ignored mirrors (disabled, archived) are `<skipped>`.
//!
//! Any text is made valid XML 1.0: markup characters are escaped, and characters XML cannot
//! hold (C0 controls other than tab and newline, U+FFFE, U+FFFF) become U+FFFD. No CDATA is
//! used, so `]]>` in an error is just text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::health::{Health, HealthReport, StatusRow, namespace};
use crate::plan::Diagnosis;

/// Render the report as a JUnit XML document.
pub(crate) fn render(report: &HealthReport) -> String {
    let mut suites: BTreeMap<&str, Vec<&StatusRow>> = BTreeMap::new();
    for row in &report.rows {
        suites.entry(namespace(&row.project_path)).or_default().push(row);
    }
    let count =
        |rows: &[&StatusRow], pick: fn(&StatusRow) -> bool| rows.iter().filter(|r| pick(r)).count();
    let all: Vec<&StatusRow> = report.rows.iter().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"glmirror status\" tests=\"{}\" failures=\"{}\" errors=\"{}\" \
         skipped=\"{}\" time=\"0\">",
        all.len(),
        count(&all, is_failure),
        count(&all, is_error),
        count(&all, is_skipped),
    );
    for (ns, rows) in &suites {
        let name = if ns.is_empty() { "(no namespace)" } else { ns };
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" \
             time=\"0\">",
            attr(name),
            rows.len(),
            count(rows, is_failure),
            count(rows, is_error),
            count(rows, is_skipped),
        );
        for row in rows {
            testcase(&mut out, row);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn is_error(row: &StatusRow) -> bool {
    row.diagnosis == Some(Diagnosis::Unreadable)
}

fn is_failure(row: &StatusRow) -> bool {
    row.health == Health::Unhealthy && !is_error(row)
}

fn is_skipped(row: &StatusRow) -> bool {
    row.health == Health::Ignored
}

fn testcase(out: &mut String, row: &StatusRow) {
    let name = format!("{} {}", row.mirror_type.code(), row.name_url());
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
        attr(&row.project_path),
        attr(&name)
    );
    let code = row.diagnosis.map(|d| d.code()).unwrap_or("failed");
    let details = || {
        let mut text = row.last_error.clone();
        if let Some(d) = row.diagnosis {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(d.advice());
        }
        if text.is_empty() {
            text = format!("update_status {}", row.update_status);
        }
        text
    };
    if is_error(row) {
        let _ = writeln!(
            out,
            ">\n      <error message=\"{}\" type=\"{code}\">{}</error>\n    </testcase>",
            attr(code),
            text(&details())
        );
    } else if is_failure(row) {
        let _ = writeln!(
            out,
            ">\n      <failure message=\"{}\" type=\"{code}\">{}</failure>\n    </testcase>",
            attr(code),
            text(&details())
        );
    } else if is_skipped(row) {
        let why = match row.ignored_because() {
            "" => "ignored",
            why => why,
        };
        let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", attr(why));
    } else {
        out.push_str("/>\n");
    }
}

/// A character XML 1.0 can hold.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escaped element text; characters XML cannot hold become U+FFFD.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// An escaped attribute value: also quotes, and whitespace controls folded to a space (an
/// attribute value's newlines would be normalized away by any reader).
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::tests::row;
    use crate::plan::MirrorType;
    use time::OffsetDateTime;

    fn report(rows: Vec<StatusRow>) -> HealthReport {
        HealthReport {
            rows,
            scrape_errors: 0,
            refused: 0,
            tokens: Vec::new(),
            tokens_failing: false,
            generated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn suites_per_namespace_and_one_case_per_mirror() {
        let mut bad = row(
            "platform/web",
            MirrorType::Pull,
            "https://*****@github.com/a/web.git",
            Health::Unhealthy,
        );
        bad.diagnosis = Some(Diagnosis::RstStream);
        bad.last_error = "13:Received RST_STREAM with error code 2.".into();
        let off = row(
            "platform/infra/x",
            MirrorType::Push,
            "https://gitlab.com/b/x.git",
            Health::Ignored,
        );
        let mut gone = row("vendor/y", MirrorType::Pull, "", Health::Unhealthy);
        gone.diagnosis = Some(Diagnosis::Unreadable);
        let xml = render(&report(vec![
            row("platform/api", MirrorType::Pull, "https://github.com/a/api.git", Health::Ok),
            bad,
            off,
            gone,
        ]));
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "),
            "{xml}"
        );
        assert!(xml.contains("tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""), "{xml}");
        assert!(xml.contains("<testsuite name=\"platform\" tests=\"2\""), "{xml}");
        assert!(xml.contains("<testsuite name=\"platform/infra\" tests=\"1\""), "{xml}");
        assert!(
            xml.contains(
                "classname=\"platform/api\" name=\"pull https://github.com/a/api.git\" time=\"0\"/>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<failure message=\"rst-stream\" type=\"rst-stream\">13:Received RST_STREAM"
            ),
            "{xml}"
        );
        assert!(xml.contains(Diagnosis::RstStream.advice()), "the advice is in the text");
        assert!(xml.contains("<error message=\"unreadable\""), "{xml}");
        assert!(xml.contains("<skipped message=\"mirror disabled\"/>"), "{xml}");
        assert!(
            xml.contains("name=\"pull https://github.com/a/web.git\""),
            "named without credentials: {xml}"
        );
    }

    #[test]
    fn any_text_becomes_valid_xml() {
        assert_eq!(
            text("a<b>&c ]]> d\u{1}e\u{FFFE}"),
            "a&lt;b&gt;&amp;c ]]&gt; d\u{FFFD}e\u{FFFD}"
        );
        assert_eq!(attr("\"q\" 'a'\nb\tc\u{1b}"), "&quot;q&quot; &apos;a&apos; b c\u{FFFD}");
        assert_eq!(text("line\nbreak\r"), "line\nbreak&#13;");
    }
}
