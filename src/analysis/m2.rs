//! M2, the semi-supervised generative model of Kingma et al. 2014 ("Semi-Supervised Learning
//! with Deep Generative Models", §3.2), stacked on M1's features as in their "M1+M2": the
//! data it models are `z1`, draws from a trained VAE's q(z1|x), and the label `y` is a latent
//! variable that is observed for the few labelled images only.
//!
//! Generative model:
//! ```text
//! p(y) = Cat(1/10),   p(z2) = N(0, I),   p(z1 | y, z2) = N(μ_θ(y, z2), diag σ²_θ(y, z2))
//! ```
//! Inference model:
//! ```text
//! q(y | z1) = Cat(π_φ(z1)),   q(z2 | z1, y) = N(μ_φ(z1, y), diag σ²_φ(z1, y))
//! ```
//! Bounds (eq. 6 and 7), with `L` a negative ELBO in nats:
//! ```text
//! L(z1, y) = -E_q(z2|z1,y)[log p(z1|y,z2)] + KL(q(z2|z1,y) || p(z2)) - log p(y)
//! U(z1)    = Σ_y q(y|z1) L(z1, y) - H(q(y|z1))
//! J^α      = w E_labelled[L] + E_unlabelled[U] + α E_labelled[-log q(y|z1)]   (eq. 9)
//! ```
//! The classifier q(y|z1) is trained by both the unlabelled bound (through q(y|z1) in U) and
//! the labelled cross-entropy; it is what is scored. Each term is a minibatch mean, the
//! labelled and the unlabelled minibatches of the same size, so α weighs the cross-entropy
//! against one image's bound (the paper's α = 0.1 N on sums over the data set), and w the
//! labelled images' bound (the paper's sums give it the labelled share of the images).
//!
//! Every network is one hidden layer of softplus units, as in the paper.

use crate::error::Result;
use crate::nn::dist::DiagGaussian;
use crate::train::adam::FusedAdam;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::activation::{log_softmax, softplus};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CLASSES: usize = 10;

/// The training recipe (chosen on the validation split, never on the test split).
#[derive(Debug, Clone, serde::Serialize)]
pub struct M2Recipe {
    /// Hidden units of each of the three networks (the paper: 500).
    pub hidden: usize,
    /// Dimension of z2 (the paper: 50).
    pub z2: usize,
    /// Weight α of the labelled cross-entropy against one image's bound.
    pub alpha: f32,
    /// Weight w of the labelled bound E_labelled[L]; `None`: the labelled share of the
    /// training images, as the paper's sums over the data set weigh it (1 would weigh the
    /// few labelled images as much as all the others, and their bound is then overfitted).
    pub labelled_weight: Option<f32>,
    pub steps: usize,
    /// Train on draws z1 ~ q(z1|x) (as the paper's M1+M2), or on the means only.
    pub sample_z1: bool,
    /// Images per minibatch, labelled and unlabelled each.
    pub batch: usize,
    pub lr: f64,
}

impl Default for M2Recipe {
    fn default() -> Self {
        Self {
            hidden: 500,
            z2: 50,
            alpha: 1.0,
            labelled_weight: None,
            // 80 passes over 50k unlabelled images: at 10,000 steps the validation accuracy
            // was still rising (89% -> 93% from 10,000 to 20,000 steps).
            steps: 40_000,
            sample_z1: true,
            batch: 100,
            lr: 1e-3,
        }
    }
}

/// One hidden layer of softplus units.
#[derive(Module, Debug)]
struct Net {
    hidden: Linear,
    out: Linear,
}

impl Net {
    fn new(inputs: usize, hidden: usize, outputs: usize, device: &Device) -> Self {
        Self {
            hidden: LinearConfig::new(inputs, hidden).init(device),
            out: LinearConfig::new(hidden, outputs).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.out.forward(softplus(self.hidden.forward(x), 1.0))
    }
}

/// `[b, 2n]` network outputs to a diagonal Gaussian over `[b, n]`; the log-variance is kept
/// in [-8, 8] so that an early step cannot make a density infinite.
fn gaussian(out: Tensor<2>) -> DiagGaussian {
    let [b, two_n] = out.dims();
    let n = two_n / 2;
    DiagGaussian {
        mean: out.clone().slice([0..b, 0..n]),
        log_var: out.slice([0..b, n..two_n]).clamp(-8.0, 8.0),
    }
}

/// The three networks of M2.
#[derive(Module, Debug)]
pub struct M2 {
    /// q(y | z1): `[b, d]` -> `[b, 10]` logits.
    classify: Net,
    /// q(z2 | z1, y): `[b, d + 10]` -> `[b, 2 z2]`.
    encode: Net,
    /// p(z1 | y, z2): `[b, z2 + 10]` -> `[b, 2 d]`.
    decode: Net,
}

impl M2 {
    pub fn new(d: usize, recipe: &M2Recipe, device: &Device) -> Self {
        Self {
            classify: Net::new(d, recipe.hidden, CLASSES, device),
            encode: Net::new(d + CLASSES, recipe.hidden, 2 * recipe.z2, device),
            decode: Net::new(recipe.z2 + CLASSES, recipe.hidden, 2 * d, device),
        }
    }

    /// log q(y | z1), `[b, 10]`.
    pub fn log_q_y(&self, z1: Tensor<2>) -> Tensor<2> {
        log_softmax(self.classify.forward(z1), 1)
    }

    /// `L(z1, y)`, `[b]` nats: `z1` `[b, d]`, `y` one-hot `[b, 10]`, `eps` `[b, z2]` the
    /// standard normal noise of z2's one reparameterised draw.
    pub fn neg_elbo(&self, z1: Tensor<2>, y: Tensor<2>, eps: Tensor<2>) -> Tensor<1> {
        let q = gaussian(
            self.encode
                .forward(Tensor::cat(vec![z1.clone(), y.clone()], 1)),
        );
        let z2 = q.mean.clone() + q.log_var.clone().mul_scalar(0.5).exp() * eps;
        let p = gaussian(self.decode.forward(Tensor::cat(vec![z2, y], 1)));
        let log_p_y = -(CLASSES as f64).ln();
        (q.kl_to_standard_normal() - p.log_prob(z1)).sub_scalar(log_p_y)
    }

    /// `U(z1)`, `[b]` nats, summing `L(z1, y)` over every class under q(y|z1); `eps`
    /// `[b * 10, z2]`, row `i * 10 + c` for image i under class c.
    pub fn neg_elbo_unlabelled(&self, z1: Tensor<2>, eps: Tensor<2>) -> Tensor<1> {
        let [b, d] = z1.dims();
        let device = z1.device();
        let z1_each = z1
            .clone()
            .unsqueeze_dim::<3>(1)
            .repeat_dim(1, CLASSES)
            .reshape([b * CLASSES, d]);
        let y_each = Tensor::<2>::eye(CLASSES, &device)
            .unsqueeze_dim::<3>(0)
            .repeat_dim(0, b)
            .reshape([b * CLASSES, CLASSES]);
        let bound = self.neg_elbo(z1_each, y_each, eps).reshape([b, CLASSES]);
        let log_q = self.log_q_y(z1);
        // Σ_y q (L + log q) = E_q[L] - H(q)
        (log_q.clone().exp() * (bound + log_q))
            .sum_dim(1)
            .reshape([b])
    }

    /// The logits of q(y | z1), `[b, 10]`.
    pub fn logits(&self, z1: Tensor<2>) -> Tensor<2> {
        self.classify.forward(z1)
    }
}

/// Standard normal draws (Box-Muller), reproducible under `rng`.
fn normals(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        out.push((r * t.cos()) as f32);
        out.push((r * t.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// Rows of features: a mean and a log-variance of q(z1|x) per image, `d` each.
pub struct Posteriors<'a> {
    pub mean: &'a [f32],
    pub log_var: &'a [f32],
    pub d: usize,
}

impl Posteriors<'_> {
    fn len(&self) -> usize {
        self.mean.len() / self.d
    }

    /// One draw z1 ~ q(z1|x) for each of the images `idx`, `[idx.len(), d]` (the means
    /// when not `sample`).
    fn draw(
        &self,
        idx: &[usize],
        sample: bool,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Tensor<2> {
        let noise = if sample {
            normals(rng, idx.len() * self.d)
        } else {
            vec![0.0; idx.len() * self.d]
        };
        let mut values = Vec::with_capacity(idx.len() * self.d);
        for (k, &i) in idx.iter().enumerate() {
            for j in 0..self.d {
                let at = i * self.d + j;
                let sd = (0.5 * self.log_var[at]).exp();
                values.push(self.mean[at] + sd * noise[k * self.d + j]);
            }
        }
        Tensor::from_data(TensorData::new(values, [idx.len(), self.d]), device)
    }
}

/// What one training of M2 reports every `every` steps: the step and the minibatch means of
/// the three terms of J^α.
pub struct M2Progress {
    pub step: usize,
    pub labelled: f64,
    pub unlabelled: f64,
    pub cross_entropy: f64,
    /// Accuracy of q(y|z1) on the held-out images, when given.
    pub valid_accuracy: Option<f64>,
}

/// Held-out images to monitor training with: their q(z1|x) means and labels.
pub struct Held<'a> {
    pub mean: &'a [f32],
    pub labels: &'a [u8],
}

/// Trains M2 on `train` (every training image, labelled or not: z1 drawn afresh from q(z1|x)
/// at every step, as M1+M2 does) with the labels `y` of the images `labelled`, and returns
/// the trained model (on the plain device).
pub fn train(
    train: &Posteriors,
    labelled: &[usize],
    y: &[u8],
    recipe: &M2Recipe,
    seed: u64,
    held: Option<&Held>,
    report: &mut dyn FnMut(&M2Progress),
) -> Result<M2> {
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let mut model = crate::seeded::build(&ad, seed, || M2::new(train.d, recipe, &ad));
    let mut optim = FusedAdam::new(1e-8).init(None);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3232);
    let n = train.len();
    let b = recipe.batch;
    let labelled_weight =
        (recipe.labelled_weight).unwrap_or(labelled.len() as f32 / n.max(1) as f32);
    let mut sums = [0f64; 3];
    let mut counted = 0usize;
    let every = 500;
    for step in 1..=recipe.steps {
        let pick: Vec<usize> = (0..b)
            .map(|_| rng.random_range(0..labelled.len()))
            .collect();
        let idx_l: Vec<usize> = pick.iter().map(|&k| labelled[k]).collect();
        let idx_u: Vec<usize> = (0..b).map(|_| rng.random_range(0..n)).collect();
        let z_l = train.draw(&idx_l, recipe.sample_z1, &mut rng, &ad);
        let z_u = train.draw(&idx_u, recipe.sample_z1, &mut rng, &ad);
        let targets: Vec<i64> = pick.iter().map(|&k| y[k] as i64).collect();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [b]), &ad);
        let one_hot = targets.clone().one_hot(CLASSES).float();
        let eps_l = Tensor::from_data(
            TensorData::new(normals(&mut rng, b * recipe.z2), [b, recipe.z2]),
            &ad,
        );
        let eps_u = Tensor::from_data(
            TensorData::new(
                normals(&mut rng, b * CLASSES * recipe.z2),
                [b * CLASSES, recipe.z2],
            ),
            &ad,
        );
        let labelled_bound = model.neg_elbo(z_l.clone(), one_hot, eps_l).mean();
        let unlabelled_bound = model.neg_elbo_unlabelled(z_u, eps_u).mean();
        let cross_entropy = model
            .log_q_y(z_l)
            .gather(1, targets.reshape([b, 1]))
            .mean()
            .neg();
        let terms = crate::error::host(Tensor::cat(
            vec![
                labelled_bound.clone(),
                unlabelled_bound.clone(),
                cross_entropy.clone(),
            ],
            0,
        ))?;
        for (s, t) in sums.iter_mut().zip(&terms) {
            *s += *t as f64;
        }
        counted += 1;
        let loss = labelled_bound.mul_scalar(labelled_weight)
            + unlabelled_bound
            + cross_entropy.mul_scalar(recipe.alpha);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(recipe.lr, model, grads);
        if step % every == 0 || step == recipe.steps {
            let c = counted as f64;
            let valid_accuracy = match held {
                Some(h) => Some(accuracy(&model.valid(), h.mean, train.d, h.labels)?),
                None => None,
            };
            report(&M2Progress {
                valid_accuracy,
                step,
                labelled: sums[0] / c,
                unlabelled: sums[1] / c,
                cross_entropy: sums[2] / c,
            });
            sums = [0.0; 3];
            counted = 0;
        }
    }
    Ok(model.valid())
}

/// Accuracy of q(y|z1) at the means of q(z1|x) of the scored images.
pub fn accuracy(model: &M2, mean: &[f32], d: usize, labels: &[u8]) -> Result<f64> {
    super::argmax_accuracy(mean, d, labels, |z1| model.logits(z1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// U(z1) is the q(y|z1)-weighted labelled bound minus the entropy, computed here class by
    /// class with `neg_elbo` on the same noise.
    #[test]
    fn the_unlabelled_bound_is_the_expected_labelled_bound_minus_the_entropy() {
        let device = Device::flex();
        let recipe = M2Recipe {
            hidden: 7,
            z2: 3,
            ..Default::default()
        };
        let model = crate::seeded::build(&device, 5, || M2::new(4, &recipe, &device));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let z1 = Tensor::<2>::from_data(TensorData::new(normals(&mut rng, 2 * 4), [2, 4]), &device);
        let eps = normals(&mut rng, 2 * CLASSES * 3);
        let u = crate::error::host(model.neg_elbo_unlabelled(
            z1.clone(),
            Tensor::from_data(TensorData::new(eps.clone(), [2 * CLASSES, 3]), &device),
        ))
        .unwrap();
        let log_q = crate::error::host(model.log_q_y(z1.clone())).unwrap();
        for i in 0..2 {
            let mut want = 0f64;
            for c in 0..CLASSES {
                let row = z1.clone().slice([i..i + 1, 0..4]);
                let mut y = vec![0f32; CLASSES];
                y[c] = 1.0;
                let y = Tensor::<2>::from_data(TensorData::new(y, [1, CLASSES]), &device);
                let e = eps[(i * CLASSES + c) * 3..(i * CLASSES + c + 1) * 3].to_vec();
                let e = Tensor::<2>::from_data(TensorData::new(e, [1, 3]), &device);
                let l = crate::error::host(model.neg_elbo(row, y, e)).unwrap()[0] as f64;
                let lq = log_q[i * CLASSES + c] as f64;
                want += lq.exp() * (l + lq);
            }
            assert!(
                (u[i] as f64 - want).abs() < 1e-3 * want.abs().max(1.0),
                "{} vs {want}",
                u[i]
            );
        }
    }

    /// With the decoder's σ fixed by the model, the labelled bound is the negative ELBO
    /// computed from its parts: -log N(z1; μ, σ²) + KL(q || N(0, I)) + ln 10.
    #[test]
    fn the_labelled_bound_adds_ln10_for_the_uniform_label_prior() {
        let device = Device::flex();
        let recipe = M2Recipe {
            hidden: 5,
            z2: 2,
            ..Default::default()
        };
        let model = crate::seeded::build(&device, 9, || M2::new(3, &recipe, &device));
        let z1 = Tensor::<2>::from_data(TensorData::new(vec![0.3f32, -1.0, 0.5], [1, 3]), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![4i64], [1]), &device)
            .one_hot(CLASSES)
            .float();
        let eps = Tensor::<2>::from_data(TensorData::new(vec![0.1f32, -0.2], [1, 2]), &device);
        let got =
            crate::error::host(model.neg_elbo(z1.clone(), y.clone(), eps.clone())).unwrap()[0];
        let q = gaussian(
            model
                .encode
                .forward(Tensor::cat(vec![z1.clone(), y.clone()], 1)),
        );
        let z2 = q.mean.clone() + q.log_var.clone().mul_scalar(0.5).exp() * eps;
        let p = gaussian(model.decode.forward(Tensor::cat(vec![z2, y], 1)));
        let (pm, pv) = (
            crate::error::host(p.mean).unwrap(),
            crate::error::host(p.log_var).unwrap(),
        );
        let z = [0.3f64, -1.0, 0.5];
        let log_p: f64 = (0..3)
            .map(|j| {
                let var = (pv[j] as f64).exp();
                -0.5 * ((2.0 * std::f64::consts::PI * var).ln()
                    + (z[j] - pm[j] as f64).powi(2) / var)
            })
            .sum();
        let (qm, qv) = (
            crate::error::host(q.mean).unwrap(),
            crate::error::host(q.log_var).unwrap(),
        );
        let kl: f64 = (0..2)
            .map(|j| {
                let (m, lv) = (qm[j] as f64, qv[j] as f64);
                0.5 * (m * m + lv.exp() - lv - 1.0)
            })
            .sum();
        let want = -log_p + kl + 10f64.ln();
        assert!((got as f64 - want).abs() < 1e-4, "{got} vs {want}");
    }

    /// Ten clusters of 100 points with three labelled points each: training on J^α must
    /// lower the unlabelled bound and end with q(y|z1) naming nearly every point by its
    /// cluster's label (an end-to-end check that the three networks, the bounds and the
    /// optimiser work together).
    #[test]
    fn three_labels_per_cluster_and_the_unlabelled_bound_label_every_cluster() {
        let (k, per, d) = (10, 100, 4);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // Centres: ten points of a 4-d grid, 3 apart; points N(centre, 0.5²).
        let centre = |c: usize| {
            let c = c as f32;
            [
                3.0 * (c % 2.0),
                3.0 * ((c / 2.0).floor() % 2.0),
                3.0 * (c / 4.0).floor(),
                0.0,
            ]
        };
        let noise = normals(&mut rng, k * per * d);
        let mean: Vec<f32> = (0..k * per * d)
            .map(|at| centre(at / (per * d))[at % d] + 0.5 * noise[at])
            .collect();
        let labels: Vec<u8> = (0..k * per).map(|i| (i / per) as u8).collect();
        let log_var = vec![(1e-4f32).ln(); mean.len()];
        let points = Posteriors {
            mean: &mean,
            log_var: &log_var,
            d,
        };
        let labelled: Vec<usize> = (0..k)
            .flat_map(|c| (0..3).map(move |i| c * per + i))
            .collect();
        let y: Vec<u8> = labelled.iter().map(|&i| labels[i]).collect();
        let recipe = M2Recipe {
            hidden: 32,
            z2: 2,
            steps: 1000,
            batch: 50,
            lr: 3e-3,
            ..Default::default()
        };
        let mut bounds = Vec::new();
        let model = train(&points, &labelled, &y, &recipe, 1, None, &mut |p| {
            bounds.push(p.unlabelled)
        })
        .unwrap();
        assert_eq!(bounds.len(), 2, "a report every 500 steps");
        assert!(
            bounds[1] < bounds[0],
            "the unlabelled bound rose: {bounds:?}"
        );
        let acc = accuracy(&model, &mean, d, &labels).unwrap();
        assert!(acc > 0.95, "M2 labelled {:.1}% of the points", acc * 100.0);
    }

    #[test]
    fn box_muller_draws_have_unit_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = normals(&mut rng, 20_001);
        assert_eq!(x.len(), 20_001);
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / x.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
    }
}
