//! `synth-digits`: an embedded data set our own code draws, so that `demo` and the tests need
//! no files. Each digit 0-9 is a few strokes (polylines in a unit box); an image is one
//! template under a random affine map (rotation, scale, shear, shift), drawn with a random pen
//! thickness, plus a little noise, then thresholded to binary. Deterministic under a seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Stroke = Vec<(f32, f32)>;

/// Side of a synthetic image, in pixels (the MNIST size).
pub const SIDE: usize = 28;

fn ellipse(cx: f32, cy: f32, rx: f32, ry: f32, from: f32, to: f32) -> Stroke {
    let steps = 16;
    (0..=steps)
        .map(|i| {
            let t = (from + (to - from) * i as f32 / steps as f32).to_radians();
            (cx + rx * t.cos(), cy + ry * t.sin())
        })
        .collect()
}

/// The strokes of digit `d` in a unit box (x right, y down).
fn template(d: u8) -> Vec<Stroke> {
    match d {
        0 => vec![ellipse(0.5, 0.5, 0.2, 0.32, 0.0, 360.0)],
        1 => vec![vec![(0.38, 0.28), (0.52, 0.16), (0.52, 0.84)]],
        2 => vec![vec![
            (0.3, 0.3),
            (0.4, 0.18),
            (0.6, 0.18),
            (0.7, 0.3),
            (0.66, 0.45),
            (0.3, 0.84),
            (0.74, 0.84),
        ]],
        3 => vec![
            vec![(0.3, 0.2), (0.6, 0.17), (0.7, 0.32), (0.48, 0.48)],
            vec![(0.48, 0.48), (0.7, 0.62), (0.64, 0.82), (0.3, 0.82)],
        ],
        4 => vec![vec![(0.62, 0.86), (0.62, 0.15), (0.27, 0.62), (0.76, 0.62)]],
        5 => vec![vec![
            (0.7, 0.18),
            (0.36, 0.18),
            (0.33, 0.47),
            (0.58, 0.44),
            (0.7, 0.6),
            (0.63, 0.8),
            (0.3, 0.82),
        ]],
        6 => vec![
            vec![(0.66, 0.17), (0.42, 0.35), (0.32, 0.62)],
            ellipse(0.5, 0.66, 0.18, 0.17, 180.0, 540.0),
        ],
        7 => vec![vec![(0.28, 0.18), (0.74, 0.18), (0.46, 0.86)]],
        8 => vec![
            ellipse(0.5, 0.31, 0.15, 0.14, 0.0, 360.0),
            ellipse(0.5, 0.66, 0.19, 0.18, 0.0, 360.0),
        ],
        _ => vec![
            ellipse(0.5, 0.34, 0.17, 0.16, 0.0, 360.0),
            vec![(0.67, 0.34), (0.6, 0.86)],
        ],
    }
}

fn distance_to_segment(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (qx * qx + qy * qy).sqrt()
}

/// Draws one binary image (row-major, `SIDE*SIDE` values in {0,1}) of digit `d`.
fn draw(d: u8, rng: &mut ChaCha8Rng) -> Vec<u8> {
    // Ranges are moderate on purpose: the data set must be learnable in the few minutes of
    // `demo` on a 2-core CPU, while still varied enough that a model has to learn shapes.
    let angle: f32 = rng.random_range(-0.15..0.15);
    let scale: f32 = rng.random_range(0.85..1.0);
    let shear: f32 = rng.random_range(-0.15..0.15);
    let shift = (rng.random_range(-0.05..0.05), rng.random_range(-0.04..0.04));
    let thickness: f32 = rng.random_range(0.05..0.08);
    let (sin, cos) = angle.sin_cos();
    // Map template points about the centre: shear, rotate, scale, shift.
    let map = |(x, y): (f32, f32)| {
        let (x, y) = (x - 0.5 + shear * (y - 0.5), y - 0.5);
        let (x, y) = (cos * x - sin * y, sin * x + cos * y);
        (0.5 + scale * x + shift.0, 0.5 + scale * y + shift.1)
    };
    let segments: Vec<((f32, f32), (f32, f32))> = template(d)
        .into_iter()
        .flat_map(|stroke| {
            let pts: Vec<_> = stroke.into_iter().map(map).collect();
            pts.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>()
        })
        .collect();
    let mut image = vec![0u8; SIDE * SIDE];
    for (i, px) in image.iter_mut().enumerate() {
        let p = (
            ((i % SIDE) as f32 + 0.5) / SIDE as f32,
            ((i / SIDE) as f32 + 0.5) / SIDE as f32,
        );
        let d = segments
            .iter()
            .map(|&(a, b)| distance_to_segment(p, a, b))
            .fold(f32::INFINITY, f32::min);
        let ink = (thickness - d) / 0.03 + 0.5 + rng.random_range(-0.1..0.1);
        *px = (ink > 0.5) as u8;
    }
    image
}

/// Generates `n` labelled binary digits, cycling through the labels 0..=9 with random order
/// inside each cycle. Same `seed`, same images.
pub fn generate(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * SIDE * SIDE);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let label = rng.random_range(0..10u8);
        pixels.extend(draw(label, &mut rng));
        labels.push(label);
    }
    (pixels, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_under_seed_and_seed_sensitive() {
        assert_eq!(generate(20, 7), generate(20, 7));
        assert_ne!(generate(20, 7).0, generate(20, 8).0);
    }

    #[test]
    fn digits_have_plausible_ink_and_classes_differ() {
        let (px, labels) = generate(500, 1);
        let mut mean = vec![vec![0f64; SIDE * SIDE]; 10];
        let mut count = [0usize; 10];
        for (img, &l) in px.chunks(SIDE * SIDE).zip(&labels) {
            let ink = img.iter().filter(|&&v| v == 1).count();
            assert!((40..400).contains(&ink), "ink {ink} for label {l}");
            count[l as usize] += 1;
            for (m, &v) in mean[l as usize].iter_mut().zip(img) {
                *m += v as f64;
            }
        }
        assert!(count.iter().all(|&c| c > 20), "{count:?}");
        // Class means must be far apart (a 1 does not look like an 8).
        let dist = |a: &[f64], b: &[f64], na: f64, nb: f64| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x / na - y / nb).abs())
                .sum::<f64>()
        };
        let d18 = dist(&mean[1], &mean[8], count[1] as f64, count[8] as f64);
        assert!(d18 > 60.0, "mean images of 1 and 8 differ by only {d18}");
    }
}
