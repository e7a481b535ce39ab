//! Host-side building blocks of the fused ops: a strided matrix product on the `gemm` crate
//! (the kernels flex itself uses) and a shifted row copy.

use std::mem::MaybeUninit;
use std::ops::Range;

/// `dst[p] = src[p + offset]`, zero where that falls outside.
pub fn copy_shifted(src: &[f32], dst: &mut [f32], offset: isize) {
    // The p with 0 <= p + offset < src.len(), as one block copy; zeros on either side.
    let (inside, from) = shifted_ranges(dst.len(), src.len(), offset);
    dst[..inside.start].fill(0.0);
    dst[inside.end..].fill(0.0);
    dst[inside].copy_from_slice(&src[from]);
}

/// For `dst[p] = src[p + offset]` with `dst` `len` long and `src` `available`: the p whose
/// `p + offset` lies in `src`, and the source range they read (empty when none does).
pub fn shifted_ranges(len: usize, available: usize, offset: isize) -> (Range<usize>, Range<usize>) {
    let (len, available) = (len as isize, available as isize);
    let start = (-offset).clamp(0, len);
    let end = (available - offset).clamp(start, len);
    if end == start {
        return (start as usize..start as usize, 0..0); // start may lie before -offset
    }
    let from = (start + offset) as usize;
    (
        start as usize..end as usize,
        from..from + (end - start) as usize,
    )
}

/// Below this many output elements the rayon hand-off costs more than it saves: such outputs
/// are written in the calling thread.
pub const PARALLEL_MIN: usize = 1 << 14;

/// A chunk length that gives each of the pool's threads one chunk, at least [`PARALLEL_MIN`].
pub fn thread_chunk(len: usize) -> usize {
    len.div_ceil(rayon::current_num_threads().max(1))
        .max(PARALLEL_MIN)
}

/// A vector of `len` floats made chunk by chunk (`chunk` long, the last may be shorter) by
/// `init(k, chunk k)`, with what each call returns. On the pool's threads, a share of the
/// chunks each, when there are several threads and the vector is large; on one thread in the
/// caller (a task sent to a one-thread pool and waited on costs a context switch per op).
/// `vec![0.0; len]` and a fill would write it in the calling thread: glibc's calloc clears
/// reused heap memory with a serial memset, which with the conv's bias fill was a quarter of
/// the main thread's work, outside every parallel part, in a two-thread Gated PixelCNN step
/// (perf, per thread). Made by its kernel, an output is also written once, not zeroed first.
///
/// # Safety
/// `init` must write every element of the chunk it is given (or panic).
pub unsafe fn par_init<R: Send>(
    len: usize,
    chunk: usize,
    init: impl Fn(usize, &mut [MaybeUninit<f32>]) -> R + Sync,
) -> (Vec<f32>, Vec<R>) {
    use rayon::prelude::*;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    // In debug builds (the tests) an element `init` missed reads as NaN, not as whatever the
    // allocator left there (often zeros, which a test could take for a right answer).
    #[cfg(debug_assertions)]
    spare.fill(MaybeUninit::new(f32::NAN));
    let results = if rayon::current_num_threads() > 1 && len >= PARALLEL_MIN {
        spare
            .par_chunks_mut(chunk.max(1))
            .enumerate()
            .map(|(k, part)| init(k, part))
            .collect()
    } else {
        spare
            .chunks_mut(chunk.max(1))
            .enumerate()
            .map(|(k, part)| init(k, part))
            .collect()
    };
    // SAFETY: the chunks cover 0..len, and `init` wrote each whole (the caller's promise), or
    // panicked before this line, leaving the vector empty.
    unsafe { out.set_len(len) };
    (out, results)
}

/// `dst[i] = value` for every i, making `dst` initialised.
pub fn fill_uninit(dst: &mut [MaybeUninit<f32>], value: f32) -> &mut [f32] {
    for x in dst.iter_mut() {
        x.write(value);
    }
    // SAFETY: every element was written just above.
    unsafe { assume_init(dst) }
}

/// `dst = src`, for memory not written before; returns `dst` as floats.
pub fn copy_uninit<'a>(dst: &'a mut [MaybeUninit<f32>], src: &[f32]) -> &'a mut [f32] {
    assert_eq!(dst.len(), src.len(), "copy_uninit: lengths");
    for (d, &v) in dst.iter_mut().zip(src) {
        d.write(v);
    }
    // SAFETY: every element was written just above (the lengths are equal).
    unsafe { assume_init(dst) }
}

/// `values` as floats.
///
/// # Safety
/// Every element of `values` must have been written.
pub unsafe fn assume_init(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: MaybeUninit<f32> has f32's layout, and the elements are initialised (the
    // caller's promise).
    unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// A vector of `len` floats whose chunk `k` of `chunk` (the last may be shorter) is the
/// sequence `values(k)`, written once (see [`par_init`]). Panics if a sequence is shorter than
/// its chunk.
pub fn par_collect<I: Iterator<Item = f32>>(
    len: usize,
    chunk: usize,
    values: impl Fn(usize) -> I + Sync,
) -> Vec<f32> {
    let write = |k: usize, part: &mut [MaybeUninit<f32>]| {
        let mut written = 0;
        for (slot, v) in part.iter_mut().zip(values(k)) {
            slot.write(v);
            written += 1;
        }
        assert_eq!(written, part.len(), "par_collect: chunk {k} is short");
    };
    // SAFETY: `write` panics unless the chunk was written whole.
    unsafe { par_init(len, chunk, write).0 }
}

/// `dst [m, n]` (row-major) `= (accumulate ? dst : 0) + lhs [m, k] · rhs [k, n]`, where each
/// operand is `(values, row stride, column stride)`.
pub fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
) {
    matmul_strided((m, n, k), (dst, n), accumulate, lhs, rhs);
}

/// [`matmul`] into `dst` rows `dst_rs` apart: a block of columns of a wider matrix, whose
/// other columns are left as they are.
pub fn matmul_strided(
    dims: (usize, usize, usize),
    (dst, dst_rs): (&mut [f32], usize),
    accumulate: bool,
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
) {
    // SAFETY: dst is initialised memory, and a &mut that aliases neither operand.
    unsafe {
        gemm_into(
            dims,
            (dst.as_mut_ptr(), dst.len(), dst_rs),
            accumulate,
            lhs,
            rhs,
        )
    }
}

/// [`matmul_strided`] without accumulation into memory not yet written: every element of the
/// `[m, n]` block is written and none is read.
pub fn matmul_uninit(
    dims: (usize, usize, usize),
    (dst, dst_rs): (&mut [MaybeUninit<f32>], usize),
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
) {
    // SAFETY: gemm writes an unread destination through its pointer only (with read_dst off it
    // sets alpha to zero, and every kernel, gemv and gevv too, skips dst when alpha is zero);
    // dst is a &mut that aliases neither operand.
    unsafe {
        gemm_into(
            dims,
            (dst.as_mut_ptr().cast(), dst.len(), dst_rs),
            false,
            lhs,
            rhs,
        )
    }
}

/// # Safety
/// `dst` points to `dst_len` floats, writable and aliasing neither operand; initialised
/// when `accumulate` is set.
unsafe fn gemm_into(
    (m, n, k): (usize, usize, usize),
    (dst, dst_len, dst_rs): (*mut f32, usize, usize),
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (&[f32], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst_rs >= n && dst_len >= (m - 1) * dst_rs + n);
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row i's first n elements lie within dst (asserted above).
                unsafe { std::ptr::write_bytes(dst.add(i * dst_rs), 0, n) };
            }
        }
        return;
    }
    // The bounds gemm will touch, checked here because the call below is unchecked.
    assert!(lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    let parallelism = if m * n * k >= 1 << 20 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the three operands lie within their bounds (asserted above), dst does not alias
    // lhs or rhs (the caller's promise), and f32 is a type gemm supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{copy_shifted, matmul_strided, matmul_uninit, par_collect, par_init};
    use std::mem::MaybeUninit;

    #[test]
    fn par_init_writes_chunk_k_with_init_k_and_returns_the_results_in_order() {
        // Below and above the size that goes to the pool, and a short last chunk.
        for (len, chunk) in [(0, 4), (10, 4), (7, 7), (40_000, 3_000), (70_001, 7_000)] {
            // SAFETY: every element of each chunk is written.
            let (v, sizes) = unsafe {
                par_init(len, chunk, |k, part: &mut [MaybeUninit<f32>]| {
                    for (j, x) in part.iter_mut().enumerate() {
                        x.write((k * chunk + j) as f32);
                    }
                    part.len()
                })
            };
            assert_eq!(v.len(), len);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
            let expected: Vec<usize> = (0..len.div_ceil(chunk))
                .map(|k| chunk.min(len - k * chunk))
                .collect();
            assert_eq!(sizes, expected, "len {len}");
        }
        for (len, chunk) in [(10, 3), (50_000, 7_000)] {
            let v = par_collect(len, chunk, |k| {
                (k * chunk..((k + 1) * chunk).min(len)).map(|i| i as f32)
            });
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
        }
    }

    #[test]
    #[should_panic(expected = "short")]
    fn par_collect_refuses_a_short_chunk() {
        par_collect(10, 5, |k| (0..if k == 0 { 5 } else { 4 }).map(|i| i as f32));
    }

    #[test]
    fn the_product_into_unwritten_memory_equals_the_product_onto_zeros() {
        // (m, n, k) with dst rows `stride` apart; k = 0 writes zeros.
        for (m, n, k, stride) in [(3, 5, 4, 5), (4, 6, 7, 9), (2, 3, 0, 4), (17, 40, 33, 41)] {
            let lhs: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
            let rhs: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.5).collect();
            let len = (m - 1) * stride + n;
            let mut expected = vec![0f32; len];
            matmul_strided(
                (m, n, k),
                (&mut expected, stride),
                true,
                (&lhs, k, 1),
                (&rhs, n, 1),
            );
            let mut got = vec![MaybeUninit::new(f32::NAN); len];
            matmul_uninit((m, n, k), (&mut got, stride), (&lhs, k, 1), (&rhs, n, 1));
            for i in 0..m {
                for j in 0..n {
                    // SAFETY: element (i, j) of the block was written by the product.
                    let value = unsafe { got[i * stride + j].assume_init() };
                    assert_eq!(
                        value,
                        expected[i * stride + j],
                        "m{m} n{n} k{k} at ({i}, {j})"
                    );
                }
            }
        }
    }

    #[test]
    fn copy_shifted_reads_src_at_p_plus_offset_with_zeros_outside() {
        let src = [1.0, 2.0, 3.0, 4.0];
        for offset in -6..=6isize {
            for len in [0, 3, 4, 6] {
                let mut dst = vec![f32::NAN; len];
                copy_shifted(&src, &mut dst, offset);
                for (p, &d) in dst.iter().enumerate() {
                    let q = p as isize + offset;
                    let expected = if (0..4).contains(&q) {
                        src[q as usize]
                    } else {
                        0.0
                    };
                    assert_eq!(d, expected, "offset {offset}, len {len}, p {p}");
                }
            }
        }
    }
}
