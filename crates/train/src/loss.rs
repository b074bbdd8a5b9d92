//! Self-supervised losses on two views' outputs: SimSiam's symmetric negative cosine with stop
//! gradient, and InfoNCE (SimCLR-style, in-batch negatives, both directions).

use candle_core::{DType, Result, Tensor, D};

/// Rows scaled to unit length.
pub fn l2_normalise_rows(x: &Tensor) -> Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?.sqrt()?;
    x.broadcast_div(&norm)
}

/// Mean cosine similarity of matching rows.
fn mean_cosine(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    (l2_normalise_rows(a)? * l2_normalise_rows(b)?)?
        .sum(D::Minus1)?
        .mean_all()
}

/// SimSiam: `−½·cos(p₁, sg(z₂)) − ½·cos(p₂, sg(z₁))` (minimum −1).
pub fn simsiam(p1: &Tensor, z1: &Tensor, p2: &Tensor, z2: &Tensor) -> Result<Tensor> {
    let a = mean_cosine(p1, &z2.detach())?;
    let b = mean_cosine(p2, &z1.detach())?;
    (a + b)? * -0.5
}

/// InfoNCE with temperature `tau`: row `i` of view 1 must pick row `i` of view 2 among the
/// batch, and the other way round; the mean of both cross-entropies.
pub fn info_nce(z1: &Tensor, z2: &Tensor, tau: f64) -> Result<Tensor> {
    let (a, b) = (l2_normalise_rows(z1)?, l2_normalise_rows(z2)?);
    let logits = (a.matmul(&b.t()?)? / tau)?;
    let n = logits.dim(0)?;
    let targets = Tensor::arange(0u32, n as u32, logits.device())?;
    let forward = candle_nn::loss::cross_entropy(&logits, &targets)?;
    let backward = candle_nn::loss::cross_entropy(&logits.t()?.contiguous()?, &targets)?;
    ((forward + backward)? * 0.5)?.to_dtype(DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn identical_views_give_the_best_losses() {
        let device = Device::Cpu;
        let z = Tensor::randn(0f32, 1.0, (8, 16), &device).expect("z");
        let other = Tensor::randn(0f32, 1.0, (8, 16), &device).expect("other");
        let best = simsiam(&z, &z, &z, &z)
            .and_then(|l| l.to_scalar::<f32>())
            .expect("loss");
        assert!((best + 1.0).abs() < 1e-5, "{best}");
        let worse = simsiam(&z, &z, &other, &other)
            .and_then(|l| l.to_scalar::<f32>())
            .expect("loss");
        assert!(worse > best);

        let matched = info_nce(&z, &z, 0.1)
            .and_then(|l| l.to_scalar::<f32>())
            .expect("loss");
        let unmatched = info_nce(&z, &other, 0.1)
            .and_then(|l| l.to_scalar::<f32>())
            .expect("loss");
        assert!(matched < unmatched, "{matched} vs {unmatched}");
        // With orthogonal-ish random rows, a perfect match is close to zero loss at low τ.
        assert!(matched < 0.5, "{matched}");
    }

    #[test]
    fn simsiam_does_not_backpropagate_into_the_targets() {
        let device = Device::Cpu;
        let p = candle_core::Var::randn(0f32, 1.0, (4, 8), &device).expect("p");
        let z = candle_core::Var::randn(0f32, 1.0, (4, 8), &device).expect("z");
        let loss =
            simsiam(p.as_tensor(), z.as_tensor(), p.as_tensor(), z.as_tensor()).expect("loss");
        let grads = loss.backward().expect("backward");
        assert!(grads.get(p.as_tensor()).is_some());
        assert!(grads.get(z.as_tensor()).is_none());
    }
}
