//! Model folders and the config files beside weights. A Hugging Face model folder (a
//! `save_pretrained` output, or a snapshot in the hub cache: `models--org--name/snapshots/…`,
//! the repository folder itself picks the snapshot `refs/main` names) holds `model.safetensors`
//! (or the shards an `*.index.json` lists), `config.json` and `preprocessor_config.json`; an
//! open_clip hub folder holds `open_clip_model.safetensors` (or `open_clip_pytorch_model.bin`)
//! and `open_clip_config.json`; a timm hub folder holds `config.json` with a `pretrained_cfg`.
//! The configs say what shapes do not: attention heads, activation, LayerNorm epsilon, input
//! size and normalisation.

use crate::{Architecture, Normalisation, TokenActivation};
use std::path::{Path, PathBuf};

/// The config files natview reads beside weights.
pub(crate) const CONFIG_FILES: [&str; 3] = [
    "config.json",
    "preprocessor_config.json",
    "open_clip_config.json",
];

/// The files a model folder's weights are found by, in the order looked for: the shard indexes,
/// then single files.
pub(crate) const WEIGHTS_NAMES: [&str; 6] = [
    "model.safetensors.index.json",
    "open_clip_model.safetensors.index.json",
    "model.safetensors",
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.bin",
    "pytorch_model.bin",
];

/// The weights files a path stands for: itself, or a folder's weights (one file or shards).
pub(crate) fn weights_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let dir = snapshot(path)?;
    for index in &WEIGHTS_NAMES[..2] {
        let index = dir.join(index);
        if index.is_file() {
            return shards(&index);
        }
    }
    for name in &WEIGHTS_NAMES[2..] {
        let file = dir.join(name);
        if file.is_file() {
            return Ok(vec![file]);
        }
    }
    if dir.join("pytorch_model.bin.index.json").is_file() {
        return Err(format!(
            "{} holds a sharded PyTorch (.bin) checkpoint; natview reads sharded safetensors: \
             save it once with save_pretrained(…, safe_serialization=True)",
            dir.display()
        ));
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && super::is_weights_file(p))
        .collect();
    candidates.sort();
    match candidates.len() {
        1 => Ok(candidates),
        0 => Err(format!(
            "{} holds no weights (model.safetensors, pytorch_model.bin, a .pth, …)",
            dir.display()
        )),
        _ => Err(format!(
            "{} holds several weights files ({}); name one with --weights",
            dir.display(),
            candidates
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The folder holding `path`'s weights and configs: a hub cache repository's snapshot, the
/// folder itself, or a weights file's parent.
pub(crate) fn config_dir(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        snapshot(path).ok()
    } else {
        path.parent().map(Path::to_path_buf)
    }
}

/// A hub cache repository (`models--org--name`, with `snapshots/`) → the snapshot `refs/main`
/// names, else the newest; any other folder → itself.
fn snapshot(dir: &Path) -> Result<PathBuf, String> {
    let snapshots = dir.join("snapshots");
    if !snapshots.is_dir() {
        return Ok(dir.to_path_buf());
    }
    if let Ok(main) = std::fs::read_to_string(dir.join("refs").join("main")) {
        let chosen = snapshots.join(main.trim());
        if !main.trim().is_empty() && chosen.is_dir() {
            return Ok(chosen);
        }
    }
    std::fs::read_dir(&snapshots)
        .map_err(|e| format!("{}: {e}", snapshots.display()))?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .ok_or_else(|| format!("{} has no snapshot", snapshots.display()))
}

/// The shard files an `*.index.json` lists (its `weight_map` values), in order.
fn shards(index: &Path) -> Result<Vec<PathBuf>, String> {
    let text = std::fs::read_to_string(index).map_err(|e| format!("{}: {e}", index.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", index.display()))?;
    let map = json["weight_map"]
        .as_object()
        .ok_or_else(|| format!("{}: no weight_map", index.display()))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = Vec::new();
    for shard in map.values().filter_map(serde_json::Value::as_str) {
        if shard.contains('/') || shard.contains('\\') || shard.starts_with('.') {
            return Err(format!(
                "{}: shard name `{shard}` leaves the folder",
                index.display()
            ));
        }
        let path = dir.join(shard);
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: lists no shards", index.display()));
    }
    Ok(files)
}

/// What the config files in `dir` say about the network and its input.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Configured {
    /// Input size in pixels.
    pub size: Option<u32>,
    /// Normalisation.
    pub normalisation: Option<Normalisation>,
    /// Attention heads of a transformer.
    pub heads: Option<usize>,
    /// A transformer's MLP activation.
    pub activation: Option<TokenActivation>,
    /// A transformer's LayerNorm epsilon.
    pub eps: Option<f64>,
    /// The share of the resized short side the centre crop keeps (`crop_size` over the resize's
    /// `shortest_edge`, timm's `crop_pct`): DINOv2's 224 / 256.
    pub crop_fraction: Option<f32>,
    /// The files that said something about the input (for the preprocessing line).
    pub sources: Vec<String>,
}

impl Configured {
    /// Applies what the configs say about the network.
    pub fn apply_to(&self, architecture: &mut Architecture) {
        if let Architecture::Vit(c) = architecture {
            if let Some(heads) = self.heads.filter(|h| *h > 0 && c.dim % h == 0) {
                c.heads = heads;
            }
            if let Some(activation) = self.activation {
                c.activation = activation;
            }
            if let Some(eps) = self.eps {
                c.eps = eps;
            }
        }
    }
}

/// A JSON file's value, `None` when it is missing or not JSON.
pub(crate) fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn triple(value: &serde_json::Value) -> Option<[f32; 3]> {
    let values: Vec<f32> = value
        .as_array()?
        .iter()
        .map(|v| v.as_f64().map(|f| f as f32))
        .collect::<Option<_>>()?;
    <[f32; 3]>::try_from(values).ok()
}

fn normalisation(mean: &serde_json::Value, std: &serde_json::Value) -> Option<Normalisation> {
    match (triple(mean), triple(std)) {
        (Some(mean), Some(std)) if std.iter().all(|s| *s > 0.0) => {
            Some(Normalisation::MeanStd { mean, std })
        }
        _ => None,
    }
}

/// A crop fraction in (0, 1]; a crop larger than the resize (or nonsense) is none.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a fraction in (0, 1] is exactly representable enough as f32"
)]
fn fraction(value: f64) -> Option<f32> {
    (value > 0.05 && value <= 1.0).then_some(value as f32)
}

fn size_value(value: &serde_json::Value) -> Option<u32> {
    let n = value
        .as_u64()
        .or_else(|| {
            value
                .get("shortest_edge")
                .and_then(serde_json::Value::as_u64)
        })
        .or_else(|| value.get("height").and_then(serde_json::Value::as_u64))
        .or_else(|| value.as_array()?.last()?.as_u64())?;
    u32::try_from(n).ok().filter(|s| (8..=4096).contains(s))
}

/// A Hugging Face `hidden_act` name's activation, `None` for one natview does not run.
pub(crate) fn activation(name: &str) -> Option<TokenActivation> {
    match name {
        "gelu" => Some(TokenActivation::Gelu),
        "quick_gelu" => Some(TokenActivation::QuickGelu),
        "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Some(TokenActivation::GeluTanh),
        _ => None,
    }
}

/// Reads `config.json` (Hugging Face's, or timm's `pretrained_cfg`), `preprocessor_config.json`
/// and `open_clip_config.json` in `dir`.
pub(crate) fn read_configs(dir: &Path) -> Configured {
    let mut out = Configured::default();
    if let Some(json) = read_json(&dir.join("config.json")) {
        // timm's hub config.
        let cfg = json.get("pretrained_cfg").unwrap_or(&json);
        let timm_norm = normalisation(&cfg["mean"], &cfg["std"]);
        let timm_size = cfg.get("input_size").and_then(size_value);
        if timm_norm.is_some() || timm_size.is_some() {
            out.size = timm_size;
            out.normalisation = timm_norm;
            out.crop_fraction = cfg["crop_pct"].as_f64().and_then(fraction);
            out.sources.push("config.json".into());
        }
        // Hugging Face's: the vision tower's section of a two-tower model.
        let vision = json.get("vision_config").unwrap_or(&json);
        out.heads = vision["num_attention_heads"]
            .as_u64()
            .and_then(|h| usize::try_from(h).ok());
        out.eps = vision["layer_norm_eps"].as_f64();
        out.activation = vision["hidden_act"].as_str().and_then(activation);
    }
    if let Some(json) = read_json(&dir.join("preprocessor_config.json")) {
        let crop = json["do_center_crop"].as_bool() != Some(false);
        let crop_size = json.get("crop_size").filter(|_| crop).and_then(size_value);
        let resized = json.get("size").and_then(size_value);
        out.size = crop_size.or(resized).or(out.size);
        if let (Some(crop_size), Some(resized)) = (crop_size, resized) {
            out.crop_fraction = fraction(f64::from(crop_size) / f64::from(resized));
        }
        if let Some(n) = normalisation(&json["image_mean"], &json["image_std"]) {
            out.normalisation = Some(n);
        }
        out.sources.push("preprocessor_config.json".into());
    }
    if let Some(json) = read_json(&dir.join("open_clip_config.json")) {
        let model = &json["model_cfg"];
        if model["quick_gelu"].as_bool() == Some(true) {
            out.activation = Some(TokenActivation::QuickGelu);
        }
        let vision = &model["vision_cfg"];
        if let (Some(width), head_width) = (
            vision["width"].as_u64(),
            vision["head_width"].as_u64().unwrap_or(64),
        ) {
            out.heads = usize::try_from(width / head_width.max(1)).ok();
        }
        let pre = &json["preprocess_cfg"];
        out.size = vision.get("image_size").and_then(size_value).or(out.size);
        if let Some(n) = normalisation(&pre["mean"], &pre["std"]) {
            out.normalisation = Some(n);
        }
        out.sources.push("open_clip_config.json".into());
    }
    out
}
