//! The encoders available for a dataset: every model shipped in `models/`, the encoders
//! fine-tuned into the dataset's workspace (`finetuned*.safetensors` written by `natview
//! finetune`), and the raw-pixel baseline. The app's model picker and the Metrics comparison
//! list them; the CLI takes any of them with `--model`/`--weights`.

use crate::encoder::{EncoderSpec, ModelKind};
use crate::train::{checkpoint, WeightsMeta};
use crate::workspace::Workspace;

/// An encoder on offer, with a short name for tables and menus.
#[derive(Debug, Clone, PartialEq)]
pub struct AvailableEncoder {
    /// A short name: the workspace key (`effnet-lite0`, `compact`, `effnet-lite0@finetuned…`).
    pub name: String,
    /// What to embed with.
    pub spec: EncoderSpec,
}

impl AvailableEncoder {
    fn new(spec: EncoderSpec) -> Self {
        Self {
            name: spec.workspace_key(),
            spec,
        }
    }
}

/// The encoders available for the dataset whose workspace is `workspace`: shipped models first
/// (the default first of all), then fine-tuned ones (newest first), then raw pixels.
pub fn available_encoders(workspace: &Workspace) -> Vec<AvailableEncoder> {
    let mut list: Vec<AvailableEncoder> = ModelKind::ALL
        .iter()
        .filter(|m| m.shipped_weights().is_some())
        .map(|&m| AvailableEncoder::new(EncoderSpec::pretrained(m)))
        .collect();
    let mut tuned: Vec<(std::time::SystemTime, AvailableEncoder)> =
        std::fs::read_dir(workspace.dir())
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path.file_name()?.to_str()?;
                if !name.starts_with("finetuned") || !name.ends_with(".safetensors") {
                    return None;
                }
                let meta: WeightsMeta = checkpoint::read_meta(&path).ok()?;
                let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
                let spec = EncoderSpec {
                    model: meta.model,
                    input_size_px: meta.input_size_px,
                    weights: Some(path),
                    seed: 0,
                };
                Some((modified, AvailableEncoder::new(spec)))
            })
            .collect();
    tuned.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    list.extend(tuned.into_iter().map(|(_, e)| e));
    list.push(AvailableEncoder::new(EncoderSpec::untrained(
        ModelKind::Pixels,
    )));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_models_then_pixels_and_nothing_unreadable() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("finetuned.junk.safetensors"),
            b"not weights",
        )
        .expect("write");
        let list = available_encoders(&Workspace::at(dir.path()));
        assert_eq!(list.last().map(|e| e.spec.model), Some(ModelKind::Pixels));
        assert!(list.iter().all(|e| e.name != "finetuned.junk"));
        if ModelKind::EffnetLite0.shipped_weights().is_some() {
            assert_eq!(list[0].name, "effnet-lite0");
            assert_eq!(list[0].spec, EncoderSpec::default_model());
        }
    }
}
