//! Applying a pull-mirror row: re-read, drift check, one write (the 17.6 API or the old
//! `PUT /projects/:id`), confirmation, flag restore and `--verify`. A write whose answer was
//! lost is re-read and resent only while the mirror still looks as planned. Mirror-user-only
//! rows are written without URL or credentials, so GitLab keeps both; on the old API a write
//! that left the caller as mirror user (GitLab does that when the current `mirror_user_id` is
//! sent) is followed by one that names the planned user. The decisions are in `pull_steps.rs`.

use crate::apply::executor::{Exec, RowStop};
use crate::apply::journal::{Intent, JournalStep, StepKind, WriteStep};
use crate::apply::pull_steps::{
    AfterWrite, PullCall, PullStart, after_write, applied_detail, confirmation, flags_to_restore,
    needs_mirror_user_again, other_mirror_user, pull_start,
};
use crate::apply::results::{Prior, RowResult, WriteAnswer};
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
        let new_api = self.pre.version.supports_pull_mirror_api();
        let caller = self.pre.user.username.as_str();
        let read = self.read_pull(row.project_id).await?;
        let live = match pull_start(&planned, read.as_ref(), row, prior, new_api, caller) {
            PullStart::Write(live) => live,
            PullStart::NameMirrorUser(live) => {
                self.record(Intent::new(key.clone(), WriteStep::PullUpdate, &row.new_url)).await?;
                let after = self.set_mirror_user(row).await?;
                return self.confirm_pull(row, key, live, after, "applied (resumed)").await;
            }
            PullStart::Done(result) => return Ok(result),
        };
        // The service credentials are proven right before they are written.
        let probed = match self.probe_before_write(row).await {
            Ok(code) => code,
            Err(stop) => return Ok(stop),
        };
        let call = PullCall::of(new_api, row.is_mirror_user_only());
        if self.settings.dry_run {
            return Ok(call.dry_run(probed));
        }
        self.record(Intent::new(key.clone(), WriteStep::PullUpdate, &row.new_url)).await?;
        // A write whose answer was lost (500, dropped connection) may or may not have landed:
        // re-read, and send it again only while the mirror still shows the planned state.
        let mut resends = 0;
        let after = loop {
            let write = self.write_pull(row, call).await;
            // The 17.6 API answers with the mirror as saved, and makes the caller (the `Sudo`
            // user) its mirror user (`doc/api/project_pull_mirroring.md`): that answer is the
            // confirmation, no second read needed.
            if let Ok(Some(saved)) = &write {
                break facts::after_put(live, saved, &row.new_mirror_user);
            }
            let answer = write.as_ref().map_or_else(WriteAnswer::of, |_| WriteAnswer::Answered);
            let reread = self.read_pull(row.project_id).await?;
            match (after_write(answer, &planned, reread.as_ref(), row, resends), reread, write) {
                (AfterWrite::Disappeared, ..) | (_, None, _) => {
                    return Ok(RowResult::failed("the mirror disappeared after the write"));
                }
                // After Ctrl-C nothing is sent again: the row ends with the unknown outcome
                // (the journal's intent stays), and a rerun re-reads it and finishes it.
                (AfterWrite::Resend, _, Err(e)) if self.interrupt.is_requested() => {
                    return Err(RowStop::GitLab(e));
                }
                (AfterWrite::Resend, ..) => {
                    resends += 1;
                    tracing::info!(
                        project_id = row.project_id,
                        "write outcome unknown; sending it again"
                    );
                }
                (AfterWrite::Landed, Some(after), _) => {
                    return self
                        .finish_pull(row, live, after, "applied (confirmed by re-read)")
                        .await;
                }
                (AfterWrite::Fail, _, Err(e)) => return Err(RowStop::GitLab(e)),
                // `Fail` always comes with an error; an answered write is confirmed.
                (AfterWrite::Confirm | AfterWrite::Fail, Some(after), _) => break after,
            }
        };
        let after = if needs_mirror_user_again(new_api, caller, &after, row) {
            self.set_mirror_user(row).await?
        } else {
            after
        };
        self.confirm_pull(row, key, live, after, applied_detail(new_api)).await
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
        if let Err(detail) = confirmation(row, before, &after) {
            return Ok(RowResult::failed(detail));
        }
        self.record(JournalStep::new(key.clone(), StepKind::PullUpdated)).await?;
        self.finish_pull(row, before, after, detail).await
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
        // The flags seen at planning must be the same afterwards.
        let new_api = self.pre.version.supports_pull_mirror_api();
        if let Some(restore) = flags_to_restore(before, &after, new_api) {
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
        call: PullCall,
    ) -> Result<Option<PullMirror>, GitLabError> {
        // Mirror user only: neither URL nor credentials, so GitLab keeps both. On 17.6+ a
        // parameter that keeps its value (`enabled=true`), sent as the planned user, makes it
        // the mirror user; on the old API an administrator names it with `mirror_user_id`.
        if call == PullCall::MirrorAsUser {
            let req = PullMirrorUpdate { enabled: Some(true), ..PullMirrorUpdate::default() };
            let saved = self.client_for(row).update_pull_mirror(row.project_id, &req).await?;
            return Ok(Some(saved));
        }
        if call == PullCall::MirrorUserId {
            let Some(user) = self.client.user_by_username(&row.new_mirror_user).await? else {
                return Err(GitLabError::Config(format!(
                    "the planned mirror user {} no longer exists",
                    row.new_mirror_user
                )));
            };
            self.client.update_project_mirror_user(row.project_id, user.id).await?;
            return Ok(None);
        }
        if call == PullCall::Mirror {
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
            let mirror_user_id = match other_mirror_user(row, &self.pre.user.username) {
                Some(name) => self.client.user_by_username(name).await?.map(|u| u.id),
                None => None,
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
