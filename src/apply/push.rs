//! Applying a push-mirror row: GitLab cannot change a push mirror's URL
//! (`doc/api/remote_mirrors.md`), so the replacement is created with the same settings and
//! `enabled=true`, confirmed, and only then is the old mirror deleted. Both ids are journaled,
//! so a crash between the steps is repaired on resume, never duplicated. The decisions are in
//! `push_steps.rs`.

use crate::apply::executor::{Exec, RowStop, may_resend};
use crate::apply::journal::{Intent, JournalStep, StepKind, WriteStep};
use crate::apply::push_steps::{
    self, LostCreate, Resume, appeared_result, confirm_replacement, created_after, dry_run,
    lost_create, lost_race, lower_rival, push_gate, replaced, replacement_request, resume_push,
    resumed,
};
use crate::apply::results::{Prior, RowResult, WriteAnswer};
use crate::gitlab::{GitLabError, RemoteMirror};
use crate::plan::{self, PlanRow, RowKey};
use crate::redact::mask_userinfo;

impl Exec {
    pub(crate) async fn apply_push(
        &self,
        row: &PlanRow,
        key: &RowKey,
        prior: Prior,
    ) -> Result<RowResult, RowStop> {
        let planned = plan::check_observed_cell(&row.observed, plan::SealKey::of(row), row.action)
            .map_err(RowStop::Refused)?;
        let old_id = row.mirror_id.unwrap_or_default();
        let live = self.client.remote_mirrors(row.project_id).await?;
        let old = live.iter().find(|m| m.id == old_id);
        // A crash between create and delete: the replacement already exists. Never create a
        // second one; finish by deleting the old mirror.
        let replacement = match resume_push(prior, &live, row, old_id) {
            Resume::Fresh => None,
            Resume::Found(id) => Some(id),
            Resume::Claim(found) => {
                found.into_iter().find(|m| self.claim(row.project_id, m.id)).map(|m| m.id)
            }
            Resume::Done(result) => return Ok(result),
        };
        if let Some(new_id) = replacement {
            // The earlier attempt may have lost a race it did not live to settle: the same
            // look as right after a create, before anything else.
            let newest_before = prior.repair.as_ref().and_then(|r| r.newest_before);
            let rival = lower_rival(&live, row, newest_before, new_id, |id| {
                id == new_id || self.is_claimed(row.project_id, id)
            });
            if let Some(rival) = rival {
                self.delete_push(row.project_id, new_id).await?;
                return Ok(lost_race(rival, new_id));
            }
            if let Err(done) = resumed(new_id, old.is_some()) {
                return Ok(done);
            }
            self.delete_old(row, key, old_id, new_id).await?;
            let verified = self.verified_push(row.project_id, new_id).await;
            return Ok(RowResult::applied(replaced(new_id, true), verified));
        }
        let survive = self.push_credentials_survive(row);
        let appeared = self.appeared_after_planning(&live, row);
        let old = match push_gate(old_id, old, &planned, row, survive, appeared) {
            Ok(old) => old,
            Err(result) => return Ok(result),
        };
        // The service credentials are proven right before they are written.
        let probed = match self.probe_before_write(row).await {
            Ok(code) => code,
            Err(stop) => return Ok(stop),
        };
        if self.settings.dry_run {
            return Ok(dry_run(old_id, probed));
        }
        // The last line of defence against a second run of this plan (on another machine,
        // as another user, or with another lock directory): look again right before creating.
        let live = self.client.remote_mirrors(row.project_id).await?;
        if let Some(id) = self.appeared_after_planning(&live, row) {
            return Ok(appeared_result(id));
        }
        let newest_before = live.iter().map(|m| m.id).max();
        self.record(
            Intent::new(key.clone(), WriteStep::PushCreate, &row.new_url)
                .with_old_mirror_id(old_id)
                .with_newest_before(newest_before),
        )
        .await?;
        let req = replacement_request(old, row, self.credentialed_url(row));
        let mut resends = 0;
        let created = loop {
            let e = match self.client.create_remote_mirror(row.project_id, &req).await {
                Ok(m) => break m,
                Err(e) => e,
            };
            // A definite refusal: nothing was created.
            if WriteAnswer::of(&e) == WriteAnswer::Refused {
                return Err(RowStop::GitLab(e));
            }
            // The answer was lost, perhaps after GitLab created it: look for a mirror that did
            // not exist at planning time before creating another.
            let again = self.client.remote_mirrors(row.project_id).await?;
            let adopted = created_after(&again, row, newest_before)
                .into_iter()
                .find(|m| self.claim(row.project_id, m.id))
                .cloned();
            match (lost_create(adopted.is_some(), resends), adopted) {
                (LostCreate::Adopt, Some(m)) => break m,
                // After Ctrl-C nothing is sent again; a rerun re-reads and finishes the row.
                (LostCreate::Resend, _) if self.interrupt.is_requested() => {
                    return Err(RowStop::GitLab(e));
                }
                (LostCreate::Resend, _) => resends += 1,
                (LostCreate::GiveUp | LostCreate::Adopt, _) => return Err(RowStop::GitLab(e)),
            }
        };
        self.claim(row.project_id, created.id);
        self.record(JournalStep::push_created(key.clone(), created.id)).await?;
        // Another run may have passed the same checks at the same moment: look once more, and
        // of two copies keep the lower id (each run does the same, so one survives).
        let again = self.client.remote_mirrors(row.project_id).await?;
        let rival = lower_rival(&again, row, newest_before, created.id, |id| {
            self.is_claimed(row.project_id, id)
        });
        if let Some(rival) = rival {
            self.delete_push(row.project_id, created.id).await?;
            return Ok(lost_race(rival, created.id));
        }
        // Confirm the replacement exists before removing the old mirror.
        let found = self.client.remote_mirror(row.project_id, created.id).await?;
        if let Err(failed) = confirm_replacement(found.as_ref(), row, created.id, old_id) {
            return Ok(failed);
        }
        self.record(JournalStep::new(key.clone(), StepKind::PushConfirmed)).await?;
        self.delete_old(row, key, old_id, created.id).await?;
        let verified = self.verified_push(row.project_id, created.id).await;
        Ok(RowResult::applied(replaced(created.id, false), verified))
    }

    /// Journal the delete, delete the old mirror, journal that it is gone.
    async fn delete_old(
        &self,
        row: &PlanRow,
        key: &RowKey,
        old_id: u64,
        new_id: u64,
    ) -> Result<(), RowStop> {
        self.record(
            Intent::new(key.clone(), WriteStep::PushDeleteOld, &row.new_url)
                .with_old_mirror_id(old_id)
                .with_new_mirror_id(new_id),
        )
        .await?;
        self.delete_push(row.project_id, old_id).await?;
        self.record(JournalStep::new(key.clone(), StepKind::PushOldDeleted)).await
    }

    /// `--verify`'s result for the replacement (empty without it).
    async fn verified_push(&self, project_id: u64, mirror_id: u64) -> String {
        if self.settings.verify {
            self.verify_push(project_id, mirror_id).await
        } else {
            String::new()
        }
    }

    /// Another run's replacement that appeared after planning
    /// ([`push_steps::appeared_after_planning`]).
    fn appeared_after_planning(&self, live: &[RemoteMirror], row: &PlanRow) -> Option<u64> {
        let newest = self.newest_planned_push_mirror(row.project_id);
        push_steps::appeared_after_planning(live, row, newest, |id| {
            self.is_claimed(row.project_id, id)
        })
    }

    /// Delete a push mirror. DELETE is idempotent here (a 404 counts as done), so a request
    /// whose answer was lost is simply sent again.
    async fn delete_push(&self, project_id: u64, mirror_id: u64) -> Result<(), GitLabError> {
        let mut resends = 0;
        loop {
            match self.client.delete_remote_mirror(project_id, mirror_id).await {
                Err(e) if may_resend(&e, resends) && !self.interrupt.is_requested() => resends += 1,
                other => return other,
            }
        }
    }

    async fn verify_push(&self, project_id: u64, mirror_id: u64) -> String {
        if let Err(e) = self.client.sync_remote_mirror(project_id, mirror_id).await {
            return format!("unknown: {}", mask_userinfo(&e.to_string()));
        }
        self.poll_until_done("mirror not found", || async {
            let mirror = self.client.remote_mirror(project_id, mirror_id).await?;
            Ok(mirror.map(|m| (m.update_status, m.last_error)))
        })
        .await
    }
}
