//! Out-of-distribution detection metrics. Convention: a detector gives each image a score that
//! is **higher for images it believes out of distribution**; out-of-distribution images are the
//! positive class.
//!
//! - AUROC: P(score_out > score_in) + ½ P(equal), by ranks (0.5 = chance, 1 = perfect).
//! - AUPR: area under the precision-recall curve, OOD positive (average precision).
//! - FPR at 95% TPR: the fraction of in-distribution images flagged at the threshold that
//!   catches 95% of the out-of-distribution ones.

use crate::data::ImageSet;
use crate::error::{Error, Result};

/// The three numbers for one score.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct OodMetrics {
    pub auroc: f64,
    pub aupr: f64,
    pub fpr_at_95_tpr: f64,
}

/// Metrics of `in_scores` (negatives) against `out_scores` (positives).
pub fn metrics(in_scores: &[f64], out_scores: &[f64]) -> OodMetrics {
    OodMetrics {
        auroc: auroc(in_scores, out_scores),
        aupr: average_precision(in_scores, out_scores),
        fpr_at_95_tpr: fpr_at_tpr(in_scores, out_scores, 0.95),
    }
}

/// Mann-Whitney form of the AUROC, with ties counted half.
pub fn auroc(in_scores: &[f64], out_scores: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = in_scores
        .iter()
        .map(|&s| (s, false))
        .chain(out_scores.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks (1-based) over ties; sum the ranks of the positives.
    let mut rank_sum_out = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_out += all[i..=j].iter().filter(|x| x.1).count() as f64 * average_rank;
        i = j + 1;
    }
    let (n_in, n_out) = (in_scores.len() as f64, out_scores.len() as f64);
    (rank_sum_out - n_out * (n_out + 1.0) / 2.0) / (n_in * n_out)
}

/// Average precision with OOD as the positive class (ties broken pessimistically: in first).
pub fn average_precision(in_scores: &[f64], out_scores: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = in_scores
        .iter()
        .map(|&s| (s, false))
        .chain(out_scores.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let (mut true_pos, mut seen, mut sum) = (0.0, 0.0, 0.0);
    for (_, positive) in all {
        seen += 1.0;
        if positive {
            true_pos += 1.0;
            sum += true_pos / seen;
        }
    }
    sum / out_scores.len().max(1) as f64
}

/// Fraction of in-distribution scores at or above the threshold that catches `tpr` of the OOD.
pub fn fpr_at_tpr(in_scores: &[f64], out_scores: &[f64], tpr: f64) -> f64 {
    let mut out_sorted = out_scores.to_vec();
    out_sorted.sort_by(|a, b| b.total_cmp(a));
    let k = ((tpr * out_sorted.len() as f64).ceil() as usize).clamp(1, out_sorted.len().max(1));
    let Some(&threshold) = out_sorted.get(k - 1) else {
        return f64::NAN;
    };
    in_scores.iter().filter(|&&s| s >= threshold).count() as f64 / in_scores.len().max(1) as f64
}

/// Typicality of each image (Nalisnick et al. 2019b, one image at a time): the distance of its
/// `-log p(x)` from `entropy`, the mean over in-distribution validation images.
pub fn typicality(nll: &[f64], entropy: f64) -> Vec<f64> {
    nll.iter().map(|v| (v - entropy).abs()).collect()
}

/// Input complexity (Serrà et al. 2020): `-log2 p(x)` minus the image's code length in bits
/// under a generic lossless compressor ([`png_bits`]): a likelihood ratio against the
/// compressor as a universal model of images.
pub fn input_complexity(nll: &[f64], code_bits: &[f64]) -> Vec<f64> {
    (nll.iter().zip(code_bits))
        .map(|(n, b)| n / std::f64::consts::LN_2 - b)
        .collect()
}

/// `log p_other(x) - log p(x)` from the two NLLs: the likelihood ratio against a background
/// model (Ren et al. 2019) when `other` is the background's NLL of `x`, the stirred score when
/// it is the model's own NLL of `T(x)` ([`Stir`]).
pub fn log_ratio(nll: &[f64], other_nll: &[f64]) -> Vec<f64> {
    nll.iter().zip(other_nll).map(|(m, o)| m - o).collect()
}

/// A bijection of the pixel grid that keeps an image's local statistics (its pixel values and,
/// up to orientation, each pixel's neighbours) and breaks its long-range layout. A density
/// model predicts much of a pixel from its neighbours, and that part scores `x` and `T(x)`
/// alike; the difference `log p(x) - log p(T(x))` keeps what the model knows of the data's
/// layout (an upright garment), which an image from elsewhere lacks whichever way up it is
/// (Umapathi et al. 2022, "Shaken, and Stirred"). Out-of-distribution score:
/// `-log p(x) + log p(T(x))`, near 0 for such images and negative for typical ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stir {
    /// Upside down: rows in reverse order.
    Vflip,
    /// Mirror image: columns in reverse order.
    Hflip,
    /// Turned half round (both flips).
    Rot180,
    /// Rows become columns (square images only).
    Transpose,
}

impl Stir {
    pub fn name(self) -> &'static str {
        match self {
            Stir::Vflip => "upside down",
            Stir::Hflip => "mirrored",
            Stir::Rot180 => "turned 180°",
            Stir::Transpose => "transposed",
        }
    }

    /// `set` with every channel plane of every image transformed.
    pub fn apply(self, set: &ImageSet) -> Result<ImageSet> {
        let (h, w) = (set.shape.height, set.shape.width);
        if self == Stir::Transpose && h != w {
            return Err(Error::Invalid(format!(
                "{}: transposing needs square images, not {h}x{w}",
                set.dataset
            )));
        }
        let source = |y: usize, x: usize| match self {
            Stir::Vflip => (h - 1 - y) * w + x,
            Stir::Hflip => y * w + (w - 1 - x),
            Stir::Rot180 => (h - 1 - y) * w + (w - 1 - x),
            Stir::Transpose => x * w + y,
        };
        let mut out = set.clone();
        out.dynamic_seed = None;
        let pixels = set.epoch_pixels(0);
        for (plane_out, plane_in) in out
            .pixels
            .chunks_exact_mut(h * w)
            .zip(pixels.chunks_exact(h * w))
        {
            for y in 0..h {
                for x in 0..w {
                    plane_out[y * w + x] = plane_in[source(y, x)];
                }
            }
        }
        Ok(out)
    }
}

/// Each image's PNG size in bits (best compression, adaptive filters), its values scaled to
/// 0..=255 grey or RGB.
pub fn png_bits(set: &ImageSet) -> Result<Vec<f64>> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let (c, h, w) = (set.shape.channels, set.shape.height, set.shape.width);
    let top = (set.levels.count() - 1) as u32;
    let pixels = set.epoch_pixels(0);
    let color = match c {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        _ => {
            return Err(Error::Invalid(format!(
                "{c}-channel images have no PNG form"
            )));
        }
    };
    (pixels.chunks_exact(c * h * w))
        .map(|planes| {
            // Channel planes to interleaved pixels.
            let mut bytes = vec![0u8; c * h * w];
            for (i, b) in bytes.iter_mut().enumerate() {
                let (p, ch) = (i / c, i % c);
                *b = (planes[ch * h * w + p] as u32 * 255 / top) as u8;
            }
            let mut out = Vec::new();
            PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive)
                .write_image(&bytes, w as u32, h as u32, color)
                .map_err(|e| Error::Invalid(format!("PNG encoding failed: {e}")))?;
            Ok(out.len() as f64 * 8.0)
        })
        .collect()
}

/// One-sided empirical p-values of `scores` against `reference` (in-distribution images held
/// out from the ones being tested): `(1 + #{r >= s}) / (1 + n)` for each score `s`, the
/// probability that an in-distribution image scores at least as high. Never 0, so its log is
/// finite; `reference` must not be empty.
pub fn p_values(reference: &[f64], scores: &[f64]) -> Vec<f64> {
    let mut sorted = reference.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    scores
        .iter()
        .map(|&s| {
            let below = sorted.partition_point(|&r| r < s);
            (1.0 + (sorted.len() - below) as f64) / (1.0 + n)
        })
        .collect()
}

/// Fisher's combination of several scores of the same images: `-2 Σ_k ln p_k(x)`, where
/// `p_k` is score `k`'s empirical p-value against its own in-distribution `reference[k]`.
/// Higher is more out of distribution, like each score. Every score is put on the same scale
/// (a probability under in-distribution data) before they are added, so no score's units
/// dominate, and an image extreme on any one of them is extreme in the sum (Haroush et al.
/// 2022 combine OOD statistics this way).
pub fn fisher_combined(reference: &[Vec<f64>], scores: &[Vec<f64>]) -> Vec<f64> {
    let p: Vec<Vec<f64>> = (reference.iter().zip(scores))
        .map(|(r, s)| p_values(r, s))
        .collect();
    (0..scores.first().map_or(0, Vec::len))
        .map(|i| fisher(p.iter().map(|p_k| p_k[i])))
        .collect()
}

/// Fisher's statistic of one image's p-values: `-2 Σ_k ln p_k`.
pub fn fisher(p_values: impl IntoIterator<Item = f64>) -> f64 {
    -2.0 * p_values.into_iter().map(f64::ln).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Binarization, ImageShape, Levels, Split};
    use burn::tensor::{Device, Tensor, TensorData};

    #[test]
    fn identical_score_sets_are_at_chance() {
        let s: Vec<f64> = (0..100).map(|i| (i % 17) as f64).collect();
        assert!((auroc(&s, &s) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn separated_and_reversed_scores() {
        let low: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let high: Vec<f64> = (100..150).map(|i| i as f64).collect();
        let m = metrics(&low, &high);
        assert_eq!((m.auroc, m.aupr, m.fpr_at_95_tpr), (1.0, 1.0, 0.0));
        let r = metrics(&high, &low);
        assert_eq!((r.auroc, r.fpr_at_95_tpr), (0.0, 1.0));
    }

    /// A density fitted on one Gaussian blob (maximum likelihood, diagonal) scores points of a
    /// far blob as out of distribution: AUROC of -log p near 1; of a second sample of the same
    /// blob, near 0.5.
    #[test]
    fn gaussian_density_flags_a_far_blob() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut normal = || {
            // Box-Muller
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        let mut blob = |cx: f64, cy: f64, n: usize| -> Vec<(f64, f64)> {
            (0..n)
                .map(|_| (cx + normal(), cy + 0.5 * normal()))
                .collect()
        };
        let (train, same, far) = (
            blob(0.0, 0.0, 500),
            blob(0.0, 0.0, 300),
            blob(6.0, 3.0, 300),
        );
        let mean =
            |f: &dyn Fn(&(f64, f64)) -> f64| train.iter().map(f).sum::<f64>() / train.len() as f64;
        let (mx, my) = (mean(&|p| p.0), mean(&|p| p.1));
        let (vx, vy) = (mean(&|p| (p.0 - mx).powi(2)), mean(&|p| (p.1 - my).powi(2)));
        let nll = |p: &(f64, f64)| {
            0.5 * ((p.0 - mx).powi(2) / vx + (p.1 - my).powi(2) / vy + (vx * vy).ln())
                + (2.0 * std::f64::consts::PI).ln()
        };
        let score = |s: &[(f64, f64)]| s.iter().map(nll).collect::<Vec<_>>();
        let far_metrics = metrics(&score(&same), &score(&far));
        assert!(
            far_metrics.auroc > 0.99 && far_metrics.fpr_at_95_tpr < 0.05,
            "{far_metrics:?}"
        );
        let same_auroc = auroc(&score(&same), &score(&blob(0.0, 0.0, 300)));
        assert!((same_auroc - 0.5).abs() < 0.1, "{same_auroc}");
    }

    #[test]
    fn auroc_matches_the_pairwise_definition() {
        let a = [0.1, 0.4, 0.4, 0.9, 0.3];
        let b = [0.4, 0.8, 0.2, 1.0];
        let mut wins = 0.0;
        for &x in &a {
            for &y in &b {
                wins += if y > x {
                    1.0
                } else if y == x {
                    0.5
                } else {
                    0.0
                };
            }
        }
        assert!((auroc(&a, &b) - wins / 20.0).abs() < 1e-12);
    }

    #[test]
    fn p_values_count_the_reference_at_or_above() {
        let reference = [1.0, 2.0, 2.0, 3.0];
        let p = p_values(&reference, &[0.0, 2.0, 2.5, 9.0]);
        // (1 + #{r >= s}) / 5: all four, three, one, none.
        assert_eq!(p, vec![1.0, 4.0 / 5.0, 2.0 / 5.0, 1.0 / 5.0]);
    }

    #[test]
    fn fisher_flags_an_image_extreme_on_either_score() {
        // Reference: 0..100 on both scores. Image a is typical on both; b is extreme on the
        // first only, c on the second only: both rank above a, and d (extreme on both) first.
        let reference = vec![(0..100).map(f64::from).collect::<Vec<_>>(); 2];
        let first = vec![50.0, 1000.0, 50.0, 1000.0];
        let second = vec![50.0, 50.0, 1000.0, 1000.0];
        let fisher = fisher_combined(&reference, &[first, second]);
        let expect = |p1: f64, p2: f64| -2.0 * (p1.ln() + p2.ln());
        let (typical, extreme) = (51.0 / 101.0, 1.0 / 101.0);
        let want = [
            expect(typical, typical),
            expect(extreme, typical),
            expect(typical, extreme),
            expect(extreme, extreme),
        ];
        for (got, want) in fisher.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert!(fisher[1] > fisher[0] && fisher[2] > fisher[0] && fisher[3] > fisher[1]);
    }

    /// Two 2-channel 3x3 images with distinct values everywhere.
    fn set(height: usize, width: usize) -> ImageSet {
        let shape = ImageShape {
            channels: 2,
            height,
            width,
        };
        ImageSet {
            dataset: "test".into(),
            split: Split::Test,
            shape,
            levels: Levels::Bits8,
            binarization: Binarization::None,
            pixels: (0..2 * shape.dims()).map(|v| v as u8).collect(),
            labels: None,
            dynamic_seed: None,
        }
    }

    /// Each transformation against burn's own flip and transpose of the `[n, c, h, w]` tensor.
    #[test]
    fn stirring_moves_pixels_as_burn_flips_and_transposes() {
        let device = Device::default();
        let images = set(3, 3);
        let tensor = Tensor::<4>::from_data(
            TensorData::new(
                images.pixels.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                [2, 2, 3, 3],
            ),
            &device,
        );
        let cases = [
            (Stir::Vflip, tensor.clone().flip([2])),
            (Stir::Hflip, tensor.clone().flip([3])),
            (Stir::Rot180, tensor.clone().flip([2, 3])),
            (Stir::Transpose, tensor.clone().swap_dims(2, 3)),
        ];
        for (stir, expected) in cases {
            let turned = stir.apply(&images).unwrap();
            let expected: Vec<u8> = expected
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|&v| v as u8)
                .collect();
            assert_eq!(turned.pixels, expected, "{stir:?}");
            assert_eq!(turned.shape, images.shape);
        }
        // Transposing a non-square image is refused, not garbled.
        let error = Stir::Transpose.apply(&set(2, 3)).unwrap_err().to_string();
        assert!(error.contains("square") && error.contains("2x3"), "{error}");
        assert!(Stir::Vflip.apply(&set(2, 3)).is_ok());
    }
}
