//! PyTorch's checkpoint file (`torch.save` since 1.6: a zip of `<root>/data.pkl` and one record
//! per storage under `<root>/data/`): the pickle is read by natview's own restricted unpickler
//! and flattened into named tensors, whatever it nests them in (a state dict, `{"state_dict":
//! …}`, a Lightning or VISSL checkpoint, a pickled `nn.Module`); a tensor's bytes are read only
//! when asked for, after its shape and strides are checked against its storage.

use super::pickle::{unpickle, Arena, Node, NodeId, StorageRef, TensorRef};
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};
use std::path::Path;

/// The largest `data.pkl` read (a checkpoint's is at most a few MB).
const MAX_PICKLE_BYTES: u64 = 512 << 20;
/// Nesting deeper than this is not followed.
const MAX_DEPTH: usize = 64;

/// The first bytes of a legacy (torch < 1.6) file: PROTO 2, then the magic number as LONG1.
const LEGACY_MAGIC: &[u8] = &[0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20];

/// An open PyTorch zip checkpoint.
pub(crate) struct TorchFile {
    archive: zip::ZipArchive<BufReader<std::fs::File>>,
    root: String,
    arena: Arena,
    top: NodeId,
    storages: HashMap<String, Vec<u8>>,
}

/// Whether `bytes` (a file's start) is a PyTorch file of the legacy format.
pub(crate) fn is_legacy(bytes: &[u8]) -> bool {
    bytes.starts_with(LEGACY_MAGIC) || bytes.get(257..262) == Some(b"ustar".as_slice())
}

impl TorchFile {
    /// Opens the archive and unpickles its `data.pkl`.
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| format!("not a PyTorch zip archive: {e}"))?;
        let pickle_name = archive
            .file_names()
            .filter_map(Result::ok)
            .find(|name| {
                name.strip_suffix("data.pkl")
                    .is_some_and(|dir| dir.ends_with('/') && !dir[..dir.len() - 1].contains('/'))
            })
            .map(|name| name.into_owned())
            .ok_or("the archive has no <name>/data.pkl: not a torch.save file")?;
        let root = pickle_name.trim_end_matches("data.pkl").to_string();
        if let Ok(mut order) = archive.by_name(&format!("{root}byteorder")) {
            let mut text = String::new();
            let _ = order.by_ref().take(16).read_to_string(&mut text);
            if text.trim() != "little" {
                return Err(format!(
                    "stored `{}`-endian: natview reads little-endian files",
                    text.trim()
                ));
            }
        }
        let mut entry = archive
            .by_name(&pickle_name)
            .map_err(|e| format!("{pickle_name}: {e}"))?;
        let mut pickle = Vec::new();
        entry
            .by_ref()
            .take(MAX_PICKLE_BYTES + 1)
            .read_to_end(&mut pickle)
            .map_err(|e| format!("{pickle_name}: {e}"))?;
        drop(entry);
        if pickle.len() as u64 > MAX_PICKLE_BYTES {
            return Err(format!(
                "{pickle_name} is over {} MB",
                MAX_PICKLE_BYTES >> 20
            ));
        }
        let (arena, top) = unpickle(&pickle).map_err(|e| format!("{pickle_name}: {e}"))?;
        Ok(Self {
            archive,
            root,
            arena,
            top,
            storages: HashMap::new(),
        })
    }

    /// Every tensor of a floating-point type in the file, named by the path of dict keys, list
    /// indices and module attributes that leads to it (`state_dict.module.conv1.weight`).
    pub fn tensors(&self) -> Vec<(String, TensorRef)> {
        let mut out = Vec::new();
        let mut walk = Walk {
            arena: &self.arena,
            path: Vec::new(),
            on_path: HashSet::new(),
            out: &mut out,
        };
        walk.visit(self.top, 0);
        out.retain(|(_, t)| element_size(&t.storage.class).is_some());
        out
    }

    /// The string keys of the top-level dict (`state_dict`, `pytorch-lightning_version`, …).
    pub fn top_keys(&self) -> Vec<String> {
        match self.arena.get(self.top) {
            Node::Dict(items) => items
                .iter()
                .filter_map(|&(k, _)| self.arena.str(k).map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The values of `tensor` as f32, row-major, after checking its view lies in its storage.
    pub fn read(&mut self, tensor: &TensorRef) -> Result<Vec<f32>, String> {
        let size = element_size(&tensor.storage.class).ok_or_else(|| {
            format!(
                "storage type {} is not floating-point",
                tensor.storage.class
            )
        })?;
        let numel = view_numel(tensor)?;
        let bytes = self.storage(&tensor.storage, size)?;
        let class = tensor.storage.class.as_str();
        if is_row_major(tensor) {
            let start = usize::try_from(tensor.offset).map_err(|e| e.to_string())? * size;
            let raw = bytes
                .get(start..start + numel * size)
                .ok_or("a tensor reaches past its storage")?;
            return Ok(raw.chunks_exact(size).map(|r| decode(class, r)).collect());
        }
        let mut values = Vec::with_capacity(numel);
        let mut index = vec![0u64; tensor.shape.len()];
        for _ in 0..numel {
            let element: u64 = tensor.offset
                + index
                    .iter()
                    .zip(&tensor.stride)
                    .map(|(i, s)| i * s)
                    .sum::<u64>();
            let start = usize::try_from(element).map_err(|e| e.to_string())? * size;
            let raw = bytes
                .get(start..start + size)
                .ok_or("a tensor reaches past its storage")?;
            values.push(decode(class, raw));
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < tensor.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(values)
    }

    fn storage(&mut self, storage: &StorageRef, size: usize) -> Result<&[u8], String> {
        if !self.storages.contains_key(&storage.key) {
            let name = format!("{}data/{}", self.root, storage.key);
            let mut entry = self
                .archive
                .by_name(&name)
                .map_err(|e| format!("storage {name}: {e}"))?;
            let wanted = storage
                .numel
                .checked_mul(size as u64)
                .ok_or("a storage size overflows")?;
            if entry.size() < wanted {
                return Err(format!(
                    "storage {name} holds {} bytes, its tensors need {wanted}",
                    entry.size()
                ));
            }
            let mut bytes = Vec::new();
            entry
                .by_ref()
                .take(wanted)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("storage {name}: {e}"))?;
            if (bytes.len() as u64) < wanted {
                return Err(format!("storage {name} ends early"));
            }
            self.storages.insert(storage.key.clone(), bytes);
        }
        self.storages
            .get(&storage.key)
            .map(Vec::as_slice)
            .ok_or_else(|| "storage vanished".to_string())
    }
}

/// Whether a view's elements lie one after another in row-major order.
fn is_row_major(tensor: &TensorRef) -> bool {
    let mut expected = 1u64;
    for (&n, &s) in tensor.shape.iter().zip(&tensor.stride).rev() {
        if n > 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(n);
    }
    true
}

/// The number of elements of a tensor's view, checked to lie inside its storage.
fn view_numel(tensor: &TensorRef) -> Result<usize, String> {
    let mut numel: u64 = 1;
    let mut last = tensor.offset;
    for (&n, &s) in tensor.shape.iter().zip(&tensor.stride) {
        numel = numel.checked_mul(n).ok_or("tensor size overflows")?;
        if n > 0 {
            last = (n - 1)
                .checked_mul(s)
                .and_then(|reach| last.checked_add(reach))
                .ok_or("tensor strides overflow")?;
        }
    }
    if numel > 0 && last >= tensor.storage.numel {
        return Err(format!(
            "a tensor of shape {:?} reaches element {last} of a storage of {}",
            tensor.shape, tensor.storage.numel
        ));
    }
    usize::try_from(numel).map_err(|e| e.to_string())
}

fn element_size(class: &str) -> Option<usize> {
    match class {
        "FloatStorage" => Some(4),
        "HalfStorage" | "BFloat16Storage" => Some(2),
        "DoubleStorage" => Some(8),
        _ => None,
    }
}

fn decode(class: &str, raw: &[u8]) -> f32 {
    match (class, raw) {
        ("FloatStorage", [a, b, c, d]) => f32::from_le_bytes([*a, *b, *c, *d]),
        ("HalfStorage", [a, b]) => half::f16::from_le_bytes([*a, *b]).to_f32(),
        ("BFloat16Storage", [a, b]) => half::bf16::from_le_bytes([*a, *b]).to_f32(),
        ("DoubleStorage", [a, b, c, d, e, f, g, h]) => {
            f64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h]) as f32
        }
        _ => f32::NAN,
    }
}

/// The flattening walk: dicts by key, lists by index, `nn.Module`s by attribute.
struct Walk<'a> {
    arena: &'a Arena,
    path: Vec<String>,
    on_path: HashSet<NodeId>,
    out: &'a mut Vec<(String, TensorRef)>,
}

impl Walk<'_> {
    fn visit(&mut self, id: NodeId, depth: usize) {
        if depth > MAX_DEPTH || !self.on_path.insert(id) {
            return;
        }
        match self.arena.get(id) {
            Node::Tensor(t) => self.out.push((self.path.join("."), t.clone())),
            Node::Dict(items) => self.visit_items(items, depth),
            Node::List(items) | Node::Tuple(items) => {
                for (i, &item) in items.iter().enumerate() {
                    self.path.push(i.to_string());
                    self.visit(item, depth + 1);
                    self.path.pop();
                }
            }
            Node::Object { state, items, .. } => {
                self.visit_items(items, depth);
                if let Some(state) = *state {
                    self.visit_state(state, depth);
                }
            }
            _ => {}
        }
        self.on_path.remove(&id);
    }

    fn visit_items(&mut self, items: &[(NodeId, NodeId)], depth: usize) {
        for &(key, value) in items {
            let name = match self.arena.get(key) {
                Node::Str(s) => s.clone(),
                Node::Int(i) => i.to_string(),
                _ => continue,
            };
            self.path.push(name);
            self.visit(value, depth + 1);
            self.path.pop();
        }
    }

    /// An object's state: a module's `_parameters`, `_buffers` and `_modules` are its
    /// attributes (named without those words, as `state_dict()` names them).
    fn visit_state(&mut self, state: NodeId, depth: usize) {
        let Node::Dict(items) = self.arena.get(state) else {
            self.visit(state, depth + 1);
            return;
        };
        let module_parts: Vec<NodeId> = items
            .iter()
            .filter(|(k, _)| {
                matches!(
                    self.arena.str(*k),
                    Some("_parameters" | "_buffers" | "_modules")
                )
            })
            .map(|&(_, v)| v)
            .collect();
        if module_parts.is_empty() {
            self.visit_items(items, depth);
            return;
        }
        for part in module_parts {
            if let Node::Dict(children) = self.arena.get(part) {
                self.visit_items(children, depth + 1);
            }
        }
    }
}
