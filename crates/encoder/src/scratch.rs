//! Per-thread scratch buffers for the CPU kernels: each kernel module declares its own
//! thread-local `RefCell<Vec<f32>>` (so that one kernel's buffer is never taken while another
//! holds its own) and borrows it through [`with_scratch`].

use std::cell::RefCell;
use std::thread::LocalKey;

/// A kernel module's thread-local buffer.
pub(crate) type ScratchKey = LocalKey<RefCell<Vec<f32>>>;

/// Runs `f` on this thread's buffer of `key`, `len` values long, whose contents are unspecified
/// (callers overwrite all of it). Grows the buffer when needed and never shrinks it; a nested
/// call on the same key and thread gets a fresh buffer.
pub(crate) fn with_scratch<R>(
    key: &'static ScratchKey,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
            f(&mut buffer[..len])
        }
        Err(_) => f(&mut vec![0f32; len]),
    })
}
