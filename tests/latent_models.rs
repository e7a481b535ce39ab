//! VAE and IWAE maths: the Gaussian formulas against an independent computation, the IWAE
//! evaluator on a model whose posterior is exact, the bound rising with k on a trained model,
//! and clear errors for bad requests.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use genmodels::data::{self, Levels, Split};
use genmodels::eval::latent::{elbo_and_iwae, per_image_bounds};
use genmodels::models::{LatentModel, ModelConfig, VaeConfig};
use genmodels::nn::{DiagGaussian, PixelHead};
use genmodels::progress::Silent;
use genmodels::train::{self, checkpoint::Which};
use std::path::Path;

#[test]
fn gaussian_log_prob_and_kl_match_the_formulas() {
    let device = Device::flex();
    let mean = vec![0.3f32, -1.2, 0.0, 2.0];
    let log_var = vec![-0.5f32, 0.7, 0.0, -2.0];
    let z = vec![0.1f32, 0.4, -0.3, 1.5];
    let t = |v: &Vec<f32>| Tensor::<2>::from_data(TensorData::new(v.clone(), [2, 2]), &device);
    let q = DiagGaussian {
        mean: t(&mean),
        log_var: t(&log_var),
    };
    let log_q: Vec<f32> = q.log_prob(t(&z)).try_into_vec_as::<f32>().unwrap();
    let kl: Vec<f32> = q.kl_to_standard_normal().try_into_vec_as::<f32>().unwrap();
    for row in 0..2 {
        let (mut lp, mut k) = (0.0f64, 0.0f64);
        for d in 0..2 {
            let i = row * 2 + d;
            let (m, lv, x) = (mean[i] as f64, log_var[i] as f64, z[i] as f64);
            lp += -0.5 * ((x - m).powi(2) / lv.exp() + lv + (2.0 * std::f64::consts::PI).ln());
            k += 0.5 * (m * m + lv.exp() - 1.0 - lv);
        }
        assert!(
            (log_q[row] as f64 - lp).abs() < 1e-5,
            "{} vs {lp}",
            log_q[row]
        );
        assert!((kl[row] as f64 - k).abs() < 1e-5, "{} vs {k}", kl[row]);
    }
}

/// q(z|x) = p(z) = N(0, I) and p(x|z) = p(x) ignores z: the posterior is exact, so every
/// importance weight equals p(x) and ELBO = IWAE_k = log p(x) for every k.
struct ExactPosterior {
    logits: Tensor<4>,
}

impl LatentModel for ExactPosterior {
    fn encode(&self, images: Tensor<4>) -> DiagGaussian {
        DiagGaussian::standard(images.dims()[0], 3, &images.device())
    }
    fn decode(&self, z: Tensor<2>) -> PixelHead {
        let [b, _] = z.dims();
        PixelHead::bernoulli(self.logits.clone().repeat_dim(0, b))
    }
    fn latent_dim(&self) -> usize {
        3
    }
}

#[test]
fn bounds_equal_the_log_likelihood_when_the_posterior_is_exact() {
    let device = Device::flex();
    let spec = common::spec(1, 5, Levels::Binary);
    let logit_values: Vec<f32> = (0..25).map(|i| (i as f32 - 12.0) / 5.0).collect();
    let logits =
        Tensor::<4>::from_data(TensorData::new(logit_values.clone(), [1, 1, 5, 5]), &device);
    let model = ExactPosterior { logits };
    let pixels = common::random_images(&spec, 7, 3);
    let set = common::image_set(&spec, pixels.clone(), Split::Test);
    let per_image_nll: Vec<f64> = pixels
        .chunks(25)
        .map(|img| {
            img.iter()
                .zip(&logit_values)
                .map(|(&x, &l)| {
                    let p1 = 1.0 / (1.0 + (-(l as f64)).exp());
                    -(if x == 1 { p1 } else { 1.0 - p1 }).ln()
                })
                .sum::<f64>()
        })
        .collect();
    let expected_nll = per_image_nll.iter().sum::<f64>() / 7.0;
    // Image by image too (the scores that out-of-distribution detection ranks).
    let (elbo, iwae) = per_image_bounds(&model, &set, 50, 1, &device, &mut Silent).unwrap();
    for (i, want) in per_image_nll.iter().enumerate() {
        assert!(
            (elbo[i] + want).abs() < 1e-4 && (iwae[i] + want).abs() < 1e-4,
            "image {i}"
        );
    }
    for k in [1, 7, 5000] {
        let (elbo, iwae) = elbo_and_iwae(&model, &set, k, 1, &device, &mut Silent).unwrap();
        assert!(
            (elbo.nll_nats_per_image - expected_nll).abs() < 1e-4,
            "k={k}: ELBO {} vs {expected_nll}",
            elbo.nll_nats_per_image
        );
        assert!(
            (iwae.nll_nats_per_image - expected_nll).abs() < 1e-4,
            "k={k}: IWAE {} vs {expected_nll}",
            iwae.nll_nats_per_image
        );
    }
    assert!(
        elbo_and_iwae(&model, &set, 0, 1, &device, &mut Silent).is_err(),
        "k = 0 must be refused"
    );
}

fn trained_vae(latent_dim: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("vae");
    let mut config = common::tiny_run(2);
    config.model = ModelConfig::Vae(VaeConfig {
        hidden: vec![32],
        latent_dim,
        ..VaeConfig::default()
    });
    config.train.train_limit = Some(256);
    genmodels::run::Run::create(config, &run, Path::new("."))
        .unwrap()
        .train(&mut Silent)
        .unwrap();
    let metrics = train::read_metrics(&run).unwrap();
    assert!(
        metrics[1].valid_nll < metrics[0].valid_nll,
        "the VAE did not learn: {:?}",
        metrics.iter().map(|m| m.valid_nll).collect::<Vec<_>>()
    );
    // The negative ELBO's parts are logged, and add up to it (batch means of a sum).
    for m in &metrics {
        let (recon, kl) = (m.terms["recon"], m.terms["kl"]);
        assert!(kl > 0.0 && recon > 0.0, "{:?}", m.terms);
        assert!(
            (recon + kl - m.train_nll).abs() < 1e-3 * m.train_nll,
            "recon {recon} + kl {kl} != {}",
            m.train_nll
        );
    }
    (dir, run)
}

#[test]
fn iwae_bound_tightens_as_k_grows_on_a_trained_vae() {
    let (_keep, run) = trained_vae(8);
    let device = Device::flex();
    let trained = genmodels::run::load_trained(&run, Which::Best, &device).unwrap();
    let model = trained.model.as_latent().expect("a VAE is a latent model");
    let test = data::load("synth-digits", Split::Test, Path::new("."))
        .unwrap()
        .truncate(50);
    let nll = |k| {
        elbo_and_iwae(model, &test, k, 2, &device, &mut Silent)
            .unwrap()
            .1
            .nll_nats_per_image
    };
    let (k1, k10, k100) = (nll(1), nll(10), nll(100));
    println!("IWAE NLL estimates: k=1 {k1:.3}, k=10 {k10:.3}, k=100 {k100:.3}");
    assert!(
        k10 < k1 && k100 < k10,
        "bound must tighten: {k1} {k10} {k100}"
    );
}

#[test]
fn latent_errors_are_clear() {
    let (_keep, run) = trained_vae(3);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_genmodels"))
        .args(["pictures", run.to_str().unwrap(), "--manifold"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("2-D latent") && text.contains("3 dimensions"),
        "{text}"
    );
    // A checkpoint of one family given to another, and a latent size that does not match.
    let mut config = genmodels::config::load_run_config(&run).unwrap();
    if let ModelConfig::Vae(v) = &mut config.model {
        v.latent_dim = 5;
    }
    genmodels::config::save_config(&run, &config).unwrap();
    let msg = genmodels::run::load_trained(&run, Which::Best, &Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("do not fit"),
        "{msg}"
    );
    config.model = ModelConfig::from_name("pixelcnn").unwrap();
    genmodels::config::save_config(&run, &config).unwrap();
    let msg = genmodels::run::load_trained(&run, Which::Best, &Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("do not fit"),
        "{msg}"
    );
}
