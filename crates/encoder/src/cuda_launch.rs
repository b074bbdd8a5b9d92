//! Launching natview's own CUDA kernels (`cuda_source`) on candle's device and stream: the
//! switch that turns them on, their PTX (compiled once per process with NVRTC — no nvcc at
//! build time), the function of a kernel, its launch configuration, and the f32 views of
//! candle's storage they read.
//!
//! Not yet run on a GPU (this code has only been compiled; the kernels' arithmetic is tested
//! on the CPU through `cuda_emulator`): they are used only when `NATVIEW_CUDA_KERNELS=own`,
//! and the GPU check (`scripts/gpu-check.sh`) compares their outputs with the CPU's before
//! they may become the default.

use super::cuda_source::{Grid, Kernel, KernelModule, BLOCK};
use candle_core::cuda_backend::cudarc::driver::{
    CudaFunction, CudaSlice, CudaStream, CudaView, LaunchArgs, LaunchConfig,
};
use candle_core::cuda_backend::cudarc::nvrtc::compile_ptx;
use candle_core::cuda_backend::CudaDevice;
use candle_core::{CudaStorage, Layout, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Whether natview's CUDA kernels replace candle's ops for grouped convolutions and training
/// batch norm (`NATVIEW_CUDA_KERNELS=own`; off by default until a GPU check has passed).
pub fn enabled() -> bool {
    static CHOICE: OnceLock<bool> = OnceLock::new();
    *CHOICE.get_or_init(|| std::env::var("NATVIEW_CUDA_KERNELS").is_ok_and(|v| v == "own"))
}

/// `module`'s PTX, compiled on first use (a compile error is kept and reported each time).
fn ptx(module: KernelModule) -> Result<String> {
    static PTX: OnceLock<Mutex<HashMap<&'static str, std::result::Result<String, String>>>> =
        OnceLock::new();
    let cache = PTX.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .map_err(|_| candle_core::Error::msg("natview's CUDA kernels: PTX cache poisoned"))?;
    cache
        .entry(module.name)
        .or_insert_with(|| {
            compile_ptx(module.source)
                .map(|ptx| ptx.to_src())
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| candle_core::Error::msg(format!("natview's {} kernels: {e}", module.name)))
}

/// A kernel loaded on a device, with the stream it launches on (candle's).
pub(crate) struct LoadedKernel {
    function: CudaFunction,
    stream: Arc<CudaStream>,
}

impl LoadedKernel {
    /// A launch of the kernel: push its arguments, then launch.
    pub(crate) fn builder(&self) -> LaunchArgs<'_> {
        self.stream.launch_builder(&self.function)
    }
}

/// `kernel` loaded on `device` (its module compiled and loaded once).
pub(crate) fn function(device: &CudaDevice, kernel: Kernel) -> Result<LoadedKernel> {
    let function = device
        .get_or_load_custom_func(kernel.entry, kernel.module.name, &ptx(kernel.module)?)?
        .into_cuda_function();
    Ok(LoadedKernel {
        function,
        stream: device.cuda_stream(),
    })
}

/// The launch configuration of `grid` (`None` when there is nothing to do).
pub(crate) fn config(grid: Grid) -> Option<LaunchConfig> {
    let blocks = grid.blocks();
    (blocks > 0).then_some(LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// The f32 elements of a contiguous operand (`what` names it in the error).
pub(crate) fn view<'a>(
    storage: &'a CudaStorage,
    layout: &Layout,
    what: &str,
) -> Result<CudaView<'a, f32>> {
    let slice = storage.as_cuda_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(slice.slice(start..end)),
        None => candle_core::bail!("natview's CUDA kernels: the {what} is not contiguous"),
    }
}

/// `values` copied to `device`.
pub(crate) fn upload(device: &CudaDevice, values: &[f32]) -> Result<CudaSlice<f32>> {
    device.clone_htod(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda_source::{BATCH_NORM, CONV};

    /// NVRTC (no GPU needed) compiles both modules, and each defines the entry points launched
    /// from it.
    #[test]
    fn nvrtc_compiles_every_module_with_its_entry_points() {
        for module in [CONV, BATCH_NORM] {
            let ptx = ptx(module).unwrap_or_else(|e| panic!("{}: {e}", module.name));
            for kernel in crate::cuda_source::ALL
                .into_iter()
                .filter(|k| k.module == module)
            {
                assert!(
                    ptx.contains(&format!(".entry {}(", kernel.entry)),
                    "{} lacks {}",
                    module.name,
                    kernel.entry
                );
            }
        }
    }
}
