//! The loss terms of judged pairs, on the trunk's features (the embedding that retrieval and
//! the app use), added to either objective. Both are relative to how similar each image is to
//! its own second view (`cos(h_a, h_a′)`, held fixed by a stop-gradient), so they act only
//! where the model contradicts the verdict, at the model's own scale of similarities (an
//! encoder whose cosines all sit near 0.95 as well as one spread over [0, 1]):
//! - `same` pairs are pulled until they are as close as each image's two views:
//!   `max(0, cos(h_a, h_a′) − cos(h_a, h_b))`;
//! - `different` pairs are pushed until they are `margin` further apart than that:
//!   `max(0, cos(h_a, h_b) − cos(h_a, h_a′) + margin)` (and the same from b).
//!
//! InfoNCE also sees the pairs through its batch (a `different` pair's two images are each
//! other's negatives); SimSiam, having no negatives, sees them through these terms only.

use super::judged::JudgedBatch;
use super::loss::l2_normalise_rows;
use candle_core::{Result, Tensor, D};

/// Weight of the judged-pair terms beside the self-supervised loss.
pub const JUDGED_WEIGHT: f64 = 1.0;

/// The judged terms of a step (`None` when its batch has no judged rows); `h1`, `h2` are the
/// trunk features of the two views.
pub(super) fn judged_terms(
    h1: &Tensor,
    h2: &Tensor,
    batch: &JudgedBatch,
    margin: f64,
) -> Result<Option<Tensor>> {
    if batch.positives.is_empty() && batch.negatives.is_empty() {
        return Ok(None);
    }
    let (u1, u2) = (l2_normalise_rows(h1)?, l2_normalise_rows(h2)?);
    let rows = |ids: Vec<usize>| {
        let ids: Vec<u32> = ids.into_iter().map(|r| r as u32).collect();
        Tensor::new(ids, h1.device())
    };
    let cos = |a: &Tensor, b: &Tensor| (a * b)?.sum(D::Minus1);
    let mut total: Option<Tensor> = None;
    let mut add = |term: Tensor| -> Result<()> {
        total = Some(match total.take() {
            Some(t) => (t + term)?,
            None => term,
        });
        Ok(())
    };
    if !batch.positives.is_empty() {
        // A same pair's row holds a's view in the first batch and b's in the second; a's own
        // second view is not in the batch, so its cosine to b is compared with the mean
        // two-view cosine of all the step's rows (its natural-view pairs being most of them).
        let ids = rows(batch.positives.clone())?;
        let (a, b) = (u1.index_select(&ids, 0)?, u2.index_select(&ids, 0)?);
        let own = cos(&u1, &u2)?.mean_all()?.detach();
        let gap = cos(&a, &b)?.broadcast_sub(&own)?.neg()?;
        add(gap.relu()?.mean_all()?)?;
    }
    if !batch.negatives.is_empty() {
        let ia = rows(batch.negatives.iter().map(|p| p.0).collect())?;
        let ib = rows(batch.negatives.iter().map(|p| p.1).collect())?;
        let (a, b) = (u1.index_select(&ia, 0)?, u1.index_select(&ib, 0)?);
        let (a2, b2) = (u2.index_select(&ia, 0)?, u2.index_select(&ib, 0)?);
        let between = cos(&a, &b)?;
        let from_a = ((&between - cos(&a, &a2)?.detach())? + margin)?.relu()?;
        let from_b = ((&between - cos(&b, &b2)?.detach())? + margin)?.relu()?;
        add(((from_a + from_b)? * 0.5)?.mean_all()?)?;
    }
    match total {
        Some(t) => Ok(Some((t * JUDGED_WEIGHT)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn terms_are_zero_when_the_judgements_already_hold_and_positive_when_not() {
        let device = Device::Cpu;
        // Rows: 0 = a, 1 = b (a different pair), 2 = a same pair's first image.
        let h1 = Tensor::new(&[[1f32, 0.0], [0.0, 1.0], [1.0, 0.0]], &device).expect("h1");
        let h2 = Tensor::new(&[[1f32, 0.0], [0.0, 1.0], [1.0, 0.0]], &device).expect("h2");
        let batch = JudgedBatch {
            positives: vec![2],
            negatives: vec![(0, 1)],
        };
        let held = judged_terms(&h1, &h2, &batch, 0.1)
            .expect("terms")
            .expect("some")
            .to_scalar::<f32>()
            .expect("scalar");
        assert!(held.abs() < 1e-6, "{held}");
        // The different pair identical, the same pair orthogonal: both terms bite.
        let h1 = Tensor::new(&[[1f32, 0.0], [1.0, 0.0], [1.0, 0.0]], &device).expect("h1");
        let h2 = Tensor::new(&[[1f32, 0.0], [1.0, 0.0], [0.0, 1.0]], &device).expect("h2");
        let broken = judged_terms(&h1, &h2, &batch, 0.1)
            .expect("terms")
            .expect("some")
            .to_scalar::<f32>()
            .expect("scalar");
        // Same pair: the step's mean two-view cosine (2/3) minus the pair's (0); different
        // pair: 1 − 1 + 0.1 from each side.
        assert!((broken - (2.0 / 3.0 + 0.1)).abs() < 1e-5, "{broken}");
        assert!(judged_terms(&h1, &h2, &JudgedBatch::default(), 0.1)
            .expect("terms")
            .is_none());
    }
}
