//! Every layer type a model config can name, each defined once: its file says its config
//! keys (the fields of its spec struct), its shape rule, parameter count and FLOPs
//! ([`Spec`]), how it is built, how it runs forward and how it is written to ONNX
//! ([`Layer`]). Config validation, the model, the FLOP count, the memory estimate, the
//! fuzz limits and the ONNX export all read these definitions.
//!
//! Adding a layer type: a file here with a spec struct implementing [`Spec`] and a built
//! layer implementing [`Layer`], one variant in [`LayerSpec`] and one arm in
//! [`LayerSpec::spec`].

mod activation;
mod conv;
mod linear;
mod norm;
pub mod onnx_node;
mod reshape;

pub use activation::{LeakyRelu, Prelu, Relu, Sigmoid, Tanh};
pub use conv::{Conv2d, ConvTranspose2d, PaddingSpec};
pub use linear::{gemm_node, Linear};
pub use norm::{BatchNorm, InstanceNorm};
pub use onnx_node::OnnxNode;
pub use reshape::{Flatten, Reshape};

use crate::nn::{Mode, Module};
use crate::ops::Activation;
use crate::{Tape, Var};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The largest filter or unit count a layer may have.
pub const MAX_UNITS: usize = 1 << 20;
/// The largest kernel, stride or padding.
pub const MAX_WINDOW: usize = 1 << 12;

/// What one line of a config's layer list says, and what follows from it for a
/// per-sample input shape (`[C, H, W]` or `[F]`).
pub trait Spec {
    /// The layer's type as the config spells it.
    fn kind(&self) -> &'static str;
    /// The per-sample output shape, or why the layer cannot take `input`.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String>;
    /// How many numbers the layer learns; `None` if the count overflows.
    fn parameter_count(&self, _input: &[usize]) -> Option<usize> {
        Some(0)
    }
    /// Forward FLOPs per sample of the layer's product (2 per multiply-add), `None` for
    /// layers without one (normalizations and activations are left out, as is usual).
    fn forward_flops(&self, _input: &[usize], _output: &[usize]) -> Option<f64> {
        None
    }
    /// The layer with fresh parameters for a validated `input` shape.
    fn build(&self, input: &[usize], rng: &mut dyn RngCore) -> Box<dyn Layer>;
}

/// A built layer: its parameters (through [`Module`]), its forward pass and its ONNX form.
pub trait Layer: Module + Send {
    fn kind(&self) -> &'static str;
    fn forward(&mut self, tape: &Tape, x: &Var, mode: Mode) -> Var;
    /// The ONNX nodes computing the layer on an input of per-sample shape `input`, in
    /// order, each reading the previous one's output.
    fn onnx(&self, input: &[usize]) -> Vec<OnnxNode<'_>>;
    /// The same function as [`Layer::onnx`] written with ops that runtimes such as tract
    /// run faster, for the layers that have such a form (a strided transposed convolution
    /// as a sub-pixel convolution); `None` for the others.
    fn onnx_fast(&self, _input: &[usize]) -> Option<Vec<OnnxNode<'_>>> {
        None
    }
    /// True for the layers whose outputs the activation-map tools show.
    fn is_convolution(&self) -> bool {
        false
    }
    /// The element-wise activation this layer is, so that a normalization before it can
    /// apply it in the same pass (ReLU, leaky ReLU, PReLU).
    fn as_activation(&self, _tape: &Tape) -> Option<Activation> {
        None
    }
    /// This layer followed by `next` in one fused op, when this layer has one for what
    /// `next` is (a normalization followed by an activation); `None` otherwise.
    fn forward_then(
        &mut self,
        _tape: &Tape,
        _x: &Var,
        _mode: Mode,
        _next: &dyn Layer,
    ) -> Option<Var> {
        None
    }
}

/// Runs `layer` under a profiler span named after its kind.
pub fn forward(layer: &mut dyn Layer, tape: &Tape, x: &Var, mode: Mode) -> Var {
    tape.span(layer.kind(), || layer.forward(tape, x, mode))
}

/// Runs `layers` in order on `x`. A normalization directly followed by an activation runs
/// as one fused op (same values and gradients, fewer passes over memory).
pub fn forward_all(layers: &mut [Box<dyn Layer>], tape: &Tape, x: &Var, mode: Mode) -> Var {
    let mut h = x.clone();
    let mut i = 0;
    while i < layers.len() {
        let (layer, rest) = layers[i..].split_first_mut().expect("i < len");
        let fused = rest
            .first()
            .and_then(|next| layer.forward_then(tape, &h, mode, next.as_ref()));
        match fused {
            Some(y) => {
                h = y;
                i += 2;
            }
            None => {
                h = forward(layer.as_mut(), tape, &h, mode);
                i += 1;
            }
        }
    }
    h
}

/// One layer of a config file: `{ type = "conv2d", filters = 64, ... }`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    Conv2d(Conv2d),
    ConvTranspose2d(ConvTranspose2d),
    Linear(Linear),
    BatchNorm(BatchNorm),
    InstanceNorm(InstanceNorm),
    Relu(Relu),
    LeakyRelu(LeakyRelu),
    Prelu(Prelu),
    Sigmoid(Sigmoid),
    Tanh(Tanh),
    Flatten(Flatten),
    Reshape(Reshape),
}

impl LayerSpec {
    /// The layer type's definition.
    pub fn spec(&self) -> &dyn Spec {
        match self {
            LayerSpec::Conv2d(s) => s,
            LayerSpec::ConvTranspose2d(s) => s,
            LayerSpec::Linear(s) => s,
            LayerSpec::BatchNorm(s) => s,
            LayerSpec::InstanceNorm(s) => s,
            LayerSpec::Relu(s) => s,
            LayerSpec::LeakyRelu(s) => s,
            LayerSpec::Prelu(s) => s,
            LayerSpec::Sigmoid(s) => s,
            LayerSpec::Tanh(s) => s,
            LayerSpec::Flatten(s) => s,
            LayerSpec::Reshape(s) => s,
        }
    }

    pub fn kind(&self) -> &'static str {
        self.spec().kind()
    }
}

/// The ONNX ops the layer types may write.
pub use crate::onnx_ops::LAYER_OPS as ONNX_OPS;

/// Shape-rule helpers shared by the layer files.
pub(crate) mod rule {
    /// `(C, H, W)` of an image input, or an error that says what the layer needs.
    pub fn image(kind: &str, input: &[usize]) -> Result<(usize, usize, usize), String> {
        match input {
            [c, h, w] => Ok((*c, *h, *w)),
            _ => Err(format!(
                "{kind} needs an image input [C, H, W], got {input:?} (add a reshape layer)"
            )),
        }
    }

    /// Sizes beyond any real model are refused before shape arithmetic could overflow.
    pub fn at_most(name: &str, v: usize, max: usize) -> Result<(), String> {
        if v > max {
            Err(format!("{name} = {v} is more than the {max} supported"))
        } else {
            Ok(())
        }
    }

    pub fn positive(name: &str, v: usize, max: usize) -> Result<(), String> {
        if v == 0 {
            Err(format!("{name} must be at least 1"))
        } else {
            at_most(name, v, max)
        }
    }

    /// The values of a per-sample shape.
    pub fn size(shape: &[usize]) -> f64 {
        shape.iter().product::<usize>() as f64
    }

    pub fn yes() -> bool {
        true
    }

    pub fn one() -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Slot;
    use rand::SeedableRng;

    /// One of every layer type, with an input shape it takes.
    fn one_of_each() -> Vec<(LayerSpec, Vec<usize>)> {
        let parse = |text: &str| -> LayerSpec { toml::from_str(text).unwrap() };
        let image = vec![3, 8, 6];
        [
            (
                "type = 'conv2d'\nfilters = 4\nkernel = 3\npadding = 'same'",
                &image,
            ),
            (
                "type = 'conv_transpose2d'\nfilters = 2\nkernel = 4\nstride = 2\npadding = 1",
                &image,
            ),
            ("type = 'linear'\nunits = 5", &vec![7]),
            ("type = 'batch_norm'", &image),
            ("type = 'instance_norm'", &image),
            ("type = 'relu'", &image),
            ("type = 'leaky_relu'\nalpha = 0.2", &image),
            ("type = 'prelu'", &image),
            ("type = 'sigmoid'", &image),
            ("type = 'tanh'", &image),
            ("type = 'flatten'", &image),
            ("type = 'reshape'\nshape = [6, 4, 6]", &image),
        ]
        .iter()
        .map(|(text, input)| (parse(text), input.to_vec()))
        .collect()
    }

    #[test]
    fn the_spec_and_the_built_layer_agree() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        for (spec, input) in one_of_each() {
            let def = spec.spec();
            let output = def.output_shape(&input).unwrap();
            let mut layer = def.build(&input, &mut rng);
            assert_eq!(layer.kind(), def.kind());
            let mut learned = 0;
            layer.visit("", &mut |_, slot| {
                if let Slot::Param(p) = slot {
                    learned += p.value().len();
                }
            });
            assert_eq!(Some(learned), def.parameter_count(&input), "{}", def.kind());
            let mut batch = vec![2];
            batch.extend(&input);
            let x = Var::constant(crate::Tensor::from_elem(batch, 0.3));
            let y = forward(layer.as_mut(), &Tape::no_grad(), &x, Mode::Train);
            assert_eq!(&y.shape()[1..], output, "{}", def.kind());
            for node in layer.onnx(&input) {
                assert!(
                    ONNX_OPS.contains(&node.op),
                    "{} is not in ONNX_OPS",
                    node.op
                );
            }
        }
    }

    /// forward_all fuses a normalization with the activation after it: same values as running
    /// the layers one by one (the op's gradients are compared in ops::batch_norm_act).
    #[test]
    fn fused_and_layer_by_layer_forward_agree() {
        let parse = |t: &str| -> LayerSpec { toml::from_str(t).unwrap() };
        let pairs = ["batch_norm", "instance_norm"]
            .iter()
            .flat_map(|n| ["prelu", "leaky_relu", "relu"].map(|a| (*n, a)));
        for (norm, act) in pairs {
            let specs = [norm, act, "sigmoid"].map(|t| parse(&format!("type = '{t}'")));
            let input = [2, 3, 4];
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            let mut build = || -> Vec<Box<dyn Layer>> {
                specs
                    .iter()
                    .map(|s| s.spec().build(&input, &mut rng))
                    .collect()
            };
            let (mut fused, mut single) = (build(), build());
            let x = Var::constant(crate::Tensor::from_shape_fn(vec![3, 2, 3, 4], |d| {
                ((d[0] * 7 + d[1] * 5 + d[2] * 3 + d[3]) % 11) as f32 / 5.0 - 1.0
            }));
            let tape = Tape::no_grad();
            let a = forward_all(&mut fused, &tape, &x, Mode::Train);
            let b = single.iter_mut().fold(x.clone(), |h, l| {
                forward(l.as_mut(), &tape, &h, Mode::Train)
            });
            assert_eq!(a.value(), b.value(), "{norm} {act}");
        }
    }

    /// Fails to compile when a layer type is added without a line in `one_of_each`.
    fn listed(spec: &LayerSpec) {
        match spec {
            LayerSpec::Conv2d(_)
            | LayerSpec::ConvTranspose2d(_)
            | LayerSpec::Linear(_)
            | LayerSpec::BatchNorm(_)
            | LayerSpec::InstanceNorm(_)
            | LayerSpec::Relu(_)
            | LayerSpec::LeakyRelu(_)
            | LayerSpec::Prelu(_)
            | LayerSpec::Sigmoid(_)
            | LayerSpec::Tanh(_)
            | LayerSpec::Flatten(_)
            | LayerSpec::Reshape(_) => {}
        }
    }

    #[test]
    fn the_config_reference_lists_every_type_and_key() {
        let doc = include_str!("../../docs/config.md");
        let all = one_of_each();
        assert_eq!(all.len(), 12, "one_of_each lists every type once");
        for (spec, _) in all {
            listed(&spec);
            let row = format!("| `{}` |", spec.kind());
            let line = doc.lines().find(|l| l.starts_with(&row));
            let line = line.unwrap_or_else(|| panic!("docs/config.md has no row {row}"));
            let text = toml::to_string(&spec).unwrap();
            for key in text.lines().filter_map(|l| l.split(" = ").next()) {
                if key != "type" {
                    assert!(line.contains(&format!("`{key}`")), "{row} lacks `{key}`");
                }
            }
        }
    }

    #[test]
    fn every_type_round_trips_and_refuses_unknown_keys() {
        for (spec, _) in one_of_each() {
            let text = toml::to_string(&spec).unwrap();
            assert_eq!(toml::from_str::<LayerSpec>(&text).unwrap(), spec);
            let extra = format!("{text}surprise = 1\n");
            let e = toml::from_str::<LayerSpec>(&extra).unwrap_err().to_string();
            assert!(e.contains("surprise"), "{}: {e}", spec.kind());
        }
    }
}
