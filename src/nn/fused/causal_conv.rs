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
//! A 1 x 1 convolution skips im2col: `cols_n` is the image itself, or for a tap whole rows
//! away (the Gated PixelCNN's vertical-to-horizontal link) a block of its columns. Images are
//! independent, so the batch is split into one group per thread; each GEMM is single-threaded.

use super::Window;
use super::items_per_thread;
use super::kernels::multiversion;
use super::linalg::{
    assume_init, copy_shifted, fill_uninit, matmul, matmul_strided, matmul_uninit, par_init,
};
use std::mem::MaybeUninit;

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
    /// The length of an im2col buffer (none for a row-shifted tap).
    fn cols_len(&self) -> usize {
        if self.row_shift().is_some() {
            0
        } else {
            self.rows() * self.pixels()
        }
    }
    /// An im2col buffer for one image with a row of ones under it, which carries the bias
    /// through the products; empty for a row-shifted tap, which reads the image in place.
    fn cols_with_ones(&self) -> Vec<f32> {
        let mut buffer = vec![0f32; self.cols_len()];
        if self.row_shift().is_none() {
            buffer.resize(self.cols_len() + self.pixels(), 1.0);
        }
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
        let len = pixels.saturating_sub(offset.unsigned_abs());
        let (dst, src) = if offset >= 0 {
            (0, offset as usize)
        } else {
            (offset.unsigned_abs(), 0)
        };
        Self {
            dst: dst.min(pixels),
            src: src.min(pixels),
            len,
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
        let mut buffer = s.cols_with_ones();
        for (j, y_n) in y_group.chunks_mut(image_out).enumerate() {
            let n = group * per_group + j;
            let x_n = &x[n * image_in..(n + 1) * image_in];
            if let Some(span) = shift {
                // y_n = bias, then y_n[:, dst..] += W [O, C] · x_n[:, src..]
                for (plane, &b) in y_n.chunks_mut(pixels).zip(bias) {
                    fill_uninit(plane, b);
                }
                // SAFETY: every plane of y_n was filled just above.
                let y_n = unsafe { assume_init(y_n) };
                matmul_strided(
                    (s.out_channels, span.len, rows),
                    (&mut y_n[span.dst..], pixels),
                    true,
                    (w, rows, 1),
                    (&x_n[span.src..], pixels, 1),
                );
                continue;
            }
            im2col(x_n, &mut buffer[..s.cols_len()], s);
            matmul_uninit(
                (s.out_channels, pixels, rows + 1),
                (y_n, pixels),
                (&w_bias, rows + 1, 1),
                (&buffer, pixels, 1),
            );
        }
    };
    // SAFETY: each image's output is written whole: bias planes then a product onto them, or
    // one product writing all of it.
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
    let init = |group: usize, dx_group: &mut [MaybeUninit<f32>]| {
        let (mut dw, mut dbias) = (vec![0f32; w.len()], vec![0f32; s.out_channels]);
        // [dW | d bias] [O, C T + 1] += dy_n [O, HW] · [cols_n; ones]ᵀ: the bias gradient comes
        // out of the weights' product, as the bias went into the forward's.
        let mut dw_bias = vec![
            0f32;
            if shift.is_some() {
                0
            } else {
                w.len() + s.out_channels
            }
        ];
        let mut buffer = s.cols_with_ones();
        let mut dcols = vec![0f32; s.cols_len()];
        for (j, dx_n) in dx_group.chunks_mut(image_in).enumerate() {
            let n = group * per_group + j;
            let dy_n = &dy[n * image_out..(n + 1) * image_out];
            let x_n = &x[n * image_in..(n + 1) * image_in];
            if let Some(span) = shift {
                // dW [O, C] += dy_n[:, dst..] · x_n[:, src..]ᵀ; dx_n[:, src..] = Wᵀ ·
                // dy_n[:, dst..], and zeros in the input pixels no output read.
                add_row_sums(dy_n, pixels, &mut dbias);
                matmul(
                    (s.out_channels, rows, span.len),
                    &mut dw,
                    true,
                    (&dy_n[span.dst..], pixels, 1),
                    (&x_n[span.src..], 1, pixels),
                );
                for plane in dx_n.chunks_mut(pixels) {
                    let (before, rest) = plane.split_at_mut(span.src);
                    fill_uninit(before, 0.0);
                    fill_uninit(&mut rest[span.len..], 0.0);
                }
                matmul_uninit(
                    (rows, span.len, s.out_channels),
                    (&mut dx_n[span.src..], pixels),
                    (w, 1, rows),
                    (&dy_n[span.dst..], pixels, 1),
                );
                continue;
            }
            im2col(x_n, &mut buffer[..s.cols_len()], s);
            matmul(
                (s.out_channels, rows + 1, pixels),
                &mut dw_bias,
                true,
                (dy_n, pixels, 1),
                (&buffer, 1, pixels),
            );
            // dcols [C T, HW] = Wᵀ [C T, O] · dy_n [O, HW], then dx_n = col2im(dcols)
            matmul(
                (rows, pixels, s.out_channels),
                &mut dcols,
                false,
                (w, 1, rows),
                (dy_n, pixels, 1),
            );
            col2im(&dcols, dx_n, s);
        }
        if shift.is_none() {
            for (o, row) in dw_bias.chunks_exact(rows + 1).enumerate() {
                dw[o * rows..(o + 1) * rows].copy_from_slice(&row[..rows]);
                dbias[o] = row[rows];
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

/// `cols[c T + t, y W + x] = image[c, y + dy_t, x + dx_t]`, zero outside the image.
fn im2col(image: &[f32], cols: &mut [f32], s: ConvShape) {
    let (h, w) = (s.height, s.width);
    for c in 0..s.in_channels {
        let plane = &image[c * h * w..(c + 1) * h * w];
        for t in 0..s.taps {
            let (dy, dx) = s.offset(t);
            let row = &mut cols[(c * s.taps + t) * h * w..(c * s.taps + t + 1) * h * w];
            for (y, out) in row.chunks_mut(w).enumerate() {
                let source = y as isize + dy;
                if source < 0 || source >= h as isize {
                    out.fill(0.0);
                } else {
                    let source = source as usize;
                    copy_shifted(&plane[source * w..(source + 1) * w], out, dx);
                }
            }
        }
    }
}

/// The adjoint of [`im2col`], as a gather that writes every element of `image` once:
/// `image[c, y, x] = Σ_t cols[c T + t, (y - dy_t) W + (x - dx_t)]` over the taps whose source
/// lies in the image, added in the order of t onto zero, as a scatter onto zeros would.
#[inline(always)]
fn col2im_body(cols: &[f32], image: &mut [MaybeUninit<f32>], s: ConvShape) {
    let (h, w) = (s.height, s.width);
    let offsets: Vec<(isize, isize)> = (0..s.taps).map(|t| s.offset(t)).collect();
    for c in 0..s.in_channels {
        for y in 0..h {
            let target = fill_uninit(&mut image[(c * h + y) * w..(c * h + y + 1) * w], 0.0);
            for (t, &(dy, dx)) in offsets.iter().enumerate() {
                let source = y as isize - dy;
                if source < 0 || source >= h as isize {
                    continue;
                }
                let start = (c * s.taps + t) * h * w + source as usize * w;
                let row = &cols[start..start + w];
                // target[x] += row[x - dx] wherever 0 <= x - dx < w
                let shift = dx.unsigned_abs().min(w);
                let (to, from) = if dx >= 0 {
                    (&mut target[shift..], &row[..w - shift])
                } else {
                    (&mut target[..w - shift], &row[shift..])
                };
                for (a, b) in to.iter_mut().zip(from) {
                    *a += b;
                }
            }
        }
    }
}

multiversion!(col2im => col2im_body(cols: &[f32], image: &mut [MaybeUninit<f32>], s: ConvShape));
