//! A Milvus collection as the home of embeddings that outgrow one machine (cargo feature
//! `milvus`, the official `milvus-sdk-rust` client over gRPC): natview writes a set into it in
//! batches — an idempotent upsert keyed by item id, with an HNSW index, resumable after a
//! failure — and asks it for neighbours, with metadata filters. Milvus shards and replicates;
//! natview stays the explorer.
//!
//! Each collection records which embeddings it holds ([`CollectionRecord`], in its
//! description); questions asked for other embeddings are refused, and every answer's stored
//! paths are checked against the dataset's. Credentials come from the environment only
//! ([`Credentials`]); `https://` servers are reached over TLS.

mod collection;
mod credentials;
mod export;
mod record;
mod search;

pub use credentials::{Credentials, CA_CERT_VAR, PASSWORD_VAR, TOKEN_VAR, USER_VAR};
pub use export::MilvusExportReport;
pub use record::{check_paths, CollectionRecord, Recorded};

use super::InteropError;
use milvus::v2 as sdk;
use milvus::v2::prelude::{
    ClientV2, ConnectConfig, DeleteRequest, QueryRequest, ResultRow, ResultValue, RetryConfig,
};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Fields of natview's collections.
const ID: &str = "id";
const VECTOR: &str = "embedding";
const PATH: &str = "path";
const LISTING: &str = "listing";
const LABEL: &str = "label";
const METADATA: &str = "metadata";
/// All of them, in schema order.
const FIELDS: [&str; 6] = [ID, VECTOR, PATH, LISTING, LABEL, METADATA];

/// The longest one request may take (a flush after millions of rows takes minutes).
const RPC_TIMEOUT: Duration = Duration::from_secs(900);

/// How long natview waits for a Milvus server to answer a connection before saying none does.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows sent per upsert.
pub const BATCH_ROWS: usize = 1000;

/// Where a collection lives: `milvus://host:port/collection` (or `http://…`; `https://…` for a
/// server reached over TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilvusTarget {
    /// The server's gRPC endpoint, `http://host:port` or `https://host:port`.
    pub uri: String,
    /// The collection.
    pub collection: String,
}

/// `(https, host:port)` of `milvus://…`, `http://…`, `https://…` or a bare `host:port`.
fn split_scheme(uri: &str) -> (bool, &str) {
    match uri.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (
            false,
            uri.strip_prefix("milvus://")
                .or_else(|| uri.strip_prefix("http://"))
                .unwrap_or(uri),
        ),
    }
}

impl MilvusTarget {
    /// From a server URI (`milvus://host:port`, `http://host:port`, `https://host:port` or
    /// `host:port`) and a collection name.
    pub fn new(uri: &str, collection: &str) -> Result<Self, String> {
        let (tls, rest) = split_scheme(uri);
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.contains('@') {
            return Err(format!("`{uri}`: expected milvus://HOST:PORT or https://HOST:PORT (credentials go in {TOKEN_VAR})"));
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
        let scheme = if tls { "https" } else { "http" };
        Ok(Self {
            uri: format!("{scheme}://{rest}"),
            collection: collection.to_string(),
        })
    }

    /// From `milvus://host:port/collection` (or `http://…`, `https://…`).
    pub fn parse(backend: &str) -> Result<Self, String> {
        let usage = || format!("`{backend}`: expected milvus://HOST:PORT/COLLECTION");
        let (tls, rest) = split_scheme(backend);
        if rest.len() == backend.len() {
            return Err(usage());
        }
        let (host, collection) = rest.split_once('/').ok_or_else(usage)?;
        let scheme = if tls { "https://" } else { "milvus://" };
        Self::new(&format!("{scheme}{host}"), collection.trim_end_matches('/'))
    }

    /// `milvus://host:port/collection` (`https://…` over TLS), for messages.
    pub fn display(&self) -> String {
        match self.uri.strip_prefix("https://") {
            Some(rest) => format!("https://{rest}/{}", self.collection),
            None => format!(
                "milvus://{}/{}",
                self.uri.trim_start_matches("http://"),
                self.collection
            ),
        }
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

/// A connection to one Milvus server, with the runtime its async client runs on.
pub struct Milvus {
    runtime: tokio::runtime::Runtime,
    client: ClientV2,
    target: MilvusTarget,
}

/// Whether a server's error says that the credentials were missing or wrong.
fn refused_login(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    error.contains("unauthenticated")
        || error.contains("auth check fail")
        || error.contains("authorization")
        || error.contains("incorrect username or password")
}

/// What to check when a connection fails with `error`: an `https://` server's certificate
/// authority, or whether a plain `milvus://` server that broke the connection expects TLS.
fn tls_hint(target: &MilvusTarget, error: &str) -> String {
    if target.uri.starts_with("https://") {
        format!(
            " (over TLS: a server certificate from a CA this machine does not trust fails too; \
             give the CA's PEM file in {CA_CERT_VAR})"
        )
    } else if error.contains("transport error") {
        " (a server that expects TLS is reached with https://HOST:PORT)".to_string()
    } else {
        String::new()
    }
}

/// The server's own words in a gRPC error (`… message: "…", details: …`), else all of it.
fn grpc_message(error: &str) -> &str {
    error
        .split_once("message: \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or(error, |(message, _)| message)
}

fn failure(target: &MilvusTarget, what: &str, error: impl std::fmt::Display) -> InteropError {
    InteropError::io(Path::new(&target.display()), format!("{what}: {error}"))
}

impl Milvus {
    /// Connects with the [`Credentials`] of the environment (failing within `timeout` when
    /// no server answers).
    pub fn connect(target: &MilvusTarget, timeout: Duration) -> Result<Self, InteropError> {
        let credentials = Credentials::from_env().map_err(|e| failure(target, "credentials", e))?;
        Self::connect_with(target, timeout, &credentials)
    }

    /// Connects with `credentials` (failing within `timeout` when no server answers; a
    /// refused login says which credentials were sent, never their secret).
    pub fn connect_with(
        target: &MilvusTarget,
        timeout: Duration,
        credentials: &Credentials,
    ) -> Result<Self, InteropError> {
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
        let config = credentials.apply(config);
        let client = runtime
            .block_on(async {
                tokio::time::timeout(timeout + Duration::from_secs(1), ClientV2::new(&config)).await
            })
            .map_err(|_| {
                failure(
                    target,
                    "no Milvus server answered",
                    format!(
                        "timed out after {:.0} s{}",
                        timeout.as_secs_f64(),
                        tls_hint(target, "")
                    ),
                )
            })?
            .map_err(|e| {
                let text = e.to_string();
                match refused_login(&text) {
                    true => failure(
                        target,
                        "the Milvus server refused the login",
                        format!("sent {}: {}", credentials.source(), grpc_message(&text)),
                    ),
                    false => failure(
                        target,
                        "cannot connect to Milvus",
                        format!("{text}{}", tls_hint(target, &text)),
                    ),
                }
            })?;
        Ok(Self {
            runtime,
            client,
            target: target.clone(),
        })
    }

    fn err(&self, what: &str, error: impl std::fmt::Display) -> InteropError {
        failure(&self.target, what, error)
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
        assert_eq!(
            MilvusTarget::parse("http://x:1/c").expect("http").uri,
            "http://x:1"
        );
        assert!(MilvusTarget::parse("x:1/c").is_err());
        assert!(MilvusTarget::parse("milvus://x:1").is_err());
        assert!(MilvusTarget::parse("milvus://u:p@x:1/c").is_err());
        assert!(MilvusTarget::new("x:1", "bad-name").is_err());
        assert!(MilvusTarget::new("x:1", "1abc").is_err());
        assert_eq!(
            MilvusTarget::new("milvus://h:2", "c").expect("ok").uri,
            "http://h:2"
        );
    }

    #[test]
    fn https_targets_keep_tls() {
        let t = MilvusTarget::parse("https://milvus.example.com:443/c").expect("parses");
        assert_eq!(t.uri, "https://milvus.example.com:443");
        assert_eq!(t.display(), "https://milvus.example.com:443/c");
        let t = MilvusTarget::new("https://h:19530/", "c").expect("ok");
        assert_eq!(t.uri, "https://h:19530");
    }

    #[test]
    fn refused_logins_are_told_from_other_failures() {
        assert!(refused_login(
            "gRPC error: status: Unauthenticated, message: \"auth check failure\""
        ));
        assert!(!refused_login(
            "gRPC error: status: Unavailable, message: \"tcp connect error\""
        ));
        assert_eq!(
            grpc_message("status: Unauthenticated, message: \"auth check failure\", details: []"),
            "auth check failure"
        );
        assert_eq!(grpc_message("timed out"), "timed out");
    }
}
