//! Model configuration files (TOML, PyTorch-VAE style sections `[model]`, `[data]`,
//! `[exp]`, `[trainer]`), parsed and validated before anything is built: a layer that
//! cannot take its input is reported with its position in the file.

pub mod builtin;
pub mod classifier;
mod compare;
mod optimizer;
mod overrides;
pub mod plan;

pub use crate::layers::{LayerSpec, PaddingSpec};
pub use crate::pixel_range::PixelRange;
pub use builtin::BUILT_IN;
pub use classifier::ClassifierConfig;
pub use optimizer::{OptimizerKind, SchedulerKind};
pub use overrides::Overrides;
pub use plan::{Plan, PlannedLayer};

use crate::layers::MAX_UNITS;
use crate::ops::Reduction;
use crate::{Error, Result};
use plan::{parameter_total, values_within_limit, MAX_LAYER_PARAMETERS, MAX_VALUES_PER_SAMPLE};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub model: ModelConfig,
    #[serde(default)]
    pub data: DataConfig,
    #[serde(default)]
    pub exp: ExpConfig,
    #[serde(default)]
    pub trainer: TrainerConfig,
}

/// A run of layers, repeated `repeat` times (e.g. 4 x [conv, batch_norm, prelu]).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    #[serde(default = "one")]
    pub repeat: usize,
    pub layers: Vec<LayerSpec>,
}

impl Block {
    /// The layers of `blocks` in order, each block's layers `repeat` times.
    pub fn expand(blocks: &[Block]) -> impl Iterator<Item = &LayerSpec> {
        blocks
            .iter()
            .flat_map(|b| std::iter::repeat_n(&b.layers, b.repeat).flatten())
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    #[serde(default = "three")]
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub latent: usize,
    /// A conditional VAE: the attributes (by name, e.g. all 40 of CelebA) whose +1 / -1
    /// values are appended to the encoder's flat features and to z. Empty: unconditional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// From the image to a flat feature vector; two linear heads then give mu and logvar.
    pub encoder: Vec<Block>,
    /// From z (`[latent]`, or `[latent + conditions]` for a conditional VAE) back to
    /// `[channels, height, width]`, output activation included.
    pub decoder: Vec<Block>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub pixel_range: PixelRange,
    /// Random horizontal flips while training.
    pub flip: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            pixel_range: PixelRange::Unit,
            flip: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconLoss {
    Mse,
    L1,
    Bce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReductionSpec {
    Mean,
    Sum,
    BatchMean,
}

impl From<ReductionSpec> for Reduction {
    fn from(r: ReductionSpec) -> Self {
        match r {
            ReductionSpec::Mean => Reduction::Mean,
            ReductionSpec::Sum => Reduction::Sum,
            ReductionSpec::BatchMean => Reduction::BatchMean,
        }
    }
}

/// loss = recon_weight * recon_loss(recon_reduction) + kld_weight * KL(kl_reduction); the
/// docs/training.md's table says what each reduction makes the weights multiply.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpConfig {
    pub lr: f32,
    pub weight_decay: f32,
    /// `adam` (default) or `sgd`.
    pub optimizer: OptimizerKind,
    /// SGD's momentum (as PyTorch's `SGD(momentum=...)`); Adam ignores it.
    pub momentum: f32,
    /// `exponential` (default: multiply the rate by `scheduler_gamma` every epoch,
    /// ExponentialLR) or `step` (every `step_size` epochs, StepLR).
    pub scheduler: SchedulerKind,
    /// Multiply the learning rate by this per schedule step; 1.0 keeps it fixed.
    pub scheduler_gamma: f32,
    /// Epochs between rate changes of the `step` scheduler.
    pub step_size: usize,
    pub recon_loss: ReconLoss,
    pub recon_reduction: ReductionSpec,
    pub recon_weight: f32,
    pub kld_weight: f32,
    /// How the per-dimension KL terms become one number: `batch_mean` (summed over latent
    /// dimensions, averaged over the batch: the ELBO's KL per image), `mean` (averaged over
    /// dimensions and batch) or `sum` (summed over both).
    pub kl_reduction: ReductionSpec,
    /// Perceptual loss: an ONNX feature network (Conv / Relu / MaxPool, e.g. VGG19) whose
    /// feature maps of the input and the output are compared; `train --feature-net` sets
    /// it. The reconstruction term becomes `recon_loss + feature_weight * sum over layers
    /// of mean((phi(x_hat) - phi(x))^2)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_net: Option<std::path::PathBuf>,
    pub feature_weight: f32,
    /// The feature network's outputs (ONNX names) to compare; empty: the first ReLU of each
    /// of its first three stages (VGG's relu1_1, relu2_1, relu3_1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub feature_layers: Vec<String>,
    /// The input normalization the feature network was trained with.
    pub feature_normalize: FeatureNormalize,
    pub seed: u64,
}

/// How images are normalized before the feature network: ImageNet's per-channel mean and
/// standard deviation on [0, 1] pixels (torchvision's VGG), or [0, 1] pixels as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureNormalize {
    Imagenet,
    None,
}

impl ExpConfig {
    /// The training objective from its two terms: `recon_weight * recon + kld_weight * kl`.
    pub fn objective(&self, recon: f64, kl: f64) -> f64 {
        self.recon_weight as f64 * recon + self.kld_weight as f64 * kl
    }
}

impl Default for ExpConfig {
    fn default() -> Self {
        ExpConfig {
            lr: 1e-3,
            weight_decay: 0.0,
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            scheduler: SchedulerKind::Exponential,
            scheduler_gamma: 1.0,
            step_size: 1,
            recon_loss: ReconLoss::Mse,
            recon_reduction: ReductionSpec::Mean,
            recon_weight: 1.0,
            kld_weight: 1.0,
            kl_reduction: ReductionSpec::BatchMean,
            feature_net: None,
            feature_weight: 1.0,
            feature_layers: vec![],
            feature_normalize: FeatureNormalize::Imagenet,
            seed: 42,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainerConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// How many of the most recent epoch checkpoints to keep (the best is kept besides).
    pub keep_last: usize,
    /// Early stopping: end training once this many epochs in a row have not improved the
    /// validation loss (the training loss without a validation split). Absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            epochs: 10,
            batch_size: 64,
            keep_last: 3,
            patience: None,
        }
    }
}

fn one() -> usize {
    1
}
fn three() -> usize {
    3
}

impl ModelConfig {
    /// The decoder's input width: z, then the condition of a conditional VAE.
    pub fn decoder_input(&self) -> usize {
        self.latent + self.conditions.len()
    }
}

impl Config {
    /// Reads and validates a config file; errors name the file and the problem.
    pub fn load(path: &Path) -> Result<Config> {
        load_file(path, Config::parse)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = from_toml(text)?;
        config.plan()?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config always serializes")
    }

    /// Validates the config into its [`Plan`]: checks every value and walks the shapes
    /// through the architecture.
    pub fn plan(&self) -> Result<Plan> {
        self.check_settings()?;
        let m = &self.model;
        let input = vec![m.channels, m.height, m.width];
        let encoder = plan::walk("model.encoder", &m.encoder, &input)?;
        let features = match encoder.last().map_or(input.as_slice(), |l| &l.output) {
            [f] => *f + m.conditions.len(), // the heads see the features and the condition
            other => return bad(format!("model.encoder must end with a flat vector (add a flatten layer), it ends with {other:?}")),
        };
        if features
            .checked_mul(m.latent)
            .is_none_or(|n| n > MAX_LAYER_PARAMETERS)
        {
            return bad(format!(
                "the mean and log-variance heads ({features} features x latent {}) would have more than {MAX_LAYER_PARAMETERS} parameters each",
                m.latent
            ));
        }
        let decoder_input = vec![m.decoder_input()];
        let decoder = plan::walk("model.decoder", &m.decoder, &decoder_input)?;
        // Each head: features x latent weights and latent biases.
        let heads = 2 * (features * m.latent + m.latent);
        let flat_norm = plan::flat_batch_norm(&encoder) || plan::flat_batch_norm(&decoder);
        let plan = Plan {
            parameters: parameter_total(&encoder) + heads + parameter_total(&decoder),
            min_batch: if flat_norm { 2 } else { 1 },
            input,
            encoder,
            decoder_input,
            decoder,
            features,
        };
        self.check_plan(&plan)?;
        Ok(plan)
    }

    /// The checks of single values, before any shape is walked.
    fn check_settings(&self) -> Result<()> {
        let m = &self.model;
        // Every value must survive the run folder's config.toml (TOML integers are i64).
        if let Err(e) = toml::to_string(self) {
            return bad(format!(
                "a value cannot be saved ({e}); whole numbers go up to {}",
                i64::MAX
            ));
        }
        if self.trainer.epochs == 0 {
            return bad("trainer.epochs must be at least 1".into());
        }
        check_input([m.channels, m.height, m.width])?;
        if m.latent == 0 {
            return bad("model.latent must be at least 1".into());
        }
        if m.latent > MAX_UNITS {
            return bad(format!(
                "model.latent = {} is more than the {MAX_UNITS} supported",
                m.latent
            ));
        }
        check_names("model.conditions", &m.conditions)?;
        self.check_training_settings()
    }

    fn check_training_settings(&self) -> Result<()> {
        if !(self.exp.lr > 0.0 && self.exp.lr.is_finite()) {
            return bad(format!(
                "exp.lr must be a positive number, got {}",
                self.exp.lr
            ));
        }
        if !(self.exp.feature_weight >= 0.0 && self.exp.feature_weight.is_finite()) {
            return bad(format!(
                "exp.feature_weight must be a number >= 0, got {}",
                self.exp.feature_weight
            ));
        }
        self.exp.check_optimizer().map_err(Error::Config)?;
        if self.trainer.batch_size == 0 {
            return bad("trainer.batch_size must be at least 1".into());
        }
        if self.trainer.patience == Some(0) {
            return bad(
                "trainer.patience must be at least 1 (leave it out to never stop early)".into(),
            );
        }
        Ok(())
    }

    /// The checks that need the shapes: the decoder gives the image back, a BCE loss has a
    /// sigmoid to read, the batch is big enough for flat batch norms.
    fn check_plan(&self, plan: &Plan) -> Result<()> {
        let out = plan.decoder_output();
        if out != plan.input {
            return bad(format!(
                "model.decoder produces {out:?} but the images are {:?}",
                plan.input
            ));
        }
        let last = plan.decoder.last().map(|l| &l.spec);
        if self.exp.recon_loss == ReconLoss::Bce && !matches!(last, Some(LayerSpec::Sigmoid(_))) {
            return bad(
                "exp.recon_loss = \"bce\" needs a decoder that ends with a sigmoid layer".into(),
            );
        }
        if self.trainer.batch_size < plan.min_batch {
            return bad(format!(
                "trainer.batch_size must be at least {}: a batch_norm layer on flat features normalizes over the batch, which needs two images",
                plan.min_batch
            ));
        }
        Ok(())
    }
}

fn bad<T>(message: String) -> Result<T> {
    Err(Error::Config(message))
}

/// Reads a config file and parses it with `parse`; errors name the file and the problem.
fn load_file<T>(path: &Path, parse: impl Fn(&str) -> Result<T>) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|e| Error::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// TOML text as a config section tree (not yet validated).
fn from_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| Error::Config(e.to_string().trim_end().to_string()))
}

/// A model input `[channels, height, width]`: no zero side, within the size limit.
fn check_input([c, h, w]: [usize; 3]) -> Result<()> {
    if c == 0 || h == 0 || w == 0 {
        return bad(format!(
            "model input {c}x{h}x{w} must not have a zero dimension"
        ));
    }
    if values_within_limit(&[c, h, w]).is_none() {
        return bad(format!(
            "model input {c}x{h}x{w} has more than {MAX_VALUES_PER_SAMPLE} values"
        ));
    }
    Ok(())
}

/// A list of attribute names under `key`: no name twice, none empty, not too many.
fn check_names(key: &str, names: &[String]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    if let Some(name) = names
        .iter()
        .find(|c| c.is_empty() || !seen.insert(c.as_str()))
    {
        return bad(format!("{key} names \"{name}\" twice (or an empty name)"));
    }
    if names.len() > MAX_UNITS {
        return bad(format!("{key} has more than {MAX_UNITS} names"));
    }
    Ok(())
}
