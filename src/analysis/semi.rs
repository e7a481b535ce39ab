//! Semi-supervised learning with a generative model's features: the M1 recipe of Kingma et
//! al. 2014 ("Semi-Supervised Learning with Deep Generative Models", §3.1). A VAE trained
//! without labels on every training image encodes each image to the mean of q(z|x); small
//! classifiers are then fitted on those means with a few labels (balanced: n/10 per class),
//! and compared with the same classifiers on the raw pixels (trained from scratch).
//!
//! Classifiers, each fitted on the labelled subset only, with one fixed recipe (no tuning on
//! the test split):
//! - `k-NN`: the majority of the 5 nearest labelled points (Euclidean; ties to the nearest);
//! - `linear`: softmax regression;
//! - `MLP`: one hidden layer of 200 ReLU units (on pixels: the VAE encoder's hidden sizes,
//!   the "same classifier from scratch");
//! - `label spreading`: the semi-supervised step, in place of M1's
//!   transductive SVM: labels spread over the nearest-neighbour graph of all training
//!   images ([`Graph`]);
//! - fine-tuning ([`FineTune`]): the VAE's own encoder x -> (μ, log σ²) with a linear head on
//!   top, every weight trained with the labels, against the same network from a random
//!   initialisation (its "pixels" row);
//! - M1+M2 (features only, [`super::m2`]): the paper's stacked model, a second, semi-supervised
//!   VAE over the features whose label is a latent variable; its q(y|z1) is the classifier.
//!
//! Features are the raw means (the prior already puts active units on a unit scale); pixels
//! are scaled to [0, 1] (`v / 255`, or `v` for binary sets). Both linear models and MLPs
//! train by Adam (lr 1e-3, ε 1e-8) for a fixed number of steps on minibatches of at most 100,
//! with an L2 penalty.

use crate::data::{self, ImageSet, Split, batch};
use crate::error::{Error, Result};
use crate::models::{AnyModel, Classifier, ClassifierConfig, ImageSpec, LatentModel, ModelConfig};
use crate::nn::coders::Encoder;
use crate::run::load_trained;
use crate::train::adam::FusedAdam;
use crate::train::checkpoint::Which;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// The classifier whose encoder is initialised from the VAE (row "vae") or at random (row
/// "pixels") and trained whole with the labels.
pub const FINE_TUNED: &str = "encoder + linear head, fine-tuned";

/// The ways of using the features, each one row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Method {
    /// 5 nearest labelled neighbours.
    Knn,
    /// Softmax regression.
    Linear,
    /// One hidden layer (on pixels: two, the VAE encoder's sizes).
    Mlp,
    /// Label spreading over the 10-NN graph of every training image.
    Spreading,
    /// The VAE's encoder under a linear head, trained whole (pixels: from a random start).
    FineTune,
    /// M1+M2: the semi-supervised generative model over the features (features only).
    M2,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Knn,
        Method::Linear,
        Method::Mlp,
        Method::Spreading,
        Method::FineTune,
        Method::M2,
    ];

    /// The classifier's name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Method::Knn => "5-NN",
            Method::Linear => "linear",
            Method::Mlp => "MLP",
            Method::Spreading => "label spreading",
            Method::FineTune => FINE_TUNED,
            Method::M2 => M1_M2,
        }
    }
}

/// The row of the stacked generative model (features only).
pub const M1_M2: &str = "M1+M2: q(y|z1) of a semi-supervised VAE on the features";

/// What to run.
#[derive(Debug, Clone)]
pub struct SemiRequest {
    /// A trained VAE run (e.g. `zoo/vae-bmnist`).
    pub encoder: PathBuf,
    /// A labelled data set of the VAE's image size (`mnist`).
    pub data: String,
    /// Labelled training images per experiment (balanced across the 10 classes).
    pub labels: Vec<usize>,
    pub seeds: Vec<u64>,
    /// Optimiser steps of each linear model and MLP.
    pub steps: usize,
    /// The classifiers to fit.
    pub methods: Vec<Method>,
    /// How M1+M2 trains.
    pub m2: super::m2::M2Recipe,
    /// Draw the t-SNE map of the features.
    pub map: bool,
    /// Where the report and the pictures go.
    pub out: PathBuf,
}

/// One table row: a label count, an input and a classifier, over the seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SemiRow {
    pub labels: usize,
    pub input: &'static str,
    pub classifier: &'static str,
    pub accuracies: Vec<f64>,
    pub mean: f64,
    pub std: f64,
}

/// What [`semi_supervised`] measured; also `out/semi.json` and `out/semi.md`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SemiReport {
    pub encoder: String,
    /// The checkpoint whose q(z|x) gave the features.
    pub checkpoint: String,
    pub benchmark: String,
    pub latent_dim: usize,
    pub seeds: Vec<u64>,
    /// M1+M2's recipe, when it ran.
    pub m2: Option<super::m2::M2Recipe>,
    pub rows: Vec<SemiRow>,
}

impl SemiReport {
    /// The table as Markdown: one row per label count and classifier, VAE features beside
    /// pixels.
    pub fn markdown(&self) -> String {
        let mut table = format!(
            "| labels | classifier | on VAE features (mean ± std, seeds {:?}) | on pixels (no VAE; classifiers from scratch) |\n|---:|---|---|---|\n",
            self.seeds
        );
        let cell = |r: Option<&SemiRow>| {
            r.map_or("-".to_string(), |r| {
                format!("{:.2}% ± {:.2}", r.mean * 100.0, r.std * 100.0)
            })
        };
        for r in self.rows.iter().filter(|r| r.input == "vae") {
            let pixels = self.rows.iter().find(|p| {
                p.input == "pixels" && p.labels == r.labels && p.classifier == r.classifier
            });
            table += &format!(
                "| {} | {} | {} | {} |\n",
                r.labels,
                r.classifier,
                cell(Some(r)),
                cell(pixels)
            );
        }
        table
    }
}

/// A matrix of `n` rows of `d` features.
struct Features {
    values: Vec<f32>,
    d: usize,
}

impl Features {
    fn rows(&self, idx: &[usize]) -> Features {
        let mut values = Vec::with_capacity(idx.len() * self.d);
        for &i in idx {
            values.extend_from_slice(&self.values[i * self.d..(i + 1) * self.d]);
        }
        Features { values, d: self.d }
    }

    fn len(&self) -> usize {
        self.values.len() / self.d
    }

    /// Per-feature mean and standard deviation over the rows.
    fn stats(&self) -> Vec<(f32, f32)> {
        let n = self.len().max(1) as f64;
        (0..self.d)
            .map(|j| {
                let column = self.values.iter().skip(j).step_by(self.d);
                let mean = column.clone().map(|&v| v as f64).sum::<f64>() / n;
                let var = column.map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
                (mean as f32, (var.sqrt() as f32).max(1e-6))
            })
            .collect()
    }
}

/// The means and log-variances of q(z|x) of every image of `set`, given as the VAE sees them
/// (`binary`, from [`binary_pixels`]).
fn encode(
    model: &dyn LatentModel,
    set: &ImageSet,
    binary: &[u8],
    device: &Device,
) -> Result<(Features, Features)> {
    let shape = [set.shape.channels, set.shape.height, set.shape.width];
    let mut mean = Vec::with_capacity(set.len() * model.latent_dim());
    let mut log_var = Vec::with_capacity(set.len() * model.latent_dim());
    let all: Vec<usize> = (0..set.len()).collect();
    for chunk in all.chunks(500) {
        let x = batch::to_tensor(binary, chunk, shape, data::Levels::Binary, device);
        let q = model.encode(x);
        mean.extend(crate::error::host(q.mean)?);
        log_var.extend(crate::error::host(q.log_var)?);
    }
    let d = model.latent_dim();
    if mean.len() != set.len() * d || log_var.len() != mean.len() {
        return Err(Error::Invalid(format!(
            "q(z|x) gave {} means for {} images of {d} units",
            mean.len(),
            set.len()
        )));
    }
    Ok((
        Features { values: mean, d },
        Features { values: log_var, d },
    ))
}

/// The images as the VAE sees them: a binary set as it is, an 8-bit one binarised (each pixel
/// 1 with probability v / 255, one draw under `seed`).
fn binary_pixels(set: &ImageSet, seed: u64) -> Vec<u8> {
    match set.levels {
        data::Levels::Binary => set.pixels.clone(),
        _ => data::binarize_stochastic(&set.pixels, seed),
    }
}

/// `per_class` random training indices of each of the 10 classes, under `seed`.
fn balanced(labels: &[u8], per_class: usize, seed: u64) -> Result<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = Vec::new();
    for class in 0..10u8 {
        let mut of_class: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if of_class.len() < per_class {
            return Err(Error::Invalid(format!(
                "class {class} has {} training images, fewer than the {per_class} asked for",
                of_class.len()
            )));
        }
        of_class.shuffle(&mut rng);
        chosen.extend_from_slice(&of_class[..per_class]);
    }
    chosen.shuffle(&mut rng);
    Ok(chosen)
}

/// Accuracy of the 5-nearest-neighbour vote of `train` on `test` (ties to the nearest).
fn knn_accuracy(train: &Features, train_y: &[u8], test: &Features, test_y: &[u8]) -> Result<f64> {
    let near = nearest(train, test, 5, false)?;
    let correct = (near.iter().zip(test_y))
        .filter(|&(list, &y)| {
            let mut votes = [0usize; 10];
            list.iter().for_each(|&j| votes[train_y[j] as usize] += 1);
            let top = *votes.iter().max().unwrap_or(&0);
            let vote = list
                .iter()
                .map(|&j| train_y[j])
                .find(|&c| votes[c as usize] == top);
            vote == Some(y)
        })
        .count();
    Ok(correct as f64 / test_y.len().max(1) as f64)
}

/// The `k` nearest rows of `base` to each row of `queries` (Euclidean), nearest first;
/// `skip_self` leaves out a row's own index when `queries` is `base`. Distances by blocks of
/// matrix products, `|q|² - 2 q·b + |b|²` (the `|q|²` term does not change the order).
fn nearest(
    base: &Features,
    queries: &Features,
    k: usize,
    skip_self: bool,
) -> Result<Vec<Vec<usize>>> {
    use rayon::prelude::*;
    let device = Device::flex();
    let d = base.d;
    let n = base.len();
    let norms: Vec<f32> = (base.values.chunks_exact(d))
        .map(|row| row.iter().map(|v| v * v).sum())
        .collect();
    let base_t =
        Tensor::<2>::from_data(TensorData::new(base.values.clone(), [n, d]), &device).transpose();
    let mut out = Vec::with_capacity(queries.len());
    let block = 1000;
    for start in (0..queries.len()).step_by(block) {
        let rows = block.min(queries.len() - start);
        let q = &queries.values[start * d..(start + rows) * d];
        let q = Tensor::<2>::from_data(TensorData::new(q.to_vec(), [rows, d]), &device);
        let dots = crate::error::host(q.matmul(base_t.clone()))?; // [rows, n]
        out.par_extend(dots.par_chunks_exact(n).enumerate().map(|(r, dots)| {
            let qi = start + r;
            let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
            for (i, (&dot, &norm)) in dots.iter().zip(&norms).enumerate() {
                if skip_self && i == qi {
                    continue;
                }
                let dist = norm - 2.0 * dot;
                if best.len() < k || dist < best[best.len() - 1].0 {
                    let at = best.partition_point(|&(b, _)| b <= dist);
                    best.insert(at, (dist, i));
                    best.truncate(k);
                }
            }
            best.into_iter().map(|(_, i)| i).collect::<Vec<_>>()
        }));
    }
    Ok(out)
}

/// Label spreading (Zhou et al. 2004, "Learning with Local and Global Consistency") on the
/// symmetrised 10-nearest-neighbour graph of every training image, labelled or not:
/// `F ← α S F + (1 - α) Y` with `S = D^-1/2 W D^-1/2`, α = 0.99, 50 iterations. A test image
/// takes the summed `F` of its 10 nearest training images. This is the semi-supervised step
/// M1 takes with a transductive SVM: it uses the unlabelled images, never the test labels.
struct Graph {
    neighbours: Vec<Vec<usize>>,
    test_neighbours: Vec<Vec<usize>>,
}

impl Graph {
    fn new(train: &Features, test: &Features) -> Result<Self> {
        const K: usize = 10;
        let directed = nearest(train, train, K, true)?;
        let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); directed.len()];
        for (i, list) in directed.iter().enumerate() {
            for &j in list {
                neighbours[i].push(j);
                neighbours[j].push(i);
            }
        }
        for list in &mut neighbours {
            list.sort_unstable();
            list.dedup();
        }
        Ok(Self {
            neighbours,
            test_neighbours: nearest(train, test, K, false)?,
        })
    }

    fn accuracy(&self, labelled: &[usize], train_y: &[u8], test_y: &[u8]) -> f64 {
        const ALPHA: f32 = 0.99;
        let n = self.neighbours.len();
        let mut y = vec![0f32; n * 10];
        for &i in labelled {
            y[i * 10 + train_y[i] as usize] = 1.0;
        }
        let scale: Vec<f32> = (self.neighbours.iter())
            .map(|l| 1.0 / (l.len().max(1) as f32).sqrt())
            .collect();
        let mut f = y.clone();
        for _ in 0..50 {
            let mut next = vec![0f32; n * 10];
            for (i, list) in self.neighbours.iter().enumerate() {
                let row = &mut next[i * 10..(i + 1) * 10];
                for &j in list {
                    let w = ALPHA * scale[i] * scale[j];
                    for (r, &v) in row.iter_mut().zip(&f[j * 10..(j + 1) * 10]) {
                        *r += w * v;
                    }
                }
                for (r, &v) in row.iter_mut().zip(&y[i * 10..(i + 1) * 10]) {
                    *r += (1.0 - ALPHA) * v;
                }
            }
            f = next;
        }
        let correct = (self.test_neighbours.iter().zip(test_y))
            .filter(|&(list, &label)| {
                let mut votes = [0f32; 10];
                for &j in list {
                    for (v, &p) in votes.iter_mut().zip(&f[j * 10..(j + 1) * 10]) {
                        *v += p;
                    }
                }
                let best = (0..10).max_by(|&a, &b| votes[a].total_cmp(&votes[b]));
                best == Some(label as usize)
            })
            .count();
        correct as f64 / test_y.len().max(1) as f64
    }
}

/// The columns `keep` of every row.
fn columns(x: &Features, keep: &[usize]) -> Features {
    let values = (x.values.chunks_exact(x.d))
        .flat_map(|row| keep.iter().map(move |&j| row[j]))
        .collect();
    Features {
        values,
        d: keep.len(),
    }
}

/// A softmax classifier on features, with `hidden` ReLU layers (none: softmax regression).
#[derive(Module, Debug)]
struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    fn new(d: usize, hidden: &[usize], device: &Device) -> Self {
        let mut sizes = vec![d];
        sizes.extend_from_slice(hidden);
        sizes.push(10);
        Self {
            layers: (sizes.windows(2))
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
        }
    }

    fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        x
    }
}

/// Fits an [`Mlp`] on `x`, `y` (L2 penalty `l2` on its weights) and returns its test accuracy.
#[allow(clippy::too_many_arguments)]
fn mlp_accuracy(
    x: &Features,
    y: &[u8],
    test: &Features,
    test_y: &[u8],
    hidden: &[usize],
    steps: usize,
    l2: f32,
    seed: u64,
) -> Result<f64> {
    let ad = Device::flex().autodiff();
    let model = crate::seeded::build(&ad, seed, || Mlp::new(x.d, hidden, &ad));
    let penalty = |m: &Mlp| {
        (m.layers.iter())
            .map(|l| l.weight.val().square().sum())
            .reduce(|a, b| a + b)
            .expect("at least one layer")
            .mul_scalar(l2)
    };
    let fit = Fit { steps, seed };
    fit.accuracy(
        model,
        |m, x| m.forward(x),
        Some(&penalty),
        (x, y),
        (test, test_y),
    )
}

/// The fixed recipe every trained classifier follows: Adam (lr 1e-3, ε 1e-8), `steps` steps
/// on minibatches of at most 100 drawn with replacement, then the model as it ends.
struct Fit {
    steps: usize,
    seed: u64,
}

impl Fit {
    /// Trains `model` (built on an autodiff device) on `train` and returns its accuracy on
    /// `test`. `logits` maps `[b, d]` inputs to `[b, 10]`; `penalty` is added to the loss.
    fn accuracy<M: Module>(
        &self,
        mut model: M,
        logits: impl Fn(&M, Tensor<2>) -> Tensor<2>,
        penalty: Option<&dyn Fn(&M) -> Tensor<1>>,
        (x, y): (&Features, &[u8]),
        (test, test_y): (&Features, &[u8]),
    ) -> Result<f64> {
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let mut optim = FusedAdam::new(1e-8).init(None);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5eed);
        let n = x.len();
        let batch = n.min(100);
        for _ in 0..self.steps {
            let idx: Vec<usize> = (0..batch).map(|_| rng.random_range(0..n)).collect();
            let xb = x.rows(&idx);
            let inputs = Tensor::<2>::from_data(TensorData::new(xb.values, [batch, x.d]), &ad);
            let targets: Vec<i64> = idx.iter().map(|&i| y[i] as i64).collect();
            let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [batch]), &ad);
            let logp = log_softmax(logits(&model, inputs), 1);
            let mut loss = logp.gather(1, targets.reshape([batch, 1])).mean().neg();
            if let Some(penalty) = penalty {
                loss = loss + penalty(&model);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-3, model, grads);
        }
        let model = model.valid();
        super::argmax_accuracy(&test.values, test.d, test_y, |x| logits(&model, x))
    }
}

/// Fine-tuning: the VAE's encoder x -> (μ, log σ²) under a linear head, every weight trained
/// with the labels, against the same classifier from a random initialisation. Inputs are the
/// binarised images the features came from.
struct FineTune {
    config: ClassifierConfig,
    /// The trained VAE's encoder, loaded on an autodiff device.
    encoder: Encoder,
    shape: [usize; 3],
}

impl FineTune {
    /// The classifier before training: the VAE's encoder or a random one, and a random head.
    fn build(&self, from_vae: bool, seed: u64, ad: &Device) -> Classifier {
        let image = ImageSpec {
            shape: data::ImageShape {
                channels: self.shape[0],
                height: self.shape[1],
                width: self.shape[2],
            },
            levels: data::Levels::Binary,
        };
        crate::seeded::build(ad, seed, || {
            if from_vae {
                self.config.with_encoder(self.encoder.clone(), ad)
            } else {
                self.config.init(&image, ad)
            }
        })
    }

    fn accuracy(
        &self,
        from_vae: bool,
        fit: &Fit,
        train: (&Features, &[u8]),
        test: (&Features, &[u8]),
    ) -> Result<f64> {
        let model = self.build(from_vae, fit.seed, &Device::flex().autodiff());
        let [c, h, w] = self.shape;
        let logits = |m: &Classifier, x: Tensor<2>| {
            let [b, _] = x.dims();
            m.logits(x.reshape([b, c, h, w]))
        };
        fit.accuracy(model, logits, None, train, test)
    }
}

/// Runs the experiment; `log` receives a line per step and per fitted classifier, `progress`
/// one unit per (labels, seed, input) experiment with its accuracies as the live metric.
pub fn semi_supervised(
    request: &SemiRequest,
    data_dir: &Path,
    log: &mut dyn FnMut(&str),
    progress: &mut dyn crate::progress::Progress,
) -> Result<SemiReport> {
    let device = Device::flex();
    let trained = load_trained(&request.encoder, Which::Best, &device)?;
    let Some(vae) = trained.model.as_latent() else {
        return Err(Error::Invalid(format!(
            "{} is not a VAE run (its model has no q(z|x))",
            request.encoder.display()
        )));
    };
    let train_set = data::load(&request.data, Split::Train, data_dir)?;
    let test_set = data::load(&request.data, Split::Test, data_dir)?;
    if train_set.shape != trained.image.shape {
        return Err(Error::Invalid(format!(
            "{} has images of {:?}, the VAE in {} was trained on {:?}",
            request.data,
            train_set.shape,
            request.encoder.display(),
            trained.image.shape
        )));
    }
    let labels_of = |set: &ImageSet| {
        set.labels
            .clone()
            .ok_or_else(|| Error::Invalid(format!("{} has no labels", request.data)))
    };
    let (train_y, test_y) = (labels_of(&train_set)?, labels_of(&test_set)?);
    let wants = |m: Method| request.methods.contains(&m);
    log(&format!(
        "encoding {} training and {} test images with q(z|x) of {}",
        train_set.len(),
        test_set.len(),
        request.encoder.display()
    ));
    // Raw means, not standardised: under the N(0, I) prior an active unit's mean varies with
    // x on the scale of 1 and an inactive ("collapsed") unit's hardly at all; standardising
    // would blow the inactive units' noise up to the active units' scale.
    let pixels = |set: &ImageSet| Features {
        values: {
            let top = (set.levels.count() - 1) as f32;
            set.pixels.iter().map(|&v| v as f32 / top).collect()
        },
        d: set.shape.dims(),
    };
    let (p_train, p_test) = (pixels(&train_set), pixels(&test_set));
    // One binarisation of each split: the features and the fine-tuned classifiers see the same.
    let (bin_train, bin_test) = (binary_pixels(&train_set, 11), binary_pixels(&test_set, 12));
    let (z_train, z_train_log_var) = encode(vae, &train_set, &bin_train, &device)?;
    let (z_test, _) = encode(vae, &test_set, &bin_test, &device)?;
    // Only the active units (Burda et al.'s criterion, no labels needed): the others carry
    // nothing but noise into distances and into classifiers fitted on 100 points.
    let active: Vec<usize> = (z_train.stats().iter().enumerate())
        .filter(|(_, (_, sd))| sd * sd > 1e-2)
        .map(|(j, _)| j)
        .collect();
    log(&format!(
        "{} of {} latent units active (variance of the mean over x above 0.01): the features",
        active.len(),
        z_train.d
    ));
    if active.is_empty() {
        return Err(Error::Invalid(format!(
            "none of the {} latent units of {} is active (every mean of q(z|x) is nearly the same for all images): the VAE has learnt no features; train it longer",
            z_train.d,
            request.encoder.display()
        )));
    }
    let (z_train, z_test) = (columns(&z_train, &active), columns(&z_test, &active));
    let z_train_log_var = columns(&z_train_log_var, &active);
    // Watched while M1+M2 trains (its recipe was chosen on these labels, never on the test's).
    let held = if wants(Method::M2) {
        let valid_set = data::load(&request.data, Split::Valid, data_dir)?;
        let valid_y = labels_of(&valid_set)?;
        let bin_valid = binary_pixels(&valid_set, 13);
        let (z_valid, _) = encode(vae, &valid_set, &bin_valid, &device)?;
        Some((columns(&z_valid, &active), valid_y))
    } else {
        None
    };
    let fine_tune = if wants(Method::FineTune) {
        let ad = device.clone().autodiff();
        let (ModelConfig::Vae(c), AnyModel::Vae(vae)) = (
            &trained.config.model,
            load_trained(&request.encoder, Which::Best, &ad)?.model,
        ) else {
            return Err(Error::Invalid(format!(
                "{} is not a VAE run: fine-tuning needs its encoder",
                request.encoder.display()
            )));
        };
        let tune = FineTune {
            config: ClassifierConfig {
                architecture: c.architecture,
                hidden: c.hidden.clone(),
                feature_dim: 2 * c.latent_dim,
                activation: c.activation,
                classes: 10,
                dropout: 0.0,
            },
            encoder: vae.into_encoder(),
            shape: [
                train_set.shape.channels,
                train_set.shape.height,
                train_set.shape.width,
            ],
        };
        // The fine-tuned classifiers see the images as the VAE does: the one binarisation
        // the features were computed from.
        let binarised = |binary: &[u8]| Features {
            values: binary.iter().map(|&v| v as f32).collect(),
            d: train_set.shape.dims(),
        };
        Some((tune, binarised(&bin_train), binarised(&bin_test)))
    } else {
        None
    };
    std::fs::create_dir_all(&request.out).map_err(|e| Error::io(&request.out, e))?;
    // The picture: a t-SNE map of the training images' features, coloured by the
    // labels nobody used, with the smallest experiment's labelled images ringed.
    if let (true, Some(&n), Some(&seed)) = (
        request.map,
        request.labels.iter().min(),
        request.seeds.first(),
    ) {
        let subset = balanced(&train_y, n / 10, seed)?;
        let shown: Vec<usize> = (0..train_y.len())
            .step_by(10)
            .chain(subset.iter().copied())
            .collect();
        let shown_z = z_train.rows(&shown);
        let points: Vec<Vec<f32>> = shown_z
            .values
            .chunks_exact(shown_z.d)
            .map(<[f32]>::to_vec)
            .collect();
        let plane = crate::viz::tsne::Tsne::default().map(&points, progress)?;
        let labels: Vec<u8> = shown.iter().map(|&i| train_y[i]).collect();
        let ringed: Vec<usize> = (shown.len() - subset.len()..shown.len()).collect();
        crate::viz::labelled_scatter(
            &request.out.join(crate::layout::SEMI_MAP),
            &plane,
            &labels,
            &ringed,
            &format!(
                "q(z|x) means of 1/10 of the training images (t-SNE of {} active units); ringed: the {n} labelled (seed {seed})",
                z_train.d
            ),
            ("t-SNE 1", "t-SNE 2"),
        )?;
    }
    let graphs = if wants(Method::Spreading) {
        log("the 10-nearest-neighbour graph of the training images' features");
        let graph = Graph::new(&z_train, &z_test)?;
        log("the same graph on the pixels (label spreading without the VAE)");
        Some((graph, Graph::new(&p_train, &p_test)?))
    } else {
        None
    };
    let mut rows = Vec::new();
    let experiments = (request.labels.len() * request.seeds.len() * 2) as u64;
    let names: Vec<&str> = request.methods.iter().map(|m| m.label()).collect();
    progress.start(&format!("classifiers ({})", names.join("; ")), experiments);
    let mut done = 0;
    for &n in &request.labels {
        let mut results: Vec<((&'static str, &'static str), Vec<f64>)> = Vec::new();
        for &seed in &request.seeds {
            let subset = balanced(&train_y, n / 10, seed)?;
            let y: Vec<u8> = subset.iter().map(|&i| train_y[i]).collect();
            for (input, train, test, hidden) in [
                ("vae", &z_train, &z_test, vec![200]),
                ("pixels", &p_train, &p_test, vec![200, 200]),
            ] {
                let x = train.rows(&subset);
                let mut found = Vec::new();
                for &method in &request.methods {
                    let acc = match method {
                        Method::Knn => knn_accuracy(&x, &y, test, &test_y)?,
                        Method::Linear => {
                            mlp_accuracy(&x, &y, test, &test_y, &[], request.steps, 1e-4, seed)?
                        }
                        Method::Mlp => {
                            mlp_accuracy(&x, &y, test, &test_y, &hidden, request.steps, 1e-4, seed)?
                        }
                        Method::Spreading => {
                            let (features, pixels) = graphs.as_ref().expect("built when asked");
                            let graph = if input == "vae" { features } else { pixels };
                            graph.accuracy(&subset, &train_y, &test_y)
                        }
                        // "vae": the encoder fine-tuned from the VAE; "pixels": the same
                        // classifier from a random initialisation.
                        Method::FineTune => {
                            let (tune, b_train, b_test) =
                                fine_tune.as_ref().expect("built when asked");
                            tune.accuracy(
                                input == "vae",
                                &Fit {
                                    steps: request.steps,
                                    seed,
                                },
                                (&b_train.rows(&subset), &y),
                                (b_test, &test_y),
                            )?
                        }
                        // A density model over the 16 features, not over 784 pixels: the
                        // pixels column has no M2 (the paper's M2 alone would be its cell).
                        Method::M2 if input == "vae" => {
                            let (z_valid, valid_y) = held.as_ref().expect("built when asked");
                            let posteriors = super::m2::Posteriors {
                                mean: &z_train.values,
                                log_var: &z_train_log_var.values,
                                d: z_train.d,
                            };
                            let model = super::m2::train(
                                &posteriors,
                                &subset,
                                &y,
                                &request.m2,
                                seed,
                                Some(&super::m2::Held {
                                    mean: &z_valid.values,
                                    labels: valid_y,
                                }),
                                &mut |p| {
                                    log(&format!(
                                        "M1+M2, {n} labels, seed {seed}, step {}: labelled bound {:.3}, unlabelled bound {:.3}, cross-entropy {:.4} nats; validation accuracy {:.2}%",
                                        p.step,
                                        p.labelled,
                                        p.unlabelled,
                                        p.cross_entropy,
                                        p.valid_accuracy.unwrap_or(f64::NAN) * 100.0
                                    ))
                                },
                            )?;
                            super::m2::accuracy(&model, &z_test.values, z_test.d, &test_y)?
                        }
                        Method::M2 => continue,
                    };
                    found.push((method.label(), acc));
                }
                let line: Vec<String> = (found.iter())
                    .map(|(name, acc)| format!("{name} {:.2}%", acc * 100.0))
                    .collect();
                let line = format!("{n} labels, seed {seed}, {input}: {}", line.join(", "));
                done += 1;
                progress.update(done, &line);
                if !found.is_empty() {
                    log(&line);
                }
                for (classifier, acc) in found {
                    let key = (input, classifier);
                    match results.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, accs)) => accs.push(acc),
                        None => results.push((key, vec![acc])),
                    }
                }
            }
        }
        for ((input, classifier), accuracies) in results {
            let (mean, std) = super::mean_std(&accuracies);
            rows.push(SemiRow {
                labels: n,
                input,
                classifier,
                accuracies,
                mean,
                std,
            });
        }
    }
    progress.finish(&format!("{experiments} experiments"));
    let report = SemiReport {
        encoder: request.encoder.display().to_string(),
        checkpoint: trained.checkpoint.display().to_string(),
        benchmark: format!(
            "{}: test split ({} images), accuracy; features = mean of q(z|x), {} dims",
            request.data,
            test_set.len(),
            vae.latent_dim()
        ),
        latent_dim: vae.latent_dim(),
        seeds: request.seeds.clone(),
        m2: wants(Method::M2).then(|| request.m2.clone()),
        rows,
    };
    crate::atomic::write_atomic(
        &request.out.join(crate::layout::SEMI_TABLE),
        report.markdown().as_bytes(),
    )?;
    crate::atomic::write_json(&request.out.join(crate::layout::SEMI_JSON), &report)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a line: two well separated clusters of 30, labels 0 and 1.
    fn clusters() -> (Features, Vec<u8>) {
        let values: Vec<f32> = (0..60)
            .map(|i| {
                if i < 30 {
                    i as f32 * 0.01
                } else {
                    10.0 + i as f32 * 0.01
                }
            })
            .collect();
        let labels = (0..60).map(|i| u8::from(i >= 30)).collect();
        (Features { values, d: 1 }, labels)
    }

    #[test]
    fn nearest_neighbours_by_matrix_products_equal_a_direct_search() {
        let base = Features {
            values: (0..40).map(|i| ((i * 7919) % 23) as f32 * 0.3).collect(),
            d: 2,
        };
        let near = nearest(&base, &base, 3, true).unwrap();
        for (q, list) in near.iter().enumerate() {
            let dist = |i: usize| -> f32 {
                (0..2)
                    .map(|j| (base.values[q * 2 + j] - base.values[i * 2 + j]).powi(2))
                    .sum()
            };
            let mut direct: Vec<usize> = (0..20).filter(|&i| i != q).collect();
            direct.sort_by(|&a, &b| dist(a).total_cmp(&dist(b)));
            // Same distances (ties may come in either order).
            let got: Vec<f32> = list.iter().map(|&i| dist(i)).collect();
            let want: Vec<f32> = direct[..3].iter().map(|&i| dist(i)).collect();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "query {q}: {got:?} vs {want:?}");
            }
            assert!(!list.contains(&q));
        }
    }

    #[test]
    fn label_spreading_carries_one_label_per_cluster_to_the_whole_cluster() {
        let (x, y) = clusters();
        let graph = Graph::new(&x, &x).unwrap();
        // One labelled point per cluster.
        assert_eq!(graph.accuracy(&[3, 40], &y, &y), 1.0);
        // A 5-NN vote with the same two labels gets only the few points nearest each.
        let labelled = x.rows(&[3, 40]);
        let knn = knn_accuracy(&labelled, &[0, 1], &x, &y).unwrap();
        assert_eq!(knn, 1.0, "two points, two far clusters: even k-NN is right");
    }

    #[test]
    fn balanced_subsets_take_the_same_count_of_every_class_and_refuse_too_few() {
        let labels: Vec<u8> = (0..500).map(|i| (i % 10) as u8).collect();
        let chosen = balanced(&labels, 7, 3).unwrap();
        assert_eq!(chosen.len(), 70);
        for class in 0..10 {
            assert_eq!(chosen.iter().filter(|&&i| labels[i] == class).count(), 7);
        }
        let mut unique = chosen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 70, "no image twice");
        assert_ne!(chosen, balanced(&labels, 7, 4).unwrap(), "seeds differ");
        assert!(balanced(&labels, 51, 1).is_err());
    }

    #[test]
    fn fine_tuning_starts_from_the_vaes_encoder_and_from_scratch_from_another() {
        let ad = Device::flex().autodiff();
        let image = ImageSpec {
            shape: data::ImageShape {
                channels: 1,
                height: 4,
                width: 4,
            },
            levels: data::Levels::Binary,
        };
        let vae_config = crate::models::VaeConfig {
            hidden: vec![8],
            latent_dim: 3,
            ..Default::default()
        };
        let encoder = crate::seeded::build(&ad, 1, || vae_config.init(&image, &ad)).into_encoder();
        let tune = FineTune {
            config: ClassifierConfig {
                architecture: vae_config.architecture,
                hidden: vec![8],
                feature_dim: 6,
                activation: vae_config.activation,
                classes: 10,
                dropout: 0.0,
            },
            encoder: encoder.clone(),
            shape: [1, 4, 4],
        };
        let x: Vec<f32> = (0..32).map(|i| ((i * 5) % 3 == 0) as u8 as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(x, [2, 1, 4, 4]), &ad);
        let out = |e: &Encoder| crate::error::host(e.forward(x.clone())).unwrap();
        assert_eq!(out(&tune.build(true, 7, &ad).encoder), out(&encoder));
        assert_ne!(out(&tune.build(false, 7, &ad).encoder), out(&encoder));
    }
}
