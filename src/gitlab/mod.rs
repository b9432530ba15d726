//! The GitLab REST API (v4) client: typed models, lazy pagination, retries and rate-limit
//! pacing, and errors that say what to do next.
//!
//! Layout: [`client`] (the HTTP client and one method per endpoint), [`model`] (entities and
//! request bodies), [`pagination`] (keyset/offset streams), [`rate_limit`] (pure retry and
//! pacing rules), [`error`] (`GitLabError`).

pub mod client;
pub mod error;
pub mod model;
pub mod pagination;
pub mod rate_limit;

pub use client::{ClientConfig, ClientStats, GitLabClient, PER_PAGE, Tuning};
pub use error::GitLabError;
pub use model::{
    ApplicationSettings, GitLabVersion, ImportUrlUpdate, Metadata, Namespace, Project,
    ProjectQuery, PullMirror, PullMirrorUpdate, RemoteMirror, RemoteMirrorCreate,
    RemoteMirrorUpdate, TokenSelf, User,
};
pub use rate_limit::RetryPolicy;
