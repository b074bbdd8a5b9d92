//! SGD with momentum and weight decay (SimSiam's optimiser), with its state kept as named tensors
//! so that a checkpoint can hold it and a resumed run continues exactly.

use super::model::VarSet;
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor};
use std::collections::{BTreeMap, HashMap};

/// Momentum SGD over a set of named variables.
pub struct Sgd {
    momentum: f64,
    weight_decay: f64,
    buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    /// A fresh optimiser (momentum buffers start at zero when first used).
    pub fn new(momentum: f64, weight_decay: f64) -> Self {
        Self {
            momentum,
            weight_decay,
            buffers: BTreeMap::new(),
        }
    }

    /// Restores the momentum buffers saved by [`state`](Self::state).
    pub fn with_state(mut self, state: HashMap<String, Tensor>) -> Self {
        self.buffers = state.into_iter().collect();
        self
    }

    /// The momentum buffers by variable name.
    pub fn state(&self) -> &BTreeMap<String, Tensor> {
        &self.buffers
    }

    /// One step: `v ← μ·v + g + λ·w`, `w ← w − lr·v`, for every variable with a gradient.
    pub fn step(&mut self, vars: &VarSet, grads: &GradStore, lr: f64) -> Result<()> {
        for (name, var) in vars {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let weight = var.as_tensor().detach();
            let grad = (grad + (&weight * self.weight_decay)?)?;
            let velocity = match self.buffers.get(name) {
                Some(previous) => ((previous * self.momentum)? + grad)?,
                None => grad,
            };
            var.set(&(weight - (&velocity * lr)?)?)?;
            self.buffers.insert(name.clone(), velocity.detach());
        }
        Ok(())
    }
}

/// The learning rate at `step` (0-based) of `total`: linear warm-up over `warmup` steps, then
/// cosine decay to zero.
pub fn learning_rate(base: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let decay_steps = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / decay_steps as f64).min(1.0);
    base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn the_schedule_warms_up_then_decays_to_zero() {
        assert!((learning_rate(0.1, 0, 10, 100) - 0.01).abs() < 1e-12);
        assert!((learning_rate(0.1, 9, 10, 100) - 0.1).abs() < 1e-12);
        assert!((learning_rate(0.1, 10, 10, 100) - 0.1).abs() < 1e-12);
        assert!((learning_rate(0.1, 55, 10, 100) - 0.05).abs() < 1e-12);
        assert!(learning_rate(0.1, 100, 10, 100).abs() < 1e-12);
    }

    #[test]
    fn sgd_minimises_a_quadratic() {
        let device = Device::Cpu;
        let w = Var::new(&[3f32, -2.0], &device).expect("var");
        let mut vars = VarSet::new();
        vars.insert("w".into(), w.clone());
        let mut sgd = Sgd::new(0.9, 0.0);
        for _ in 0..200 {
            let loss = w.as_tensor().sqr().and_then(|t| t.sum_all()).expect("loss");
            let grads = loss.backward().expect("grads");
            sgd.step(&vars, &grads, 0.05).expect("step");
        }
        let values = w.as_tensor().to_vec1::<f32>().expect("values");
        assert!(values.iter().all(|v| v.abs() < 1e-3), "{values:?}");
        assert!(sgd.state().contains_key("w"));
    }
}
