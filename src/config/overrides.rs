//! Command-line values that replace a config's: one rule for `train`, `sweep` and a
//! resume. A value given wins; one not given leaves the config's.

use super::{Config, TrainerConfig};
use std::path::PathBuf;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub lr: Option<f32>,
    pub seed: Option<u64>,
    pub patience: Option<usize>,
    /// Stored as given; the CLI makes it absolute so that a resume from elsewhere finds it.
    pub feature_net: Option<PathBuf>,
}

impl Overrides {
    /// Only what a resume may change: the number of epochs and the patience.
    pub fn resumable(epochs: Option<usize>, patience: Option<usize>) -> Overrides {
        Overrides {
            epochs,
            patience,
            ..Overrides::default()
        }
    }

    /// `config` with the given values in place (not validated).
    pub fn apply(&self, mut config: Config) -> Config {
        self.apply_to_trainer(&mut config.trainer);
        let e = &mut config.exp;
        e.lr = self.lr.unwrap_or(e.lr);
        e.seed = self.seed.unwrap_or(e.seed);
        if let Some(net) = &self.feature_net {
            e.feature_net = Some(net.clone());
        }
        config
    }

    /// The `[trainer]` values (epochs, batch size, patience) in place: the section every
    /// model kind (VAE, attribute classifier) shares.
    pub fn apply_to_trainer(&self, t: &mut TrainerConfig) {
        t.epochs = self.epochs.unwrap_or(t.epochs);
        t.batch_size = self.batch_size.unwrap_or(t.batch_size);
        t.patience = self.patience.or(t.patience);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_values_win_and_the_rest_stay() {
        let base = Config::parse(include_str!("../../models/demo32.toml")).unwrap();
        assert_eq!(Overrides::default().apply(base.clone()), base);
        let o = Overrides {
            epochs: Some(3),
            lr: Some(0.5),
            ..Overrides::default()
        };
        let c = o.apply(base.clone());
        assert_eq!((c.trainer.epochs, c.exp.lr), (3, 0.5));
        assert_eq!(base.run_differences(&c), ["exp.lr"]);
    }
}
