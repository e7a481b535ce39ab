//! The cached PixelCNN++ (see [`super`]), scheduled by *ready times*. Its layers are not all
//! masked convolutions at one resolution (two shifted streams, stride-2 convolutions down,
//! stride-2 transposed convolutions up, skips between the halves), so no fixed "this layer at
//! this pixel" rule says what a new pixel makes computable. Instead the forward pass of
//! `PixelCnnPp::mixture_parameters` is written as a graph of nodes, each a map
//! `[H_l][W_l][images][features]`, and every position of every node gets a ready time:
//!
//! ```text
//! ready(input, p)  = p + 1                      pixel p is drawn (all its channels)
//! ready(node, q)   = max over the positions q' it reads of ready(source, q')     (0: reads none)
//! ```
//!
//! Once pixel p - 1 is drawn, every position with ready time p is computed, node by node in
//! the forward's order, for the whole group of images at once (one `[images, in] · [in, out]`
//! product per tap). Each position of each node is computed exactly once, so a whole image costs
//! about one forward pass. Causality is checked, not assumed: the output at pixel p must be
//! ready at p at the latest, which the schedule asserts (and tests/cached_sampler.rs exercises).
//!
//! The mixture's parameters at p never read p's own values; a pixel's channels differ only by the
//! mixture's reweighting by the channels drawn before them, done on the host in f64 by
//! [`HostMixture::conditional`], the naive sampler's own arithmetic. Dropout is the identity.

use super::{Incremental, SampleSpec, Taps};
use crate::models::pixelcnn_pp::{HostDeconv, HostGatedResnet, HostPixelCnnPp, HostWindowConv};
use crate::nn::fused::kernels;
use crate::nn::host::{HostConv, HostTensor};
use crate::nn::logistic_mixture::{HostMixture, parameters_per_pixel};
use crate::progress::Progress;

/// How a term reads its source's features.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Read {
    Raw,
    /// `concat_elu(v) = [elu(v), elu(-v)]`, kept beside the node's values.
    ConcatElu,
    /// `elu(v)`, computed on the fly (the output layer only, a 1x1).
    Elu,
}

/// Where a term's taps land in its source.
#[derive(Debug, Clone, Copy)]
enum Geometry {
    /// Output (r, c) reads `(stride r + dy - top, stride c + dx - left)`.
    Conv {
        stride: usize,
        top: usize,
        left: usize,
    },
    /// Stride 2, transposed: fine (R, C) reads coarse `((R - dy) / 2, (C + crop - dx) / 2)`
    /// where both divide evenly.
    Deconv { crop: usize },
}

/// One convolution into a node: its bias plus its taps over one source.
struct Term {
    source: usize,
    read: Read,
    taps: Taps,
    geometry: Geometry,
    /// The term's output moves this many columns right; zeros enter (no bias there).
    shift_right: usize,
}

/// What a node does with the sum of its terms.
enum Post {
    Identity,
    /// `residual + a ⊙ σ(b)` of the halves `[a, b]`: a gated ResNet block's end.
    Gate {
        residual: usize,
    },
}

struct Node {
    height: usize,
    width: usize,
    /// Features kept per position and image.
    features: usize,
    /// Empty for the input.
    terms: Vec<Term>,
    post: Post,
    /// Some term reads `concat_elu` of this node.
    concat_elu: bool,
}

impl Node {
    fn positions(&self) -> usize {
        self.height * self.width
    }

    /// The source positions that output (r, c) of `term` reads, with their tap `(dy, dx)`.
    fn reads(
        term: &Term,
        source: &Node,
        r: usize,
        c: usize,
    ) -> impl Iterator<Item = (usize, usize, usize)> {
        let (kh, kw) = (term.taps.height, term.taps.width);
        let (geometry, height, width) = (term.geometry, source.height, source.width);
        // Shifted out: reads nothing.
        let c = c.checked_sub(term.shift_right);
        let rows = if c.is_some() { kh } else { 0 };
        (0..rows).flat_map(move |dy| {
            let c = c.unwrap_or(0);
            (0..kw).filter_map(move |dx| {
                let at = match geometry {
                    Geometry::Conv { stride, top, left } => (stride * r + dy)
                        .checked_sub(top)
                        .zip((stride * c + dx).checked_sub(left)),
                    Geometry::Deconv { crop } => {
                        let row = r.checked_sub(dy).filter(|v| v % 2 == 0);
                        let col = (c + crop).checked_sub(dx).filter(|v| v % 2 == 0);
                        row.zip(col).map(|(row, col)| (row / 2, col / 2))
                    }
                };
                let (rr, cc) = at.filter(|&(rr, cc)| rr < height && cc < width)?;
                Some((dy, dx, rr * width + cc))
            })
        })
    }
}

/// The model as a graph, in the forward's order (every node reads only earlier ones), with
/// its schedule: both depend on the image size only, so every group shares them.
pub(crate) struct Graph {
    nodes: Vec<Node>,
    schedule: Schedule,
}

/// Builds the graph of `mixture_parameters` for `height x width` images.
struct Builder {
    nodes: Vec<Node>,
}

impl Builder {
    fn add(&mut self, node: Node) -> usize {
        for term in &node.terms {
            if term.read == Read::ConcatElu {
                self.nodes[term.source].concat_elu = true;
            }
        }
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// A convolution of one source read through `read`.
    fn term(&self, source: usize, read: Read, conv: &HostWindowConv) -> Term {
        Term {
            source,
            read,
            taps: Taps::of(&conv.conv),
            geometry: Geometry::Conv {
                stride: conv.stride,
                top: conv.top,
                left: conv.left,
            },
            shift_right: conv.shift_right,
        }
    }

    /// A node of `terms` summed, its size that of the first term's output.
    fn node(&mut self, terms: Vec<Term>, post: Post) -> usize {
        let first = &terms[0];
        let source = &self.nodes[first.source];
        let (height, width) = match first.geometry {
            Geometry::Conv { stride, .. } => (
                source.height.div_ceil(stride),
                source.width.div_ceil(stride),
            ),
            Geometry::Deconv { .. } => (2 * source.height, 2 * source.width),
        };
        let outputs = first.taps.outputs();
        let features = match post {
            Post::Identity => outputs,
            Post::Gate { .. } => outputs / 2,
        };
        self.add(Node {
            height,
            width,
            features,
            terms,
            post,
            concat_elu: false,
        })
    }

    fn deconv(&mut self, source: usize, deconv: &HostDeconv) -> usize {
        let term = Term {
            source,
            read: Read::Raw,
            taps: Taps::of(&deconv.conv),
            geometry: Geometry::Deconv {
                crop: deconv.crop_left,
            },
            shift_right: 0,
        };
        self.node(vec![term], Post::Identity)
    }

    /// A gated ResNet block: `c1 = conv(concat_elu(x)) + nin(concat_elu([a_1, a_2, ...]))`,
    /// `out = x + α ⊙ σ(β)` for `[α, β] = conv(concat_elu(c1))`. The nin's weights are split
    /// by source: `concat_elu` of a concatenation is `[elu(a_1), elu(a_2), elu(-a_1),
    /// elu(-a_2)]`, so source j's columns are its `elu` and its `elu(-)` block.
    fn block(&mut self, block: &HostGatedResnet, x: usize, auxiliary: &[usize]) -> usize {
        let mut terms = vec![self.term(x, Read::ConcatElu, &block.input)];
        if let Some(nin) = &block.auxiliary {
            let total: usize = auxiliary.iter().map(|&a| self.nodes[a].features).sum();
            let mut offset = 0;
            for (j, &a) in auxiliary.iter().enumerate() {
                let width = self.nodes[a].features;
                let columns: Vec<usize> = (offset..offset + width)
                    .chain(total + offset..total + offset + width)
                    .collect();
                let conv = HostWindowConv::pointwise(columns_of(nin, &columns, j == 0));
                terms.push(self.term(a, Read::ConcatElu, &conv));
                offset += width;
            }
        }
        let c1 = self.node(terms, Post::Identity);
        let gate = self.term(c1, Read::ConcatElu, &block.gate);
        self.node(vec![gate], Post::Gate { residual: x })
    }
}

/// The input columns `columns` of a 1x1 convolution, with its bias or zeros.
fn columns_of(conv: &HostConv, columns: &[usize], bias: bool) -> HostConv {
    let d = &conv.weight.dims;
    let (out, ins) = (d[0], d[1]);
    let values = (0..out)
        .flat_map(|o| {
            columns
                .iter()
                .map(move |&i| conv.weight.values[o * ins + i])
        })
        .collect();
    HostConv {
        weight: HostTensor {
            values,
            dims: vec![out, columns.len(), 1, 1],
        },
        bias: if bias {
            conv.bias.clone()
        } else {
            vec![0.0; out]
        },
    }
}

impl Graph {
    fn of(host: &HostPixelCnnPp, height: usize, width: usize) -> Self {
        let c = host.image_channels;
        let mut g = Builder {
            nodes: vec![Node {
                height,
                width,
                features: c + 1,
                terms: Vec::new(),
                post: Post::Identity,
                concat_elu: false,
            }],
        };
        let x = 0;
        let u0 = g.term(x, Read::Raw, &host.input_above);
        let mut above = vec![g.node(vec![u0], Post::Identity)];
        let (row, left) = (
            g.term(x, Read::Raw, &host.input_above_row),
            g.term(x, Read::Raw, &host.input_left),
        );
        let mut above_left = vec![g.node(vec![row, left], Post::Identity)];
        for (s, stage) in host.up.iter().enumerate() {
            if s > 0 {
                let [u, ul] = &host.downsample[s - 1];
                let (tu, tul) = (
                    g.term(*above.last().unwrap(), Read::Raw, u),
                    g.term(*above_left.last().unwrap(), Read::Raw, ul),
                );
                above.push(g.node(vec![tu], Post::Identity));
                above_left.push(g.node(vec![tul], Post::Identity));
            }
            for (block, left_block) in stage.above.iter().zip(&stage.above_left) {
                let u = g.block(block, *above.last().unwrap(), &[]);
                above.push(u);
                let ul = g.block(left_block, *above_left.last().unwrap(), &[u]);
                above_left.push(ul);
            }
        }
        let (mut u, mut ul) = (above.pop().unwrap(), above_left.pop().unwrap());
        for (s, stage) in host.down.iter().enumerate() {
            if s > 0 {
                let [du, dul] = &host.upsample[s - 1];
                u = g.deconv(u, du);
                ul = g.deconv(ul, dul);
            }
            for (block, left_block) in stage.above.iter().zip(&stage.above_left) {
                u = g.block(block, u, &[above.pop().unwrap()]);
                ul = g.block(left_block, ul, &[u, above_left.pop().unwrap()]);
            }
        }
        let out = g.term(
            ul,
            Read::Elu,
            &HostWindowConv::pointwise(host.output.clone()),
        );
        g.node(vec![out], Post::Identity);
        Self {
            schedule: schedule(&g.nodes),
            nodes: g.nodes,
        }
    }

    /// Computes position q of node `index` for the group.
    fn compute(&self, group: &mut Group, index: usize, q: usize) {
        let n = group.n;
        let node = &self.nodes[index];
        let (r, c) = (q / node.width, q % node.width);
        let outputs = node.terms[0].taps.outputs();
        // The group's buffers, reused from position to position.
        let mut acc = std::mem::take(&mut group.acc);
        acc.clear();
        acc.resize(n * outputs, 0.0);
        let mut scratch = std::mem::take(&mut group.scratch);
        for term in &node.terms {
            let source = &self.nodes[term.source];
            if term.shift_right > c {
                continue; // shifted out: zeros, not the bias
            }
            for row in acc.chunks_exact_mut(outputs) {
                row.iter_mut()
                    .zip(&term.taps.bias)
                    .for_each(|(a, b)| *a += b);
            }
            let span = self.schedule.span[term.source];
            for (dy, dx, at) in Node::reads(term, source, r, c) {
                let at = at % span;
                let x: &[f32] = match term.read {
                    Read::Raw => {
                        let f = source.features;
                        &group.values[term.source][at * n * f..(at + 1) * n * f]
                    }
                    Read::ConcatElu => {
                        let f = 2 * source.features;
                        &group.concat_elu[term.source][at * n * f..(at + 1) * n * f]
                    }
                    Read::Elu => {
                        let f = source.features;
                        scratch.clear();
                        let raw = &group.values[term.source][at * n * f..(at + 1) * n * f];
                        scratch.extend(raw.iter().map(|&v| kernels::elu_pair(v).0));
                        &scratch
                    }
                };
                term.taps.accumulate_rows(&mut acc, dy, dx, x);
            }
        }
        let f = node.features;
        let slot = q % self.schedule.span[index];
        // Every node reads only earlier ones.
        let (earlier, rest) = group.values.split_at_mut(index);
        let out = &mut rest[0][slot * n * f..(slot + 1) * n * f];
        match node.post {
            Post::Identity => out.copy_from_slice(&acc),
            Post::Gate { residual } => {
                let at = q % self.schedule.span[residual];
                let res = &earlier[residual][at * n * f..(at + 1) * n * f];
                // The model's own fused op, image by image: [n][2f] halves, [n][f] residuals.
                for ((out, res), halves) in
                    (out.chunks_exact_mut(f).zip(res.chunks_exact(f))).zip(acc.chunks_exact(2 * f))
                {
                    // SAFETY: the kernel writes every element of out, and only floats.
                    kernels::residual_gate_forward(res, halves, unsafe { kernels::slots(out) });
                }
            }
        }
        if node.concat_elu {
            let out = &group.values[index][slot * n * f..(slot + 1) * n * f];
            let activated = &mut group.concat_elu[index][slot * n * 2 * f..(slot + 1) * n * 2 * f];
            for (v, a) in out.chunks_exact(f).zip(activated.chunks_exact_mut(2 * f)) {
                // SAFETY: the kernel writes every element of a, and only floats.
                kernels::concat_elu_forward(v, unsafe { kernels::slots(a) });
            }
        }
        (group.acc, group.scratch) = (acc, scratch);
    }
}

/// When each position of each node of `nodes` (the graph, in order) is computed, and how much of
/// each node is kept.
fn schedule(nodes: &[Node]) -> Schedule {
    let pixels = nodes[0].positions();
    let mut ready: Vec<Vec<usize>> = vec![(1..=pixels).collect()];
    for node in &nodes[1..] {
        let times = (0..node.positions())
            .map(|q| {
                let (r, c) = (q / node.width, q % node.width);
                let mut t = 0;
                for term in &node.terms {
                    let source = &nodes[term.source];
                    for (_, _, at) in Node::reads(term, source, r, c) {
                        t = t.max(ready[term.source][at]);
                    }
                }
                if let Post::Gate { residual } = node.post {
                    t = t.max(ready[residual][q]);
                }
                t
            })
            .collect();
        ready.push(times);
    }
    let output = ready.last().expect("an output node");
    // Causality: the mixture at pixel p may read pixels before p only.
    if let Some(p) = (0..pixels).find(|&p| output[p] > p) {
        panic!(
            "PixelCNN++ cache: the output at pixel {p} needs {} pixels drawn: the graph is not causal",
            output[p]
        );
    }
    // The last time each position is read: by later nodes when they are computed, and the
    // output at pixel p by the sampler at time p.
    let mut last_read: Vec<Vec<Option<usize>>> =
        ready.iter().map(|t| vec![None; t.len()]).collect();
    let mut note = |node: usize, q: usize, t: usize| {
        let last = &mut last_read[node][q];
        *last = Some(last.map_or(t, |l: usize| l.max(t)));
    };
    for (index, node) in nodes.iter().enumerate().skip(1) {
        for (q, &t) in ready[index].iter().enumerate() {
            let (r, c) = (q / node.width, q % node.width);
            for term in &node.terms {
                for (_, _, at) in Node::reads(term, &nodes[term.source], r, c) {
                    note(term.source, at, t);
                }
            }
            if let Post::Gate { residual } = node.post {
                note(residual, q, t);
            }
        }
    }
    for p in 0..pixels {
        note(nodes.len() - 1, p, p);
    }
    // Keep the fewest rows such that no position is overwritten (by the one that many rows
    // below it, in the same slot) before its last read: the later one must be computed at a
    // strictly later time, as within one time a node is computed before its readers. The
    // input is kept whole (the sampler writes it).
    let span = (nodes.iter().enumerate())
        .map(|(index, node)| {
            let rows = (1..node.height)
                .find(|&rows| {
                    let span = rows * node.width;
                    (0..node.positions()).all(|q| {
                        let Some(last) = last_read[index][q] else {
                            return true;
                        };
                        (q + span..node.positions())
                            .step_by(span)
                            .all(|later| ready[index][later] > last)
                    })
                })
                .filter(|_| index > 0)
                .unwrap_or(node.height);
            rows * node.width
        })
        .collect();
    let mut order = Vec::with_capacity(ready.len());
    let mut starts = Vec::with_capacity(ready.len());
    for times in &ready {
        let mut positions: Vec<u32> = (0..times.len() as u32).collect();
        positions.sort_by_key(|&q| times[q as usize]);
        let mut start = vec![0u32; pixels + 2];
        for &t in times {
            start[t + 1] += 1;
        }
        for t in 1..start.len() {
            start[t] += start[t - 1];
        }
        order.push(positions);
        starts.push(start);
    }
    Schedule {
        order,
        starts,
        span,
    }
}

/// When each position is computed and where it is kept.
struct Schedule {
    /// `order[node]`: its positions sorted by ready time; those ready at t are
    /// `order[node][starts[node][t]..starts[node][t + 1]]`.
    order: Vec<Vec<u32>>,
    starts: Vec<Vec<u32>>,
    /// Positions kept per node, whole rows: position q lives in slot `q % span` (a ring of the
    /// last rows; the whole map where a ring would not do).
    span: Vec<usize>,
}

/// A group of `n` images: every node's values (and `concat_elu` where read so), laid out
/// `[slot][image][features]` (slots: [`Schedule::span`]).
pub(crate) struct Group {
    n: usize,
    width: usize,
    values: Vec<Vec<f32>>,
    concat_elu: Vec<Vec<f32>>,
    /// The next ready time to compute.
    next: usize,
    /// Scratch: a node's sum of terms `[n][outputs]`, and an activated source.
    acc: Vec<f32>,
    scratch: Vec<f32>,
    /// The pixel of the last step.
    current: usize,
}

/// [`Graph`] for the image size of each sampling request.
pub(crate) struct Model<'a> {
    host: &'a HostPixelCnnPp,
    graph: std::sync::OnceLock<Graph>,
}

impl Model<'_> {
    fn graph(&self, height: usize, width: usize) -> &Graph {
        let graph = self
            .graph
            .get_or_init(|| Graph::of(self.host, height, width));
        assert_eq!(
            (graph.nodes[0].height, graph.nodes[0].width),
            (height, width),
            "one image size per sampler"
        );
        graph
    }

    fn built(&self) -> &Graph {
        self.graph.get().expect("group() builds the graph first")
    }
}

impl Incremental for Model<'_> {
    type Group = Group;

    fn channels(&self) -> usize {
        self.host.image_channels
    }

    fn outputs(&self) -> usize {
        parameters_per_pixel(self.host.image_channels, self.host.mixtures)
    }

    fn group(&self, height: usize, width: usize, classes: &[Option<usize>], x: Vec<f32>) -> Group {
        let graph = self.graph(height, width);
        let n = classes.len();
        let c = self.host.image_channels;
        let plane = height * width;
        // [n][c][H][W] -> [H][W][n][c + 1], the last feature the constant 1.
        let mut input = vec![1f32; plane * n * (c + 1)];
        for i in 0..n {
            for ch in 0..c {
                for p in 0..plane {
                    input[(p * n + i) * (c + 1) + ch] = x[(i * c + ch) * plane + p];
                }
            }
        }
        let mut values = vec![input];
        let mut concat_elu = vec![Vec::new()];
        for (node, span) in graph.nodes.iter().zip(&graph.schedule.span).skip(1) {
            values.push(vec![0.0; span * n * node.features]);
            concat_elu.push(if node.concat_elu {
                vec![0.0; span * n * 2 * node.features]
            } else {
                Vec::new()
            });
        }
        Group {
            n,
            width,
            values,
            concat_elu,
            next: 0,
            current: 0,
            acc: Vec::new(),
            scratch: Vec::new(),
        }
    }

    fn set(&self, group: &mut Group, image: usize, channel: usize, r: usize, c: usize, x: f32) {
        let q = r * group.width + c;
        let features = self.host.image_channels + 1;
        group.values[0][(q * group.n + image) * features + channel] = x;
    }

    /// Computes every position whose ready time is at most (r, c)'s pixel index: idempotent, so
    /// a pixel's later channels cost nothing.
    fn step(&self, group: &mut Group, r: usize, c: usize, _want_logits: bool) {
        let graph = self.built();
        let t = r * group.width + c;
        while group.next <= t {
            let time = group.next;
            for index in 1..graph.nodes.len() {
                let starts = &graph.schedule.starts[index];
                let (from, to) = (starts[time] as usize, starts[time + 1] as usize);
                for k in from..to {
                    let q = graph.schedule.order[index][k] as usize;
                    graph.compute(group, index, q);
                }
            }
            group.next += 1;
        }
        group.current = t;
    }

    /// The mixture's raw parameters at the last step's pixel, `[P]`.
    fn logits<'a>(&self, group: &'a Group, image: usize) -> &'a [f32] {
        let p = self.outputs();
        let out = group.values.last().expect("an output node");
        let span = self.built().schedule.span.last().expect("an output node");
        let slot = group.current % span;
        &out[(slot * group.n + image) * p..][..p]
    }

    /// `p(x_c | x_<c)` of the mixture, the earlier channels read back from the group's input.
    fn distribution(&self, group: &Group, image: usize, channel: usize) -> Vec<f32> {
        let c = self.host.image_channels;
        let input = &group.values[0][(group.current * group.n + image) * (c + 1)..];
        let values: Vec<usize> = (0..channel)
            .map(|ch| (((input[ch] + 1.0) * 0.5 * 255.0).round()).clamp(0.0, 255.0) as usize)
            .collect();
        HostMixture::of_raw(self.logits(group, image), c, self.host.mixtures)
            .conditional(channel, &values)
    }
}

impl crate::models::FastSampler for HostPixelCnnPp {
    fn complete(
        &self,
        spec: &SampleSpec,
        images: &[u8],
        known: &[bool],
        progress: &mut dyn Progress,
    ) -> Vec<u8> {
        super::complete(&layout(self), spec, images, known, progress)
    }
}

fn layout(host: &HostPixelCnnPp) -> Model<'_> {
    Model {
        host,
        graph: std::sync::OnceLock::new(),
    }
}

/// The mixture parameters the cache computes at every position of complete `images` (teacher
/// forcing), `[n][H][W][P]`, for checking it against the parallel forward pass.
pub fn teacher_forced_parameters(
    model: &HostPixelCnnPp,
    spec: &SampleSpec,
    images: &[u8],
) -> Vec<f32> {
    super::teacher_forced(&layout(model), spec, images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ImageShape, Levels};
    use crate::models::{ImageSpec, PixelCnnPpConfig};
    use burn::tensor::Device;

    /// At 28x28 the rings keep a few rows of most nodes, not whole maps (the schedule's rule
    /// itself is checked by tests/cached_sampler.rs, whose images are taller than the rings).
    #[test]
    fn rings_keep_a_few_rows_of_each_node() {
        let device = Device::flex();
        let spec = ImageSpec {
            shape: ImageShape {
                channels: 1,
                height: 28,
                width: 28,
            },
            levels: Levels::Bits8,
        };
        let model = PixelCnnPpConfig::default().init(&spec, &device);
        let graph = Graph::of(&model.to_host().unwrap(), 28, 28);
        let kept: usize = (graph.nodes.iter().zip(&graph.schedule.span))
            .map(|(n, s)| s * n.features)
            .sum();
        let whole: usize = (graph.nodes.iter())
            .map(|n| n.positions() * n.features)
            .sum();
        assert!(kept * 3 < whole, "kept {kept} of {whole} values per image");
    }
}
