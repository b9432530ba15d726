//! Redaction of untrusted or secret-bearing text: masking URL credentials, recognising
//! token-shaped strings, and neutralising terminal control characters.
//!
//! A leaf: this module imports nothing from the crate, so every layer (the GitLab client, the
//! plan, the journal, the CLI) can use it without reaching up into another. [`mask_userinfo`]
//! is the one function every module uses before free text (GitLab error bodies,
//! `last_error`, URLs) reaches a log, an error message or a file.

/// The placeholder GitLab itself uses for masked credentials.
pub const MASK: &str = "*****";

/// Heuristic: does this string look like an access token rather than a name or a path?
///
/// Known prefixes (GitLab `glpat-`, `gloas-`, `glsa-`…, GitHub `ghp_`, `github_pat_`…,
/// Bitbucket `ATBB`/`ATCTT`), or a long run of token characters with no path or name shape.
pub fn looks_like_token(s: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "glpat-",
        "gloas-",
        "glsa-",
        "gldt-",
        "glrt-",
        "glcbt-",
        "glptt-",
        "glft-",
        "glimt-",
        "glagent-",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        "ATBB",
        "ATCTT",
        "ATATT",
    ];
    let s = s.trim();
    if PREFIXES.iter().any(|p| s.starts_with(p)) {
        return true;
    }
    // Long opaque strings: 32+ characters of [A-Za-z0-9_-] mixing letters and digits,
    // with no path separator or dot.
    s.len() >= 32
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars().any(|c| c.is_ascii_alphabetic())
}

/// Mask the userinfo of every `scheme://user[:password]@` URL in free text, GitLab-style
/// (`*****` or `*****:*****`).
///
/// This errs on the side of masking too much: when an `@` appears later in the same
/// whitespace-delimited word, everything between `://` and the last such `@` is masked.
pub fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The word the URL lives in ends at whitespace or a quoting character.
        let word_end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        let word = &tail[..word_end];
        match word.rfind('@') {
            Some(at) => {
                let userinfo = &word[..at];
                if userinfo.contains(':') {
                    out.push_str(MASK);
                    out.push(':');
                    out.push_str(MASK);
                } else {
                    out.push_str(MASK);
                }
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// A URL that prints with its credentials masked; use it in logs and messages.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    /// Wrap a URL (or any text containing URLs).
    pub fn new(url: impl Into<String>) -> Self {
        RedactedUrl(url.into())
    }
}

impl std::fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&mask_userinfo(&self.0))
    }
}

impl std::fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedactedUrl({})", mask_userinfo(&self.0))
    }
}

/// Replace control characters (ANSI escapes, CR, BEL, …) with `?` so that text from GitLab
/// cannot rewrite the user's terminal. Newlines and tabs become spaces.
pub fn sanitize_for_terminal(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => ' ',
            c if c.is_control() => '?',
            // Bidirectional overrides can disguise text (Trojan Source).
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => '?',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_userinfo_in_free_text() {
        let cases = [
            ("plain https://github.com/a/b.git", "plain https://github.com/a/b.git"),
            ("https://tok@github.com/a", "https://*****@github.com/a"),
            (
                "https://u:p@host/x and https://v@h2/y",
                "https://*****:*****@host/x and https://*****@h2/y",
            ),
            ("'https://u:p@w@host/x'", "'https://*****:*****@host/x'"),
            ("https://u:p/q@host/x", "https://*****:*****@host/x"),
            ("https://*****:*****@host/x", "https://*****:*****@host/x"),
            ("ssh://git@host/x", "ssh://*****@host/x"),
            ("no url here: a@b", "no url here: a@b"),
            ("trailing ://", "trailing ://"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_userinfo(input), want, "input {input:?}");
        }
    }

    #[test]
    fn masking_is_idempotent() {
        let once = mask_userinfo("fatal: https://glpat-secret@gitlab.com/x failed");
        assert!(!once.contains("glpat-secret"));
        assert_eq!(mask_userinfo(&once), once);
    }

    #[test]
    fn redacted_url_hides_credentials_in_display_and_debug() {
        let url = RedactedUrl::new("https://user:glpat-CANARY@example.com/x.git");
        assert!(!format!("{url}").contains("CANARY"));
        assert!(!format!("{url:?}").contains("CANARY"));
    }

    #[test]
    fn recognises_tokens() {
        assert!(looks_like_token("glpat-abcdefghijklmnopqrst"));
        assert!(looks_like_token("ghp_0123456789abcdef"));
        assert!(looks_like_token("a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6"));
        assert!(!looks_like_token("/etc/glmirror/token"));
        assert!(!looks_like_token("svc-mirror"));
        assert!(!looks_like_token("oauth2"));
    }

    #[test]
    fn is_a_leaf_module() {
        // Everything above the tests: no path into the rest of the crate.
        let source = include_str!("redact.rs");
        let code = &source[..source.find("#[cfg(test)]").expect("has tests")];
        for word in ["crate::", "super::", "self::"] {
            assert!(!code.contains(word), "redact.rs must import nothing from the crate ({word})");
        }
    }

    #[test]
    fn control_characters_are_neutralised() {
        assert_eq!(sanitize_for_terminal("a\x1b[31mb\rc\nd"), "a?[31mb?c d");
        assert_eq!(sanitize_for_terminal("ok"), "ok");
        assert_eq!(sanitize_for_terminal("x\u{202E}y"), "x?y");
    }
}
