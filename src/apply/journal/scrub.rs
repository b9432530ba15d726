//! Turning an entry into its line: free-text fields are masked, and an entry that still holds
//! URL credentials anywhere is refused, so the journal never holds a secret.

use super::{Entry, JournalError};
use crate::redact::{looks_like_token, mask_userinfo, scrub, urls_in};

/// Remove plain SSH usernames (`ssh://git@host`) from `text`: they are not secrets, and
/// the plan keeps them in `new_url`. A username with a password, an `@`, or the shape of a
/// token is kept, so the comparison below still catches it. The URLs and their userinfo are
/// [`urls_in`]'s.
fn drop_ssh_usernames(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (at, url) in urls_in(text) {
        let ssh = matches!(url.scheme.to_ascii_lowercase().as_str(), "ssh" | "git+ssh" | "ssh+git");
        if let Some(user) = url.userinfo
            && ssh
            && at >= done
            && !user.is_empty()
            && !user.contains([':', '@'])
            && !looks_like_token(user)
        {
            out.push_str(&text[done..at]);
            done = at + user.len() + 1;
        }
    }
    out.push_str(&text[done..]);
    out
}

/// Whether `text` holds the userinfo of a URL (`scheme://user[:pass]@`) that is not
/// already masked as `*****` and is not a plain SSH username.
fn has_credentials(text: &str) -> bool {
    if !text.contains("://") {
        return false;
    }
    let probe = drop_ssh_usernames(text);
    mask_userinfo(&probe) != probe
}

/// Find the first string in a JSON value that holds credentials; returns its field path.
fn find_credentials(value: &serde_json::Value, path: &str) -> Option<String> {
    match value {
        serde_json::Value::String(s) => has_credentials(s).then(|| path.to_owned()),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| find_credentials(v, &format!("{path}[{i}]")))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            find_credentials(v, &p)
        }),
        _ => None,
    }
}

/// Mask free-text fields, refuse credentials anywhere else, and serialize to one line
/// (with its trailing newline).
pub(super) fn encode(mut entry: Entry) -> Result<String, JournalError> {
    // Free text may quote GitLab's error messages, which do not always mask URLs.
    match &mut entry {
        Entry::Step(s) => s.detail = scrub(&s.detail),
        Entry::Outcome(o) => o.detail = scrub(&o.detail),
        Entry::Header(_) | Entry::Resume(_) | Entry::Intent(_) => {}
    }
    let row = entry.key().map_or_else(|| "the journal header".to_owned(), ToString::to_string);
    let value = serde_json::to_value(&entry)?;
    if let Some(field) = find_credentials(&value, "") {
        return Err(JournalError::Credentials { row, field });
    }
    // Serialize the entry itself (not the value) so `kind` comes first, as documented.
    let mut line = serde_json::to_string(&entry)?;
    // Belt and braces: the serialized text itself (escaping must not hide anything).
    if has_credentials(&line) || line.contains('\n') {
        return Err(JournalError::Credentials { row, field: "(entry)".to_owned() });
    }
    line.push('\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    use crate::apply::journal::tests::{open, push};
    use crate::apply::journal::{Intent, OutcomeEntry, WriteStep};
    use crate::plan::Outcome;

    #[tokio::test]
    async fn refuses_entries_with_credentials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plan.journal");
        let (journal, _) = open(dir.path());
        let key = push(1, 2);
        let bad_urls = [
            "https://glpat-CANARY0123456789@github.com/a/b.git",
            "https://svc:glpat-CANARY0123456789@github.com/a/b.git",
            "https://oauth2@gitlab.example.com/a/b.git",
            "http://u:p@h/x",
            "ssh://git:glpat-CANARY0123456789@example.com/a.git",
            "ssh://ghp_CANARY0123456789abcdef@example.com/a.git",
            "https://git@github.com/a/b.git",
        ];
        for url in bad_urls {
            let err = journal
                .record(Intent::new(key.clone(), WriteStep::PushCreate, url))
                .await
                .expect_err(url);
            assert!(matches!(&err, JournalError::Credentials { field, .. } if field == "new_url"));
            let shown = format!("{err} {err:?} {:?}", err.hint());
            assert!(!shown.contains("CANARY"), "{shown}");
        }

        let good_urls = [
            "https://github.com/a/b.git",
            "ssh://git@example.com/a/b.git",
            "ssh://deploy@example.com:2222/a/b.git",
            "https://*****:*****@github.com/a/b.git",
        ];
        for url in good_urls {
            journal.record(Intent::new(key.clone(), WriteStep::PushCreate, url)).await.expect(url);
        }
        // Free text is masked rather than refused.
        journal
            .record(OutcomeEntry::new(
                key.clone(),
                Outcome::Failed,
                "fatal: https://svc:glpat-CANARY0123456789@github.com/a/b.git: 403",
            ))
            .await
            .expect("masked");
        drop(journal);
        let text = fs::read_to_string(&path).expect("read");
        assert!(!text.contains("CANARY"), "{text}");
        assert!(text.contains("https://*****:*****@github.com/a/b.git: 403"));
        assert_eq!(text.lines().count(), 1 + good_urls.len() + 1);
    }

    #[test]
    fn credential_detection() {
        assert!(!has_credentials("plain text, a@b, no url"));
        assert!(!has_credentials("ssh://git@h/x and https://h/y"));
        assert!(has_credentials("ssh://git@h/x and https://t@h/y"));
        assert!(has_credentials("GIT+SSH://a:b@h/x"));
        assert!(!has_credentials("SSH://git@h/x"));
        assert!(has_credentials("https://h/x@y"), "an @ in a word after :// is suspect");
    }

    // ---- the one splitter ------------------------------------------------------------------

    use crate::rewrite::authority_tests::{fixture_texts, url_text, well_formed_url};
    use proptest::prelude::*;

    /// `drop_ssh_usernames` (with the `ends_word` it had) before it was rebuilt on
    /// `redact::urls_in`, verbatim: the oracle the agreement tests compare with.
    mod legacy {
        use crate::redact::looks_like_token;

        fn ends_word(c: char) -> bool {
            c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`')
        }

        pub(super) fn drop_ssh_usernames(text: &str) -> String {
            let mut out = String::with_capacity(text.len());
            let mut rest = text;
            while let Some(pos) = rest.find("://") {
                let (head, tail) = rest.split_at(pos + 3);
                out.push_str(head);
                let scheme_start = head[..pos]
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
                    .map_or(0, |i| i + 1);
                let scheme = head[scheme_start..pos].to_ascii_lowercase();
                let word_end = tail.find(ends_word).unwrap_or(tail.len());
                let word = &tail[..word_end];
                rest = tail;
                if matches!(scheme.as_str(), "ssh" | "git+ssh" | "ssh+git")
                    && let Some(at) = word.rfind('@')
                {
                    let user = &word[..at];
                    let plain = !user.is_empty()
                        && !user.contains([':', '/', '@'])
                        && !looks_like_token(user);
                    if plain {
                        rest = &tail[at + 1..];
                    }
                }
            }
            out.push_str(rest);
            out
        }
    }

    /// `has_credentials` on top of the old copy.
    fn legacy_has_credentials(text: &str) -> bool {
        if !text.contains("://") {
            return false;
        }
        let probe = legacy::drop_ssh_usernames(text);
        mask_userinfo(&probe) != probe
    }

    /// Where the old copy panicked: a character of more than one byte right before a URL's
    /// scheme (`«ssh://…`; it stepped one byte past that character and sliced inside it).
    fn multibyte_before_a_scheme(text: &str) -> bool {
        urls_in(text).any(|(at, url)| {
            let scheme_start = at - 3 - url.scheme.len();
            text[..scheme_start].chars().next_back().is_some_and(|c| c.len_utf8() > 1)
        })
    }

    /// Where the two readings of a URL in free text differ: an ssh URL whose word, before
    /// its first `/`, holds a `?` or `#` with an `@` after it. The old copy read the userinfo
    /// up to the word's last `@` (with no `/` in it); the splitter ends the authority at the
    /// `?` or `#`, so that `@` is not userinfo and no username is dropped before it.
    fn query_before_an_ssh_path(text: &str) -> bool {
        urls_in(text).any(|(_, url)| {
            let ssh =
                matches!(url.scheme.to_ascii_lowercase().as_str(), "ssh" | "git+ssh" | "ssh+git");
            let to_path = &url.rest[..url.rest.find('/').unwrap_or(url.rest.len())];
            ssh && to_path.contains('@')
        })
    }

    /// A URL inside another URL's word (`ssh://git@h/a(ssh://0@h2`). The old copy read the
    /// outer URL's userinfo up to the word's last `@` (`git@h/a(ssh://0`, not a plain name, so
    /// refused); the splitter reads each URL's own authority, finds two plain SSH usernames
    /// and drops both. Pinned by `a_url_inside_another_urls_word_is_read_on_its_own`.
    fn url_inside_another_urls_word(text: &str) -> bool {
        urls_in(text).any(|(_, url)| format!("{}{}", url.host_port, url.rest).contains("://"))
    }

    /// The two agree on whether `text` holds credentials, but at the edges: where a `?` or
    /// `#` precedes an ssh path the new one refuses whatever the old one refused (and more:
    /// `ssh://h?x@y`); a URL inside another's word is read on its own (see above).
    fn agree_but_at_the_edge(text: &str) -> Result<(), TestCaseError> {
        if multibyte_before_a_scheme(text) {
            return Ok(()); // the old copy panicked; see the test below
        }
        if url_inside_another_urls_word(text) {
            return Ok(());
        }
        let (old, new) = (legacy_has_credentials(text), has_credentials(text));
        if query_before_an_ssh_path(text) {
            prop_assert!(new || !old, "{:?}: refused before the switch, accepted now", text);
        } else {
            prop_assert_eq!(old, new, "{:?}", text);
        }
        Ok(())
    }

    /// Free text shaped like journal entries: URLs (well-formed or not) inside JSON strings,
    /// quotes, GitLab's error messages.
    fn journal_text() -> impl Strategy<Value = String> {
        let url = prop_oneof![well_formed_url(), url_text()];
        let glue = prop::sample::select(vec![
            "",
            " ",
            "\"",
            "\",\"new_url\":\"",
            "fatal: ",
            ": 403 ",
            "'",
            "\\n",
            "(",
        ]);
        prop::collection::vec((glue, url), 1..4)
            .prop_map(|parts| parts.into_iter().map(|(glue, url)| format!("{glue}{url}")).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// A well-formed URL alone, as a `new_url` or `current_url` value: they agree, and
        /// drop the same username unless an `@` follows the authority inside the word.
        #[test]
        fn drop_ssh_usernames_agrees_on_well_formed_urls(url in well_formed_url()) {
            prop_assert_eq!(has_credentials(&url), legacy_has_credentials(&url));
            let after_authority = crate::redact::split_authority(&url).map_or("", |a| a.rest);
            if !after_authority.contains('@') {
                prop_assert_eq!(drop_ssh_usernames(&url), legacy::drop_ssh_usernames(&url));
            }
        }

        /// Journal-shaped free text: they agree but at the edge.
        #[test]
        fn has_credentials_agrees_on_journal_text_but_at_the_edge(text in journal_text()) {
            agree_but_at_the_edge(&text)?;
        }
    }

    /// The fixtures: plan cells and whole journal lines, as `encode` checks them.
    #[test]
    fn has_credentials_agrees_on_the_fixtures() {
        for text in fixture_texts() {
            agree_but_at_the_edge(&text).unwrap();
        }
    }

    #[test]
    fn a_url_inside_another_urls_word_is_read_on_its_own() {
        // Two plain SSH usernames: neither is a secret, so the entry may be written.
        let text = "ssh://git@github.com/a(ssh://0@h.example";
        assert!(legacy_has_credentials(text), "the old copy refused it");
        assert!(!has_credentials(text));
        assert_eq!(drop_ssh_usernames(text), "ssh://github.com/a(ssh://h.example");
        // Also when the inner URL starts inside the outer one's authority.
        assert!(!has_credentials("ssh://svc@corp(ssh://0@h.example"));
        // A password or a token in the inner URL is still refused.
        assert!(has_credentials("ssh://git@github.com/a(https://u:secret@h.example"));
        assert!(has_credentials(
            "ssh://git@github.com/a(ssh://ghp_0123456789abcdefABCDEF0123456789abcd@h"
        ));
    }

    /// The edges, as the splitter reads them.
    #[test]
    fn a_query_before_an_ssh_path_is_not_a_username() {
        // `?` and `#` end the authority: `h?x` is not a username to drop, the `@` after it
        // is suspect, so the entry is refused (the old copy dropped `h?x@` and accepted it).
        for text in ["ssh://h?x@y/p", "ssh://h#x@y", "{\"new_url\":\"ssh://h?x@y/p\"}"] {
            assert!(has_credentials(text), "{text}");
            assert!(!legacy_has_credentials(text), "{text}: the old copy");
        }
        // A username before the `?` is still dropped; the `@` after it is still suspect.
        assert_eq!(drop_ssh_usernames("ssh://git@h?x@y"), "ssh://h?x@y");
        assert!(has_credentials("ssh://git@h?x@y"));
        // A multi-byte character before the scheme is read as any other non-scheme one.
        assert_eq!(drop_ssh_usernames("«ssh://git@h/x»"), "«ssh://h/x»");
        assert!(!has_credentials("«ssh://git@h/x» and “https://h/y”"));
        assert!(has_credentials("“https://t@h/y”"));
    }

    #[test]
    #[should_panic(expected = "byte index")]
    fn the_old_copy_panicked_on_a_multibyte_character_before_a_scheme() {
        legacy::drop_ssh_usernames("«ssh://git@h/x»");
    }
}
