//! `status --format prometheus`: the health report in the Prometheus text exposition format
//! 0.0.4, what node_exporter's textfile collector reads from a `.prom` file.
//!
//! Per mirror (labels `project`, `type`, `url` without credentials — no mirror id, so a push
//! mirror replaced by `apply` keeps its series): `glmirror_mirror_healthy` (1 or 0; ignored
//! mirrors are not listed), `glmirror_mirror_last_successful_update_timestamp_seconds` and
//! `glmirror_mirror_last_update_timestamp_seconds` (when GitLab knows them). Then counts:
//! `glmirror_mirrors{health}`, `glmirror_mirror_diagnosis{diagnosis}`,
//! `glmirror_status_scrape_errors` (reads refused or unreadable), the token expiries
//! `glmirror_token_expiry_timestamp_seconds{host,token}` (`host` with `:port` when the port is
//! not the scheme's default: one host's credentials on two ports are two tokens), and
//! `glmirror_status_last_run_timestamp_seconds`, so an alert can notice a job that stopped.
//!
//! Label values are escaped as the format says (`\\`, `\"`, `\n`). Two mirrors of one
//! project with the same type and URL would give the same series: they are merged (the worse
//! health, the older timestamps).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use time::OffsetDateTime;

use crate::health::{Health, HealthReport, StatusRow};

/// Render the report in the text exposition format (ends with a newline).
pub(crate) fn render(report: &HealthReport) -> String {
    let mut out = String::new();
    let mut mirrors: BTreeMap<(String, &str, String), Merged> = BTreeMap::new();
    for row in report.rows.iter().filter(|r| r.health != Health::Ignored) {
        let key = (row.project_path.clone(), row.mirror_type.code(), row.name_url());
        mirrors.entry(key).and_modify(|m| m.add(row)).or_insert_with(|| Merged::of(row));
    }
    let labels = |(project, ty, url): &(String, &str, String)| {
        format!("project=\"{}\",type=\"{ty}\",url=\"{}\"", label(project), label(url))
    };
    family(
        &mut out,
        "glmirror_mirror_healthy",
        "1 when the mirror works, 0 when it fails (disabled mirrors and archived projects are not listed).",
    );
    for (key, m) in &mirrors {
        let _ = writeln!(out, "glmirror_mirror_healthy{{{}}} {}", labels(key), u8::from(m.healthy));
    }
    family(
        &mut out,
        "glmirror_mirror_last_successful_update_timestamp_seconds",
        "When the mirror last updated successfully (Unix time).",
    );
    for (key, m) in &mirrors {
        if let Some(t) = m.last_success {
            let _ = writeln!(
                out,
                "glmirror_mirror_last_successful_update_timestamp_seconds{{{}}} {}",
                labels(key),
                t.unix_timestamp()
            );
        }
    }
    family(
        &mut out,
        "glmirror_mirror_last_update_timestamp_seconds",
        "When the mirror last tried to update (Unix time).",
    );
    for (key, m) in &mirrors {
        if let Some(t) = m.last_update {
            let _ = writeln!(
                out,
                "glmirror_mirror_last_update_timestamp_seconds{{{}}} {}",
                labels(key),
                t.unix_timestamp()
            );
        }
    }
    family(&mut out, "glmirror_mirrors", "Mirrors by health.");
    for h in [Health::Ok, Health::Unhealthy, Health::Ignored] {
        let n = report.rows.iter().filter(|r| r.health == h).count();
        let _ = writeln!(out, "glmirror_mirrors{{health=\"{}\"}} {n}", h.code());
    }
    family(&mut out, "glmirror_mirror_diagnosis", "Mirrors per diagnosis code.");
    let mut diagnoses: BTreeMap<&str, usize> = BTreeMap::new();
    for d in report.rows.iter().filter_map(|r| r.diagnosis) {
        *diagnoses.entry(d.code()).or_default() += 1;
    }
    for (code, n) in diagnoses {
        let _ = writeln!(out, "glmirror_mirror_diagnosis{{diagnosis=\"{code}\"}} {n}");
    }
    family(
        &mut out,
        "glmirror_status_scrape_errors",
        "Mirror reads that were refused or kept failing: the report is incomplete by this much.",
    );
    let _ = writeln!(out, "glmirror_status_scrape_errors {}", report.scrape_errors);
    family(
        &mut out,
        "glmirror_token_expiry_timestamp_seconds",
        "When a token the mirrors depend on expires (Unix time); absent when it does not or nobody says.",
    );
    for t in &report.tokens {
        if let Some(at) = t.expires_at {
            let _ = writeln!(
                out,
                "glmirror_token_expiry_timestamp_seconds{{host=\"{}\",token=\"{}\"}} {}",
                label(&t.host),
                label(t.token),
                at.unix_timestamp()
            );
        }
    }
    family(
        &mut out,
        "glmirror_status_last_run_timestamp_seconds",
        "When this report was made (Unix time).",
    );
    let _ = writeln!(
        out,
        "glmirror_status_last_run_timestamp_seconds {}",
        report.generated_at.unix_timestamp()
    );
    out
}

/// `# HELP` and `# TYPE … gauge` lines of one metric family.
fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// A label value as the format escapes it: backslash, double quote and line feed.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Mirrors that share a series.
struct Merged {
    healthy: bool,
    last_success: Option<OffsetDateTime>,
    last_update: Option<OffsetDateTime>,
}

impl Merged {
    fn of(row: &StatusRow) -> Merged {
        Merged {
            healthy: row.health == Health::Ok,
            last_success: row.last_successful_update_at,
            last_update: row.last_update_at,
        }
    }

    fn add(&mut self, row: &StatusRow) {
        self.healthy &= row.health == Health::Ok;
        let older = |a: Option<OffsetDateTime>, b: Option<OffsetDateTime>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        self.last_success = older(self.last_success, row.last_successful_update_at);
        self.last_update = older(self.last_update, row.last_update_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::TokenExpiry;
    use crate::health::tests::row;
    use crate::plan::{Diagnosis, MirrorType};

    #[test]
    fn series_counts_and_tokens() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let mut ok = row("a/b", MirrorType::Pull, "https://github.com/a/b.git", Health::Ok);
        ok.last_successful_update_at = Some(t);
        ok.last_update_at = Some(t);
        let mut bad = row("a/\"q\"\\\n", MirrorType::Push, "https://x/y.git", Health::Unhealthy);
        bad.diagnosis = Some(Diagnosis::AuthFailed);
        let off = row("a/c", MirrorType::Push, "https://x/c.git", Health::Ignored);
        let report = HealthReport {
            rows: vec![ok.clone(), ok, bad, off],
            scrape_errors: 2,
            refused: 2,
            tokens_failing: false,
            tokens: vec![
                TokenExpiry { host: "github.com".into(), token: "service", expires_at: Some(t) },
                TokenExpiry {
                    host: "gitlab.example.com".into(),
                    token: "gitlab-api",
                    expires_at: None,
                },
            ],
            generated_at: t,
        };
        let text = render(&report);
        assert!(text.contains("glmirror_mirror_healthy{project=\"a/b\",type=\"pull\",url=\"https://github.com/a/b.git\"} 1\n"), "{text}");
        assert_eq!(
            text.matches("glmirror_mirror_healthy{project=\"a/b\"").count(),
            1,
            "duplicates merged"
        );
        assert!(text.contains("project=\"a/\\\"q\\\"\\\\\\n\",type=\"push\""), "{text}");
        assert!(text.contains("glmirror_mirror_last_successful_update_timestamp_seconds{project=\"a/b\",type=\"pull\",url=\"https://github.com/a/b.git\"} 1700000000\n"));
        assert!(!text.contains("url=\"https://x/c.git\""), "ignored mirrors are not listed");
        assert!(text.contains("glmirror_mirrors{health=\"ignored\"} 1\n"));
        assert!(text.contains("glmirror_mirror_diagnosis{diagnosis=\"auth-failed\"} 1\n"));
        assert!(text.contains("glmirror_status_scrape_errors 2\n"));
        assert!(text.contains("glmirror_token_expiry_timestamp_seconds{host=\"github.com\",token=\"service\"} 1700000000\n"));
        assert!(!text.contains("gitlab.example.com"), "an unknown expiry has no sample");
        assert!(text.ends_with("glmirror_status_last_run_timestamp_seconds 1700000000\n"));
    }
}
