//! SwAV's cluster head, kept in the weights a SwAV run exports: the projector (Linear → batch
//! norm → ReLU → … → Linear → batch norm, in evaluation mode) and the prototypes. An image's
//! cluster is the prototype nearest (by cosine) to its normalised projection — what SwAV's
//! swapped prediction trained the prototypes to mean — so the scatter can be coloured by it.

use candle_core::{Result, Tensor, D};
use std::collections::HashMap;

/// Name of the prototypes (`K × D`) in the weights.
pub const PROTOTYPES_NAME: &str = "head.prototypes";
/// Prefix of the projector's tensors (`{i}.linear.weight|bias`, `{i}.bn.…`).
const PROJECTOR_PREFIX: &str = "head.projector";
/// The projector's batch-norm epsilon (as trained).
const BN_EPS: f64 = 1e-5;

/// One projector layer in evaluation form: `x·Wᵀ + b`, then the batch norm's affine map.
#[derive(Debug, Clone)]
struct Layer {
    weight: Tensor,
    bias: Tensor,
    scale: Tensor,
    shift: Tensor,
}

/// The projector and the prototypes.
#[derive(Debug, Clone)]
pub struct ClusterHead {
    layers: Vec<Layer>,
    /// Unit rows.
    prototypes: Tensor,
}

impl ClusterHead {
    /// The head in `tensors` (a weights file's), if it has prototypes; an error if it has
    /// prototypes but not a complete projector.
    pub fn from_tensors(tensors: &HashMap<String, Tensor>) -> Result<Option<Self>> {
        let Some(prototypes) = tensors.get(PROTOTYPES_NAME) else {
            return Ok(None);
        };
        let get = |name: String| {
            tensors
                .get(&name)
                .cloned()
                .ok_or_else(|| candle_core::Error::msg(format!("SwAV head: {name} is missing")))
        };
        let mut layers = Vec::new();
        for i in 0.. {
            let at = format!("{PROJECTOR_PREFIX}.{i}");
            if !tensors.contains_key(&format!("{at}.linear.weight")) {
                break;
            }
            let (gamma, beta) = (
                get(format!("{at}.bn.weight"))?,
                get(format!("{at}.bn.bias"))?,
            );
            let mean = get(format!("{at}.bn.running_mean"))?;
            let var = get(format!("{at}.bn.running_var"))?;
            let scale = (gamma * (var + BN_EPS)?.sqrt()?.recip()?)?;
            let shift = (beta - (mean * &scale)?)?;
            layers.push(Layer {
                weight: get(format!("{at}.linear.weight"))?,
                bias: get(format!("{at}.linear.bias"))?,
                scale,
                shift,
            });
        }
        if layers.is_empty() {
            candle_core::bail!("SwAV head: prototypes without a projector");
        }
        let prototypes = prototypes.broadcast_div(
            &prototypes
                .sqr()?
                .sum_keepdim(D::Minus1)?
                .sqrt()?
                .clamp(1e-12, f64::MAX)?,
        )?;
        Ok(Some(Self { layers, prototypes }))
    }

    /// Number of clusters.
    pub fn clusters(&self) -> usize {
        self.prototypes.dim(0).unwrap_or(0)
    }

    /// The cluster of each row of `features` (`[batch, trunk dim]`, the pooled trunk output
    /// before normalisation).
    pub fn assign(&self, features: &Tensor) -> Result<Vec<u32>> {
        let mut h = features.clone();
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = h
                .matmul(&layer.weight.t()?)?
                .broadcast_add(&layer.bias)?
                .broadcast_mul(&layer.scale)?
                .broadcast_add(&layer.shift)?;
            if i != last {
                h = h.relu()?;
            }
        }
        // Normalising the projection does not change the argmax of its cosines.
        h.matmul(&self.prototypes.t()?)?
            .argmax(D::Minus1)?
            .to_vec1::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn assigns_each_row_to_its_nearest_prototype_through_the_projector() {
        let device = Device::Cpu;
        let t =
            |v: Vec<f32>, shape: (usize, usize)| Tensor::from_vec(v, shape, &device).expect("t");
        let v = |v: Vec<f32>| Tensor::from_vec(v.clone(), v.len(), &device).expect("v");
        let mut tensors = HashMap::new();
        // One layer: identity weights, zero bias, batch norm that doubles and shifts by 0.
        tensors.insert(
            "head.projector.0.linear.weight".into(),
            t(vec![1.0, 0.0, 0.0, 1.0], (2, 2)),
        );
        tensors.insert("head.projector.0.linear.bias".into(), v(vec![0.0, 0.0]));
        tensors.insert("head.projector.0.bn.weight".into(), v(vec![2.0, 2.0]));
        tensors.insert("head.projector.0.bn.bias".into(), v(vec![0.0, 0.0]));
        tensors.insert("head.projector.0.bn.running_mean".into(), v(vec![0.0, 0.0]));
        tensors.insert("head.projector.0.bn.running_var".into(), v(vec![1.0, 1.0]));
        // Prototypes along +x, +y and −x (not unit: normalised on load).
        tensors.insert(
            PROTOTYPES_NAME.into(),
            t(vec![3.0, 0.0, 0.0, 0.5, -1.0, 0.0], (3, 2)),
        );
        let head = ClusterHead::from_tensors(&tensors)
            .expect("head")
            .expect("some");
        assert_eq!(head.clusters(), 3);
        let features = t(vec![1.0, 0.2, 0.1, 5.0, -2.0, 0.3], (3, 2));
        assert_eq!(head.assign(&features).expect("assign"), vec![0, 1, 2]);
        // No prototypes: no head; prototypes without a projector: an error.
        assert!(ClusterHead::from_tensors(&HashMap::new())
            .expect("ok")
            .is_none());
        let only: HashMap<String, Tensor> =
            [(PROTOTYPES_NAME.to_string(), t(vec![1.0, 0.0], (1, 2)))].into();
        assert!(ClusterHead::from_tensors(&only).is_err());
    }
}
