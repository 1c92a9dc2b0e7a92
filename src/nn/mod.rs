//! Layers that hold parameters, with PyTorch's default initializations, and the
//! [`Module`] trait that lists every parameter and buffer under a stable name.

mod batch_norm;
mod conv2d;
mod conv_transpose2d;
pub mod init;
mod instance_norm;
mod linear;
mod prelu;

pub use batch_norm::BatchNorm;
pub use conv2d::Conv2d;
pub use conv_transpose2d::ConvTranspose2d;
pub use instance_norm::InstanceNorm;
pub use linear::Linear;
pub use prelu::PRelu;

use crate::{Param, Tensor};

/// Training (batch statistics, running stats updated) or evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// One named tensor of a module: learned, or a buffer such as BatchNorm's running mean.
pub enum Slot<'a> {
    Param(&'a mut Param),
    Buffer(&'a mut Tensor),
}

pub trait Module {
    /// Calls `f` with every parameter and buffer, named `prefix.name` (dot-separated,
    /// stable across runs, so checkpoints and optimizer state can key on it).
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>));
}

/// `prefix.name`, or `name` when the prefix is empty.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Visits a layer's `weight` and, when it has one, its `bias` (Linear and convolutions).
pub(crate) fn visit_weight_and_bias(
    prefix: &str,
    weight: &mut Param,
    bias: &mut Option<Param>,
    f: &mut dyn FnMut(&str, Slot<'_>),
) {
    f(&join(prefix, "weight"), Slot::Param(weight));
    if let Some(b) = bias {
        f(&join(prefix, "bias"), Slot::Param(b));
    }
}

/// The names and shapes of every parameter (`true`) and buffer (`false`) of a module.
pub fn named_shapes(m: &mut dyn Module) -> Vec<(String, Vec<usize>, bool)> {
    let mut out = vec![];
    m.visit("", &mut |name, slot| match slot {
        Slot::Param(p) => out.push((name.to_string(), p.value().shape().to_vec(), true)),
        Slot::Buffer(b) => out.push((name.to_string(), b.shape().to_vec(), false)),
    });
    out
}

/// Total number of learned values.
pub fn parameter_count(m: &mut dyn Module) -> usize {
    named_shapes(m)
        .iter()
        .filter(|(_, _, learned)| *learned)
        .map(|(_, s, _)| s.iter().product::<usize>())
        .sum()
}
