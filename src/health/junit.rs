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
//! Mirrors of one project with the same type and URL (GitLab does not stop a project from
//! having two push mirrors to one URL) are one `<testcase>` with the worst outcome of theirs
//! (error, failure, pass, skipped), whose text says how many share the URL: GitLab keys a
//! case by suite, classname and name, so two cases would merge their history anyway.
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
    let mut suites: BTreeMap<&str, Vec<Case<'_>>> = BTreeMap::new();
    for row in &report.rows {
        let cases = suites.entry(namespace(&row.project_path)).or_default();
        let name = format!("{} {}", row.mirror_type.code(), row.name_url());
        match cases.iter_mut().find(|c| c.classname == row.project_path && c.name == name) {
            Some(case) => case.rows.push(row),
            None => cases.push(Case { classname: &row.project_path, name, rows: vec![row] }),
        }
    }
    let count =
        |cases: &[&Case<'_>], want: Verdict| cases.iter().filter(|c| c.verdict() == want).count();
    let all: Vec<&Case<'_>> = suites.values().flatten().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"glmirror status\" tests=\"{}\" failures=\"{}\" errors=\"{}\" \
         skipped=\"{}\" time=\"0\">",
        all.len(),
        count(&all, Verdict::Failure),
        count(&all, Verdict::Error),
        count(&all, Verdict::Skipped),
    );
    for (ns, cases) in &suites {
        let name = if ns.is_empty() { "(no namespace)" } else { ns };
        let cases: Vec<&Case<'_>> = cases.iter().collect();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" \
             time=\"0\">",
            attr(name),
            cases.len(),
            count(&cases, Verdict::Failure),
            count(&cases, Verdict::Error),
            count(&cases, Verdict::Skipped),
        );
        for case in cases {
            testcase(&mut out, case);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// A test case's outcome, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Skipped,
    Passed,
    Failure,
    Error,
}

fn verdict(row: &StatusRow) -> Verdict {
    match row.health {
        Health::Ignored => Verdict::Skipped,
        Health::Ok => Verdict::Passed,
        Health::Unhealthy if row.diagnosis == Some(Diagnosis::Unreadable) => Verdict::Error,
        Health::Unhealthy => Verdict::Failure,
    }
}

/// One test case: the mirrors of one project with the same type and [`StatusRow::name_url`]
/// (GitLab keys a case by suite, classname and name, so two would share one history). Its
/// outcome is the worst of theirs.
struct Case<'a> {
    classname: &'a str,
    name: String,
    rows: Vec<&'a StatusRow>,
}

impl Case<'_> {
    fn verdict(&self) -> Verdict {
        self.rows.iter().map(|r| verdict(r)).max().unwrap_or(Verdict::Skipped)
    }

    /// The first of the rows with the case's outcome.
    fn worst(&self) -> &StatusRow {
        let v = self.verdict();
        self.rows.iter().find(|r| verdict(r) == v).expect("a case has rows")
    }
}

fn testcase(out: &mut String, case: &Case<'_>) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
        attr(case.classname),
        attr(&case.name)
    );
    let row = case.worst();
    let code = row.diagnosis.map(|d| d.code()).unwrap_or("failed");
    let details = || {
        let mut text = String::new();
        if case.rows.len() > 1 {
            let _ = writeln!(
                text,
                "{} {} mirrors of this project share this URL; the worst is shown.",
                case.rows.len(),
                row.mirror_type.code()
            );
        }
        let mut own = row.last_error.clone();
        if let Some(d) = row.diagnosis {
            if !own.is_empty() {
                own.push('\n');
            }
            own.push_str(d.advice());
        }
        if own.is_empty() {
            own = format!("update_status {}", row.update_status);
        }
        text.push_str(&own);
        text
    };
    match case.verdict() {
        Verdict::Error => {
            let _ = writeln!(
                out,
                ">\n      <error message=\"{}\" type=\"{code}\">{}</error>\n    </testcase>",
                attr(code),
                text(&details())
            );
        }
        Verdict::Failure => {
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"{code}\">{}</failure>\n    </testcase>",
                attr(code),
                text(&details())
            );
        }
        Verdict::Skipped => {
            let why = match row.ignored_because() {
                "" => "ignored",
                why => why,
            };
            let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", attr(why));
        }
        Verdict::Passed => out.push_str("/>\n"),
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
    fn mirrors_sharing_a_url_are_one_case_with_the_worst_outcome() {
        let url = "https://*****@geo.example.com/a/app.git";
        let ok = row("platform/app", MirrorType::Push, url, Health::Ok);
        let mut bad = row("platform/app", MirrorType::Push, url, Health::Unhealthy);
        bad.mirror_id = Some(8);
        bad.diagnosis = Some(Diagnosis::AuthFailed);
        bad.last_error = "HTTP Basic: Access denied".into();
        let off = row("platform/app", MirrorType::Push, url, Health::Ignored);
        let pull = row("platform/app", MirrorType::Pull, url, Health::Ok);
        let xml = render(&report(vec![ok.clone(), bad, off.clone(), pull]));
        let name = "name=\"push https://geo.example.com/a/app.git\"";
        assert_eq!(xml.matches(name).count(), 1, "one case: {xml}");
        assert!(xml.contains("tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\""), "{xml}");
        assert!(
            xml.contains(
                "<failure message=\"auth-failed\" type=\"auth-failed\">3 push mirrors of this \
                 project share this URL; the worst is shown.\nHTTP Basic: Access denied"
            ),
            "{xml}"
        );
        // Healthy and disabled: the case passes.
        let xml = render(&report(vec![off.clone(), ok]));
        assert!(xml.contains(&format!("{name} time=\"0\"/>")), "{xml}");
        // Only disabled ones: skipped.
        let xml = render(&report(vec![off.clone(), off]));
        assert!(xml.contains("skipped=\"1\""), "{xml}");
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
