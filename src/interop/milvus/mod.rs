//! A Milvus collection as the home of embeddings that outgrow one machine (cargo feature
//! `milvus`, the official `milvus-sdk-rust` client over gRPC): natview writes a set into it in
//! batches — an idempotent upsert keyed by item id, with an HNSW index, resumable after a
//! failure — and asks it for neighbours, with metadata filters. Milvus shards and replicates;
//! natview stays the explorer.

use super::InteropError;
use crate::index::HnswParams;
use crate::jobs::{CancelFlag, Progress, ProgressSink};
use crate::pipeline::EmbeddingSet;
use crate::workspace::{write_json_atomic, EmbeddingStore, Workspace};
use milvus::v2 as sdk;
use milvus::v2::prelude::{
    ClientV2, ConnectConfig, DeleteRequest, FieldData, FlushRequest, IndexParam, IndexType,
    InsertRequest, MetricType, QueryRequest, ResultRow, ResultValue, RetryConfig, SearchRequest,
    SearchVectors, UpsertRequest,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Fields of natview's collections.
const ID: &str = "id";
const VECTOR: &str = "embedding";
const PATH: &str = "path";
const LISTING: &str = "listing";
const LABEL: &str = "label";
const METADATA: &str = "metadata";

/// The longest one request may take (a flush after millions of rows takes minutes).
const RPC_TIMEOUT: Duration = Duration::from_secs(900);

/// How long natview waits for a Milvus server to answer a connection before saying none does.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows sent per upsert.
pub const BATCH_ROWS: usize = 1000;

/// Where a collection lives: `milvus://host:port/collection` (or `http://…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilvusTarget {
    /// The server's gRPC endpoint, `http://host:port`.
    pub uri: String,
    /// The collection.
    pub collection: String,
}

impl MilvusTarget {
    /// From a server URI (`milvus://host:port`, `http://host:port` or `host:port`) and a
    /// collection name.
    pub fn new(uri: &str, collection: &str) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("milvus://")
            .or_else(|| uri.strip_prefix("http://"))
            .unwrap_or(uri)
            .trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(format!("`{uri}`: expected milvus://HOST:PORT"));
        }
        let valid = !collection.is_empty()
            && collection
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !collection.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!(
                "`{collection}`: a Milvus collection name is letters, digits and `_`, not starting with a digit"
            ));
        }
        Ok(Self {
            uri: format!("http://{rest}"),
            collection: collection.to_string(),
        })
    }

    /// From `milvus://host:port/collection`.
    pub fn parse(backend: &str) -> Result<Self, String> {
        let rest = backend
            .strip_prefix("milvus://")
            .ok_or_else(|| format!("`{backend}`: expected milvus://HOST:PORT/COLLECTION"))?;
        let (host, collection) = rest
            .split_once('/')
            .ok_or_else(|| format!("`{backend}`: expected milvus://HOST:PORT/COLLECTION"))?;
        Self::new(host, collection.trim_end_matches('/'))
    }

    /// `milvus://host:port/collection`, for messages.
    pub fn display(&self) -> String {
        format!(
            "milvus://{}/{}",
            self.uri.trim_start_matches("http://"),
            self.collection
        )
    }
}

/// A neighbour found by Milvus, with the fields stored beside its vector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MilvusHit {
    /// The item id (the dataset's row).
    pub id: usize,
    /// Cosine similarity.
    pub similarity: f32,
    /// The image path.
    pub path: String,
    /// The listing.
    pub listing: String,
    /// The label (empty when none).
    pub label: String,
}

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

/// A connection to one Milvus server, with the runtime its async client runs on.
pub struct Milvus {
    runtime: tokio::runtime::Runtime,
    client: ClientV2,
    target: MilvusTarget,
}

fn failure(target: &MilvusTarget, what: &str, error: impl std::fmt::Display) -> InteropError {
    InteropError::io(Path::new(&target.display()), format!("{what}: {error}"))
}

impl Milvus {
    /// Connects (failing within `timeout` when no server answers).
    pub fn connect(target: &MilvusTarget, timeout: Duration) -> Result<Self, InteropError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failure(target, "starting the client", e))?;
        let config = ConnectConfig::new()
            .uri(target.uri.clone())
            .connect_timeout(timeout)
            // A flush of millions of rows takes minutes; a dead server fails the connect above.
            .rpc_timeout(RPC_TIMEOUT)
            .retry(
                RetryConfig::new()
                    .max_attempts(3)
                    .max_retry_timeout(RPC_TIMEOUT),
            );
        let client = runtime
            .block_on(async {
                tokio::time::timeout(timeout + Duration::from_secs(1), ClientV2::new(&config)).await
            })
            .map_err(|_| {
                failure(
                    target,
                    "no Milvus server answered",
                    format!("timed out after {:.0} s", timeout.as_secs_f64()),
                )
            })?
            .map_err(|e| failure(target, "cannot connect to Milvus", e))?;
        Ok(Self {
            runtime,
            client,
            target: target.clone(),
        })
    }

    fn err(&self, what: &str, error: impl std::fmt::Display) -> InteropError {
        failure(&self.target, what, error)
    }

    /// Whether the collection exists.
    pub fn has_collection(&self) -> Result<bool, InteropError> {
        let request = sdk::request::collection::HasCollectionRequest::builder()
            .collection_name(self.target.collection.clone())
            .build()
            .map_err(|e| self.err("has_collection", e))?;
        let response = self
            .runtime
            .block_on(self.client.has_collection(request))
            .map_err(|e| self.err("has_collection", e))?;
        Ok(response.exists())
    }

    /// Drops the collection (if it exists).
    pub fn drop_collection(&self) -> Result<(), InteropError> {
        if !self.has_collection()? {
            return Ok(());
        }
        let request = sdk::request::collection::DropCollectionRequest::builder()
            .collection_name(self.target.collection.clone())
            .build()
            .map_err(|e| self.err("drop_collection", e))?;
        self.runtime
            .block_on(self.client.drop_collection(request))
            .map_err(|e| self.err("drop_collection", e))?;
        Ok(())
    }

    /// Creates the collection for `dim`-d vectors with an HNSW index (cosine), and loads it.
    fn create_collection(&self, dim: usize, params: HnswParams) -> Result<(), InteropError> {
        let schema = sdk::CollectionSchema::new()
            .add_field(
                sdk::FieldSchema::new()
                    .name(ID)
                    .data_type(sdk::DataType::Int64)
                    .primary_key(true),
            )
            .add_field(
                sdk::FieldSchema::new()
                    .name(VECTOR)
                    .data_type(sdk::DataType::FloatVector)
                    .dimension(dim as u32),
            )
            .add_field(
                sdk::FieldSchema::new()
                    .name(PATH)
                    .data_type(sdk::DataType::VarChar)
                    .max_length(4096),
            )
            .add_field(
                sdk::FieldSchema::new()
                    .name(LISTING)
                    .data_type(sdk::DataType::VarChar)
                    .max_length(1024),
            )
            .add_field(
                sdk::FieldSchema::new()
                    .name(LABEL)
                    .data_type(sdk::DataType::VarChar)
                    .max_length(1024),
            )
            .add_field(
                sdk::FieldSchema::new()
                    .name(METADATA)
                    .data_type(sdk::DataType::Json),
            );
        let index = IndexParam::new()
            .field_name(VECTOR)
            .index_type(IndexType::Hnsw)
            .metric_type(MetricType::Cosine)
            .extra_params(HashMap::from([
                ("M".into(), params.max_connections.to_string()),
                ("efConstruction".into(), params.ef_construction.to_string()),
            ]));
        let request = sdk::request::collection::CreateCollectionRequest::builder()
            .collection_name(self.target.collection.clone())
            .description("natview embeddings")
            .schema(schema)
            .index_params(vec![index])
            .consistency_level(sdk::ConsistencyLevel::Strong)
            .build()
            .map_err(|e| self.err("create_collection", e))?;
        self.runtime
            .block_on(self.client.create_collection(request))
            .map_err(|e| self.err("create_collection", e))?;
        self.load()
    }

    /// Loads the collection for search.
    fn load(&self) -> Result<(), InteropError> {
        let request = sdk::request::collection::LoadCollectionRequest::builder()
            .collection_name(self.target.collection.clone())
            .build()
            .map_err(|e| self.err("load_collection", e))?;
        self.runtime
            .block_on(self.client.load_collection(request))
            .map_err(|e| self.err("load_collection", e))?;
        Ok(())
    }

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

    /// Rows in the collection (strong consistency: every acknowledged write counted).
    pub fn count(&self) -> Result<u64, InteropError> {
        let request = QueryRequest::builder()
            .collection_name(self.target.collection.clone())
            .output_fields(["count(*)"])
            .consistency_level(sdk::ConsistencyLevel::Strong)
            .build()
            .map_err(|e| self.err("count", e))?;
        let response = self
            .runtime
            .block_on(self.client.query(request))
            .map_err(|e| self.err("count", e))?;
        let row = response
            .results()
            .rows()
            .map_err(|e| self.err("count", e))?
            .next()
            .ok_or_else(|| self.err("count", "no row"))?;
        let count = row.get_i64("count(*)").map_err(|e| self.err("count", e))?;
        Ok(count.max(0) as u64)
    }

    /// Deletes items by id.
    pub fn delete(&self, ids: &[usize]) -> Result<(), InteropError> {
        let list: Vec<String> = ids.iter().map(usize::to_string).collect();
        let request = DeleteRequest::builder()
            .collection_name(self.target.collection.clone())
            .filter(format!("{ID} in [{}]", list.join(", ")))
            .build()
            .map_err(|e| self.err("delete", e))?;
        self.runtime
            .block_on(self.client.delete(request))
            .map_err(|e| self.err("delete", e))?;
        Ok(())
    }

    /// Reads the first row of item `id` with `fields` (`None` when the collection has no such
    /// item), strongly consistent.
    fn item_row<T>(
        &self,
        id: usize,
        fields: &[&str],
        read: impl FnOnce(&ResultRow<'_>) -> Result<T, InteropError>,
    ) -> Result<Option<T>, InteropError> {
        let request = QueryRequest::builder()
            .collection_name(self.target.collection.clone())
            .filter(format!("{ID} == {id}"))
            .output_fields(fields.iter().copied())
            .consistency_level(sdk::ConsistencyLevel::Strong)
            .build()
            .map_err(|e| self.err("query", e))?;
        let response = self
            .runtime
            .block_on(self.client.query(request))
            .map_err(|e| self.err("query", e))?;
        let mut rows = response
            .results()
            .rows()
            .map_err(|e| self.err("query", e))?;
        rows.next().map(|row| read(&row)).transpose()
    }

    /// The stored vector of item `id` (`None` when the collection has no such item).
    pub fn vector(&self, id: usize) -> Result<Option<Vec<f32>>, InteropError> {
        self.item_row(id, &[VECTOR], |row| {
            match row.get(VECTOR).map_err(|e| self.err("query", e))? {
                ResultValue::FloatVector(values) => Ok(values.to_vec()),
                other => Err(self.err("query", format!("unexpected vector value {other:?}"))),
            }
        })
    }

    /// The stored metadata of item `id` (path, listing, label, metadata as JSON).
    pub fn fields(&self, id: usize) -> Result<Option<serde_json::Value>, InteropError> {
        self.item_row(id, &[PATH, LISTING, LABEL, METADATA], |row| {
            let entity = row.to_entity_row().map_err(|e| self.err("query", e))?;
            Ok(serde_json::Value::Object(entity))
        })
    }

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
        for result in response.results() {
            for row in result.rows().map_err(|e| self.err("search", e))? {
                let id = row.get_i64(ID).map_err(|e| self.err("search", e))?;
                let similarity = row.get_f32("score").map_err(|e| self.err("search", e))?;
                let text = |name: &str| row.get_str(name).map(str::to_string).unwrap_or_default();
                hits.push(MilvusHit {
                    id: id.max(0) as usize,
                    similarity,
                    path: text(PATH),
                    listing: text(LISTING),
                    label: text(LABEL),
                });
            }
        }
        Ok(hits)
    }

    /// Writes `set` into the collection in batches of [`BATCH_ROWS`] (creating it with an HNSW
    /// index when missing), resuming after the rows an interrupted run of the same embeddings
    /// recorded in `workspace`; `restart` sends everything again.
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
        let exists = self.has_collection()?;
        if !exists {
            self.create_collection(set.matrix.dim, params)?;
        } else {
            self.load()?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_are_refused() {
        let t = MilvusTarget::parse("milvus://127.0.0.1:19530/demo_v1").expect("parses");
        assert_eq!(t.uri, "http://127.0.0.1:19530");
        assert_eq!(t.collection, "demo_v1");
        assert_eq!(t.display(), "milvus://127.0.0.1:19530/demo_v1");
        assert!(MilvusTarget::parse("http://x:1/c").is_err());
        assert!(MilvusTarget::parse("milvus://x:1").is_err());
        assert!(MilvusTarget::new("x:1", "bad-name").is_err());
        assert!(MilvusTarget::new("x:1", "1abc").is_err());
        assert_eq!(
            MilvusTarget::new("milvus://h:2", "c").expect("ok").uri,
            "http://h:2"
        );
    }
}
