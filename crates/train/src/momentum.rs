//! The losses and schedules of the momentum-target and clustering methods (issue 18, first
//! part): BYOL's normalised-prediction loss, MoBY's contrastive loss against a queue of target
//! keys, SwAV's swapped prediction with Sinkhorn–Knopp assignments, and the cosine-increasing
//! momentum of the target encoder. Pure tensor functions, tested against hand computations;
//! the training loop does not use them yet.

use super::loss::l2_normalise_rows;
use candle_core::{DType, Result, Tensor, D};

/// BYOL: `2 − 2·cos(p, sg(z))`, the mean squared distance of the normalised online prediction
/// `p` and target projection `z` (the target gets no gradient).
pub fn byol(p: &Tensor, z_target: &Tensor) -> Result<Tensor> {
    let cos = (l2_normalise_rows(p)? * l2_normalise_rows(&z_target.detach())?)?.sum(D::Minus1)?;
    (2.0 - (cos * 2.0)?)?.mean_all()
}

/// MoBY (and MoCo): InfoNCE of online queries `q` (B × D) against their target keys `k`
/// (B × D, no gradient) with the rows of `queue` (K × D, earlier keys) as further negatives, at
/// temperature `tau`. Rows are normalised here.
pub fn moby(q: &Tensor, k: &Tensor, queue: &Tensor, tau: f64) -> Result<Tensor> {
    let q = l2_normalise_rows(q)?;
    let k = l2_normalise_rows(&k.detach())?;
    let queue = l2_normalise_rows(&queue.detach())?;
    let positive = (&q * &k)?.sum_keepdim(D::Minus1)?;
    let negatives = q.matmul(&queue.t()?)?;
    let logits = (Tensor::cat(&[&positive, &negatives], 1)? / tau)?;
    let targets = Tensor::zeros(q.dim(0)?, DType::U32, q.device())?;
    candle_nn::loss::cross_entropy(&logits, &targets)
}

/// Sinkhorn–Knopp: the soft assignment of a batch's prototype `scores` (B × K) with equal
/// shares for every prototype — `exp(scores / epsilon)` scaled `iterations` times so that
/// each prototype's column sums to 1/K and each row to 1/B, returned with rows summing to 1.
/// No gradient flows through it.
pub fn sinkhorn(scores: &Tensor, epsilon: f64, iterations: usize) -> Result<Tensor> {
    let (b, k) = scores.dims2()?;
    // Subtracting the maximum keeps exp() finite; the scaling removes it again.
    let scores = scores.detach();
    let top = scores.max_keepdim(D::Minus1)?.max_keepdim(0)?;
    let mut q = (scores.broadcast_sub(&top)? / epsilon)?.exp()?;
    q = q.broadcast_div(&q.sum_all()?)?;
    for _ in 0..iterations {
        // Each prototype (column) gets 1/K of the mass, then each sample (row) 1/B.
        q = (q.broadcast_div(&q.sum_keepdim(0)?)? / k as f64)?;
        q = (q.broadcast_div(&q.sum_keepdim(1)?)? / b as f64)?;
    }
    q * b as f64
}

/// SwAV's swapped prediction: each view's Sinkhorn assignment is the target of the other
/// view's softmax over the prototypes (`scores` B × K, cosines to normalised prototypes), at
/// temperature `tau`: `−½·mean(Σ q₁·log p₂ + Σ q₂·log p₁)`.
pub fn swav(
    scores1: &Tensor,
    scores2: &Tensor,
    tau: f64,
    epsilon: f64,
    iterations: usize,
) -> Result<Tensor> {
    let q1 = sinkhorn(scores1, epsilon, iterations)?;
    let q2 = sinkhorn(scores2, epsilon, iterations)?;
    let log_p1 = candle_nn::ops::log_softmax(&(scores1 / tau)?, D::Minus1)?;
    let log_p2 = candle_nn::ops::log_softmax(&(scores2 / tau)?, D::Minus1)?;
    let a = (q1 * log_p2)?.sum(D::Minus1)?.mean_all()?;
    let b = (q2 * log_p1)?.sum(D::Minus1)?.mean_all()?;
    (a + b)? * -0.5
}

/// The target encoder's momentum at `step` of `total`: from `base` up to 1 along a cosine,
/// `1 − (1 − base)·(cos(π·step/total) + 1)/2` (BYOL's and MoBY's schedule).
pub fn momentum_at(step: usize, total: usize, base: f64) -> f64 {
    let t = step as f64 / total.max(1) as f64;
    1.0 - (1.0 - base) * ((std::f64::consts::PI * t).cos() + 1.0) / 2.0
}

/// One exponential-moving-average update of a target tensor: `m·target + (1 − m)·online`.
pub fn ema(target: &Tensor, online: &Tensor, momentum: f64) -> Result<Tensor> {
    (target * momentum)? + (online.detach() * (1.0 - momentum))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(rows: &[&[f32]]) -> Tensor {
        let data: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_vec(data, (rows.len(), rows[0].len()), &Device::Cpu).expect("tensor")
    }

    fn scalar(x: Tensor) -> f32 {
        x.to_scalar::<f32>().expect("scalar")
    }

    #[test]
    fn byol_is_two_minus_twice_the_cosine() {
        // cos = 1 for the first row, 0 for the second: (0 + 2) / 2 = 1.
        let p = t(&[&[2.0, 0.0], &[0.0, 3.0]]);
        let z = t(&[&[5.0, 0.0], &[1.0, 0.0]]);
        assert!((scalar(byol(&p, &z).expect("loss")) - 1.0).abs() < 1e-6);
        // 45°: 2 − 2·cos 45° = 2 − √2.
        let p = t(&[&[1.0, 1.0]]);
        let z = t(&[&[1.0, 0.0]]);
        let expected = 2.0 - 2f32.sqrt();
        assert!((scalar(byol(&p, &z).expect("loss")) - expected).abs() < 1e-6);
    }

    #[test]
    fn moby_is_cross_entropy_of_the_key_among_the_queue() {
        // q = k = e1, queue = [e2, −e1]: logits (1, 0, −1)/τ with τ = 1 →
        // −log(e / (e + 1 + 1/e)).
        let q = t(&[&[1.0, 0.0]]);
        let queue = t(&[&[0.0, 1.0], &[-1.0, 0.0]]);
        let loss = scalar(moby(&q, &q, &queue, 1.0).expect("loss"));
        let e = std::f32::consts::E;
        let expected = -(e / (e + 1.0 + 1.0 / e)).ln();
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
        // At τ = 0.1 the same pair is far more certain.
        assert!(scalar(moby(&q, &q, &queue, 0.1).expect("loss")) < 1e-3);
    }

    #[test]
    fn sinkhorn_spreads_the_batch_evenly_over_the_prototypes() {
        // Four samples that all prefer prototype 0: the assignment still gives each prototype
        // half of the batch, and each row sums to one.
        let scores = t(&[&[0.9, 0.1], &[0.8, 0.2], &[0.7, 0.6], &[0.6, 0.5]]);
        let q = sinkhorn(&scores, 0.05, 3).expect("q");
        let rows: Vec<f32> = q.sum(1).expect("rows").to_vec1().expect("vec");
        let cols: Vec<f32> = q.sum(0).expect("cols").to_vec1().expect("vec");
        for r in rows {
            assert!((r - 1.0).abs() < 1e-4, "row {r}");
        }
        for c in cols {
            assert!((c - 2.0).abs() < 0.05, "column {c}");
        }
        // By hand, one iteration on two samples with scores/ε = (ln 3, 0), (0, ln 3):
        // exp → (3, 1), (1, 3); already balanced, so q = (3/4, 1/4), (1/4, 3/4).
        let scores = t(&[&[3f32.ln(), 0.0], &[0.0, 3f32.ln()]]);
        let q: Vec<Vec<f32>> = sinkhorn(&scores, 1.0, 1)
            .expect("q")
            .to_vec2()
            .expect("vec");
        assert!(
            (q[0][0] - 0.75).abs() < 1e-5 && (q[1][1] - 0.75).abs() < 1e-5,
            "{q:?}"
        );
    }

    #[test]
    fn a_smaller_epsilon_gives_harder_assignments() {
        // Same scores: the largest share of each row grows as epsilon shrinks, and at the
        // smallest epsilon the CLI allows (0.025) over the widest cosine range nothing is NaN.
        let scores = t(&[&[0.9, 0.1, -1.0], &[0.2, 0.8, 1.0], &[0.5, 0.4, -0.9]]);
        let peak = |epsilon: f64| -> f32 {
            let q: Vec<Vec<f32>> = sinkhorn(&scores, epsilon, 3)
                .expect("q")
                .to_vec2()
                .expect("vec");
            assert!(q.iter().flatten().all(|v| v.is_finite()), "{q:?}");
            q.iter()
                .map(|row| row.iter().cloned().fold(0.0, f32::max))
                .sum()
        };
        let (soft, default, hard) = (peak(0.5), peak(0.05), peak(0.025));
        assert!(
            soft < default && default <= hard + 1e-4,
            "{soft} {default} {hard}"
        );
    }

    #[test]
    fn swav_rewards_views_that_agree_on_their_prototype() {
        let agree = t(&[&[1.0, 0.0], &[0.0, 1.0]]);
        let swapped = t(&[&[0.0, 1.0], &[1.0, 0.0]]);
        let good = scalar(swav(&agree, &agree, 0.1, 0.05, 3).expect("loss"));
        let bad = scalar(swav(&agree, &swapped, 0.1, 0.05, 3).expect("loss"));
        assert!(good < bad, "{good} vs {bad}");
        // By hand for the agreeing views: q ≈ one-hot, log p of the matching prototype at
        // τ = 0.1 is −log(1 + e^−10).
        let expected = (1.0 + (-10f32).exp()).ln();
        assert!((good - expected).abs() < 1e-3, "{good} vs {expected}");
    }

    #[test]
    fn the_momentum_rises_from_its_base_to_one_and_ema_mixes() {
        assert!((momentum_at(0, 100, 0.99) - 0.99).abs() < 1e-12);
        assert!((momentum_at(50, 100, 0.99) - 0.995).abs() < 1e-12);
        assert!((momentum_at(100, 100, 0.99) - 1.0).abs() < 1e-12);
        let target = t(&[&[1.0, 1.0]]);
        let online = t(&[&[3.0, -1.0]]);
        let mixed: Vec<Vec<f32>> = ema(&target, &online, 0.75)
            .expect("ema")
            .to_vec2()
            .expect("v");
        assert_eq!(mixed, vec![vec![1.5, 0.5]]);
    }
}
