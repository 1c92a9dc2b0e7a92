//! Running an ONNX model with tract (the runtime the exported files are meant for): load
//! once with the batch dimension left symbolic, then run at any batch size.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::prelude::*;

pub struct OnnxModel {
    path: PathBuf,
    plan: Arc<TypedRunnableModel>,
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
        })
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
