//! Running an ONNX model with tract (the runtime the exported files are meant for): load
//! once with the batch dimension left symbolic, then run at any batch size. Each batch size
//! gets its own optimized plan with the batch fixed, because tract takes its fast paths
//! only for known shapes (a per-channel PReLU slope against `[N, C, H, W]` with a symbolic
//! N runs several times slower).
//!
//! The decoders vae-cpu exports are read by our own reader ([`super::tract_graph`]) into
//! tract-core; any other file goes through tract-onnx in builds that have it
//! (`onnx-runtime`). [`Reader`] picks.

use super::proto::{DimensionValue, ModelProto};
use super::{CONDITIONS_KEY, PIXEL_RANGE_KEY};
use crate::pixel_range::PixelRange;
use crate::{Error, Result};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tract_core::prelude::*;

/// The name of the batch dimension in the files `export-onnx` writes.
const BATCH: &str = "N";
/// Plans kept, one per batch size seen; past this many all are dropped and made again
/// as needed.
const PLANS_KEPT: usize = 8;

/// Which reader turns the file into tract's graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// Our own reader when every op of the file is one it runs (our exports), else
    /// tract-onnx in builds that have it.
    Auto,
    /// Our own reader only, as the edge binary runs the file.
    Own,
    /// tract-onnx (builds with `onnx-runtime`).
    #[cfg(feature = "onnx-runtime")]
    TractOnnx,
}

pub struct OnnxModel {
    path: PathBuf,
    /// The reader that read the file: [`Reader::Own`] or [`Reader::TractOnnx`].
    reader: Reader,
    /// The model as tract typed it, the batch still symbolic.
    typed: TypedModel,
    /// Optimized plans by batch size.
    plans: Mutex<HashMap<usize, Arc<TypedRunnableModel>>>,
    /// The file read with our own message types, for its declared shapes and metadata.
    proto: ModelProto,
    /// A conditional decoder's condition names, from the metadata (empty otherwise).
    conditions: Vec<String>,
    /// The name of the first input's symbolic batch dimension (`N` in our exports).
    batch_symbol: String,
}

/// One output: its shape and values in row-major order.
pub struct Output {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl OnnxModel {
    /// Loads and optimizes a model file; anything tract rejects is an error naming the file.
    pub fn load(path: &Path) -> Result<OnnxModel> {
        OnnxModel::load_with(path, Reader::Auto)
    }

    /// [`OnnxModel::load`] with the given reader.
    pub fn load_with(path: &Path, reader: Reader) -> Result<OnnxModel> {
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
        let reader = match reader {
            #[cfg(feature = "onnx-runtime")]
            Reader::Auto if !(proto.graph.as_ref()).is_some_and(super::tract_graph::reads) => {
                Reader::TractOnnx
            }
            Reader::Auto => Reader::Own,
            chosen => chosen,
        };
        let typed = match reader {
            #[cfg(feature = "onnx-runtime")]
            Reader::TractOnnx => read_with_tract_onnx(path).map_err(bad)?,
            _ => read_own(path, &proto)?,
        };
        let typed = typed.into_decluttered().map_err(bad)?;
        let conditions = proto
            .metadata_props
            .iter()
            .find(|p| p.key == CONDITIONS_KEY)
            .map(|p| p.value.split(',').map(String::from).collect())
            .unwrap_or_default();
        let batch_symbol = match first_input_dims(&proto).first() {
            Some(Some(DimensionValue::DimParam(name))) => name.clone(),
            _ => BATCH.to_string(),
        };
        let model = OnnxModel {
            path: path.to_path_buf(),
            reader,
            typed,
            plans: Mutex::new(HashMap::new()),
            proto,
            conditions,
            batch_symbol,
        };
        // Anything tract cannot optimize or run fails here, not at the first run.
        model.plan(1).map_err(bad)?;
        Ok(model)
    }

    /// The reader that read the file ([`Reader::Own`] or [`Reader::TractOnnx`]).
    pub fn reader(&self) -> Reader {
        self.reader
    }

    /// The optimized plan for `batch` images, made on first use.
    fn plan(&self, batch: usize) -> TractResult<Arc<TypedRunnableModel>> {
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(plan) = plans.get(&batch) {
            return Ok(plan.clone());
        }
        let n = self.typed.symbols.sym(&self.batch_symbol);
        let fixed = HashMap::from([(n, TDim::Val(batch as i64))]);
        let plan = self
            .typed
            .set_symbols(&fixed)?
            .into_optimized()?
            .into_runnable()?;
        if plans.len() >= PLANS_KEPT {
            plans.clear();
        }
        plans.insert(batch, plan.clone());
        Ok(plan)
    }

    /// The first input's declared dimensions: a fixed size, or `None` (symbolic or absent).
    pub fn input_dims(&self) -> Vec<Option<usize>> {
        (first_input_dims(&self.proto).into_iter())
            .map(|d| match d {
                Some(DimensionValue::DimValue(v)) if v > 0 => Some(v as usize),
                _ => None,
            })
            .collect()
    }

    /// The size of the first input's second dimension (the latent size of a decoder).
    pub fn input_width(&self) -> Result<usize> {
        let dims = self.input_dims();
        match dims.get(1) {
            Some(Some(v)) if dims.len() == 2 => Ok(*v),
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
            .any(|p| p.key == PIXEL_RANGE_KEY && p.value == "symmetric");
        if symmetric {
            PixelRange::Symmetric
        } else {
            PixelRange::Unit
        }
    }

    /// The condition names of a conditional decoder (in the order of its `cond` input),
    /// empty for any other model.
    pub fn conditions(&self) -> &[String] {
        &self.conditions
    }

    /// Decodes the latents `z` (`n` rows) under the condition `cond` (the same for every
    /// row; zeros for a conditional decoder when `None`) and returns the image output.
    pub fn decode(&self, n: usize, z: Vec<f32>, cond: Option<&[f32]>) -> Result<Output> {
        let width = z.len() / n.max(1);
        let mut inputs = vec![(vec![n, width], z)];
        if !self.conditions.is_empty() {
            let zeros = vec![0.0; self.conditions.len()];
            let cond = cond.unwrap_or(&zeros);
            inputs.push((vec![n, cond.len()], cond.repeat(n)));
        }
        self.run_all(inputs)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::File {
                path: self.path.clone(),
                message: "the model has no output".into(),
            })
    }

    /// Runs the model on one f32 input of `shape`.
    pub fn run(&self, shape: &[usize], values: Vec<f32>) -> Result<Vec<Output>> {
        self.run_all(vec![(shape.to_vec(), values)])
    }

    /// Runs the model on its f32 inputs, each `(shape, values)`, in the graph's order.
    pub fn run_all(&self, inputs: Vec<(Vec<usize>, Vec<f32>)>) -> Result<Vec<Output>> {
        let bad = |e: TractError| Error::File {
            path: self.path.clone(),
            message: format!("running the model failed: {e:#}"),
        };
        let batch = inputs.first().and_then(|(shape, _)| shape.first()).copied();
        let plan = self.plan(batch.unwrap_or(1)).map_err(bad)?;
        let inputs = inputs
            .into_iter()
            .map(|(shape, values)| Ok(Tensor::from_shape(&shape, &values)?.into_tvalue()))
            .collect::<TractResult<TVec<_>>>()
            .map_err(bad)?;
        let outputs = plan.run(inputs).map_err(bad)?;
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

/// The file read by our own reader (every node one vae-cpu exports).
fn read_own(path: &Path, proto: &ModelProto) -> Result<TypedModel> {
    let graph = proto.graph.as_ref().ok_or_else(|| Error::File {
        path: path.to_path_buf(),
        message: "the ONNX model has no graph".into(),
    })?;
    super::tract_graph::typed_model(graph).map_err(|message| Error::File {
        path: path.to_path_buf(),
        message,
    })
}

/// The file read by tract-onnx; from the path, so that it finds external data files
/// beside the model.
#[cfg(feature = "onnx-runtime")]
fn read_with_tract_onnx(path: &Path) -> TractResult<TypedModel> {
    use tract_onnx::prelude::InferenceModelExt;
    tract_onnx::onnx().model_for_path(path)?.into_typed()
}

/// The first graph input's dimensions as declared (empty when it declares no shape).
fn first_input_dims(proto: &ModelProto) -> Vec<Option<DimensionValue>> {
    (proto.graph.as_ref())
        .and_then(|g| g.input.first())
        .and_then(|i| i.dims())
        .map(|dims| dims.iter().map(|d| d.value.clone()).collect())
        .unwrap_or_default()
}
