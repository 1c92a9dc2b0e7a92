//! Checkpoints: one safetensors file holding every parameter and buffer of the model
//! (`model.<name>`), the Adam moments (`adam.<name>.m` / `.v`), and in its metadata the
//! config (TOML), epoch, step, Adam's hyper-parameters and step counts, and free-form
//! entries from the caller (e.g. the RNG state). Written to a temporary file, synced and
//! renamed, so a crash never leaves a half-written checkpoint under the final name.

use crate::config::Config;
use crate::model::Vae;
use crate::nn::{Module, Slot};
use crate::optim::{Adam, AdamState};
use crate::{Error, Result, Tensor};
use ndarray::IxDyn;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const FORMAT: &str = "vae-cpu-checkpoint-1";

/// Adam's settings and per-parameter step counts, stored as TOML in the metadata.
#[derive(Serialize, Deserialize)]
struct AdamMeta {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    steps: BTreeMap<String, u64>,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    pub path: PathBuf,
    pub config: Config,
    pub epoch: usize,
    pub step: u64,
    pub extra: BTreeMap<String, String>,
    pub adam: Adam,
    model: BTreeMap<String, Tensor>,
}

/// f32 values as little-endian bytes (the layout of safetensors F32 and ONNX raw_data).
pub(crate) fn f32_to_le_bytes<'a>(values: impl IntoIterator<Item = &'a f32>) -> Vec<u8> {
    values.into_iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The inverse of [`f32_to_le_bytes`]; a trailing partial value is ignored.
pub(crate) fn f32_from_le_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Writes `model`, `adam` and the run position to `path` atomically.
pub fn save(
    path: &Path,
    config: &Config,
    model: &mut dyn Module,
    adam: &Adam,
    epoch: usize,
    step: u64,
    extra: &BTreeMap<String, String>,
) -> Result<()> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
    model.visit("", &mut |name, slot| {
        let t = match slot {
            Slot::Param(p) => p.value(),
            Slot::Buffer(b) => &*b,
        };
        tensors.push((
            format!("model.{name}"),
            t.shape().to_vec(),
            f32_to_le_bytes(t),
        ));
    });
    for (name, s) in &adam.state {
        tensors.push((
            format!("adam.{name}.m"),
            s.m.shape().to_vec(),
            f32_to_le_bytes(&s.m),
        ));
        tensors.push((
            format!("adam.{name}.v"),
            s.v.shape().to_vec(),
            f32_to_le_bytes(&s.v),
        ));
    }
    let adam_meta = AdamMeta {
        lr: adam.lr,
        beta1: adam.beta1,
        beta2: adam.beta2,
        eps: adam.eps,
        weight_decay: adam.weight_decay,
        steps: adam
            .state
            .iter()
            .map(|(k, s)| (k.clone(), s.step))
            .collect(),
    };
    let mut meta: HashMap<String, String> = extra
        .iter()
        .map(|(k, v)| (format!("extra.{k}"), v.clone()))
        .collect();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("config".into(), config.to_toml());
    meta.insert("epoch".into(), epoch.to_string());
    meta.insert("step".into(), step.to_string());
    meta.insert(
        "adam".into(),
        toml::to_string(&adam_meta).expect("adam settings serialize"),
    );
    let views = tensors.iter().map(|(n, s, b)| {
        (
            n.clone(),
            TensorView::new(Dtype::F32, s.clone(), b).expect("sizes match by construction"),
        )
    });
    let bytes = safetensors::serialize(views, &Some(meta))
        .map_err(|e| file_error(path, format!("cannot encode: {e}")))?;
    crate::atomic_file::write(path, &bytes)
}

fn file_error(path: &Path, message: String) -> Error {
    Error::File {
        path: path.to_path_buf(),
        message,
    }
}

/// The `extra` entries and the config text of a checkpoint, read from its header alone
/// (the file is memory-mapped; the tensors are not read). `None` for a file that is not
/// a readable vae-cpu checkpoint.
pub fn read_header(path: &Path) -> Option<(BTreeMap<String, String>, String)> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: read-only and private; checkpoints are replaced by rename, never in place.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let (_, header) = SafeTensors::read_metadata(&map).ok()?;
    let meta = header.metadata().as_ref()?;
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return None;
    }
    let extra = meta
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("extra.")?.to_string(), v.clone())))
        .collect();
    Some((extra, meta.get("config")?.clone()))
}

impl Checkpoint {
    /// Reads a checkpoint; a truncated, foreign or corrupt file is an error naming it.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses checkpoint bytes held in memory; `path` is only used in messages (and kept
    /// as the checkpoint's path). Used by `load`, fuzzing and tests.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
        let bad = |m: String| file_error(path, m);
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
            bad(format!(
                "not a readable checkpoint (truncated or corrupt?): {e}"
            ))
        })?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad(
                "not a vae-cpu checkpoint (no format marker in its metadata)".into(),
            ));
        }
        let get = |k: &str| {
            meta.get(k)
                .ok_or_else(|| bad(format!("checkpoint metadata lacks \"{k}\"")))
        };
        let config =
            Config::parse(get("config")?).map_err(|e| bad(format!("embedded config: {e}")))?;
        let epoch = get("epoch")?
            .parse()
            .map_err(|_| bad("bad epoch in metadata".into()))?;
        let step = get("step")?
            .parse()
            .map_err(|_| bad("bad step in metadata".into()))?;
        let adam_meta: AdamMeta = toml::from_str(get("adam")?)
            .map_err(|e| bad(format!("bad optimizer settings: {e}")))?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("corrupt tensor data: {e}")))?;
        let mut model = BTreeMap::new();
        let mut moments: BTreeMap<String, Tensor> = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(bad(format!(
                    "tensor {name} is {:?}, expected F32",
                    view.dtype()
                )));
            }
            let values = f32_from_le_bytes(view.data());
            let t = Tensor::from_shape_vec(IxDyn(view.shape()), values)
                .map_err(|e| bad(format!("tensor {name}: {e}")))?;
            if let Some(n) = name.strip_prefix("model.") {
                model.insert(n.to_string(), t);
            } else if name.starts_with("adam.") {
                moments.insert(name, t);
            }
        }
        let mut adam = Adam::new(adam_meta.lr).with_weight_decay(adam_meta.weight_decay);
        (adam.beta1, adam.beta2, adam.eps) = (adam_meta.beta1, adam_meta.beta2, adam_meta.eps);
        for (name, steps) in adam_meta.steps {
            let m = moments.remove(&format!("adam.{name}.m"));
            let v = moments.remove(&format!("adam.{name}.v"));
            let (Some(m), Some(v)) = (m, v) else {
                return Err(bad(format!("optimizer moments of {name} are missing")));
            };
            adam.state.insert(name, AdamState { step: steps, m, v });
        }
        let extra = meta
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("extra.").map(|k| (k.to_string(), v.clone())))
            .collect();
        Ok(Checkpoint {
            path: path.to_path_buf(),
            config,
            epoch,
            step,
            extra,
            adam,
            model,
        })
    }

    /// The model of the checkpoint at `path` (what every latent and export command starts
    /// from).
    pub fn load_model(path: &Path) -> Result<Vae> {
        Checkpoint::load(path)?.build_model()
    }

    /// The model this checkpoint holds: built from its embedded config, then restored
    /// (the initial values drawn for it are all overwritten).
    pub fn build_model(&self) -> Result<Vae> {
        let mut model = Vae::new(
            &self.config,
            &mut ChaCha8Rng::seed_from_u64(self.config.exp.seed),
        )?;
        self.restore(&mut model)?;
        Ok(model)
    }

    /// Copies the stored weights and buffers into `model`. Every tensor of the model must
    /// be present with the same shape (a checkpoint of another architecture is refused
    /// before anything is changed).
    pub fn restore(&self, model: &mut dyn Module) -> Result<()> {
        let mut problems = vec![];
        let mut expected = 0;
        model.visit("", &mut |name, slot| {
            expected += 1;
            let shape = match &slot {
                Slot::Param(p) => p.value().shape().to_vec(),
                Slot::Buffer(b) => b.shape().to_vec(),
            };
            match self.model.get(name) {
                None => problems.push(format!("{name} is missing")),
                Some(t) if t.shape() != shape.as_slice() => problems.push(format!(
                    "{name} has shape {:?}, the model expects {shape:?}",
                    t.shape()
                )),
                Some(_) => {}
            }
        });
        if expected != self.model.len() {
            problems.push(format!(
                "it holds {} model tensors, the model has {expected}",
                self.model.len()
            ));
        }
        if !problems.is_empty() {
            let shown: Vec<_> = problems.iter().take(3).cloned().collect();
            return Err(file_error(
                &self.path,
                format!("checkpoint does not fit this model: {}", shown.join("; ")),
            ));
        }
        model.visit("", &mut |name, slot| match slot {
            Slot::Param(p) => p.value_mut().assign(&self.model[name]),
            Slot::Buffer(b) => b.assign(&self.model[name]),
        });
        Ok(())
    }
}
