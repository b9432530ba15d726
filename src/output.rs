//! Small output helpers shared by the commands: the progress bar and "a 2, b 1" counts.
//! (Terminal safety for untrusted text is `redact::sanitize_for_terminal`.)

use std::collections::BTreeMap;
use std::io::IsTerminal;

use crate::config::Settings;

/// A progress bar on stderr, hidden unless stderr is a terminal and progress is wanted.
pub(crate) fn progress_bar(settings: &Settings, message: &'static str) -> indicatif::ProgressBar {
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
pub(crate) fn counts(map: &BTreeMap<&'static str, usize>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}
