//! The momentum target network of BYOL (and MoBY, next): a copy of the online trunk and
//! projector that is not trained but follows the online weights as an exponential moving
//! average, its momentum rising from the base value to 1 along a cosine over the run. Its
//! tensors are saved in the checkpoint under [`TARGET_PREFIX`], so a resumed run continues
//! with the same target.

use super::model::{SslModel, HEAD_PREFIX};
use super::momentum::{ema, momentum_at};
use super::Method;
use crate::encoder::Architecture;
use candle_core::{Device, Result, Tensor};
use std::collections::HashMap;

/// Prefix of the target network's tensors in a checkpoint.
pub const TARGET_PREFIX: &str = "target.";

/// The target network.
pub struct Target {
    model: SslModel,
}

impl Target {
    /// A target starting as the online network's trunk and projector (or as `stored`, the
    /// tensors a checkpoint kept, names without the prefix).
    pub fn new(
        architecture: &Architecture,
        online: &SslModel,
        stored: Option<HashMap<String, Tensor>>,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
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
        Ok(Self { model })
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
        self.model
            .vars()
            .iter()
            .map(|(name, var)| (format!("{TARGET_PREFIX}{name}"), var.as_tensor().clone()))
            .collect()
    }
}
