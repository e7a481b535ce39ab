//! A convolution that computes only the taps that can be non-zero.
//!
//! The masks of PixelCNN keep the kernel rows above the centre, the taps left of the centre,
//! and (mask B, or a colour-group mask) the centre: in raster order, exactly the first
//! `T = (k/2) k + k/2 (+1)` taps. A 3 x 3 mask-B convolution needs 5 of 9 taps, a 7 x 7 mask-A
//! one 24 of 49. A dense convolution multiplies the other taps by zero; here they are never
//! read. The same kernel serves the Gated PixelCNN's and PixelRNN's convolutions with
//! asymmetric padding (a `2 x 3` window whose output pixel sits in its bottom row, say), where
//! every tap is live:
//!
//! ```text
//! cols_n [C T, H W]      = im2col over the live taps of image n (zero padding)
//! y_n    [O, H W]        = W [O, C T] · cols_n + bias
//! dW                     = Σ_n dy_n · cols_nᵀ        d bias = Σ_n,p dy_n
//! dx_n                   = col2im(Wᵀ · dy_n)
//! ```
//!
//! The bias rides in the products: `y_n = [W | bias] · [cols_n; 1ᵀ]` and
//! `[dW | d bias] += dy_n · [cols_n; 1ᵀ]ᵀ`, with a row of ones under the im2col buffer. So the
//! output is written once, by the product, not filled with the bias and read back, and the bias
//! gradient needs no pass of its own over `dy`.
//!
//! At small resolutions one product serves several images: their im2col blocks sit side by
//! side, `[C T + 1, g H W]`, so that each product has about [`MIN_COLUMNS`] columns. A 7 x 7
//! image alone gives 49, too few to pay for packing the weights once per product.
//!
//! A 1 x 1 convolution skips im2col: `cols_n` is the image itself, or for a tap whole rows
//! away (the Gated PixelCNN's vertical-to-horizontal link) a block of its columns. Images are
//! independent, so the batch is split into one group per thread; each GEMM is single-threaded.

use super::Window;
use super::items_per_thread;
use super::kernels::multiversion;
use super::linalg::{
    assume_init, copy_shifted, copy_uninit, fill_uninit, matmul, matmul_strided, matmul_uninit,
    par_init, shifted_ranges,
};
use std::mem::MaybeUninit;

/// The fewest columns a product should have; smaller images are batched to reach it.
const MIN_COLUMNS: usize = 768;

/// The sizes of one convolution; `taps` counts the live taps, the first `taps` of the window in
/// raster order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub height: usize,
    pub width: usize,
    pub window: Window,
    pub taps: usize,
}

impl ConvShape {
    fn pixels(&self) -> usize {
        self.height * self.width
    }
    fn rows(&self) -> usize {
        self.in_channels * self.taps
    }
    fn offset(&self, t: usize) -> (isize, isize) {
        self.window.offset(t)
    }
    /// One tap whole rows above or below the pixel (the pixel itself, or the Gated
    /// PixelCNN's link from the vertical stack one row up): in row-major pixels the image,
    /// read `dy W` pixels on, is its own im2col, so the product runs on a block of its
    /// columns without a copy.
    fn row_shift(&self) -> Option<Span> {
        let (dy, dx) = self.offset(0);
        (self.taps == 1 && dx == 0).then(|| Span::of(dy * self.width as isize, self.pixels()))
    }
    /// Images per product, of a group of `group`: enough for [`MIN_COLUMNS`] columns. One
    /// for a row-shifted tap, which reads each image in place.
    fn images_per_product(&self, group: usize) -> usize {
        if self.row_shift().is_some() {
            return 1;
        }
        MIN_COLUMNS
            .div_ceil(self.pixels().max(1))
            .clamp(1, group.max(1))
    }
    /// An im2col buffer for `images` images side by side, `[C T, images H W]`, with a row of
    /// ones under it, which carries the bias through the products; empty for a row-shifted
    /// tap.
    fn cols_with_ones(&self, images: usize) -> Vec<f32> {
        if self.row_shift().is_some() {
            return Vec::new();
        }
        let width = images * self.pixels();
        let mut buffer = vec![0f32; self.rows() * width];
        buffer.resize((self.rows() + 1) * width, 1.0);
        buffer
    }
    fn check(&self, x: usize, w: usize, bias: usize) {
        let window = self.window;
        assert!(
            window.top < window.height.max(1)
                && window.left < window.width.max(1)
                && self.taps <= window.size(),
            "conv: taps {} do not fit the window {window:?}",
            self.taps
        );
        assert_eq!(
            x,
            self.batch * self.in_channels * self.pixels(),
            "conv: x size"
        );
        assert_eq!(w, self.out_channels * self.rows(), "conv: w size");
        assert_eq!(bias, self.out_channels, "conv: bias size");
    }
}

/// Output pixels `dst..dst + len` read input pixels `src..src + len` (one row-shifted tap).
#[derive(Debug, Clone, Copy)]
struct Span {
    dst: usize,
    src: usize,
    len: usize,
}

impl Span {
    /// Output pixel p reads input pixel p + `offset`, of `pixels`.
    fn of(offset: isize, pixels: usize) -> Self {
        let (inside, source) = shifted_ranges(pixels, pixels, offset);
        Self {
            dst: inside.start,
            src: source.start,
            len: inside.len(),
        }
    }
}

/// `x` `[b, C, H, W]`, `w` `[O, C, T]`, `bias` `[O]` -> `[b, O, H, W]`.
pub fn forward(x: &[f32], w: &[f32], bias: &[f32], s: ConvShape) -> Vec<f32> {
    s.check(x.len(), w.len(), bias.len());
    let (pixels, image_in, image_out, rows) = (
        s.pixels(),
        s.in_channels * s.pixels(),
        s.out_channels * s.pixels(),
        s.rows(),
    );
    let (per_group, shift) = (items_per_thread(s.batch), s.row_shift());
    let images = s.images_per_product(per_group);
    // The im2col buffer's row length: `images` images side by side.
    let width = images * pixels;
    // `[W | bias]` `[O, C T + 1]` against im2col's rows over a row of ones: one product writes
    // y, with no bias fill before it for the product to read back.
    let w_bias: Vec<f32> = match shift {
        Some(_) => Vec::new(),
        None => (0..s.out_channels)
            .flat_map(|o| w[o * rows..(o + 1) * rows].iter().chain([&bias[o]]))
            .copied()
            .collect(),
    };
    let init = |group: usize, y_group: &mut [MaybeUninit<f32>]| {
        let mut buffer = s.cols_with_ones(images);
        let mut product = Vec::new();
        for (k, y_chunk) in y_group.chunks_mut(images * image_out).enumerate() {
            let (first, count) = (group * per_group + k * images, y_chunk.len() / image_out);
            if let Some(span) = shift {
                // One image (images_per_product is 1): y_n = bias, then
                // y_n[:, dst..] += W [O, C] · x_n[:, src..]
                let x_n = &x[first * image_in..(first + 1) * image_in];
                for (plane, &b) in y_chunk.chunks_mut(pixels).zip(bias) {
                    fill_uninit(plane, b);
                }
                // SAFETY: every plane of y_n was filled just above.
                let y_n = unsafe { assume_init(y_chunk) };
                matmul_strided(
                    (s.out_channels, span.len, rows),
                    (&mut y_n[span.dst..], pixels),
                    true,
                    (w, rows, 1),
                    (&x_n[span.src..], pixels, 1),
                );
                continue;
            }
            im2col_side_by_side(x, first..first + count, &mut buffer, s, width);
            let dims = (s.out_channels, count * pixels, rows + 1);
            if count == 1 {
                matmul_uninit(
                    dims,
                    (y_chunk, pixels),
                    (&w_bias, rows + 1, 1),
                    (&buffer, width, 1),
                );
                continue;
            }
            // y [O, count H W] for the images side by side, then each image's planes out.
            product.resize(s.out_channels * width, 0.0);
            matmul_strided(
                dims,
                (&mut product, width),
                false,
                (&w_bias, rows + 1, 1),
                (&buffer, width, 1),
            );
            for (j, y_n) in y_chunk.chunks_mut(image_out).enumerate() {
                for (o, plane) in y_n.chunks_mut(pixels).enumerate() {
                    copy_uninit(plane, &product[o * width + j * pixels..][..pixels]);
                }
            }
        }
    };
    // SAFETY: each image's output is written whole: bias planes then a product onto them, one
    // product writing all of it, or its planes copied whole from a product of several images.
    unsafe { par_init(s.batch * image_out, per_group * image_out, init).0 }
}

/// Gradients `(dx, dw, d bias)` from `dy` `[b, O, H, W]`.
pub fn backward(x: &[f32], w: &[f32], dy: &[f32], s: ConvShape) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    s.check(x.len(), w.len(), s.out_channels);
    let (pixels, image_in, image_out) = (
        s.pixels(),
        s.in_channels * s.pixels(),
        s.out_channels * s.pixels(),
    );
    assert_eq!(dy.len(), s.batch * image_out, "causal conv: dy size");
    if image_in == 0 || image_out == 0 {
        let mut dbias = vec![0f32; s.out_channels];
        for dy_n in dy.chunks(image_out.max(1)) {
            add_row_sums(dy_n, pixels, &mut dbias);
        }
        return (vec![0f32; s.batch * image_in], vec![0f32; w.len()], dbias);
    }
    let (per_group, shift, rows) = (items_per_thread(s.batch), s.row_shift(), s.rows());
    let images = s.images_per_product(per_group);
    let width = images * pixels;
    let init = |group: usize, dx_group: &mut [MaybeUninit<f32>]| {
        let (mut dw, mut dbias) = (vec![0f32; w.len()], vec![0f32; s.out_channels]);
        // [dW | d bias]ᵀ [C T + 1, O] += [cols; ones] · dyᵀ: the bias gradient comes out of
        // the weights' product, as the bias went into the forward's (a row-shifted tap, with
        // no buffer, sums dy for it instead). Transposed, so that gemm (which turns a
        // row-major product around) reads the im2col buffer or the image in place: as
        // `dy · [cols; ones]ᵀ` it packed the whole buffer, 7% of PixelCNN++'s step.
        let mut dw_bias_t = vec![0f32; w.len() + s.out_channels];
        let mut buffer = s.cols_with_ones(images);
        let mut dcols = vec![0f32; if shift.is_some() { 0 } else { rows * width }];
        let mut dy_side_by_side = Vec::new();
        for (k, dx_chunk) in dx_group.chunks_mut(images * image_in).enumerate() {
            let (first, count) = (group * per_group + k * images, dx_chunk.len() / image_in);
            if let Some(span) = shift {
                // One image: dW [O, C] += dy_n[:, dst..] · x_n[:, src..]ᵀ; dx_n[:, src..] =
                // Wᵀ · dy_n[:, dst..], and zeros in the input pixels no output read.
                let dy_n = &dy[first * image_out..(first + 1) * image_out];
                let x_n = &x[first * image_in..(first + 1) * image_in];
                add_row_sums(dy_n, pixels, &mut dbias);
                matmul(
                    (rows, s.out_channels, span.len),
                    &mut dw_bias_t[..w.len()],
                    true,
                    (&x_n[span.src..], pixels, 1),
                    (&dy_n[span.dst..], 1, pixels),
                );
                for plane in dx_chunk.chunks_mut(pixels) {
                    let (before, rest) = plane.split_at_mut(span.src);
                    fill_uninit(before, 0.0);
                    fill_uninit(&mut rest[span.len..], 0.0);
                }
                matmul_uninit(
                    (rows, span.len, s.out_channels),
                    (&mut dx_chunk[span.src..], pixels),
                    (w, 1, rows),
                    (&dy_n[span.dst..], pixels, 1),
                );
                continue;
            }
            im2col_side_by_side(x, first..first + count, &mut buffer, s, width);
            // dy of the chunk's images side by side, [O, count HW] (in place for one image).
            let (dy_chunk, dy_rs): (&[f32], usize) = if count == 1 {
                (&dy[first * image_out..(first + 1) * image_out], pixels)
            } else {
                dy_side_by_side.resize(s.out_channels * width, 0.0);
                for j in 0..count {
                    let dy_n = &dy[(first + j) * image_out..(first + j + 1) * image_out];
                    for (o, plane) in dy_n.chunks(pixels).enumerate() {
                        dy_side_by_side[o * width + j * pixels..][..pixels].copy_from_slice(plane);
                    }
                }
                (&dy_side_by_side, width)
            };
            let columns = count * pixels;
            matmul(
                (rows + 1, s.out_channels, columns),
                &mut dw_bias_t,
                true,
                (&buffer, width, 1),
                (dy_chunk, 1, dy_rs),
            );
            // dcols [C T, count HW] = Wᵀ [C T, O] · dy [O, count HW], then each dx_n = col2im
            matmul_strided(
                (rows, columns, s.out_channels),
                (&mut dcols, width),
                false,
                (w, 1, rows),
                (dy_chunk, dy_rs, 1),
            );
            for (j, dx_n) in dx_chunk.chunks_mut(image_in).enumerate() {
                col2im(&mut dcols, dx_n, s, width, j * pixels);
            }
        }
        for (r, row) in dw_bias_t.chunks_exact(s.out_channels).enumerate() {
            if r < rows {
                for (o, &v) in row.iter().enumerate() {
                    dw[o * rows + r] = v;
                }
            } else if shift.is_none() {
                dbias.copy_from_slice(row);
            }
        }
        (dw, dbias)
    };
    // SAFETY: each image's dx is written whole: by col2im, or by zeros around one product.
    let (dx, parts) = unsafe { par_init(s.batch * image_in, per_group * image_in, init) };
    let (mut dw, mut dbias) = (vec![0f32; w.len()], vec![0f32; s.out_channels]);
    for (dw_group, dbias_group) in parts {
        for (a, b) in dw.iter_mut().zip(&dw_group) {
            *a += b;
        }
        for (a, b) in dbias.iter_mut().zip(&dbias_group) {
            *a += b;
        }
    }
    (dx, dw, dbias)
}

/// `sums[o] += Σ_p dy[o, p]` for `dy` `[O, pixels]`: the bias gradient of one image, where no
/// im2col buffer carries a row of ones. Eight running sums per row, so that the loop
/// vectorises (one sum in order is a chain of dependent adds).
///
/// This and [`col2im`] are compiled for AVX-512, AVX2 and the baseline, like the kernels: built
/// for baseline x86-64 alone they ran four lanes wide.
#[inline(always)]
fn add_row_sums_body(dy: &[f32], pixels: usize, sums: &mut [f32]) {
    for (row, sum) in dy.chunks(pixels.max(1)).zip(sums.iter_mut()) {
        let mut lanes = [0f32; 8];
        let blocks = row.chunks_exact(8);
        let rest: f32 = blocks.remainder().iter().sum();
        for block in blocks {
            for (lane, v) in lanes.iter_mut().zip(block) {
                *lane += v;
            }
        }
        *sum += lanes.iter().sum::<f32>() + rest;
    }
}

multiversion!(add_row_sums => add_row_sums_body(dy: &[f32], pixels: usize, sums: &mut [f32]));

/// The columns of each row whose source column `x + dx` lies outside the row.
fn outside_columns(w: usize, dx: isize) -> std::ops::Range<usize> {
    let shift = dx.unsigned_abs().min(w);
    if dx >= 0 { w - shift..w } else { 0..shift }
}

/// Zeroes `columns` of rows `rows` of a `w`-wide plane, column by column down the rows: a
/// fill per row would be a call to write one or two floats.
fn zero_columns(
    plane: &mut [f32],
    w: usize,
    rows: std::ops::Range<usize>,
    columns: std::ops::Range<usize>,
) {
    for x in columns {
        for p in (rows.start * w + x..rows.end * w).step_by(w.max(1)) {
            plane[p] = 0.0;
        }
    }
}

/// `cols[c T + t, at + y W + x] = image[c, y + dy_t, x + dx_t]`, zero outside the image, in
/// a buffer whose rows are `stride` long (several images side by side, this one from column
/// `at`).
///
/// Each tap's plane is one block copy: in row-major pixels a tap reads the plane `dy W + dx`
/// pixels on, except in the `|dx|` columns at one side, which the copy fills from the
/// neighbouring row and which are then zeroed. (In a row whose source row lies outside the
/// plane, only those columns can read inside it.) Row by row, a 7 x 7 image's taps were
/// hundreds of calls to copy or fill a few floats.
fn im2col(image: &[f32], cols: &mut [f32], s: ConvShape, stride: usize, at: usize) {
    let (h, w) = (s.height, s.width);
    let plane_len = h * w;
    for t in 0..s.taps {
        let (dy, dx) = s.offset(t);
        let outside = outside_columns(w, dx);
        for c in 0..s.in_channels {
            let plane = &image[c * plane_len..(c + 1) * plane_len];
            let begin = (c * s.taps + t) * stride + at;
            let row = &mut cols[begin..begin + plane_len];
            copy_shifted(plane, row, dy * w as isize + dx);
            zero_columns(row, w, 0..h, outside.clone());
        }
    }
}

/// The im2col blocks of `images` of the batch `x`, side by side in `cols`, whose rows are
/// `stride` long.
fn im2col_side_by_side(
    x: &[f32],
    images: std::ops::Range<usize>,
    cols: &mut [f32],
    s: ConvShape,
    stride: usize,
) {
    let image = s.in_channels * s.pixels();
    for (j, n) in images.enumerate() {
        im2col(
            &x[n * image..(n + 1) * image],
            cols,
            s,
            stride,
            j * s.pixels(),
        );
    }
}

/// The adjoint of [`im2col`], as a gather that writes every element of `image` once:
/// `image[c, y, x] = Σ_t cols[c T + t, at + (y - dy_t) W + (x - dx_t)]` over the taps whose
/// source lies in the image, in the order of t: the first tap written, the others added (a
/// scatter onto zeros gives the same sums, but for the sign of a zero).
///
/// Like [`im2col`], each tap is one flat pass over the plane. The entries of `cols` that no
/// pixel takes (those of im2col's zero padding, whose gradient is dropped) are zeroed first,
/// so that the pixels next to them, which read them across a row's end, add zero.
#[inline(always)]
fn col2im_body(
    cols: &mut [f32],
    image: &mut [MaybeUninit<f32>],
    s: ConvShape,
    stride: usize,
    at: usize,
) {
    let (h, w) = (s.height, s.width);
    let plane_len = h * w;
    let spans: Vec<_> = (0..s.taps)
        .map(|t| {
            let (dy, dx) = s.offset(t);
            // im2col's entry p read image pixel p + dy W + dx, so image pixel p takes the
            // entry at p - dy W - dx: the tap read backwards.
            let (inside, source) = shifted_ranges(plane_len, plane_len, -(dy * w as isize + dx));
            (inside, source, outside_columns(w, dx))
        })
        .collect();
    for c in 0..s.in_channels {
        let target = &mut image[c * plane_len..(c + 1) * plane_len];
        for (t, (inside, source, outside)) in spans.iter().enumerate() {
            let begin = (c * s.taps + t) * stride + at;
            let row = &mut cols[begin..begin + plane_len];
            zero_columns(row, w, 0..h, outside.clone());
            if t == 0 {
                // The first tap writes the plane (zeros where it reads nothing); the others add.
                let (before, rest) = target.split_at_mut(inside.start);
                let (read, after) = rest.split_at_mut(inside.len());
                fill_uninit(before, 0.0);
                fill_uninit(after, 0.0);
                copy_uninit(read, &row[source.clone()]);
                continue;
            }
            // SAFETY: the first tap wrote every element of the plane.
            let target = unsafe { assume_init(target) };
            for (a, b) in target[inside.clone()].iter_mut().zip(&row[source.clone()]) {
                *a += b;
            }
        }
        if spans.is_empty() {
            fill_uninit(target, 0.0);
        }
    }
}

multiversion!(col2im => col2im_body(
    cols: &mut [f32],
    image: &mut [MaybeUninit<f32>],
    s: ConvShape,
    stride: usize,
    at: usize
));
