//! Pure comparisons `apply` makes between a live mirror and a plan row: does the mirror
//! already look like the target, what drifted, which flags GitLab changed and how to put them
//! back. No I/O; table tests below.

use crate::gitlab::{PullMirrorUpdate, RemoteMirror};
use crate::inventory::facts::gitlab_pull_flags;
use crate::plan::{CurrentAuth, MirrorFacts, MirrorFlags, MirrorType, PlanRow};
use crate::redact::{mask_userinfo, split_authority};
use crate::rewrite::NewAuth;

/// Whether GitLab changed a flag it exposes (a flag it does not expose is not compared).
pub(crate) fn flags_changed(before: &MirrorFlags, after: &MirrorFlags) -> bool {
    fn differs<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
        matches!((a, b), (Some(x), Some(y)) if x != y)
    }
    differs(&before.trigger_builds, &after.trigger_builds)
        || differs(&before.only_protected_branches, &after.only_protected_branches)
        || differs(&before.overwrite_diverged, &after.overwrite_diverged)
        || differs(&before.branch_regex, &after.branch_regex)
}

/// A flags-only pull-mirror update that puts back the flags seen at planning.
pub(crate) fn restore_flags(flags: &MirrorFlags) -> PullMirrorUpdate {
    let mut flags = gitlab_pull_flags(flags);
    // GitLab refuses only_mirror_protected_branches together with a branch regex.
    flags.mirror_branch_regex = flags.mirror_branch_regex.filter(|r| !r.is_empty());
    if flags.mirror_branch_regex.is_some() {
        flags.only_mirror_protected_branches = None;
    }
    PullMirrorUpdate { flags, ..PullMirrorUpdate::default() }
}

/// Whether a URL's parsed scheme is https.
pub(crate) fn is_https(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.scheme() == "https")
}

/// A URL without its userinfo (GitLab's `*****` mask, or an ssh user), for comparing a
/// live masked URL with a plan's `new_url`. The userinfo is [`split_authority`]'s; text
/// without `://` (SCP-like `git@host:path`) is returned as is.
pub(crate) fn without_userinfo(url: &str) -> String {
    split_authority(url).map_or_else(|| url.to_owned(), |a| a.without_userinfo())
}

/// Does the live pull mirror already look like the row's target?
pub(crate) fn pull_matches(live: &MirrorFacts, row: &PlanRow) -> bool {
    let url_ok = without_userinfo(&live.url) == without_userinfo(&row.new_url);
    let auth = CurrentAuth::from_masked_url(&live.url);
    let auth_ok = match row.new_auth {
        Some(NewAuth::Service) => auth != CurrentAuth::None,
        Some(NewAuth::None) => auth == CurrentAuth::None,
        _ => true,
    };
    let user_ok = row.new_mirror_user.is_empty() || live.user_name == row.new_mirror_user;
    url_ok && auth_ok && user_ok && live.enabled
}

/// Does a live push mirror look like the row's replacement?
pub(crate) fn push_matches(m: &RemoteMirror, row: &PlanRow) -> bool {
    without_userinfo(&m.url) == without_userinfo(&row.new_url) && m.enabled
}

/// What differs between the live mirror and the plan, for the report.
pub(crate) fn drift_detail(live: &MirrorFacts, row: &PlanRow) -> String {
    let mut parts = Vec::new();
    if live.url != row.current_url {
        parts.push(format!("url is now {}", mask_userinfo(&live.url)));
    }
    let auth = CurrentAuth::from_masked_url(&live.url);
    if auth != row.current_auth {
        parts.push(format!("credentials are now {}", auth.code()));
    }
    if row.mirror_type == MirrorType::Pull && live.user_name != row.current_mirror_user {
        parts.push(format!("mirror user is now {:?}", live.user_name));
    }
    if parts.is_empty() {
        parts.push("enabled state or mirror settings changed".into());
    }
    format!("changed since planning: {}; plan again", parts.join(", "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::facts::tests::pull_facts;
    use crate::plan::row::tests::sample_row;
    use crate::rewrite::Action;
    use crate::rewrite::authority_tests::{fixture_texts, url_text, well_formed_url};
    use proptest::prelude::*;

    /// A service-credential row moving the mirror of `pull_facts` to svc (shared with
    /// `pull_steps`' tests).
    pub(crate) fn update_row() -> PlanRow {
        let mut row = sample_row(1, MirrorType::Pull, None);
        row.current_url = "https://*****:*****@github.com/acme/api.git".into();
        row.current_mirror_user = "alice".into();
        row.action = Action::Update;
        row.new_url = "https://github.com/acme/api.git".into();
        row.new_auth = Some(NewAuth::Service);
        row.new_user = "<token>".into();
        row.new_mirror_user = "svc".into();
        row
    }

    #[test]
    fn userinfo_is_removed_from_the_authority_only() {
        let cases = [
            ("https://*****:*****@github.com/a/b.git", "https://github.com/a/b.git"),
            ("ssh://git@host:2222/a.git", "ssh://host:2222/a.git"),
            ("https://github.com/a/b@v1.git", "https://github.com/a/b@v1.git"),
            ("https://u@h", "https://h"),
            ("git@host:a/b.git", "git@host:a/b.git"),
        ];
        for (url, want) in cases {
            assert_eq!(without_userinfo(url), want, "{url}");
        }
    }

    // ---- the one splitter ------------------------------------------------------------------

    /// `without_userinfo` before it was rebuilt on `redact::split_authority`, verbatim: the
    /// oracle the agreement tests compare with.
    fn legacy_without_userinfo(url: &str) -> String {
        let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
        let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
        match url[start..authority_end].rfind('@') {
            Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
            None => url.to_owned(),
        }
    }

    /// Where the two readings of the authority differ: when the text up to the first `/` after
    /// `://` holds a `?` or `#` with an `@` after it (`https://evil.example#@github.com/x`).
    /// The old copy ended the authority at the first `/` only and dropped everything up to
    /// that `@`; the splitter ends it at the `?` or `#`, so the `@` is not userinfo. The
    /// position of that `?` or `#`.
    fn query_before_the_path(url: &str) -> Option<usize> {
        let start = url.find("://")? + 3;
        let end = url[start..].find('/').map_or(url.len(), |i| start + i);
        let q = start + url[start..end].find(['?', '#'])?;
        url[q..end].contains('@').then_some(q)
    }

    /// The two agree on `text` but at that edge, where the splitter keeps the `?` or `#` and
    /// all after it.
    fn agree_but_at_the_edge(text: &str) -> Result<(), TestCaseError> {
        let (old, new) = (legacy_without_userinfo(text), without_userinfo(text));
        match query_before_the_path(text) {
            None => prop_assert_eq!(old, new, "{:?}", text),
            Some(q) => {
                prop_assert!(new.ends_with(&text[q..]), "{:?} -> {:?}", text, new);
                prop_assert_ne!(old, new, "{:?}", text);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// On well-formed URLs (masked by GitLab or not, SCP-like too) the two agree.
        #[test]
        fn without_userinfo_agrees_on_well_formed_urls(url in well_formed_url()) {
            prop_assert_eq!(without_userinfo(&url), legacy_without_userinfo(&url));
        }

        /// On any URL-shaped text they agree but at a `?` or `#` before the path.
        #[test]
        fn without_userinfo_agrees_on_url_text_but_at_the_edge(text in url_text()) {
            agree_but_at_the_edge(&text)?;
        }
    }

    /// The URLs of the repository's fixtures (live mirror URLs, plan `new_url`s).
    #[test]
    fn without_userinfo_agrees_on_the_fixtures() {
        for text in fixture_texts() {
            agree_but_at_the_edge(&text).unwrap();
        }
    }

    /// The edge: a `?` or `#` ends the authority, so an `@` after it is not userinfo, and the
    /// hostile corpus URL no longer compares equal to github.com (it did with the old copy).
    #[test]
    fn a_query_or_fragment_before_the_path_ends_the_authority() {
        let cases = [
            (
                "https://evil.example#@github.com/acme/api.git",
                "https://evil.example#@github.com/acme/api.git",
            ),
            ("https://u@h?x@y/p", "https://h?x@y/p"),
            ("ssh://h#x@y", "ssh://h#x@y"),
        ];
        for (url, want) in cases {
            assert_eq!(without_userinfo(url), want, "{url}");
            assert_ne!(legacy_without_userinfo(url), want, "{url}: the old copy read it otherwise");
        }
        let mut live = pull_facts();
        live.url = "https://evil.example#@github.com/acme/api.git".into();
        live.user_name = "svc".into();
        assert!(!pull_matches(&live, &update_row()), "not the target github.com/acme/api.git");
    }

    #[test]
    fn pull_matches_table() {
        let row = update_row();
        let mut live = pull_facts();
        live.user_name = "svc".into();
        // (url shown by GitLab, mirror user, enabled, expected)
        let cases = [
            ("https://*****@github.com/acme/api.git", "svc", true, true),
            ("https://*****:*****@github.com/acme/api.git", "svc", true, true),
            ("https://github.com/acme/api.git", "svc", true, false),
            ("https://*****@github.com/acme/other.git", "svc", true, false),
            ("https://*****@github.com/acme/api.git", "alice", true, false),
            ("https://*****@github.com/acme/api.git", "svc", false, false),
        ];
        for (url, user, enabled, want) in cases {
            live.url = url.into();
            live.user_name = user.into();
            live.enabled = enabled;
            assert_eq!(pull_matches(&live, &row), want, "{url} {user} {enabled}");
        }
        // new_auth none wants no credentials; an empty new_mirror_user accepts anyone.
        let mut row = update_row();
        row.new_auth = Some(NewAuth::None);
        row.new_mirror_user = String::new();
        live.enabled = true;
        live.url = "https://github.com/acme/api.git".into();
        assert!(pull_matches(&live, &row));
        live.url = "https://*****@github.com/acme/api.git".into();
        assert!(!pull_matches(&live, &row));
    }

    #[test]
    fn push_matches_compares_url_and_enabled() {
        let mut row = update_row();
        row.mirror_type = MirrorType::Push;
        let m = |url: &str, enabled| RemoteMirror {
            id: 9,
            url: url.into(),
            enabled,
            ..RemoteMirror::default()
        };
        assert!(push_matches(&m("https://*****@github.com/acme/api.git", true), &row));
        assert!(!push_matches(&m("https://*****@github.com/acme/api.git", false), &row));
        assert!(!push_matches(&m("https://*****@github.com/acme/x.git", true), &row));
    }

    #[test]
    fn drift_detail_names_what_changed() {
        let row = update_row();
        let mut live = pull_facts();
        assert!(drift_detail(&live, &row).contains("enabled state or mirror settings"));
        live.url = "https://*****@gitlab.com/x/y.git".into();
        live.user_name = "mallory".into();
        let detail = drift_detail(&live, &row);
        assert!(detail.contains("url is now https://*****@gitlab.com/x/y.git"), "{detail}");
        assert!(detail.contains("credentials are now user"), "{detail}");
        assert!(detail.contains("mirror user is now \"mallory\""), "{detail}");
        assert!(detail.ends_with("; plan again"));
    }

    #[test]
    fn flags_are_compared_only_where_both_sides_know_them() {
        let before = MirrorFlags {
            trigger_builds: Some(true),
            only_protected_branches: Some(false),
            overwrite_diverged: None,
            branch_regex: Some("^main$".into()),
            ..MirrorFlags::default()
        };
        let mut after = before.clone();
        assert!(!flags_changed(&before, &after));
        after.overwrite_diverged = Some(true);
        assert!(!flags_changed(&before, &after), "unknown before: not compared");
        after.trigger_builds = Some(false);
        assert!(flags_changed(&before, &after));
    }

    #[test]
    fn restoring_flags_never_sends_protected_branches_with_a_regex() {
        let flags = MirrorFlags {
            trigger_builds: Some(true),
            only_protected_branches: Some(true),
            overwrite_diverged: Some(false),
            branch_regex: Some("^release/".into()),
            ..MirrorFlags::default()
        };
        let req = restore_flags(&flags);
        assert_eq!(req.flags.mirror_branch_regex.as_deref(), Some("^release/"));
        assert_eq!(req.flags.only_mirror_protected_branches, None);
        assert_eq!(req.flags.mirror_trigger_builds, Some(true));
        assert_eq!(req.flags.mirror_overwrites_diverged_branches, Some(false));
        let req = restore_flags(&MirrorFlags { branch_regex: Some(String::new()), ..flags });
        assert_eq!(req.flags.mirror_branch_regex, None);
        assert_eq!(req.flags.only_mirror_protected_branches, Some(true));
        assert!(req.url.is_empty() && req.auth_user.is_none() && req.auth_password.is_none());
    }

    #[test]
    fn https_is_the_parsed_scheme() {
        assert!(is_https("https://github.com/a/b.git"));
        assert!(is_https("HTTPS://github.com/a/b.git"));
        assert!(!is_https("http://github.com/a/b.git"));
        assert!(!is_https("ssh://git@github.com/a/b.git"));
        assert!(!is_https("not a url"));
    }
}
