//! Applying a push-mirror row: GitLab cannot change a push mirror's URL
//! (`doc/api/remote_mirrors.md`), so the replacement is created with the same settings and
//! `enabled=true`, confirmed, and only then is the old mirror deleted. Both ids are journaled,
//! so a crash between the steps is repaired on resume, never duplicated.

use crate::apply::executor::{Exec, MAX_RESENDS, Prior, RowResult, RowStop, probe_note};
use crate::apply::journal::{Intent, JournalStep, StepKind, WriteStep};
use crate::apply::matching::{drift_detail, push_matches, without_userinfo};
use crate::gitlab::{GitLabError, RemoteMirror, RemoteMirrorCreate};
use crate::inventory::facts;
use crate::plan::{self, PlanRow, ProjectFacts, RowKey};
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
        if let Some(repair) = prior.repair {
            let recorded = repair.replacement_id.and_then(|id| live.iter().find(|m| m.id == id));
            let replacement = match recorded {
                Some(m) if push_matches(m, row) => Some(m),
                Some(m) => {
                    return Ok(RowResult::failed(format!(
                        "replacement push mirror {} exists but does not match the plan; \
                         resolve by hand (push mirror {old_id} was kept)",
                        m.id
                    )));
                }
                // A crash after the create was sent but before its id was recorded: only a
                // mirror created after that moment, matching the target, can be it.
                None if repair.create_unrecorded && prior.in_flight => live.iter().find(|m| {
                    repair.newest_before.is_some_and(|n| m.id > n)
                        && push_matches(m, row)
                        && self.claim(row.project_id, m.id)
                }),
                None => None,
            };
            if let Some(new) = replacement {
                let new_id = new.id;
                if old.is_some() {
                    self.record(
                        Intent::new(key.clone(), WriteStep::PushDeleteOld, &row.new_url)
                            .with_old_mirror_id(old_id)
                            .with_new_mirror_id(new_id),
                    )
                    .await?;
                    self.delete_push(row.project_id, old_id).await?;
                    self.record(JournalStep::new(key.clone(), StepKind::PushOldDeleted)).await?;
                    let verified = if self.settings.verify {
                        self.verify_push(row.project_id, new_id).await
                    } else {
                        String::new()
                    };
                    return Ok(RowResult::applied(
                        format!("replaced by push mirror {new_id} (resumed)"),
                        verified,
                    ));
                }
                return Ok(RowResult::already_applied(format!("replaced by push mirror {new_id}")));
            }
        }
        let Some(old) = old else {
            return Ok(RowResult::drifted(format!("push mirror {old_id} no longer exists")));
        };
        let facts =
            facts::push_facts(ProjectFacts { id: row.project_id, ..Default::default() }, old);
        if plan::fingerprint(&facts.observed()) != planned {
            return Ok(RowResult::drifted(drift_detail(&facts, row)));
        }
        if !self.push_credentials_survive(row) {
            return Ok(RowResult::failed(
                "the service username or token has characters a push mirror URL would store \
                 double-encoded; change this mirror in the UI",
            ));
        }
        if let Some(id) = self.appeared_after_planning(&live, row) {
            return Ok(appeared(id));
        }
        // The service credentials are proven right before they are written.
        let probed = match self.probe_before_write(row).await {
            Ok(code) => code,
            Err(stop) => return Ok(stop),
        };
        if self.settings.dry_run {
            return Ok(RowResult::dry_run(format!(
                "would create a replacement for push mirror {old_id}, then delete it{}",
                probe_note(probed)
            )));
        }
        // The last line of defence against a second run of this plan (on another machine,
        // as another user, or with another lock directory): look again right before creating.
        let live = self.client.remote_mirrors(row.project_id).await?;
        if let Some(id) = self.appeared_after_planning(&live, row) {
            return Ok(appeared(id));
        }
        let newest_before = live.iter().map(|m| m.id).max();
        self.record(
            Intent::new(key.clone(), WriteStep::PushCreate, &row.new_url)
                .with_old_mirror_id(old_id)
                .with_newest_before(newest_before),
        )
        .await?;
        let url = self.credentialed_url(row);
        // Create the replacement with the same settings and enabled=true (new mirrors are
        // disabled by default, `doc/api/remote_mirrors.md`). ssh → https gets
        // auth_method=password; otherwise the old mirror's settings are copied.
        let to_https = !old.url.starts_with("https://") && row.new_url.starts_with("https://");
        let req = RemoteMirrorCreate {
            url,
            enabled: true,
            auth_method: if to_https { Some("password".into()) } else { old.auth_method.clone() },
            keep_divergent_refs: old.keep_divergent_refs,
            only_protected_branches: old.only_protected_branches,
            // An empty regex next to only_protected_branches would be refused as exclusive.
            mirror_branch_regex: old.mirror_branch_regex.clone().filter(|r| !r.is_empty()),
        };
        let mut resends = 0;
        let created = loop {
            match self.client.create_remote_mirror(row.project_id, &req).await {
                Ok(m) => break m,
                // A definite refusal: nothing was created.
                Err(e) if !e.is_ambiguous() => return Err(RowStop::GitLab(e)),
                Err(e) => {
                    // The answer was lost, perhaps after GitLab created it: look for a mirror
                    // that did not exist at planning time before creating another.
                    let again = self.client.remote_mirrors(row.project_id).await?;
                    if let Some(m) = again.into_iter().find(|m| {
                        newest_before.is_none_or(|n| m.id > n)
                            && push_matches(m, row)
                            && self.claim(row.project_id, m.id)
                    }) {
                        break m;
                    }
                    if resends >= MAX_RESENDS {
                        return Err(RowStop::GitLab(e));
                    }
                    resends += 1;
                }
            }
        };
        self.claim(row.project_id, created.id);
        self.record(JournalStep::push_created(key.clone(), created.id)).await?;
        // Confirm the replacement exists before removing the old mirror.
        match self.client.remote_mirror(row.project_id, created.id).await? {
            Some(m) if push_matches(&m, row) => {}
            _ => {
                return Ok(RowResult::failed(format!(
                    "replacement push mirror {} could not be confirmed; the old mirror {old_id} \
                     was kept",
                    created.id
                )));
            }
        }
        self.record(JournalStep::new(key.clone(), StepKind::PushConfirmed)).await?;
        self.record(
            Intent::new(key.clone(), WriteStep::PushDeleteOld, &row.new_url)
                .with_old_mirror_id(old_id)
                .with_new_mirror_id(created.id),
        )
        .await?;
        self.delete_push(row.project_id, old_id).await?;
        self.record(JournalStep::new(key.clone(), StepKind::PushOldDeleted)).await?;
        let verified = if self.settings.verify {
            self.verify_push(row.project_id, created.id).await
        } else {
            String::new()
        };
        Ok(RowResult::applied(format!("replaced by push mirror {}", created.id), verified))
    }

    /// A push mirror of the row's project with its target URL that did not exist when the
    /// plan was made (its id is above every push-mirror id the plan names for the project)
    /// and that this run did not make: another run's replacement. Creating one more would
    /// leave two mirrors pushing the same repository.
    fn appeared_after_planning(&self, live: &[RemoteMirror], row: &PlanRow) -> Option<u64> {
        let newest = self.newest_planned_push_mirror(row.project_id)?;
        let target = without_userinfo(&row.new_url);
        live.iter()
            .find(|m| {
                m.id > newest
                    && without_userinfo(&m.url) == target
                    && !self.is_claimed(row.project_id, m.id)
            })
            .map(|m| m.id)
    }

    /// Delete a push mirror. DELETE is idempotent here (a 404 counts as done), so a request
    /// whose answer was lost is simply sent again.
    async fn delete_push(&self, project_id: u64, mirror_id: u64) -> Result<(), GitLabError> {
        let mut resends = 0;
        loop {
            match self.client.delete_remote_mirror(project_id, mirror_id).await {
                Err(e) if e.is_ambiguous() && resends < MAX_RESENDS => resends += 1,
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

/// The outcome of a row whose replacement another run already made.
fn appeared(id: u64) -> RowResult {
    RowResult::drifted(format!(
        "a push mirror to this URL appeared after planning (push mirror {id}): another run of \
         this plan made it? Not replaced again; plan again to see it"
    ))
}
