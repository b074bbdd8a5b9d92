//! Batch norm in training mode, fused with the activation that follows it, as one candle
//! custom op with its own backward (kernels in `batch_norm_cpu`).
//!
//! candle 0.11's `BatchNorm::forward_train` transposes the input to channels-first and copies
//! it, then subtracts, squares, averages, divides, multiplies and adds in separate broadcast
//! passes (each a new tensor), transposes back, and autograd retraces all of them backwards:
//! about a third of a training step's time went to those element-wise maps. Here the forward
//! is one statistics pass and one normalise-and-activate pass, and the backward two passes per
//! channel. Running statistics are updated as candle does (momentum, unbiased variance).
//! On an NVIDIA GPU the same op runs natview's CUDA kernels (`batch_norm_cuda`) when
//! `NATVIEW_CUDA_KERNELS=own`. Otherwise — other devices and dtypes, and the CPU with
//! `NATVIEW_CONV=candle` — it is candle's batch norm.

pub use super::batch_norm_cpu::Activation;
use super::batch_norm_cpu::{self, Dims, Saved};
use super::conv::f32_values;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use candle_nn::{BatchNorm, ModuleT};
use std::sync::{Arc, Mutex};

impl Activation {
    /// The activation as tensor ops (candle's relu and clamp, with their gradients).
    pub fn apply(self, y: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Identity => Ok(y.clone()),
            Activation::Relu => y.relu(),
            Activation::Relu6 => y.clamp(0f32, 6f32),
        }
    }
}

/// `activation(norm(x))` with batch statistics (training mode), updating `norm`'s running
/// mean and variance.
pub fn batch_norm_train(norm: &BatchNorm, x: &Tensor, activation: Activation) -> Result<Tensor> {
    let fused = x.dtype() == DType::F32
        && x.rank() >= 2
        && own_kernels_on(x.device())
        && norm.weight_and_bias().is_some();
    if !fused {
        return activation.apply(&norm.forward_t(x, true)?);
    }
    let Some((gamma, beta)) = norm.weight_and_bias() else {
        candle_core::bail!("batch norm without an affine map");
    };
    let x = x.contiguous()?;
    let dims = x.dims();
    let d = Dims {
        n: dims[0],
        c: dims[1],
        hw: dims[2..].iter().product(),
    };
    if d.c != gamma.dim(0)? {
        candle_core::bail!(
            "batch norm over {} channels given an input of shape {dims:?}",
            gamma.dim(0)?
        );
    }
    let saved = Arc::new(Mutex::new(None));
    let op = Forward {
        dims: d,
        eps: norm.eps() as f32,
        activation,
        saved: saved.clone(),
    };
    let y = x.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    let stats = saved
        .lock()
        .map_err(|_| candle_core::Error::msg("batch norm: statistics poisoned"))?
        .clone();
    if let Some((mean, var)) = stats.map(|s: Statistics| (s.mean, s.var)) {
        update_running(norm, &mean, &var, d.per_channel())?;
    }
    Ok(y)
}

/// Whether natview's own batch-norm kernels run on `device` (see the module's documentation).
fn own_kernels_on(device: &candle_core::Device) -> bool {
    if device.is_cpu() {
        return super::own_cpu_kernels();
    }
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        return super::cuda_launch::enabled();
    }
    false
}

/// `running ← (1 − m)·running + m·batch` (the variance unbiased), in place.
fn update_running(norm: &BatchNorm, mean: &[f32], var: &[f32], count: usize) -> Result<()> {
    let m = norm.momentum();
    let unbias = count as f64 / (count.max(2) - 1) as f64;
    let device = norm.running_mean().device();
    let running_mean = norm.running_mean();
    let running_var = norm.running_var();
    let new_mean = ((running_mean.detach() * (1.0 - m))?
        + (Tensor::from_slice(mean, mean.len(), device)? * m)?)?;
    let new_var = ((running_var.detach() * (1.0 - m))?
        + (Tensor::from_slice(var, var.len(), device)? * (m * unbias))?)?;
    // The running statistics are the model's variables: written into their storage.
    running_mean.slice_set(&new_mean.contiguous()?, 0, 0)?;
    running_var.slice_set(&new_var.contiguous()?, 0, 0)
}

/// A batch's statistics, for the running averages.
#[derive(Debug, Clone)]
struct Statistics {
    mean: Vec<f32>,
    var: Vec<f32>,
}

/// The forward op on (input, γ, β).
struct Forward {
    dims: Dims,
    eps: f32,
    activation: Activation,
    /// Filled by the forward pass for [`batch_norm_train`].
    saved: Arc<Mutex<Option<Statistics>>>,
}

/// The op name in [`f32_values`]'s messages.
const OP: &str = "batch norm";

impl Forward {
    /// What the backward pass needs: the batch statistics the forward pass left, and γ.
    fn saved(&self, mean: Vec<f32>, var: &[f32], gamma: Vec<f32>) -> Saved {
        Saved {
            dims: self.dims,
            mean,
            inv_std: var.iter().map(|v| 1.0 / (v + self.eps).sqrt()).collect(),
            gamma,
            activation: self.activation,
        }
    }
}

impl CustomOp3 for Forward {
    fn name(&self) -> &'static str {
        "natview-batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        gamma: &CpuStorage,
        gamma_layout: &Layout,
        beta: &CpuStorage,
        beta_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_values(x, x_layout, OP, "input")?;
        let gamma = f32_values(gamma, gamma_layout, OP, "γ")?;
        let beta = f32_values(beta, beta_layout, OP, "β")?;
        let (mean, var) = batch_norm_cpu::statistics(self.dims, x);
        let s = self.saved(mean, &var, gamma.to_vec());
        let scale: Vec<f32> = (0..self.dims.c).map(|c| gamma[c] * s.inv_std[c]).collect();
        let shift: Vec<f32> = (0..self.dims.c)
            .map(|c| beta[c] - s.mean[c] * scale[c])
            .collect();
        let y = batch_norm_cpu::normalise(self.dims, x, &scale, &shift, self.activation);
        if let Ok(mut slot) = self.saved.lock() {
            *slot = Some(Statistics { mean: s.mean, var });
        }
        Ok((CpuStorage::F32(y), x_layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_layout: &Layout,
        gamma: &candle_core::CudaStorage,
        gamma_layout: &Layout,
        beta: &candle_core::CudaStorage,
        beta_layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (y, mean, var) = super::batch_norm_cuda::forward(
            self.dims,
            self.eps,
            self.activation,
            (x, x_layout),
            (gamma, gamma_layout),
            (beta, beta_layout),
        )?;
        if let Ok(mut slot) = self.saved.lock() {
            *slot = Some(Statistics { mean, var });
        }
        Ok((y, x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let gamma_values = gamma.to_vec1::<f32>()?;
        let stats = self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::msg("batch norm: statistics poisoned"))?
            .clone()
            .ok_or_else(|| candle_core::Error::msg("batch norm: backward before forward"))?;
        let saved = self.saved(stats.mean, &stats.var, gamma_values.clone());
        let parameters = Arc::new(Mutex::new(None));
        let dx = x.apply_op3_no_bwd(
            y,
            &grad.contiguous()?,
            &Backward {
                saved,
                parameters: parameters.clone(),
            },
        )?;
        let (d_gamma, d_beta) = parameters
            .lock()
            .map_err(|_| candle_core::Error::msg("batch norm: gradients poisoned"))?
            .take()
            .ok_or_else(|| candle_core::Error::msg("batch norm: no parameter gradients"))?;
        let device = x.device();
        let c = gamma_values.len();
        Ok((
            Some(dx),
            Some(Tensor::from_vec(d_gamma, c, device)?),
            Some(Tensor::from_vec(d_beta, c, device)?),
        ))
    }
}

/// The backward op on (input, output, output gradient): returns the input gradient and leaves
/// (dγ, dβ) in `parameters`.
struct Backward {
    saved: Saved,
    parameters: Arc<Mutex<Option<ParameterGradients>>>,
}

/// (dγ, dβ) per channel.
type ParameterGradients = (Vec<f32>, Vec<f32>);

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "natview-batch-norm-train-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        y: &CpuStorage,
        y_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_values(x, x_layout, OP, "input")?;
        let y = f32_values(y, y_layout, OP, "output")?;
        let grad = f32_values(grad, grad_layout, OP, "output gradient")?;
        if x.len() != y.len() || x.len() != grad.len() {
            candle_core::bail!("natview batch norm: gradient of another shape");
        }
        let (dx, d_gamma, d_beta) = batch_norm_cpu::gradients(&self.saved, x, y, grad);
        if let Ok(mut slot) = self.parameters.lock() {
            *slot = Some((d_gamma, d_beta));
        }
        Ok((CpuStorage::F32(dx), x_layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        x_layout: &Layout,
        y: &candle_core::CudaStorage,
        y_layout: &Layout,
        grad: &candle_core::CudaStorage,
        grad_layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (dx, d_gamma, d_beta) = super::batch_norm_cuda::gradients(
            &self.saved,
            (x, x_layout),
            (y, y_layout),
            (grad, grad_layout),
        )?;
        if let Ok(mut slot) = self.parameters.lock() {
            *slot = Some((d_gamma, d_beta));
        }
        Ok((dx, x_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use candle_nn::VarBuilder;

    use crate::test_support::max_abs_diff as max_diff;

    /// Ours and candle's batch norm (+ activation) agree on the output, the running statistics
    /// and the gradients of input, γ and β.
    #[test]
    fn matches_candle_forward_running_statistics_and_gradients() {
        let device = Device::Cpu;
        for (shape, activation) in [
            ((4, 3, 5, 6), Activation::Identity),
            ((2, 8, 7, 7), Activation::Relu),
            ((3, 5, 4, 4), Activation::Relu6),
            ((6, 16, 1, 1), Activation::Relu),
        ] {
            let make = || {
                let varmap = candle_nn::VarMap::new();
                let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
                let norm = candle_nn::batch_norm(shape.1, 1e-5, vb).expect("bn");
                (varmap, norm)
            };
            let (map_a, ours_bn) = make();
            let (map_b, theirs_bn) = make();
            // Distinct γ, β in both (the same values).
            for map in [&map_a, &map_b] {
                let data = map.data().lock().expect("lock");
                for (name, var) in data.iter() {
                    let c = shape.1;
                    let values: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 * 0.3).collect();
                    let t = Tensor::from_vec(values, c, &device).expect("t");
                    let t = if name.contains("bias") {
                        (t - 1.0).expect("b")
                    } else {
                        t
                    };
                    var.set(&t).expect("set");
                }
            }
            let x = Var::from_tensor(
                &(Tensor::randn(0f32, 1.5, shape, &device).expect("x") + 2.0).expect("x"),
            )
            .expect("var");
            let ours = batch_norm_train(&ours_bn, x.as_tensor(), activation).expect("ours");
            let theirs = {
                let y = theirs_bn.forward_t(x.as_tensor(), true).expect("theirs");
                activation.apply(&y).expect("activation")
            };
            assert!(max_diff(&ours, &theirs) < 1e-4, "forward {shape:?}");
            assert!(max_diff(ours_bn.running_mean(), theirs_bn.running_mean()) < 1e-5);
            assert!(max_diff(ours_bn.running_var(), theirs_bn.running_var()) < 1e-5);
            let weights = Tensor::randn(0f32, 1.0, shape, &device).expect("w");
            let grads_ours = (&ours * &weights)
                .and_then(|l| l.sum_all())
                .and_then(|l| l.backward())
                .expect("bwd");
            let grads_theirs = (&theirs * &weights)
                .and_then(|l| l.sum_all())
                .and_then(|l| l.backward())
                .expect("bwd");
            let dx =
                |g: &candle_core::backprop::GradStore| g.get(x.as_tensor()).expect("dx").clone();
            assert!(
                max_diff(&dx(&grads_ours), &dx(&grads_theirs)) < 1e-3,
                "dx {shape:?}"
            );
            let (g_a, b_a) = ours_bn.weight_and_bias().expect("affine");
            let (g_b, b_b) = theirs_bn.weight_and_bias().expect("affine");
            let get =
                |g: &candle_core::backprop::GradStore, t: &Tensor| g.get(t).expect("grad").clone();
            assert!(
                max_diff(&get(&grads_ours, g_a), &get(&grads_theirs, g_b)) < 1e-3,
                "dγ {shape:?}"
            );
            assert!(
                max_diff(&get(&grads_ours, b_a), &get(&grads_theirs, b_b)) < 1e-3,
                "dβ {shape:?}"
            );
        }
    }
}
