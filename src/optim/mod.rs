//! Optimizers (state keyed by the parameters' stable names) and learning-rate schedules.

mod adam;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamState};
pub use schedule::{ExponentialLr, LrSchedule, StepLr};
pub use sgd::Sgd;

use crate::nn::{Module, Slot};
use crate::{Gradients, Tensor};
use std::collections::BTreeMap;

pub trait Optimizer {
    /// Updates every parameter of `model` that has a gradient in `grads`.
    fn step(&mut self, model: &mut dyn Module, grads: &Gradients);
    fn lr(&self) -> f32;
    fn set_lr(&mut self, lr: f32);
    /// Everything needed to continue exactly where it is (for checkpoints).
    fn save(&self) -> SavedOptimizer;
}

/// An optimizer's state as a checkpoint keeps it: its kind (`adam`, `sgd`), its settings
/// and step counts as TOML, and its per-parameter tensors by name.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedOptimizer {
    pub kind: &'static str,
    pub settings: String,
    pub tensors: BTreeMap<String, Tensor>,
}

/// The optimizer kinds [`restore`] knows.
pub const KINDS: [&str; 2] = ["adam", "sgd"];

/// The optimizer `saved` describes; the message says what is wrong.
pub fn restore(
    kind: &str,
    settings: &str,
    tensors: BTreeMap<String, Tensor>,
) -> Result<Box<dyn Optimizer>, String> {
    match kind {
        "adam" => Ok(Box::new(Adam::restore(settings, tensors)?)),
        "sgd" => Ok(Box::new(Sgd::restore(settings, tensors)?)),
        other => Err(format!("unknown optimizer \"{other}\"")),
    }
}

/// Parameters with at least this many values are updated by every thread of the pool.
pub(crate) const PARALLEL_FROM: usize = 1 << 14;

/// Runs an `ndarray::Zip` over a parameter's values with `f`, on every thread of the pool
/// from [`PARALLEL_FROM`] values. Each value's update is independent of the others, so any
/// split gives the same values. (A macro: `par_for_each` exists per arity of `Zip`.)
macro_rules! update_values {
    ($zip:expr, $f:expr) => {{
        let zip = $zip;
        if zip.size() >= super::PARALLEL_FROM {
            zip.par_for_each($f)
        } else {
            zip.for_each($f)
        }
    }};
}
pub(crate) use update_values;

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
