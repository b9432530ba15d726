//! Redaction of untrusted or secret-bearing text: finding a URL's userinfo
//! ([`split_authority`]), masking URL credentials, recognising token-shaped strings, and
//! neutralising terminal control characters.
//!
//! A leaf: this module imports nothing from the crate, so every layer (the GitLab client, the
//! plan, the journal, the CLI) can use it without reaching up into another. [`mask_userinfo`]
//! is the one function every module uses before free text (GitLab error bodies,
//! `last_error`, URLs) reaches a log, an error message or a file.

/// The placeholder GitLab itself uses for masked credentials.
pub(crate) const MASK: &str = "*****";

/// Heuristic: does this string look like an access token rather than a name or a path?
///
/// Known prefixes (GitLab `glpat-`, `gloas-`, `glsa-`…, GitHub `ghp_`, `github_pat_`…,
/// Bitbucket `ATBB`/`ATCTT`), or a long run of token characters with no path or name shape.
pub(crate) fn looks_like_token(s: &str) -> bool {
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

/// A `scheme://…` URL split around its authority and userinfo, every part borrowed as typed:
/// nothing is validated, decoded or trimmed. `scheme://userinfo@host_port` + `rest` is the
/// input again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authority<'a> {
    /// The text before the first `://` (any text at all, possibly empty).
    pub(crate) scheme: &'a str,
    /// The authority up to its last `@`, without that `@`; `None` when the authority has no `@`.
    pub(crate) userinfo: Option<&'a str>,
    /// The authority after the userinfo: `host[:port]` when the URL is well formed.
    pub(crate) host_port: &'a str,
    /// Everything after the authority: empty, or starting at its first `/`, `?` or `#`.
    pub(crate) rest: &'a str,
}

impl<'a> Authority<'a> {
    /// The username: the userinfo up to its first `:` (all of it without a `:`).
    pub(crate) fn user(&self) -> Option<&'a str> {
        self.userinfo.map(|ui| ui.split_once(':').map_or(ui, |(user, _)| user))
    }

    /// The password: the userinfo after its first `:`; `None` without a `:`.
    pub(crate) fn password(&self) -> Option<&'a str> {
        self.userinfo.and_then(|ui| ui.split_once(':')).map(|(_, password)| password)
    }

    /// The URL again, without the userinfo and its `@`.
    pub(crate) fn without_userinfo(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host_port, self.rest)
    }
}

/// The one place that finds a URL's authority and its userinfo.
///
/// Contract, for any text:
/// - `None` when the text has no `://`. Otherwise the scheme is the text before the *first*
///   `://` and the authority starts right after it.
/// - The authority ends at the first `/`, `?` or `#` after `://`, or at the end of the text.
///   (So a raw `@` in the path, query or fragment is never userinfo; `#` ends it even for ssh,
///   where git reads `#` as a path byte.)
/// - The userinfo is the authority up to its *last* `@`, the way GitLab's own parser reads it
///   (`UrlSanitizer`): `https://a@b@host/` has userinfo `a@b`.
/// - The user is the userinfo up to its first `:`, the password the rest ([`Authority::user`],
///   [`Authority::password`]).
///
/// [`mask_userinfo`] reads free text with the same rule, but with the authority running to
/// the end of the whitespace-delimited word; see there.
pub(crate) fn split_authority(url: &str) -> Option<Authority<'_>> {
    let (scheme, after) = url.split_once("://")?;
    Some(authority_after(scheme, after, |c| matches!(c, '/' | '?' | '#')))
}

/// Split `after` (the text following `scheme://`) at the first character `ends` the
/// authority, then the authority at its last `@`.
fn authority_after<'a>(
    scheme: &'a str,
    after: &'a str,
    ends: impl Fn(char) -> bool,
) -> Authority<'a> {
    let end = after.find(ends).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    match authority.rfind('@') {
        Some(at) => Authority {
            scheme,
            userinfo: Some(&authority[..at]),
            host_port: &authority[at + 1..],
            rest,
        },
        None => Authority { scheme, userinfo: None, host_port: authority, rest },
    }
}

/// Whether `c` ends the "word" a URL lives in, in free text: whitespace or a quoting character.
pub(crate) fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`')
}

/// Mask the userinfo of every `scheme://user[:password]@` URL in free text, GitLab-style
/// (`*****` or `*****:*****`).
///
/// This errs on the side of masking too much. It reads each URL like [`split_authority`],
/// with one difference: the authority runs to the end of the word (up to whitespace or a
/// quote, see [`ends_word`]) instead of stopping at the first `/`, `?` or `#`. So when an `@`
/// appears later in the same word, everything between `://` and the last such `@` is masked.
/// A password with a raw `/` (`https://u:p/q@host/`, which git and curl users do paste) is
/// then still hidden; the cost is that `https://host/a@b` prints as `https://*****@b`.
pub(crate) fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority of a URL in free text runs to the end of its word (see above).
        match authority_after("", tail, ends_word).userinfo {
            Some(userinfo) => {
                if userinfo.contains(':') {
                    out.push_str(MASK);
                    out.push(':');
                    out.push_str(MASK);
                } else {
                    out.push_str(MASK);
                }
                rest = &tail[userinfo.len()..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Replace control characters (ANSI escapes, CR, BEL, …) with `?` so that text from GitLab
/// cannot rewrite the user's terminal. Newlines and tabs become spaces.
pub(crate) fn sanitize_for_terminal(text: &str) -> String {
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
    use proptest::prelude::*;

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
    fn recognises_tokens() {
        assert!(looks_like_token("glpat-abcdefghijklmnopqrst"));
        assert!(looks_like_token("ghp_0123456789abcdef"));
        assert!(looks_like_token("a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6"));
        assert!(!looks_like_token("/etc/glmirror/token"));
        assert!(!looks_like_token("svc-mirror"));
        assert!(!looks_like_token("oauth2"));
    }

    // ---- the authority splitter ------------------------------------------------------------

    #[test]
    fn split_authority_contract() {
        let parts = |url| {
            let a = split_authority(url).expect("has ://");
            (a.scheme, a.userinfo, a.host_port, a.rest, a.user(), a.password())
        };
        assert_eq!(
            parts("https://u:p@h:1/x?q#f"),
            ("https", Some("u:p"), "h:1", "/x?q#f", Some("u"), Some("p"))
        );
        // The last `@` of the authority ends the userinfo; the first `:` splits it.
        assert_eq!(
            parts("https://a@b:c:d@h/"),
            ("https", Some("a@b:c:d"), "h", "/", Some("a@b"), Some("c:d"))
        );
        // `/`, `?` and `#` end the authority: an `@` after them is not userinfo.
        assert_eq!(parts("https://u:p/q@h/x"), ("https", None, "u:p", "/q@h/x", None, None));
        assert_eq!(parts("ssh://git@h?x@y"), ("ssh", Some("git"), "h", "?x@y", Some("git"), None));
        assert_eq!(parts("ssh://h#x@y"), ("ssh", None, "h", "#x@y", None, None));
        assert_eq!(parts("x://@h"), ("x", Some(""), "h", "", Some(""), None));
        assert_eq!(parts("://"), ("", None, "", "", None, None));
        // The first `://` starts the authority.
        assert_eq!(parts("a://b://c@d"), ("a", None, "b:", "//c@d", None, None));
        assert_eq!(split_authority("git@h:x"), None);
        assert_eq!(split_authority("https://u:p@h/x").unwrap().without_userinfo(), "https://h/x");
    }

    fn legacy_mask_userinfo(text: &str) -> String {
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

    /// Text shaped like URLs in error messages: delimiters, masks, several URLs, quotes.
    fn free_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            prop::sample::select(vec![
                "://",
                "@",
                ":",
                "/",
                "?",
                "#",
                "*****",
                " ",
                "'",
                "\"",
                "<",
                ">",
                "`",
                "\n",
                "https",
                "ssh",
                "git+ssh",
                "HTTPS",
                "git@",
                "u",
                "pw",
                "h.example",
                "[::1]",
                "%40",
                "glpat-CANARY0123456789",
                "8080",
                ".",
                "-",
                "fatal: ",
            ])
            .prop_map(str::to_owned),
            "[a-z0-9]{1,4}",
        ];
        prop_oneof![prop::collection::vec(piece, 0..14).prop_map(|p| p.concat()), "\\PC{0,40}",]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// `mask_userinfo` is what it was before it used the splitter.
        #[test]
        fn mask_userinfo_is_unchanged(text in free_text()) {
            prop_assert_eq!(mask_userinfo(&text), legacy_mask_userinfo(&text));
        }

        /// The splitter's parts always put the input back together, and hold no delimiter
        /// the contract says they cannot.
        #[test]
        fn split_authority_parts_reassemble(text in free_text()) {
            if let Some(a) = split_authority(&text) {
                let userinfo = a.userinfo.map(|u| format!("{u}@")).unwrap_or_default();
                prop_assert_eq!(format!("{}://{userinfo}{}{}", a.scheme, a.host_port, a.rest), text.clone());
                prop_assert!(!a.scheme.contains("://"));
                prop_assert!(!a.host_port.contains(['@', '/', '?', '#']));
                prop_assert!(!a.userinfo.unwrap_or("").contains(['/', '?', '#']));
                prop_assert!(a.rest.is_empty() || a.rest.starts_with(['/', '?', '#']));
            } else {
                prop_assert!(!text.contains("://"));
            }
        }

        /// Where free-text masking differs from the splitter: for one URL in a word, it masks
        /// the splitter's userinfo exactly when no `@` follows the authority inside the word,
        /// and otherwise masks more: up to the word's last `@` (a password holding a raw
        /// `/`, `?` or `#` is still hidden). It never masks less.
        #[test]
        fn mask_userinfo_masks_at_least_the_userinfo(text in free_text()) {
            let Some(start) = text.find("://") else { return Ok(()) };
            let after = &text[start + 3..];
            let word = &after[..after.find(ends_word).unwrap_or(after.len())];
            if word.contains("://") {
                return Ok(()); // a second URL in the same word: covered by the test above
            }
            let url = format!("{}{word}", &text[..start + 3]);
            let a = split_authority(&url).expect("has ://");
            let masked = mask_userinfo(&url);
            // Free text masks up to the last `@` of the word …
            let word_at = word.rfind('@');
            let expected = match word_at {
                Some(at) => {
                    let mask = if word[..at].contains(':') { "*****:*****" } else { MASK };
                    format!("{}{mask}{}", &text[..start + 3], &word[at..])
                }
                None => url.clone(),
            };
            prop_assert_eq!(masked, expected);
            // … which is the splitter's userinfo unless an `@` follows the authority.
            let userinfo_end = a.userinfo.map(str::len);
            if a.rest.contains('@') {
                prop_assert!(word_at > userinfo_end);
            } else {
                prop_assert_eq!(word_at, userinfo_end);
            }
        }
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
