//! The optimizer and learning-rate schedule a config selects (`[exp]` keys `optimizer`,
//! `momentum`, `scheduler`, `scheduler_gamma`, `step_size`), as PyTorch-VAE's experiments
//! and the seeds' write-ups use them: Adam with ExponentialLR by default, SGD with momentum
//! and StepLR on request.

use super::ExpConfig;
use crate::optim::{Adam, ExponentialLr, LrSchedule, Optimizer, Sgd, StepLr};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    #[default]
    Adam,
    Sgd,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    /// Multiply the rate by `scheduler_gamma` every epoch (ExponentialLR).
    #[default]
    Exponential,
    /// Multiply the rate by `scheduler_gamma` every `step_size` epochs (StepLR).
    Step,
}

impl ExpConfig {
    /// A fresh optimizer as configured (Adam, or SGD with `momentum`), both with
    /// `weight_decay` as L2 on the gradient.
    pub fn optimizer(&self) -> Box<dyn Optimizer> {
        match self.optimizer {
            OptimizerKind::Adam => {
                Box::new(Adam::new(self.lr).with_weight_decay(self.weight_decay))
            }
            OptimizerKind::Sgd => {
                Box::new(Sgd::new(self.lr, self.momentum).with_weight_decay(self.weight_decay))
            }
        }
    }

    /// The learning rate of `epoch` (0-based) under the configured schedule.
    pub fn lr_at(&self, epoch: usize) -> f32 {
        let gamma = self.scheduler_gamma;
        match self.scheduler {
            SchedulerKind::Exponential => ExponentialLr { gamma }.lr_at(self.lr, epoch),
            SchedulerKind::Step => StepLr {
                step_size: self.step_size,
                gamma,
            }
            .lr_at(self.lr, epoch),
        }
    }

    /// The checks of these keys; the message names the key.
    pub(super) fn check_optimizer(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(format!(
                "exp.momentum must be at least 0 and below 1, got {}",
                self.momentum
            ));
        }
        if !(self.scheduler_gamma > 0.0 && self.scheduler_gamma.is_finite()) {
            return Err(format!(
                "exp.scheduler_gamma must be a positive number, got {}",
                self.scheduler_gamma
            ));
        }
        if self.step_size == 0 {
            return Err("exp.step_size must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedules_follow_pytorch() {
        let mut exp = ExpConfig {
            lr: 0.1,
            scheduler_gamma: 0.5,
            ..ExpConfig::default()
        };
        assert_eq!(exp.lr_at(2), 0.1 * 0.25);
        exp.scheduler = SchedulerKind::Step;
        exp.step_size = 3;
        let rates: Vec<f32> = (0..7).map(|e| exp.lr_at(e)).collect();
        assert_eq!(rates, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]);
    }

    #[test]
    fn the_configured_optimizer_is_built() {
        let mut exp = ExpConfig::default();
        assert_eq!(exp.optimizer().save().kind, "adam");
        exp.optimizer = OptimizerKind::Sgd;
        assert_eq!(exp.optimizer().save().kind, "sgd");
        assert_eq!(exp.optimizer().lr(), exp.lr);
    }
}
