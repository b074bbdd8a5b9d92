//! NumPy `.npy` files of little-endian `float32` in C order: how natview exchanges vectors,
//! image batches and outputs with Python tools (the benchmarks against PyTorch, FAISS, hnswlib
//! and scikit-learn read and write them).

use crate::linalg::Matrix;
use crate::workspace::write_atomic;
use std::path::{Path, PathBuf};

/// Errors reading or writing `.npy` files.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file is not a `.npy` array natview can use.
    #[error("{path}: not a usable .npy array: {message}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// An n-dimensional `float32` array.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Extent of each axis.
    pub shape: Vec<usize>,
    /// The values in C (row-major) order.
    pub data: Vec<f32>,
}

impl Array {
    /// The array as a matrix of `shape[0]` rows (any further axes flattened into the row).
    pub fn into_matrix(self) -> Matrix {
        // A 0-d array is one value: one row of one.
        let rows = self.shape.first().copied().unwrap_or(1);
        let dim = self.shape.iter().skip(1).product::<usize>();
        Matrix {
            rows,
            dim: if self.shape.len() < 2 { 1 } else { dim },
            data: self.data,
        }
    }
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Encodes `data` with `shape` as `.npy` bytes (format version 1.0, `<f4`, C order). `Err`
/// when the header (the shape, in text) is longer than version 1.0's 65,535 bytes.
pub fn encode(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, String> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + header length (2) + header + newline, padded to 64 bytes.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len()).map_err(|_| {
        format!(
            "a shape of {} axes needs a header of {} bytes; a .npy header holds at most {}",
            shape.len(),
            header.len(),
            u16::MAX
        )
    })?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + header.len() + data.len() * 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&header_len.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    Ok(bytes)
}

/// Writes an array atomically (temporary file, then rename).
pub fn write(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len());
    let bytes = encode(shape, data).map_err(|message| NpyError::Format {
        path: path.to_path_buf(),
        message,
    })?;
    write_atomic(path, &bytes).map_err(|e| NpyError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes a matrix as a 2-D array.
pub fn write_matrix(path: &Path, matrix: &Matrix) -> Result<(), NpyError> {
    write(path, &[matrix.rows, matrix.dim], &matrix.data)
}

/// Reads a `float32` array (little-endian, C order).
pub fn read(path: &Path) -> Result<Array, NpyError> {
    let bytes = std::fs::read(path).map_err(|e| NpyError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    decode(&bytes).map_err(|message| NpyError::Format {
        path: path.to_path_buf(),
        message,
    })
}

/// Decodes `.npy` bytes holding a float16, float32 or float64 array (as f32 values).
pub fn decode(bytes: &[u8]) -> Result<Array, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("missing the NUMPY magic".into());
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unknown format version {v}")),
    };
    let header_end = header_start + header_len; // at most 12 + u32::MAX: no overflow
    let header = bytes
        .get(header_start..header_end)
        .ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let width: usize = match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f4" | "=f4" => 4,
        "<f2" | "=f2" => 2,
        "<f8" | "=f8" => 8,
        _ => {
            return Err(format!(
                "element type {descr}; natview reads little-endian float16, float32 or float64 \
                 (<f2, <f4, <f8) arrays"
            ))
        }
    };
    if dict_value(header, "fortran_order").map(str::trim) != Some("False") {
        return Err("Fortran-ordered arrays are not supported (save with C order)".into());
    }
    let shape_text = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape {shape_text}"))
        })
        .collect::<Result<_, _>>()?;
    let needed = shape
        .iter()
        .try_fold(width, |bytes, &extent| bytes.checked_mul(extent))
        .ok_or_else(|| format!("shape {shape:?} is too large to address"))?;
    let payload = &bytes[header_end..];
    if payload.len() != needed {
        return Err(format!(
            "shape {shape:?} needs {needed} bytes of data, the file has {}",
            payload.len()
        ));
    }
    let data = match width {
        2 => payload
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        8 => payload
            .chunks_exact(8)
            .map(|b| {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(b);
                crate::linalg::narrow(f64::from_le_bytes(bytes))
            })
            .collect(),
        _ => payload
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    };
    Ok(Array { shape, data })
}

/// The text after `'key':` in a header dict, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth = depth.saturating_add(1),
            ')' => depth = depth.saturating_sub(1),
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_shape_and_values() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = encode(&[2, 3, 4], &data).expect("encodes");
        assert_eq!((bytes.len() - 24 * 4) % 64, 0, "header padded to 64 bytes");
        let array = decode(&bytes).expect("decodes");
        assert_eq!(array.shape, vec![2, 3, 4]);
        assert_eq!(array.data, data);
        let one_d = decode(&encode(&[5], &data[..5]).expect("encodes")).expect("1-d");
        assert_eq!(one_d.shape, vec![5]);
    }

    #[test]
    fn reads_what_numpy_writes() {
        // np.save of np.arange(6, dtype='<f4').reshape(2, 3), numpy 2.x.
        let mut bytes = b"\x93NUMPY\x01\x00v\x00".to_vec();
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&vec![b' '; 0x76 - header.len() - 1]);
        bytes.push(b'\n');
        for v in 0..6 {
            bytes.extend_from_slice(&(v as f32).to_le_bytes());
        }
        let m = decode(&bytes).expect("decodes").into_matrix();
        assert_eq!((m.rows, m.dim), (2, 3));
        assert_eq!(m.row(1), &[3.0, 4.0, 5.0]);
    }

    /// `np.save` of `[[1, -2], [0.5, 3]]` as float16 and float64: the same values back.
    #[test]
    fn float16_and_float64_arrays_are_read_as_f32() {
        let values = [1.0f32, -2.0, 0.5, 3.0];
        for (descr, payload) in [
            (
                "<f2",
                values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
            (
                "<f8",
                values
                    .iter()
                    .flat_map(|v| f64::from(*v).to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
        ] {
            let header =
                format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2, 2), }}");
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            let header_len = u16::try_from(header.len() + 1).expect("a short header");
            bytes.extend_from_slice(&header_len.to_le_bytes());
            bytes.extend_from_slice(header.as_bytes());
            bytes.push(b'\n');
            bytes.extend_from_slice(&payload);
            let array = decode(&bytes).expect(descr);
            assert_eq!(array.shape, vec![2, 2]);
            assert_eq!(array.data, values, "{descr}");
        }
    }

    #[test]
    fn other_element_types_and_truncation_are_refused() {
        let mut bytes = encode(&[2, 2], &[1.0, 2.0, 3.0, 4.0]).expect("encodes");
        bytes.truncate(bytes.len() - 1);
        assert!(decode(&bytes).unwrap_err().contains("needs 16 bytes"));
        let mut int_bytes = encode(&[1], &[0.0]).expect("encodes");
        let at = int_bytes
            .windows(3)
            .position(|w| w == b"<f4")
            .expect("descr");
        int_bytes[at + 1] = b'i';
        assert!(decode(&int_bytes).unwrap_err().contains("<i4"));
        assert!(decode(b"PK\x03\x04").is_err());
    }

    /// A shape whose product overflows is refused, not multiplied round to a small size.
    #[test]
    fn a_shape_too_large_to_address_is_refused() {
        let header = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, 4), }}",
            1usize << 62
        );
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let header_len = u16::try_from(header.len() + 1).expect("a short header");
        bytes.extend_from_slice(&header_len.to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.push(b'\n');
        let err = decode(&bytes).expect_err("refused");
        assert!(err.contains("too large"), "{err}");
    }

    /// A shape whose header does not fit version 1.0's 16-bit length is refused, not written
    /// with a wrapped length.
    #[test]
    fn a_header_longer_than_65535_bytes_is_refused() {
        let shape = vec![1usize; 30_000];
        let err = encode(&shape, &[0.0]).expect_err("refused");
        assert!(err.contains("at most 65535"), "{err}");
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("wide.npy");
        let err = write(&path, &shape, &[0.0]).expect_err("refused");
        assert!(matches!(err, NpyError::Format { .. }), "{err}");
        assert!(!path.exists());
    }

    /// What a decoded array says of itself holds: its values fill its shape, and as a matrix
    /// its rows × dim values.
    fn check_consistent(array: Array) {
        let count = array.shape.iter().product::<usize>();
        assert_eq!(array.data.len(), count);
        let m = array.into_matrix();
        assert_eq!(m.rows * m.dim, m.data.len());
    }

    proptest::proptest! {
        #![proptest_config(natview_testkit::config())]

        #[test]
        fn damaged_npy_files_are_refused_or_consistent(
            changes in natview_testkit::mutations()
        ) {
            let valid = encode(&[3, 5], &(0..15).map(|i| i as f32).collect::<Vec<_>>())
                .expect("encodes");
            if let Ok(array) = decode(&natview_testkit::apply(&valid, &changes)) {
                check_consistent(array);
            }
        }

        #[test]
        fn arbitrary_headers_are_refused_or_consistent(
            shape in proptest::collection::vec(proptest::prelude::any::<usize>(), 0..4),
            descr in proptest::sample::select(vec!["<f2", "<f4", "<f8", "|u1", "<f4'"]),
            payload in natview_testkit::arbitrary_bytes(96),
        ) {
            let dims: Vec<String> = shape.iter().map(|d| (d % 9).to_string()).collect();
            let header = format!(
                "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}",
                dims.join(", ")
            );
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            let header_len = u16::try_from(header.len()).expect("a short header");
            bytes.extend_from_slice(&header_len.to_le_bytes());
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(&payload);
            if let Ok(array) = decode(&bytes) {
                check_consistent(array);
            }
            if let Ok(array) = decode(&payload) {
                check_consistent(array);
            }
        }
    }
}
