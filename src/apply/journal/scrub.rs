//! Turning an entry into its line: free-text fields are masked, and an entry that still holds
//! URL credentials anywhere is refused, so the journal never holds a secret.

use super::{Entry, JournalError};
use crate::redact::{looks_like_token, mask_userinfo, scrub};

/// Characters that end the "word" a URL lives in; the same set `mask_userinfo` uses.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`')
}

/// Remove plain SSH usernames (`ssh://git@host`) from `text`: they are not secrets, and
/// the plan keeps them in `new_url`. A username with a password, a path character, or the
/// shape of a token is kept, so the comparison below still catches it.
fn drop_ssh_usernames(text: &str) -> String {
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
            let plain =
                !user.is_empty() && !user.contains([':', '/', '@']) && !looks_like_token(user);
            if plain {
                rest = &tail[at + 1..];
            }
        }
    }
    out.push_str(rest);
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
}
