//! Host copies of layer weights, for the cached samplers ([`crate::sample::cached`]), which
//! recompute a model's equations one pixel at a time outside the tensor library.

use crate::nn::MaskedConv2d;
use crate::nn::padded_conv::{OutputHead, PaddedConv2d};
use burn::tensor::Tensor;

/// A tensor copied to the host: row-major values and dims.
#[derive(Debug, Clone)]
pub struct HostTensor {
    pub values: Vec<f32>,
    pub dims: Vec<usize>,
}

impl HostTensor {
    pub fn of<const D: usize>(t: Tensor<D>) -> crate::Result<Self> {
        let dims = t.dims().to_vec();
        Ok(Self {
            values: crate::error::host(t)?,
            dims,
        })
    }
}

/// One convolution's weights on the host: `weight` `[out, in, kh, kw]`, `bias` `[out]`.
#[derive(Debug, Clone)]
pub struct HostConv {
    pub weight: HostTensor,
    pub bias: Vec<f32>,
}

impl HostConv {
    /// The layer's weights, its colour mask applied.
    pub fn of(conv: &PaddedConv2d) -> crate::Result<Self> {
        Ok(Self {
            weight: HostTensor::of(conv.masked_weight())?,
            bias: HostTensor::of(conv.bias.val())?.values,
        })
    }

    /// A masked convolution's weights with the mask applied (masked taps are zeros).
    pub fn masked(conv: &MaskedConv2d) -> crate::Result<Self> {
        Ok(Self {
            weight: HostTensor::of(conv.weight.val() * conv.mask.clone())?,
            bias: HostTensor::of(conv.bias.val())?.values,
        })
    }
}

/// The shared output head (ReLU, 1x1, ReLU, 1x1) on the host.
#[derive(Debug, Clone)]
pub struct HostHead {
    pub hidden: HostConv,
    pub logits: HostConv,
}

impl HostHead {
    pub fn of(head: &OutputHead) -> crate::Result<Self> {
        Ok(Self {
            hidden: HostConv::of(&head.hidden)?,
            logits: HostConv::of(&head.logits)?,
        })
    }
}
