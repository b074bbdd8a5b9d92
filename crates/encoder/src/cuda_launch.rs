//! Launching natview's own CUDA kernels (`cuda_source`) on candle's device and stream: the
//! switch that turns them on, their PTX (compiled once per process with NVRTC — no nvcc at
//! build time), the function of a kernel, its launch configuration, and the f32 views of
//! candle's storage they read.
//!
//! Not yet run on a GPU (this code has only been compiled; the kernels' arithmetic is tested
//! on the CPU through `cuda_emulator`): they are used only when `NATVIEW_CUDA_KERNELS=own`,
//! and the GPU check (`scripts/gpu-check.sh`) compares their outputs with the CPU's before
//! they may become the default.

use super::cuda_source::{Grid, Kernel, KernelModule, ALL, BLOCK};
use candle_core::cuda_backend::cudarc::driver::{
    CudaFunction, CudaSlice, CudaStream, CudaView, LaunchArgs, LaunchConfig,
};
use candle_core::cuda_backend::cudarc::nvrtc::{compile_ptx, result as nvrtc, sys, Ptx};
use candle_core::cuda_backend::{CudaDevice, DeviceId, WrapErr};
use candle_core::{CudaStorage, Layout, Result};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex, OnceLock};

/// Whether natview's CUDA kernels replace candle's ops for grouped convolutions and training
/// batch norm (`NATVIEW_CUDA_KERNELS=own`; off by default until a GPU check has passed).
pub fn enabled() -> bool {
    static CHOICE: OnceLock<bool> = OnceLock::new();
    *CHOICE.get_or_init(|| std::env::var("NATVIEW_CUDA_KERNELS").is_ok_and(|v| v == "own"))
}

/// A module as NVRTC compiles it for one GPU architecture: machine code (CUBIN) for
/// `sm_<major><minor>`, which the driver loads as it is, else PTX for the driver to compile.
///
/// Machine code first because a driver compiles PTX only up to its own CUDA version: PTX from a
/// newer NVRTC than the driver (CUDA 13.2's NVRTC, as PyTorch's wheels bring, on driver 580)
/// does not load, while machine code does (CUDA's minor-version compatibility). PTX is the
/// fallback for a GPU newer than the NVRTC in use, which has no machine code for it.
fn compiled(module: KernelModule, capability: (i32, i32)) -> Result<Ptx> {
    /// A module's code or NVRTC's message, by module name and compute capability.
    type Compiled = HashMap<(&'static str, (i32, i32)), std::result::Result<Ptx, String>>;
    static COMPILED: OnceLock<Mutex<Compiled>> = OnceLock::new();
    let cache = COMPILED.get_or_init(Default::default);
    let mut cache = cache
        .lock()
        .map_err(|_| candle_core::Error::msg("natview's CUDA kernels: compile cache poisoned"))?;
    cache
        .entry((module.name, capability))
        .or_insert_with(|| {
            let arch = format!("sm_{}{}", capability.0, capability.1);
            cubin(module.source, &arch)
                .map(Ptx::from_binary)
                .or_else(|cubin_error| {
                    compile_ptx(module.source)
                        .map_err(|ptx_error| format!("{cubin_error}; as PTX: {ptx_error}"))
                })
        })
        .clone()
        .map_err(|e| candle_core::Error::msg(format!("natview's {} kernels: {e}", module.name)))
}

/// `source` compiled by NVRTC to machine code for `arch` (`sm_90`), or NVRTC's message.
fn cubin(source: &str, arch: &str) -> std::result::Result<Vec<u8>, String> {
    let source = CString::new(source).map_err(|e| e.to_string())?;
    let program = nvrtc::create_program(&source, None).map_err(|e| format!("NVRTC: {e}"))?;
    // SAFETY: `program` was created above and is destroyed once, below; the buffer handed to
    // nvrtcGetCUBIN holds the size NVRTC reported for it; NVRTC's log ends with a NUL.
    unsafe {
        let options = [format!("--gpu-architecture={arch}")];
        let code = match nvrtc::compile_program(program, &options) {
            Ok(()) => {
                let mut size = 0usize;
                sys::nvrtcGetCUBINSize(program, &mut size)
                    .result()
                    .and_then(|()| {
                        let mut code = vec![0u8; size];
                        sys::nvrtcGetCUBIN(program, code.as_mut_ptr().cast())
                            .result()
                            .map(|()| code)
                    })
                    .map_err(|e| format!("NVRTC's machine code for {arch}: {e}"))
            }
            Err(e) => {
                // The log is NUL-terminated (NVRTC writes its size with the NUL).
                let log = nvrtc::get_program_log(program)
                    .map(|log| CStr::from_ptr(log.as_ptr()).to_string_lossy().into_owned())
                    .unwrap_or_default();
                Err(format!("NVRTC for {arch}: {e} {}", log.trim()))
            }
        };
        // A failed destroy leaks the program's memory, nothing else.
        let _ = nvrtc::destroy_program(program);
        code
    }
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

/// `kernel` loaded on `device` (its module compiled for the device's architecture and loaded
/// once per device).
pub(crate) fn function(device: &CudaDevice, kernel: Kernel) -> Result<LoadedKernel> {
    static LOADED: OnceLock<Mutex<HashMap<(DeviceId, &'static str), CudaFunction>>> =
        OnceLock::new();
    let stream = device.cuda_stream();
    let loaded = LOADED.get_or_init(Default::default);
    let mut loaded = loaded
        .lock()
        .map_err(|_| candle_core::Error::msg("natview's CUDA kernels: module cache poisoned"))?;
    let key = (device.id(), kernel.entry);
    if !loaded.contains_key(&key) {
        // The module is loaded once per device, with every entry point of it.
        let context = stream.context();
        let capability = context.compute_capability().w()?;
        let module = context
            .load_module(compiled(kernel.module, capability)?)
            .w()?;
        for entry in ALL.iter().filter(|k| k.module == kernel.module) {
            loaded.insert(
                (device.id(), entry.entry),
                module.load_function(entry.entry).w()?,
            );
        }
    }
    let function = loaded.get(&key).cloned().ok_or_else(|| {
        candle_core::Error::msg(format!(
            "natview's CUDA kernels: {} is not listed in cuda_source::ALL",
            kernel.entry
        ))
    })?;
    Ok(LoadedKernel { function, stream })
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

    /// The entry points launched from `module`.
    fn entries(module: KernelModule) -> impl Iterator<Item = &'static str> {
        ALL.into_iter()
            .filter(move |k| k.module == module)
            .map(|k| k.entry)
    }

    /// NVRTC (no GPU needed) compiles both modules to H100/H200 machine code, an ELF image
    /// naming each entry point launched from it.
    #[test]
    fn nvrtc_compiles_every_module_to_machine_code_with_its_entry_points() {
        for module in [CONV, BATCH_NORM] {
            let code = cubin(module.source, "sm_90").unwrap_or_else(|e| panic!("{e}"));
            assert!(
                code.starts_with(b"\x7fELF"),
                "{}: not an ELF image",
                module.name
            );
            for entry in entries(module) {
                let named = code.windows(entry.len()).any(|w| w == entry.as_bytes());
                assert!(named, "{}'s machine code lacks {entry}", module.name);
            }
        }
    }

    /// For an architecture NVRTC has no machine code for, the module comes as PTX with every
    /// entry point (the driver compiles it).
    #[test]
    fn an_unknown_architecture_falls_back_to_ptx() {
        assert!(cubin(CONV.source, "sm_990").is_err());
        for module in [CONV, BATCH_NORM] {
            let ptx = compiled(module, (99, 0))
                .unwrap_or_else(|e| panic!("{e}"))
                .to_src();
            for entry in entries(module) {
                assert!(
                    ptx.contains(&format!(".entry {entry}(")),
                    "PTX lacks {entry}"
                );
            }
        }
    }
}
