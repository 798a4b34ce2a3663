//! Matching words and names in text: what both the profile compiler and the triage core
//! need, and so depend on neither (a leaf, like `mail`).
//!
//! - [`matcher`] — every keyword of a profile in one Aho-Corasick automaton over folded
//!   text, with whole-word boundaries, stems and regex patterns beside it;
//! - [`forms`] — the ordinary English forms a keyword also matches;
//! - [`names`] — finding team members named in a message;
//! - [`Level`] — escalation priorities, which keyword sets carry.

pub mod forms;
pub mod matcher;
pub mod names;

use serde::{Deserialize, Serialize};

/// Escalation priority, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    MEDIUM,
    HIGH,
    URGENT,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 3] = [Level::MEDIUM, Level::HIGH, Level::URGENT];

    /// The level's name as written in profiles.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::MEDIUM => "MEDIUM",
            Level::HIGH => "HIGH",
            Level::URGENT => "URGENT",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
