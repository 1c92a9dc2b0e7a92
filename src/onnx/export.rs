//! Export of a trained VAE's decoder (`z -> image`) or encoder (`image -> mu, logvar`) as
//! an ONNX model (opset 13, IR 7): weights as initializers, the batch dimension symbolic
//! (`dim_param "N"`), batch norm in inference form (running statistics). By default the
//! graph is written for speed in runtimes: strided transposed convolutions as sub-pixel
//! convolutions and batch norms folded into the product before them ([`ExportOptions`]).
//! A conditional VAE's decoder takes a second input `cond` (`[N, conditions]`) that is
//! concatenated to z, and lists its condition names in the metadata.

use super::fold_norm::{fold_batch_norms, Described};
use super::proto::*;
use super::{CONDITIONS_KEY, PIXEL_RANGE_KEY};
use crate::config::PixelRange;
use crate::config::PlannedLayer;
use crate::layers::onnx_node::{OnnxAttribute, OnnxInput, OnnxNode};
use crate::layers::{gemm_node, Layer};
use crate::model::Vae;
use crate::{Error, Result, Tensor};
use std::path::Path;

pub const OPSET: i64 = 13;
pub const IR_VERSION: i64 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Decoder,
    Encoder,
}

/// How the layers are written. The default is the fast graph; `ExportOptions::literal()`
/// writes one ONNX op per engine op, as the layers are defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// Each layer's faster form where it has one ([`Layer::onnx_fast`]): transposed
    /// convolutions as Conv -> DepthToSpace -> Slice, PReLU as Max/Min(x, a·x).
    pub fast_layers: bool,
    /// Batch norms folded into the Conv, ConvTranspose or Gemm before them.
    pub fold_batch_norm: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            fast_layers: true,
            fold_batch_norm: true,
        }
    }
}

impl ExportOptions {
    pub fn literal() -> Self {
        ExportOptions {
            fast_layers: false,
            fold_batch_norm: false,
        }
    }
}

/// Nodes and initializers in the order they are added.
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    options: ExportOptions,
}

pub fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: values.to_vec(),
        r#type: ATTR_INTS,
        ..Default::default()
    }
}

pub fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: value,
        r#type: ATTR_INT,
        ..Default::default()
    }
}

/// An attribute of a layer's ONNX form as a protobuf attribute.
fn attribute(a: OnnxAttribute) -> AttributeProto {
    match a {
        OnnxAttribute::Int(name, v) => int(name, v),
        OnnxAttribute::Ints(name, v) => ints(name, &v),
        OnnxAttribute::Float(name, v) => float(name, v),
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: value,
        r#type: ATTR_FLOAT,
        ..Default::default()
    }
}

/// A tensor value type `[N, dims...]` with the batch dimension symbolic.
pub fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let mut dim = vec![Dimension {
        value: Some(DimensionValue::DimParam("N".into())),
    }];
    dim.extend(dims.iter().map(|&d| Dimension {
        value: Some(DimensionValue::DimValue(d as i64)),
    }));
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

impl Graph {
    /// Adds a float initializer with the given shape (f32 little-endian raw data).
    fn weight(&mut self, name: &str, t: &Tensor, shape: &[usize]) -> String {
        self.initializers.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.into(),
            raw_data: crate::checkpoint::f32_to_le_bytes(t),
            ..Default::default()
        });
        name.into()
    }

    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: Vec<String>,
        attrs: Vec<AttributeProto>,
    ) -> String {
        let output = format!("{name}.out");
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![output.clone()],
            name: name.into(),
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
        output
    }

    /// The nodes of one layer (or head) applied to `x`; returns the last node's output.
    /// A single node is named `name`, several `name.0`, `name.1`...; each node's weights
    /// are named after it (`decoder.3.weight`).
    fn layer(&mut self, name: &str, nodes: Vec<OnnxNode<'_>>, mut x: String) -> String {
        let single = nodes.len() == 1;
        let layer_input = x.clone();
        for (k, node) in nodes.into_iter().enumerate() {
            let node_name = if single {
                name.to_string()
            } else {
                format!("{name}.{k}")
            };
            let inputs = node
                .inputs
                .into_iter()
                .map(|input| self.input(&node_name, input, &x, &layer_input))
                .collect();
            let attrs = node.attributes.into_iter().map(attribute).collect();
            x = self.node(node.op, &node_name, inputs, attrs);
        }
        x
    }

    /// The layers of one section (`encoder`, `decoder`) in order, starting from `x`.
    fn layers(
        &mut self,
        section: &str,
        layers: &[Box<dyn Layer>],
        plan: &[PlannedLayer],
        mut x: String,
    ) -> String {
        let mut described: Vec<Described<'_>> = layers
            .iter()
            .zip(plan)
            .enumerate()
            .map(|(i, (layer, planned))| {
                let fast = self.options.fast_layers;
                let nodes = fast.then(|| layer.onnx_fast(&planned.input)).flatten();
                let nodes = nodes.unwrap_or_else(|| layer.onnx(&planned.input));
                (format!("{section}.{i}"), nodes)
            })
            .collect();
        if self.options.fold_batch_norm {
            fold_batch_norms(&mut described);
        }
        for (name, nodes) in described {
            x = self.layer(&name, nodes, x);
        }
        x
    }

    /// The name of one node input, its initializer added when it is a weight.
    fn input(
        &mut self,
        node: &str,
        input: OnnxInput<'_>,
        previous: &str,
        layer_input: &str,
    ) -> String {
        match input {
            OnnxInput::Previous => previous.to_string(),
            OnnxInput::LayerInput => layer_input.to_string(),
            OnnxInput::Weight {
                name,
                values,
                shape,
            } => self.weight(&format!("{node}.{name}"), &values, &shape),
            OnnxInput::Ints { name, values } => {
                let name = format!("{node}.{name}");
                self.initializers.push(TensorProto {
                    dims: vec![values.len() as i64],
                    data_type: INT64,
                    name: name.clone(),
                    int64_data: values,
                    ..Default::default()
                });
                name
            }
        }
    }

    /// Renames the output of the node that produced `from` to `to`.
    fn rename_output(&mut self, from: &str, to: &str) -> Result<()> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.output.iter().any(|o| o == from))
            .ok_or_else(|| Error::Invalid(format!("nothing produces {from}")))?;
        for o in node.output.iter_mut().filter(|o| *o == from) {
            *o = to.into();
        }
        Ok(())
    }
}

/// Builds the ONNX model of one part of `model`.
pub fn export(model: &Vae, part: Part, options: &ExportOptions) -> Result<ModelProto> {
    let m = &model.config.model;
    if part == Part::Encoder && !m.conditions.is_empty() {
        return Err(Error::Invalid(format!(
            "model \"{}\" is a conditional VAE ({} conditions); its encoder does not export \
             to ONNX (its decoder does, with a second input \"cond\")",
            m.name,
            m.conditions.len()
        )));
    }
    let mut g = Graph {
        nodes: vec![],
        initializers: vec![],
        options: *options,
    };
    let plan = &model.plan;
    let (inputs, outputs) = match part {
        Part::Decoder => {
            if model.decoder.is_empty() {
                return Err(Error::Invalid("the decoder has no layers to export".into()));
            }
            let (z, inputs) = decoder_inputs(&mut g, m.latent, m.conditions.len());
            let x = g.layers("decoder", &model.decoder, &plan.decoder, z);
            g.rename_output(&x, "image")?;
            (inputs, vec![value_info("image", &plan.input)])
        }
        Part::Encoder => {
            let x = g.layers("encoder", &model.encoder, &plan.encoder, "image".into());
            let mu = g.layer("mu", vec![gemm_node(&model.mu)], x.clone());
            let logvar = g.layer("logvar", vec![gemm_node(&model.logvar)], x);
            g.rename_output(&mu, "mu")?;
            g.rename_output(&logvar, "logvar")?;
            (
                vec![value_info("image", &plan.input)],
                vec![
                    value_info("mu", &[m.latent]),
                    value_info("logvar", &[m.latent]),
                ],
            )
        }
    };
    let range = match model.config.data.pixel_range {
        PixelRange::Unit => "unit",
        PixelRange::Symmetric => "symmetric",
    };
    let part_name = match part {
        Part::Decoder => "decoder",
        Part::Encoder => "encoder",
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "vae-cpu".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("The {part_name} of the VAE \"{}\"", m.name),
        graph: Some(GraphProto {
            node: g.nodes,
            name: format!("{}-{part_name}", m.name),
            initializer: g.initializers,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: metadata(&[
            ("vae-cpu.part", part_name),
            (PIXEL_RANGE_KEY, range),
            (CONDITIONS_KEY, &m.conditions.join(",")),
        ]),
        ..Default::default()
    })
}

/// The entries with a value.
fn metadata(entries: &[(&str, &str)]) -> Vec<StringStringEntryProto> {
    entries
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| StringStringEntryProto {
            key: key.to_string(),
            value: value.to_string(),
        })
        .collect()
}

/// The decoder's graph inputs, and the value its first layer reads: `z`, or for a
/// conditional model `Concat(z, cond)` along the features.
fn decoder_inputs(
    g: &mut Graph,
    latent: usize,
    conditions: usize,
) -> (String, Vec<ValueInfoProto>) {
    if conditions == 0 {
        return ("z".into(), vec![value_info("z", &[latent])]);
    }
    let inputs = vec![
        value_info("z", &[latent]),
        value_info("cond", &[conditions]),
    ];
    let joined = g.node(
        "Concat",
        "condition",
        vec!["z".into(), "cond".into()],
        vec![int("axis", 1)],
    );
    (joined, inputs)
}

/// Writes the model's protobuf bytes atomically.
pub fn write(path: &Path, model: &ModelProto) -> Result<()> {
    crate::atomic_file::write(path, &prost::Message::encode_to_vec(model))
}
