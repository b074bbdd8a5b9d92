//! natview command line: with no subcommand it opens the desktop app (on the dataset given, the
//! last one, or the built-in demo); each subcommand runs one job headless.

mod cli;

/// mimalloc instead of glibc's malloc: the encoders allocate and free multi-megabyte buffers in
/// every layer, which glibc serves with fresh mmaps, so every use page-faults and the kernel
/// zeroes the pages again (a third of training time was `clear_page_erms`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory in the process (no purging) and off 2 MiB OS pages, so that the same
/// buffers are reused step after step without page faults. Measured on a SimSiam step (batch 64,
/// compact @64 px, 2 cores): 0.35 → 0.50 steps/s, system time 14 s → 2.4 s over 8 steps.
fn tune_allocator() {
    // Option numbers from the vendored mimalloc.h (v2 and v3 agree): 6 = allow_large_os_pages,
    // 15 = purge_delay (-1: never purge).
    const ALLOW_LARGE_OS_PAGES: libmimalloc_sys::mi_option_t = 6;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain option setters of the allocator, called once before any worker starts.
    unsafe {
        libmimalloc_sys::mi_option_set(ALLOW_LARGE_OS_PAGES, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
    }
}

use clap::Parser;

fn main() {
    tune_allocator();
    let args = cli::Cli::parse();
    if let Err(error) = cli::run(args) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
