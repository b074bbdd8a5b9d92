//! The two token-wise layers the transformer-era families share (ConvNeXt's blocks, every
//! vision and text transformer): LayerNorm over the last dimension and a linear map on it.
//! Both run from differentiable candle operations in training and through candle's fused
//! kernels in evaluation.

use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

/// A LayerNorm over the last dimension (tensors `weight`, `bias`).
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    /// Reads (or creates: ones and zeros) `weight` and `bias` of size `dim` under `vb`.
    pub fn new(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(dim, "weight", candle_nn::init::ONE)?,
            bias: vb.get_with_hints(dim, "bias", candle_nn::init::ZERO)?,
            eps,
        })
    }

    /// Normalises over the last dimension; in training from differentiable operations,
    /// in evaluation with candle's fused kernel.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train {
            return candle_nn::ops::layer_norm(
                &x.contiguous()?,
                &self.weight,
                &self.bias,
                self.eps as f32,
            );
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred
            .broadcast_div(&(var + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }

    /// Normalises the channels of an NCHW tensor (torchvision's `LayerNorm2d`).
    pub fn forward_channels(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_t(&x.permute((0, 2, 3, 1))?, train)?
            .permute((0, 3, 1, 2))
    }
}

/// A linear layer `x Wᵀ + b` on the last dimension (tensors `weight` `[out, in]`, and `bias`
/// when it has one).
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    pub weight_t: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Reads (or creates) `weight` `[c_out, c_in]` and `bias` `[c_out]` under `vb`.
    pub fn new(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Self> {
        Self::with_bias(c_in, c_out, true, vb)
    }

    /// [`new`](Self::new), with or without a bias.
    pub fn with_bias(c_in: usize, c_out: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(
            (c_out, c_in),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bias = if bias {
            Some(vb.get_with_hints(c_out, "bias", candle_nn::init::ZERO)?)
        } else {
            None
        };
        Ok(Self {
            weight_t: weight.t()?,
            bias,
        })
    }

    /// Output width.
    pub fn out_dim(&self) -> Result<usize> {
        self.weight_t.dim(1)
    }

    /// `x Wᵀ + b` over the last dimension of `x` (any leading dimensions).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let Some(&c_in) = dims.last() else {
            candle_core::bail!("a linear layer needs at least one dimension")
        };
        let rows = x.elem_count() / c_in.max(1);
        let mut out = x.reshape((rows, c_in))?.matmul(&self.weight_t)?;
        if let Some(bias) = &self.bias {
            out = out.broadcast_add(bias)?;
        }
        let mut shape = dims;
        let last = shape.len() - 1;
        shape[last] = out.dim(1)?;
        out.reshape(shape)
    }

    /// The weight `[out, in]` and bias (zeros when it has none) as plain vectors.
    pub fn values(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let weight = self.weight_t.t()?.flatten_all()?.to_vec1::<f32>()?;
        Ok((weight, self.bias_values()?))
    }

    /// The weight transposed, `[in, out]` row-major (as a product `x · Wᵀ` reads it), and the
    /// bias (zeros when it has none) as plain vectors.
    pub fn values_transposed(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let weight = self
            .weight_t
            .contiguous()?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok((weight, self.bias_values()?))
    }

    /// The bias (zeros when it has none) as a plain vector.
    pub fn bias_values(&self) -> Result<Vec<f32>> {
        match &self.bias {
            Some(b) => b.to_vec1::<f32>(),
            None => Ok(vec![0.0; self.out_dim()?]),
        }
    }
}
