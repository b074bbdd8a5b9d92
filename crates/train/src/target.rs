//! The momentum target network of BYOL and MoBY: a copy of the online trunk and projector
//! that is not trained but follows the online weights as an exponential moving average, its
//! momentum rising from the base value to 1 along a cosine over the run; for MoBY also the
//! queue of its earlier keys (unit rows, oldest first). Its tensors and the queue are saved in
//! the checkpoint under [`TARGET_PREFIX`], so a resumed run continues with the same target.

use super::model::{SslModel, HEAD_PREFIX, PROJECTION_DIM};
use super::momentum::{ema, momentum_at};
use super::{Method, TrainConfig};
use candle_core::{Device, Result, Tensor};
use natview_encoder::Architecture;
use std::collections::HashMap;

/// Prefix of the target network's tensors in a checkpoint.
pub const TARGET_PREFIX: &str = "target.";

/// The target network.
pub struct Target {
    model: SslModel,
    /// MoBY's queue of earlier target keys (`queue × PROJECTION_DIM`, oldest first).
    queue: Option<Tensor>,
}

/// The queue's name in a checkpoint (after [`TARGET_PREFIX`]).
const QUEUE_NAME: &str = "queue";

impl Target {
    /// A target starting as the online network's trunk and projector (or as `stored`, the
    /// tensors a checkpoint kept, names without the prefix).
    pub fn new(
        architecture: &Architecture,
        online: &SslModel,
        stored: Option<HashMap<String, Tensor>>,
        (seed, queue): (u64, Option<usize>),
        device: &Device,
    ) -> Result<Self> {
        let mut stored = stored;
        let kept_queue = stored.as_mut().and_then(|s| s.remove(QUEUE_NAME));
        let queue = match (queue, kept_queue) {
            (None, _) => None,
            (Some(_), Some(kept)) => Some(kept),
            // Seeded random unit rows until real keys push them out (as MoCo starts).
            (Some(len), None) => {
                let mut rng = natview_core::rng::SplitMix64::new(seed ^ 0x9e3e_0e5e);
                let values: Vec<f32> = (0..len * PROJECTION_DIM)
                    .map(|_| rng.next_normal() as f32)
                    .collect();
                let rows = Tensor::from_vec(values, (len, PROJECTION_DIM), device)?;
                Some(super::loss::l2_normalise_rows(&rows)?)
            }
        };
        let tensors = match stored {
            Some(stored) => stored,
            None => online
                .vars()
                .iter()
                .filter(|(name, _)| !name.starts_with(&format!("{HEAD_PREFIX}.predictor")))
                .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
                .collect::<Result<_>>()?,
        };
        // No predictor: the target only projects (InfoNCE's heads are trunk + projector).
        let model = SslModel::new(architecture, Method::InfoNce, tensors, seed, device)?;
        Ok(Self { model, queue })
    }

    /// The target `config`'s method trains against (`None` for methods without one): MoBY's
    /// with a queue of `config.queue` keys, BYOL's without; from the online network, or from
    /// `stored` (a checkpoint's tensors, names without the prefix).
    pub fn for_config(
        architecture: &Architecture,
        online: &SslModel,
        stored: Option<HashMap<String, Tensor>>,
        config: &TrainConfig,
        device: &Device,
    ) -> Result<Option<Self>> {
        if !config.method.uses_target() {
            return Ok(None);
        }
        let queue = (config.method == Method::Moby).then_some(config.queue.max(1));
        Self::new(architecture, online, stored, (config.seed, queue), device).map(Some)
    }

    /// MoBY's queue of earlier keys, if this target keeps one.
    pub fn queue(&self) -> Option<&Tensor> {
        self.queue.as_ref()
    }

    /// Appends `keys` (rows, normalised here) to the queue, dropping as many of the oldest.
    pub fn enqueue(&mut self, keys: &Tensor) -> Result<()> {
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let keys = super::loss::l2_normalise_rows(&keys.detach())?;
        let (len, added) = (queue.dim(0)?, keys.dim(0)?);
        self.queue = Some(if added >= len {
            keys.narrow(0, added - len, len)?
        } else {
            Tensor::cat(&[&queue.narrow(0, added, len - added)?, &keys], 0)?
        });
        Ok(())
    }

    /// The target's projections of a batch (training-mode batch norm, as the online network
    /// sees it), with no gradient.
    pub fn project(&self, x: &Tensor) -> Result<Tensor> {
        let (z, _) = self.model.forward_train(x)?;
        Ok(z.detach())
    }

    /// Moves the target towards the online weights after step `step` of `total`:
    /// `target ← m·target + (1 − m)·online`, `m` from `base` up to 1.
    pub fn follow(&self, online: &SslModel, step: usize, total: usize, base: f64) -> Result<()> {
        let m = momentum_at(step, total, base);
        for (name, var) in self.model.vars() {
            if let Some(source) = online.vars().get(name) {
                var.set(&ema(var.as_tensor(), source.as_tensor(), m)?)?;
            }
        }
        Ok(())
    }

    /// Its tensors, named for a checkpoint.
    pub fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut tensors: Vec<(String, Tensor)> = self
            .model
            .vars()
            .iter()
            .map(|(name, var)| (format!("{TARGET_PREFIX}{name}"), var.as_tensor().clone()))
            .collect();
        if let Some(queue) = &self.queue {
            tensors.push((format!("{TARGET_PREFIX}{QUEUE_NAME}"), queue.clone()));
        }
        tensors
    }
}
