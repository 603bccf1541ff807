//! The allocator of the command-line tool and the benchmarks.
//!
//! Burn's CPU backends allocate and free edge-sized buffers at every tensor
//! operation. The system allocator (glibc) hands large freed blocks back to
//! the kernel, so each reuse costs page faults and zeroing; measured on the
//! `mid` benchmark model (32-nearest, N = 512), that is a third of a
//! forward+backward pass. With the `mimalloc` feature (default) the tool
//! allocates through mimalloc and never returns freed memory to the
//! kernel: peak memory is unchanged, later reuse is free.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its position in mimalloc 2's `mi_option_t`, the
/// version `libmimalloc-sys` 0.1.49 builds (the dependency is pinned).
#[cfg(feature = "mimalloc")]
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory in the process for reuse (no effect without the
/// `mimalloc` feature). Call once, first thing in `main`.
pub fn keep_freed_memory() {
    #[cfg(feature = "mimalloc")]
    // SAFETY: sets one integer option of the allocator; -1 means "never purge".
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, -1)
    }
}
