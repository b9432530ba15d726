//! The GitLab REST API (v4) client: typed models, lazy pagination, retries and rate-limit
//! pacing, and errors that say what to do next.
//!
//! Layout: `client` (construction, counters and the send loop), `endpoints` (one method
//! per endpoint), `body` (serializing request models that carry credentials), `model`
//! (entities, and request models that are also the wire bodies), `pagination`
//! (keyset/offset streams), `rate_limit` (pure retry and pacing rules), `transport`
//! (reading one response within bounds, naming transport errors), `error` (`GitLabError`).
//! Imports run one way: endpoints → {client, pagination, body, model}; pagination → client;
//! client → {body, rate_limit, transport}; transport → rate_limit; model → body; `error`
//! (imported by most) and `rate_limit` import no sibling. Outside `gitlab/` only the leaf
//! `crate::redact` is used (a test below checks).

mod body;
pub(crate) mod client;
pub(crate) mod endpoints;
pub mod error;
pub(crate) mod model;
pub(crate) mod pagination;
pub(crate) mod rate_limit;
mod transport;

pub use client::{ClientConfig, ClientStats, GitLabClient, Tuning};
pub use error::GitLabError;
pub(crate) use model::ImportUrlUpdate;
pub use model::{
    ApplicationSettings, GitLabVersion, Metadata, Project, ProjectQuery, PullMirror,
    PullMirrorFlags, PullMirrorUpdate, RemoteMirror, RemoteMirrorCreate, TokenSelf, User,
};

#[cfg(test)]
mod tests {
    /// The client is a lower layer: it may use the leaf [`crate::redact`] and its own modules,
    /// never the CLI layer (`cli`, `cmd`, `error::AppError`), the plan or the journal.
    #[test]
    fn imports_only_redact_from_the_crate() {
        let files = [
            ("mod.rs", include_str!("mod.rs")),
            ("body.rs", include_str!("body.rs")),
            ("client.rs", include_str!("client.rs")),
            ("endpoints.rs", include_str!("endpoints.rs")),
            ("error.rs", include_str!("error.rs")),
            ("model.rs", include_str!("model.rs")),
            ("pagination.rs", include_str!("pagination.rs")),
            ("rate_limit.rs", include_str!("rate_limit.rs")),
            ("transport.rs", include_str!("transport.rs")),
        ];
        for (name, source) in files {
            let code = source.split("#[cfg(test)]").next().unwrap_or(source);
            for (at, _) in code.match_indices("crate::") {
                let path = &code[at + "crate::".len()..];
                assert!(
                    path.starts_with("redact") || path.starts_with("gitlab"),
                    "gitlab/{name} reaches outside the client: crate::{}",
                    path.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or("")
                );
            }
        }
    }
}
