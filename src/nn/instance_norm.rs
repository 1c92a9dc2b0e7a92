use super::{join, Module, Slot};
use crate::{ops, Param, Tape, Tensor, Var};
use ndarray::IxDyn;

/// Affine InstanceNorm: gamma = 1, beta = 0, eps 1e-5, no running statistics
/// (PyTorch's `InstanceNorm2d(affine=True)` defaults).
pub struct InstanceNorm {
    pub gamma: Param,
    pub beta: Param,
    pub eps: f32,
}

impl InstanceNorm {
    pub fn new(channels: usize) -> Self {
        InstanceNorm {
            gamma: Param::new(Tensor::ones(IxDyn(&[channels]))),
            beta: Param::new(Tensor::zeros(IxDyn(&[channels]))),
            eps: 1e-5,
        }
    }

    pub fn forward(&self, tape: &Tape, x: &Var) -> Var {
        ops::instance_norm(
            x,
            &tape.param(&self.gamma),
            &tape.param(&self.beta),
            self.eps,
        )
    }

    /// The normalization followed by `act`, fused into one op (`ops::instance_norm_act`).
    pub fn forward_with(&self, tape: &Tape, x: &Var, act: &ops::Activation) -> Var {
        let (gamma, beta) = (tape.param(&self.gamma), tape.param(&self.beta));
        ops::instance_norm_act(x, &gamma, &beta, self.eps, act)
    }
}

impl Module for InstanceNorm {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f(&join(prefix, "weight"), Slot::Param(&mut self.gamma));
        f(&join(prefix, "bias"), Slot::Param(&mut self.beta));
    }
}
