//! The plan CSV through the library's public API: what `plan` writes, a reviewer edits in a
//! spreadsheet, and `apply` reads back (no binary, no network).

use glmirror::error::{AppError, ExitCode};
use glmirror::plan::{
    self, CurrentAuth, DiagnoseInput, Diagnosis, MirrorFlags, MirrorType, MirrorUserState,
    ObservedState, Outcome, PlanRow, ReportRow,
};
use glmirror::rewrite::{Action, Fix, NewAuth};
use time::macros::datetime;

use crate::util::Table;

/// Build a row the way `plan` does: diagnose, normalise, fingerprint.
fn planned_row(
    project_id: u64,
    mirror_type: MirrorType,
    mirror_id: Option<u64>,
    error: &str,
    action: Action,
) -> PlanRow {
    let now = datetime!(2026-11-27 12:00 UTC);
    let current_url = "https://*****:*****@github.com/org/repo.git".to_owned();
    let diagnosis = plan::diagnose(&DiagnoseInput {
        mirror_type,
        enabled: true,
        update_status: "failed",
        last_error: Some(error),
        last_update_started_at: Some(now),
        last_successful_update_at: None,
        now,
        mirror_user_state: if mirror_type == MirrorType::Pull {
            MirrorUserState::Active
        } else {
            MirrorUserState::NotApplicable
        },
        silent_mode: false,
    });
    let state = ObservedState {
        masked_url: current_url.clone(),
        current_auth: CurrentAuth::from_masked_url(&current_url),
        enabled: true,
        mirror_user_id: (mirror_type == MirrorType::Pull).then_some(17),
        flags: MirrorFlags { trigger_builds: Some(true), ..MirrorFlags::default() },
    };
    let update = action == Action::Update;
    let mut row = PlanRow {
        project_id,
        project_path: format!("team/repo-{project_id}"),
        web_url: format!("https://gitlab.example.com/team/repo-{project_id}"),
        mirror_type,
        mirror_id,
        current_auth: state.current_auth,
        current_url,
        current_mirror_user: if mirror_type == MirrorType::Pull {
            "alice".into()
        } else {
            String::new()
        },
        update_status: "failed".into(),
        last_error: plan::normalize_last_error(error),
        diagnosis,
        action,
        new_url: if update { "https://github.com/org/repo.git".into() } else { String::new() },
        new_user: if update { "<token>".into() } else { String::new() },
        new_auth: update.then_some(NewAuth::Service),
        new_mirror_user: if update && mirror_type == MirrorType::Pull {
            "svc".into()
        } else {
            String::new()
        },
        fixes: if update { vec![Fix::ServiceToken] } else { Vec::new() },
        reason: diagnosis.map(Diagnosis::advice).unwrap_or("healthy").to_owned(),
        observed: String::new(),
        probe: None,
    };
    row.observed = plan::observed_cell(plan::SealKey::of(&row), action, &state);
    row
}

fn sample() -> Vec<PlanRow> {
    let auth = "13:fetch remote: \"fatal: unable to access 'https://user:glpat-CANARY42@github.com/org/repo.git/': The requested URL returned error: 403\\n\": exit status 128.";
    vec![
        planned_row(
            40,
            MirrorType::Push,
            Some(2),
            "13:Received RST_STREAM with error code 2",
            Action::Manual,
        ),
        planned_row(7, MirrorType::Pull, None, auth, Action::Update),
        planned_row(40, MirrorType::Pull, None, auth, Action::Update),
    ]
}

#[test]
fn plan_file_round_trips_and_never_holds_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plan.csv");
    plan::write_plan_file(&path, &sample()).expect("writes");
    let text = std::fs::read_to_string(&path).expect("reads");
    assert!(!text.contains("CANARY"), "{text}");
    assert!(text.contains("https://*****:*****@github.com"));
    let rows = plan::read_plan(&path).expect("valid");
    let keys: Vec<_> = rows.iter().map(|r| (r.project_id, r.mirror_type, r.mirror_id)).collect();
    assert_eq!(
        keys,
        vec![
            (7, MirrorType::Pull, None),
            (40, MirrorType::Pull, None),
            (40, MirrorType::Push, Some(2))
        ]
    );
    assert_eq!(rows[0].diagnosis, Some(Diagnosis::AuthFailed));
    assert_eq!(rows[2].diagnosis, Some(Diagnosis::RstStream));
    assert_eq!(
        plan::instance_base(&rows[0].web_url, &rows[0].project_path).as_deref(),
        Some("https://gitlab.example.com")
    );
}

#[test]
fn spreadsheet_save_is_accepted_and_promotion_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plan.csv");
    plan::write_plan_file(&path, &sample()).expect("writes");
    let text = std::fs::read_to_string(&path).expect("reads");

    // Excel-style: BOM, CRLF, one update demoted to skip.
    let edited =
        format!("\u{feff}{}", text.replacen(",update,", ",skip,", 1).replace('\n', "\r\n"));
    std::fs::write(&path, edited).expect("write");
    let rows = plan::read_plan(&path).expect("accepted");
    assert_eq!(rows[0].action, Action::Skip);

    // Promoting the manual row is refused with FILE:LINE and exit code 2.
    std::fs::write(&path, text.replace(",manual,", ",update,")).expect("write");
    let err = plan::read_plan(&path).expect_err("refused");
    let shown = err.to_string();
    assert!(
        shown.ends_with(
            ":4: action was changed from manual to update; only update → skip is allowed"
        ),
        "{shown}"
    );
    assert!(shown.starts_with(&path.display().to_string()));
    let app: AppError = err.into();
    assert_eq!(app.exit_code(), ExitCode::Usage);
    assert!(app.hint().is_some());
}

#[test]
fn report_lists_every_row_with_its_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plan.report.csv");
    let finished_at = datetime!(2026-11-27 12:30 UTC);
    let rows: Vec<ReportRow> = sample()
        .into_iter()
        .map(|row| {
            let outcome =
                if row.action == Action::Update { Outcome::Applied } else { Outcome::Skipped };
            ReportRow {
                row,
                outcome,
                outcome_detail: String::new(),
                verified_status: "finished".into(),
                finished_at,
            }
        })
        .collect();
    plan::write_report_file(&path, &rows).expect("writes");
    let text = std::fs::read_to_string(&path).expect("reads");
    assert_eq!(text.lines().next(), Some(plan::REPORT_COLUMNS.join(",").as_str()));
    let report = Table::parse("plan.report.csv", &text);
    assert_eq!(report.column("outcome"), ["applied", "applied", "skipped"]);
    assert!(report.rows().iter().all(|r| r.cell("verified_status") == "finished"), "{text}");
    assert!(report.column("finished_at").iter().all(|t| *t == "2026-11-27T12:30:00Z"), "{text}");
}
