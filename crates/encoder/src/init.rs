//! Deterministic initialisation of a fresh network: every tensor is drawn from a generator
//! seeded by (seed, tensor name), so the same seed gives the same weights on every machine and
//! regardless of the order in which layers are built.

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::Init;
use natview_core::rng::SplitMix64;

/// A [`SimpleBackend`] that creates tensors from a seed instead of reading them from a file.
#[derive(Debug, Clone, Copy)]
pub struct SeededInit {
    /// The base seed.
    pub seed: u64,
}

impl SeededInit {
    fn values(&self, shape: &Shape, name: &str, init: Init) -> Vec<f32> {
        let mut rng = SplitMix64::new(self.seed ^ xxhash_rust::xxh3::xxh3_64(name.as_bytes()));
        let n = shape.elem_count();
        let dims = shape.dims();
        let fan_in: usize = dims.iter().skip(1).product::<usize>().max(1);
        let fan_out: usize =
            dims.first().copied().unwrap_or(1) * dims.iter().skip(2).product::<usize>().max(1);
        match init {
            Init::Const(v) => vec![v as f32; n],
            Init::Randn { mean, stdev } => (0..n)
                .map(|_| (mean + stdev * rng.next_normal()) as f32)
                .collect(),
            Init::Uniform { lo, up } => (0..n)
                .map(|_| (lo + (up - lo) * rng.next_f64()) as f32)
                .collect(),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let fan = match fan {
                    FanInOut::FanIn => fan_in,
                    FanInOut::FanOut => fan_out,
                } as f64;
                let gain = match non_linearity {
                    NonLinearity::ReLU => 2f64.sqrt(),
                    NonLinearity::Tanh => 5.0 / 3.0,
                    NonLinearity::Linear | NonLinearity::Sigmoid => 1.0,
                    NonLinearity::SELU => 0.75,
                    NonLinearity::ExplicitGain(g) => g,
                };
                let std = gain / fan.sqrt();
                match dist {
                    NormalOrUniform::Normal => {
                        (0..n).map(|_| (std * rng.next_normal()) as f32).collect()
                    }
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        (0..n)
                            .map(|_| (bound * (2.0 * rng.next_f64() - 1.0)) as f32)
                            .collect()
                    }
                }
            }
        }
    }
}

impl SimpleBackend for SeededInit {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let values = self.values(&s, name, h);
        Tensor::from_vec(values, s, dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("seeded init cannot create `{name}` without knowing its shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_name_give_the_same_values_and_names_differ() {
        let init = SeededInit { seed: 7 };
        let shape = Shape::from((4, 3, 3, 3));
        let hint = candle_nn::init::DEFAULT_KAIMING_NORMAL;
        let a = init.values(&shape, "conv1.weight", hint);
        let b = init.values(&shape, "conv1.weight", hint);
        let c = init.values(&shape, "conv2.weight", hint);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mean_sq: f64 = a.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / a.len() as f64;
        // Kaiming normal, ReLU gain, fan-in 27: variance 2/27.
        assert!((mean_sq - 2.0 / 27.0).abs() < 0.04, "{mean_sq}");
    }
}
