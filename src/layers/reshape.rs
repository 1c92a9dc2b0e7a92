//! `flatten` (each sample to `[C·H·W]`) and `reshape` (each sample to a given shape with
//! the same number of values, e.g. `[512, 2, 2]` after a decoder's first linear layer).

use super::onnx_node::{OnnxAttribute::Int, OnnxInput, OnnxNode};
use super::{Layer, Spec};
use crate::nn::{Mode, Module, Slot};
use crate::{ops, Tape, Var};
use rand::RngCore;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Flatten {}

/// Reshape each sample to `[C, H, W]` (or any shape with the same size).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reshape {
    pub shape: Vec<usize>,
}

impl Spec for Flatten {
    fn kind(&self) -> &'static str {
        "flatten"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(vec![input.iter().product()])
    }

    fn build(&self, _input: &[usize], _rng: &mut dyn RngCore) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

impl Spec for Reshape {
    fn kind(&self) -> &'static str {
        "reshape"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let shape = &self.shape;
        let from: usize = input.iter().product();
        let to = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if to == Some(from) && !shape.is_empty() {
            Ok(shape.clone())
        } else {
            let to = to.map_or("too many".into(), |t| t.to_string());
            Err(format!(
                "cannot reshape {input:?} ({from} values) to {shape:?} ({to} values)"
            ))
        }
    }

    fn build(&self, _input: &[usize], _rng: &mut dyn RngCore) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

impl Module for Flatten {
    fn visit(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, Slot<'_>)) {}
}

impl Module for Reshape {
    fn visit(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, Slot<'_>)) {}
}

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "flatten"
    }

    fn forward(&mut self, _tape: &Tape, x: &Var, _mode: Mode) -> Var {
        ops::flatten(x)
    }

    fn onnx(&self, _input: &[usize]) -> Vec<OnnxNode<'_>> {
        vec![OnnxNode::unary("Flatten", vec![Int("axis", 1)])]
    }
}

impl Layer for Reshape {
    fn kind(&self) -> &'static str {
        "reshape"
    }

    fn forward(&mut self, _tape: &Tape, x: &Var, _mode: Mode) -> Var {
        let mut full = vec![x.shape()[0]];
        full.extend_from_slice(&self.shape);
        ops::reshape(x, &full)
    }

    fn onnx(&self, _input: &[usize]) -> Vec<OnnxNode<'_>> {
        // The batch dimension stays as it is (-1).
        let mut dims = vec![-1i64];
        dims.extend(self.shape.iter().map(|&d| d as i64));
        let shape = OnnxInput::Ints {
            name: "shape",
            values: dims,
        };
        vec![OnnxNode::with_weights("Reshape", vec![shape], vec![])]
    }
}
