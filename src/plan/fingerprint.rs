//! The `observed` column: a fingerprint of what a write would overwrite, plus an integrity tag
//! that ties the row's key and planned action to it.
//!
//! **Fingerprint.** `v1-` and 16 hex digits of the SHA-256 of a canonical, length-prefixed
//! encoding of the masked URL, the credential kind, `enabled`, the mirror user id and the
//! mirror flags (SPEC.md §4). Status, error and timestamps are left out on purpose: they
//! change on their own between plan and apply. A flag a GitLab version does not expose is
//! `None` and encoded as "absent", so it is not compared with a value (SPEC.md §6). `apply`
//! re-reads the mirror, recomputes the fingerprint and calls the row `drifted` on a mismatch.
//!
//! **Tag.** The cell `plan` writes is `<fingerprint>.<tag>`, the tag being 8 hex digits of the
//! SHA-256 of (project id, mirror type, mirror id, planned action, fingerprint). It lets
//! `apply` refuse a plan where a reviewer promoted a `skip`/`manual` row to `update`, or moved
//! a cell to another row, before any write. Only `update` → `skip` is accepted.
//!
//! This **detects edits; it is not a security boundary**: the hash has no secret key, so
//! anyone who reads this code can compute a valid tag for any action. It protects against
//! mistakes in a spreadsheet, not against a malicious editor of the plan.

use sha2::{Digest, Sha256};

use crate::plan::row::{CurrentAuth, RowKey};
use crate::rewrite::Action;

/// The version prefix of the fingerprint encoding; bump it if the encoding changes.
pub const FINGERPRINT_VERSION: &str = "v1";

/// The mirror settings a write may change, as GitLab shows them. `None` means this GitLab
/// version does not expose the flag (it is then not compared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorFlags {
    /// Pull: `mirror_trigger_builds`.
    pub trigger_builds: Option<bool>,
    /// Pull: `only_mirror_protected_branches`; push: `only_protected_branches`.
    pub only_protected_branches: Option<bool>,
    /// Pull: `mirror_overwrites_diverged_branches`.
    pub overwrite_diverged: Option<bool>,
    /// `mirror_branch_regex` (GitLab 17.5+ for pull; EE push behind a feature flag).
    pub branch_regex: Option<String>,
    /// Push: `keep_divergent_refs`.
    pub keep_divergent_refs: Option<bool>,
    /// Push: `auth_method` (`password` or `ssh_public_key`).
    pub auth_method: Option<String>,
}

/// What a write would overwrite, seen when planning (or re-read before applying).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedState {
    /// The URL as GitLab shows it (masked).
    pub masked_url: String,
    /// The credential kind from the mask.
    pub current_auth: CurrentAuth,
    /// Whether the mirror is enabled.
    pub enabled: bool,
    /// The pull mirror's user id (`None` for push, or when GitLab shows none).
    pub mirror_user_id: Option<u64>,
    /// The mirror flags.
    pub flags: MirrorFlags,
}

/// Append one length-prefixed field, so that no two different states encode the same.
fn field(buf: &mut Vec<u8>, name: &str, value: Option<&str>) {
    buf.extend_from_slice(name.as_bytes());
    match value {
        None => buf.extend_from_slice(b"=-\n"),
        Some(v) => {
            buf.extend_from_slice(format!("=+{}:", v.len()).as_bytes());
            buf.extend_from_slice(v.as_bytes());
            buf.push(b'\n');
        }
    }
}

fn bool_text(b: Option<bool>) -> Option<&'static str> {
    b.map(|b| if b { "true" } else { "false" })
}

/// The canonical encoding hashed by [`fingerprint`] (public for tests and debugging only;
/// it may hold a masked URL, never a credential).
pub fn canonical_encoding(state: &ObservedState) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(FINGERPRINT_VERSION.as_bytes());
    buf.push(b'\n');
    let user_id = state.mirror_user_id.map(|id| id.to_string());
    let f = &state.flags;
    field(&mut buf, "url", Some(&state.masked_url));
    field(&mut buf, "auth", Some(state.current_auth.code()));
    field(&mut buf, "enabled", bool_text(Some(state.enabled)));
    field(&mut buf, "mirror_user_id", user_id.as_deref());
    field(&mut buf, "trigger_builds", bool_text(f.trigger_builds));
    field(&mut buf, "only_protected_branches", bool_text(f.only_protected_branches));
    field(&mut buf, "overwrite_diverged", bool_text(f.overwrite_diverged));
    field(&mut buf, "branch_regex", f.branch_regex.as_deref());
    field(&mut buf, "keep_divergent_refs", bool_text(f.keep_divergent_refs));
    field(&mut buf, "auth_method", f.auth_method.as_deref());
    buf
}

/// The stable fingerprint of a mirror's observed state: `v1-` + 16 hex digits.
pub fn fingerprint(state: &ObservedState) -> String {
    let digest = Sha256::digest(canonical_encoding(state));
    format!("{FINGERPRINT_VERSION}-{}", hex::encode(&digest.as_slice()[..8]))
}

/// What the integrity tag binds a fingerprint to: the row's key and the target columns a
/// reviewer may not edit (`new_auth`, `new_user`, `new_mirror_user`). `new_url` is left out
/// on purpose: reviewers may edit it, and `apply` checks it again with the URL rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealKey {
    /// The row's key.
    pub key: RowKey,
    /// The sealed target cells, joined.
    pub targets: String,
}

impl SealKey {
    /// The seal of a plan row as it stands (in the file, or as `plan` built it).
    pub fn of(row: &crate::plan::PlanRow) -> SealKey {
        SealKey {
            key: row.key(),
            targets: format!(
                "{}\n{}\n{}",
                row.new_auth.map(|a| a.code()).unwrap_or_default(),
                row.new_user,
                row.new_mirror_user
            ),
        }
    }
}

impl From<RowKey> for SealKey {
    /// A row with empty target cells.
    fn from(key: RowKey) -> SealKey {
        SealKey { key, targets: "\n\n".to_owned() }
    }
}

fn tag(seal: &SealKey, action: Action, fingerprint: &str) -> String {
    let RowKey { project_id, mirror_type, mirror_id } = &seal.key;
    let mirror_id = mirror_id.map(|id| id.to_string()).unwrap_or_default();
    let text = format!(
        "glmirror-observed-tag-v1\n{project_id}\n{}\n{mirror_id}\n{}\n{fingerprint}\n{}\n",
        mirror_type.code(),
        action.code(),
        seal.targets
    );
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest.as_slice()[..4])
}

/// The `observed` cell `plan` writes for a row: `<fingerprint>.<tag>`.
pub fn observed_cell(key: impl Into<SealKey>, action: Action, state: &ObservedState) -> String {
    let fp = fingerprint(state);
    let tag = tag(&key.into(), action, &fp);
    format!("{fp}.{tag}")
}

/// Split a well-formed `observed` cell into fingerprint and tag.
fn split_cell(cell: &str) -> Option<(&str, &str)> {
    let (fp, tag) = cell.split_once('.')?;
    let hex_digits = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let digits = fp.strip_prefix(FINGERPRINT_VERSION)?.strip_prefix('-')?;
    (hex_digits(digits, 16) && hex_digits(tag, 8)).then_some((fp, tag))
}

/// The fingerprint part of an `observed` cell, when the cell has the right shape.
pub fn observed_fingerprint(cell: &str) -> Option<&str> {
    split_cell(cell).map(|(fp, _)| fp)
}

/// Check an `observed` cell read from a plan against the row it is on and the action the file
/// now says. Accepts the planned action, and `skip` where `update` was planned (a reviewer may
/// demote a row); returns the fingerprint. Anything else is refused with a reason.
pub fn check_observed_cell(
    cell: &str,
    key: impl Into<SealKey>,
    action_in_file: Action,
) -> Result<String, String> {
    let key = key.into();
    let Some((fp, given)) = split_cell(cell) else {
        return Err(
            "the observed cell is not a glmirror fingerprint (expected v1-<16 hex>.<8 hex>); \
             it must be kept exactly as plan wrote it"
                .to_owned(),
        );
    };
    let planned = [Action::Update, Action::Skip, Action::Manual]
        .into_iter()
        .find(|a| tag(&key, *a, fp) == given);
    match planned {
        Some(planned) if planned == action_in_file => Ok(fp.to_owned()),
        Some(Action::Update) if action_in_file == Action::Skip => Ok(fp.to_owned()),
        Some(planned) => Err(format!(
            "action was changed from {planned} to {action_in_file}; only update → skip is allowed"
        )),
        None => Err("the observed cell does not belong to this row (its key, new_auth, new_user, \
                     new_mirror_user or the cell itself was edited); re-run plan"
            .to_owned()),
    }
}

/// The action a row was planned with, recovered from its `observed` cell (`None` when the
/// cell does not fit the row).
pub fn planned_action(cell: &str, key: impl Into<SealKey>) -> Option<Action> {
    let key = key.into();
    let (fp, given) = split_cell(cell)?;
    [Action::Update, Action::Skip, Action::Manual].into_iter().find(|a| tag(&key, *a, fp) == given)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::MirrorType;

    fn state() -> ObservedState {
        ObservedState {
            masked_url: "https://*****:*****@github.com/org/r.git".into(),
            current_auth: CurrentAuth::UserPassword,
            enabled: true,
            mirror_user_id: Some(42),
            flags: MirrorFlags {
                trigger_builds: Some(true),
                only_protected_branches: Some(false),
                overwrite_diverged: Some(false),
                branch_regex: None,
                keep_divergent_refs: None,
                auth_method: None,
            },
        }
    }

    const KEY: RowKey = RowKey { project_id: 7, mirror_type: MirrorType::Pull, mirror_id: None };

    #[test]
    fn fingerprint_is_stable_and_versioned() {
        let a = fingerprint(&state());
        assert_eq!(a, fingerprint(&state().clone()));
        assert!(a.starts_with("v1-") && a.len() == 19, "{a}");
        // Pinned: changing the encoding must bump the version.
        assert_eq!(a, fingerprint(&state()));
        let pinned = fingerprint(&ObservedState {
            masked_url: "https://h/x.git".into(),
            current_auth: CurrentAuth::None,
            enabled: false,
            mirror_user_id: None,
            flags: MirrorFlags::default(),
        });
        assert_eq!(pinned, PINNED);
    }

    const PINNED: &str = "v1-26f45e2af44bc811";

    #[test]
    fn every_compared_field_changes_the_fingerprint() {
        let base = fingerprint(&state());
        let mutations: Vec<fn(&mut ObservedState)> = vec![
            |s| s.masked_url.push('x'),
            |s| s.current_auth = CurrentAuth::User,
            |s| s.enabled = false,
            |s| s.mirror_user_id = Some(43),
            |s| s.mirror_user_id = None,
            |s| s.flags.trigger_builds = Some(false),
            |s| s.flags.trigger_builds = None,
            |s| s.flags.only_protected_branches = Some(true),
            |s| s.flags.overwrite_diverged = Some(true),
            |s| s.flags.branch_regex = Some(String::new()),
            |s| s.flags.branch_regex = Some("^main$".into()),
            |s| s.flags.keep_divergent_refs = Some(false),
            |s| s.flags.auth_method = Some("password".into()),
        ];
        let mut seen = std::collections::HashSet::from([base.clone()]);
        for (i, mutate) in mutations.iter().enumerate() {
            let mut s = state();
            mutate(&mut s);
            let fp = fingerprint(&s);
            assert!(seen.insert(fp), "mutation {i} collided");
        }
    }

    #[test]
    fn length_prefix_prevents_field_confusion() {
        let mut a = state();
        a.flags.branch_regex = Some("x\nauth_method=+8:password".into());
        a.flags.auth_method = None;
        let mut b = state();
        b.flags.branch_regex = Some("x".into());
        b.flags.auth_method = Some("password".into());
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn observed_cell_accepts_planned_action_and_demotion_only() {
        let s = state();
        let fp = fingerprint(&s);
        let update = observed_cell(KEY, Action::Update, &s);
        assert_eq!(check_observed_cell(&update, KEY, Action::Update), Ok(fp.clone()));
        assert_eq!(check_observed_cell(&update, KEY, Action::Skip), Ok(fp.clone()));
        let err = check_observed_cell(&update, KEY, Action::Manual).unwrap_err();
        assert!(err.contains("from update to manual"), "{err}");

        let manual = observed_cell(KEY, Action::Manual, &s);
        assert_eq!(check_observed_cell(&manual, KEY, Action::Manual), Ok(fp.clone()));
        let err = check_observed_cell(&manual, KEY, Action::Update).unwrap_err();
        assert_eq!(err, "action was changed from manual to update; only update → skip is allowed");
        assert!(check_observed_cell(&manual, KEY, Action::Skip).is_err());

        let skip = observed_cell(KEY, Action::Skip, &s);
        assert!(check_observed_cell(&skip, KEY, Action::Update).unwrap_err().contains("from skip"));
        assert_eq!(planned_action(&skip, KEY), Some(Action::Skip));
    }

    #[test]
    fn observed_cell_is_bound_to_its_row() {
        let s = state();
        let cell = observed_cell(KEY, Action::Update, &s);
        for (project_id, mirror_type, mirror_id) in
            [(8, MirrorType::Pull, None), (7, MirrorType::Push, Some(1))]
        {
            let other = RowKey { project_id, mirror_type, mirror_id };
            let err = check_observed_cell(&cell, other, Action::Update).unwrap_err();
            assert!(err.contains("does not belong"), "{err}");
        }
        for bad in ["", "v1-abc", "v2-0123456789abcdef.01234567", &cell.to_uppercase(), &cell[1..]]
        {
            let err = check_observed_cell(bad, KEY, Action::Update).unwrap_err();
            assert!(err.contains("not a glmirror fingerprint"), "{bad}: {err}");
        }
        // Swapping the fingerprint part (e.g. from another row) breaks the tag.
        let other =
            observed_cell(KEY, Action::Update, &ObservedState { enabled: false, ..state() });
        let spliced = format!("{}.{}", &other[..19], &cell[20..]);
        assert!(check_observed_cell(&spliced, KEY, Action::Update).is_err());
    }
}
