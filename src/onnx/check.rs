//! A structural check of an ONNX model, independent of any runtime: the graph is in
//! topological order (every node input is a graph input, an initializer or an earlier
//! node's output), names are unique, initializers hold exactly the data their dims declare,
//! every graph output is produced, and every op is one we know how to write.

use super::proto::{ModelProto, FLOAT, INT64};
use std::collections::HashSet;

/// The ops the exporter may write besides the layers' own ([`crate::layers::ONNX_OPS`]).
pub const OTHER_OPS: [&str; 3] = ["MatMul", "Identity", "Concat"];

fn known_op(op: &str) -> bool {
    crate::layers::ONNX_OPS.contains(&op) || OTHER_OPS.contains(&op)
}

/// Every problem found, or none.
pub fn check_model(model: &ModelProto) -> Vec<String> {
    let mut problems = vec![];
    if !model
        .opset_import
        .iter()
        .any(|o| o.domain.is_empty() && o.version > 0)
    {
        problems.push("no default-domain opset import".to_string());
    }
    let Some(graph) = &model.graph else {
        return vec!["the model has no graph".into()];
    };
    let mut defined: HashSet<&str> = HashSet::new();
    for v in &graph.input {
        if !defined.insert(&v.name) {
            problems.push(format!("graph input {} is declared twice", v.name));
        }
        if v.r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .is_none()
        {
            problems.push(format!("graph input {} has no tensor type", v.name));
        }
    }
    for t in &graph.initializer {
        if !defined.insert(&t.name) {
            problems.push(format!("initializer {} clashes with another name", t.name));
        }
        if t.dims.iter().any(|&d| d < 0) {
            problems.push(format!("initializer {} has a negative dimension", t.name));
            continue;
        }
        let count: i64 = t.dims.iter().product();
        let held = match t.data_type {
            FLOAT if !t.raw_data.is_empty() => t.raw_data.len() as i64 / 4,
            FLOAT => t.float_data.len() as i64,
            INT64 if !t.raw_data.is_empty() => t.raw_data.len() as i64 / 8,
            INT64 => t.int64_data.len() as i64,
            other => {
                problems.push(format!("initializer {} has data type {other}", t.name));
                continue;
            }
        };
        let ragged = t.data_type == FLOAT && t.raw_data.len() % 4 != 0;
        if held != count || ragged {
            problems.push(format!(
                "initializer {} declares {:?} ({count} values) but holds {held}",
                t.name, t.dims
            ));
        }
    }
    for node in &graph.node {
        if !known_op(&node.op_type) {
            problems.push(format!(
                "node {} has the unknown op {}",
                node.name, node.op_type
            ));
        }
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if !defined.contains(input.as_str()) {
                problems.push(format!(
                    "node {} reads {input} before anything defines it",
                    node.name
                ));
            }
        }
        for output in &node.output {
            if !defined.insert(output) {
                problems.push(format!("node {} redefines {output}", node.name));
            }
        }
    }
    for v in &graph.output {
        if !graph.node.iter().any(|n| n.output.contains(&v.name)) {
            problems.push(format!("graph output {} is produced by no node", v.name));
        }
    }
    problems
}
