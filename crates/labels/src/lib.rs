//! natview-labels: the label store — what analysts say about items (tags from a set bound to keys 1–9, free-text
//! tags, notes) and about pairs of items (same item / different / near-duplicate). Kept in
//! SQLite in the workspace (`labels.sqlite`), written as each action is made, and exported as
//! CSV or JSONL for the next fine-tuning run.
//!
//! Items are identified by their path relative to the dataset root, so labels survive
//! re-embedding with another model and a changed item order.

// This crate reads files: a size that does not fit is an error, never a silent truncation.
#![deny(clippy::cast_possible_truncation)]
#![forbid(unsafe_code)]

mod changes;
mod export;
mod import;
mod store;
mod timestamp;

pub use changes::LabelChange;
pub use export::{export_labels, render_records, ExportFormat, LabelRecord};
pub use import::{import_labels, parse_records, ImportReport};
pub use store::{ItemRef, LabelStore, BUSY_TIMEOUT, DEFAULT_TAG_SET, TAG_KEYS};
pub use timestamp::utc_timestamp;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Errors of the label store.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// SQLite could not open, read or write the store.
    #[error("{path}: {message}")]
    Database {
        /// The store file.
        path: PathBuf,
        /// What SQLite said.
        message: String,
    },
    /// Another window or process kept the store locked longer than [`BUSY_TIMEOUT`].
    #[error(
        "{path}: the label store is locked by another natview window or process (waited 5 s); \
         this change was not saved — try again"
    )]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// A label file to import could not be read.
    #[error("{path}: {message}")]
    Import {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (with the line, where there is one).
        message: String,
    },
    /// A tag name that cannot be used.
    #[error("invalid tag `{0}`: a tag is 1 to 64 characters, not only spaces")]
    InvalidTag(String),
    /// Writing an export failed.
    #[error("{path}: {message}")]
    Export {
        /// The export file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// An analyst's verdict on a pair of items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Both images show the same item.
    Same,
    /// Different items.
    Different,
    /// (Almost) the same picture: a duplicate upload, a re-encode, a crop.
    NearDuplicate,
}

impl Verdict {
    /// Every verdict, in the order the GUI shows them.
    pub const ALL: [Verdict; 3] = [Verdict::Same, Verdict::Different, Verdict::NearDuplicate];

    /// The stored and exported name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Different => "different",
            Verdict::NearDuplicate => "near-duplicate",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks and trims a tag name.
pub fn clean_tag(tag: &str) -> Result<String, LabelError> {
    let trimmed = tag.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 64 {
        return Err(LabelError::InvalidTag(tag.to_string()));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_names_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        assert_eq!(Verdict::parse("maybe"), None);
    }

    #[test]
    fn tags_are_trimmed_and_checked() {
        assert_eq!(clean_tag("  blurry ").expect("ok"), "blurry");
        assert!(clean_tag("   ").is_err());
        assert!(clean_tag(&"x".repeat(65)).is_err());
    }
}
