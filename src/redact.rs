//! Redaction of untrusted or secret-bearing text: the one scrubber every output goes through
//! ([`scrub`]: the tokens this process holds, in every encoding, and URL userinfo), finding a
//! URL's userinfo ([`split_authority`], [`urls_in`] for the URLs in free text, and
//! [`scp_userinfo`] for SCP-like text),
//! recognising token-shaped strings, short safe excerpts ([`excerpt`]) and neutralising
//! terminal control characters.
//!
//! A leaf: this module imports nothing from the crate, so every layer (the GitLab client, the
//! plan, the journal, the CLI) can use it without reaching up into another. Tokens are
//! registered with [`register_secret`] where they are read (`config::tokens`, the client);
//! they stay [`SecretString`]s here and are exposed only to compare them with text.
//!
//! Size: about 450 lines of code; the rest are the contract and property tests of the splitter
//! and scrubber, kept here because the module is a leaf with no other test home.

use std::borrow::Cow;
use std::sync::RwLock;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

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
/// [`urls_in`] reads the URLs in free text with this rule, inside the word each lives in;
/// [`mask_userinfo`] masks more than that on purpose; see there.
pub(crate) fn split_authority(url: &str) -> Option<Authority<'_>> {
    let (scheme, after) = url.split_once("://")?;
    Some(authority_after(scheme, after, ends_authority_of_url))
}

/// The userinfo of text without `scheme://` (SCP-like `[user@]host:path`, or a URL whose
/// scheme is missing): the text before the last `@` that comes before the first `/`
/// (docs/url-rules.md §2), the way [`split_authority`] reads a URL's authority, so a password
/// with an `@` in it (`oauth2:p@ss@host/…`) is read whole.
///
/// git ends an SCP host at the first `:`, so for `user@host:path` this is git's user. For
/// `user:pw@host:path` (or `oauth2:TOKEN@host/path`) git would read the host as `user`; the
/// text was plainly meant as a user and a password, so it is returned whole (`user:pw`) and
/// its password is treated as one wherever credentials are masked or counted: reading too
/// much as a secret is the safe side. `None` for a URL, a local path (`/` before the `@`), or
/// text without `@`. The rewrite engine's SCP → `ssh://` conversion reads the host by git's
/// stricter rule and refuses what that rule would misread.
pub(crate) fn scp_userinfo(text: &str) -> Option<&str> {
    if text.contains("://") {
        return None;
    }
    let head = text.find('/').map_or(text, |slash| &text[..slash]);
    Some(&text[..head.rfind('@')?])
}

/// The characters that end a URL's authority: the start of its path, query or fragment.
fn ends_authority_of_url(c: char) -> bool {
    matches!(c, '/' | '?' | '#')
}

/// Every `scheme://` URL in free text, each with the byte offset of its authority (right
/// after its `://`) and its parts, read as [`split_authority`] reads a URL but inside the word
/// the URL lives in:
/// - the scheme is the run of scheme characters (ASCII letters, digits, `+`, `-`, `.`) right
///   before the `://`, possibly empty (`fatal: ssh://…` has scheme `ssh`);
/// - the authority ends at the first `/`, `?` or `#`, or at the end of the word (whitespace or
///   a quoting character, [`ends_word`]); `rest` is the rest of the word;
/// - every `://` starts a URL, also one inside another URL's word (`a://b://c@d` holds two).
pub(crate) fn urls_in(text: &str) -> impl Iterator<Item = (usize, Authority<'_>)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        let pos = from + text[from..].find("://")?;
        let start = pos + 3;
        from = start;
        let head = &text[..pos];
        let scheme_len = head
            .bytes()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            .count();
        let after = &text[start..];
        let word = &after[..after.find(ends_word).unwrap_or(after.len())];
        Some((start, authority_after(&head[pos - scheme_len..], word, ends_authority_of_url)))
    })
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
/// (`*****` or `*****:*****`). A JSON-escaped URL (`https:\/\/user:pw@host`) counts too.
///
/// This errs on the side of masking too much. After `://`, two readings are taken and the
/// one reaching further wins:
/// - the *word* (up to whitespace or a quote, see [`ends_word`]) up to its last `@`: so a
///   password with a raw `/` (`https://u:p/q@host/`, which git and curl users do paste) is
///   still hidden; the cost is that `https://host/a@b` prints as `https://*****@b`;
/// - the *authority read across quotes* (up to whitespace, `/`, `?`, `#`, `<`, `>` or a
///   backtick) up to its last `@`: so `https://us'er:pw@host/` is hidden too.
///
/// From there both readings are repeated on the rest until no further `@` is reached, and the
/// whole is masked again until nothing changes (a mask can remove the quote that ended an
/// outer URL's word, `://://'@`), so the output is a fixed point: masking it again changes
/// nothing.
pub(crate) fn mask_userinfo(text: &str) -> String {
    let mut out = mask_userinfo_once(text);
    // Text that had nothing to mask is already the fixed point (the common case: one pass).
    if out == text {
        return out;
    }
    // Each pass only turns text into masks; a few passes reach the fixed point.
    for _ in 0..8 {
        let again = mask_userinfo_once(&out);
        if again == out {
            break;
        }
        out = again;
    }
    out
}

/// One pass of [`mask_userinfo`].
fn mask_userinfo_once(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((pos, sep)) = find_scheme_separator(rest) {
        let (head, tail) = rest.split_at(pos + sep);
        out.push_str(head);
        match userinfo_len(tail) {
            Some(len) => {
                out.push_str(if tail[..len].contains(':') { "*****:*****" } else { MASK });
                rest = &tail[len..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// The first `://` (or its JSON-escaped form `:\/\/`): its position and length.
fn find_scheme_separator(text: &str) -> Option<(usize, usize)> {
    let plain = text.find("://").map(|i| (i, 3));
    let escaped = text.find(":\\/\\/").map(|i| (i, 5));
    match (plain, escaped) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Where an authority read across quotes ends (see [`mask_userinfo`]).
fn ends_authority(c: char) -> bool {
    c.is_whitespace() || matches!(c, '/' | '?' | '#' | '<' | '>' | '`')
}

/// The length of the userinfo at the start of `tail` (the text right after `://`), by the
/// readings of [`mask_userinfo`], or `None` when neither finds an `@`.
fn userinfo_len(tail: &str) -> Option<usize> {
    let mut end: Option<usize> = None;
    let mut from = 0;
    loop {
        let rest = &tail[from..];
        let word = &rest[..rest.find(ends_word).unwrap_or(rest.len())];
        let authority = &rest[..rest.find(ends_authority).unwrap_or(rest.len())];
        let Some(at) = word.rfind('@').max(authority.rfind('@')) else { return end };
        end = Some(from + at);
        from += at + 1;
    }
}

/// Replace control characters (ANSI escapes, CR, BEL, …) with `?` so that text from GitLab
/// cannot rewrite the user's terminal. Newlines and tabs become spaces.
pub(crate) fn sanitize_for_terminal(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => ' ',
            c if is_invisible(c) => '?',
            c => c,
        })
        .collect()
}

/// Characters that change how text looks, or hide text, without being seen: control
/// characters (C0, DEL, C1), the bidirectional overrides, isolates and marks that can make
/// text read differently from what it holds (Trojan Source), the zero-width characters (ZWSP,
/// ZWNJ, ZWJ, word joiner, BOM) and the invisible operators U+2061–2064. The URL rules refuse
/// the same set (`rewrite::syntax`), so a URL never changes by being cleaned. A token with one of them inside is still a token:
/// text is cleaned of them before it is scrubbed.
pub(crate) fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{2069}'
                | '\u{061C}'
                | '\u{FEFF}'
        )
}

// ---- the secrets this process holds --------------------------------------------------------

/// Secrets shorter than this are not searched for: they would mask ordinary words.
const MIN_SECRET_LEN: usize = 6;

/// Base64 fragments shorter than this are not searched for (too likely in other text).
const MIN_BASE64_CORE: usize = 8;

/// One secret and the fragments any base64 encoding of text containing it must contain.
struct Needle {
    /// The secret itself.
    raw: SecretString,
    /// For each of the three byte alignments and both alphabets, the base64 characters that
    /// depend only on the secret's bytes: whatever surrounds the secret (`user:` before it in
    /// an `Authorization: Basic` value, `:` after it), one of these appears in the encoding.
    base64_cores: Vec<SecretString>,
}

impl Needle {
    fn new(secret: &str) -> Needle {
        let mut base64_cores = Vec::new();
        for engine in [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            for offset in 0..3usize {
                let mut bytes = vec![0u8; offset];
                bytes.extend_from_slice(secret.as_bytes());
                let encoded = engine.encode(&bytes);
                // Character j holds stream bits [6j, 6j + 6); keep those inside the secret's
                // bits [8 * offset, 8 * (offset + len)).
                let first = (8 * offset).div_ceil(6);
                let last = (8 * (offset + secret.len())).saturating_sub(6) / 6;
                if last >= first && last + 1 - first >= MIN_BASE64_CORE {
                    let core = encoded[first..=last].to_owned();
                    if !base64_cores.iter().any(|c: &SecretString| c.expose_secret() == core) {
                        base64_cores.push(SecretString::from(core));
                    }
                }
            }
        }
        Needle { raw: SecretString::from(secret.to_owned()), base64_cores }
    }
}

/// The secrets to remove from text, in every form they might take there: raw, percent-encoded
/// (any subset of bytes, either hex case, once or twice over), JSON-escaped (`\u00XX`, `\/`),
/// and inside base64 (the `Authorization: Basic` of `user:token` or `token:`, either
/// alphabet, itself possibly escaped).
///
/// The process has one, filled by [`register_secret`] and applied by [`scrub`]; tests build
/// their own. `Debug` shows only how many secrets it holds.
#[derive(Default)]
pub(crate) struct Redactor {
    needles: Vec<Needle>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.needles.len())
    }
}

impl Redactor {
    /// An empty redactor.
    pub(crate) const fn new() -> Redactor {
        Redactor { needles: Vec::new() }
    }

    /// Remove `secret` from all text scrubbed from now on. Blank and very short values are
    /// ignored; a value already held is not added twice.
    pub(crate) fn add(&mut self, secret: &SecretString) {
        let value = secret.expose_secret().trim();
        if value.len() < MIN_SECRET_LEN
            || self.needles.iter().any(|n| n.raw.expose_secret() == value)
        {
            return;
        }
        self.needles.push(Needle::new(value));
    }

    /// Replace every occurrence of a held secret in `text` with [`MASK`].
    pub(crate) fn mask_secrets<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.needles.is_empty() || text.len() < MIN_BASE64_CORE.min(MIN_SECRET_LEN) {
            return Cow::Borrowed(text);
        }
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        // Most text has no escape at all: then only the plain forms can occur.
        let escaped = text.contains(['%', '\\']);
        for needle in &self.needles {
            for form in std::iter::once(&needle.raw).chain(&needle.base64_cores) {
                let form = form.expose_secret();
                if escaped {
                    find_escaped(text, form, &mut ranges);
                } else {
                    ranges.extend(text.match_indices(form).map(|(at, f)| (at, at + f.len())));
                }
            }
        }
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        ranges.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        for (start, end) in ranges {
            let (start, end) = (floor_char_boundary(text, start), ceil_char_boundary(text, end));
            if start < done {
                // Overlaps the range just masked: one mask for both.
                done = done.max(end);
                continue;
            }
            out.push_str(&text[done..start]);
            out.push_str(MASK);
            done = end;
        }
        out.push_str(&text[done..]);
        Cow::Owned(out)
    }

    /// [`Redactor::mask_secrets`], then [`mask_userinfo`].
    pub(crate) fn scrub(&self, text: &str) -> String {
        // Invisible characters go first: a token split by one is still the token to a reader
        // (and to a later writer that drops them), so it must be found.
        mask_userinfo(&self.mask_secrets(&without_invisible(text)))
    }
}

/// [`is_invisible`], but not whitespace (line breaks and tabs keep their place in logs).
fn is_invisible_not_space(c: char) -> bool {
    is_invisible(c) && !c.is_whitespace()
}

/// The text without its [`is_invisible`] characters other than whitespace: what anything
/// that looks for tokens in untrusted text reads (borrowed when there is nothing to drop).
pub(crate) fn without_invisible(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_invisible_not_space) {
        Cow::Owned(text.chars().filter(|&c| !is_invisible_not_space(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Every place `needle` occurs in `text`, as byte ranges, whether each of its bytes is written
/// as itself or escaped: `%XX` (either hex case), `%25XX` (encoded twice), a JSON `\u00XX`, or
/// a JSON `\/`, `\\`, `\"`. Mixed forms count (`ab%63d` is `abcd`).
fn find_escaped(text: &str, needle: &str, out: &mut Vec<(usize, usize)>) {
    let (t, n) = (text.as_bytes(), needle.as_bytes());
    let Some(&first) = n.first() else { return };
    let mut p = 0;
    while p < t.len() {
        if matches!(t[p], b'%' | b'\\') || t[p] == first {
            // A budget bounds the backtracking a needle full of `%` or `\` could cause.
            let mut budget = 64 * n.len() as u32;
            if let Some(end) = match_from(t, p, n, &mut budget) {
                out.push((p, end));
                p = end;
                continue;
            }
        }
        p += 1;
    }
}

/// Match `needle` (each byte raw or escaped, see [`find_escaped`]) at `t[p..]`; its end.
fn match_from(t: &[u8], p: usize, needle: &[u8], budget: &mut u32) -> Option<usize> {
    let Some((&b, rest)) = needle.split_first() else { return Some(p) };
    if *budget == 0 {
        return None;
    }
    *budget -= 1;
    for len in escaped_forms_at(t, p, b).into_iter().flatten() {
        if let Some(end) = match_from(t, p + len, rest, budget) {
            return Some(end);
        }
    }
    None
}

/// The lengths of the forms of byte `b` that start at `t[p..]`.
fn escaped_forms_at(t: &[u8], p: usize, b: u8) -> [Option<usize>; 5] {
    let hex = |at: usize| -> Option<u8> {
        let digits = t.get(at..at + 2)?;
        let value = |d: u8| char::from(d).to_digit(16);
        u8::try_from(value(digits[0])? * 16 + value(digits[1])?).ok()
    };
    let starts = |prefix: &[u8]| t.get(p..).is_some_and(|rest| rest.starts_with(prefix));
    [
        (t.get(p) == Some(&b)).then_some(1),
        (starts(b"%") && hex(p + 1) == Some(b)).then_some(3),
        (starts(b"%25") && hex(p + 3) == Some(b)).then_some(5),
        (b.is_ascii() && (starts(b"\\u00") || starts(b"\\U00")) && hex(p + 4) == Some(b))
            .then_some(6),
        (matches!(b, b'/' | b'\\' | b'"') && starts(&[b'\\', b])).then_some(2),
    ]
}

/// The process's secrets (see [`register_secret`]).
static SECRETS: RwLock<Redactor> = RwLock::new(Redactor::new());

/// Remove `secret` (and its encodings) from every output of this process from now on. Called
/// where a token is read; registering a value twice is harmless.
pub(crate) fn register_secret(secret: &SecretString) {
    SECRETS.write().unwrap_or_else(|p| p.into_inner()).add(secret);
}

/// The one scrubber for text that leaves the process (files, logs, errors, the terminal):
/// every registered secret in any of its encodings becomes [`MASK`], then every URL userinfo
/// is masked ([`mask_userinfo`]). Control characters are left to the sink
/// ([`sanitize_for_terminal`], the CSV cell writer).
pub(crate) fn scrub(text: &str) -> String {
    SECRETS.read().unwrap_or_else(|p| p.into_inner()).scrub(text)
}

/// The held secrets of [`scrub`] alone, without touching URL userinfo: for cells whose URLs
/// legitimately keep an SSH username (the CSV cell writer).
pub(crate) fn mask_secrets(text: &str) -> Cow<'_, str> {
    SECRETS.read().unwrap_or_else(|p| p.into_inner()).mask_secrets(text)
}

/// Text for the terminal: [`scrub`]bed, then [`sanitize_for_terminal`].
pub(crate) fn for_terminal(text: &str) -> String {
    sanitize_for_terminal(&scrub(text))
}

/// Untrusted text quoted in a message: scrubbed, made safe for a terminal, whitespace runs
/// folded to one space, and cut to at most `max_chars` characters (plus `…` when cut). Only
/// the start of a huge text is looked at, so quoting a 50 MB cell costs nothing.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> String {
    // Enough beyond the cut that a secret or userinfo crossing it is still recognised.
    let window = max_chars.saturating_add(1024);
    let head = match text.char_indices().nth(window) {
        Some((at, _)) => &text[..at],
        None => text,
    };
    let clean = sanitize_for_terminal(&scrub(head));
    let collapsed = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max_chars && head.len() == text.len() {
        collapsed
    } else {
        let mut cut: String = collapsed.chars().take(max_chars).collect();
        cut.push('…');
        cut
    }
}

/// A file path quoted in a message: at most 200 characters of it ([`excerpt`]), so a huge
/// path argument gives a short error line.
pub(crate) fn path_excerpt(path: &std::path::Path) -> String {
    excerpt(&path.display().to_string(), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp_userinfo_reads_what_git_and_a_person_read() {
        for (text, userinfo) in [
            ("git@github.com:acme/x.git", Some("git")),
            ("deploy@host:org/a@b.git", Some("deploy")),
            ("git:secret@github.com:acme/x.git", Some("git:secret")),
            ("a:b:c@host:p", Some("a:b:c")),
            ("github.com:acme/x.git", None),
            ("host:org/a@b.git", None),
            ("user@host", Some("user")),
            ("oauth2:tok@gitlab.com/g/r.git", Some("oauth2:tok")),
            ("oauth2:p@ss@gitlab.com/g/r.git", Some("oauth2:p@ss")),
            ("a@b@host:p", Some("a@b")),
            ("./dir/a@b:c", None),
            ("ssh://git@github.com/acme/x.git", None),
            ("", None),
        ] {
            assert_eq!(scp_userinfo(text), userinfo, "{text:?}");
        }
    }
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

    #[test]
    fn urls_in_free_text() {
        let found = |text| {
            urls_in(text)
                .map(|(at, a)| (at, a.scheme, a.userinfo, a.host_port, a.rest))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            found("fatal: 'ssh://git@h:22/x y' and HTTPS://u:p@h2?q@r#s\tz"),
            [(14, "ssh", Some("git"), "h:22", "/x"), (40, "HTTPS", Some("u:p"), "h2", "?q@r#s"),]
        );
        // The scheme is the run of scheme characters before `://`; the word ends the URL.
        assert_eq!(found("x(git+ssh://a@b)c"), [(12, "git+ssh", Some("a"), "b)c", "")]);
        assert_eq!(found("é://a@b\"q@r"), [(5, "", Some("a"), "b", "")]);
        // Every `://` starts a URL, also inside another one's word.
        assert_eq!(
            found("a://b://c@d"),
            [(4, "a", None, "b:", "//c@d"), (8, "b", Some("c"), "d", "")]
        );
        assert_eq!(found("no url: a@b"), []);
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

        /// Without quotes (and JSON escapes) `mask_userinfo` is what it was before it read
        /// authorities across quotes; with them it masks more, never less: nothing the old
        /// rule would mask is left in its output, and masking again changes nothing.
        #[test]
        fn mask_userinfo_masks_at_least_the_old_rule(text in free_text()) {
            let masked = mask_userinfo(&text);
            if !text.contains(['\'', '"']) {
                prop_assert_eq!(&masked, &legacy_mask_userinfo(&text));
            }
            prop_assert_eq!(&legacy_mask_userinfo(&masked), &masked);
            prop_assert_eq!(&mask_userinfo(&masked), &masked);
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

        /// Each URL `urls_in` finds is its word again, and is what `split_authority` reads
        /// when the word is cut out of the text (with the scheme run in front).
        #[test]
        fn urls_in_reads_each_word_as_the_splitter(text in free_text()) {
            for (at, a) in urls_in(&text) {
                let userinfo = a.userinfo.map(|u| format!("{u}@")).unwrap_or_default();
                let word = format!("{userinfo}{}{}", a.host_port, a.rest);
                prop_assert!(text[at..].starts_with(&word));
                prop_assert!(text[..at - 3].ends_with(a.scheme));
                prop_assert_eq!(&text[at - 3..at], "://");
                prop_assert!(text[at + word.len()..].chars().next().is_none_or(ends_word));
                prop_assert!(!word.contains(ends_word));
                let url = format!("{}://{word}", a.scheme);
                prop_assert_eq!(split_authority(&url), Some(a));
            }
            prop_assert_eq!(urls_in(&text).count(), text.matches("://").count());
        }

        /// Where free-text masking differs from the splitter: for one URL in a word, it masks
        /// the splitter's userinfo exactly when no `@` follows the authority inside the word,
        /// and otherwise masks more: up to the word's last `@` (a password holding a raw
        /// `/`, `?` or `#` is still hidden). It never masks less.
        #[test]
        fn mask_userinfo_masks_at_least_the_userinfo(text in free_text()) {
            let Some(start) = text.find("://") else { return Ok(()) };
            if text.contains(['\'', '"']) {
                return Ok(()); // quotes: the authority is also read across them, see above
            }
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
    fn masks_userinfo_across_quotes_and_json_escapes() {
        let cases = [
            ("'https://us'er:pw@host/x'", "'https://*****:*****@host/x'"),
            ("\"https://u\"ser@host/x\"", "\"https://*****@host/x\""),
            (
                "{\"url\":\"https:\\/\\/x:pw@github.com\\/o\\/r.git\"}",
                "{\"url\":\"https:\\/\\/*****:*****@github.com\\/o\\/r.git\"}",
            ),
            // A quoted URL next to an address is not one userinfo.
            ("'https://host/x' a@b", "'https://host/x' a@b"),
            ("\"https://h/a\",\"b\":\"c@d\"", "\"https://h/a\",\"b\":\"c@d\""),
        ];
        for (input, want) in cases {
            assert_eq!(mask_userinfo(input), want, "input {input:?}");
        }
    }

    const TOKEN: &str = "ghp_CANARYredact0123456789abcdef";

    fn contains_escaped(text: &str, needle: &str) -> bool {
        let mut found = Vec::new();
        find_escaped(text, needle, &mut found);
        !found.is_empty()
    }

    fn redactor() -> Redactor {
        let mut r = Redactor::new();
        r.add(&SecretString::from(TOKEN));
        r.add(&SecretString::from("glpat-CANARYgitlab-0123456789"));
        r
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn scrub_masks_held_tokens_in_every_form() {
        let r = redactor();
        let percent: String = TOKEN.bytes().map(|b| format!("%{b:02X}")).collect();
        let json: String = TOKEN.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        let double: String = TOKEN.bytes().map(|b| format!("%25{b:02x}")).collect();
        let planted = [
            format!("remote: Invalid token {TOKEN} for user"),
            format!("Authorization: Basic {}", b64(&format!("x-access-token:{TOKEN}"))),
            format!("Authorization: Basic {}", b64(&format!("{TOKEN}:"))),
            format!("Authorization: Basic {}", b64(&format!("ab:{TOKEN}"))),
            format!("url=https%3A%2F%2Fx%3A{percent}%40github.com"),
            format!("{{\"t\":\"{json}\"}}"),
            format!("token={double}"),
            format!("https:\\/\\/x:{TOKEN}@github.com\\/o"),
            format!("'https://us'er:{TOKEN}@github.com/o'"),
            format!("glued{TOKEN}glued"),
        ];
        for text in planted {
            let out = r.scrub(&text);
            assert!(!out.contains("CANARY"), "{text} -> {out}");
            assert!(!contains_escaped(&out, "CANARY"), "{text} -> {out}");
            assert!(out.contains(MASK), "{text} -> {out}");
        }
        // Text around the secret stays.
        assert_eq!(r.scrub(&format!("a {TOKEN} b")), "a ***** b");
        assert_eq!(r.scrub("nothing secret here: 100%"), "nothing secret here: 100%");
        assert_eq!(r.scrub("é%C3%A9\\u00e9"), "é%C3%A9\\u00e9");
    }

    #[test]
    fn redactor_never_shows_its_secrets() {
        let r = redactor();
        assert_eq!(format!("{r:?}"), "Redactor(2 secrets)");
        let mut short = Redactor::new();
        short.add(&SecretString::from("abc"));
        short.add(&SecretString::from("   "));
        assert_eq!(format!("{short:?}"), "Redactor(0 secrets)");
    }

    #[test]
    fn excerpts_are_short_scrubbed_and_one_line() {
        let huge = format!("https://u:p@h/{}", "x\n".repeat(5_000_000));
        let e = excerpt(&huge, 200);
        assert_eq!(e.chars().count(), 201, "{e}");
        assert!(e.starts_with("https://*****:*****@h/x x") && e.ends_with('…'), "{e}");
        assert_eq!(excerpt("short\ttext", 200), "short text");
    }

    /// How a planted secret is written into the text.
    #[derive(Debug, Clone)]
    enum Encoding {
        Raw,
        PercentUpper,
        PercentLower,
        PercentSome(Vec<bool>),
        Json,
        Base64 { user: String, url_safe: bool },
        TokenColon { url_safe: bool },
        DoublePercent,
    }

    fn encode(token: &str, how: &Encoding) -> String {
        let pick = |url_safe: bool| {
            if url_safe {
                base64::engine::general_purpose::URL_SAFE
            } else {
                base64::engine::general_purpose::STANDARD
            }
        };
        match how {
            Encoding::Raw => token.to_owned(),
            Encoding::PercentUpper => token.bytes().map(|b| format!("%{b:02X}")).collect(),
            Encoding::PercentLower => token.bytes().map(|b| format!("%{b:02x}")).collect(),
            Encoding::PercentSome(which) => token
                .chars()
                .zip(which.iter().cycle())
                .map(|(c, &yes)| if yes { format!("%{:02X}", c as u32) } else { c.to_string() })
                .collect(),
            Encoding::Json => token.chars().map(|c| format!("\\u{:04X}", c as u32)).collect(),
            Encoding::Base64 { user, url_safe } => {
                pick(*url_safe).encode(format!("{user}:{token}"))
            }
            Encoding::TokenColon { url_safe } => pick(*url_safe).encode(format!("{token}:")),
            Encoding::DoublePercent => token.bytes().map(|b| format!("%25{b:02X}")).collect(),
        }
    }

    fn encoding() -> impl Strategy<Value = Encoding> {
        prop_oneof![
            Just(Encoding::Raw),
            Just(Encoding::PercentUpper),
            Just(Encoding::PercentLower),
            prop::collection::vec(any::<bool>(), 1..8).prop_map(Encoding::PercentSome),
            Just(Encoding::Json),
            ("[a-z0-9._-]{0,12}", any::<bool>())
                .prop_map(|(user, url_safe)| Encoding::Base64 { user, url_safe }),
            any::<bool>().prop_map(|url_safe| Encoding::TokenColon { url_safe }),
            Just(Encoding::DoublePercent),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// Random text with a held token planted in a random encoding at a random place:
        /// the scrubbed text holds neither the token nor its planted form, even decoded.
        #[test]
        fn planted_tokens_never_survive_scrubbing(
            token in "[A-Za-z0-9_-]{20,48}",
            how in encoding(),
            before in free_text(),
            after in free_text(),
        ) {
            let mut r = Redactor::new();
            r.add(&SecretString::from(token.clone()));
            let planted = encode(&token, &how);
            let text = format!("{before}{planted}{after}");
            let out = r.scrub(&text);
            prop_assert!(!out.contains(&token), "{} -> {}", text, out);
            prop_assert!(!out.contains(&planted), "{} -> {}", text, out);
            prop_assert!(!contains_escaped(&out, &token), "{} -> {}", text, out);
        }
    }

    proptest! {
        /// A held token with an invisible character (control, bidirectional, zero-width)
        /// inserted anywhere: the scrubbed text holds no run of the token's characters that a
        /// writer dropping those characters could join again.
        #[test]
        fn a_token_split_by_an_invisible_character_is_still_scrubbed(
            token in "[A-Za-z0-9_-]{20,48}",
            at in 1usize..20,
            split in prop::sample::select(vec!['\u{202E}', '\u{2066}', '\u{200B}', '\u{200F}', '\u{FEFF}', '\u{0}', '\u{1b}', '\u{7f}', '\u{9b}']),
            before in free_text(),
        ) {
            let mut r = Redactor::new();
            r.add(&SecretString::from(token.clone()));
            let text = format!("{before} {}{split}{} x", &token[..at], &token[at..]);
            let out = r.scrub(&text);
            let joined: String = out.chars().filter(|&c| !is_invisible(c)).collect();
            prop_assert!(!joined.contains(&token), "{:?} -> {:?}", text, out);
        }
    }

    #[test]
    fn masking_reaches_a_fixed_point_when_a_mask_removes_a_quote() {
        // Masking removed the quote that ended the outer word, so the outer reading then
        // reaches the `@`: masked again until nothing changes.
        assert_eq!(mask_userinfo("://://'@"), "://*****:*****@");
        assert_eq!(
            mask_userinfo("https://a:b@h/x https://c@h/y"),
            "https://*****:*****@h/x https://*****@h/y"
        );
        assert_eq!(mask_userinfo("://*****:*****@"), "://*****:*****@");
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
