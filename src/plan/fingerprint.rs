//! The `observed` column: a fingerprint of what a write would overwrite, plus a seal that ties
//! the row's key, planned action, planned `new_url` and every cell a reviewer may not edit to
//! it.
//!
//! **Fingerprint.** `v1-` and 16 hex digits of the SHA-256 of a canonical, length-prefixed
//! encoding of the masked URL, the credential kind, `enabled`, the mirror user id and the
//! mirror flags (docs/plan-format.md). Status, error and timestamps are left out on purpose: they
//! change on their own between plan and apply. A flag a GitLab version does not expose is
//! `None` and encoded as "absent", so it is not compared with a value (docs/plan-format.md). `apply`
//! re-reads the mirror, recomputes the fingerprint and calls the row `drifted` on a mismatch.
//!
//! **Seal.** The cell `plan` writes is
//! `<fingerprint>.s2-<tag>-<column checks>[.<planned new_url>]`: the tag is 16 hex digits of
//! the SHA-256 of (project id, mirror type, mirror id, planned action, fingerprint, every cell
//! of [`SEALED_COLUMNS`], planned `new_url`), each length-prefixed; the column checks are one
//! byte per sealed column (24 hex digits), only used to name the column(s) an edit touched;
//! the planned `new_url` is base64url (so a find-and-replace over the sheet leaves it alone),
//! absent when it is empty. `apply` refuses, before any write, a plan where a reviewer
//! promoted a `skip`/`manual` row to `update`, edited a sealed column, or moved a cell to
//! another row; only `update` → `skip` is accepted. It also knows exactly which rows' `new_url`
//! a person changed, and from what.
//!
//! **The first format** (glmirror 0.1), `<fingerprint>.<8 hex>`, sealed only the key, the
//! action and `new_auth`, `new_user`, `new_mirror_user`. Such cells are still read (a run that
//! release started can be resumed), with [`Seal::planned_new_url`] `None`: whether `new_url`
//! or a descriptive column was edited cannot be told, and `apply` decides what that means.
//!
//! This **detects edits; it is not a security boundary**: the hash has no secret key, so
//! anyone who reads this code can compute a valid tag for any action. It protects against
//! mistakes in a spreadsheet, not against a malicious editor of the plan.
//!
//! Size: about 450 lines of code; the rest are its tests (both seal formats, every refused
//! edit, the origin splitter's agreement proptests), kept beside the encoding they pin.

use sha2::{Digest, Sha256};

use crate::plan::row::{CurrentAuth, RowKey};
use crate::rewrite::Action;

/// The version prefix of the fingerprint encoding; bump it if the encoding changes.
pub(crate) const FINGERPRINT_VERSION: &str = "v1";

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
pub(crate) fn canonical_encoding(state: &ObservedState) -> Vec<u8> {
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

/// The columns the seal covers besides the key and the action, in the order they are hashed.
/// A reviewer may edit none of them; `new_url` (sealed apart, see [`Seal`]), `action`
/// (`update` → `skip` only) and `reason` are the editable cells.
pub(crate) const SEALED_COLUMNS: [&str; 12] = [
    "project_path",
    "web_url",
    "current_url",
    "current_auth",
    "current_mirror_user",
    "update_status",
    "last_error",
    "diagnosis",
    "new_user",
    "new_auth",
    "new_mirror_user",
    "fixes",
];

/// The version tag of the seal `plan` writes today (see the module documentation).
pub(crate) const SEAL_VERSION: &str = "s2";

/// What the seal binds a fingerprint to: the row's key, its sealed cells
/// ([`SEALED_COLUMNS`], as canonical text) and its `new_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealKey {
    /// The row's key.
    pub(crate) key: RowKey,
    /// The sealed cells, in [`SEALED_COLUMNS`] order.
    cells: [String; 12],
    /// The row's `new_url`: the planned one when sealing; when checking, the file's (the
    /// planned one then comes from the cell).
    new_url: String,
}

impl SealKey {
    /// The seal of a plan row as it stands (in the file, or as `plan` built it).
    pub fn of(row: &crate::plan::PlanRow) -> SealKey {
        SealKey {
            key: row.key(),
            cells: [
                row.project_path.clone(),
                web_url_below_origin(&row.web_url).to_owned(),
                row.current_url.clone(),
                row.current_auth.code().to_owned(),
                row.current_mirror_user.clone(),
                row.update_status.clone(),
                row.last_error.clone(),
                row.diagnosis.map(|d| d.code().to_owned()).unwrap_or_default(),
                row.new_user.clone(),
                row.new_auth.map(|a| a.code().to_owned()).unwrap_or_default(),
                row.new_mirror_user.clone(),
                crate::rewrite::Fix::join(&row.fixes),
            ],
            new_url: row.new_url.clone(),
        }
    }

    fn cell(&self, column: &str) -> &str {
        let at = SEALED_COLUMNS.iter().position(|c| *c == column).expect("a sealed column");
        &self.cells[at]
    }

    /// What the first seal format covered: `new_auth`, `new_user`, `new_mirror_user`.
    fn legacy_targets(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.cell("new_auth"),
            self.cell("new_user"),
            self.cell("new_mirror_user")
        )
    }
}

/// What the seal covers of `web_url`: the part after its origin (`scheme://host[:port]`).
/// The origin is checked by other means (every row of a plan must name the same instance,
/// and `apply` compares it with what GitLab reports now), and leaving it out keeps the seal
/// of a plan the same wherever the instance is reached from (tests put a fixed origin in a
/// simulator's place).
///
/// The origin ends where `redact::split_authority` ends the authority (at the first `/`, `?`
/// or `#`); text without `://` is covered whole.
fn web_url_below_origin(web_url: &str) -> &str {
    crate::redact::split_authority(web_url).map_or(web_url, |a| a.rest)
}

impl From<RowKey> for SealKey {
    /// A row with empty cells.
    fn from(key: RowKey) -> SealKey {
        SealKey { key, cells: Default::default(), new_url: String::new() }
    }
}

/// The first seal format (`<fingerprint>.<8 hex>`): key, action, fingerprint and the three
/// target cells only.
fn legacy_tag(seal: &SealKey, action: Action, fingerprint: &str) -> String {
    let RowKey { project_id, mirror_type, mirror_id } = &seal.key;
    let mirror_id = mirror_id.map(|id| id.to_string()).unwrap_or_default();
    let text = format!(
        "glmirror-observed-tag-v1\n{project_id}\n{}\n{mirror_id}\n{}\n{fingerprint}\n{}\n",
        mirror_type.code(),
        action.code(),
        seal.legacy_targets()
    );
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest.as_slice()[..4])
}

/// The `s2` tag: 16 hex digits over key, action, fingerprint, every sealed cell and the
/// planned `new_url`, each length-prefixed.
fn tag(seal: &SealKey, action: Action, fingerprint: &str, planned_url: &str) -> String {
    let RowKey { project_id, mirror_type, mirror_id } = &seal.key;
    let mut buf = Vec::with_capacity(512);
    buf.extend_from_slice(b"glmirror-observed-seal-s2\n");
    field(&mut buf, "project_id", Some(&project_id.to_string()));
    field(&mut buf, "mirror_type", Some(mirror_type.code()));
    field(&mut buf, "mirror_id", mirror_id.map(|id| id.to_string()).as_deref());
    field(&mut buf, "action", Some(action.code()));
    field(&mut buf, "fingerprint", Some(fingerprint));
    for (column, value) in SEALED_COLUMNS.iter().zip(&seal.cells) {
        field(&mut buf, column, Some(value));
    }
    field(&mut buf, "new_url", Some(planned_url));
    hex::encode(&Sha256::digest(&buf).as_slice()[..8])
}

/// One byte per sealed column, so that a broken seal can name the edited column(s). (The
/// tag alone decides whether the seal holds; these only explain a failure.)
fn column_checks(seal: &SealKey) -> String {
    SEALED_COLUMNS
        .iter()
        .zip(&seal.cells)
        .map(|(column, value)| {
            let mut buf = Vec::with_capacity(64 + value.len());
            field(&mut buf, column, Some(value));
            hex::encode(&Sha256::digest(&buf).as_slice()[..1])
        })
        .collect()
}

fn encode_url(url: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url.as_bytes())
}

fn decode_url(text: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()?;
    String::from_utf8(bytes).ok()
}

/// The `observed` cell `plan` writes for a row:
/// `<fingerprint>.s2-<16 hex tag>-<24 hex column checks>[.<planned new_url, base64url>]`.
pub fn observed_cell(key: impl Into<SealKey>, action: Action, state: &ObservedState) -> String {
    let key = key.into();
    let fp = fingerprint(state);
    let tag = tag(&key, action, &fp, &key.new_url);
    let mut cell = format!("{fp}.{SEAL_VERSION}-{tag}-{}", column_checks(&key));
    if !key.new_url.is_empty() {
        cell.push('.');
        cell.push_str(&encode_url(&key.new_url));
    }
    cell
}

/// The `observed` cell in the first format (`<fingerprint>.<8 hex>`), as glmirror 0.1 wrote
/// it. Only for tests of how such plans are still read.
#[cfg(test)]
pub(crate) fn legacy_observed_cell(
    key: impl Into<SealKey>,
    action: Action,
    state: &ObservedState,
) -> String {
    let key = key.into();
    let fp = fingerprint(state);
    let tag = legacy_tag(&key, action, &fp);
    format!("{fp}.{tag}")
}

fn hex_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A well-formed `observed` cell, split.
enum Cell<'a> {
    /// `<fp>.<8 hex>`.
    Legacy { fp: &'a str, tag: &'a str },
    /// `<fp>.s2-<tag>-<checks>[.<url>]`.
    Sealed { fp: &'a str, tag: &'a str, checks: &'a str, planned_url: String },
}

impl<'a> Cell<'a> {
    fn parse(cell: &'a str) -> Option<Cell<'a>> {
        let mut parts = cell.split('.');
        let fp = parts.next()?;
        let seal = parts.next()?;
        let url = parts.next();
        if parts.next().is_some() {
            return None;
        }
        let digits = fp.strip_prefix(FINGERPRINT_VERSION)?.strip_prefix('-')?;
        if !hex_digits(digits, 16) {
            return None;
        }
        if let Some(rest) = seal.strip_prefix(SEAL_VERSION).and_then(|r| r.strip_prefix('-')) {
            let (tag, checks) = rest.split_once('-')?;
            let planned_url = match url {
                Some(text) if !text.is_empty() => decode_url(text)?,
                Some(_) => return None,
                None => String::new(),
            };
            return (hex_digits(tag, 16) && hex_digits(checks, 2 * SEALED_COLUMNS.len()))
                .then_some(Cell::Sealed { fp, tag, checks, planned_url });
        }
        (url.is_none() && hex_digits(seal, 8)).then_some(Cell::Legacy { fp, tag: seal })
    }

    fn fp(&self) -> &'a str {
        match self {
            Cell::Legacy { fp, .. } | Cell::Sealed { fp, .. } => fp,
        }
    }

    /// The action whose tag matches, if any.
    fn planned_action(&self, key: &SealKey) -> Option<Action> {
        [Action::Update, Action::Skip, Action::Manual].into_iter().find(|a| match self {
            Cell::Legacy { fp, tag } => legacy_tag(key, *a, fp) == *tag,
            Cell::Sealed { fp, tag, planned_url, .. } => {
                self::tag(key, *a, fp, planned_url) == *tag
            }
        })
    }
}

/// What a checked `observed` cell says about its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seal {
    /// The fingerprint of the mirror as planned.
    pub(crate) fingerprint: String,
    /// The action the row was planned with.
    pub(crate) planned_action: Action,
    /// The `new_url` the row was planned with; `None` for a cell in the first format
    /// (glmirror 0.1), which did not seal it, so an edit of it cannot be told.
    pub(crate) planned_new_url: Option<String>,
}

/// Check an `observed` cell read from a plan against the row it is on and the action the file
/// now says. Accepts the planned action, and `skip` where `update` was planned (a reviewer may
/// demote a row). Anything else is refused with a reason naming what was edited.
///
/// `new_url` is not compared here: its planned value is returned, and `apply` decides what an
/// edited one means.
pub(crate) fn read_seal(
    cell: &str,
    key: impl Into<SealKey>,
    action_in_file: Action,
) -> Result<Seal, String> {
    let key = key.into();
    let Some(parsed) = Cell::parse(cell) else {
        return Err(format!(
            "the observed cell is not a glmirror fingerprint (expected \
             v1-<16 hex>.{SEAL_VERSION}-<16 hex>-<24 hex>.<url>); it must be kept exactly as \
             plan wrote it"
        ));
    };
    let fp = parsed.fp().to_owned();
    let planned = parsed.planned_action(&key);
    let planned_new_url = match &parsed {
        Cell::Legacy { .. } => None,
        Cell::Sealed { planned_url, .. } => Some(planned_url.clone()),
    };
    let seal = |planned_action| Seal {
        fingerprint: fp.clone(),
        planned_action,
        planned_new_url: planned_new_url.clone(),
    };
    match planned {
        Some(planned) if planned == action_in_file => Ok(seal(planned)),
        Some(Action::Update) if action_in_file == Action::Skip => Ok(seal(Action::Update)),
        Some(planned) => Err(format!(
            "action was changed from {planned} to {action_in_file}; only update → skip is allowed"
        )),
        None => Err(match &parsed {
            Cell::Sealed { checks, .. } => {
                let edited = edited_columns(checks, &key);
                if edited.is_empty() {
                    "the observed cell does not belong to this row (its key, project_id, \
                     mirror_type or mirror_id, or the cell itself was edited); re-run plan"
                        .to_owned()
                } else {
                    format!(
                        "{} {} edited, and only action (update → skip), new_url and reason may \
                         be",
                        edited.join(", "),
                        if edited.len() == 1 { "was" } else { "were" }
                    )
                }
            }
            Cell::Legacy { .. } => "the observed cell does not belong to this row (its key, \
                                    new_auth, new_user, new_mirror_user or the cell itself was \
                                    edited); re-run plan"
                .to_owned(),
        }),
    }
}

/// The sealed columns whose check byte no longer fits the row.
fn edited_columns(checks: &str, key: &SealKey) -> Vec<&'static str> {
    let now = column_checks(key);
    SEALED_COLUMNS
        .iter()
        .enumerate()
        .filter(|(i, _)| checks.get(2 * i..2 * i + 2) != now.get(2 * i..2 * i + 2))
        .map(|(_, c)| *c)
        .collect()
}

/// [`read_seal`], giving the fingerprint only.
pub(crate) fn check_observed_cell(
    cell: &str,
    key: impl Into<SealKey>,
    action_in_file: Action,
) -> Result<String, String> {
    read_seal(cell, key, action_in_file).map(|s| s.fingerprint)
}

/// The action a row was planned with, recovered from its `observed` cell (`None` when the
/// cell does not fit the row).
pub(crate) fn planned_action(cell: &str, key: impl Into<SealKey>) -> Option<Action> {
    Cell::parse(cell)?.planned_action(&key.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::MirrorType;
    use crate::rewrite::authority_tests::{fixture_texts, url_text, web_url};
    use proptest::prelude::*;

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

    fn update_row() -> crate::plan::PlanRow {
        use crate::plan::Diagnosis;
        use crate::rewrite::{Fix, NewAuth};
        let mut row = crate::plan::row::tests::sample_row(7, MirrorType::Pull, None);
        row.action = Action::Update;
        row.current_mirror_user = "alice".into();
        row.diagnosis = Some(Diagnosis::AuthFailed);
        row.new_url = "https://github.com/org/r.git".into();
        row.new_user = "<token>".into();
        row.new_auth = Some(NewAuth::Service);
        row.new_mirror_user = "svc".into();
        row.fixes = vec![Fix::ServiceToken, Fix::MirrorUser];
        row.observed = observed_cell(SealKey::of(&row), Action::Update, &state());
        row
    }

    #[test]
    fn the_seal_recovers_the_planned_new_url_and_ignores_reason() {
        let row = update_row();
        assert!(row.observed.contains(".s2-"), "{}", row.observed);
        let seal = read_seal(&row.observed, SealKey::of(&row), Action::Update).expect("holds");
        assert_eq!(seal.planned_new_url.as_deref(), Some("https://github.com/org/r.git"));
        assert_eq!(seal.planned_action, Action::Update);
        let mut edited = row.clone();
        edited.new_url = "https://github.com/org/other.git".into();
        edited.reason = "edited by a reviewer".into();
        let seal = read_seal(&edited.observed, SealKey::of(&edited), Action::Update).expect("ok");
        assert_eq!(seal.planned_new_url.as_deref(), Some("https://github.com/org/r.git"));
        // A row planned without a new_url has no URL part.
        let skip = observed_cell(KEY, Action::Skip, &state());
        assert_eq!(skip.split('.').count(), 2, "{skip}");
        let seal = read_seal(&skip, KEY, Action::Skip).expect("holds");
        assert_eq!(seal.planned_new_url.as_deref(), Some(""));
    }

    #[test]
    fn an_edit_of_any_sealed_column_is_refused_and_named() {
        use crate::plan::{CurrentAuth, Diagnosis};
        use crate::rewrite::{Fix, NewAuth};
        let row = update_row();
        type Edit = fn(&mut crate::plan::PlanRow);
        let edits: Vec<(&str, Edit)> = vec![
            ("project_path", |r| r.project_path = "group/other".into()),
            ("web_url", |r| r.web_url = "https://gitlab.example.com/group/other".into()),
            ("current_url", |r| r.current_url = "https://github.com/org/x.git".into()),
            ("current_auth", |r| r.current_auth = CurrentAuth::User),
            ("current_mirror_user", |r| r.current_mirror_user = "bob".into()),
            ("update_status", |r| r.update_status = "finished".into()),
            ("last_error", |r| r.last_error = String::new()),
            ("diagnosis", |r| r.diagnosis = Some(Diagnosis::Stuck)),
            ("new_user", |r| r.new_user = "someone".into()),
            ("new_auth", |r| r.new_auth = Some(NewAuth::None)),
            ("new_mirror_user", |r| r.new_mirror_user = "mallory".into()),
            ("fixes", |r| r.fixes = vec![Fix::ServiceToken]),
        ];
        assert_eq!(edits.len(), SEALED_COLUMNS.len());
        for (column, edit) in edits {
            let mut edited = row.clone();
            edit(&mut edited);
            let err = read_seal(&edited.observed, SealKey::of(&edited), Action::Update)
                .expect_err(column);
            assert!(err.starts_with(&format!("{column} was edited")), "{column}: {err}");
        }
        let mut both = row.clone();
        both.project_path = "group/other".into();
        both.web_url = "https://gitlab.example.com/group/other".into();
        let err = read_seal(&both.observed, SealKey::of(&both), Action::Update).unwrap_err();
        assert!(err.starts_with("project_path, web_url were edited"), "{err}");
        // Editing the URL part of the cell breaks the tag.
        let (head, _) = row.observed.rsplit_once('.').expect("url part");
        let forged = format!("{head}.{}", encode_url("https://evil.example/x.git"));
        let err = read_seal(&forged, SealKey::of(&row), Action::Update).unwrap_err();
        assert!(err.contains("does not belong"), "{err}");
    }

    #[test]
    fn cells_of_the_first_format_are_still_read() {
        let row = update_row();
        let legacy = legacy_observed_cell(SealKey::of(&row), Action::Update, &state());
        assert!(hex_digits(legacy.split_once('.').expect("dot").1, 8), "{legacy}");
        let seal = read_seal(&legacy, SealKey::of(&row), Action::Update).expect("reads");
        assert_eq!(seal.planned_new_url, None, "the first format did not seal new_url");
        assert_eq!(seal.fingerprint, fingerprint(&state()));
        // It still seals the target cells it covered...
        let mut edited = row.clone();
        edited.new_user = "someone".into();
        assert!(read_seal(&legacy, SealKey::of(&edited), Action::Update).is_err());
        // ...and not the descriptive ones.
        edited = row.clone();
        edited.project_path = "group/other".into();
        assert!(read_seal(&legacy, SealKey::of(&edited), Action::Update).is_ok());
        // A cell of the journal fixtures (fixtures/journal/plan.csv, written by glmirror 0.1).
        assert!(Cell::parse("v1-ba0cdee6d3053dfa.59d623e2").is_some());
    }

    #[test]
    fn the_seal_is_pinned() {
        // Changing the seal encoding must change SEAL_VERSION (and plans made before it must
        // still be read).
        let row = update_row();
        let cell = observed_cell(SealKey::of(&row), Action::Update, &state());
        let tag = cell.split('.').nth(1).expect("seal");
        assert_eq!(tag, PINNED_SEAL, "{cell}");
    }

    const PINNED_SEAL: &str = "s2-32bee9aff4f4d599-0ea8ed5b33fd62f4e498a0b0";

    // ---- the one splitter ------------------------------------------------------------------

    /// `web_url_below_origin` before it was rebuilt on `redact::split_authority`, verbatim:
    /// the oracle the agreement tests compare with.
    fn legacy_web_url_below_origin(web_url: &str) -> &str {
        match web_url.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
            None => web_url,
        }
    }

    /// Where the two differ: a `?` or `#` before the first `/` after `://`. The old copy ended
    /// the origin at the first `/` only; the splitter ends it at the `?` or `#`, which the
    /// seal then covers. The position of that `?` or `#`.
    fn query_before_the_path(web_url: &str) -> Option<usize> {
        let start = web_url.find("://")? + 3;
        let end = web_url[start..].find('/').map_or(web_url.len(), |i| start + i);
        web_url[start..end].find(['?', '#']).map(|q| start + q)
    }

    fn agree_but_at_the_edge(text: &str) -> Result<(), TestCaseError> {
        let (old, new) = (legacy_web_url_below_origin(text), web_url_below_origin(text));
        match query_before_the_path(text) {
            None => prop_assert_eq!(old, new, "{:?}", text),
            Some(q) => prop_assert_eq!(new, &text[q..], "{:?}", text),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// On the `web_url`s GitLab reports the two agree.
        #[test]
        fn web_url_below_origin_agrees_on_web_urls(url in web_url()) {
            prop_assert_eq!(web_url_below_origin(&url), legacy_web_url_below_origin(&url));
        }

        /// On any URL-shaped text they agree but at a `?` or `#` before the path.
        #[test]
        fn web_url_below_origin_agrees_on_url_text_but_at_the_edge(text in url_text()) {
            agree_but_at_the_edge(&text)?;
        }
    }

    /// The `web_url`s of the repository's fixtures (plans and the simulator's seed).
    #[test]
    fn web_url_below_origin_agrees_on_the_fixtures() {
        for text in fixture_texts() {
            agree_but_at_the_edge(&text).unwrap();
        }
    }

    /// The edge, as the splitter reads it: a `?` or `#` ends the origin.
    #[test]
    fn a_query_or_fragment_ends_the_origin() {
        let cases = [
            ("https://gitlab.example.com/group/p", "/group/p"),
            ("https://gitlab.example.com:8443/gitlab/group/p", "/gitlab/group/p"),
            ("https://u@gitlab.example.com/group/p", "/group/p"),
            ("https://gitlab.example.com", ""),
            ("group/p", "group/p"),
            ("https://h?x/group/p", "?x/group/p"),
            ("https://h#x", "#x"),
        ];
        for (web_url, want) in cases {
            assert_eq!(web_url_below_origin(web_url), want, "{web_url}");
        }
        assert_eq!(legacy_web_url_below_origin("https://h?x/group/p"), "/group/p", "the old copy");
    }
}
