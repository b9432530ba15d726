//! Terminal safety for untrusted text (project names, GitLab error bodies) and small output
//! helpers shared by the commands: the progress bar and "a 2, b 1" counts.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use crate::config::Settings;

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

/// A progress bar on stderr, hidden unless stderr is a terminal and progress is wanted.
pub fn progress_bar(settings: &Settings, message: &'static str) -> indicatif::ProgressBar {
    if settings.no_progress || settings.quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} projects ({elapsed})")
            .expect("static template is valid"),
    );
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// "a 2, b 1" or "none".
pub fn counts(map: &BTreeMap<&'static str, usize>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
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
