//! Running an ONNX model with tract (the runtime the exported files are meant for): load
//! once with the batch dimension left symbolic, then run at any batch size.

use super::proto::{DimensionValue, ModelProto};
use crate::pixel_range::PixelRange;
use crate::{Error, Result};
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::prelude::*;

pub struct OnnxModel {
    path: PathBuf,
    plan: Arc<TypedRunnableModel>,
    /// The file read with our own message types, for its declared shapes and metadata.
    proto: ModelProto,
}

/// One output: its shape and values in row-major order.
pub struct Output {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl OnnxModel {
    /// Loads and optimizes a model file; anything tract rejects is an error naming the file.
    pub fn load(path: &Path) -> Result<OnnxModel> {
        let bad = |e: TractError| Error::File {
            path: path.to_path_buf(),
            message: format!("tract cannot load this ONNX model: {e:#}"),
        };
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let proto = ModelProto::decode(bytes.as_slice()).map_err(|e| Error::File {
            path: path.to_path_buf(),
            message: format!("not an ONNX model (protobuf decoding failed: {e})"),
        })?;
        // From the path, so that tract finds external data files beside the model.
        let plan = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(bad)?
            .into_optimized()
            .map_err(bad)?
            .into_runnable()
            .map_err(bad)?;
        Ok(OnnxModel {
            path: path.to_path_buf(),
            plan,
            proto,
        })
    }

    /// The size of the first input's second dimension (the latent size of a decoder).
    pub fn input_width(&self) -> Result<usize> {
        let dims = self
            .proto
            .graph
            .as_ref()
            .and_then(|g| g.input.first())
            .and_then(|i| i.r#type.as_ref())
            .and_then(|t| t.tensor_type.as_ref())
            .and_then(|t| t.shape.as_ref())
            .map(|s| s.dim.clone())
            .unwrap_or_default();
        match dims.get(1).and_then(|d| d.value.clone()) {
            Some(DimensionValue::DimValue(v)) if dims.len() == 2 && v > 0 => Ok(v as usize),
            _ => Err(Error::File {
                path: self.path.clone(),
                message: "the first input is not [N, latent]: not a decoder exported by vae-cpu?"
                    .into(),
            }),
        }
    }

    /// The output's pixel range: `Symmetric` when the exporter marked it as in [-1, 1] (a
    /// Tanh decoder), else `Unit`.
    pub fn pixel_range(&self) -> PixelRange {
        let symmetric = self
            .proto
            .metadata_props
            .iter()
            .any(|p| p.key == "vae-cpu.pixel_range" && p.value == "symmetric");
        if symmetric {
            PixelRange::Symmetric
        } else {
            PixelRange::Unit
        }
    }

    /// Runs the model on one f32 input of `shape`.
    pub fn run(&self, shape: &[usize], values: Vec<f32>) -> Result<Vec<Output>> {
        let bad = |e: TractError| Error::File {
            path: self.path.clone(),
            message: format!("running the model failed: {e:#}"),
        };
        let input = Tensor::from_shape(shape, &values).map_err(bad)?;
        let outputs = self.plan.run(tvec!(input.into_tvalue())).map_err(bad)?;
        outputs
            .iter()
            .map(|o| {
                let view = o.to_plain_array_view::<f32>().map_err(bad)?;
                Ok(Output {
                    shape: view.shape().to_vec(),
                    values: view.iter().copied().collect(),
                })
            })
            .collect()
    }
}
