//! Checkpoints: one safetensors file holding every parameter and buffer of the model
//! (`model.<name>`), the optimizer's tensors (`<kind>.<name>`, e.g. `adam.<param>.m`), and
//! in its metadata the config (TOML), epoch, step, the optimizer's settings (TOML under
//! its kind, `adam` or `sgd`) and the run's [`RunState`] (TOML). Written to a temporary
//! file, synced and renamed, so a crash never leaves a half-written checkpoint under the
//! final name.

mod run_state;

pub use run_state::{EpochSums, RunState};

use crate::config::{ClassifierConfig, Config};
use crate::model::{Classifier, Vae};
use crate::nn::{Module, Slot};
use crate::optim::{self, Optimizer};
use crate::{Error, Result, Tensor};
use ndarray::IxDyn;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const FORMAT: &str = "vae-cpu-checkpoint-1";

/// A config a checkpoint can embed: its TOML text and the kind of model it describes.
pub trait StoredConfig: Sized {
    /// The metadata value under `model` (VAE checkpoints written before there were other
    /// kinds carry none and read as `vae`).
    const MODEL: &'static str;
    /// The model kind in words, for messages.
    const DESCRIPTION: &'static str;
    /// The model this config builds.
    type Model: Module;
    fn to_toml(&self) -> String;
    fn parse(text: &str) -> Result<Self>;
    /// The model with the initial values drawn from `rng`.
    fn build(&self, rng: &mut ChaCha8Rng) -> Result<Self::Model>;
    /// The seed of the model's initial values.
    fn seed(&self) -> u64;
}

impl StoredConfig for Config {
    const MODEL: &'static str = "vae";
    const DESCRIPTION: &'static str = "VAE";
    type Model = Vae;
    fn to_toml(&self) -> String {
        Config::to_toml(self)
    }
    fn parse(text: &str) -> Result<Self> {
        Config::parse(text)
    }
    fn build(&self, rng: &mut ChaCha8Rng) -> Result<Vae> {
        Vae::new(self, rng)
    }
    fn seed(&self) -> u64 {
        self.exp.seed
    }
}

impl StoredConfig for ClassifierConfig {
    const MODEL: &'static str = "classifier";
    const DESCRIPTION: &'static str = "attribute classifier";
    type Model = Classifier;
    fn to_toml(&self) -> String {
        ClassifierConfig::to_toml(self)
    }
    fn parse(text: &str) -> Result<Self> {
        ClassifierConfig::parse(text)
    }
    fn build(&self, rng: &mut ChaCha8Rng) -> Result<Classifier> {
        Classifier::new(self, rng)
    }
    fn seed(&self) -> u64 {
        self.exp.seed
    }
}

/// The model kinds a checkpoint may hold: (metadata value, words).
const MODELS: [(&str, &str); 2] = [
    (Config::MODEL, Config::DESCRIPTION),
    (ClassifierConfig::MODEL, ClassifierConfig::DESCRIPTION),
];

/// A loaded VAE checkpoint (the checkpoint of every command but `classifier`).
pub type Checkpoint = Stored<Config>;

/// A loaded checkpoint of a model whose config is `C`.
pub struct Stored<C> {
    pub path: PathBuf,
    pub config: C,
    pub epoch: usize,
    pub step: u64,
    pub state: RunState,
    pub optimizer: Box<dyn Optimizer>,
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

/// Writes `model`, the optimizer and the run's state to `path` atomically.
pub fn save<C: StoredConfig>(
    path: &Path,
    config: &C,
    model: &mut dyn Module,
    optimizer: &dyn Optimizer,
    epoch: usize,
    step: u64,
    state: &RunState,
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
    let saved = optimizer.save();
    for (name, t) in &saved.tensors {
        let name = format!("{}.{name}", saved.kind);
        tensors.push((name, t.shape().to_vec(), f32_to_le_bytes(t)));
    }
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("model".into(), C::MODEL.into()),
        ("config".into(), config.to_toml()),
        ("epoch".into(), epoch.to_string()),
        ("step".into(), step.to_string()),
        (saved.kind.into(), saved.settings),
        (run_state::KEY.into(), state.to_toml()),
    ]);
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

/// The run state and the config text of a checkpoint, read from its header alone (the
/// file is memory-mapped; the tensors are not read). `None` for a file that is not a
/// readable vae-cpu checkpoint.
pub fn read_header(path: &Path) -> Option<(RunState, String)> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: read-only and private; checkpoints are replaced by rename, never in place.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let (_, header) = SafeTensors::read_metadata(&map).ok()?;
    let meta = header.metadata().as_ref()?;
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return None;
    }
    let state = RunState::from_metadata(meta).ok()?;
    Some((state, meta.get("config")?.clone()))
}

impl<C: StoredConfig> Stored<C> {
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

    /// The model this checkpoint holds: built from its embedded config, then restored
    /// (the initial values drawn for it are all overwritten).
    pub fn build_model(&self) -> Result<C::Model> {
        let mut model = self
            .config
            .build(&mut ChaCha8Rng::seed_from_u64(self.config.seed()))?;
        self.restore(&mut model)?;
        Ok(model)
    }

    /// Reads a checkpoint; a truncated, foreign or corrupt file, or one of another kind of
    /// model, is an error naming it.
    pub fn load(path: &Path) -> Result<Stored<C>> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses checkpoint bytes held in memory; `path` is only used in messages (and kept
    /// as the checkpoint's path). Used by `load`, fuzzing and tests.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Stored<C>> {
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
        let model = meta.get("model").map_or(Config::MODEL, String::as_str);
        if model != C::MODEL {
            let words = MODELS.iter().find(|m| m.0 == model).map_or(model, |m| m.1);
            return Err(bad(format!(
                "holds a model of kind {words}; this needs a checkpoint of kind {}",
                C::DESCRIPTION
            )));
        }
        let config = C::parse(get("config")?).map_err(|e| bad(format!("embedded config: {e}")))?;
        let epoch = get("epoch")?
            .parse()
            .map_err(|_| bad("bad epoch in metadata".into()))?;
        let step = get("step")?
            .parse()
            .map_err(|_| bad("bad step in metadata".into()))?;
        let state = RunState::from_metadata(&meta).map_err(bad)?;
        let kind = optim::KINDS
            .into_iter()
            .find(|k| meta.contains_key(*k))
            .ok_or_else(|| bad("checkpoint metadata names no optimizer".into()))?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("corrupt tensor data: {e}")))?;
        let mut model = BTreeMap::new();
        let mut optimizer_tensors = BTreeMap::new();
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
            } else if let Some(n) = name.strip_prefix(&format!("{kind}.")) {
                optimizer_tensors.insert(n.to_string(), t);
            }
        }
        let optimizer = optim::restore(kind, &meta[kind], optimizer_tensors).map_err(bad)?;
        Ok(Stored {
            path: path.to_path_buf(),
            config,
            epoch,
            step,
            state,
            optimizer,
            model,
        })
    }
}

impl Checkpoint {
    /// The model of the checkpoint at `path` (what every latent and export command starts
    /// from).
    pub fn load_model(path: &Path) -> Result<Vae> {
        Checkpoint::load(path)?.build_model()
    }
}
