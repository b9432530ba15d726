//! The GitLab REST API client.

/// A failed GitLab API call.
#[derive(Debug, thiserror::Error)]
pub enum GitLabError {
    /// Placeholder until the client lands.
    #[error("GitLab request failed: {0}")]
    Other(String),
}

impl GitLabError {
    /// A next step for the user, when one is known (bad token, missing scope, …).
    pub fn hint(&self) -> Option<String> {
        None
    }
}
