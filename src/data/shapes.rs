//! `synth-shapes`: an embedded colour data set our own code draws, so that colour models can be
//! trained, tested and demonstrated with no files. 32x32 RGB, 8-bit, 10 classes: five shapes
//! (disc, square, triangle, ring, cross) in two colour families (warm: red-yellow hues; cool:
//! green-blue-violet hues), class = 2 * shape + family. Each image is one shape at a random
//! position, size and rotation, in a random colour of its family, on a dark vertical gradient,
//! with a soft (anti-aliased) edge and a little noise. Deterministic under a seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Side of an image, in pixels (the CIFAR-10 size).
pub const SIDE: usize = 32;
/// Classes: 5 shapes x 2 colour families.
pub const CLASSES: usize = 10;

/// HSV (h in turns, s and v in [0, 1]) to RGB in [0, 1].
fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = h.rem_euclid(1.0) * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as u32 % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Signed distance (in units of the shape's radius, negative inside) of point `(x, y)`, already
/// moved into the shape's frame (centred, rotated, divided by its radius), to shape `kind`.
fn distance(kind: usize, x: f32, y: f32) -> f32 {
    match kind {
        0 => (x * x + y * y).sqrt() - 1.0,
        1 => x.abs().max(y.abs()) - 0.8,
        2 => {
            // An equilateral triangle, apex up: the largest of the three edge distances.
            let k = 3f32.sqrt();
            let edges = [y - 0.5, (-k * x - y) / 2.0 - 0.5, (k * x - y) / 2.0 - 0.5];
            edges.into_iter().fold(f32::NEG_INFINITY, f32::max)
        }
        3 => ((x * x + y * y).sqrt() - 0.75).abs() - 0.25,
        _ => {
            let (ax, ay) = (x.abs(), y.abs());
            (ax.min(ay) - 0.3).max(ax.max(ay) - 1.0)
        }
    }
}

/// One image `[3, 32, 32]` of class `label`.
fn draw(label: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (kind, family) = (label / 2, label % 2);
    let hue = if family == 0 {
        rng.random_range(-0.03..0.16) // red, orange, yellow
    } else {
        rng.random_range(0.30..0.78) // green, cyan, blue, violet
    };
    let colour = hsv(hue, rng.random_range(0.6..1.0), rng.random_range(0.75..1.0));
    let top = hsv(
        rng.random::<f32>(),
        rng.random_range(0.2..0.6),
        rng.random_range(0.05..0.3),
    );
    let bottom = hsv(
        rng.random::<f32>(),
        rng.random_range(0.2..0.6),
        rng.random_range(0.05..0.3),
    );
    let radius: f32 = rng.random_range(6.0..12.0);
    let margin = radius * 0.8;
    let (cx, cy) = (
        rng.random_range(margin..SIDE as f32 - margin),
        rng.random_range(margin..SIDE as f32 - margin),
    );
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (sin, cos) = angle.sin_cos();
    let plane = SIDE * SIDE;
    let mut image = vec![0u8; 3 * plane];
    for py in 0..SIDE {
        let t = py as f32 / (SIDE - 1) as f32;
        for px in 0..SIDE {
            let (dx, dy) = (px as f32 + 0.5 - cx, py as f32 + 0.5 - cy);
            let (x, y) = (
                (cos * dx + sin * dy) / radius,
                (-sin * dx + cos * dy) / radius,
            );
            // Coverage ramps over one pixel across the edge.
            let coverage = (0.5 - distance(kind, x, y) * radius).clamp(0.0, 1.0);
            for c in 0..3 {
                let background = top[c] * (1.0 - t) + bottom[c] * t;
                let value = background * (1.0 - coverage) + colour[c] * coverage;
                let noise = rng.random_range(-4.0..4.0);
                image[c * plane + py * SIDE + px] =
                    (value * 255.0 + noise).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    image
}

/// `n` images (row-major `[n, 3, 32, 32]`) and their labels, balanced over the classes in a
/// shuffled order, deterministic under `seed`.
pub fn generate(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * 3 * SIDE * SIDE);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        // A random class per image, but every block of CLASSES images holds each class once.
        let offset = (i / CLASSES * 7 + seed as usize) % CLASSES;
        let label = (i % CLASSES + offset) % CLASSES;
        pixels.extend(draw(label, &mut rng));
        labels.push(label as u8);
    }
    (pixels, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_deterministic_balanced_and_coloured_by_family() {
        let (a, labels) = generate(40, 5);
        let (b, _) = generate(40, 5);
        assert_eq!(a, b, "same seed, same images");
        assert_ne!(a, generate(40, 6).0, "another seed, other images");
        assert_eq!(a.len(), 40 * 3 * SIDE * SIDE);
        for class in 0..CLASSES as u8 {
            assert_eq!(labels.iter().filter(|&&l| l == class).count(), 4);
        }
        // The brightest pixel of a warm image is red-dominated, of a cool one not.
        let plane = SIDE * SIDE;
        for (image, &label) in a.chunks_exact(3 * plane).zip(&labels) {
            let brightest = (0..plane)
                .max_by_key(|&p| (0..3).map(|c| image[c * plane + p] as u32).sum::<u32>())
                .unwrap();
            let [r, g, b] = [0, 1, 2].map(|c| image[c * plane + brightest] as i32);
            if label % 2 == 0 {
                assert!(r >= b, "warm class {label}: r {r} < b {b}");
            } else {
                assert!(
                    b.max(g) >= r,
                    "cool class {label}: r {r} above g {g} and b {b}"
                );
            }
        }
    }

    #[test]
    fn each_shape_covers_a_plausible_share_of_its_image() {
        // A disc of radius r covers about π r² pixels; the shape pixels differ from the
        // background by much more than the noise.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for label in 0..CLASSES {
            let image = draw(label, &mut rng);
            let plane = SIDE * SIDE;
            let bright = (0..plane)
                .filter(|&p| (0..3).map(|c| image[c * plane + p] as u32).max().unwrap() > 140)
                .count();
            assert!(
                (20..700).contains(&bright),
                "class {label}: {bright} bright pixels"
            );
        }
    }
}
