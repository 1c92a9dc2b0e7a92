//! The attribute classifier's configuration (`vae-cpu classifier train --config ...`): a
//! stack of layers from the image to a flat feature vector (the "penultimate features"
//! that `score` compares), then one linear head with a logit per attribute, trained with a
//! binary cross-entropy per attribute. Same sections as a VAE config: `[model]`, `[data]`,
//! `[exp]`, `[trainer]`.

use super::plan::{self, parameter_total, PlannedLayer};
use super::{Block, DataConfig, TrainerConfig};
use crate::layers::MAX_UNITS;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    pub model: ClassifierModel,
    #[serde(default)]
    pub data: DataConfig,
    #[serde(default)]
    pub exp: ClassifierExp,
    #[serde(default)]
    pub trainer: TrainerConfig,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierModel {
    pub name: String,
    #[serde(default = "three")]
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// The attributes to predict, by name. Empty: every attribute of the training cache
    /// (training writes the names into the run's config, so a checkpoint always has them).
    #[serde(default)]
    pub attributes: Vec<String>,
    /// From the image to a flat feature vector; the head follows.
    pub layers: Vec<Block>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierExp {
    /// Adam's learning rate.
    pub lr: f32,
    /// Adam's (L2) weight decay.
    pub weight_decay: f32,
    /// Weight each attribute's positives and negatives by half the inverse of their share
    /// of the training split, so a rare attribute counts as much as a common one.
    pub class_weighted: bool,
    pub seed: u64,
}

impl Default for ClassifierExp {
    fn default() -> Self {
        ClassifierExp {
            lr: 1e-3,
            weight_decay: 0.0,
            class_weighted: false,
            seed: 42,
        }
    }
}

fn three() -> usize {
    3
}

/// The layers of a validated classifier config, with their per-image shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierPlan {
    pub input: Vec<usize>,
    pub layers: Vec<PlannedLayer>,
    /// The width of the flat feature vector the head reads.
    pub features: usize,
    /// Learned numbers, the head included (for the attributes named in the config).
    pub parameters: usize,
}

impl ClassifierConfig {
    /// Reads and validates a config file; errors name the file and the problem.
    pub fn load(path: &Path) -> Result<ClassifierConfig> {
        super::load_file(path, ClassifierConfig::parse)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<ClassifierConfig> {
        let config: ClassifierConfig = super::from_toml(text)?;
        config.plan()?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config always serializes")
    }

    /// Validates the settings and walks the shapes through the layers.
    pub fn plan(&self) -> Result<ClassifierPlan> {
        self.check_settings()?;
        let m = &self.model;
        let input = vec![m.channels, m.height, m.width];
        let layers = plan::walk("model.layers", &m.layers, &input)?;
        let features = match layers.last().map_or(input.as_slice(), |l| &l.output) {
            [f] => *f,
            other => return bad(format!("model.layers must end with a flat vector (add a flatten layer), it ends with {other:?}")),
        };
        if features > MAX_UNITS {
            return bad(format!(
                "model.layers end with {features} features, more than the {MAX_UNITS} supported"
            ));
        }
        if plan::flat_batch_norm(&layers) && self.trainer.batch_size < 2 {
            return bad("trainer.batch_size must be at least 2: a batch_norm layer on flat features normalizes over the batch".into());
        }
        let head = (features + 1) * m.attributes.len();
        Ok(ClassifierPlan {
            parameters: parameter_total(&layers) + head,
            input,
            layers,
            features,
        })
    }

    fn check_settings(&self) -> Result<()> {
        let (m, t) = (&self.model, &self.trainer);
        super::check_input([m.channels, m.height, m.width])?;
        super::check_names("model.attributes", &m.attributes)?;
        if !(self.exp.lr > 0.0 && self.exp.lr.is_finite()) {
            return bad(format!(
                "exp.lr must be a positive number, got {}",
                self.exp.lr
            ));
        }
        if !(self.exp.weight_decay >= 0.0 && self.exp.weight_decay.is_finite()) {
            return bad(format!(
                "exp.weight_decay must be a number >= 0, got {}",
                self.exp.weight_decay
            ));
        }
        if t.epochs == 0 || t.batch_size == 0 || t.patience == Some(0) {
            return bad("trainer.epochs, batch_size and patience must be at least 1".into());
        }
        Ok(())
    }
}

fn bad<T>(message: String) -> Result<T> {
    Err(Error::Config(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
[model]
name = "tiny"
height = 8
width = 8
attributes = ["Smiling", "Male"]
[[model.layers]]
layers = [{ type = "conv2d", filters = 4, kernel = 3, stride = 2, padding = 1 },
          { type = "relu" }, { type = "flatten" }]
"#;

    #[test]
    fn a_config_plans_its_features_and_parameters() {
        let plan = ClassifierConfig::parse(SMALL).unwrap().plan().unwrap();
        assert_eq!(plan.features, 4 * 4 * 4);
        // conv 4x3x3x3 + 4 biases, head (64 + 1) x 2.
        assert_eq!(plan.parameters, 4 * 27 + 4 + 65 * 2);
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let no_flatten = SMALL.replace(", { type = \"flatten\" }", "");
        let e = ClassifierConfig::parse(&no_flatten)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must end with a flat vector"), "{e}");
        let twice = SMALL.replace("\"Male\"", "\"Smiling\"");
        let e = ClassifierConfig::parse(&twice).unwrap_err().to_string();
        assert!(e.contains("\"Smiling\" twice"), "{e}");
        let e = ClassifierConfig::parse(&SMALL.replace("name", "nam")).unwrap_err();
        assert!(e.to_string().contains("nam"), "{e}");
    }
}
