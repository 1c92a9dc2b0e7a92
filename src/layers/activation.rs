//! Activations: `relu`, `leaky_relu` (slope `alpha` below zero), `prelu` (learned slopes,
//! one per channel or one `shared`), `sigmoid`, `tanh`. Each keeps the shape. The
//! parameter-free ones are their own built layer.

use super::onnx_node::{weight_as, OnnxAttribute::Float, OnnxInput, OnnxNode};
use super::{Layer, Spec};
use crate::nn::{self, Mode, Module, Slot};
use crate::ops::Activation;
use crate::{ops, Tape, Var};
use rand::RngCore;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Relu {}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LeakyRelu {
    #[serde(default = "leaky_default")]
    pub alpha: f32,
}

fn leaky_default() -> f32 {
    0.01
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Prelu {
    /// One slope shared by all channels instead of one per channel.
    #[serde(default)]
    pub shared: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sigmoid {}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tanh {}

/// An activation without parameters: its spec, built as itself. Given the type, its
/// config name and ONNX op, then, with `s` the layer and `x` the input: its forward, its ONNX
/// attributes and its negative-side slope when a normalization before it may apply it in
/// the same pass (`ops::batch_norm_act`; `None`: it cannot).
macro_rules! stateless {
    ($ty:ty, $kind:literal, $onnx:literal, |$s:ident, $x:ident| {
        forward: $forward:expr,
        attributes: $attributes:expr,
        fused_slope: $slope:expr $(,)?
    }) => {
        impl Spec for $ty {
            fn kind(&self) -> &'static str {
                $kind
            }
            fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
                Ok(input.to_vec())
            }
            fn build(&self, _input: &[usize], _rng: &mut dyn RngCore) -> Box<dyn Layer> {
                Box::new(self.clone())
            }
        }
        impl Module for $ty {
            fn visit(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, Slot<'_>)) {}
        }
        #[allow(unused_variables)]
        impl Layer for $ty {
            fn kind(&self) -> &'static str {
                $kind
            }
            fn forward(&mut self, _tape: &Tape, $x: &Var, _mode: Mode) -> Var {
                let $s = &*self;
                $forward
            }
            fn onnx(&self, _input: &[usize]) -> Vec<OnnxNode<'_>> {
                let $s = self;
                vec![OnnxNode::unary($onnx, $attributes)]
            }
            fn as_activation(&self, _tape: &Tape) -> Option<Activation> {
                let $s = self;
                $slope.map(Activation::Leaky)
            }
        }
    };
}

stateless!(Relu, "relu", "Relu", |s, x| {
    forward: ops::relu(x),
    attributes: vec![],
    fused_slope: Some(0.0),
});
stateless!(LeakyRelu, "leaky_relu", "LeakyRelu", |s, x| {
    forward: ops::leaky_relu(x, s.alpha),
    attributes: vec![Float("alpha", s.alpha)],
    fused_slope: Some(s.alpha),
});
stateless!(Sigmoid, "sigmoid", "Sigmoid", |s, x| {
    forward: ops::sigmoid(x),
    attributes: vec![],
    fused_slope: None,
});
stateless!(Tanh, "tanh", "Tanh", |s, x| {
    forward: ops::tanh(x),
    attributes: vec![],
    fused_slope: None,
});

impl Spec for Prelu {
    fn kind(&self) -> &'static str {
        "prelu"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }

    fn parameter_count(&self, input: &[usize]) -> Option<usize> {
        Some(if self.shared {
            1
        } else {
            input.first().copied().unwrap_or(0)
        })
    }

    fn build(&self, input: &[usize], _rng: &mut dyn RngCore) -> Box<dyn Layer> {
        Box::new(nn::PRelu::new(if self.shared { 1 } else { input[0] }))
    }
}

impl nn::PRelu {
    /// The slope as an initializer of the input's rank with the batch axis, `[1, C, 1, 1]`
    /// against `[N, C, H, W]` (one shared slope: `[1]`). tract takes its fast per-channel
    /// path for this shape, not for the shorter `[C, 1, 1]` that broadcasting also allows.
    fn onnx_slope(&self, input: &[usize]) -> OnnxInput<'_> {
        let slope = self.slope.value();
        let shape = match slope.len() {
            1 => vec![1],
            c => [vec![1, c], vec![1; input.len().saturating_sub(1)]].concat(),
        };
        weight_as("weight", slope, shape)
    }
}

impl Layer for nn::PRelu {
    fn kind(&self) -> &'static str {
        "prelu"
    }

    fn as_activation(&self, tape: &Tape) -> Option<Activation> {
        Some(Activation::PRelu(tape.param(&self.slope)))
    }

    fn forward(&mut self, tape: &Tape, x: &Var, _mode: Mode) -> Var {
        nn::PRelu::forward(self, tape, x)
    }

    fn onnx(&self, input: &[usize]) -> Vec<OnnxNode<'_>> {
        let inputs = vec![self.onnx_slope(input)];
        vec![OnnxNode::with_weights("PRelu", inputs, vec![])]
    }

    /// With every slope at most 1, `PReLU(x) = Max(x, a·x)` (at least 1: `Min`): two
    /// element-wise ops that tract runs faster than its PRelu (a compare and a select).
    fn onnx_fast(&self, input: &[usize]) -> Option<Vec<OnnxNode<'_>>> {
        let slope = self.slope.value();
        let op = if slope.iter().all(|&a| a <= 1.0) {
            "Max"
        } else if slope.iter().all(|&a| a >= 1.0) {
            "Min"
        } else {
            return None;
        };
        let scaled = OnnxNode::with_weights("Mul", vec![self.onnx_slope(input)], vec![]);
        let pick = OnnxNode {
            op,
            inputs: vec![OnnxInput::LayerInput, OnnxInput::Previous],
            attributes: vec![],
        };
        Some(vec![scaled, pick])
    }
}
