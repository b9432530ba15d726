//! Counts of a plan's rows for the summary `plan` prints: per action, diagnosis and fix, and
//! who the mirrors will depend on after apply (the service credentials, the mirror user), and
//! what `--probe` found.

use std::collections::BTreeMap;

use crate::plan::{MirrorType, PlanRow};
use crate::probe::ProbeClass;
use crate::rewrite::{Action, NewAuth};

/// Counts for the summary.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// Pull mirror rows.
    pub(crate) pull: usize,
    /// Push mirror rows.
    pub(crate) push: usize,
    /// Pull rows with action update.
    pub(crate) pull_updates: usize,
    /// Rows per action.
    pub(crate) action_counts: BTreeMap<&'static str, usize>,
    /// Rows per diagnosis.
    pub(crate) diagnoses: BTreeMap<&'static str, usize>,
    /// Rows per fix.
    pub(crate) fixes: BTreeMap<&'static str, usize>,
    /// The user pull mirrors will run as.
    pub(crate) target_user: String,
    /// Enabled pull mirrors of live projects (`decide::is_movable_pull`): the denominator of
    /// the "running as" line, the same as the demo's.
    pub(crate) movable_pull: usize,
    /// Of those, the ones whose mirror user is the target now.
    pub(crate) running_as_target_before: usize,
    /// Of those, the ones whose mirror user is the target after apply.
    pub(crate) running_as_target_after: usize,
    /// Rows that get the service credentials.
    pub(crate) service_after: usize,
    /// Rows that get the service credentials, per source host (of `new_url`).
    pub(crate) service_by_host: BTreeMap<String, usize>,
    /// Probed rows per probe code.
    pub(crate) probes: BTreeMap<&'static str, usize>,
    /// Probed rows the probe gave no verdict on (`server-error` … `breaker`): as planned,
    /// unproven.
    pub(crate) unproven: usize,
    /// Probed rows kept off the service credentials by a credential verdict.
    pub(crate) kept_off: usize,
}

impl Summary {
    /// Counts for a plan whose pull mirrors will run as `target_user`.
    pub(crate) fn new(target_user: &str) -> Summary {
        Summary { target_user: target_user.to_owned(), ..Summary::default() }
    }

    /// Count one more row.
    pub(crate) fn add(&mut self, row: &PlanRow) {
        let update = row.action == Action::Update;
        if crate::plan::decide::is_movable_pull(row) {
            self.movable_pull += 1;
            let now = row.current_mirror_user == self.target_user;
            self.running_as_target_before += usize::from(now);
            let after = if update { row.new_mirror_user == self.target_user } else { now };
            self.running_as_target_after += usize::from(after);
        }
        let service = update && row.new_auth == Some(NewAuth::Service);
        self.service_after += usize::from(service);
        if service
            && let Some(host) =
                url::Url::parse(&row.new_url).ok().and_then(|u| u.host_str().map(str::to_owned))
        {
            *self.service_by_host.entry(host).or_default() += 1;
        }
        if let Some(code) = row.probe {
            *self.probes.entry(code.code()).or_default() += 1;
            match code.class() {
                ProbeClass::NoVerdict | ProbeClass::NotProbed => self.unproven += 1,
                ProbeClass::CredentialVerdict => self.kept_off += 1,
                ProbeClass::Proven | ProbeClass::Diagnosis => {}
            }
        }
        match row.mirror_type {
            MirrorType::Pull => self.pull += 1,
            MirrorType::Push => self.push += 1,
        }
        if row.mirror_type == MirrorType::Pull && row.action == Action::Update {
            self.pull_updates += 1;
        }
        *self.action_counts.entry(row.action.code()).or_default() += 1;
        if let Some(d) = row.diagnosis {
            *self.diagnoses.entry(d.code()).or_default() += 1;
        }
        for f in &row.fixes {
            *self.fixes.entry(f.code()).or_default() += 1;
        }
    }

    /// Rows GitLab would not let `plan` read (diagnosis `unreadable`).
    pub(crate) fn unreadable(&self) -> usize {
        self.diagnoses.get(crate::plan::Diagnosis::Unreadable.code()).copied().unwrap_or(0)
    }

    /// "update 3, skip 2, manual 1"
    pub(crate) fn actions(&self) -> String {
        ["update", "skip", "manual"]
            .iter()
            .map(|a| format!("{a} {}", self.action_counts.get(a).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
