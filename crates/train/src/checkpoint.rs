//! Checkpoints and exported weights as safetensors with natview metadata. A checkpoint holds
//! every variable (trunk, heads, batch-norm statistics), the optimiser's momentum buffers
//! (`optim.<name>`) and the run's state; exported weights hold the trunk only, loadable by the
//! encoder (`--weights`). Both are written to a temporary file and renamed into place.

use super::TrainError;
use candle_core::{Device, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Metadata key of natview's JSON in a safetensors file.
pub const META_KEY: &str = "natview";

/// Prefix of optimiser state tensors in a checkpoint.
pub const OPTIM_PREFIX: &str = "optim.";

fn error(path: &Path, message: impl std::fmt::Display) -> TrainError {
    TrainError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Writes named f32 tensors and a JSON metadata value to `path` (temp file + rename).
pub fn save<M: Serialize>(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &M,
) -> Result<(), TrainError> {
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let values = tensor
            .to_dtype(candle_core::DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| error(path, format!("{name}: {e}")))?;
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name.clone(), tensor.dims().to_vec(), bytes));
    }
    let mut views = Vec::with_capacity(buffers.len());
    for (name, shape, bytes) in &buffers {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| error(path, format!("{name}: {e}")))?;
        views.push((name.as_str(), view));
    }
    let json = serde_json::to_string(meta).map_err(|e| error(path, e))?;
    let info = HashMap::from([(META_KEY.to_string(), json)]);
    let bytes = safetensors::serialize(views, Some(info)).map_err(|e| error(path, e))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| error(path, e))?;
    }
    natview_core::workspace::write_atomic(path, &bytes).map_err(|e| error(path, e))
}

/// Reads the tensors and the natview metadata of a file written by [`save`].
pub fn load<M: DeserializeOwned>(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, M), TrainError> {
    let bytes = std::fs::read(path).map_err(|e| error(path, e))?;
    let meta = read_meta_bytes(path, &bytes)?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| error(path, format!("not a complete safetensors file: {e}")))?;
    check_tensors(path, &tensors)?;
    Ok((tensors, meta))
}

/// Checks what [`save`] writes and a resumed run relies on: f32 tensors only, and each
/// optimiser buffer (`optim.<name>`) beside its variable `<name>`, of the same shape.
fn check_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), TrainError> {
    for (name, tensor) in tensors {
        if tensor.dtype() != candle_core::DType::F32 {
            return Err(error(
                path,
                format!("tensor `{name}` holds {:?} values, not f32", tensor.dtype()),
            ));
        }
        if let Some(variable) = name.strip_prefix(OPTIM_PREFIX) {
            match tensors.get(variable) {
                Some(v) if v.dims() == tensor.dims() => {}
                Some(v) => {
                    return Err(error(
                        path,
                        format!(
                            "optimiser state `{name}` has shape {:?}, its variable {:?}",
                            tensor.dims(),
                            v.dims()
                        ),
                    ))
                }
                None => {
                    return Err(error(
                        path,
                        format!("optimiser state `{name}` has no variable `{variable}`"),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Reads only the natview metadata of a file.
pub fn read_meta<M: DeserializeOwned>(path: &Path) -> Result<M, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| error(path, e))?;
    read_meta_bytes(path, &bytes)
}

/// The listings a run held out (never trained on), as `natview finetune` records them in its
/// weights and checkpoints; empty for a file without that record (another tool's weights).
pub fn heldout_listings(path: &Path) -> std::collections::HashSet<String> {
    #[derive(serde::Deserialize)]
    struct Heldout {
        heldout: Vec<String>,
    }
    read_meta::<Heldout>(path)
        .map(|meta| meta.heldout.into_iter().collect())
        .unwrap_or_default()
}

fn read_meta_bytes<M: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<M, TrainError> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| error(path, format!("not a safetensors file: {e}")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| {
            error(
                path,
                "no natview metadata (not written by natview finetune)",
            )
        })?;
    serde_json::from_str(json).map_err(|e| error(path, format!("unreadable metadata: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeros(shape: &[usize]) -> Tensor {
        Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu).expect("tensor")
    }

    #[test]
    fn optimiser_state_must_match_its_variable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.safetensors");
        let good = [
            ("w".to_string(), zeros(&[2, 3])),
            (format!("{OPTIM_PREFIX}w"), zeros(&[2, 3])),
        ];
        save(&path, &good, &"meta").expect("save");
        let (tensors, meta): (_, String) = load(&path, &Device::Cpu).expect("load");
        assert_eq!((tensors.len(), meta.as_str()), (2, "meta"));

        let misshaped = [
            ("w".to_string(), zeros(&[2, 3])),
            (format!("{OPTIM_PREFIX}w"), zeros(&[3, 2])),
        ];
        save(&path, &misshaped, &"meta").expect("save");
        let err = load::<String>(&path, &Device::Cpu).expect_err("refused");
        assert!(err.to_string().contains("c.safetensors"), "{err}");
        assert!(
            err.to_string().contains("optimiser state `optim.w`"),
            "{err}"
        );

        save(&path, &[(format!("{OPTIM_PREFIX}v"), zeros(&[1]))], &"meta").expect("save");
        let err = load::<String>(&path, &Device::Cpu).expect_err("refused");
        assert!(err.to_string().contains("no variable `v`"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(natview_testkit::config())]

        /// Checkpoints (read on `--resume`) and exported weights (read by the encoder) cut,
        /// flipped or extended: an error or tensors, never a panic.
        #[test]
        fn damaged_checkpoints_and_weights_are_refused_or_read(
            changes in natview_testkit::mutations()
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("c.safetensors");
            let tensors = [
                ("w".to_string(), zeros(&[2, 3])),
                (format!("{OPTIM_PREFIX}w"), zeros(&[2, 3])),
                ("b".to_string(), zeros(&[3])),
            ];
            save(&path, &tensors, &"meta").expect("save");
            let bytes = std::fs::read(&path).expect("read");
            std::fs::write(&path, natview_testkit::apply(&bytes, &changes)).expect("write");
            if let Ok((read, _)) = load::<String>(&path, &Device::Cpu) {
                proptest::prop_assert!(read.len() <= 3);
            }
            let _ = read_meta::<String>(&path);
            let _ = natview_encoder::load_weights(&path, &Device::Cpu);
        }
    }
}
