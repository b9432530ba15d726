//! Counts of a plan's rows for the summary `plan` prints: per action, diagnosis and fix, and
//! who the mirrors will depend on after apply (the service credentials, the mirror user), and
//! what `--probe` found.

use std::collections::BTreeMap;

use crate::plan::{MirrorType, PlanRow};
use crate::probe::ProbeClass;
use crate::rewrite::{Action, NewAuth};

/// Counts for the summary.
#[derive(Debug, Default)]
pub struct Summary {
    /// Pull mirror rows.
    pub pull: usize,
    /// Push mirror rows.
    pub push: usize,
    /// Pull rows with action update.
    pub pull_updates: usize,
    /// Rows per action.
    pub action_counts: BTreeMap<&'static str, usize>,
    /// Rows per diagnosis.
    pub diagnoses: BTreeMap<&'static str, usize>,
    /// Rows per fix.
    pub fixes: BTreeMap<&'static str, usize>,
    /// The user pull mirrors will run as.
    pub target_user: String,
    /// Pull rows whose mirror user is the target now.
    pub running_as_target_before: usize,
    /// Pull rows whose mirror user is the target after apply.
    pub running_as_target_after: usize,
    /// Rows that get the service credentials.
    pub service_after: usize,
    /// Rows that get the service credentials, per source host (of `new_url`).
    pub service_by_host: BTreeMap<String, usize>,
    /// Probed rows per probe code.
    pub probes: BTreeMap<&'static str, usize>,
    /// Probed rows the probe gave no verdict on (`server-error` … `breaker`): as planned,
    /// unproven.
    pub unproven: usize,
    /// Probed rows kept off the service credentials by a credential verdict.
    pub kept_off: usize,
}

impl Summary {
    /// Counts for a plan whose pull mirrors will run as `target_user`.
    pub fn new(target_user: &str) -> Summary {
        Summary { target_user: target_user.to_owned(), ..Summary::default() }
    }

    /// Count one more row.
    pub fn add(&mut self, row: &PlanRow) {
        let update = row.action == Action::Update;
        if row.mirror_type == MirrorType::Pull {
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
    pub fn unreadable(&self) -> usize {
        self.diagnoses.get(crate::plan::Diagnosis::Unreadable.code()).copied().unwrap_or(0)
    }

    /// "update 3, skip 2, manual 1"
    pub fn actions(&self) -> String {
        ["update", "skip", "manual"]
            .iter()
            .map(|a| format!("{a} {}", self.action_counts.get(a).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
