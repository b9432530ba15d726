//! Applying a pull-mirror row: re-read, drift check, one write (the 17.6 API or the old
//! `PUT /projects/:id`), confirmation, flag restore and `--verify`. A write whose answer was
//! lost is re-read and resent only while the mirror still looks as planned. Mirror-user-only
//! rows are written without URL or credentials, so GitLab keeps both; on the old API a write
//! that left the caller as mirror user (GitLab does that when the current `mirror_user_id` is
//! sent) is followed by one that names the planned user.

use crate::apply::executor::{Exec, MAX_RESENDS, Prior, RowResult, RowStop, probe_note};
use crate::apply::journal::{Intent, JournalStep, StepKind, WriteStep};
use crate::apply::matching::{drift_detail, flags_changed, pull_matches, restore_flags};
use crate::config::Mirrors;
use crate::gitlab::{GitLabError, ImportUrlUpdate, PullMirror, PullMirrorFlags, PullMirrorUpdate};
use crate::inventory::{self, MirrorDetail, facts};
use crate::plan::{self, MirrorFacts, PlanRow, RowKey};

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
        key: &RowKey,
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
        let new_api = self.pre.version.supports_pull_mirror_api();
        if plan::fingerprint(&live.observed()) != planned {
            // Only a row an earlier run was writing (an intent without an outcome) may be found
            // already applied; any other change since planning is drift, even one that looks
            // like the target (credentials are not visible to compare).
            if prior.attempted && pull_matches(&live, row) {
                return Ok(RowResult::already_applied("an earlier run's write had landed"));
            }
            // An earlier run's old-API write landed but left the caller as mirror user: name
            // the planned one (the second half of that write).
            if prior.attempted && !new_api && self.caller_took_over(&live, row) {
                self.record(Intent::new(key.clone(), WriteStep::PullUpdate, &row.new_url)).await?;
                let after = self.set_mirror_user(row).await?;
                return self.confirm_pull(row, key, &live, after, "applied (resumed)").await;
            }
            return Ok(RowResult::drifted(drift_detail(&live, row)));
        }
        // The service credentials are proven right before they are written.
        let probed = match self.probe_before_write(row).await {
            Ok(code) => code,
            Err(stop) => return Ok(stop),
        };
        if self.settings.dry_run {
            let call = match (new_api, row.is_mirror_user_only()) {
                (true, false) => "PUT /projects/:id/mirror/pull",
                (true, true) => "PUT /projects/:id/mirror/pull (mirror user only, as that user)",
                (false, false) => "PUT /projects/:id (import_url)",
                (false, true) => "PUT /projects/:id (mirror_user_id only)",
            };
            return Ok(RowResult::dry_run(format!("would call {call}{}", probe_note(probed))));
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
        // GitLab before 17.6 makes the caller the mirror user when the write names the
        // current one (docs/gitlab-behaviour.md#old-put-project): name the planned user again.
        let after = if !new_api && self.caller_took_over(&after, row) {
            self.set_mirror_user(row).await?
        } else {
            after
        };
        // The old API silently drops mirror changes the caller may not make
        // (`ee/lib/ee/api/helpers/projects_helpers.rb`), and credentials are invisible on
        // re-read: say so.
        let detail = if new_api {
            "applied"
        } else {
            "applied through PUT /projects/:id (GitLab < 17.6 may drop mirror changes \
             silently; --verify checks the mirror syncs)"
        };
        self.confirm_pull(row, key, &live, after, detail).await
    }

    /// Check the mirror after the write, journal the step, restore flags and verify.
    async fn confirm_pull(
        &self,
        row: &PlanRow,
        key: &RowKey,
        before: &MirrorFacts,
        after: MirrorFacts,
        detail: &str,
    ) -> Result<RowResult, RowStop> {
        if !pull_matches(&after, row) {
            return Ok(RowResult::failed(format!(
                "GitLab accepted the write but now shows: {}",
                drift_detail(&after, row)
            )));
        }
        if row.is_mirror_user_only() && !only_the_user_changed(before, &after) {
            return Ok(RowResult::failed(format!(
                "GitLab changed more than the mirror user: {}",
                drift_detail(&after, row)
            )));
        }
        self.record(JournalStep::new(key.clone(), StepKind::PullUpdated)).await?;
        self.finish_pull(row, before, after, detail).await
    }

    /// The mirror looks like the target except that its user is the caller, not the planned
    /// user: what GitLab's old API does when a write names the current mirror user.
    fn caller_took_over(&self, live: &MirrorFacts, row: &PlanRow) -> bool {
        let caller = &self.pre.user.username;
        !row.new_mirror_user.is_empty()
            && row.new_mirror_user != *caller
            && live.user_name == *caller
            && pull_matches(
                &MirrorFacts { user_name: row.new_mirror_user.clone(), ..live.clone() },
                row,
            )
    }

    /// Old API: name the planned mirror user with `mirror_user_id` alone (admin), then re-read.
    async fn set_mirror_user(&self, row: &PlanRow) -> Result<MirrorFacts, RowStop> {
        let Some(user) = self.client.user_by_username(&row.new_mirror_user).await? else {
            return Err(RowStop::Refused(format!(
                "the planned mirror user {} no longer exists",
                row.new_mirror_user
            )));
        };
        self.client.update_project_mirror_user(row.project_id, user.id).await?;
        self.read_pull(row.project_id)
            .await?
            .ok_or_else(|| RowStop::Refused("the mirror disappeared after the write".into()))
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
        if row.is_mirror_user_only() {
            // Neither URL nor credentials: GitLab keeps both. On 17.6+ a parameter that keeps
            // its value (`enabled=true`), sent as the planned user, makes it the mirror user;
            // on the old API an administrator names it with `mirror_user_id`.
            if new_api {
                let req = PullMirrorUpdate { enabled: Some(true), ..PullMirrorUpdate::default() };
                let saved = self.client_for(row).update_pull_mirror(row.project_id, &req).await?;
                return Ok(Some(saved));
            }
            let Some(user) = self.client.user_by_username(&row.new_mirror_user).await? else {
                return Err(GitLabError::Config(format!(
                    "the planned mirror user {} no longer exists",
                    row.new_mirror_user
                )));
            };
            self.client.update_project_mirror_user(row.project_id, user.id).await?;
            return Ok(None);
        }
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
                flags: PullMirrorFlags::default(),
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

/// A mirror-user-only write changed nothing but the mirror user: the masked URL, the
/// credential kind, the enabled state and the flags are as before.
fn only_the_user_changed(before: &MirrorFacts, after: &MirrorFacts) -> bool {
    let (b, a) = (before.observed(), after.observed());
    b.masked_url == a.masked_url
        && b.current_auth == a.current_auth
        && b.enabled == a.enabled
        && !flags_changed(&before.flags, &after.flags)
}
