//! t-SNE (van der Maaten & Hinton 2008, "Visualizing Data using t-SNE"): a 2-D map of
//! high-dimensional points that keeps each point's neighbours near it.
//!
//! ```text
//! p_{j|i} = exp(-β_i |x_i - x_j|²) / Σ_{k≠i} exp(-β_i |x_i - x_k|²),   β_i: 2^{H(P_i)} = perplexity
//! p_ij    = (p_{j|i} + p_{i|j}) / 2n
//! q_ij    = (1 + |y_i - y_j|²)⁻¹ / Σ_{k≠l} (1 + |y_k - y_l|²)⁻¹
//! KL(P‖Q) = Σ p_ij log(p_ij / q_ij),   ∂KL/∂y_i = 4 Σ_j (p_ij - q_ij)(1 + |y_i - y_j|²)⁻¹ (y_i - y_j)
//! ```
//!
//! As in van der Maaten 2014 (Barnes-Hut t-SNE), p_{j|i} is kept for the ⌊3·perplexity⌋ nearest
//! neighbours only (the rest are below e⁻⁹ of the largest); the repulsive sum over all pairs
//! is exact, O(n²) per iteration: about half a minute for 5,000 points on one core. The
//! optimiser is the paper's: early exaggeration (×12 for 250 iterations), momentum 0.5 then
//! 0.8, per-coordinate gains, and the learning rate max(n / 48, 50) (Belkina et al. 2019).

use crate::error::{Error, Result};
use crate::progress::Progress;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// Settings of a map.
#[derive(Debug, Clone)]
pub struct Tsne {
    /// The effective number of neighbours of each point (5-50 in the paper).
    pub perplexity: f64,
    pub iterations: usize,
    /// Seed of the initial map.
    pub seed: u64,
}

impl Default for Tsne {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            iterations: 1000,
            seed: 0,
        }
    }
}

const EXAGGERATION: f64 = 12.0;
const EXAGGERATION_ITERATIONS: usize = 250;

/// The symmetric affinities p_ij as rows of (j, p_ij); they sum to 1 over all pairs.
type Affinities = Vec<Vec<(usize, f64)>>;

impl Tsne {
    /// The 2-D map of `points` (all of one dimension), one `[y1, y2]` per point.
    pub fn map(&self, points: &[Vec<f32>], progress: &mut dyn Progress) -> Result<Vec<Vec<f32>>> {
        let n = points.len();
        let d = points.first().map_or(0, Vec::len);
        if let Some((i, p)) = (points.iter().enumerate()).find(|(_, p)| p.len() != d) {
            return Err(Error::Invalid(format!(
                "t-SNE: point {i} has {} coordinates, point 0 has {d}",
                p.len()
            )));
        }
        if let Some(i) = points.iter().position(|p| p.iter().any(|v| !v.is_finite())) {
            return Err(Error::Invalid(format!(
                "t-SNE: point {i} has a coordinate that is not a finite number"
            )));
        }
        if self.perplexity.is_nan() || self.perplexity < 1.0 {
            return Err(Error::Invalid(format!(
                "t-SNE: the perplexity must be at least 1, not {}",
                self.perplexity
            )));
        }
        if n < 2 {
            return Ok(vec![vec![0.0; 2]; n]);
        }
        let p = affinities(points, self.perplexity);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed);
        // N(0, 1e-4²) by Box-Muller: a map with no structure yet.
        let mut y: Vec<[f64; 2]> = (0..n)
            .map(|_| {
                let (u, v): (f64, f64) = (rng.random(), rng.random());
                let r = 1e-4 * (-2.0 * (1.0 - u).ln()).sqrt();
                let a = std::f64::consts::TAU * v;
                [r * a.cos(), r * a.sin()]
            })
            .collect();
        let rate = (n as f64 / EXAGGERATION / 4.0).max(50.0);
        let mut update = vec![[0.0f64; 2]; n];
        let mut gains = vec![[1.0f64; 2]; n];
        progress.start(&format!("t-SNE of {n} points"), self.iterations as u64);
        for t in 0..self.iterations {
            let early = t < EXAGGERATION_ITERATIONS;
            let (exaggeration, momentum) = if early {
                (EXAGGERATION, 0.5)
            } else {
                (1.0, 0.8)
            };
            let (grad, kl) = gradient(&p, &y, exaggeration);
            for i in 0..n {
                for k in 0..2 {
                    // Gains grow where the gradient keeps changing sign against the step.
                    gains[i][k] = if (grad[i][k] > 0.0) != (update[i][k] > 0.0) {
                        gains[i][k] + 0.2
                    } else {
                        (gains[i][k] * 0.8).max(0.01)
                    };
                    update[i][k] = momentum * update[i][k] - rate * gains[i][k] * grad[i][k];
                    y[i][k] += update[i][k];
                }
            }
            let mean = [0, 1].map(|k| y.iter().map(|p| p[k]).sum::<f64>() / n as f64);
            y.iter_mut().for_each(|p| {
                p[0] -= mean[0];
                p[1] -= mean[1];
            });
            if t % 10 == 0 || t + 1 == self.iterations {
                let phase = if early { " (early exaggeration)" } else { "" };
                progress.update(t as u64 + 1, &format!("KL(P||Q) {kl:.4}{phase}"));
            }
        }
        let (_, kl) = gradient(&p, &y, 1.0);
        progress.finish(&format!("t-SNE of {n} points: KL(P||Q) = {kl:.4} nats"));
        Ok(y.iter().map(|p| vec![p[0] as f32, p[1] as f32]).collect())
    }
}

/// p_ij from each point's ⌊3·perplexity⌋ nearest neighbours.
fn affinities(points: &[Vec<f32>], perplexity: f64) -> Affinities {
    let n = points.len();
    let k = ((3.0 * perplexity) as usize).clamp(1, n - 1);
    let conditional: Vec<Vec<(usize, f64)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut near: Vec<(usize, f64)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    let d2 = (points[i].iter().zip(&points[j]))
                        .map(|(a, b)| ((a - b) as f64).powi(2))
                        .sum::<f64>();
                    (j, d2)
                })
                .collect();
            if k < near.len() {
                near.select_nth_unstable_by(k - 1, |a, b| a.1.total_cmp(&b.1));
                near.truncate(k);
            }
            let distances: Vec<f64> = near.iter().map(|&(_, d2)| d2).collect();
            let row = conditional_row(&distances, perplexity);
            near.iter().zip(row).map(|(&(j, _), p)| (j, p)).collect()
        })
        .collect();
    let mut p: Affinities = vec![Vec::new(); n];
    for (i, row) in conditional.iter().enumerate() {
        for &(j, v) in row {
            let v = v / (2 * n) as f64;
            p[i].push((j, v));
            p[j].push((i, v));
        }
    }
    // Merge (i, j) found from both ends.
    for row in &mut p {
        row.sort_by_key(|&(j, _)| j);
        row.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += later.1;
            }
            same
        });
    }
    p
}

/// p_{j|i} over the squared distances `d2` to i's neighbours, with β found by bisection so
/// that the row's entropy is ln(perplexity) nats.
fn conditional_row(d2: &[f64], perplexity: f64) -> Vec<f64> {
    let target = perplexity.ln();
    let nearest = d2.iter().copied().fold(f64::INFINITY, f64::min);
    let row = |beta: f64| -> (Vec<f64>, f64) {
        // Shifted by the nearest distance: the same normalised row, no underflow.
        let w: Vec<f64> = d2.iter().map(|&d| (-(d - nearest) * beta).exp()).collect();
        let sum: f64 = w.iter().sum();
        let mean_d: f64 = (w.iter().zip(d2))
            .map(|(w, d)| w * (d - nearest))
            .sum::<f64>()
            / sum;
        (w, sum.ln() + beta * mean_d)
    };
    let (mut lo, mut hi, mut beta) = (0.0, f64::INFINITY, 1.0);
    let (mut w, mut entropy) = row(beta);
    for _ in 0..200 {
        if (entropy - target).abs() < 1e-10 {
            break;
        }
        if entropy > target {
            lo = beta;
            beta = if hi.is_finite() {
                (lo + hi) / 2.0
            } else {
                beta * 2.0
            };
        } else {
            hi = beta;
            beta = (lo + hi) / 2.0;
        }
        (w, entropy) = row(beta);
    }
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

/// ∂KL/∂y (with the attractive part scaled by `exaggeration`) and KL(P‖Q) itself.
fn gradient(p: &Affinities, y: &[[f64; 2]], exaggeration: f64) -> (Vec<[f64; 2]>, f64) {
    // Per point: Σ_j q̃_ij, Σ_j q̃_ij² (y_i - y_j), and the attractive Σ_j p_ij q̃_ij (y_i - y_j).
    let rows: Vec<(f64, [f64; 2], [f64; 2], f64)> = (0..y.len())
        .into_par_iter()
        .map(|i| {
            let [a, b] = y[i];
            let (mut z, mut rep) = (0.0, [0.0; 2]);
            for (j, q) in y.iter().enumerate() {
                if j == i {
                    continue;
                }
                let (dx, dy) = (a - q[0], b - q[1]);
                let w = 1.0 / (1.0 + dx * dx + dy * dy);
                z += w;
                rep[0] += w * w * dx;
                rep[1] += w * w * dy;
            }
            let (mut attr, mut p_log_w) = ([0.0; 2], 0.0);
            for &(j, pij) in &p[i] {
                let (dx, dy) = (a - y[j][0], b - y[j][1]);
                let w = 1.0 / (1.0 + dx * dx + dy * dy);
                attr[0] += pij * w * dx;
                attr[1] += pij * w * dy;
                p_log_w += pij * (pij.ln() - w.ln());
            }
            (z, rep, attr, p_log_w)
        })
        .collect();
    let z: f64 = rows.iter().map(|r| r.0).sum();
    // KL = Σ p ln p - Σ p ln q̃ + ln Z (Σ p = 1).
    let kl = rows.iter().map(|r| r.3).sum::<f64>() + z.ln();
    let grad = (rows.iter())
        .map(|&(_, rep, attr, _)| [0, 1].map(|k| 4.0 * (exaggeration * attr[k] - rep[k] / z)))
        .collect();
    (grad, kl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    fn uniform_points(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| (0..d).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect())
            .collect()
    }

    #[test]
    fn each_row_has_the_requested_perplexity_and_p_is_a_symmetric_distribution() {
        let points = uniform_points(120, 5, 1);
        let perplexity = 7.0;
        let k = 21;
        for i in [0, 17, 119] {
            let mut d2: Vec<f64> = (0..points.len())
                .filter(|&j| j != i)
                .map(|j| {
                    (points[i].iter().zip(&points[j]))
                        .map(|(a, b)| ((a - b) as f64).powi(2))
                        .sum()
                })
                .collect();
            d2.sort_by(f64::total_cmp);
            let row = conditional_row(&d2[..k], perplexity);
            let entropy: f64 = row.iter().map(|&p| -p * p.ln()).sum();
            assert!(
                (entropy.exp() - perplexity).abs() < 1e-6,
                "{}",
                entropy.exp()
            );
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let p = affinities(&points, perplexity);
        let total: f64 = p.iter().flatten().map(|&(_, v)| v).sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        for (i, row) in p.iter().enumerate() {
            for &(j, v) in row {
                let back = p[j].iter().find(|&&(k, _)| k == i).map(|&(_, w)| w);
                assert_eq!(back, Some(v), "p[{i}][{j}]");
            }
        }
    }

    #[test]
    fn the_gradient_is_the_derivative_of_the_kl_divergence() {
        let points = uniform_points(12, 4, 2);
        let p = affinities(&points, 3.0);
        let y: Vec<[f64; 2]> = uniform_points(12, 2, 3)
            .iter()
            .map(|v| [v[0] as f64, v[1] as f64])
            .collect();
        let (grad, _) = gradient(&p, &y, 1.0);
        let h = 1e-6;
        for i in 0..y.len() {
            for k in 0..2 {
                let moved = |delta: f64| {
                    let mut y2 = y.clone();
                    y2[i][k] += delta;
                    gradient(&p, &y2, 1.0).1
                };
                let numeric = (moved(h) - moved(-h)) / (2.0 * h);
                assert!(
                    (numeric - grad[i][k]).abs() < 1e-6 * (1.0 + numeric.abs()),
                    "dKL/dy[{i}][{k}]: {numeric} vs {}",
                    grad[i][k]
                );
            }
        }
    }

    #[test]
    fn separated_clusters_stay_separated_and_the_map_is_reproducible() {
        // Three clusters in 10-D, each in a cube of side 2, their centres 20 apart.
        let mut points = uniform_points(150, 10, 4);
        let label = |i: usize| i % 3;
        for (i, p) in points.iter_mut().enumerate() {
            p[label(i)] += 20.0;
        }
        let tsne = Tsne {
            perplexity: 10.0,
            iterations: 400,
            seed: 5,
        };
        let map = tsne.map(&points, &mut Silent).unwrap();
        let nearest_same = (0..map.len())
            .filter(|&i| {
                let d =
                    |j: usize| (map[i][0] - map[j][0]).powi(2) + (map[i][1] - map[j][1]).powi(2);
                let j = (0..map.len())
                    .filter(|&j| j != i)
                    .min_by(|&a, &b| d(a).total_cmp(&d(b)))
                    .unwrap();
                label(j) == label(i)
            })
            .count();
        assert_eq!(nearest_same, map.len());
        assert_eq!(map, tsne.map(&points, &mut Silent).unwrap());
    }

    #[test]
    fn bad_points_are_refused() {
        let tsne = Tsne::default();
        let ragged = vec![vec![0.0, 1.0], vec![0.0]];
        let err = tsne.map(&ragged, &mut Silent).unwrap_err().to_string();
        assert!(err.contains("point 1 has 1 coordinates"), "{err}");
        let nan = vec![vec![0.0], vec![f32::NAN]];
        assert!(tsne.map(&nan, &mut Silent).is_err());
        assert_eq!(
            tsne.map(&[vec![1.0]], &mut Silent).unwrap(),
            vec![vec![0.0; 2]]
        );
    }
}
