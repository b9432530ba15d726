//! What probing a row found, as plain data for the row policy ([`crate::plan::decide`]) and
//! the sentences plan and apply say about it. Pure: the probe itself is `crate::probe`, the
//! scheduling `crate::inventory::probe` (plan) and `crate::apply::probe_guard` (apply).

use crate::probe::{ProbeClass, ProbeCode, ProbeOutcome};

/// One row's probe result, without anything secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeFinding {
    /// The code for the `probe` column.
    pub(crate) code: ProbeCode,
    /// The probe's reason (terminal-safe, no secrets).
    pub(crate) reason: String,
    /// The HTTP status, when the host answered.
    pub(crate) status: Option<u16>,
    /// The host probed.
    pub(crate) host: String,
    /// A same-origin redirect's target as a mirror URL (no userinfo).
    pub(crate) suggested_url: Option<String>,
    /// The redirect only adds `.git` to the URL.
    pub(crate) adds_dot_git: bool,
}

impl ProbeFinding {
    /// From a probe of `host`.
    pub(crate) fn from_outcome(outcome: &ProbeOutcome, host: &str) -> ProbeFinding {
        ProbeFinding {
            code: outcome.code,
            reason: outcome.reason.clone(),
            status: outcome.status,
            host: host.to_owned(),
            suggested_url: outcome.suggested_url.clone(),
            adds_dot_git: outcome.adds_dot_git,
        }
    }

    /// A finding with only a code and a reason, for tests.
    #[cfg(test)]
    pub(crate) fn new(code: ProbeCode, host: &str, reason: &str) -> ProbeFinding {
        ProbeFinding {
            code,
            reason: reason.to_owned(),
            status: None,
            host: host.to_owned(),
            suggested_url: None,
            adds_dot_git: false,
        }
    }

    /// What the host answered, for a sentence: `HTTP 404 from github.com` or `no answer from
    /// github.com`.
    pub(crate) fn answer(&self) -> String {
        match self.status {
            Some(s) => format!("HTTP {s} from {}", self.host),
            None => format!("no answer from {}", self.host),
        }
    }

    /// Why a row with this finding keeps its credentials (a credential verdict): one
    /// sentence a reviewer can act on.
    pub(crate) fn not_moved(&self) -> String {
        format!(
            "The service credentials are not moved: probing with them got {} ({}): {}.",
            self.code,
            self.answer(),
            self.reason.trim_end_matches('.')
        )
    }

    /// Why `apply` did not write a row after this finding (any code that does not allow a
    /// write): for the report's `outcome_detail`.
    pub(crate) fn not_written(&self) -> String {
        let what = match self.code.class() {
            ProbeClass::CredentialVerdict => "the service credentials cannot be used here",
            ProbeClass::NoVerdict => "no verdict on the service credentials",
            ProbeClass::NotProbed => "not probed",
            ProbeClass::Proven | ProbeClass::Diagnosis => "",
        };
        format!(
            "probe {} ({}): {what}: {}; not written (rerun once fixed)",
            self.code,
            self.answer(),
            self.reason.trim_end_matches('.')
        )
    }

    /// What `apply --dry-run` says about a row a real run would not write.
    pub(crate) fn would_fail(&self) -> String {
        format!(
            "would fail: {} ({}): {}; a real run would not write it",
            self.code,
            self.answer(),
            self.reason.trim_end_matches('.')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_name_the_code_the_answer_and_the_reason() {
        let mut f = ProbeFinding::new(
            ProbeCode::NoAccessOrMissing,
            "github.com",
            "GitHub answers 404 …: grant the service account read access to acme/api.git.",
        );
        f.status = Some(404);
        let s = f.not_moved();
        assert!(s.starts_with("The service credentials are not moved"), "{s}");
        assert!(s.contains("no-access-or-missing (HTTP 404 from github.com)"), "{s}");
        assert!(s.contains("grant the service account read access to acme/api.git."), "{s}");
        assert!(!s.contains(".."), "{s}");
        assert!(f.would_fail().starts_with("would fail: no-access-or-missing ("));
        let w = f.not_written();
        assert!(w.contains("probe no-access-or-missing") && w.contains("not written"), "{w}");
        let t = ProbeFinding::new(ProbeCode::Unreachable, "github.com", "timed out");
        assert!(t.not_written().contains("no answer from github.com"), "{}", t.not_written());
        assert!(t.not_written().contains("no verdict"), "{}", t.not_written());
    }
}
