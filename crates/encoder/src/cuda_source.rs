//! The CUDA C of natview's own kernels (`kernels/*.cu`), their entry points and launch
//! shapes: one description shared by the `cuda` build, which compiles the sources with NVRTC
//! and launches them on candle's stream (`cuda_launch`), and by the tests, which run the same
//! sources on the CPU (`cuda_emulator`), so that the kernels' indexing and arithmetic are
//! tested on machines without a GPU.

use super::conv_cpu::ConvGeometry;
use super::depthwise_cpu::DepthwiseGeometry;

/// A module of kernels: the name it is loaded under on a device, and its CUDA C.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KernelModule {
    /// The module's name on the device.
    pub name: &'static str,
    /// Its CUDA C source.
    pub source: &'static str,
}

/// Grouped and depthwise convolutions: forward, input gradient, kernel gradient.
pub(crate) const CONV: KernelModule = KernelModule {
    name: "natview_conv",
    source: include_str!("kernels/conv.cu"),
};

/// Training-mode batch norm fused with its activation: statistics, normalisation, gradients.
pub(crate) const BATCH_NORM: KernelModule = KernelModule {
    name: "natview_batch_norm",
    source: include_str!("kernels/batch_norm.cu"),
};

/// One kernel: its module and entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kernel {
    /// The module it is in.
    pub module: KernelModule,
    /// Its `extern "C"` name.
    pub entry: &'static str,
}

const fn kernel(module: KernelModule, entry: &'static str) -> Kernel {
    Kernel { module, entry }
}

/// `(input, weights) → output` of a grouped convolution.
pub(crate) const CONV_FORWARD: Kernel = kernel(CONV, "natview_conv_forward");
/// `(output gradient, weights) → input gradient`.
pub(crate) const CONV_GRAD_INPUT: Kernel = kernel(CONV, "natview_conv_grad_input");
/// `(input, output gradient) → weights' gradient` (one block per weight).
pub(crate) const CONV_GRAD_KERNEL: Kernel = kernel(CONV, "natview_conv_grad_kernel");
/// Per-channel mean and biased variance (one block per channel).
pub(crate) const BN_STATISTICS: Kernel = kernel(BATCH_NORM, "natview_bn_statistics");
/// The affine normalisation and activation, per element.
pub(crate) const BN_NORMALISE: Kernel = kernel(BATCH_NORM, "natview_bn_normalise");
/// Per-channel sums of the masked gradient and of it times `x̂` (one block per channel).
pub(crate) const BN_GRAD_SUMS: Kernel = kernel(BATCH_NORM, "natview_bn_grad_sums");
/// The input gradient through the batch statistics, per element.
pub(crate) const BN_GRAD_INPUT: Kernel = kernel(BATCH_NORM, "natview_bn_grad_input");

/// Every kernel natview launches.
pub(crate) const ALL: [Kernel; 7] = [
    CONV_FORWARD,
    CONV_GRAD_INPUT,
    CONV_GRAD_KERNEL,
    BN_STATISTICS,
    BN_NORMALISE,
    BN_GRAD_SUMS,
    BN_GRAD_INPUT,
];

/// A convolution's shape as the conv kernels take it (their geometry arguments, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CudaConvGeometry {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero rows above the input.
    pub pad_top: usize,
    /// Zero columns left of the input.
    pub pad_left: usize,
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
    /// Channel groups.
    pub groups: usize,
}

impl CudaConvGeometry {
    /// The kernels' geometry arguments, in their order.
    pub(crate) fn arguments(&self) -> [usize; 12] {
        [
            self.n,
            self.c_in,
            self.h,
            self.w,
            self.c_out,
            self.k,
            self.stride,
            self.pad_top,
            self.pad_left,
            self.h_out,
            self.w_out,
            self.groups,
        ]
    }
}

impl From<&DepthwiseGeometry> for CudaConvGeometry {
    fn from(g: &DepthwiseGeometry) -> Self {
        Self {
            n: g.n,
            c_in: g.c,
            h: g.h,
            w: g.w,
            c_out: g.c,
            k: g.k,
            stride: g.stride,
            pad_top: g.pad_top,
            pad_left: g.pad_left,
            h_out: g.h_out,
            w_out: g.w_out,
            groups: g.c,
        }
    }
}

impl From<&ConvGeometry> for CudaConvGeometry {
    fn from(g: &ConvGeometry) -> Self {
        Self {
            n: g.n,
            c_in: g.c_in,
            h: g.h,
            w: g.w,
            c_out: g.c_out,
            k: g.k,
            stride: g.stride,
            pad_top: g.pad,
            pad_left: g.pad,
            h_out: g.h_out,
            w_out: g.w_out,
            groups: g.groups,
        }
    }
}

/// Threads per block of every natview kernel (the block reductions are written for 256).
pub(crate) const BLOCK: u32 = 256;

/// How many blocks a kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grid {
    /// One thread per element of `count` (grid-stride loops: a capped grid covers any count).
    PerElement(usize),
    /// One block per item (a channel, a weight).
    PerItem(usize),
}

impl Grid {
    /// The number of blocks; 0 when there is nothing to do (the launch is skipped).
    pub(crate) fn blocks(self) -> u32 {
        match self {
            Grid::PerElement(count) => count.div_ceil(BLOCK as usize).min(65_535) as u32,
            Grid::PerItem(count) => count.min(i32::MAX as usize) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel launched by name is defined, as an `extern "C"` kernel, in its module's
    /// source (a misspelt name fails only at launch, on a GPU).
    #[test]
    fn every_launched_kernel_is_defined_in_its_source() {
        for kernel in ALL {
            let definition = format!("extern \"C\" __global__ void {}(", kernel.entry);
            assert!(
                kernel.module.source.contains(&definition),
                "{} is not defined in {}",
                kernel.entry,
                kernel.module.name
            );
        }
    }

    #[test]
    fn grids_cover_the_work() {
        assert_eq!(Grid::PerElement(1).blocks(), 1);
        assert_eq!(Grid::PerElement(257).blocks(), 2);
        assert_eq!(Grid::PerElement(usize::MAX / 2).blocks(), 65_535);
        assert_eq!(Grid::PerItem(0).blocks(), 0);
        assert_eq!(Grid::PerElement(0).blocks(), 0);
        assert_eq!(Grid::PerItem(144).blocks(), 144);
    }
}
