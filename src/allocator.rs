//! Allocator settings for tensor workloads.
//!
//! Every tensor op allocates its output, and a training step frees and allocates the same
//! large buffers (hundreds of KiB to MiB) again and again. glibc serves blocks above its mmap
//! threshold (128 KiB at first) with fresh `mmap`s and returns freed heap tops to the kernel
//! above its trim threshold, so each step pays page faults and the kernel's zeroing for memory
//! it just gave back: 9% of the PixelCNN step in `perf`. Raising both thresholds keeps those
//! blocks in the heap for reuse: the PixelCNN step runs 212 -> 153 ms, the VAE step 5.5 -> 4.6
//! ms (docs/RESULTS.md), at the same peak RSS. The cost: freed memory stays with the process
//! until it exits, which suits a training or sampling job.

/// Applies the settings; call once, first thing in `main`. A no-op off glibc.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters (under glibc's own locks); a refused
    // value (return 0) leaves the default in place.
    unsafe {
        // 32 MiB is the largest mmap threshold glibc accepts on 64-bit.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
