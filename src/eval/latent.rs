//! Bounds on log p(x) for latent-variable models: the ELBO and the IWAE-k bound
//! (Burda et al. 2016, Eq. 8), `log p(x) >= log (1/k) Σ_i p(x, z_i) / q(z_i|x)`, z_i ~ q(z|x),
//! computed with a streaming log-sum-exp in f64 over chunks of samples so that memory stays
//! bounded for k up to thousands.

use super::EvalReport;
use crate::data::{ImageSet, batch};
use crate::error::{Error, Result};
use crate::models::{LatentModel, log_importance_weights};
use crate::progress::Progress;
use crate::units::bits_per_dim;
use burn::tensor::Device;

/// Rows (image x sample pairs) decoded at once.
const ROWS_PER_PASS: usize = 4096;

/// The ELBO and the IWAE-k estimate of the NLL, each an [`EvalReport`] (nats per image, as NLL
/// upper bounds: `-ELBO` and `-IWAE_k`).
pub fn elbo_and_iwae(
    model: &(impl LatentModel + ?Sized),
    set: &ImageSet,
    k: usize,
    seed: u64,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<(EvalReport, EvalReport)> {
    let (elbo, iwae) = per_image_bounds(model, set, k, seed, device, progress)?;
    let (n, dims) = (set.len(), set.shape.dims());
    let (elbo_sum, iwae_sum): (f64, f64) = (elbo.iter().sum(), iwae.iter().sum());
    let report = |nll: f64, estimator: String| EvalReport {
        benchmark: set.benchmark(),
        dataset: set.dataset.clone(),
        split: set.split.to_string(),
        estimator,
        images: n,
        nll_nats_per_image: nll,
        bits_per_dim: bits_per_dim(nll, dims),
        accuracy: None,
    };
    let elbo = report(
        -elbo_sum / n as f64,
        "ELBO (negative, one-sample reconstruction term + closed-form KL)".into(),
    );
    let iwae = report(-iwae_sum / n as f64, format!("IWAE-{k} bound (negative)"));
    progress.finish(&format!(
        "ELBO {:.2} nats, IWAE-{k} {:.2} nats",
        elbo.nll_nats_per_image, iwae.nll_nats_per_image
    ));
    Ok((elbo, iwae))
}

/// Per-image ELBO and IWAE-k bound on log p(x) (nats, `[n]` each), in `set` order: the scores
/// that out-of-distribution detection ranks.
pub fn per_image_bounds(
    model: &(impl LatentModel + ?Sized),
    set: &ImageSet,
    k: usize,
    seed: u64,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<(Vec<f64>, Vec<f64>)> {
    if k == 0 {
        return Err(Error::Invalid(
            "--iwae-k must be at least 1 (k = 1 is the ELBO)".into(),
        ));
    }
    crate::seeded::with_seed(device, seed, || per_image(model, set, k, device, progress))
}

fn per_image(
    model: &(impl LatentModel + ?Sized),
    set: &ImageSet,
    k: usize,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = set.len();
    let pixels = set.epoch_pixels(0);
    let shape = [set.shape.channels, set.shape.height, set.shape.width];
    let images_per_pass = (ROWS_PER_PASS / k).clamp(1, 256);
    let samples_per_pass = (ROWS_PER_PASS / images_per_pass).clamp(1, k);
    let (mut elbo_all, mut iwae_all) = (Vec::with_capacity(n), Vec::with_capacity(n));
    progress.start(&format!("IWAE-{k} {}", set.split), n as u64);
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(images_per_pass) {
        let b = chunk.len();
        let images = batch::to_tensor(&pixels, chunk, shape, set.levels, device);
        let q = model.encode(images.clone());
        // ELBO: one-sample reconstruction term plus the closed-form KL.
        let recon = model.decode(q.rsample()).log_prob(images.clone());
        let elbo = super::read_back(recon - q.kl_to_standard_normal())?;
        elbo_all.extend(elbo.iter().map(|&v| v as f64));
        // IWAE: per image, running max and sum of exp(log w - max).
        let mut max = vec![f64::NEG_INFINITY; b];
        let mut sum = vec![0.0f64; b];
        let mut drawn = 0;
        while drawn < k {
            let s = samples_per_pass.min(k - drawn);
            let log_w = super::read_back(log_importance_weights(model, images.clone(), &q, s))?;
            for (i, ws) in log_w.chunks(s).enumerate() {
                for &w in ws {
                    let w = w as f64;
                    if w > max[i] {
                        sum[i] = sum[i] * (max[i] - w).exp() + 1.0;
                        max[i] = w;
                    } else {
                        sum[i] += (w - max[i]).exp();
                    }
                }
            }
            drawn += s;
        }
        iwae_all.extend((0..b).map(|i| max[i] + sum[i].ln() - (k as f64).ln()));
        let seen = iwae_all.len() as f64;
        progress.update(
            seen as u64,
            &format!(
                "ELBO {:.2} | IWAE-{k} {:.2} nats",
                -elbo_all.iter().sum::<f64>() / seen,
                -iwae_all.iter().sum::<f64>() / seen
            ),
        );
    }
    Ok((elbo_all, iwae_all))
}
