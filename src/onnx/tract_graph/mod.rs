//! Reading the decoders vae-cpu exports straight into tract-core's typed graph, without
//! tract-onnx. tract-onnx registers every ONNX op it knows in one function, so a binary
//! that links it carries all of them (and tract-hir, tract-nnef); this reader knows only
//! the ops our layers write, which keeps the edge binary small (docs/onnx-edge.md, "Size").
//! Each node becomes the tract-core ops tract-onnx would make of it, so tract optimizes the
//! graph the same way. Anything else is refused, naming the node and its op.

use super::proto::{le_floats, DimensionValue, GraphProto, NodeProto, TensorProto};
use super::proto::{ValueInfoProto, EXTERNAL, FLOAT, INT64};
use crate::onnx_ops::LAYER_OPS;
use std::collections::HashMap;
use tract_core::internal::*;
use tract_core::ops::{math, nn};

/// Whether this reader runs `op`: one of those vae-cpu's layers export, or the `Concat`
/// that joins a conditional decoder's `z` and `cond`.
pub fn runs(op: &str) -> bool {
    LAYER_OPS.contains(&op) || op == "Concat"
}

/// Whether every node of `graph` is one this reader runs.
pub fn reads(graph: &GraphProto) -> bool {
    graph.node.iter().all(|n| runs(&n.op_type))
}

/// The typed model of `graph`, its inputs' symbolic dimensions kept as symbols.
pub fn typed_model(graph: &GraphProto) -> Result<TypedModel, String> {
    let mut import = Import {
        model: TypedModel::default(),
        values: HashMap::new(),
        weights: graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect(),
    };
    for input in &graph.input {
        let fact = import.input_fact(input)?;
        let source = import.model.add_source(&input.name, fact).map_err(tract)?;
        import.values.insert(input.name.clone(), source);
    }
    for node in &graph.node {
        let name = if node.name.is_empty() {
            node.output.first().cloned().unwrap_or_default()
        } else {
            node.name.clone()
        };
        let wire = import
            .node(node, &name)
            .map_err(|e| format!("node \"{name}\" ({}): {e}", node.op_type))?;
        let output = node
            .output
            .first()
            .ok_or(format!("node \"{name}\" has no output"))?;
        import.values.insert(output.clone(), wire);
    }
    let outputs = (graph.output.iter())
        .map(|o| import.values.get(&o.name).copied())
        .collect::<Option<Vec<_>>>()
        .ok_or("a graph output is produced by no node")?;
    import
        .model
        .select_output_outlets(&outputs)
        .map_err(tract)?;
    Ok(import.model)
}

/// A tract error (or any other) as a message, with its causes.
fn tract(e: impl std::fmt::Display) -> String {
    format!("{e:#}")
}

struct Import<'a> {
    model: TypedModel,
    /// The wire carrying each named value computed so far.
    values: HashMap<String, OutletId>,
    weights: HashMap<&'a str, &'a TensorProto>,
}

impl Import<'_> {
    /// An f32 input `[N, d...]`; a named dimension becomes a symbol.
    fn input_fact(&self, input: &ValueInfoProto) -> Result<TypedFact, String> {
        let dims = (input.dims()).ok_or(format!("input \"{}\" declares no shape", input.name))?;
        let shape = (dims.iter())
            .map(|d| match &d.value {
                Some(DimensionValue::DimValue(v)) if *v > 0 => Ok(TDim::Val(*v)),
                Some(DimensionValue::DimParam(s)) => Ok(self.model.symbols.sym(s).into()),
                _ => Err(format!("input \"{}\" has an unknown dimension", input.name)),
            })
            .collect::<Result<TVec<_>, _>>()?;
        Ok(f32::fact(shape))
    }

    /// The ONNX node as tract-core ops; returns the wire of its output.
    fn node(&mut self, node: &NodeProto, name: &str) -> Result<OutletId, String> {
        let unary = |op: Box<dyn TypedOp>, s: &mut Self| {
            let x = s.wire(node, 0)?;
            s.add(name, op, &[x])
        };
        match node.op_type.as_str() {
            "Conv" => self.conv(node, name),
            "ConvTranspose" => self.conv_transpose(node, name),
            "DepthToSpace" => self.depth_to_space(node, name),
            "Slice" => self.slice(node, name),
            "Mul" => self.binary(node, name, math::mul()),
            "Max" => self.binary(node, name, math::max()),
            "Min" => self.binary(node, name, math::min()),
            "Gemm" => self.gemm(node, name),
            "BatchNormalization" => self.batch_norm(node, name),
            "InstanceNormalization" => self.instance_norm(node, name),
            "Relu" => {
                let x = self.wire(node, 0)?;
                let zero = self.scalar(name, 0.0)?;
                self.broadcast(&format!("{name}.max"), math::max(), &[x, zero])
            }
            "LeakyRelu" => unary(Box::new(nn::leaky_relu(float(node, "alpha", 0.01))), self),
            "PRelu" => self.prelu(node, name),
            "Sigmoid" => unary(Box::new(nn::sigmoid()), self),
            "Tanh" => unary(Box::new(math::tanh()), self),
            "Flatten" => self.flatten(node, name),
            "Reshape" => self.reshape(node, name),
            "Concat" => self.concat(node, name),
            other => Err(format!(
                "this reader runs only the ops vae-cpu exports ({}), not {other}",
                LAYER_OPS.join(", ") + ", Concat"
            )),
        }
    }

    fn add(
        &mut self,
        name: &str,
        op: Box<dyn TypedOp>,
        inputs: &[OutletId],
    ) -> Result<OutletId, String> {
        let wires = self.model.wire_node(name, op, inputs).map_err(tract)?;
        Ok(wires[0])
    }

    /// A binary op, the lower-rank operand given leading 1s (numpy broadcasting).
    fn broadcast(
        &mut self,
        name: &str,
        op: impl Into<Box<dyn TypedOp>>,
        inputs: &[OutletId],
    ) -> Result<OutletId, String> {
        let wires = wire_with_rank_broadcast(name, &mut self.model, op, inputs).map_err(tract)?;
        Ok(wires[0])
    }

    fn binary(
        &mut self,
        node: &NodeProto,
        name: &str,
        op: impl Into<Box<dyn TypedOp>>,
    ) -> Result<OutletId, String> {
        let (a, b) = (self.wire(node, 0)?, self.wire(node, 1)?);
        self.broadcast(name, op, &[a, b])
    }

    fn konst(&mut self, name: &str, t: Tensor) -> Result<OutletId, String> {
        self.model.add_const(name, t).map_err(tract)
    }

    fn scalar(&mut self, name: &str, v: f32) -> Result<OutletId, String> {
        self.konst(&format!("{name}.{v}"), tensor0(v))
    }

    /// Input `i` of `node` as a wire: a value computed before, or an initializer.
    fn wire(&mut self, node: &NodeProto, i: usize) -> Result<OutletId, String> {
        let name = node.input.get(i).ok_or(format!("input {i} is missing"))?;
        if let Some(w) = self.values.get(name) {
            return Ok(*w);
        }
        let t = self.float(node, i)?;
        let w = self.konst(name, t)?;
        self.values.insert(name.clone(), w);
        Ok(w)
    }

    /// Input `i` of `node`, which must be a float initializer.
    fn float(&self, node: &NodeProto, i: usize) -> Result<Tensor, String> {
        let (dims, values) = self.float_values(node, i)?;
        Tensor::from_shape(&dims, &values).map_err(|e| format!("input {i}: {}", tract(e)))
    }

    /// The shape and values of input `i` of `node`, a float initializer.
    fn float_values(&self, node: &NodeProto, i: usize) -> Result<(Vec<usize>, Vec<f32>), String> {
        let t = self.initializer(node, i)?;
        let dims = (t.dims.iter())
            .map(|&d| usize::try_from(d).map_err(|_| format!("\"{}\" has dimension {d}", t.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let values: Vec<f32> = match (t.data_type, t.raw_data.is_empty()) {
            (FLOAT, false) => le_floats(&t.raw_data),
            (FLOAT, true) => t.float_data.clone(),
            _ => return Err(format!("initializer \"{}\" is not float", t.name)),
        };
        Ok((dims, values))
    }

    /// Input `i` of `node`, which must be an int64 initializer.
    fn ints(&self, node: &NodeProto, i: usize) -> Result<Vec<i64>, String> {
        let t = self.initializer(node, i)?;
        match (t.data_type, t.raw_data.is_empty()) {
            (INT64, false) => Ok((t.raw_data.chunks_exact(8))
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect()),
            (INT64, true) => Ok(t.int64_data.clone()),
            _ => Err(format!("initializer \"{}\" is not int64", t.name)),
        }
    }

    fn initializer(&self, node: &NodeProto, i: usize) -> Result<&TensorProto, String> {
        let name = node.input.get(i).ok_or(format!("input {i} is missing"))?;
        let t = (self.weights.get(name.as_str()))
            .ok_or(format!("input \"{name}\" must be an initializer"))?;
        if t.data_location == EXTERNAL {
            return Err(format!(
                "initializer \"{name}\" is stored outside the file; this reader needs the \
                 weights inside it"
            ));
        }
        Ok(t)
    }

    fn shape(&self, w: OutletId) -> Result<TVec<TDim>, String> {
        Ok(self.model.outlet_fact(w).map_err(tract)?.shape.to_tvec())
    }

    /// The shape of `w`, which must have at least `rank` axes.
    fn shape_of_rank(&self, w: OutletId, rank: usize) -> Result<TVec<TDim>, String> {
        let shape = self.shape(w)?;
        if shape.len() < rank {
            return Err(format!("the input {shape:?} has fewer than {rank} axes"));
        }
        Ok(shape)
    }

    /// Input `i`, a float initializer of 4 axes (a 2-D convolution's weight).
    fn kernel(&self, node: &NodeProto, i: usize) -> Result<Tensor, String> {
        let w = self.float(node, i)?;
        if w.rank() != 4 {
            return Err(format!(
                "the weight {:?} is not 4-D (2-D convolutions only)",
                w.shape()
            ));
        }
        Ok(w)
    }

    /// The bias (input 2) or zeros, one per output channel.
    fn bias(&self, node: &NodeProto, channels: usize) -> Result<Tensor, String> {
        match node.optional_input(2) {
            Some(_) => self.float(node, 2),
            None => Ok(Tensor::zero::<f32>(&[channels]).map_err(tract)?),
        }
    }
}

/// Float attribute `name`, or `default`.
fn float(node: &NodeProto, name: &str, default: f32) -> f32 {
    node.attribute(name).map_or(default, |a| a.f)
}

/// Int attribute `name`, or `default`.
fn int(node: &NodeProto, name: &str, default: i64) -> i64 {
    node.attribute(name).map_or(default, |a| a.i)
}

/// Ints attribute `name` (empty when absent).
fn ints(node: &NodeProto, name: &str) -> Vec<i64> {
    node.attribute(name).map_or(vec![], |a| a.ints.clone())
}

mod nodes;
