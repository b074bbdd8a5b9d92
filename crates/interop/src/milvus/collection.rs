//! natview's collections on the server: created with their schema, HNSW index and the record
//! of the embeddings they hold; checked against the embeddings a question is asked for.

use super::{
    CollectionRecord, InteropError, Milvus, Recorded, ID, LABEL, LISTING, METADATA, PATH, VECTOR,
};
use milvus::v2 as sdk;
use milvus::v2::prelude::{IndexParam, IndexType, MetricType};
use natview_index::HnswParams;
use std::collections::HashMap;

/// Why a collection cannot serve some embeddings.
enum Difference {
    /// A natview collection of other embeddings (or of unrecorded ones).
    Other(String),
    /// Not natview's.
    Foreign(String),
}

impl Milvus {
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

    /// Creates the collection for `record`'s embeddings (recorded in its description) with an
    /// HNSW index (cosine), and loads it.
    pub(super) fn create_collection(
        &self,
        record: &CollectionRecord,
        params: HnswParams,
    ) -> Result<(), InteropError> {
        let dimension = u32::try_from(record.dim).map_err(|_| {
            self.err(
                "create_collection",
                format!(
                    "vectors of {} values: beyond a Milvus dimension (u32)",
                    record.dim
                ),
            )
        })?;
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
                    .dimension(dimension),
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
            .description(super::record::DESCRIPTION)
            .properties(record.properties())
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

    /// What the collection's description says it holds.
    pub fn record(&self) -> Result<Recorded, InteropError> {
        let request = sdk::request::collection::DescribeCollectionRequest::builder()
            .collection_name(self.target.collection.clone())
            .build()
            .map_err(|e| self.err("describe_collection", e))?;
        let response = self
            .runtime
            .block_on(self.client.describe_collection(request))
            .map_err(|e| self.err("describe_collection", e))?;
        let description = response.description();
        Ok(CollectionRecord::read(
            description.get_properties(),
            description.get_description(),
            description.get_field_names(),
        ))
    }

    /// How the collection differs from the embeddings `wanted` records (`None`: it holds
    /// them).
    fn difference(&self, wanted: &CollectionRecord) -> Result<Option<Difference>, InteropError> {
        Ok(match self.record()? {
            Recorded::Record(held) => held
                .mismatch(wanted)
                .map(|d| Difference::Other(format!("it holds other embeddings: {d}"))),
            Recorded::Unrecorded => Some(Difference::Other(
                "it records no encoder or dataset (written by an older natview)".into(),
            )),
            Recorded::Foreign(what) => Some(Difference::Foreign(format!(
                "not a natview collection ({what}); choose another collection"
            ))),
        })
    }

    /// Checks that the collection holds the embeddings `wanted` records: an error names each
    /// difference (encoder, weights, dataset, items).
    pub fn check_holds(&self, wanted: &CollectionRecord) -> Result<(), InteropError> {
        if !self.has_collection()? {
            return Err(self.err(
                "no such collection",
                "write it with natview export DATASET --milvus URI --collection NAME",
            ));
        }
        match self.difference(wanted)? {
            None => Ok(()),
            Some(Difference::Foreign(problem)) => Err(self.err("refused", problem)),
            Some(Difference::Other(problem)) => Err(self.err(
                "refused",
                format!(
                    "{problem}; write this dataset's embeddings (the same --model) into it with \
                     natview export DATASET --milvus URI --collection NAME --restart"
                ),
            )),
        }
    }

    /// Loads the collection for search.
    pub(super) fn load(&self) -> Result<(), InteropError> {
        let request = sdk::request::collection::LoadCollectionRequest::builder()
            .collection_name(self.target.collection.clone())
            .build()
            .map_err(|e| self.err("load_collection", e))?;
        self.runtime
            .block_on(self.client.load_collection(request))
            .map_err(|e| self.err("load_collection", e))?;
        Ok(())
    }

    /// Makes the collection ready to receive `wanted`'s rows; whether it existed already,
    /// holding them. One holding other embeddings is refused, or with `restart` dropped and
    /// created anew; one that is not natview's is always refused.
    pub(super) fn prepare(
        &self,
        wanted: &CollectionRecord,
        params: HnswParams,
        restart: bool,
    ) -> Result<bool, InteropError> {
        if self.has_collection()? {
            match self.difference(wanted)? {
                None => {
                    self.load()?;
                    return Ok(true);
                }
                Some(Difference::Foreign(problem)) => return Err(self.err("refused", problem)),
                Some(Difference::Other(problem)) if !restart => {
                    return Err(self.err(
                        "refused",
                        format!("{problem}; --restart replaces it with these embeddings"),
                    ))
                }
                Some(Difference::Other(_)) => self.drop_collection()?,
            }
        }
        self.create_collection(wanted, params)?;
        Ok(false)
    }
}
