//! Terminal safety for untrusted text (project names, GitLab error bodies) and small output
//! helpers shared by the commands.

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
    fn control_characters_are_neutralised() {
        assert_eq!(sanitize_for_terminal("a\x1b[31mb\rc\nd"), "a?[31mb?c d");
        assert_eq!(sanitize_for_terminal("ok"), "ok");
        assert_eq!(sanitize_for_terminal("x\u{202E}y"), "x?y");
    }
}
