//! The encoders available for a dataset: every model shipped in `models/`, the encoders
//! fine-tuned into the dataset's workspace (`finetuned*.safetensors` written by `natview
//! finetune`), the checkpoints opened on it (remembered in `checkpoints.json`), the sets
//! brought in by `natview import`, and the raw-pixel baseline. The app's model picker and the Metrics comparison
//! list them; the CLI takes any of them with `--model`/`--weights`.

use crate::{checkpoint, WeightsMeta};
use natview_core::dataset::Dataset;
use natview_core::locate::{self, Shipped};
use natview_core::workspace::Workspace;
use natview_encoder::{EncoderError, EncoderSpec, ModelKind};

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

/// The EfficientNet-Lite0 fine-tuned on the full emoji set, shipped for that domain.
pub const EMOJI_MODEL_FILE: &str = "effnet-lite0-emoji.safetensors";

/// The designs `scripts/build-demo.sh` renders: a dataset whose `design` column holds only
/// these is of the emoji domain (the demo, the full set, or a slice of them).
const EMOJI_DESIGNS: [&str; 5] = [
    "noto",
    "twemoji",
    "fluent-flat",
    "fluent-modern",
    "fluent-high-contrast",
];

/// Whether `dataset` is of the emoji domain the shipped emoji model was fine-tuned for.
pub fn is_emoji_dataset(dataset: &Dataset) -> bool {
    !dataset.items.is_empty()
        && dataset.items.iter().all(|item| {
            item.metadata
                .get("design")
                .is_some_and(|d| EMOJI_DESIGNS.contains(&d.as_str()))
        })
}

/// Fine-tuned weights read as an encoder: their model, at the size they were trained at.
fn finetuned_spec(path: std::path::PathBuf) -> Option<EncoderSpec> {
    let meta: WeightsMeta = checkpoint::read_meta(&path).ok()?;
    Some(EncoderSpec {
        model: meta.model,
        input_size_px: meta.input_size_px,
        weights: Some(path),
        seed: 0,
        weights_key: None,
        pool: None,
        precision: natview_encoder::Precision::F32,
    })
}

/// The default encoder for `dataset`: the fine-tuned descendant of EfficientNet-Lite0 shipped
/// for its domain where there is one (emoji), else the ImageNet-pretrained EfficientNet-Lite0;
/// an error naming where the weights were looked for when they are not installed.
pub fn default_encoder_for(dataset: &Dataset) -> Result<EncoderSpec, EncoderError> {
    if is_emoji_dataset(dataset) {
        if let Some(spec) = locate::find(Shipped::Models, EMOJI_MODEL_FILE)
            .ok()
            .and_then(finetuned_spec)
        {
            return Ok(spec);
        }
    }
    EncoderSpec::default_model()
}

/// Fine-tuned encoders shipped in `models/` (not a model's own shipped weights): every
/// `.safetensors` file with natview's metadata in the folders natview searches, the first of
/// each name.
fn shipped_finetunes() -> Vec<AvailableEncoder> {
    let own: Vec<&str> = ModelKind::ALL
        .iter()
        .filter_map(|m| m.shipped_weights_file())
        .collect();
    let mut by_name: std::collections::BTreeMap<std::ffi::OsString, std::path::PathBuf> =
        Default::default();
    for dir in locate::search_dirs(Shipped::Models) {
        for path in std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        {
            let Some(name) = path.file_name().map(|n| n.to_os_string()) else {
                continue;
            };
            if own.iter().any(|o| name == *o) {
                continue;
            }
            by_name.entry(name).or_insert(path);
        }
    }
    by_name
        .into_values()
        .filter_map(finetuned_spec)
        .map(AvailableEncoder::new)
        .collect()
}

/// The encoders available for the dataset whose workspace is `workspace`: shipped models first
/// (the default first of all), the fine-tuned ones shipped in `models/`, then those fine-tuned
/// into the workspace (newest first), then raw pixels.
pub fn available_encoders(workspace: &Workspace) -> Vec<AvailableEncoder> {
    let mut list: Vec<AvailableEncoder> = ModelKind::ALL
        .iter()
        .filter_map(|&m| EncoderSpec::pretrained(m).ok())
        .map(AvailableEncoder::new)
        .collect();
    list.extend(shipped_finetunes());
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
                let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
                Some((modified, AvailableEncoder::new(finetuned_spec(path)?)))
            })
            .collect();
    tuned.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    list.extend(tuned.into_iter().map(|(_, e)| e));
    list.extend(
        remembered_checkpoints(workspace)
            .into_iter()
            .filter(|spec| {
                spec.weights
                    .as_deref()
                    .is_some_and(std::path::Path::is_file)
            })
            .map(AvailableEncoder::new),
    );
    list.extend(imported_sets(workspace));
    list.push(AvailableEncoder::new(EncoderSpec::untrained(
        ModelKind::Pixels,
    )));
    list
}

/// The encoder a weights file gives: natview's own fine-tunes as recorded (model, input
/// size), any other file as a checkpoint whose network natview works out from it.
pub fn spec_for_weights(path: &std::path::Path) -> Result<EncoderSpec, EncoderError> {
    if let Some(spec) = finetuned_spec(path.to_path_buf()) {
        return Ok(spec);
    }
    if let Some(model) = ModelKind::ALL
        .into_iter()
        .find(|&model| natview_encoder::is_shipped_weights(model, path))
    {
        return EncoderSpec::pretrained(model);
    }
    EncoderSpec::checkpoint(path, None, None)
}

/// The file in a workspace that lists the checkpoints opened on its dataset.
fn checkpoints_path(workspace: &Workspace) -> std::path::PathBuf {
    workspace.dir().join("checkpoints.json")
}

/// The checkpoints opened on the workspace's dataset, most recent first (an unreadable list
/// is an empty one: it is a convenience, rebuilt as checkpoints are opened).
pub fn remembered_checkpoints(workspace: &Workspace) -> Vec<EncoderSpec> {
    std::fs::read(checkpoints_path(workspace))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Adds `spec` (a checkpoint the analyst opened) to the front of the workspace's list, so the
/// Model menu offers it again next time; at most 20 are kept.
pub fn remember_checkpoint(
    workspace: &Workspace,
    spec: &EncoderSpec,
) -> Result<(), natview_core::workspace::WorkspaceError> {
    let mut list = remembered_checkpoints(workspace);
    list.retain(|known| known.weights != spec.weights || known.weights_key != spec.weights_key);
    list.insert(0, spec.clone());
    list.truncate(20);
    workspace.create()?;
    let path = checkpoints_path(workspace);
    natview_core::workspace::write_json_atomic(&path, &list)
        .map_err(|e| natview_core::workspace::WorkspaceError::io(&path, e))
}

/// The sets `natview import` wrote into the workspace (`embeddings.imported-<name>.safetensors`),
/// by name.
fn imported_sets(workspace: &Workspace) -> Vec<AvailableEncoder> {
    let mut names: Vec<String> = std::fs::read_dir(workspace.dir())
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let set = name
                .strip_prefix("embeddings.imported-")?
                .strip_suffix(".safetensors")?;
            Some(set.to_string())
        })
        .collect();
    names.sort();
    names
        .iter()
        .map(|name| AvailableEncoder::new(EncoderSpec::imported(name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opened_checkpoints_are_remembered_newest_first_and_forgotten_when_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = Workspace::at(&dir.path().join("ws"));
        let spec = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"weights").expect("write");
            EncoderSpec {
                model: ModelKind::Checkpoint,
                weights: Some(path),
                ..EncoderSpec::untrained(ModelKind::Checkpoint)
            }
        };
        let (a, b) = (spec("a.pth"), spec("b.ckpt"));
        remember_checkpoint(&workspace, &a).expect("remember");
        remember_checkpoint(&workspace, &b).expect("remember");
        remember_checkpoint(&workspace, &a).expect("remember again");
        assert_eq!(
            remembered_checkpoints(&workspace),
            vec![a.clone(), b.clone()]
        );
        let offered = |w: &Workspace| -> Vec<EncoderSpec> {
            available_encoders(w)
                .into_iter()
                .map(|e| e.spec)
                .filter(|s| s.model == ModelKind::Checkpoint)
                .collect()
        };
        assert_eq!(offered(&workspace), vec![a.clone(), b]);
        std::fs::remove_file(dir.path().join("b.ckpt")).expect("remove");
        assert_eq!(offered(&workspace), vec![a]);
    }

    #[test]
    fn imported_sets_are_on_offer_before_the_pixels() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("embeddings.imported-clip.safetensors"),
            b"x",
        )
        .expect("write");
        let list = available_encoders(&Workspace::at(dir.path()));
        let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
        let clip = names.iter().position(|n| *n == "imported-clip");
        assert!(clip.is_some(), "{names:?}");
        assert_eq!(names.last(), Some(&"pixels"));
        assert_eq!(list[clip.unwrap_or(0)].spec, EncoderSpec::imported("clip"));
    }

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
        // Tests run from the build folder of the source tree: the shipped models are found.
        assert_eq!(list[0].name, "effnet-lite0");
        assert_eq!(list[0].spec, EncoderSpec::default_model().expect("shipped"));
    }

    #[test]
    fn emoji_datasets_default_to_the_emoji_model_and_others_to_the_pretrained_one() {
        let demo = natview_core::dataset::load_dataset(
            &natview_core::dataset::demo_dataset_path().expect("the demo is found"),
        )
        .expect("the committed demo loads");
        assert!(is_emoji_dataset(&demo));
        let spec = default_encoder_for(&demo).expect("shipped");
        assert_eq!(spec.model, ModelKind::EffnetLite0);
        assert!(spec
            .weights
            .as_deref()
            .is_some_and(|w| w.ends_with(EMOJI_MODEL_FILE)));
        assert_eq!(spec.input_size_px, 96, "embeds at its training size");
        let photos = natview_core::dataset::load_dataset(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/photos"),
        )
        .expect("the test photos load");
        assert!(!is_emoji_dataset(&photos));
        assert_eq!(
            default_encoder_for(&photos).expect("shipped"),
            EncoderSpec::default_model().expect("shipped")
        );
        // The shipped fine-tune is offered once, not as a duplicate of a model's own weights.
        let dir = tempfile::tempdir().expect("tempdir");
        let list = available_encoders(&Workspace::at(dir.path()));
        let compact = list
            .iter()
            .filter(|e| e.spec.weights == ModelKind::Compact.shipped_weights())
            .count();
        assert!(compact <= 1, "{list:?}");
    }
}
