//! `batch_norm` (over the batch, per channel or per feature; running statistics for
//! inference) and `instance_norm` (per image and channel): each learns a scale and a
//! shift per channel.

use super::onnx_node::{weight_as, OnnxAttribute::Float, OnnxNode};
use super::rule::image;
use super::{Layer, Spec};
use crate::nn::{self, Mode};

/// The profiler label of a normalization fused with the activation after it.
const FUSED: &str = "norm+activation";
use crate::{Tape, Var};
use rand::RngCore;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNorm {}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceNorm {}

impl Spec for BatchNorm {
    fn kind(&self) -> &'static str {
        "batch_norm"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }

    fn parameter_count(&self, input: &[usize]) -> Option<usize> {
        input.first()?.checked_mul(2)
    }

    fn build(&self, input: &[usize], _rng: &mut dyn RngCore) -> Box<dyn Layer> {
        Box::new(nn::BatchNorm::new(input[0]))
    }
}

impl Spec for InstanceNorm {
    fn kind(&self) -> &'static str {
        "instance_norm"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        image(self.kind(), input).map(|_| input.to_vec())
    }

    fn parameter_count(&self, input: &[usize]) -> Option<usize> {
        input.first()?.checked_mul(2)
    }

    fn build(&self, input: &[usize], _rng: &mut dyn RngCore) -> Box<dyn Layer> {
        Box::new(nn::InstanceNorm::new(input[0]))
    }
}

impl Layer for nn::BatchNorm {
    fn kind(&self) -> &'static str {
        "batch_norm"
    }

    fn forward(&mut self, tape: &Tape, x: &Var, mode: Mode) -> Var {
        nn::BatchNorm::forward(self, tape, x, mode)
    }

    fn forward_then(&mut self, tape: &Tape, x: &Var, mode: Mode, next: &dyn Layer) -> Option<Var> {
        let act = next.as_activation(tape)?;
        Some(tape.span(FUSED, || {
            nn::BatchNorm::forward_with(self, tape, x, mode, &act)
        }))
    }

    /// The inference form: the running statistics.
    fn onnx(&self, _input: &[usize]) -> Vec<OnnxNode<'_>> {
        let c = self.gamma.value().len();
        let inputs = vec![
            weight_as("weight", self.gamma.value(), vec![c]),
            weight_as("bias", self.beta.value(), vec![c]),
            weight_as("running_mean", &self.running.mean, vec![c]),
            weight_as("running_var", &self.running.var, vec![c]),
        ];
        let attributes = vec![Float("epsilon", self.eps)];
        vec![OnnxNode::with_weights(
            "BatchNormalization",
            inputs,
            attributes,
        )]
    }
}

impl Layer for nn::InstanceNorm {
    fn kind(&self) -> &'static str {
        "instance_norm"
    }

    fn forward(&mut self, tape: &Tape, x: &Var, _mode: Mode) -> Var {
        nn::InstanceNorm::forward(self, tape, x)
    }

    fn forward_then(&mut self, tape: &Tape, x: &Var, _mode: Mode, next: &dyn Layer) -> Option<Var> {
        let act = next.as_activation(tape)?;
        Some(tape.span(FUSED, || {
            nn::InstanceNorm::forward_with(self, tape, x, &act)
        }))
    }

    fn onnx(&self, _input: &[usize]) -> Vec<OnnxNode<'_>> {
        let c = self.gamma.value().len();
        let inputs = vec![
            weight_as("weight", self.gamma.value(), vec![c]),
            weight_as("bias", self.beta.value(), vec![c]),
        ];
        let attributes = vec![Float("epsilon", self.eps)];
        vec![OnnxNode::with_weights(
            "InstanceNormalization",
            inputs,
            attributes,
        )]
    }
}
