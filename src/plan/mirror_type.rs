//! [`MirrorType`]: which way a mirror copies. A leaf of `plan/`: the row, the diagnosis rules
//! and the journal all name it, and it names nothing of theirs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::rewrite::{UnknownCode, code_traits};

/// Which way a mirror copies: GitLab pulls from the remote, or pushes to it.
///
/// `Ord` puts `Pull` before `Push`, the row order of docs/plan-format.md. Serialized (in the apply
/// journal) as its code, `pull` or `push`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorType {
    /// A pull mirror (`GET /projects/:id/mirror/pull`), at most one per project.
    Pull,
    /// A push mirror (`/projects/:id/remote_mirrors`), identified by its `mirror_id`.
    Push,
}

impl MirrorType {
    /// The stable code written in CSV files.
    pub(crate) fn code(self) -> &'static str {
        match self {
            MirrorType::Pull => "pull",
            MirrorType::Push => "push",
        }
    }
}

impl From<MirrorType> for crate::rewrite::Direction {
    fn from(t: MirrorType) -> Self {
        match t {
            MirrorType::Pull => crate::rewrite::Direction::Pull,
            MirrorType::Push => crate::rewrite::Direction::Push,
        }
    }
}

code_traits!(MirrorType, "mirror_type", [MirrorType::Pull, MirrorType::Push]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_exact() {
        for t in [MirrorType::Pull, MirrorType::Push] {
            assert_eq!(t.code().parse::<MirrorType>(), Ok(t));
        }
        assert!("Pull".parse::<MirrorType>().is_err());
        assert!(MirrorType::Pull < MirrorType::Push, "pull rows sort first");
    }
}
