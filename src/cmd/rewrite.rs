//! `glmirror rewrite`: the URL rules offline. URLs from the arguments (or stdin, one a line)
//! in, CSV `input_url,new_url,new_user,new_auth,fixes,action,reason` out on stdout.

use std::io::{BufRead, Write};

use crate::config::RewriteRequest;
use crate::error::{AppError, ExitCode};
use crate::rewrite::{self, Direction, Fix, MirrorInput, Rewrite, Rules};

/// The CSV header of `glmirror rewrite`.
pub(crate) const HEADER: [&str; 7] =
    ["input_url", "new_url", "new_user", "new_auth", "fixes", "action", "reason"];

/// Run `glmirror rewrite`.
pub(crate) fn run(req: RewriteRequest) -> Result<ExitCode, AppError> {
    for warning in &req.warnings {
        eprintln!("warning: {}", crate::redact::for_terminal(warning));
    }
    let inputs: Vec<String> = if req.urls.is_empty() { read_stdin_lines()? } else { req.urls };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match write_csv(&mut out, &inputs, &req.rules) {
        Ok(()) => Ok(ExitCode::Success),
        // A closed pipe (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::Success),
        Err(e) => Err(AppError::fatal(format!("cannot write to stdout: {e}"))),
    }
}

/// Read the non-blank lines of stdin. A line that is not UTF-8 is kept (so rows line up with
/// the input) and marked so the rules refuse it.
fn read_stdin_lines() -> Result<Vec<String>, AppError> {
    let stdin = std::io::stdin();
    if std::io::IsTerminal::is_terminal(&stdin) {
        eprintln!("glmirror: reading URLs from stdin, one a line (Ctrl-D to finish)");
    }
    let mut lines = Vec::new();
    for line in stdin.lock().split(b'\n') {
        let line = line.map_err(|e| AppError::fatal(format!("cannot read stdin: {e}")))?;
        let line = match String::from_utf8(line) {
            Ok(s) => s,
            // Keep the row (so the output lines up with the input) but make sure the rules
            // refuse it: a NUL is a control character.
            Err(e) => format!("{}\u{0}", String::from_utf8_lossy(e.as_bytes())),
        };
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.trim().is_empty() {
            continue;
        }
        lines.push(line.to_owned());
    }
    Ok(lines)
}

/// Write the CSV for these inputs, through the one cell writer of every CSV glmirror writes
/// (formula guard, no control characters).
pub(crate) fn write_csv(
    out: &mut impl Write,
    inputs: &[String],
    rules: &Rules,
) -> std::io::Result<()> {
    let mut w = crate::plan::cell::csv_writer(out);
    w.write_record(HEADER)?;
    for input in inputs {
        let rw = rewrite::rewrite(
            &MirrorInput { url: input, direction: Direction::Pull, last_error: None },
            rules,
        );
        crate::plan::cell::write_record(&mut w, &row(input, &rw))?;
    }
    w.flush()
}

/// One CSV row: credentials of the input masked in every cell (the writer adds the formula
/// guard).
pub(crate) fn row(input: &str, rw: &Rewrite) -> [String; 7] {
    let masked_input = rewrite::mask_url(input.trim());
    let cells = [
        masked_input,
        rw.new_url.clone().unwrap_or_default(),
        rw.new_user.clone().unwrap_or_default(),
        rw.new_auth.map(|a| a.code().to_owned()).unwrap_or_default(),
        Fix::join(&rw.fixes),
        rw.action.code().to_owned(),
        rw.reason.clone(),
    ];
    cells.map(|c| scrub(input, &c))
}

/// Defense in depth: remove the input's own credential values from a cell.
fn scrub(input: &str, cell: &str) -> String {
    let mut cell = cell.to_owned();
    for secret in input_secrets(input) {
        if secret.len() >= 8 && cell.contains(&secret) {
            cell = cell.replace(&secret, crate::redact::MASK);
        }
    }
    cell
}

/// Credential values of the input, as typed and decoded.
pub(crate) fn input_secrets(input: &str) -> Vec<String> {
    let Some(url) = crate::redact::split_authority(input.trim()) else { return Vec::new() };
    let Some(user) = url.user() else { return Vec::new() };
    let is_ssh = matches!(url.scheme.to_ascii_lowercase().as_str(), "ssh" | "git+ssh" | "ssh+git");
    // Passwords, and usernames that look like a token (the token-as-username form). Plain
    // usernames are not scrubbed: they may legitimately equal a path segment.
    let mut parts = Vec::new();
    parts.extend(url.password().map(str::to_owned));
    if !is_ssh && crate::redact::looks_like_token(user) {
        parts.push(user.to_owned());
    }
    let decoded: Vec<String> = parts
        .iter()
        .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned())
        .collect();
    parts.extend(decoded);
    parts.retain(|p| p != crate::redact::MASK);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::SourceHost;

    fn rules() -> Rules {
        Rules {
            source_hosts: vec![SourceHost { host: "github.com".into(), user: None, port: None }],
            ..Default::default()
        }
    }

    fn csv_of(inputs: &[&str]) -> String {
        let inputs: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        let mut buf = Vec::new();
        write_csv(&mut buf, &inputs, &rules()).expect("writes");
        String::from_utf8(buf).expect("utf8")
    }

    #[test]
    fn header_and_rows() {
        let out = csv_of(&["git@github.com:org/r.git", "http://github.com/org/r"]);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("input_url,new_url,new_user,new_auth,fixes,action,reason"));
        let l = lines.next().expect("row");
        assert!(l.starts_with("git@github.com:org/r.git,ssh://git@github.com/org/r.git,,unchanged,scp-to-ssh,update,"), "{l}");
        let l = lines.next().expect("row");
        assert!(
            l.starts_with("http://github.com/org/r,https://github.com/org/r.git,<token>,service,to-https;add-dot-git;service-token,update,"),
            "{l}"
        );
    }

    #[test]
    fn credentials_are_masked_everywhere() {
        let out = csv_of(&[
            "https://alice:glpat-CANARYpw@github.com/org/r.git",
            "https://bob:CANARYpass@other.example/x.git",
            "HTTPS://carol:CANARYx@other.example/x.git",
            "https://glpat-CANARYuser@other.example/y",
            "ssh://git:CANARYssh@other.example/y",
        ]);
        assert!(!out.contains("CANARY"), "{out}");
        assert!(out.contains("https://*****:*****@github.com/org/r.git"), "{out}");
    }

    #[test]
    fn formula_cells_are_guarded() {
        let out = csv_of(&["=HYPERLINK(\"http://evil\")", "@x", "-x"]);
        assert!(out.contains("'=HYPERLINK"), "{out}");
        assert!(out.contains("\n'@x,") && out.contains("\n'-x,"), "{out}");
    }
}
