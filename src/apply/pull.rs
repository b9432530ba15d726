//! Applying a pull-mirror row: re-read, drift check, one write (the 17.6 API or the old
//! `PUT /projects/:id`), confirmation, flag restore and `--verify`. A write whose answer was
//! lost is re-read and resent only while the mirror still looks as planned.

use crate::apply::executor::{Exec, MAX_RESENDS, Prior, RowResult, RowStop};
use crate::apply::journal::{
    Intent, RowKey as JournalKey, Step as JournalStep, StepKind, WriteStep,
};
use crate::apply::matching::{drift_detail, flags_changed, pull_matches, restore_flags};
use crate::config::Mirrors;
use crate::gitlab::{GitLabError, ImportUrlUpdate, PullMirror, PullMirrorUpdate};
use crate::inventory::{self, MirrorDetail, facts};
use crate::plan::{self, MirrorFacts, PlanRow};

impl Exec {
    /// The pull mirror as it is now.
    async fn read_pull(&self, project_id: u64) -> Result<Option<MirrorFacts>, GitLabError> {
        let project = self.client.project(&project_id.to_string()).await?;
        let reads =
            inventory::read_project(&self.client, &self.users, project, Mirrors::PULL).await?;
        Ok(reads
            .iter()
            .find(|r| matches!(r.mirror, MirrorDetail::Pull { .. }))
            .map(facts::facts_of))
    }

    pub(crate) async fn apply_pull(
        &self,
        row: &PlanRow,
        key: &JournalKey,
        prior: Prior,
    ) -> Result<RowResult, RowStop> {
        let planned = plan::check_observed_cell(&row.observed, plan::SealKey::of(row), row.action)
            .map_err(RowStop::Refused)?;
        let Some(live) = self.read_pull(row.project_id).await? else {
            return Ok(RowResult::drifted("the project is no longer pull-mirrored"));
        };
        // Observed state first: GitLab masks credentials, so a write that only changes them
        // leaves the mirror looking the same. While it still looks as planned, (re)writing is
        // the safe choice — a pull-mirror PUT of the same URL and credentials is idempotent —
        // also after a crash between the write and its journaled outcome.
        if plan::fingerprint(&live.observed()) != planned {
            // Only a row an earlier run was writing (an intent without an outcome) may be found
            // already applied; any other change since planning is drift, even one that looks
            // like the target (credentials are not visible to compare).
            if prior.attempted && pull_matches(&live, row) {
                return Ok(RowResult::already_applied("an earlier run's write had landed"));
            }
            return Ok(RowResult::drifted(drift_detail(&live, row)));
        }
        let new_api = self.pre.version.supports_pull_mirror_api();
        if self.settings.dry_run {
            let call = if new_api {
                "PUT /projects/:id/mirror/pull"
            } else {
                "PUT /projects/:id (import_url)"
            };
            return Ok(RowResult::dry_run(format!("would call {call}")));
        }
        self.record(Intent::new(key.clone(), WriteStep::PullUpdate, &row.new_url)).await?;
        // A write whose answer was lost (500, dropped connection) may or may not have landed:
        // re-read, and send it again only while the mirror still shows the planned state.
        let mut resends = 0;
        let after = loop {
            let write = self.write_pull(row, new_api).await;
            // The 17.6 API answers with the mirror as saved, and makes the caller (the `Sudo`
            // user) its mirror user (`doc/api/project_pull_mirroring.md`): that answer is the
            // confirmation, no second read needed.
            if let Ok(Some(saved)) = &write {
                break facts::after_put(&live, saved, &row.new_mirror_user);
            }
            let Some(after) = self.read_pull(row.project_id).await? else {
                return Ok(RowResult::failed("the mirror disappeared after the write"));
            };
            let unchanged = plan::fingerprint(&after.observed()) == planned;
            match write {
                Ok(_) => break after,
                // Still as planned: the write did not land, or it only changed credentials,
                // which GitLab does not show. Sending it again is harmless either way.
                Err(e) if e.is_ambiguous() && unchanged && resends < MAX_RESENDS => {
                    resends += 1;
                    tracing::info!(
                        project_id = row.project_id,
                        "write outcome unknown; sending it again"
                    );
                }
                // Visibly changed into the target: the write landed, its answer was lost.
                Err(e) if e.is_ambiguous() && !unchanged && pull_matches(&after, row) => {
                    return self
                        .finish_pull(row, &live, after, "applied (confirmed by re-read)")
                        .await;
                }
                Err(e) => return Err(RowStop::GitLab(e)),
            }
        };
        if !pull_matches(&after, row) {
            return Ok(RowResult::failed(format!(
                "GitLab accepted the write but now shows: {}",
                drift_detail(&after, row)
            )));
        }
        self.record(JournalStep::new(key.clone(), StepKind::PullUpdated)).await?;
        // The old API silently drops mirror changes the caller may not make
        // (`ee/lib/ee/api/helpers/projects_helpers.rb`), and credentials are invisible on
        // re-read: say so.
        let detail = if new_api {
            "applied"
        } else {
            "applied through PUT /projects/:id (GitLab < 17.6 may drop mirror changes \
             silently; --verify checks the mirror syncs)"
        };
        self.finish_pull(row, &live, after, detail).await
    }

    /// Restore flags GitLab changed, then verify if asked.
    async fn finish_pull(
        &self,
        row: &PlanRow,
        before: &MirrorFacts,
        after: MirrorFacts,
        detail: &str,
    ) -> Result<RowResult, RowStop> {
        let mut detail = detail.to_owned();
        if flags_changed(&before.flags, &after.flags) && self.pre.version.supports_pull_mirror_api()
        {
            // The flags seen at planning must be the same afterwards.
            let restore = restore_flags(&before.flags);
            self.client_for(row).update_pull_mirror(row.project_id, &restore).await?;
            detail.push_str("; mirror flags restored");
        }
        let verified = if self.settings.verify {
            self.verify_pull(row.project_id).await
        } else {
            String::new()
        };
        Ok(RowResult::applied(detail, verified))
    }

    /// Write the row's pull mirror. Returns the mirror as saved when the API answers with it
    /// (17.6+), `None` on the old API (which answers with the project).
    async fn write_pull(
        &self,
        row: &PlanRow,
        new_api: bool,
    ) -> Result<Option<PullMirror>, GitLabError> {
        if new_api {
            // Send url, auth_user and auth_password together, raw: `url` alone would wipe the
            // stored credentials (docs/gitlab-behaviour.md).
            // Without service credentials only the URL is sent: its own userinfo (an ssh
            // user) is what GitLab keeps, and a URL without userinfo clears the stored
            // credentials, which is what `new_auth=none` means.
            let (auth_user, auth_password) = match self.credentials_for(row) {
                Some((user, password)) => (Some(user), Some(password)),
                None => (None, None),
            };
            let req = PullMirrorUpdate {
                url: row.new_url.clone(),
                auth_user,
                auth_password,
                ..PullMirrorUpdate::default()
            };
            let saved = self.client_for(row).update_pull_mirror(row.project_id, &req).await?;
            Ok(Some(saved))
        } else {
            // The old API takes the credentials inside import_url, percent-encoded.
            let import_url = self.credentialed_url(row);
            let mirror_user_id = if !row.new_mirror_user.is_empty()
                && row.new_mirror_user != self.pre.user.username
            {
                self.client.user_by_username(&row.new_mirror_user).await?.map(|u| u.id)
            } else {
                None
            };
            let req = ImportUrlUpdate {
                import_url,
                mirror: true,
                mirror_user_id,
                mirror_trigger_builds: None,
                only_mirror_protected_branches: None,
                mirror_overwrites_diverged_branches: None,
                mirror_branch_regex: None,
            };
            self.client.update_project_import_url(row.project_id, &req).await?;
            Ok(None)
        }
    }

    async fn verify_pull(&self, project_id: u64) -> String {
        self.poll_until_done("not mirrored", || async {
            let mirror = self.client.pull_mirror(project_id).await?;
            Ok(mirror.map(|m| (m.update_status, m.last_error)))
        })
        .await
    }
}
