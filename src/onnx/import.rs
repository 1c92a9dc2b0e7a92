//! Reading weights out of an ONNX file someone else exported, for every ONNX import of the
//! project (today the perceptual loss's feature network):
//!
//! - a weight is an initializer, or the output of an `Identity` of one (a chain of them:
//!   PyTorch's legacy exporter shares equal tensors that way), or of a `Constant` node;
//! - its data is inline (`raw_data` or `float_data`) or external
//!   (`data_location = EXTERNAL`: `location`, `offset`, `length` in a file beside the model,
//!   as PyTorch's torch.export-based exporter writes models over 2 GB or on request). An
//!   external file is memory-mapped once; a location outside the model's folder (absolute,
//!   `..`, or a symlink leading out), a missing or short file and an offset past its end
//!   are refused, naming the tensor and the file.

use super::proto::{le_floats, GraphProto, NodeProto, TensorProto, EXTERNAL};
use crate::Tensor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

const ONNX_FLOAT: i32 = 1;

/// The weights of one graph; `dir` is the model file's folder (external data lies there).
pub struct Weights<'a> {
    graph: &'a GraphProto,
    dir: Option<PathBuf>,
    files: RefCell<HashMap<PathBuf, std::rc::Rc<memmap2::Mmap>>>,
}

impl<'a> Weights<'a> {
    /// `dir`: the model file's folder; `None` for a model built in memory (then external
    /// data is refused).
    pub fn new(graph: &'a GraphProto, dir: Option<&Path>) -> Weights<'a> {
        Weights {
            graph,
            dir: dir.map(Path::to_path_buf),
            files: RefCell::new(HashMap::new()),
        }
    }

    pub fn is_initializer(&self, name: &str) -> bool {
        self.graph.initializer.iter().any(|t| t.name == name)
    }

    /// The float tensor called `name`: an initializer, or what an `Identity` chain or a
    /// `Constant` node makes of one.
    pub fn resolve(&self, name: &str) -> Result<Tensor, String> {
        let mut name = name;
        for _ in 0..=self.graph.node.len() {
            if let Some(t) = self.graph.initializer.iter().find(|t| t.name == name) {
                return self.tensor(t);
            }
            match self.producer(name) {
                Some(n) if n.op_type == "Identity" && !n.input.is_empty() => name = &n.input[0],
                Some(n) if n.op_type == "Constant" => {
                    let value = n.attribute.iter().find(|a| a.name == "value");
                    return match value.and_then(|a| a.t.as_ref()) {
                        Some(t) => self.tensor(t),
                        None => Err(format!(
                            "the Constant node making \"{name}\" holds no tensor \"value\""
                        )),
                    };
                }
                _ => {
                    return Err(format!(
                        "\"{name}\" is not an initializer, nor an Identity or Constant of one"
                    ))
                }
            }
        }
        Err(format!(
            "the Identity nodes leading to \"{name}\" form a cycle"
        ))
    }

    fn producer(&self, output: &str) -> Option<&'a NodeProto> {
        self.graph
            .node
            .iter()
            .find(|n| n.output.iter().any(|o| o == output))
    }

    /// A float32 tensor's values, inline or external, checked for size and finiteness.
    pub fn tensor(&self, t: &TensorProto) -> Result<Tensor, String> {
        let name = &t.name;
        if t.data_type != ONNX_FLOAT {
            return Err(format!("initializer \"{name}\" is not float32"));
        }
        let dims: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("\"{name}\": a negative dimension")))
            .collect::<Result<_, _>>()?;
        let len = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let values: Vec<f32> = if t.data_location == EXTERNAL {
            let bytes = len
                .and_then(|n| n.checked_mul(4))
                .ok_or_else(|| format!("initializer \"{name}\": dimensions {dims:?} overflow"))?;
            let (file, range) = self.external_range(t, bytes)?;
            le_floats(&file[range])
        } else if t.raw_data.is_empty() {
            t.float_data.clone()
        } else {
            if !t.raw_data.len().is_multiple_of(4) {
                return Err(format!(
                    "initializer \"{name}\": raw data is not whole floats"
                ));
            }
            le_floats(&t.raw_data)
        };
        if len != Some(values.len()) {
            let hint = if values.is_empty() && !t.external_data.is_empty() {
                " (its external_data entries are there, but data_location is not EXTERNAL)"
            } else {
                ""
            };
            return Err(format!(
                "initializer \"{name}\" has {} values for dimensions {dims:?}{hint}",
                values.len()
            ));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(format!(
                "initializer \"{name}\" holds NaN or infinite values"
            ));
        }
        Tensor::from_shape_vec(dims, values).map_err(|e| e.to_string())
    }

    /// The mapped data file of an external tensor and the byte range of its `bytes`.
    fn external_range(
        &self,
        t: &TensorProto,
        bytes: usize,
    ) -> Result<(std::rc::Rc<memmap2::Mmap>, std::ops::Range<usize>), String> {
        let name = &t.name;
        let entry = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.as_str())
        };
        let location = entry("location")
            .ok_or_else(|| format!("initializer \"{name}\" is external but names no location"))?;
        let number = |key: &str| -> Result<Option<usize>, String> {
            entry(key)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("initializer \"{name}\": bad {key} \"{v}\""))
                })
                .transpose()
        };
        let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
        if length.is_some_and(|l| l != bytes) {
            return Err(format!(
                "initializer \"{name}\": length {} in {location} does not hold its {bytes} bytes",
                length.unwrap_or(0)
            ));
        }
        let path = self.data_path(name, location)?;
        let file = self.map(&path)?;
        let end = offset.saturating_add(bytes);
        if offset > file.len() {
            return Err(format!(
                "initializer \"{name}\": offset {offset} is past the end of {} ({} bytes)",
                path.display(),
                file.len()
            ));
        }
        if end > file.len() {
            return Err(format!(
                "initializer \"{name}\": {} is too short ({} bytes; the tensor needs bytes {offset}..{end})",
                path.display(),
                file.len()
            ));
        }
        Ok((file, offset..end))
    }

    /// `location` inside the model's folder; anything that leads out of it is refused.
    fn data_path(&self, name: &str, location: &str) -> Result<PathBuf, String> {
        let dir = self.dir.as_ref().ok_or_else(|| {
            format!("initializer \"{name}\": external data needs the model's file and folder")
        })?;
        let rel = Path::new(location);
        if location.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!(
                "initializer \"{name}\": the external data location \"{location}\" is not a \
                 plain path inside the model's folder"
            ));
        }
        let path = dir.join(rel);
        let missing = |e: std::io::Error| {
            format!(
                "initializer \"{name}\": its external data file {}: {e}",
                path.display()
            )
        };
        let (real, real_dir) = (
            path.canonicalize().map_err(missing)?,
            dir.canonicalize().map_err(missing)?,
        );
        if !real.starts_with(&real_dir) {
            return Err(format!(
                "initializer \"{name}\": the external data location \"{location}\" leads out of \
                 the model's folder"
            ));
        }
        Ok(real)
    }

    fn map(&self, path: &Path) -> Result<std::rc::Rc<memmap2::Mmap>, String> {
        if let Some(m) = self.files.borrow().get(path) {
            return Ok(m.clone());
        }
        let fail = |e: std::io::Error| format!("{}: {e}", path.display());
        let file = std::fs::File::open(path).map_err(fail)?;
        if !file.metadata().map_err(fail)?.is_file() {
            return Err(format!("{}: not a regular file", path.display()));
        }
        // SAFETY: read-only and private; a data file changing under a running import
        // could fault, as any memory-mapped input.
        let map = std::rc::Rc::new(unsafe { memmap2::Mmap::map(&file) }.map_err(fail)?);
        self.files
            .borrow_mut()
            .insert(path.to_path_buf(), map.clone());
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::onnx_forms::{externalize, share_equal_biases};
    use crate::test_support::tiny_vgg::tiny_vgg;

    fn all(w: &Weights, graph: &GraphProto) -> Vec<Tensor> {
        let names: Vec<String> = graph
            .node
            .iter()
            .filter(|n| n.op_type == "Conv")
            .flat_map(|n| n.input[1..].to_vec())
            .collect();
        names.iter().map(|n| w.resolve(n).unwrap()).collect()
    }

    #[test]
    fn external_and_shared_weights_read_as_the_inline_ones() {
        let model = tiny_vgg(3, 4, None);
        let inline = model.graph.clone().unwrap();
        let want = all(&Weights::new(&inline, None), &inline);
        let dir = tempfile::tempdir().unwrap();
        let mut graph = inline.clone();
        let data = externalize(&mut graph, "w.bin", 16);
        std::fs::write(dir.path().join("w.bin"), &data).unwrap();
        assert!(graph
            .initializer
            .iter()
            .any(|t| t.data_location == EXTERNAL));
        assert_eq!(all(&Weights::new(&graph, Some(dir.path())), &graph), want);
        // Equal biases shared through Identity nodes.
        let mut graph = inline.clone();
        for t in &mut graph.initializer {
            if t.name.ends_with(".b") {
                t.raw_data = vec![0; t.raw_data.len()];
            }
        }
        let zeroed = all(&Weights::new(&graph, None), &graph);
        let mut shared = graph.clone();
        assert!(share_equal_biases(&mut shared) >= 2);
        assert_eq!(all(&Weights::new(&shared, None), &shared), zeroed);
    }

    #[test]
    fn a_constant_node_holding_a_weight_is_read() {
        let mut graph = tiny_vgg(3, 4, None).graph.unwrap();
        let want = all(&Weights::new(&graph, None), &graph);
        let t = graph.initializer.remove(0);
        graph.node.insert(
            0,
            NodeProto {
                output: vec![t.name.clone()],
                op_type: "Constant".into(),
                attribute: vec![crate::onnx::proto::AttributeProto {
                    name: "value".into(),
                    t: Some(t),
                    r#type: 4, // TENSOR
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        assert_eq!(all(&Weights::new(&graph, None), &graph), want);
    }

    #[test]
    fn bad_external_data_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut graph = tiny_vgg(3, 4, None).graph.unwrap();
        let data = externalize(&mut graph, "w.bin", 16);
        let first = graph.initializer[0].name.clone();
        let w = |g: &GraphProto| {
            Weights::new(g, Some(dir.path()))
                .resolve(&first)
                .map(|_| ())
        };
        assert!(w(&graph).unwrap_err().contains("w.bin"));
        std::fs::write(dir.path().join("w.bin"), &data[..100]).unwrap();
        assert!(w(&graph).unwrap_err().contains("too short"));
        std::fs::write(dir.path().join("w.bin"), &data).unwrap();
        let set = |g: &mut GraphProto, key: &str, value: &str| {
            let e = g.initializer[0]
                .external_data
                .iter_mut()
                .find(|e| e.key == key);
            e.unwrap().value = value.into();
        };
        for (key, value, needle) in [
            ("offset", "99999999", "past the end"),
            ("location", "../w.bin", "not a plain path"),
            ("location", "/etc/passwd", "not a plain path"),
            ("length", "4", "does not hold"),
        ] {
            let mut g = graph.clone();
            set(&mut g, key, value);
            let e = w(&g).unwrap_err();
            assert!(e.contains(needle), "{key}={value}: {e}");
        }
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            std::fs::write(outside.path().join("w.bin"), &data).unwrap();
            std::os::unix::fs::symlink(outside.path().join("w.bin"), dir.path().join("l.bin"))
                .unwrap();
            let mut g = graph.clone();
            set(&mut g, "location", "l.bin");
            assert!(w(&g).unwrap_err().contains("leads out"));
        }
        let e = Weights::new(&graph, None).resolve(&first).unwrap_err();
        assert!(e.contains("needs the model's file"), "{e}");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::test_support::onnx_forms::externalize;
    use crate::test_support::tiny_vgg::tiny_vgg;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the external_data entries and however short the file, the reader
        /// answers with a tensor of the declared shape or an error, never a panic.
        #[test]
        fn hostile_external_data_never_panics(
            offset in prop_oneof![Just(None), (0usize..4000).prop_map(Some), Just(Some(usize::MAX))],
            length in prop_oneof![Just(None), (0usize..4000).prop_map(Some)],
            location in prop_oneof![
                Just("w.bin".to_string()), Just("../w.bin".to_string()),
                Just("sub/../w.bin".to_string()), Just(String::new()), "[a-z./]{0,8}"
            ],
            keep in 0usize..3000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let inline = tiny_vgg(3, 9, None).graph.unwrap();
            let mut graph = inline.clone();
            let data = externalize(&mut graph, "w.bin", 1);
            std::fs::write(dir.path().join("w.bin"), &data[..keep.min(data.len())]).unwrap();
            let t = &mut graph.initializer[1];
            for e in &mut t.external_data {
                match e.key.as_str() {
                    "location" => e.value = location.clone(),
                    "offset" => e.value = offset.map_or(e.value.clone(), |o| o.to_string()),
                    "length" => e.value = length.map_or(e.value.clone(), |l| l.to_string()),
                    _ => {}
                }
            }
            let name = t.name.clone();
            let got = Weights::new(&graph, Some(dir.path())).resolve(&name);
            let want = Weights::new(&inline, None).resolve(&name).unwrap();
            if let Ok(got) = got {
                prop_assert_eq!(got.shape(), want.shape());
            }
        }
    }
}
