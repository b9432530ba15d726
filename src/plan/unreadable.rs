//! Rows for mirrors GitLab would not let us read (diagnosis `unreadable`): after retries, a
//! project's pull mirror or its list of push mirrors kept answering a server error, or 404
//! because the project was deleted mid-run. `plan` writes one `manual` row for each such read
//! and goes on (exit 3), `status` reports it unhealthy; a failing *list* page still ends the
//! run, because the inventory would be incomplete without saying which projects are missing.
//!
//! The row's `current_*` cells are empty (nothing is known), and a push list that failed is one
//! row with an empty `mirror_id`. The plan reader accepts exactly these two departures from
//! the usual row shape, and only on `unreadable` rows.

use crate::plan::facts::MirrorFacts;
use crate::plan::fingerprint::{self, SealKey};
use crate::plan::row::{CurrentAuth, MirrorType, PlanRow};
use crate::plan::{Diagnosis, cell};
use crate::rewrite::Action;

/// How much of GitLab's answer the reason quotes.
const QUOTED: usize = 200;

/// The plan row of an unreadable mirror: `manual`, diagnosis `unreadable`, `current_*` and
/// target cells empty, the answer GitLab gave in `reason`.
pub(crate) fn row(facts: &MirrorFacts) -> PlanRow {
    let mirror_type = facts.mirror_type();
    let what = match mirror_type {
        MirrorType::Pull => "the pull mirror",
        MirrorType::Push => "the push mirrors",
    };
    let answer = crate::redact::excerpt(facts.last_error.as_deref().unwrap_or("an error"), QUOTED);
    let mut row = PlanRow {
        project_id: facts.project.id,
        project_path: facts.project.path.clone(),
        web_url: facts.project.web_url.clone(),
        mirror_type,
        mirror_id: None,
        current_url: String::new(),
        current_auth: CurrentAuth::None,
        current_mirror_user: String::new(),
        update_status: String::new(),
        last_error: String::new(),
        diagnosis: Some(Diagnosis::Unreadable),
        action: Action::Manual,
        new_url: String::new(),
        new_user: String::new(),
        new_auth: None,
        new_mirror_user: String::new(),
        fixes: Vec::new(),
        reason: format!(
            "Asked for {what} of this project, GitLab kept answering {answer}; nothing is \
             planned for it. {}",
            Diagnosis::Unreadable.advice()
        ),
        observed: String::new(),
        probe: None,
    };
    cell::clean_row(&mut row);
    row.observed = fingerprint::observed_cell(SealKey::of(&row), row.action, &facts.observed());
    row
}

/// Whether a row (as read from a plan) says its mirror could not be read.
pub(crate) fn is_unreadable(diagnosis: Option<Diagnosis>) -> bool {
    diagnosis == Some(Diagnosis::Unreadable)
}

/// The `current_auth` cell of a row: empty on an unreadable row (nothing is known).
pub(crate) fn current_auth_cell(row: &PlanRow) -> &'static str {
    if is_unreadable(row.diagnosis) { "" } else { row.current_auth.code() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::facts::ProjectFacts;

    fn project() -> ProjectFacts {
        ProjectFacts {
            id: 7,
            path: "g/p".into(),
            web_url: "https://gitlab.example.com/g/p".into(),
            archived: false,
        }
    }

    #[test]
    fn unreadable_rows_are_manual_and_say_what_gitlab_answered() {
        let error = format!("GET /projects/7/mirror/pull: HTTP 500: {}", "x".repeat(1000));
        let facts = MirrorFacts::unreadable(project(), MirrorType::Push, error);
        assert_eq!(
            facts.diagnose(time::OffsetDateTime::UNIX_EPOCH, false),
            Some(Diagnosis::Unreadable)
        );
        let r = row(&facts);
        assert_eq!(
            (r.action, r.diagnosis, r.mirror_id),
            (Action::Manual, Some(Diagnosis::Unreadable), None)
        );
        assert_eq!(r.mirror_type, MirrorType::Push);
        assert!(r.current_url.is_empty() && r.new_url.is_empty() && r.new_auth.is_none());
        assert!(
            r.reason.contains("the push mirrors") && r.reason.contains("HTTP 500"),
            "{}",
            r.reason
        );
        assert!(r.reason.len() < 600, "the answer is quoted short: {}", r.reason);
        assert_eq!(current_auth_cell(&r), "");
        assert_eq!(fingerprint::planned_action(&r.observed, SealKey::of(&r)), Some(Action::Manual));
    }

    #[test]
    fn unreadable_rows_read_back_and_only_they_may_lack_a_mirror_id() {
        let facts = MirrorFacts::unreadable(project(), MirrorType::Push, "HTTP 500".into());
        let r = row(&facts);
        let mut buf = Vec::new();
        crate::plan::csv_io::write_plan(std::slice::from_ref(&r), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains(",push,,,,,,,unreadable,manual,"), "{text}");
        assert_eq!(crate::plan::csv_io::parse_plan(text.as_bytes(), "p").unwrap(), vec![r]);
        // Another diagnosis: a push row needs its mirror_id, and current_auth a code.
        let other = text.replacen(",unreadable,", ",unknown,", 1);
        let e = crate::plan::csv_io::parse_plan(other.as_bytes(), "p").unwrap_err();
        assert!(e.message.contains("needs its mirror_id"), "{e}");
    }
}
