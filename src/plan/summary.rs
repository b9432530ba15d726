//! Counts of a plan's rows for the summary `plan` prints: per action, diagnosis and fix.

use std::collections::BTreeMap;

use crate::plan::{MirrorType, PlanRow};
use crate::rewrite::Action;

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
}

impl Summary {
    /// Count one more row.
    pub fn add(&mut self, row: &PlanRow) {
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

    /// "update 3, skip 2, manual 1"
    pub fn actions(&self) -> String {
        ["update", "skip", "manual"]
            .iter()
            .map(|a| format!("{a} {}", self.action_counts.get(a).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
