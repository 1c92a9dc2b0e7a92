//! Reading the perceptual loss's feature network ([`FeatureNet`]) from an ONNX file: the
//! graph is followed from its input through a chain of Conv / Relu / MaxPool nodes; the
//! first node of another type (Flatten, Gemm, ...) ends the part used. Weights come through
//! [`Weights`] (inline, external data, Identity and Constant forms).

use super::import::Weights;
use super::proto::{ModelProto, NodeProto};
use crate::config::{FeatureNormalize, PixelRange};
use crate::model::feature_net::{FeatureNet, Stage};
use crate::model::Vae;
use crate::ops::{Conv2dSpec, MaxPoolSpec, Padding};
use crate::{Error, Result};
use prost::Message;
use std::path::Path;

/// Reads the network from `path` (weights inline or in external data files beside it);
/// `layers` names the outputs to compare (empty: the default taps). Errors name the file
/// and the node.
pub fn load(
    path: &Path,
    layers: &[String],
    normalize: FeatureNormalize,
    range: PixelRange,
) -> Result<FeatureNet> {
    crate::error::parse_file(path, |bytes| {
        let model = ModelProto::decode(bytes)
            .map_err(|e| format!("not an ONNX model (protobuf decoding failed: {e})"))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        from_model(&model, Some(dir), layers, normalize, range)
    })
}

/// Loads the feature network `exp.feature_net` names into `model` (training and
/// evaluation need it; the latent tools do not). Without one configured, nothing happens.
pub fn attach(model: &mut Vae) -> Result<()> {
    let (exp, m) = (&model.config.exp, &model.config.model);
    let Some(path) = &exp.feature_net else {
        return Ok(());
    };
    let pixels = model.config.data.pixel_range;
    let net = load(path, &exp.feature_layers, exp.feature_normalize, pixels)?;
    net.check_input(m.channels, m.height, m.width)
        .map_err(|message| Error::File {
            path: path.clone(),
            message: format!("does not fit model \"{}\": {message}", m.name),
        })?;
    model.feature_net = Some(net);
    Ok(())
}

/// The network of `model`; `dir` is the folder its external data lies in (`None`: a
/// model built in memory, whose weights must be inline).
pub fn from_model(
    model: &ModelProto,
    dir: Option<&Path>,
    layers: &[String],
    normalize: FeatureNormalize,
    range: PixelRange,
) -> std::result::Result<FeatureNet, String> {
    let graph = model.graph.as_ref().ok_or("the model has no graph")?;
    let weights = Weights::new(graph, dir);
    let mut current = graph
        .input
        .iter()
        .map(|i| i.name.clone())
        .find(|n| !weights.is_initializer(n))
        .ok_or("the graph has no input")?;
    let mut stages = vec![];
    let mut used = vec![false; graph.node.len()];
    while let Some(k) = graph
        .node
        .iter()
        .position(|n| n.input.first() == Some(&current))
    {
        let node = &graph.node[k];
        let what = format!("node \"{}\" ({})", node.name, node.op_type);
        // Found by the fuzzer: a node whose output feeds an earlier node looped forever.
        if std::mem::replace(&mut used[k], true) {
            return Err(format!("{what}: the graph has a cycle"));
        }
        let stage = match node.op_type.as_str() {
            "Conv" => conv_stage(node, &weights).map_err(|e| format!("{what}: {e}"))?,
            "Relu" => Stage::Relu,
            "MaxPool" => max_pool_stage(node).map_err(|e| format!("{what}: {e}"))?,
            _ => break,
        };
        current = node
            .output
            .first()
            .cloned()
            .ok_or(format!("{what} has no output"))?;
        stages.push((current.clone(), stage));
    }
    FeatureNet::new(stages, layers, normalize, range)
}

fn ints(node: &NodeProto, name: &str, default: Vec<i64>) -> Vec<i64> {
    node.attribute(name).map_or(default, |a| a.ints.clone())
}

/// A Conv node: group 1, dilation 1, explicit pads smaller than the kernel.
fn conv_stage(node: &NodeProto, weights: &Weights) -> std::result::Result<Stage, String> {
    if node.attribute("group").is_some_and(|a| a.i != 1)
        || ints(node, "dilations", vec![1, 1]) != [1, 1]
        || node.auto_pads()
    {
        return Err("only group 1, dilation 1 and explicit pads are supported".into());
    }
    let weight = node.input.get(1).ok_or("it has no weight input")?;
    let weight = weights
        .resolve(weight)
        .map_err(|e| format!("its weight: {e}"))?;
    let [_, _, kh, kw] = *weight.shape() else {
        return Err("the weight must be [out, in, kh, kw]".into());
    };
    let bias = match node.optional_input(2) {
        Some(b) => Some(weights.resolve(b).map_err(|e| format!("its bias: {e}"))?),
        None => None,
    };
    if bias
        .as_ref()
        .is_some_and(|b| b.shape() != [weight.shape()[0]])
    {
        return Err("the bias does not match the weight".into());
    }
    let kernel = ints(node, "kernel_shape", vec![kh as i64, kw as i64]);
    let usize_of = |v: &[i64]| {
        v.iter()
            .map(|&x| usize::try_from(x).ok().filter(|&x| x <= 4096))
            .collect::<Option<Vec<_>>>()
    };
    let strides = usize_of(&ints(node, "strides", vec![1, 1]));
    let pads = usize_of(&ints(node, "pads", vec![0; 4]));
    let (Some(strides), Some(pads)) = (strides, pads) else {
        return Err("bad strides or pads".into());
    };
    if pads.iter().zip([kh, kw, kh, kw]).any(|(&p, k)| p >= k) {
        return Err("pads as large as the kernel are not supported".into());
    }
    if kernel != [kh as i64, kw as i64]
        || strides.len() != 2
        || pads.len() != 4
        || strides.contains(&0)
    {
        return Err("kernel_shape, strides or pads do not describe a 2-d convolution".into());
    }
    // ONNX pads are [top, left, bottom, right].
    let padding = Padding::Explicit {
        top: pads[0],
        left: pads[1],
        bottom: pads[2],
        right: pads[3],
    };
    Ok(Stage::Conv {
        weight: Box::new(weight),
        bias,
        spec: Conv2dSpec {
            stride: (strides[0], strides[1]),
            padding,
        },
    })
}

/// A MaxPool node: square kernel, stride and pads, no ceil_mode or dilation.
fn max_pool_stage(node: &NodeProto) -> std::result::Result<Stage, String> {
    let kernel = ints(node, "kernel_shape", vec![]);
    let strides = ints(node, "strides", vec![1, 1]);
    let pads = ints(node, "pads", vec![0; 4]);
    let square = |v: &[i64]| v.iter().all(|&x| x == v[0]) && !v.is_empty();
    if kernel.len() != 2
        || !square(&kernel)
        || strides.len() != 2
        || !square(&strides)
        || pads.len() != 4
        || !square(&pads)
        || node.attribute("ceil_mode").is_some_and(|a| a.i != 0)
        || ints(node, "dilations", vec![1, 1]) != [1, 1]
        || node.auto_pads()
        || !(1..=64).contains(&kernel[0])
        || !(1..=64).contains(&strides[0])
        || !(0..=32).contains(&pads[0])
    {
        return Err("only square kernels, strides and pads without ceil_mode are supported".into());
    }
    Ok(Stage::MaxPool(MaxPoolSpec {
        kernel: kernel[0] as usize,
        stride: strides[0] as usize,
        padding: pads[0] as usize,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::tiny_vgg::tiny_vgg;

    /// Why `model` is refused.
    fn refusal(model: &ModelProto) -> String {
        from_model(model, None, &[], FeatureNormalize::None, PixelRange::Unit)
            .err()
            .expect("refused")
    }

    #[test]
    fn unsupported_nodes_are_refused_with_their_name() {
        let mut model = tiny_vgg(3, 1, None);
        let conv = &mut model.graph.as_mut().unwrap().node[2];
        conv.attribute.push(crate::onnx::export::int("group", 2));
        let e = refusal(&model);
        assert!(e.contains("conv1_2") && e.contains("group"), "{e}");
        // Found by the fuzzer: a node feeding an earlier one looped forever.
        let mut model = tiny_vgg(3, 1, None);
        model.graph.as_mut().unwrap().node[5].output = vec!["relu1_2".into()];
        let e = refusal(&model);
        assert!(e.contains("cycle"), "{e}");
        // Found by the fuzzer: a NaN weight made every loss NaN.
        let mut model = tiny_vgg(3, 1, None);
        let w = &mut model.graph.as_mut().unwrap().initializer[0];
        w.raw_data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        let e = refusal(&model);
        assert!(e.contains("conv1_1.w") && e.contains("NaN"), "{e}");
    }
}
