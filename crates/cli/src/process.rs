//! The set-up every natview binary does before any work: mimalloc as the allocator, tuned for
//! a window or a batch job, candle's worker spin, and the size of all thread pools.

/// mimalloc instead of glibc's malloc: the encoders allocate and free multi-megabyte buffers in
/// every layer, which glibc serves with fresh mmaps, so every use page-faults and the kernel
/// zeroes the pages again (a third of training time was `clear_page_erms`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory in the process (no purging) and off 2 MiB OS pages, so that the same
/// buffers are reused step after step without page faults. Measured on a SimSiam step (batch 64,
/// compact @64 px, 2 cores): 0.35 → 0.50 steps/s, system time 14 s → 2.4 s over 8 steps.
/// The window instead returns memory freed for 250 ms: it holds a dataset for hours, and what
/// opening one allocated for a moment (the index file read, the scan, the preview) would stay
/// resident for good — 888 → 639 MB at 100k images (BENCHMARKS.md).
fn tune_allocator(opens_window: bool) {
    // Option numbers from the vendored mimalloc.h (v2 and v3 agree): 6 = allow_large_os_pages,
    // 15 = purge_delay (-1: never purge).
    const ALLOW_LARGE_OS_PAGES: libmimalloc_sys::mi_option_t = 6;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain option setters of the allocator, called once before any worker starts.
    unsafe {
        libmimalloc_sys::mi_option_set(ALLOW_LARGE_OS_PAGES, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, purge_delay_ms(opens_window));
    }
}

/// How long freed memory stays in the process before it is returned (ms; -1: never), unless
/// `NATVIEW_PURGE_DELAY_MS` says otherwise.
fn purge_delay_ms(opens_window: bool) -> std::os::raw::c_long {
    std::env::var("NATVIEW_PURGE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if opens_window { 250 } else { -1 })
}

/// Shortens how long candle's element-wise worker spins after each operation before it parks
/// (candle 0.11 default: 25,000 `spin_loop`s). On 2 cores the spinning worker took 25 % of the
/// CPU samples while the compact encoder embedded, competing with the convolution threads; at
/// 1,000 it takes 9 %, the same work needs 12 % less CPU time (8.8 → 7.6 s) and throughput is
/// 0–12 % higher (within this machine's noise); at 1 it parks between operations and throughput
/// drops by ~10 %. A value set by the user is kept.
fn tune_candle_threads() {
    const SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(SPIN_LIMIT).is_none() {
        // Before any thread is started (candle reads it when its pool is first used).
        std::env::set_var(SPIN_LIMIT, "1000");
    }
}

/// Runs all compute on `threads` threads: rayon's global pool (our kernels, the index, the
/// layouts) and candle's pools and gemm calls, which read `RAYON_NUM_THREADS` when first used —
/// so this runs before any of them is.
fn limit_threads(threads: usize) {
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
    if let Err(error) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        eprintln!("warning: --threads {threads}: {error}");
    }
}

/// How every natview binary runs: candle's spin limit set before any pool starts, the command
/// line parsed into `A`, the allocator tuned for a window (`opens_window`) or a batch job, all
/// thread pools sized to `threads` when given, then `run`; an error is printed and the process
/// exits with status 1.
pub fn run_binary<A: clap::Parser>(
    opens_window: fn(&A) -> bool,
    threads: fn(&A) -> Option<usize>,
    run: impl FnOnce(A) -> anyhow::Result<()>,
) {
    tune_candle_threads();
    let args = A::parse();
    tune_allocator(opens_window(&args));
    if let Some(threads) = threads(&args) {
        limit_threads(threads);
    }
    if let Err(error) = run(args) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
