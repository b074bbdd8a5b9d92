//! The network being trained: the encoder trunk (the same `Trunk` the app embeds with, same
//! tensor names) plus a projector and, for SimSiam, a predictor. Every tensor is a `Var` kept
//! by name, initialised from a weights file where it has the tensor and from the seeded init
//! otherwise.

use super::Method;
use candle_core::{DType, Device, Module, ModuleT, Result, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{batch_norm, linear, BatchNorm, Linear, VarBuilder};
use natview_encoder::{Architecture, SeededInit, Trunk};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Prefix of the head tensors (not part of the shipped encoder).
pub const HEAD_PREFIX: &str = "head";

/// Named variables, in name order.
pub type VarSet = BTreeMap<String, Var>;

/// A VarBuilder backend that makes every tensor a `Var` (recorded by name), taking its initial
/// value from `tensors` when present and from the seeded init otherwise.
struct RecordingBackend {
    tensors: HashMap<String, Tensor>,
    init: SeededInit,
    vars: Arc<Mutex<VarSet>>,
}

impl SimpleBackend for RecordingBackend {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        hints: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let initial = match self.tensors.get(name) {
            Some(t) => {
                if t.shape() != &shape {
                    candle_core::bail!(
                        "shape mismatch for {name}, expected {:?}, got {:?}",
                        shape.dims(),
                        t.dims()
                    );
                }
                t.to_dtype(dtype)?.to_device(device)?
            }
            None => self.init.get(shape, name, hints, dtype, device)?,
        };
        let var = Var::from_tensor(&initial)?;
        let mut vars = self
            .vars
            .lock()
            .map_err(|_| candle_core::Error::msg("variable registry poisoned"))?;
        vars.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _device: &Device) -> Result<Tensor> {
        candle_core::bail!("{name}: tensors are created with their shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// Linear → batch norm → (ReLU) layers.
struct Mlp {
    layers: Vec<(Linear, BatchNorm, bool)>,
}

impl Mlp {
    /// `dims[0] → dims[1] → … → dims[last]`, ReLU after every layer but the last.
    fn new(dims: &[usize], vb: VarBuilder) -> Result<Self> {
        let mut layers = Vec::new();
        for (i, pair) in dims.windows(2).enumerate() {
            let last = i + 2 == dims.len();
            layers.push((
                linear(pair[0], pair[1], vb.pp(format!("{i}.linear")))?,
                batch_norm(pair[1], 1e-5, vb.pp(format!("{i}.bn")))?,
                !last,
            ));
        }
        Ok(Self { layers })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for (linear, bn, relu) in &self.layers {
            h = bn.forward_t(&linear.forward(&h)?, train)?;
            if *relu {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
}

/// Trunk + heads, with all their variables.
pub struct SslModel {
    trunk: Trunk,
    projector: Mlp,
    predictor: Option<Mlp>,
    vars: VarSet,
    frozen: usize,
}

/// Projector output size.
pub const PROJECTION_DIM: usize = 256;

/// SwAV's default number of prototypes.
pub const SWAV_PROTOTYPES: usize = 128;

/// The name of SwAV's prototypes variable.
pub const PROTOTYPES: &str = natview_encoder::PROTOTYPES_NAME;

impl SslModel {
    /// Builds the model; `tensors` (by name) override the seeded init where they exist.
    pub fn new(
        config: &Architecture,
        method: Method,
        tensors: HashMap<String, Tensor>,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        Self::with_prototypes(config, method, tensors, (seed, SWAV_PROTOTYPES), device)
    }

    /// [`new`](Self::new) with SwAV's number of prototypes.
    pub fn with_prototypes(
        config: &Architecture,
        method: Method,
        tensors: HashMap<String, Tensor>,
        (seed, prototypes): (u64, usize),
        device: &Device,
    ) -> Result<Self> {
        let vars = Arc::new(Mutex::new(VarSet::new()));
        let backend = RecordingBackend {
            tensors,
            init: SeededInit { seed },
            vars: vars.clone(),
        };
        let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone());
        let trunk = config.build(vb.clone())?;
        let features = config.feature_dim();
        let head = vb.pp(HEAD_PREFIX);
        let projector = Mlp::new(
            &[features, 2 * PROJECTION_DIM, PROJECTION_DIM],
            head.pp("projector"),
        )?;
        if method == Method::Swav {
            // SwAV's prototypes: a head variable, kept at unit rows (see `normalise_prototypes`).
            head.get_with_hints(
                (prototypes.max(2), PROJECTION_DIM),
                "prototypes",
                candle_nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
            )?;
        }
        let predictor = if method.has_predictor() {
            Some(Mlp::new(
                &[PROJECTION_DIM, PROJECTION_DIM / 2, PROJECTION_DIM],
                head.pp("predictor"),
            )?)
        } else {
            None
        };
        let vars = vars
            .lock()
            .map_err(|_| candle_core::Error::msg("variable registry poisoned"))?
            .clone();
        Ok(Self {
            trunk,
            projector,
            predictor,
            vars,
            frozen: 0,
        })
    }

    /// Keeps the trunk's first `stages` stages (stem = 0) fixed in training; at most all of
    /// them.
    pub fn set_frozen(&mut self, stages: usize) {
        self.frozen = stages.min(self.trunk.stages());
    }

    /// Number of trunk stages, the stem included.
    pub fn stages(&self) -> usize {
        self.trunk.stages()
    }

    /// The trunk.
    pub fn trunk(&self) -> &Trunk {
        &self.trunk
    }

    /// SwAV's prototypes (`SWAV_PROTOTYPES × PROJECTION_DIM`), if the model has them.
    pub fn prototypes(&self) -> Option<&Var> {
        self.vars.get(PROTOTYPES)
    }

    /// Scales SwAV's prototypes back to unit rows (after every step, as SwAV does).
    pub fn normalise_prototypes(&self) -> Result<()> {
        if let Some(var) = self.prototypes() {
            var.set(&super::loss::l2_normalise_rows(var.as_tensor())?)?;
        }
        Ok(())
    }

    /// Every variable by name (trunk names as torchvision's; heads under `head.`).
    pub fn vars(&self) -> &VarSet {
        &self.vars
    }

    /// The trunk's pooled features (eval mode uses the running batch-norm statistics).
    pub fn features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.trunk.forward_t(x, train)
    }

    /// Projection `z` and prediction `p` (`p = z` without a predictor) of a batch, in training
    /// mode.
    pub fn forward_train(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, z, p) = self.forward_train_features(x)?;
        Ok((z, p))
    }

    /// The trunk's features `h` (the embedding retrieval uses) with `z` and `p`, in training
    /// mode.
    pub fn forward_train_features(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let h = self.trunk.forward_train(x, self.frozen)?;
        let z = self.projector.forward_t(&h, true)?;
        let p = match &self.predictor {
            Some(predictor) => predictor.forward_t(&z, true)?,
            None => z.clone(),
        };
        Ok((h, z, p))
    }

    /// The trunk's tensors only (what the encoder loads), by name.
    pub fn trunk_tensors(&self) -> HashMap<String, Tensor> {
        self.vars
            .iter()
            .filter(|(name, _)| !name.starts_with(HEAD_PREFIX))
            .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
            .collect()
    }

    /// The trunk's tensors, and for SwAV also the projector and the prototypes, which assign
    /// images to clusters ([`natview_encoder::ClusterHead`]): what a finished run exports.
    pub fn export_tensors(&self) -> HashMap<String, Tensor> {
        let mut tensors = self.trunk_tensors();
        if self.prototypes().is_some() {
            tensors.extend(
                self.vars
                    .iter()
                    .filter(|(name, _)| {
                        name.starts_with(&format!("{HEAD_PREFIX}.projector."))
                            || *name == PROTOTYPES
                    })
                    .map(|(name, var)| (name.clone(), var.as_tensor().clone())),
            );
        }
        tensors
    }
}
