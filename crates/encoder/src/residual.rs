//! The end of a residual block, `relu(h + shortcut)`, as one candle custom op with its own
//! backward.
//!
//! As candle ops it is an add and a relu forward, and backward relu's mask (a zeros tensor, a
//! comparison, a cast, a product) then the add's two gradients: about ten passes over the
//! block's output, each a new tensor, all on the calling thread. Here the forward is one pass
//! and the backward one (both inputs receive the same masked gradient). Off the CPU, for other
//! dtypes and with `NATVIEW_CONV=candle` it is candle's add and relu.

use super::conv::{f32_values, own_cpu_kernels};
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel task: big enough that scheduling costs nothing next to the pass.
const CHUNK: usize = 1 << 15;

/// `relu(h + shortcut)` for two tensors of one shape.
pub fn add_relu(h: &Tensor, shortcut: &Tensor) -> Result<Tensor> {
    let fused = h.device().is_cpu()
        && h.dtype() == DType::F32
        && shortcut.dtype() == DType::F32
        && own_cpu_kernels();
    if !fused || h.dims() != shortcut.dims() {
        return (h + shortcut)?.relu();
    }
    // candle records the op for backward only when an input tracks gradients.
    h.contiguous()?.apply_op2(&shortcut.contiguous()?, AddRelu)
}

/// The op on (h, shortcut).
struct AddRelu;

/// The op name in [`f32_values`]'s messages.
const OP: &str = "residual add + relu";

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "natview-add-relu"
    }

    fn cpu_fwd(
        &self,
        h: &CpuStorage,
        h_layout: &Layout,
        shortcut: &CpuStorage,
        shortcut_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let h = f32_values(h, h_layout, OP, "block output")?;
        let shortcut = f32_values(shortcut, shortcut_layout, OP, "shortcut")?;
        if h.len() != shortcut.len() {
            candle_core::bail!(
                "natview {OP}: {} values and a shortcut of {}",
                h.len(),
                shortcut.len()
            );
        }
        Ok((
            CpuStorage::F32(add_relu_values(h, shortcut)),
            h_layout.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        _h: &Tensor,
        _shortcut: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let masked = y.apply_op2_no_bwd(&grad.contiguous()?, &MaskGradient)?;
        Ok((Some(masked.clone()), Some(masked)))
    }
}

/// The backward op on (output, output gradient): the gradient where the output is positive.
struct MaskGradient;

impl CustomOp2 for MaskGradient {
    fn name(&self) -> &'static str {
        "natview-add-relu-grad"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        y_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = f32_values(y, y_layout, OP, "output")?;
        let grad = f32_values(grad, grad_layout, OP, "output gradient")?;
        if y.len() != grad.len() {
            candle_core::bail!(
                "natview {OP}: {} outputs and a gradient of {}",
                y.len(),
                grad.len()
            );
        }
        Ok((
            CpuStorage::F32(masked_gradient(y, grad)),
            y_layout.shape().clone(),
        ))
    }
}

/// `max(h + shortcut, 0)` element by element, in parallel (written once, not zeroed first).
fn add_relu_values(h: &[f32], shortcut: &[f32]) -> Vec<f32> {
    h.par_iter()
        .zip(shortcut)
        .with_min_len(CHUNK)
        .map(|(a, b)| (a + b).max(0.0))
        .collect()
}

/// `grad` where `y > 0`, else 0 (relu's derivative at 0 taken as 0, as PyTorch does; candle
/// takes 1 there, a difference only on exact zeros).
fn masked_gradient(y: &[f32], grad: &[f32]) -> Vec<f32> {
    y.par_iter()
        .zip(grad)
        .with_min_len(CHUNK)
        .map(|(y, g)| if *y > 0.0 { *g } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 250.0 - 2.0)
            .collect()
    }

    #[test]
    fn matches_candles_add_and_relu_forward_and_backward() -> Result<()> {
        let device = Device::Cpu;
        let shape = (3, 4, 5, 7);
        let h = Var::from_vec(values(420, 1), shape, &device)?;
        // Offset so that no sum is exactly 0, where the derivative conventions differ.
        let offset: Vec<f32> = values(420, 7).iter().map(|v| v + 1e-3).collect();
        let s = Var::from_vec(offset, shape, &device)?;
        let weights = Tensor::from_vec(values(420, 3), shape, &device)?;
        let fused = add_relu(h.as_tensor(), s.as_tensor())?;
        let reference = (h.as_tensor() + s.as_tensor())?.relu()?;
        let difference = (&fused - &reference)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(difference < 1e-6, "forward differs by {difference}");

        let fused_grads = (fused * &weights)?.sum_all()?.backward()?;
        let reference_grads = (reference * &weights)?.sum_all()?.backward()?;
        for var in [&h, &s] {
            let (Some(a), Some(b)) = (
                fused_grads.get(var.as_tensor()),
                reference_grads.get(var.as_tensor()),
            ) else {
                panic!("a gradient is missing");
            };
            let difference = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(difference < 1e-6, "gradient differs by {difference}");
        }
        Ok(())
    }

    #[test]
    fn without_gradients_no_graph_is_kept() -> Result<()> {
        let device = Device::Cpu;
        let h = Tensor::from_vec(values(60, 2), (2, 3, 10), &device)?;
        let s = Tensor::from_vec(values(60, 5), (2, 3, 10), &device)?;
        let y = add_relu(&h, &s)?;
        assert!(!y.track_op());
        assert!(y.flatten_all()?.to_vec1::<f32>()?.iter().all(|v| *v >= 0.0));
        Ok(())
    }
}
