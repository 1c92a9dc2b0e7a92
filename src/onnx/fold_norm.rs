//! Folding an inference-form batch norm into the Conv, ConvTranspose or Gemm before it:
//! `γ·(y - μ)/√(σ² + ε) + β = a·y + c` with `a = γ/√(σ² + ε)`, `c = β - a·μ`, so the
//! product's weights of output channel `o` are scaled by `a[o]` and its bias becomes
//! `a[o]·b[o] + c[o]`. The same function with one node less (exact up to rounding).
//!
//! A sub-pixel Conv's channels are `phase·O + o` (see `ops::sub_pixel`), and the
//! DepthToSpace and Slice after it keep channels apart, so the fold reaches through them
//! with `o = channel mod O`.

use crate::layers::onnx_node::{weight_owned, OnnxAttribute, OnnxInput, OnnxNode};
use crate::Tensor;

/// One layer's nodes, under the layer's name.
pub type Described<'a> = (String, Vec<OnnxNode<'a>>);

/// Removes every batch norm layer that directly follows a layer ending in a product (with
/// only DepthToSpace or Slice after it) and folds it into that product.
pub fn fold_batch_norms(layers: &mut Vec<Described<'_>>) {
    let mut i = 1;
    while i < layers.len() {
        let affine = match layers[i].1.as_slice() {
            [norm] if norm.op == "BatchNormalization" => inference_affine(norm),
            _ => None,
        };
        let target = affine
            .as_ref()
            .and_then(|_| product_before(&mut layers[i - 1].1));
        match (affine, target) {
            (Some((a, c)), Some(product)) => {
                fold_into(product, &a, &c);
                layers.remove(i);
            }
            _ => i += 1,
        }
    }
}

/// The float initializer called `name` among a node's inputs.
fn weight<'n>(node: &'n OnnxNode<'_>, name: &str) -> Option<&'n Tensor> {
    node.inputs.iter().find_map(|input| match input {
        OnnxInput::Weight {
            name: n, values, ..
        } if *n == name => Some(values.as_ref()),
        _ => None,
    })
}

/// `(a, c)` of a BatchNormalization node: `y ↦ a·y + c` per channel.
fn inference_affine(norm: &OnnxNode<'_>) -> Option<(Vec<f32>, Vec<f32>)> {
    let eps = norm.attributes.iter().find_map(|a| match a {
        OnnxAttribute::Float("epsilon", e) => Some(*e),
        _ => None,
    })?;
    let gamma = weight(norm, "weight")?;
    let beta = weight(norm, "bias")?;
    let mean = weight(norm, "running_mean")?;
    let var = weight(norm, "running_var")?;
    let a: Vec<f32> = gamma
        .iter()
        .zip(var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let c = a
        .iter()
        .zip(beta.iter().zip(mean))
        .map(|(a, (b, m))| b - a * m)
        .collect();
    Some((a, c))
}

/// The last Conv, ConvTranspose or Gemm of `nodes` when only channel-preserving nodes
/// (DepthToSpace, Slice) follow it.
fn product_before<'n, 'a>(nodes: &'n mut [OnnxNode<'a>]) -> Option<&'n mut OnnxNode<'a>> {
    let last = nodes
        .iter()
        .rposition(|n| !matches!(n.op, "DepthToSpace" | "Slice"))?;
    let node = &mut nodes[last];
    matches!(node.op, "Conv" | "ConvTranspose" | "Gemm").then_some(node)
}

/// Scales the product's output channels by `a` and sets its bias to `a·b + c`.
fn fold_into(product: &mut OnnxNode<'_>, a: &[f32], c: &[f32]) {
    // The axis of the weight that indexes output channels.
    let axis = if product.op == "ConvTranspose" { 1 } else { 0 };
    let n = a.len();
    let mut channels = 0;
    for input in product.inputs.iter_mut() {
        if let OnnxInput::Weight {
            name: "weight",
            values,
            ..
        } = input
        {
            let w = values.to_mut();
            channels = w.shape()[axis];
            for (index, v) in w.indexed_iter_mut() {
                *v *= a[index[axis] % n];
            }
        }
    }
    let old_bias = weight(product, "bias").cloned();
    let bias = Tensor::from_shape_fn(vec![channels], |d| {
        let o = d[0] % n;
        a[o] * old_bias.as_ref().map_or(0.0, |b| b[[d[0]]]) + c[o]
    });
    product
        .inputs
        .retain(|i| !matches!(i, OnnxInput::Weight { name: "bias", .. }));
    product.inputs.push(weight_owned("bias", bias));
}
