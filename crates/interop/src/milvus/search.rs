//! Neighbour search in a natview collection. The answer is read column by column — ids,
//! scores and the stored text fields — rather than through the SDK's row view, which insists
//! on the primary-key field name that Milvus returns only from 2.4 on: natview knows its own
//! schema, so searches work against Milvus 2.3 as well as later servers and milvus-lite.

use super::{InteropError, Milvus, MilvusHit, ID, LABEL, LISTING, PATH, VECTOR};
use milvus::v2 as sdk;
use milvus::v2::prelude::{FieldData, SearchRequest, SearchVectors};
use milvus::v2::types::Ids;
use std::collections::HashMap;

impl Milvus {
    /// The `k` nearest items to `query` other than item `exclude` (when given: the query's own
    /// item, which comes back first), as [`search`](Self::search) finds them.
    pub fn neighbours(
        &self,
        query: &[f32],
        exclude: Option<usize>,
        k: usize,
        ef: usize,
        filter: Option<&str>,
    ) -> Result<Vec<MilvusHit>, InteropError> {
        let extra = usize::from(exclude.is_some());
        let mut hits = self.search(query, k + extra, ef, filter)?;
        hits.retain(|h| Some(h.id) != exclude);
        hits.truncate(k);
        Ok(hits)
    }

    /// The `k` nearest items to `query` (cosine), optionally only those matching a Milvus
    /// boolean `filter` (e.g. `label == "animal"`), searching with HNSW's `ef`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&str>,
    ) -> Result<Vec<MilvusHit>, InteropError> {
        let mut builder = SearchRequest::builder()
            .collection_name(self.target.collection.clone())
            .vector_field(VECTOR)
            .vectors(SearchVectors::Float(vec![query.to_vec()]))
            .output_fields([PATH, LISTING, LABEL])
            .limit(k as i64)
            .extra_params(HashMap::from([("ef".into(), ef.max(k).to_string())]))
            .consistency_level(sdk::ConsistencyLevel::Strong);
        if let Some(filter) = filter {
            builder = builder.filter(filter);
        }
        let request = builder.build().map_err(|e| self.err("search", e))?;
        let response = self
            .runtime
            .block_on(self.client.search(request))
            .map_err(|e| self.err("search", e))?;
        let mut hits = Vec::new();
        for result in response.results().iter() {
            hits.extend(hits_of(result).map_err(|e| self.err("search", e))?);
        }
        Ok(hits)
    }
}

/// The hits of one query's result, from its columns.
fn hits_of(result: &sdk::types::SingleResult) -> Result<Vec<MilvusHit>, String> {
    let ids = match result.get_ids() {
        Ids::Int64(ids) => ids,
        _ => {
            return Err(format!(
                "primary keys that are not integers: not a natview collection (its `{ID}` is \
                 an integer)"
            ))
        }
    };
    let scores = result.get_scores();
    let text = |name: &str| -> Result<&[String], String> {
        match result.get_output_field(name) {
            Some(FieldData::VarChar { values, .. }) => Ok(values),
            Some(other) => Err(format!("field `{name}` is not text: {other:?}")),
            None if ids.is_empty() => Ok(&[]),
            None => Err(format!("the answer lacks the field `{name}`")),
        }
    };
    let (paths, listings, labels) = (text(PATH)?, text(LISTING)?, text(LABEL)?);
    let rows = ids.len();
    if [scores.len(), paths.len(), listings.len(), labels.len()] != [rows; 4] {
        return Err(format!(
            "{rows} ids but {} scores, {} paths, {} listings and {} labels",
            scores.len(),
            paths.len(),
            listings.len(),
            labels.len()
        ));
    }
    ids.iter()
        .enumerate()
        .map(|(row, &id)| {
            Ok(MilvusHit {
                id: usize::try_from(id).map_err(|_| format!("negative item id {id}"))?,
                similarity: scores[row],
                path: paths[row].clone(),
                listing: listings[row].clone(),
                label: labels[row].clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::types::SingleResult;

    /// A result as Milvus 2.3 sends it: no primary-key field name.
    fn result(ids: Vec<i64>, paths: &[&str]) -> SingleResult {
        let texts = |s: &[&str]| s.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        SingleResult::new()
            .ids(Ids::Int64(ids))
            .scores(vec![0.9, 0.8])
            .add_output_field(FieldData::varchar(PATH, texts(paths)))
            .add_output_field(FieldData::varchar(LISTING, texts(&["l1", "l2"])))
            .add_output_field(FieldData::varchar(LABEL, texts(&["", "cat"])))
    }

    #[test]
    fn an_answer_without_a_primary_key_name_is_read_by_natviews_schema() {
        let r = result(vec![3, 7], &["a.jpg", "b.jpg"]);
        assert!(r.rows().is_err(), "the SDK's row view refuses it");
        let hits = hits_of(&r).expect("read");
        assert_eq!(hits.len(), 2);
        assert_eq!((hits[1].id, hits[1].similarity), (7, 0.8));
        assert_eq!(
            (hits[1].path.as_str(), hits[1].label.as_str()),
            ("b.jpg", "cat")
        );
        assert_eq!(hits[0].listing, "l1");
    }

    #[test]
    fn malformed_answers_are_errors() {
        let err = hits_of(&result(vec![3], &["a.jpg", "b.jpg"])).expect_err("short");
        assert!(err.contains("1 ids but 2 scores"), "{err}");
        let err = hits_of(&result(vec![3, -1], &["a.jpg", "b.jpg"])).expect_err("negative");
        assert!(err.contains("negative item id -1"), "{err}");
        let bare = SingleResult::new()
            .ids(Ids::Int64(vec![1]))
            .scores(vec![0.5]);
        assert!(hits_of(&bare).expect_err("no fields").contains("`path`"));
        let strings = SingleResult::new().ids(Ids::VarChar(vec!["x".into()]));
        assert!(hits_of(&strings).is_err());
    }
}
