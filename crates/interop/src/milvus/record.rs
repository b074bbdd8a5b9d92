//! What a natview collection holds — the encoder, its weights, the dataset and its items —
//! recorded by `export` in a collection property (which Milvus 2.3 and later and milvus-lite
//! all keep; milvus-lite drops descriptions), so that a collection filled from other
//! embeddings is refused instead of answering with the wrong images; and the check of each
//! answer's stored paths against the dataset's.

use natview_core::dataset::Item;
use natview_pipeline::EmbeddingSet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// natview collections' description.
pub(super) const DESCRIPTION: &str = "natview embeddings";

/// The collection property that holds the [`CollectionRecord`] (JSON).
pub const RECORD_PROPERTY: &str = "natview.record";

/// The embeddings a collection holds (or a dataset has), as far as answers depend on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionRecord {
    /// The encoder's workspace key (model, input size, weights name).
    pub encoder: String,
    /// Fingerprint of the encoder's weights (or `seed:N`).
    pub weights_fingerprint: String,
    /// Vector dimension.
    pub dim: usize,
    /// Fingerprint of the dataset's listing.
    pub dataset_fingerprint: String,
    /// Fingerprint of the items in row order (row `i` is item `i`).
    pub items_fingerprint: String,
    /// Rows.
    pub rows: usize,
}

/// What a collection's description says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// natview's record of its embeddings.
    Record(CollectionRecord),
    /// A natview collection written before collections recorded their embeddings.
    Unrecorded,
    /// Not natview's: its description and fields, for the message.
    Foreign(String),
}

impl CollectionRecord {
    /// The record of `set`'s embeddings.
    pub fn of(set: &EmbeddingSet) -> Self {
        Self {
            encoder: set.meta.encoder.workspace_key(),
            weights_fingerprint: set.meta.weights_fingerprint.clone(),
            dim: set.matrix.dim,
            dataset_fingerprint: set.meta.dataset_fingerprint.clone(),
            items_fingerprint: set.meta.items_fingerprint.clone(),
            rows: set.matrix.rows,
        }
    }

    /// The collection properties that record it.
    pub fn properties(&self) -> HashMap<String, String> {
        // Serialising plain strings and numbers cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        HashMap::from([(RECORD_PROPERTY.to_string(), json)])
    }

    /// Reads what a collection says about itself: its `properties`, `description` and
    /// `fields` (natview's fields without a record: written by an older natview).
    pub fn read(
        properties: &HashMap<String, String>,
        description: &str,
        fields: &[String],
    ) -> Recorded {
        if let Some(record) = properties
            .get(RECORD_PROPERTY)
            .and_then(|json| serde_json::from_str(json).ok())
        {
            return Recorded::Record(record);
        }
        let natviews = super::FIELDS.iter().all(|f| fields.iter().any(|g| g == f))
            && fields.len() == super::FIELDS.len();
        if natviews || description == DESCRIPTION {
            Recorded::Unrecorded
        } else {
            Recorded::Foreign(format!(
                "description `{description}`, fields {}",
                fields.join(", ")
            ))
        }
    }

    /// How the collection's record `self` differs from `wanted` (`None`: it holds them).
    pub fn mismatch(&self, wanted: &Self) -> Option<String> {
        let mut differences = Vec::new();
        if self.encoder != wanted.encoder || self.weights_fingerprint != wanted.weights_fingerprint
        {
            differences.push(format!(
                "encoder {} (weights {}), not {} (weights {})",
                self.encoder, self.weights_fingerprint, wanted.encoder, wanted.weights_fingerprint
            ));
        } else if self.dim != wanted.dim {
            differences.push(format!("{}-d vectors, not {}-d", self.dim, wanted.dim));
        }
        if self.dataset_fingerprint != wanted.dataset_fingerprint {
            differences.push(format!(
                "dataset {}, not {}",
                self.dataset_fingerprint, wanted.dataset_fingerprint
            ));
        }
        if self.items_fingerprint != wanted.items_fingerprint || self.rows != wanted.rows {
            differences.push(format!(
                "{} items {}, not {} items {}",
                self.rows, self.items_fingerprint, wanted.rows, wanted.items_fingerprint
            ));
        }
        (!differences.is_empty()).then(|| differences.join("; "))
    }
}

/// Checks that each `(row, stored path)` of an answer is that row's item in `items`: the
/// error names the first row whose path differs (the collection was written from other data).
pub fn check_paths<'a>(
    answer: impl IntoIterator<Item = (usize, &'a str)>,
    items: &[Item],
) -> Result<(), String> {
    for (id, stored) in answer {
        let Some(item) = items.get(id) else {
            return Err(format!(
                "the collection answered row {id}, but this dataset has {} items",
                items.len()
            ));
        };
        let expected = item.path.to_string_lossy();
        if stored != expected {
            return Err(format!(
                "row {id} of the collection is `{stored}`, but item {id} of this dataset is \
                 `{expected}`: the collection was written from other data"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn record() -> CollectionRecord {
        CollectionRecord {
            encoder: "compact-untrained-32px".into(),
            weights_fingerprint: "seed:0".into(),
            dim: 64,
            dataset_fingerprint: "d1".into(),
            items_fingerprint: "i1".into(),
            rows: 12,
        }
    }

    #[test]
    fn a_record_reads_back_from_its_property() {
        let r = record();
        let natviews: Vec<String> = super::super::FIELDS.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            CollectionRecord::read(&r.properties(), "", &natviews),
            Recorded::Record(r)
        );
        let none = HashMap::new();
        assert_eq!(
            CollectionRecord::read(&none, "", &natviews),
            Recorded::Unrecorded
        );
        assert_eq!(
            CollectionRecord::read(&none, DESCRIPTION, &[]),
            Recorded::Unrecorded
        );
        let theirs = ["pk".to_string(), "vec".to_string()];
        assert_eq!(
            CollectionRecord::read(&none, "my products", &theirs),
            Recorded::Foreign("description `my products`, fields pk, vec".into())
        );
        let broken = HashMap::from([(RECORD_PROPERTY.to_string(), "{broken".to_string())]);
        assert!(matches!(
            CollectionRecord::read(&broken, "x", &theirs),
            Recorded::Foreign(_)
        ));
    }

    #[test]
    fn every_difference_is_named() {
        let r = record();
        assert_eq!(r.mismatch(&r.clone()), None);
        let other = CollectionRecord {
            encoder: "resnet18-224px".into(),
            weights_fingerprint: "abc".into(),
            dim: 512,
            ..record()
        };
        let m = r.mismatch(&other).expect("differs");
        assert!(
            m.contains("compact-untrained-32px") && m.contains("resnet18-224px"),
            "{m}"
        );
        let other = CollectionRecord {
            dataset_fingerprint: "d2".into(),
            items_fingerprint: "i2".into(),
            rows: 13,
            ..record()
        };
        let m = r.mismatch(&other).expect("differs");
        assert!(
            m.contains("dataset d1, not d2") && m.contains("13 items i2"),
            "{m}"
        );
        assert!(!m.contains("encoder"), "{m}");
    }

    #[test]
    fn paths_of_other_data_are_refused_with_the_row() {
        let items: Vec<Item> = ["a/1.jpg", "a/2.jpg"]
            .iter()
            .enumerate()
            .map(|(id, p)| Item {
                id,
                path: PathBuf::from(p),
                listing: "a".into(),
                label: None,
                metadata: Default::default(),
            })
            .collect();
        assert_eq!(
            check_paths([(1, "a/2.jpg"), (0, "a/1.jpg")], &items),
            Ok(())
        );
        let err = check_paths([(0, "a/1.jpg"), (1, "b/9.jpg")], &items).expect_err("differs");
        assert!(err.contains("row 1") && err.contains("b/9.jpg") && err.contains("a/2.jpg"));
        let err = check_paths([(5, "a/1.jpg")], &items).expect_err("beyond");
        assert!(err.contains("row 5") && err.contains("2 items"), "{err}");
    }
}
