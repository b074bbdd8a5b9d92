//! A kind of view picked by one column's value (`design=twemoji`, `label=Food`), to hold a whole
//! kind of view out of training and to measure retrieval for queries of that kind only.

use super::Item;
use serde::{Deserialize, Serialize};

/// The items whose `column` (a metadata column, or `label` / `listing`) equals `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewFilter {
    /// Column name.
    pub column: String,
    /// The value that selects an item.
    pub value: String,
}

impl ViewFilter {
    /// Whether `item` is of this kind.
    pub fn matches(&self, item: &Item) -> bool {
        let value = match self.column.as_str() {
            "label" => item.label.as_deref(),
            "listing" => Some(item.listing.as_str()),
            column => item.metadata.get(column).map(String::as_str),
        };
        value == Some(self.value.as_str())
    }
}

impl std::fmt::Display for ViewFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.column, self.value)
    }
}

impl std::str::FromStr for ViewFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((column, value)) if !column.trim().is_empty() => Ok(Self {
                column: column.trim().to_string(),
                value: value.trim().to_string(),
            }),
            _ => Err(format!("`{s}`: expected COLUMN=VALUE, e.g. design=twemoji")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_metadata_label_and_listing() {
        let mut item = Item {
            id: 0,
            path: "a/b.png".into(),
            listing: "a".into(),
            label: Some("Food".into()),
            metadata: Default::default(),
        };
        item.metadata.insert("design".into(), "twemoji".into());
        let f: ViewFilter = "design=twemoji".parse().expect("parses");
        assert!(f.matches(&item));
        assert!(!"design=noto"
            .parse::<ViewFilter>()
            .expect("parses")
            .matches(&item));
        assert!("label=Food"
            .parse::<ViewFilter>()
            .expect("parses")
            .matches(&item));
        assert!("listing=a"
            .parse::<ViewFilter>()
            .expect("parses")
            .matches(&item));
        assert!(!"colour=red"
            .parse::<ViewFilter>()
            .expect("parses")
            .matches(&item));
        assert!("design".parse::<ViewFilter>().is_err());
        assert_eq!(f.to_string(), "design=twemoji");
    }
}
