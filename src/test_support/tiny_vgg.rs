//! A small VGG-style feature network with seeded random weights, written with our own
//! messages: Conv(3->8, 3x3, pads 1) Relu Conv(8->8) Relu MaxPool(2) Conv(8->16) Relu
//! MaxPool(2) Conv(16->16) Relu, then Flatten and Gemm (where a feature network stops).
//! Tests use it for the perceptual loss (a real VGG19 is 550 MB). Its declared input is
//! `[N, channels, 16, 16]`; the feature loss itself takes any size.

use crate::onnx::export::{int, ints, value_info, IR_VERSION, OPSET};
use crate::onnx::proto::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The network, for `channels`-channel inputs; its graph output is the node output
/// `output` (e.g. `"relu2_1"`, so that another runtime can be compared at that layer), or
/// the Gemm's output when `None`.
pub fn tiny_vgg(channels: usize, seed: u64, output: Option<&str>) -> ModelProto {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut nodes = vec![];
    let mut inits = vec![];
    let mut x = "x".to_string();
    let mut c_in = channels;
    let mut conv = |name: &str, c_out: usize, x: &str, c_in: usize, nodes: &mut Vec<NodeProto>| {
        // He-style scale keeps the activations of random weights in a useful range.
        let scale = (2.0 / (9 * c_in) as f32).sqrt();
        let w: Vec<f32> = (0..c_out * c_in * 9)
            .map(|_| rng.gen_range(-scale..scale) * 1.7)
            .collect();
        let b: Vec<f32> = (0..c_out).map(|_| rng.gen_range(-0.1..0.1)).collect();
        for (suffix, dims, v) in [("w", vec![c_out, c_in, 3, 3], w), ("b", vec![c_out], b)] {
            inits.push(TensorProto {
                dims: dims.iter().map(|&d| d as i64).collect(),
                data_type: FLOAT,
                name: format!("{name}.{suffix}"),
                raw_data: v.iter().flat_map(|f| f.to_le_bytes()).collect(),
                ..Default::default()
            });
        }
        nodes.push(NodeProto {
            input: vec![x.into(), format!("{name}.w"), format!("{name}.b")],
            output: vec![name.into()],
            name: name.into(),
            op_type: "Conv".into(),
            attribute: vec![
                ints("kernel_shape", &[3, 3]),
                ints("pads", &[1, 1, 1, 1]),
                ints("strides", &[1, 1]),
            ],
            ..Default::default()
        });
    };
    let simple = |op: &str, name: &str, x: &str, attribute: Vec<AttributeProto>| NodeProto {
        input: vec![x.into()],
        output: vec![name.into()],
        name: name.into(),
        op_type: op.into(),
        attribute,
        ..Default::default()
    };
    let pool = || vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])];
    for (stage, convs, width) in [(1, 2, 8), (2, 1, 16), (3, 1, 16)] {
        for k in 1..=convs {
            let name = format!("conv{stage}_{k}");
            conv(&name, width, &x, c_in, &mut nodes);
            c_in = width;
            let relu = format!("relu{stage}_{k}");
            nodes.push(simple("Relu", &relu, &name, vec![]));
            x = relu;
        }
        if stage < 3 {
            let name = format!("pool{stage}");
            nodes.push(simple("MaxPool", &name, &x, pool()));
            x = name;
        }
    }
    nodes.push(simple("Flatten", "flat", &x, vec![int("axis", 1)]));
    let out = output.map_or("flat".to_string(), str::to_string);
    ModelProto {
        ir_version: IR_VERSION,
        producer_name: "vae-cpu tiny_vgg".into(),
        graph: Some(GraphProto {
            node: nodes,
            name: "tiny-vgg".into(),
            initializer: inits,
            input: vec![value_info("x", &[channels, 16, 16])],
            output: vec![ValueInfoProto {
                name: out,
                r#type: Some(TypeProto {
                    tensor_type: Some(TypeProtoTensor {
                        elem_type: FLOAT,
                        shape: None,
                    }),
                }),
            }],
            ..Default::default()
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        ..Default::default()
    }
}
