//! ONNX graphs rewritten the way other exporters write them: weights moved to an external
//! data file, equal tensors shared through `Identity` nodes (PyTorch's two exporters).

use crate::onnx::proto::{GraphProto, NodeProto, StringStringEntryProto, EXTERNAL};

/// Moves every float initializer of `graph` of at least `min_values` values into the
/// file `data` beside the model (`location` is its name), as PyTorch's exporter does.
pub fn externalize(graph: &mut GraphProto, location: &str, min_values: usize) -> Vec<u8> {
    let mut data = vec![];
    for t in &mut graph.initializer {
        let bytes = if t.raw_data.is_empty() {
            t.float_data.iter().flat_map(|f| f.to_le_bytes()).collect()
        } else {
            std::mem::take(&mut t.raw_data)
        };
        if bytes.len() / 4 < min_values {
            t.raw_data = bytes;
            continue;
        }
        t.float_data.clear();
        let entry = |k: &str, v: String| StringStringEntryProto {
            key: k.into(),
            value: v,
        };
        t.external_data = vec![
            entry("location", location.into()),
            entry("offset", data.len().to_string()),
            entry("length", bytes.len().to_string()),
        ];
        t.data_location = EXTERNAL;
        data.extend_from_slice(&bytes);
        // PyTorch aligns each tensor; so do we, to exercise offsets that are not packed.
        data.resize(data.len().next_multiple_of(64), 0);
    }
    data
}

/// Makes every Conv of `graph` take its bias through an `Identity` of one shared
/// initializer when two biases are equal, as PyTorch's legacy exporter does with a freshly
/// initialized network. Returns how many were shared. For tests.
pub fn share_equal_biases(graph: &mut GraphProto) -> usize {
    let mut shared = 0;
    let names: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    for (i, name) in names.iter().enumerate() {
        let Some(first) = names[..i].iter().find(|other| {
            let a = graph.initializer.iter().find(|t| &t.name == *other);
            let b = graph.initializer.iter().find(|t| &t.name == name);
            a.zip(b)
                .is_some_and(|(a, b)| a.dims == b.dims && a.raw_data == b.raw_data)
        }) else {
            continue;
        };
        let first = first.clone();
        graph.initializer.retain(|t| &t.name != name);
        graph.node.insert(
            0,
            NodeProto {
                input: vec![first],
                output: vec![name.clone()],
                name: format!("share_{name}"),
                op_type: "Identity".into(),
                ..Default::default()
            },
        );
        shared += 1;
    }
    shared
}
