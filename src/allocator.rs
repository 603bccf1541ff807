//! Allocation settings for programs that run the CPU backends.
//!
//! Burn's CPU backends allocate and free edge-sized buffers at every tensor
//! operation. The system allocator (glibc) hands large freed blocks back to
//! the kernel, so every reuse costs page faults and zeroing: on the `mid`
//! benchmark model (32 nearest neighbours, N = 512) a third of a
//! forward+backward pass (see `docs/BENCHMARKS.md`). The `equiformer`
//! program and the benchmarks therefore allocate through mimalloc (cargo
//! feature `mimalloc`, default) and call [`keep_freed_memory`]; a program of
//! your own gains the same with
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
//!
//! fn main() {
//!     equiformer::allocator::keep_freed_memory();
//!     // ...
//! }
//! ```
//!
//! The library itself never sets the global allocator.

/// `mi_option_purge_delay`: its position in mimalloc 2's `mi_option_t`, the
/// version `libmimalloc-sys` 0.1.49 builds (the dependency is pinned).
#[cfg(feature = "mimalloc")]
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc to keep freed memory in the process for reuse instead of
/// returning it to the kernel (peak memory is unchanged). Call it first thing
/// in `main` of a program whose global allocator is mimalloc; without the
/// `mimalloc` feature, or with another allocator, it does nothing.
pub fn keep_freed_memory() {
    #[cfg(feature = "mimalloc")]
    // SAFETY: sets one integer option of mimalloc; -1 means "never purge".
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1)
    }
}
