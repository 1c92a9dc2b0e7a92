//! `linear`: a fully connected layer on flat features, `y = x W^T + b`; FLOPs 2·in·out.
//! The VAE's mean and log-variance heads are linear layers too ([`gemm_node`]).

use super::onnx_node::{weight_and_bias, OnnxAttribute::Int, OnnxNode};
use super::rule::{positive, size, yes};
use super::{Layer, Spec, MAX_UNITS};
use crate::nn::{self, Mode};
use crate::{Tape, Var};
use rand::RngCore;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Linear {
    pub units: usize,
    #[serde(default = "yes")]
    pub bias: bool,
}

impl Spec for Linear {
    fn kind(&self) -> &'static str {
        "linear"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            [_] => {
                positive("units", self.units, MAX_UNITS)?;
                Ok(vec![self.units])
            }
            _ => Err(format!(
                "linear needs a flat input [F], got {input:?} (add a flatten layer)"
            )),
        }
    }

    fn parameter_count(&self, input: &[usize]) -> Option<usize> {
        input
            .iter()
            .product::<usize>()
            .checked_mul(self.units)?
            .checked_add(if self.bias { self.units } else { 0 })
    }

    fn forward_flops(&self, input: &[usize], _output: &[usize]) -> Option<f64> {
        Some(2.0 * size(input) * self.units as f64)
    }

    fn build(&self, input: &[usize], mut rng: &mut dyn RngCore) -> Box<dyn Layer> {
        Box::new(nn::Linear::new(input[0], self.units, self.bias, &mut rng))
    }
}

/// A linear layer as ONNX `Gemm` with the weight transposed (`transB`).
pub fn gemm_node(l: &nn::Linear) -> OnnxNode<'_> {
    let inputs = weight_and_bias(&l.weight, &l.bias);
    OnnxNode::with_weights("Gemm", inputs, vec![Int("transB", 1)])
}

impl Layer for nn::Linear {
    fn kind(&self) -> &'static str {
        "linear"
    }

    fn forward(&mut self, tape: &Tape, x: &Var, _mode: Mode) -> Var {
        nn::Linear::forward(self, tape, x)
    }

    fn onnx(&self, _input: &[usize]) -> Vec<OnnxNode<'_>> {
        vec![gemm_node(self)]
    }
}
