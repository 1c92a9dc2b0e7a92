//! Optimizers (state keyed by the parameters' stable names) and learning-rate schedules.

mod adam;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamState};
pub use schedule::{ExponentialLr, LrSchedule, StepLr};
pub use sgd::Sgd;

use crate::nn::{Module, Slot};
use crate::{Gradients, Tensor};

pub trait Optimizer {
    /// Updates every parameter of `model` that has a gradient in `grads`.
    fn step(&mut self, model: &mut dyn Module, grads: &Gradients);
    fn lr(&self) -> f32;
    fn set_lr(&mut self, lr: f32);
}

/// Calls `f(name, value, grad)` for each parameter of `model` that received a gradient.
pub(crate) fn for_each_with_grad(
    model: &mut dyn Module,
    grads: &Gradients,
    f: &mut dyn FnMut(&str, &mut Tensor, &Tensor),
) {
    model.visit("", &mut |name, slot| {
        if let Slot::Param(p) = slot {
            if let Some(g) = grads.param(p) {
                assert_eq!(
                    g.shape(),
                    p.value().shape(),
                    "gradient of {name} has the wrong shape"
                );
                f(name, p.value_mut(), g);
            }
        }
    });
}
