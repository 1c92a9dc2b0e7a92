//! A layer's ONNX form, described without the protobuf types: the op, its inputs (the
//! previous value, or the layer's own weights) and its attributes. `onnx::export` turns
//! these into graph nodes and initializers named `{layer}.{input name}`.

use crate::{Param, Tensor};
use std::borrow::Cow;

pub struct OnnxNode<'a> {
    pub op: &'static str,
    pub inputs: Vec<OnnxInput<'a>>,
    pub attributes: Vec<OnnxAttribute>,
}

pub enum OnnxInput<'a> {
    /// The value flowing in: the graph input or the previous node's output.
    Previous,
    /// The value that flowed into the layer's first node (for a node that reads it again).
    LayerInput,
    /// A float initializer with the shape it is written with: the layer's own tensor, or
    /// one computed for the export (a rearranged or folded weight).
    Weight {
        name: &'static str,
        values: Cow<'a, Tensor>,
        shape: Vec<usize>,
    },
    /// An int64 initializer (a Reshape's target shape).
    Ints {
        name: &'static str,
        values: Vec<i64>,
    },
}

pub enum OnnxAttribute {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
    Float(&'static str, f32),
}

impl<'a> OnnxNode<'a> {
    /// A node reading the previous value only.
    pub fn unary(op: &'static str, attributes: Vec<OnnxAttribute>) -> Self {
        OnnxNode {
            op,
            inputs: vec![OnnxInput::Previous],
            attributes,
        }
    }

    /// A node reading the previous value and the given weights in order.
    pub fn with_weights(
        op: &'static str,
        weights: Vec<OnnxInput<'a>>,
        attributes: Vec<OnnxAttribute>,
    ) -> Self {
        let mut inputs = vec![OnnxInput::Previous];
        inputs.extend(weights);
        OnnxNode {
            op,
            inputs,
            attributes,
        }
    }
}

/// A weight written with its own shape.
pub fn weight<'a>(name: &'static str, values: &'a Tensor) -> OnnxInput<'a> {
    OnnxInput::Weight {
        name,
        values: Cow::Borrowed(values),
        shape: values.shape().to_vec(),
    }
}

/// A weight written with the given shape (same number of values).
pub fn weight_as<'a>(name: &'static str, values: &'a Tensor, shape: Vec<usize>) -> OnnxInput<'a> {
    OnnxInput::Weight {
        name,
        values: Cow::Borrowed(values),
        shape,
    }
}

/// A weight computed for the export (rearranged or folded), written with its own shape.
pub fn weight_owned<'a>(name: &'static str, values: Tensor) -> OnnxInput<'a> {
    OnnxInput::Weight {
        name,
        shape: values.shape().to_vec(),
        values: Cow::Owned(values),
    }
}

/// A layer's weight, then its bias if it has one.
pub fn weight_and_bias<'a>(w: &'a Param, b: &'a Option<Param>) -> Vec<OnnxInput<'a>> {
    let mut inputs = vec![weight("weight", w.value())];
    inputs.extend(b.as_ref().map(|b| weight("bias", b.value())));
    inputs
}
