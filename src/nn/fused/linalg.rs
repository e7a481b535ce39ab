//! Host-side building blocks of the fused ops: a strided matrix product on the `gemm` crate
//! (the kernels flex itself uses) and a shifted row copy.

use std::mem::MaybeUninit;

/// `dst[p] = src[p + offset]`, zero where that falls outside.
pub fn copy_shifted(src: &[f32], dst: &mut [f32], offset: isize) {
    let (len, available) = (dst.len() as isize, src.len() as isize);
    // The p with 0 <= p + offset < src.len(), as one block copy; zeros on either side.
    let start = (-offset).clamp(0, len);
    let end = (available - offset).clamp(start, len);
    let (start, end) = (start as usize, end as usize);
    dst[..start].fill(0.0);
    dst[end..].fill(0.0);
    if end > start {
        let from = (start as isize + offset) as usize;
        dst[start..end].copy_from_slice(&src[from..from + (end - start)]);
    }
}

/// Below this many output elements the rayon hand-off costs more than it saves: such outputs
/// are written in the calling thread.
pub const PARALLEL_MIN: usize = 1 << 14;

/// A chunk length that gives each of the pool's threads one chunk, at least [`PARALLEL_MIN`].
pub fn thread_chunk(len: usize) -> usize {
    len.div_ceil(rayon::current_num_threads().max(1))
        .max(PARALLEL_MIN)
}

/// A vector of `len` floats written chunk by chunk (`chunk` long, the last may be shorter) by
/// `write(k, chunk k)`, which returns how many elements it wrote: all of them, or this panics.
/// On the pool's threads, a share of the chunks each, when there are several threads and the
/// vector is large; on one thread in the caller (a task sent to a one-thread pool and waited on
/// costs a context switch per op). `vec![0.0; len]` and a fill would write it in the calling
/// thread: glibc's calloc clears reused heap memory with a serial memset, which with the conv's
/// bias fill was a quarter of the main thread's work, outside every parallel part, in a
/// two-thread Gated PixelCNN step (perf, per thread).
fn par_write(
    len: usize,
    chunk: usize,
    write: impl Fn(usize, &mut [MaybeUninit<f32>]) -> usize + Sync,
) -> Vec<f32> {
    use rayon::prelude::*;
    let write = |(k, part): (usize, &mut [MaybeUninit<f32>])| {
        let written = write(k, part);
        assert_eq!(written, part.len(), "par_write: chunk {k} is short");
    };
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    if rayon::current_num_threads() > 1 && len >= PARALLEL_MIN {
        spare
            .par_chunks_mut(chunk.max(1))
            .enumerate()
            .for_each(write);
    } else {
        spare.chunks_mut(chunk.max(1)).enumerate().for_each(write);
    }
    // SAFETY: the chunks cover 0..len, and each was written whole (or the assertion panicked,
    // before this line, leaving the vector empty).
    unsafe { out.set_len(len) };
    out
}

/// A vector of `len` floats made of chunks of `chunk`, each chunk made of planes of `plane`
/// floats, plane `j` of every chunk filled with `value(j)` (see [`par_write`]).
pub fn par_filled(
    len: usize,
    chunk: usize,
    plane: usize,
    value: impl Fn(usize) -> f32 + Sync,
) -> Vec<f32> {
    par_write(len, chunk, |_, part| {
        for (j, run) in part.chunks_mut(plane.max(1)).enumerate() {
            let v = value(j);
            for x in run {
                x.write(v);
            }
        }
        part.len()
    })
}

/// A vector of `len` floats whose chunk `k` of `chunk` (the last may be shorter) is the
/// sequence `values(k)`, written once (see [`par_write`]). Panics if a sequence is shorter than
/// its chunk.
pub fn par_collect<I: Iterator<Item = f32>>(
    len: usize,
    chunk: usize,
    values: impl Fn(usize) -> I + Sync,
) -> Vec<f32> {
    par_write(len, chunk, |k, part| {
        let mut written = 0;
        for (slot, v) in part.iter_mut().zip(values(k)) {
            slot.write(v);
            written += 1;
        }
        written
    })
}

/// `len` zeros (see [`par_write`]).
pub fn par_zeros(len: usize) -> Vec<f32> {
    let chunk = thread_chunk(len);
    par_filled(len, chunk, chunk, |_| 0.0)
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
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs): (&mut [f32], usize),
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (&[f32], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst_rs >= n && dst.len() >= (m - 1) * dst_rs + n);
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(dst_rs).take(m) {
                row[..n].fill(0.0);
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
    // SAFETY: the three operands lie within their slices (asserted above), dst does not alias
    // lhs or rhs (it is a distinct &mut), and f32 is a type gemm supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
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
    use super::{copy_shifted, par_collect, par_filled, par_zeros};

    #[test]
    fn par_filled_writes_plane_j_of_every_chunk_with_value_j() {
        // Below and above the size that goes to the pool, a short last chunk, and a last plane
        // cut short by the chunk's end.
        for (len, chunk, plane) in [
            (10, 4, 2),
            (7, 7, 3),
            (40_000, 3_000, 700),
            (70_001, 7_000, 1_000),
        ] {
            let v = par_filled(len, chunk, plane, |j| j as f32 + 0.5);
            assert_eq!(v.len(), len);
            for (i, &x) in v.iter().enumerate() {
                assert_eq!(x, ((i % chunk) / plane) as f32 + 0.5, "len {len} at {i}");
            }
        }
        assert!(par_zeros(100_000).iter().all(|&x| x == 0.0));
        for (len, chunk) in [(10, 3), (50_000, 7_000)] {
            let v = par_collect(len, chunk, |k| {
                (k * chunk..((k + 1) * chunk).min(len)).map(|i| i as f32)
            });
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
        }
        assert!(par_zeros(0).is_empty());
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
