//! Out-of-distribution detection metrics. Convention: a detector gives each image a score that
//! is **higher for images it believes out of distribution**; out-of-distribution images are the
//! positive class.
//!
//! - AUROC: P(score_out > score_in) + ½ P(equal), by ranks (0.5 = chance, 1 = perfect).
//! - AUPR: area under the precision-recall curve, OOD positive (average precision).
//! - FPR at 95% TPR: the fraction of in-distribution images flagged at the threshold that
//!   catches 95% of the out-of-distribution ones.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
