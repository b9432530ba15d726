//! Request bodies that carry secrets. The request models in [`super::model`] mark their
//! credential fields `serialize_with = expose`: such a field writes its plain value only while
//! [`secret_body`] turns the model into the bytes of an HTTP body, and fails anywhere else.
//! [`scrub_secrets`] takes the same values back out of any error text GitLab echoes.

use std::cell::RefCell;

use secrecy::{ExposeSecret, SecretString};
use serde::ser::Error as _;
use serde::{Serialize, Serializer};

use super::error::GitLabError;

thread_local! {
    /// `Some` while [`secret_body`] serializes on this thread: every credential written into
    /// the body is collected here (to scrub it out of error text later).
    static EXPOSED: RefCell<Option<Vec<SecretString>>> = const { RefCell::new(None) };
}

/// `serialize_with` for a credential field of a request model: writes the plain value, but
/// only inside [`secret_body`]. Anywhere else (a model passed to `serde_json` for a log line
/// or a file) serialization fails instead of leaking the value.
pub(super) fn expose<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    let inside = EXPOSED.with_borrow_mut(|exposed| match exposed {
        Some(list) => {
            list.push(secret.clone());
            true
        }
        None => false,
    });
    if !inside {
        return Err(S::Error::custom("credentials are serialized only into a GitLab request body"));
    }
    s.serialize_str(secret.expose_secret())
}

/// [`expose`] for an optional credential (pair it with `skip_serializing_if`).
pub(super) fn expose_opt<S: Serializer>(
    secret: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => expose(secret, s),
        None => s.serialize_none(),
    }
}

/// A serialized JSON request body, with the secrets it holds (to scrub them out of any
/// error text GitLab sends back).
pub(super) struct RequestBody {
    pub(super) bytes: Vec<u8>,
    pub(super) secrets: Vec<SecretString>,
}

/// Serialize a request body. Credentials (fields serialized with [`expose`]) are exposed
/// only here, into the bytes that go straight to the HTTP body, and in [`scrub_secrets`];
/// the body remembers each of them.
pub(super) fn secret_body<T: Serialize>(body: &T) -> Result<RequestBody, GitLabError> {
    /// Restores the state before this call, also when serialization panics.
    struct Scope(Option<Vec<SecretString>>);
    impl Drop for Scope {
        fn drop(&mut self) {
            EXPOSED.set(self.0.take());
        }
    }
    let scope = Scope(EXPOSED.replace(Some(Vec::new())));
    let bytes = serde_json::to_vec(body);
    let secrets = EXPOSED.take().unwrap_or_default();
    drop(scope);
    let bytes =
        bytes.map_err(|_| GitLabError::Config("cannot encode the request body".to_owned()))?;
    Ok(RequestBody { bytes, secrets })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Login {
        name: &'static str,
        #[serde(serialize_with = "expose")]
        password: SecretString,
        #[serde(serialize_with = "expose_opt", skip_serializing_if = "Option::is_none")]
        token: Option<SecretString>,
    }

    #[test]
    fn credentials_are_written_and_remembered_only_inside_secret_body() {
        let login = Login {
            name: "svc",
            password: SecretString::from("p@ss:w/rd-CANARY"),
            token: Some(SecretString::from("glpat-CANARYbody")),
        };
        let body = secret_body(&login).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name":"svc","password":"p@ss:w/rd-CANARY","token":"glpat-CANARYbody"})
        );
        let remembered: Vec<&str> = body.secrets.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(remembered, ["p@ss:w/rd-CANARY", "glpat-CANARYbody"]);

        // Outside secret_body (before and after it) the same value refuses to serialize.
        let err = serde_json::to_string(&login).unwrap_err().to_string();
        assert!(err.contains("only into a GitLab request body"), "{err}");
        assert!(!err.contains("CANARY"), "{err}");
        assert!(secret_body(&Login { token: None, ..login }).unwrap().secrets.len() == 1);
    }

    #[test]
    fn a_failed_body_leaves_the_guard_closed() {
        struct Broken;
        impl Serialize for Broken {
            fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(S::Error::custom("broken"))
            }
        }
        assert!(secret_body(&Broken).is_err());
        let login = Login { name: "x", password: SecretString::from("CANARY"), token: None };
        assert!(serde_json::to_string(&login).is_err());
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let secrets = [SecretString::from("glpat-CANARYsrc"), SecretString::from("ab")];
        let text = scrub_secrets("bad password glpat-CANARYsrc for ab".to_owned(), &secrets);
        assert_eq!(text, "bad password [REDACTED] for ab");
    }
}
