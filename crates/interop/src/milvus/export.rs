//! Writing a set into its collection: batched idempotent upserts keyed by item id, resumable
//! after a failure from the progress kept in the workspace.

use super::{
    CollectionRecord, InteropError, Milvus, MilvusTarget, BATCH_ROWS, ID, LABEL, LISTING, METADATA,
    PATH, VECTOR,
};
use milvus::v2::prelude::{FieldData, FlushRequest, InsertRequest, UpsertRequest};
use natview_core::jobs::{CancelFlag, Progress, ProgressSink};
use natview_core::workspace::{write_json_atomic, Workspace};
use natview_index::HnswParams;
use natview_pipeline::store::EmbeddingStore;
use natview_pipeline::EmbeddingSet;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What an export to Milvus did.
#[derive(Debug, Clone)]
pub struct MilvusExportReport {
    /// Rows sent in this run.
    pub sent: usize,
    /// Rows a previous, interrupted run had sent already (skipped).
    pub resumed_from: usize,
    /// Rows the collection holds afterwards.
    pub count: u64,
    /// Seconds spent sending.
    pub seconds: f64,
}

/// How far an export got, kept in the workspace so that a failed one resumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ExportState {
    uri: String,
    collection: String,
    embeddings_fingerprint: String,
    rows_done: usize,
}

impl Milvus {
    /// Upserts items `rows` of `set`.
    fn upsert(&self, set: &EmbeddingSet, rows: std::ops::Range<usize>) -> Result<(), InteropError> {
        let items = &set.items[rows.clone()];
        let metadata = items
            .iter()
            .map(|item| {
                serde_json::Value::Object(
                    item.metadata
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
                        .collect(),
                )
            })
            .collect();
        let columns = vec![
            FieldData::int64(ID, items.iter().map(|i| i.id as i64).collect()),
            FieldData::float_vector(
                VECTOR,
                rows.clone().map(|r| set.matrix.row(r).to_vec()).collect(),
            ),
            FieldData::varchar(
                PATH,
                items
                    .iter()
                    .map(|i| i.path.to_string_lossy().into_owned())
                    .collect(),
            ),
            FieldData::varchar(LISTING, items.iter().map(|i| i.listing.clone()).collect()),
            FieldData::varchar(
                LABEL,
                items
                    .iter()
                    .map(|i| i.label.clone().unwrap_or_default())
                    .collect(),
            ),
            FieldData::json(METADATA, metadata),
        ];
        let insert = InsertRequest::builder()
            .collection_name(self.target.collection.clone())
            .columns(columns)
            .build()
            .map_err(|e| self.err("upsert", e))?;
        let request = UpsertRequest::builder()
            .insert(insert)
            .build()
            .map_err(|e| self.err("upsert", e))?;
        self.runtime
            .block_on(self.client.upsert(request))
            .map_err(|e| self.err("upsert", e))?;
        Ok(())
    }

    /// Writes `set` into the collection in batches of [`BATCH_ROWS`] (creating it with an HNSW
    /// index when missing), resuming after the rows an interrupted run of the same embeddings
    /// recorded in `workspace`; `restart` sends everything again (into a new collection when
    /// the existing one holds other embeddings).
    pub fn export(
        &self,
        set: &EmbeddingSet,
        workspace: &Workspace,
        params: HnswParams,
        restart: bool,
        progress: &dyn ProgressSink,
        cancel: &CancelFlag,
    ) -> Result<MilvusExportReport, InteropError> {
        let started = std::time::Instant::now();
        let state_path = state_path(workspace, &self.target);
        let fingerprint = EmbeddingStore::fingerprint(&set.matrix);
        let exists = self.prepare(&CollectionRecord::of(set), params, restart)?;
        let previous: Option<ExportState> = std::fs::read(&state_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let resumed_from = match previous {
            Some(state)
                if exists
                    && !restart
                    && state.uri == self.target.uri
                    && state.collection == self.target.collection
                    && state.embeddings_fingerprint == fingerprint =>
            {
                state.rows_done.min(set.items.len())
            }
            _ => 0,
        };
        let total = set.items.len();
        let mut done = resumed_from;
        while done < total {
            if cancel.is_cancelled() {
                return Err(self.err("export", "cancelled (run it again to resume)"));
            }
            let end = (done + BATCH_ROWS).min(total);
            self.upsert(set, done..end)?;
            done = end;
            let state = ExportState {
                uri: self.target.uri.clone(),
                collection: self.target.collection.clone(),
                embeddings_fingerprint: fingerprint.clone(),
                rows_done: done,
            };
            write_json_atomic(&state_path, &state).map_err(|e| InteropError::io(&state_path, e))?;
            progress.report(Progress {
                phase: "exporting to Milvus".into(),
                done,
                total,
            });
        }
        let flush = FlushRequest::builder()
            .collection_names([self.target.collection.clone()])
            .build()
            .map_err(|e| self.err("flush", e))?;
        self.runtime
            .block_on(self.client.flush(flush))
            .map_err(|e| self.err("flush", e))?;
        Ok(MilvusExportReport {
            sent: total - resumed_from,
            resumed_from,
            count: self.count()?,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// `milvus-export.<collection>.json` in the workspace: how far the last export got.
fn state_path(workspace: &Workspace, target: &MilvusTarget) -> PathBuf {
    workspace
        .dir()
        .join(format!("milvus-export.{}.json", target.collection))
}
