//! Request bodies that carry secrets: [`Secret`] serializes a credential as its plain value,
//! and only [`secret_body`] serializes such bodies, into the bytes that go to the HTTP body.
//! [`scrub_secrets`] takes the same values back out of any error text GitLab echoes.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::error::GitLabError;

/// A secret that serializes as its plain value. Only [`secret_body`] serializes these, into
/// the request body bytes; nothing else (logs, errors, Debug) ever sees the value.
pub(super) struct Secret<'a>(pub(super) &'a SecretString);

impl Serialize for Secret<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose_secret())
    }
}

/// A serialized JSON request body, with the secrets it holds (to scrub them out of any
/// error text GitLab sends back).
pub(crate) struct RequestBody {
    pub(super) bytes: Vec<u8>,
    pub(super) secrets: Vec<SecretString>,
}

/// Serialize a request body that holds secrets (wrapped in [`Secret`]). Mirror credentials
/// are exposed only here, into the bytes that go straight to the HTTP body, and in
/// [`scrub_secrets`].
pub(super) fn secret_body<'a, T: Serialize>(
    body: &T,
    secrets: impl IntoIterator<Item = &'a SecretString>,
) -> Result<RequestBody, GitLabError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|_| GitLabError::Config("cannot encode the request body".to_owned()))?;
    Ok(RequestBody { bytes, secrets: secrets.into_iter().cloned().collect() })
}

/// Replace every occurrence of a (non-trivial) secret in `text` with `[REDACTED]`.
pub(super) fn scrub_secrets(mut text: String, secrets: &[SecretString]) -> String {
    for secret in secrets {
        let value = secret.expose_secret();
        // Very short values (e.g. a one-letter user) would shred the text, and reveal little.
        if value.len() >= 4 && text.contains(value) {
            text = text.replace(value, "[REDACTED]");
        }
    }
    text
}

/// The wire form of [`super::model::PullMirrorUpdate`].
#[derive(Serialize)]
pub(super) struct PullMirrorBody<'a> {
    /// Empty when only flags change: GitLab then keeps the URL and stored credentials.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(super) url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) auth_user: Option<Secret<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) auth_password: Option<Secret<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mirror_trigger_builds: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) only_mirror_protected_branches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mirror_overwrites_diverged_branches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mirror_branch_regex: Option<&'a str>,
}

/// The wire form of [`super::model::ImportUrlUpdate`].
#[derive(Serialize)]
pub(super) struct ImportUrlBody<'a> {
    pub(super) import_url: Secret<'a>,
    pub(super) mirror: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mirror_user_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mirror_trigger_builds: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) only_mirror_protected_branches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mirror_overwrites_diverged_branches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mirror_branch_regex: Option<&'a str>,
}

/// The wire form of [`super::model::RemoteMirrorCreate`].
#[derive(Serialize)]
pub(super) struct RemoteMirrorBody<'a> {
    pub(super) url: Secret<'a>,
    pub(super) enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) auth_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) keep_divergent_refs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) only_protected_branches: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mirror_branch_regex: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_bodies_carry_the_raw_values() {
        let user = SecretString::from("svc@corp");
        let pass = SecretString::from("p@ss:w/rd");
        let body = PullMirrorBody {
            url: "https://h/x.git",
            auth_user: Some(Secret(&user)),
            auth_password: Some(Secret(&pass)),
            enabled: None,
            mirror_trigger_builds: Some(true),
            only_mirror_protected_branches: None,
            mirror_overwrites_diverged_branches: None,
            mirror_branch_regex: None,
        };
        let body = secret_body(&body, [&user, &pass]).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"url":"https://h/x.git","auth_user":"svc@corp",
                "auth_password":"p@ss:w/rd","mirror_trigger_builds":true})
        );
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let secrets = [SecretString::from("glpat-CANARYsrc"), SecretString::from("ab")];
        let text = scrub_secrets("bad password glpat-CANARYsrc for ab".to_owned(), &secrets);
        assert_eq!(text, "bad password [REDACTED] for ab");
    }
}
