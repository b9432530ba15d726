//! Reading tokens: from the first set environment variable of a list, or from a file that
//! holds exactly the token. Errors name the *source* (a variable, a path), never the value.
//! Every token read here is registered with the scrubber (`redact::register_secret`), so no
//! output of the process can show it.

use std::path::Path;

use secrecy::SecretString;

use crate::config::ConfigError;
use crate::redact;

/// Read the first set, non-empty environment variable of `names`.
///
/// Returns the token and the name of the variable it came from (for messages).
pub(crate) fn token_from_env(names: &[&'static str]) -> Option<(SecretString, &'static str)> {
    names.iter().find_map(|name| {
        let value = std::env::var(name).ok()?;
        let value = value.trim();
        (!value.is_empty()).then(|| (held(SecretString::from(value.to_owned())), *name))
    })
}

/// Read one named environment variable as a token (`None` when unset or blank).
pub(crate) fn token_from_var(name: &str) -> Option<SecretString> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| held(SecretString::from(value.to_owned())))
}

/// Register a token with the scrubber and hand it back.
fn held(token: SecretString) -> SecretString {
    redact::register_secret(&token);
    token
}

/// Read a token from a file: surrounding whitespace is trimmed, and the file must hold
/// exactly one non-empty line.
///
/// `flag` is the option the path came from, for the error message. A path that does not
/// exist but looks like a token is refused without echoing it.
pub(crate) fn read_token_file(path: &Path, flag: &str) -> Result<SecretString, ConfigError> {
    let text = match read_bounded(path) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Err(ConfigError::invalid_hint(
                format!("{flag}: {} is larger than 64 KiB: that is no token file", path.display()),
                "the file must hold only the token, on one line",
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let shown = path.to_string_lossy();
            if redact::looks_like_token(&shown) {
                return Err(ConfigError::invalid_hint(
                    format!("{flag} expects a file path, and the value given looks like a token"),
                    "never put a token on the command line: write it to a file (chmod 600) \
                     or set it in the environment",
                ));
            }
            return Err(ConfigError::invalid(format!("{flag}: no such file: {shown}")));
        }
        Err(e) => return Err(ConfigError::read(path, e)),
    };
    if let Some(warning) = permission_warning(path, flag) {
        tracing::warn!("{warning}");
    }
    let token = text.trim();
    if token.is_empty() {
        return Err(ConfigError::invalid(format!("{flag}: {} is empty", path.display())));
    }
    if token.lines().count() > 1 || token.chars().any(char::is_whitespace) {
        return Err(ConfigError::invalid(format!(
            "{flag}: {} must contain only the token, on one line",
            path.display()
        )));
    }
    Ok(held(SecretString::from(token.to_owned())))
}

/// A warning when users other than the owner may read (or change) a token file: the README
/// asks for `chmod 600`, and such a file hands the token to every local account.
#[cfg(unix)]
fn permission_warning(path: &Path, flag: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    let shown = redact::excerpt(&path.display().to_string(), 200);
    (mode & 0o077 != 0).then(|| {
        format!("{flag} {shown}: other users can read or change this token file (mode {mode:03o}); run chmod 600 {shown}")
    })
}

/// Unix permissions only; elsewhere nothing is checked.
#[cfg(not(unix))]
fn permission_warning(_path: &Path, _flag: &str) -> Option<String> {
    None
}

/// The largest token file read: tokens are tens of bytes; this keeps a wrong path (a log, a
/// device such as `/dev/zero`) from being read into memory.
pub(crate) const TOKEN_FILE_MAX_BYTES: u64 = 64 * 1024;

/// The file's text, or `None` when it holds more than [`TOKEN_FILE_MAX_BYTES`] (judged by
/// its size for a regular file, by a reader that stops one byte past the cap otherwise).
fn read_bounded(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > TOKEN_FILE_MAX_BYTES {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(TOKEN_FILE_MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > TOKEN_FILE_MAX_BYTES {
        return Ok(None);
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn token_file_is_trimmed_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t");
        std::fs::write(&path, "glpat-xyz\n").expect("write");
        let token = read_token_file(&path, "--source-token-file").expect("reads");
        assert_eq!(token.expose_secret(), "glpat-xyz");

        std::fs::write(&path, "a\nb\n").expect("write");
        assert!(read_token_file(&path, "--x").is_err());
        std::fs::write(&path, "  \n").expect("write");
        assert!(read_token_file(&path, "--x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn token_files_others_can_read_are_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t");
        std::fs::write(&path, "glpat-xyz\n").expect("write");
        for (mode, warned) in
            [(0o600, false), (0o400, false), (0o640, true), (0o604, true), (0o620, true)]
        {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let warning = permission_warning(&path, "--source-token-file");
            assert_eq!(warning.is_some(), warned, "{mode:o}");
            if let Some(w) = warning {
                assert!(w.contains(&format!("mode {mode:03o}")) && w.contains("chmod 600"), "{w}");
            }
        }
    }

    #[test]
    fn oversized_token_files_are_refused_without_reading_them_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t");
        std::fs::write(&path, "a".repeat(64 * 1024 + 1)).expect("write");
        let err = read_token_file(&path, "--x").expect_err("too large");
        assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
        if Path::new("/dev/zero").exists() {
            let err = read_token_file(Path::new("/dev/zero"), "--x").expect_err("never ends");
            assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
        }
    }

    #[test]
    fn token_given_as_path_is_refused_without_echo() {
        let err = read_token_file(Path::new("glpat-CANARY0123456789"), "--source-token-file")
            .expect_err("refused");
        let text = format!("{err} {:?}", err.hint());
        assert!(!text.contains("CANARY"), "{text}");
        assert!(text.contains("looks like a token"));
    }
}
