//! Causality by gradients, for any autoregressive model: which input values the conditional of
//! one (pixel, channel) depends on. One helper for every model's causality test.

use burn::tensor::{Device, Int, Tensor, TensorData};
use genmodels::models::{Autoregressive, ImageSpec};

/// Pseudo-random inputs per check. One is not enough: for some weights every ReLU of the
/// output head is off at a position for that input and the whole gradient is zero; dependence
/// is a property of the architecture, so any input that shows it counts.
pub const INPUTS: usize = 8;

/// `[c * h * w]`, channel-major like the images: true where the gradient of
/// `log p(x[channel, pixel] | earlier values)` with respect to that input value is non-zero for
/// at least one of [`INPUTS`] images. The position itself is reported false: its own value
/// enters its log-probability, not its conditional. Class-conditional models get class 3.
pub fn field(
    model: &dyn Autoregressive,
    spec: &ImageSpec,
    channel: usize,
    pixel: usize,
    device: &Device,
) -> Vec<bool> {
    let shape = spec.shape;
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let top = (spec.levels.count() - 1) as f32;
    let values: Vec<f32> = super::random_images(spec, INPUTS, 5)
        .iter()
        .map(|&v| v as f32 / top)
        .collect();
    let x =
        Tensor::<4>::from_data(TensorData::new(values, [INPUTS, c, h, w]), device).require_grad();
    let labels = (model.classes() > 0).then(|| {
        Tensor::<1, Int>::from_data(TensorData::new(vec![3i64; INPUTS], [INPUTS]), device)
    });
    let (row, col) = (pixel / w, pixel % w);
    // Items are independent, so the gradient of the sum holds each item's own gradient.
    let grads = model
        .conditionals(x.clone(), labels.as_ref())
        .log_prob_pixels(x.clone())
        .slice([0..INPUTS, channel..channel + 1, row..row + 1, col..col + 1])
        .sum()
        .backward();
    let g: Vec<f32> = x
        .grad(&grads)
        .expect("input gradient")
        .try_into_vec_as::<f32>()
        .unwrap();
    let dims = c * h * w;
    let own = channel * h * w + pixel;
    (0..dims)
        .map(|j| j != own && (0..INPUTS).any(|b| g[b * dims + j] != 0.0))
        .collect()
}

/// Position of (channel, pixel) in the model's order: raster, then R -> G -> B in a pixel.
pub fn order(spec: &ImageSpec, channel: usize, pixel: usize) -> usize {
    pixel * spec.shape.channels + channel
}

/// Asserts, for every (pixel, channel), that its conditional depends on no input at or after it
/// in the model's order and on at least one earlier input (except the very first). Returns the
/// fields, indexed by [`order`].
pub fn assert_causal(
    model: &dyn Autoregressive,
    spec: &ImageSpec,
    device: &Device,
) -> Vec<Vec<bool>> {
    let shape = spec.shape;
    let (c, plane) = (shape.channels, shape.height * shape.width);
    let mut fields = Vec::with_capacity(c * plane);
    for pixel in 0..plane {
        for channel in 0..c {
            let f = field(model, spec, channel, pixel, device);
            let me = order(spec, channel, pixel);
            let mut any_earlier = false;
            for in_channel in 0..c {
                for in_pixel in 0..plane {
                    let seen = f[in_channel * plane + in_pixel];
                    if order(spec, in_channel, in_pixel) >= me {
                        assert!(
                            !seen,
                            "output (pixel {pixel}, channel {channel}) depends on input (pixel {in_pixel}, channel {in_channel})\n{}",
                            render(&f, spec, pixel)
                        );
                    } else {
                        any_earlier |= seen;
                    }
                }
            }
            assert!(
                me == 0 || any_earlier,
                "output (pixel {pixel}, channel {channel}) sees no earlier input"
            );
            fields.push(f);
        }
    }
    fields
}

/// The channel-0 plane of a field as text: `X` the target pixel, `#` an input it depends on.
pub fn render(field: &[bool], spec: &ImageSpec, target: usize) -> String {
    let (h, w) = (spec.shape.height, spec.shape.width);
    (0..h)
        .map(|r| {
            (0..w)
                .map(|c| match r * w + c {
                    i if i == target => 'X',
                    i if field[i] => '#',
                    _ => '.',
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that every (pixel, channel) depends on *every* input before it in the model's order
/// (no blind spot, and each channel sees the earlier channels of its own pixel); `fields` as
/// [`assert_causal`] returns them.
pub fn assert_full_field(fields: &[Vec<bool>], spec: &ImageSpec, what: &str) {
    let (c, plane) = (spec.shape.channels, spec.shape.height * spec.shape.width);
    for pixel in 0..plane {
        for channel in 0..c {
            let me = order(spec, channel, pixel);
            let f = &fields[me];
            for in_channel in 0..c {
                for in_pixel in 0..plane {
                    if order(spec, in_channel, in_pixel) < me {
                        assert!(
                            f[in_channel * plane + in_pixel],
                            "{what}: output (pixel {pixel}, channel {channel}) misses input (pixel {in_pixel}, channel {in_channel})\n{}",
                            render(f, spec, pixel)
                        );
                    }
                }
            }
        }
    }
}

/// Asserts that channel c of every pixel sees channels < c of the same pixel (R -> G -> B).
pub fn assert_sees_own_earlier_channels(fields: &[Vec<bool>], spec: &ImageSpec, what: &str) {
    let (c, plane) = (spec.shape.channels, spec.shape.height * spec.shape.width);
    for pixel in 0..plane {
        for channel in 0..c {
            let f = &fields[order(spec, channel, pixel)];
            for earlier in 0..channel {
                assert!(
                    f[earlier * plane + pixel],
                    "{what}: channel {channel} of pixel {pixel} misses channel {earlier} of its own pixel"
                );
            }
        }
    }
}
