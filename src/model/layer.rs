//! A layer of a configured model: the runtime counterpart of a [`LayerSpec`].

use crate::config::LayerSpec;
use crate::nn::{self, Mode, Module, Slot};
use crate::ops::{self, Conv2dSpec, ConvTranspose2dSpec};
use crate::{Tape, Var};
use rand::Rng;

pub enum Layer {
    Conv2d(nn::Conv2d),
    ConvTranspose2d(nn::ConvTranspose2d),
    Linear(nn::Linear),
    BatchNorm(nn::BatchNorm),
    InstanceNorm(nn::InstanceNorm),
    Relu,
    LeakyRelu(f32),
    PRelu(nn::PRelu),
    Sigmoid,
    Tanh,
    Flatten,
    /// Per-sample target shape.
    Reshape(Vec<usize>),
}

impl Layer {
    /// Builds the layer for a per-sample `input` shape (already validated by the config).
    pub fn build(spec: &LayerSpec, input: &[usize], rng: &mut impl Rng) -> Layer {
        let channels = input[0];
        match spec {
            LayerSpec::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                bias,
            } => {
                let padding = padding.to_padding().expect("validated config");
                Layer::Conv2d(nn::Conv2d::new(
                    channels,
                    *filters,
                    *kernel,
                    Conv2dSpec::new(*stride, padding),
                    *bias,
                    rng,
                ))
            }
            LayerSpec::ConvTranspose2d {
                filters,
                kernel,
                stride,
                padding,
                output_padding,
                bias,
            } => {
                let spec = ConvTranspose2dSpec::new(*stride, *padding, *output_padding);
                Layer::ConvTranspose2d(nn::ConvTranspose2d::new(
                    channels, *filters, *kernel, spec, *bias, rng,
                ))
            }
            LayerSpec::Linear { units, bias } => {
                Layer::Linear(nn::Linear::new(channels, *units, *bias, rng))
            }
            LayerSpec::BatchNorm {} => Layer::BatchNorm(nn::BatchNorm::new(channels)),
            LayerSpec::InstanceNorm {} => Layer::InstanceNorm(nn::InstanceNorm::new(channels)),
            LayerSpec::Relu {} => Layer::Relu,
            LayerSpec::LeakyRelu { alpha } => Layer::LeakyRelu(*alpha),
            LayerSpec::Prelu { shared } => {
                Layer::PRelu(nn::PRelu::new(if *shared { 1 } else { channels }))
            }
            LayerSpec::Sigmoid {} => Layer::Sigmoid,
            LayerSpec::Tanh {} => Layer::Tanh,
            LayerSpec::Flatten {} => Layer::Flatten,
            LayerSpec::Reshape { shape } => Layer::Reshape(shape.clone()),
        }
    }

    pub fn forward(&mut self, tape: &Tape, x: &Var, mode: Mode) -> Var {
        let kind = self.kind();
        tape.span(kind, || self.forward_unlabeled(tape, x, mode))
    }

    fn forward_unlabeled(&mut self, tape: &Tape, x: &Var, mode: Mode) -> Var {
        match self {
            Layer::Conv2d(l) => l.forward(tape, x),
            Layer::ConvTranspose2d(l) => l.forward(tape, x),
            Layer::Linear(l) => l.forward(tape, x),
            Layer::BatchNorm(l) => l.forward(tape, x, mode),
            Layer::InstanceNorm(l) => l.forward(tape, x),
            Layer::Relu => ops::relu(x),
            Layer::LeakyRelu(alpha) => ops::leaky_relu(x, *alpha),
            Layer::PRelu(l) => l.forward(tape, x),
            Layer::Sigmoid => ops::sigmoid(x),
            Layer::Tanh => ops::tanh(x),
            Layer::Flatten => ops::flatten(x),
            Layer::Reshape(shape) => {
                let mut full = vec![x.shape()[0]];
                full.extend_from_slice(shape);
                ops::reshape(x, &full)
            }
        }
    }

    /// The layer's type as the config spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Conv2d(_) => "conv2d",
            Layer::ConvTranspose2d(_) => "conv_transpose2d",
            Layer::Linear(_) => "linear",
            Layer::BatchNorm(_) => "batch_norm",
            Layer::InstanceNorm(_) => "instance_norm",
            Layer::Relu => "relu",
            Layer::LeakyRelu(_) => "leaky_relu",
            Layer::PRelu(_) => "prelu",
            Layer::Sigmoid => "sigmoid",
            Layer::Tanh => "tanh",
            Layer::Flatten => "flatten",
            Layer::Reshape(_) => "reshape",
        }
    }

    /// True for the layers whose outputs the activation-map tools show.
    pub fn is_convolution(&self) -> bool {
        matches!(self, Layer::Conv2d(_) | Layer::ConvTranspose2d(_))
    }
}

impl Module for Layer {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        match self {
            Layer::Conv2d(l) => l.visit(prefix, f),
            Layer::ConvTranspose2d(l) => l.visit(prefix, f),
            Layer::Linear(l) => l.visit(prefix, f),
            Layer::BatchNorm(l) => l.visit(prefix, f),
            Layer::InstanceNorm(l) => l.visit(prefix, f),
            Layer::PRelu(l) => l.visit(prefix, f),
            _ => {}
        }
    }
}
