//! Parquet through Arrow: vectors from a list-of-floats column (with an optional `path` column
//! to match rows to images), and a set written as `id`, `path`, `listing`, `label`, `metadata`
//! (JSON text) and `embedding` (fixed-size list of float32).

use super::{InteropError, Vectors};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Float32Type, Float64Type};
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, GenericListArray, OffsetSizeTrait,
    RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use natview_core::linalg::Matrix;
use natview_pipeline::EmbeddingSet;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use std::path::Path;
use std::sync::Arc;

/// Whether a column holds one vector per row (a list of floats).
fn is_vector_column(data_type: &DataType) -> bool {
    let inner = match data_type {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f,
        _ => return false,
    };
    matches!(
        inner.data_type(),
        DataType::Float16 | DataType::Float32 | DataType::Float64
    )
}

/// The values of a float array as f32.
fn floats(path: &Path, values: &ArrayRef) -> Result<Vec<f32>, InteropError> {
    if values.null_count() > 0 {
        return Err(InteropError::invalid(path, "the vectors hold null values"));
    }
    Ok(match values.data_type() {
        DataType::Float32 => values.as_primitive::<Float32Type>().values().to_vec(),
        DataType::Float64 => values
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .map(|&v| natview_core::linalg::narrow(v))
            .collect(),
        DataType::Float16 => values
            .as_primitive::<Float16Type>()
            .values()
            .iter()
            .map(|v| v.to_f32())
            .collect(),
        other => {
            return Err(InteropError::invalid(
                path,
                format!("vector values of type {other}; expected floats"),
            ))
        }
    })
}

/// A list column's row offsets (from 0) and the values its rows span; offsets that do not
/// rise or that reach past the values (a damaged file) are an error, not a panic.
fn list_parts<O: OffsetSizeTrait>(
    path: &Path,
    list: &GenericListArray<O>,
) -> Result<(Vec<usize>, ArrayRef), InteropError> {
    let offsets = list.value_offsets();
    let damaged = || InteropError::invalid(path, "the vector column's list offsets are damaged");
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else {
        return Err(damaged());
    };
    let (base, end) = (first.as_usize(), last.as_usize());
    if offsets.windows(2).any(|w| w[1] < w[0]) || end > list.values().len() {
        return Err(damaged());
    }
    Ok((
        offsets.iter().map(|o| o.as_usize() - base).collect(),
        list.values().slice(base, end - base),
    ))
}

/// Appends one batch's vectors to `data`, checking every row has `dim` values.
fn append_vectors(
    path: &Path,
    column: &ArrayRef,
    first_row: usize,
    dim: &mut Option<usize>,
    data: &mut Vec<f32>,
) -> Result<(), InteropError> {
    if column.null_count() > 0 {
        let row = (0..column.len()).find(|&i| column.is_null(i)).unwrap_or(0);
        return Err(InteropError::invalid(
            path,
            format!("row {} has no vector (null)", first_row + row),
        ));
    }
    let (offsets, values): (Vec<usize>, ArrayRef) = match column.data_type() {
        DataType::List(_) => list_parts(path, column.as_list::<i32>())?,
        DataType::LargeList(_) => list_parts(path, column.as_list::<i64>())?,
        DataType::FixedSizeList(_, size) => {
            let list = column.as_fixed_size_list();
            let size = usize::try_from(*size).unwrap_or(0);
            let span = |rows: usize| rows.checked_mul(size);
            let (Some(start), Some(len)) = (span(list.offset()), span(list.len())) else {
                return Err(InteropError::invalid(
                    path,
                    "the vector column is too large",
                ));
            };
            if start
                .checked_add(len)
                .is_none_or(|end| end > list.values().len())
            {
                return Err(InteropError::invalid(
                    path,
                    "the vector column holds fewer values than its rows need",
                ));
            }
            (
                (0..=list.len()).map(|i| i * size).collect(),
                list.values().slice(start, len),
            )
        }
        other => {
            return Err(InteropError::invalid(
                path,
                format!("column of type {other} is not a vector column"),
            ))
        }
    };
    for (i, pair) in offsets.windows(2).enumerate() {
        let len = pair[1] - pair[0];
        match dim {
            None => *dim = Some(len),
            Some(d) if *d != len => {
                return Err(InteropError::invalid(
                    path,
                    format!(
                        "row {} has {len} values, earlier rows {d}: every vector needs the same dimension",
                        first_row + i
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    data.extend(floats(path, &values)?);
    Ok(())
}

/// Reads the vectors of a Parquet file: `column`, else the only vector column; and the
/// `path` column when there is one.
pub fn read_vectors(path: &Path, column: Option<&str>) -> Result<Vectors, InteropError> {
    let file = std::fs::File::open(path).map_err(|e| InteropError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| InteropError::invalid(path, format!("not a Parquet file: {e}")))?;
    let schema = builder.schema().clone();
    let vector_columns: Vec<&str> = schema
        .fields()
        .iter()
        .filter(|f| is_vector_column(f.data_type()))
        .map(|f| f.name().as_str())
        .collect();
    let chosen = match column {
        Some(name) => {
            let field = schema.field_with_name(name).map_err(|_| {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                InteropError::invalid(
                    path,
                    format!("no column `{name}` (columns: {})", names.join(", ")),
                )
            })?;
            if !is_vector_column(field.data_type()) {
                return Err(InteropError::invalid(
                    path,
                    format!(
                        "column `{name}` is {}, not a list of floats",
                        field.data_type()
                    ),
                ));
            }
            name.to_string()
        }
        None => match vector_columns.as_slice() {
            [only] => only.to_string(),
            [] => {
                return Err(InteropError::invalid(
                    path,
                    "no list-of-floats column to read vectors from",
                ))
            }
            many => {
                return Err(InteropError::invalid(
                    path,
                    format!(
                        "several vector columns ({}): choose one with --column",
                        many.join(", ")
                    ),
                ))
            }
        },
    };
    let path_column = schema
        .field_with_name("path")
        .ok()
        .filter(|f| matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8))
        .map(|f| f.name().clone());
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| InteropError::invalid(path, e))?;
    let (mut data, mut dim, mut rows) = (Vec::new(), None, 0usize);
    let mut paths: Option<Vec<String>> = path_column.as_ref().map(|_| Vec::new());
    for batch in reader {
        let batch = batch.map_err(|e| InteropError::invalid(path, e))?;
        let vectors = batch
            .column_by_name(&chosen)
            .ok_or_else(|| InteropError::invalid(path, format!("no column `{chosen}`")))?;
        append_vectors(path, vectors, rows, &mut dim, &mut data)?;
        if let (Some(name), Some(paths)) = (&path_column, paths.as_mut()) {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| InteropError::invalid(path, "no `path` column"))?;
            for i in 0..column.len() {
                if column.is_null(i) {
                    return Err(InteropError::invalid(
                        path,
                        format!("row {} has no path", rows + i),
                    ));
                }
                paths.push(match column.data_type() {
                    DataType::LargeUtf8 => column.as_string::<i64>().value(i).to_string(),
                    _ => column.as_string::<i32>().value(i).to_string(),
                });
            }
        }
        rows += batch.num_rows();
    }
    Ok(Vectors {
        matrix: Matrix {
            rows,
            dim: dim.unwrap_or(0),
            data,
        },
        paths,
    })
}

/// Writes `set` as one Parquet file (through a temporary file and a rename).
pub fn write_set(set: &EmbeddingSet, out: &Path) -> Result<(), InteropError> {
    let dim = set.matrix.dim;
    let list_size = i32::try_from(dim).map_err(|_| {
        InteropError::io(
            out,
            format!(
                "{dim} values per vector; a Parquet list holds {} at most",
                i32::MAX
            ),
        )
    })?;
    let item_field = Arc::new(Field::new("item", DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("listing", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, true),
        Field::new("metadata", DataType::Utf8, false),
        Field::new(
            "embedding",
            DataType::FixedSizeList(item_field.clone(), list_size),
            false,
        ),
    ]));
    // The temporary file of one atomic writer: removed if anything below fails.
    let file =
        natview_core::workspace::AtomicFile::create(out).map_err(|e| InteropError::io(out, e))?;
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), None).map_err(|e| InteropError::io(out, e))?;
    const BATCH: usize = 16_384;
    for (b, items) in set.items.chunks(BATCH).enumerate() {
        let first = b * BATCH;
        let metadata: Vec<String> = items
            .iter()
            .map(|item| {
                let map: serde_json::Map<String, serde_json::Value> = item
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
                    .collect();
                serde_json::Value::Object(map).to_string()
            })
            .collect();
        let values =
            Float32Array::from(set.matrix.data[first * dim..(first + items.len()) * dim].to_vec());
        let embedding =
            FixedSizeListArray::try_new(item_field.clone(), list_size, Arc::new(values), None)
                .map_err(|e| InteropError::io(out, e))?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(
                items.iter().map(|i| i.id as u64),
            )),
            Arc::new(StringArray::from_iter_values(
                items.iter().map(|i| i.path.to_string_lossy().into_owned()),
            )),
            Arc::new(StringArray::from_iter_values(
                items.iter().map(|i| i.listing.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                items.iter().map(|i| i.label.as_deref()),
            )),
            Arc::new(StringArray::from_iter_values(metadata.iter())),
            Arc::new(embedding),
        ];
        let batch =
            RecordBatch::try_new(schema.clone(), columns).map_err(|e| InteropError::io(out, e))?;
        writer.write(&batch).map_err(|e| InteropError::io(out, e))?;
    }
    let file = writer.into_inner().map_err(|e| InteropError::io(out, e))?;
    file.commit().map_err(|e| InteropError::io(out, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Float32Type;
    use arrow_array::ListArray;

    /// A Parquet file of 6 three-value vectors (a list column) and their paths.
    fn valid_file(path: &Path) -> Vec<u8> {
        let vectors = ListArray::from_iter_primitive::<Float32Type, _, _>(
            (0..6).map(|i| Some((0..3).map(move |k| Some((i * 3 + k) as f32)))),
        );
        let paths = StringArray::from_iter_values((0..6).map(|i| format!("l{i}/a.png")));
        let batch = RecordBatch::try_from_iter([
            ("path", Arc::new(paths) as ArrayRef),
            ("vec", Arc::new(vectors) as ArrayRef),
        ])
        .expect("batch");
        let file = std::fs::File::create(path).expect("create");
        let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        std::fs::read(path).expect("read")
    }

    #[test]
    fn a_valid_file_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.parquet");
        valid_file(&path);
        let vectors = read_vectors(&path, None).expect("read");
        assert_eq!((vectors.matrix.rows, vectors.matrix.dim), (6, 3));
        assert_eq!(vectors.matrix.row(5), &[15.0, 16.0, 17.0]);
        assert_eq!(vectors.paths.expect("paths")[2], "l2/a.png");
    }

    proptest::proptest! {
        #![proptest_config(natview_testkit::config())]

        #[test]
        fn damaged_parquet_files_are_refused_or_consistent(
            changes in natview_testkit::mutations()
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("v.parquet");
            let bytes = valid_file(&path);
            std::fs::write(&path, natview_testkit::apply(&bytes, &changes)).expect("write");
            if let Ok(vectors) = read_vectors(&path, None) {
                let m = vectors.matrix;
                proptest::prop_assert_eq!(m.rows * m.dim, m.data.len());
                if let Some(paths) = vectors.paths {
                    proptest::prop_assert_eq!(paths.len(), m.rows);
                }
            }
        }
    }
}
