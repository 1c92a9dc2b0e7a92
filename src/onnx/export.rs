//! Export of a trained VAE's decoder (`z -> image`) or encoder (`image -> mu, logvar`) as
//! an ONNX model (opset 13, IR 7): weights as initializers, the batch dimension symbolic
//! (`dim_param "N"`), batch norm in inference form (running statistics).

use super::proto::*;
use crate::config::PixelRange;
use crate::model::{Layer, Vae};
use crate::nn::Linear;
use crate::{Error, Result, Tensor};
use std::path::Path;

pub const OPSET: i64 = 13;
pub const IR_VERSION: i64 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Decoder,
    Encoder,
}

/// Nodes and initializers in the order they are added.
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
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

    fn gemm(&mut self, name: &str, x: String, l: &Linear) -> String {
        let w = l.weight.value();
        let mut inputs = vec![x, self.weight(&format!("{name}.weight"), w, w.shape())];
        if let Some(b) = &l.bias {
            inputs.push(self.weight(&format!("{name}.bias"), b.value(), b.value().shape()));
        }
        self.node("Gemm", name, inputs, vec![int("transB", 1)])
    }

    /// One layer applied to `x`, whose per-sample shape is `input`.
    fn layer(&mut self, name: &str, layer: &Layer, x: String, input: &[usize]) -> Result<String> {
        let p = |s: &str| format!("{name}.{s}");
        Ok(match layer {
            Layer::Conv2d(c) => {
                let w = c.weight.value();
                let (k_h, k_w) = (w.shape()[2], w.shape()[3]);
                let (sh, sw) = c.spec.stride;
                // "same" padding resolves to explicit amounts for the known input size.
                let (top, bottom, left, right) =
                    c.spec.padding.resolve(input[1], input[2], k_h, k_w, sh, sw);
                let mut inputs = vec![x, self.weight(&p("weight"), w, w.shape())];
                if let Some(b) = &c.bias {
                    inputs.push(self.weight(&p("bias"), b.value(), b.value().shape()));
                }
                let attrs = vec![
                    ints("kernel_shape", &[k_h as i64, k_w as i64]),
                    ints("strides", &[sh as i64, sw as i64]),
                    ints(
                        "pads",
                        &[top as i64, left as i64, bottom as i64, right as i64],
                    ),
                ];
                self.node("Conv", name, inputs, attrs)
            }
            Layer::ConvTranspose2d(c) => {
                let w = c.weight.value();
                let (k_h, k_w) = (w.shape()[2], w.shape()[3]);
                let s = c.spec;
                let mut inputs = vec![x, self.weight(&p("weight"), w, w.shape())];
                if let Some(b) = &c.bias {
                    inputs.push(self.weight(&p("bias"), b.value(), b.value().shape()));
                }
                let (ph, pw) = (s.padding.0 as i64, s.padding.1 as i64);
                let attrs = vec![
                    ints("kernel_shape", &[k_h as i64, k_w as i64]),
                    ints("strides", &[s.stride.0 as i64, s.stride.1 as i64]),
                    ints("pads", &[ph, pw, ph, pw]),
                    ints(
                        "output_padding",
                        &[s.output_padding.0 as i64, s.output_padding.1 as i64],
                    ),
                ];
                self.node("ConvTranspose", name, inputs, attrs)
            }
            Layer::Linear(l) => self.gemm(name, x, l),
            Layer::BatchNorm(bn) => {
                let c = bn.gamma.value().len();
                let inputs = vec![
                    x,
                    self.weight(&p("weight"), bn.gamma.value(), &[c]),
                    self.weight(&p("bias"), bn.beta.value(), &[c]),
                    self.weight(&p("running_mean"), &bn.running.mean, &[c]),
                    self.weight(&p("running_var"), &bn.running.var, &[c]),
                ];
                self.node(
                    "BatchNormalization",
                    name,
                    inputs,
                    vec![float("epsilon", bn.eps)],
                )
            }
            Layer::InstanceNorm(n) => {
                let c = n.gamma.value().len();
                let inputs = vec![
                    x,
                    self.weight(&p("weight"), n.gamma.value(), &[c]),
                    self.weight(&p("bias"), n.beta.value(), &[c]),
                ];
                self.node(
                    "InstanceNormalization",
                    name,
                    inputs,
                    vec![float("epsilon", n.eps)],
                )
            }
            Layer::PRelu(pr) => {
                // The slope broadcasts from the right: [C, 1, 1] against [N, C, H, W].
                let slope = pr.slope.value();
                let mut shape = vec![slope.len()];
                if slope.len() > 1 {
                    shape.extend(std::iter::repeat_n(1, input.len().saturating_sub(1)));
                }
                let inputs = vec![x, self.weight(&p("weight"), slope, &shape)];
                self.node("PRelu", name, inputs, vec![])
            }
            Layer::Relu => self.node("Relu", name, vec![x], vec![]),
            Layer::LeakyRelu(alpha) => {
                self.node("LeakyRelu", name, vec![x], vec![float("alpha", *alpha)])
            }
            Layer::Sigmoid => self.node("Sigmoid", name, vec![x], vec![]),
            Layer::Tanh => self.node("Tanh", name, vec![x], vec![]),
            Layer::Flatten => self.node("Flatten", name, vec![x], vec![int("axis", 1)]),
            Layer::Reshape(shape) => {
                let mut dims = vec![-1i64];
                dims.extend(shape.iter().map(|&d| d as i64));
                self.initializers.push(TensorProto {
                    dims: vec![dims.len() as i64],
                    data_type: INT64,
                    name: p("shape"),
                    int64_data: dims,
                    ..Default::default()
                });
                self.node("Reshape", name, vec![x, p("shape")], vec![])
            }
        })
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
pub fn export(model: &Vae, part: Part) -> Result<ModelProto> {
    let shapes = model.config.validate()?;
    let m = &model.config.model;
    if !m.conditions.is_empty() {
        return Err(Error::Invalid(format!(
            "model \"{}\" is a conditional VAE ({} conditions); exporting conditional models \
             to ONNX is not supported yet",
            m.name,
            m.conditions.len()
        )));
    }
    let mut g = Graph {
        nodes: vec![],
        initializers: vec![],
    };
    let (inputs, outputs) = match part {
        Part::Decoder => {
            let mut x = "z".to_string();
            let mut input = vec![m.latent];
            for (i, layer) in model.decoder.iter().enumerate() {
                x = g.layer(&format!("decoder.{i}"), layer, x, &input)?;
                input = shapes.decoder[i].clone();
            }
            if x == "z" {
                return Err(Error::Invalid("the decoder has no layers to export".into()));
            }
            g.rename_output(&x, "image")?;
            (
                vec![value_info("z", &[m.latent])],
                vec![value_info("image", &[m.channels, m.height, m.width])],
            )
        }
        Part::Encoder => {
            let mut x = "image".to_string();
            let mut input = shapes.input.clone();
            for (i, layer) in model.encoder.iter().enumerate() {
                x = g.layer(&format!("encoder.{i}"), layer, x, &input)?;
                input = shapes.encoder[i].clone();
            }
            let mu = g.gemm("mu", x.clone(), &model.mu);
            let logvar = g.gemm("logvar", x, &model.logvar);
            g.rename_output(&mu, "mu")?;
            g.rename_output(&logvar, "logvar")?;
            (
                vec![value_info("image", &shapes.input)],
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
        metadata_props: vec![
            StringStringEntryProto {
                key: "vae-cpu.part".into(),
                value: part_name.into(),
            },
            StringStringEntryProto {
                key: "vae-cpu.pixel_range".into(),
                value: range.into(),
            },
        ],
        ..Default::default()
    })
}

/// Writes the model's protobuf bytes atomically.
pub fn write(path: &Path, model: &ModelProto) -> Result<()> {
    crate::atomic_file::write(path, &prost::Message::encode_to_vec(model))
}
