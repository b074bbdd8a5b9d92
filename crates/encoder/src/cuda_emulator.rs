//! Runs natview's CUDA kernels on the CPU, for the tests. A kernel's CUDA C is compiled as
//! C++20 with a prelude that maps CUDA's built-ins onto threads — `threadIdx`, `blockIdx`,
//! `blockDim`, `gridDim`; `__shared__` memory shared by a block's threads; `__syncthreads()`
//! a barrier — and launched with the grid and block a GPU gets ([`Grid`], [`BLOCK`]): a
//! block's 256 threads run at once as OS threads, the blocks one after another. This tests
//! the kernels' indexing, reductions and arithmetic on any machine with a C++ compiler (`c++`,
//! or `CXX`); it says nothing of a GPU's memory model or speed.

#![allow(clippy::expect_used)]

use super::cuda_source::{Grid, Kernel, BLOCK};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// One argument of a kernel launch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    /// A `const float*` input buffer.
    In(&'a [f32]),
    /// A `float*` output buffer of this many elements, zeroed before the launch.
    Out(usize),
    /// An `int`.
    Int(usize),
    /// A `float`.
    Float(f32),
}

/// CUDA's built-ins as C++ (see the module's documentation).
const PRELUDE: &str = r#"
#include <barrier>
#include <cstdio>
#include <fstream>
#include <math.h>
#include <string>
#include <thread>
#include <vector>
struct NatviewDim3 { unsigned x = 1, y = 1, z = 1; };
static thread_local NatviewDim3 threadIdx, blockIdx;
static NatviewDim3 blockDim, gridDim;
static std::barrier<>* natview_block_barrier;
#define __global__
#define __device__
#define __shared__ static
inline void __syncthreads() { natview_block_barrier->arrive_and_wait(); }
"#;

/// Reading and writing buffers, and the launch: every thread of the block runs the blocks in
/// order, all meeting at a barrier after each block (so shared memory is the block's own).
const LAUNCHER: &str = r#"
static std::vector<float> natview_read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(0, std::ios::end);
  std::vector<float> v(static_cast<size_t>(in.tellg()) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), v.size() * sizeof(float));
  return v;
}
static void natview_write(const std::string& path, const std::vector<float>& v) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}
template <class F> static void natview_launch(unsigned grid, unsigned block, F body) {
  gridDim.x = grid;
  blockDim.x = block;
  std::barrier<> sync(block);
  natview_block_barrier = &sync;
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < block; ++t) {
    threads.emplace_back([&, t] {
      threadIdx.x = t;
      for (unsigned b = 0; b < grid; ++b) {
        blockIdx.x = b;
        body();
        sync.arrive_and_wait();
      }
    });
  }
  for (auto& thread : threads) thread.join();
}
"#;

/// The C++ program that launches `kernel` with arguments of `args`' kinds. Its command line:
/// the working folder, the number of blocks, then per argument an input's file name, an
/// output's length, or a number; outputs are written to `out<i>` in the folder.
fn program(kernel: Kernel, args: &[Arg]) -> String {
    let mut setup = String::new();
    let mut call = Vec::new();
    let mut outputs = String::new();
    for (i, arg) in args.iter().enumerate() {
        let argv = format!("argv[{}]", i + 3);
        match arg {
            Arg::In(_) => setup.push_str(&format!(
                "  auto a{i} = natview_read(dir + \"/\" + {argv});\n"
            )),
            Arg::Out(_) => {
                setup.push_str(&format!(
                    "  std::vector<float> a{i}(std::stoul({argv}), 0.0f);\n"
                ));
                outputs.push_str(&format!("  natview_write(dir + \"/out{i}\", a{i});\n"));
            }
            Arg::Int(_) => setup.push_str(&format!("  int a{i} = std::stoi({argv});\n")),
            Arg::Float(_) => setup.push_str(&format!("  float a{i} = std::stof({argv});\n")),
        }
        call.push(match arg {
            Arg::In(_) | Arg::Out(_) => format!("a{i}.data()"),
            _ => format!("a{i}"),
        });
    }
    format!(
        "{PRELUDE}\n{}\n{LAUNCHER}\nint main(int argc, char** argv) {{\n  (void)argc;\n  \
         std::string dir = argv[1];\n{setup}  natview_launch(std::stoul(argv[2]), {BLOCK}, \
         [&] {{ {}({}); }});\n{outputs}  return 0;\n}}\n",
        kernel.module.source,
        kernel.entry,
        call.join(", ")
    )
}

/// A scratch folder for this test process's programs and buffers.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch folder for the CUDA emulator"))
        .path()
}

/// The compiled program for `kernel` with these argument kinds (compiled once per process).
fn executable(kernel: Kernel, args: &[Arg]) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let source = program(kernel, args);
    let key = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(source.as_bytes()));
    let built = BUILT.get_or_init(Default::default);
    let mut built = built
        .lock()
        .map_err(|_| "emulator cache poisoned".to_string())?;
    if let Some(path) = built.get(&key) {
        return Ok(path.clone());
    }
    let (cpp, exe) = (
        scratch().join(format!("{key}.cpp")),
        scratch().join(format!("{key}.bin")),
    );
    std::fs::write(&cpp, source).map_err(|e| e.to_string())?;
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let out = Command::new(&compiler)
        .args(["-std=c++20", "-O1", "-pthread", "-o"])
        .arg(&exe)
        .arg(&cpp)
        .output()
        .map_err(|e| format!("cannot run the C++ compiler `{compiler}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{} does not compile as C++:\n{}",
            kernel.entry,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    built.insert(key, exe.clone());
    Ok(exe)
}

/// Launches `kernel` over `grid` with `args` on the CPU; returns the output buffers, in the
/// order of the `Out` arguments.
pub(crate) fn run(kernel: Kernel, grid: Grid, args: &[Arg]) -> Result<Vec<Vec<f32>>, String> {
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let exe = executable(kernel, args)?;
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = scratch().join(format!("run{run}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut command = Command::new(&exe);
    command.arg(&dir).arg(grid.blocks().to_string());
    for (i, arg) in args.iter().enumerate() {
        match arg {
            Arg::In(values) => {
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                std::fs::write(dir.join(format!("in{i}")), bytes).map_err(|e| e.to_string())?;
                command.arg(format!("in{i}"));
            }
            Arg::Out(len) | Arg::Int(len) => {
                command.arg(len.to_string());
            }
            Arg::Float(value) => {
                command.arg(format!("{value:e}"));
            }
        }
    }
    let out = command.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            kernel.entry,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut outputs = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if let Arg::Out(_) = arg {
            let bytes = std::fs::read(dir.join(format!("out{i}"))).map_err(|e| e.to_string())?;
            outputs.push(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            );
        }
    }
    std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(outputs)
}
