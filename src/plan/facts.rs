//! The facts of one mirror as read from GitLab, in plain data: what the row policy
//! ([`crate::plan::decide`]), the health report and `apply`'s drift check all look at.
//!
//! Pure: the conversion from GitLab's payloads lives in `inventory`, so this type can be built
//! by hand in table tests.

use time::OffsetDateTime;

use crate::plan::diagnose::{self, DiagnoseInput, Diagnosis, MirrorUserState};
use crate::plan::fingerprint::{MirrorFlags, ObservedState};
use crate::plan::row::{CurrentAuth, MirrorType};

/// The project a mirror belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProjectFacts {
    /// Numeric id.
    pub(crate) id: u64,
    /// `path_with_namespace`.
    pub(crate) path: String,
    /// GitLab's `web_url`.
    pub(crate) web_url: String,
    /// Whether the project is archived.
    pub(crate) archived: bool,
}

/// Which mirror of the project this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MirrorKind {
    /// The project's pull mirror, with pull mirroring switched on.
    Pull,
    /// The project has an import URL but pull mirroring is off (or it was imported once).
    PullDisabled,
    /// A push (remote) mirror.
    Push {
        /// Its id.
        id: u64,
    },
    /// GitLab kept answering an error for this project's pull mirror (`Pull`) or its list of
    /// push mirrors (`Push`): nothing is known of it but the error, kept in
    /// [`MirrorFacts::last_error`].
    Unreadable(MirrorType),
}

impl MirrorKind {
    /// Pull or push.
    pub(crate) fn mirror_type(self) -> MirrorType {
        match self {
            MirrorKind::Pull | MirrorKind::PullDisabled => MirrorType::Pull,
            MirrorKind::Push { .. } => MirrorType::Push,
            MirrorKind::Unreadable(mirror_type) => mirror_type,
        }
    }

    /// The push mirror id; `None` for pull.
    pub(crate) fn mirror_id(self) -> Option<u64> {
        match self {
            MirrorKind::Push { id } => Some(id),
            _ => None,
        }
    }
}

/// Everything known about one mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MirrorFacts {
    /// The project.
    pub(crate) project: ProjectFacts,
    /// Pull, disabled pull, or push.
    pub(crate) kind: MirrorKind,
    /// The URL as GitLab shows it (masked by GitLab when credentials are stored).
    pub(crate) url: String,
    /// Whether the mirror is enabled.
    pub(crate) enabled: bool,
    /// GitLab's `update_status`.
    pub(crate) update_status: String,
    /// GitLab's `last_error`, raw (`None` when empty); for [`MirrorKind::Unreadable`], the
    /// error GitLab answered to the read.
    pub(crate) last_error: Option<String>,
    /// When the last update started.
    pub(crate) last_update_started_at: Option<OffsetDateTime>,
    /// When the last update ended, successfully or not.
    pub(crate) last_update_at: Option<OffsetDateTime>,
    /// When the last update succeeded.
    pub(crate) last_successful_update_at: Option<OffsetDateTime>,
    /// The pull mirror user's state.
    pub(crate) user_state: MirrorUserState,
    /// The pull mirror user's name (empty when unknown or gone).
    pub(crate) user_name: String,
    /// The pull mirror user's id, as the project shows it.
    pub(crate) user_id: Option<u64>,
    /// The mirror flags.
    pub(crate) flags: MirrorFlags,
}

impl MirrorFacts {
    /// The facts of a mirror GitLab would not let us read: only the project and the error.
    pub(crate) fn unreadable(
        project: ProjectFacts,
        mirror_type: MirrorType,
        error: String,
    ) -> MirrorFacts {
        MirrorFacts {
            project,
            kind: MirrorKind::Unreadable(mirror_type),
            url: String::new(),
            enabled: true,
            update_status: String::new(),
            last_error: Some(error),
            last_update_started_at: None,
            last_update_at: None,
            last_successful_update_at: None,
            user_state: MirrorUserState::NotApplicable,
            user_name: String::new(),
            user_id: None,
            flags: MirrorFlags::default(),
        }
    }

    /// Pull or push.
    pub(crate) fn mirror_type(&self) -> MirrorType {
        self.kind.mirror_type()
    }

    /// What a write would overwrite: the input of the `observed` fingerprint. Plan and apply
    /// both build it here, so the two can never disagree on what counts as drift.
    pub(crate) fn observed(&self) -> ObservedState {
        ObservedState {
            masked_url: self.url.clone(),
            current_auth: CurrentAuth::from_masked_url(&self.url),
            enabled: self.enabled,
            mirror_user_id: self.user_id,
            flags: self.flags.clone(),
        }
    }

    /// The diagnosis of a mirror with these facts (see [`diagnose::diagnose`]); `unreadable`
    /// for a mirror that could not be read.
    pub(crate) fn diagnose(&self, now: OffsetDateTime, silent_mode: bool) -> Option<Diagnosis> {
        if let MirrorKind::Unreadable(_) = self.kind {
            return Some(Diagnosis::Unreadable);
        }
        diagnose::diagnose(&DiagnoseInput {
            mirror_type: self.mirror_type(),
            enabled: self.enabled,
            update_status: &self.update_status,
            last_error: self.last_error.as_deref(),
            last_update_started_at: self.last_update_started_at,
            last_successful_update_at: self.last_successful_update_at,
            now,
            mirror_user_state: self.user_state,
            silent_mode,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An enabled, healthy pull mirror of project 1 on github.com with stored credentials.
    pub(crate) fn pull_facts() -> MirrorFacts {
        MirrorFacts {
            project: ProjectFacts {
                id: 1,
                path: "acme/api".into(),
                web_url: "https://gitlab.example.com/acme/api".into(),
                archived: false,
            },
            kind: MirrorKind::Pull,
            url: "https://*****:*****@github.com/acme/api.git".into(),
            enabled: true,
            update_status: "finished".into(),
            last_error: None,
            last_update_started_at: None,
            last_update_at: None,
            last_successful_update_at: None,
            user_state: MirrorUserState::Active,
            user_name: "alice".into(),
            user_id: Some(7),
            flags: MirrorFlags {
                trigger_builds: Some(false),
                only_protected_branches: Some(false),
                overwrite_diverged: Some(false),
                branch_regex: None,
                keep_divergent_refs: None,
                auth_method: None,
            },
        }
    }

    #[test]
    fn kind_gives_type_and_id() {
        assert_eq!(MirrorKind::Pull.mirror_type(), MirrorType::Pull);
        assert_eq!(MirrorKind::PullDisabled.mirror_type(), MirrorType::Pull);
        assert_eq!(MirrorKind::Push { id: 4 }.mirror_type(), MirrorType::Push);
        assert_eq!(MirrorKind::Push { id: 4 }.mirror_id(), Some(4));
        assert_eq!(MirrorKind::Pull.mirror_id(), None);
    }

    #[test]
    fn observed_reads_the_mask() {
        let facts = pull_facts();
        let observed = facts.observed();
        assert_eq!(observed.current_auth, CurrentAuth::UserPassword);
        assert_eq!(observed.mirror_user_id, Some(7));
        let mut plain = facts.clone();
        plain.url = "https://github.com/acme/api.git".into();
        assert_eq!(plain.observed().current_auth, CurrentAuth::None);
    }
}
