//! safetensors files read tensor by tensor: the JSON header is parsed and checked against the
//! file's length, and a tensor's bytes are read (f32, f16, bf16 or f64, converted to f32) only
//! when it is asked for, so a large or sharded checkpoint never sits in memory whole. The
//! files are not memory-mapped: they belong to the user and may change while natview runs.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The largest header read (a checkpoint's is at most a few MB).
const MAX_HEADER_BYTES: u64 = 100 << 20;

/// Where a tensor's bytes are.
#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    start: u64,
    len: u64,
}

#[derive(Debug, Clone, Copy)]
enum Dtype {
    F32,
    F16,
    Bf16,
    F64,
}

impl Dtype {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "F32" => Some(Dtype::F32),
            "F16" => Some(Dtype::F16),
            "BF16" => Some(Dtype::Bf16),
            "F64" => Some(Dtype::F64),
            _ => None,
        }
    }

    fn size(self) -> u64 {
        match self {
            Dtype::F16 | Dtype::Bf16 => 2,
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// One or several safetensors files (a sharded checkpoint's shards) as one set of tensors.
#[derive(Debug)]
pub(crate) struct SafetensorsFiles {
    files: Vec<PathBuf>,
    tensors: HashMap<String, Entry>,
    /// The first file's `__metadata__` value under `natview` (JSON), when natview wrote it.
    natview: Option<serde_json::Value>,
}

impl SafetensorsFiles {
    /// Reads the headers of `files`; a name in two shards is an error.
    pub fn open(files: &[PathBuf]) -> Result<Self, String> {
        let mut tensors = HashMap::new();
        let mut natview = None;
        for (index, path) in files.iter().enumerate() {
            let (entries, meta) =
                read_header(path, index).map_err(|e| format!("{}: {e}", path.display()))?;
            natview = natview.or(meta);
            for (name, entry) in entries {
                if tensors.insert(name.clone(), entry).is_some() {
                    return Err(format!("tensor `{name}` is in two shards"));
                }
            }
        }
        Ok(Self {
            files: files.to_vec(),
            tensors,
            natview,
        })
    }

    /// What natview wrote about the weights (a fine-tune's `WeightsMeta`), if it wrote them.
    pub fn natview_meta(&self) -> Option<&serde_json::Value> {
        self.natview.as_ref()
    }

    /// Each floating-point tensor's shape (integer tensors, e.g. position ids, are left out).
    pub fn shapes(&self) -> impl Iterator<Item = (&String, &Vec<usize>)> {
        self.tensors.iter().map(|(name, e)| (name, &e.shape))
    }

    /// A tensor's values as f32, and its shape.
    pub fn read(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), String> {
        let entry = self.tensors.get(name).ok_or("missing")?;
        let path = &self.files[entry.file];
        let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        file.seek(SeekFrom::Start(entry.start))
            .map_err(|e| e.to_string())?;
        let len = usize::try_from(entry.len).map_err(|e| e.to_string())?;
        let mut bytes = vec![0u8; len];
        file.read_exact(&mut bytes).map_err(|e| {
            format!(
                "{}: {e} (the file is shorter than its header says)",
                path.display()
            )
        })?;
        let values = match entry.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::Bf16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|b| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    f64::from_le_bytes(a) as f32
                })
                .collect(),
        };
        Ok((values, entry.shape.clone()))
    }
}

/// Whether `path` starts like a safetensors file (an 8-byte length, then a JSON object).
pub(crate) fn looks_like_safetensors(start: &[u8]) -> bool {
    start.len() > 9 && start[8] == b'{'
}

type Header = (Vec<(String, Entry)>, Option<serde_json::Value>);

fn read_header(path: &Path, index: usize) -> Result<Header, String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| "too short for a safetensors file".to_string())?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER_BYTES || header_len + 8 > file_len {
        return Err(format!(
            "not a safetensors file (header of {header_len} bytes in a file of {file_len})"
        ));
    }
    let mut header = vec![0u8; usize::try_from(header_len).map_err(|e| e.to_string())?];
    file.read_exact(&mut header).map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| format!("not a safetensors file (header: {e})"))?;
    let object = json
        .as_object()
        .ok_or("not a safetensors file (header is not an object)")?;
    let data_start = 8 + header_len;
    let data_len = file_len - data_start;
    let mut out = Vec::new();
    let natview = object
        .get("__metadata__")
        .and_then(|m| m.get("natview"))
        .and_then(serde_json::Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok());
    for (name, info) in object {
        if name == "__metadata__" {
            continue;
        }
        let dtype_name = info["dtype"].as_str().unwrap_or("");
        let Some(dtype) = Dtype::parse(dtype_name) else {
            // Integer buffers (position ids, counters) are not weights.
            continue;
        };
        let shape: Vec<usize> = info["shape"]
            .as_array()
            .ok_or(format!("tensor `{name}` has no shape"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or(format!("tensor `{name}` has a bad shape"))?;
        let offsets: Vec<u64> = info["data_offsets"]
            .as_array()
            .ok_or(format!("tensor `{name}` has no data offsets"))?
            .iter()
            .filter_map(serde_json::Value::as_u64)
            .collect();
        let [begin, end] = offsets[..] else {
            return Err(format!("tensor `{name}` has bad data offsets"));
        };
        let elements = shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .ok_or(format!("tensor `{name}` is too large"))?;
        if end < begin || end > data_len || end - begin != elements * dtype.size() {
            return Err(format!(
                "tensor `{name}` ({dtype_name} {shape:?}) does not fit its bytes {begin}..{end} \
                 of {data_len}"
            ));
        }
        out.push((
            name.clone(),
            Entry {
                file: index,
                dtype,
                shape,
                start: data_start + begin,
                len: end - begin,
            },
        ));
    }
    Ok((out, natview))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_and_single_precision_tensors_read_back_and_a_short_file_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("m.safetensors");
        let a = candle_core::Tensor::new(&[[1f32, -2.5], [3.0, 0.125]], &candle_core::Device::Cpu)
            .expect("a");
        let b = a.to_dtype(candle_core::DType::BF16).expect("bf16");
        let c = a.to_dtype(candle_core::DType::F16).expect("f16");
        let ids = candle_core::Tensor::new(&[0u32, 1], &candle_core::Device::Cpu).expect("ids");
        candle_core::safetensors::save(
            &HashMap::from([("a", a), ("b", b), ("c", c), ("ids", ids)]),
            &path,
        )
        .expect("save");
        let files = SafetensorsFiles::open(std::slice::from_ref(&path)).expect("open");
        for name in ["a", "b", "c"] {
            let (values, shape) = files.read(name).expect("read");
            assert_eq!(shape, vec![2, 2]);
            assert_eq!(values, vec![1.0, -2.5, 3.0, 0.125], "{name}");
        }
        assert_eq!(files.shapes().count(), 3, "integer tensors are left out");
        let bytes = std::fs::read(&path).expect("bytes");
        std::fs::write(&path, &bytes[..bytes.len() - 4]).expect("truncate");
        let err = SafetensorsFiles::open(std::slice::from_ref(&path)).expect_err("short");
        assert!(err.contains("does not fit"), "{err}");
    }
}
