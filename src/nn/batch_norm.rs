use super::{join, Mode, Module, Slot};
use crate::ops::{self, Activation, BatchNormMode, RunningStats};
use crate::{Param, Tape, Tensor, Var};
use ndarray::IxDyn;

/// BatchNorm over axis 1 (works for `[N, C]` and `[N, C, H, W]`). gamma = 1, beta = 0,
/// running mean 0 and variance 1, momentum 0.1, eps 1e-5 (PyTorch's defaults).
pub struct BatchNorm {
    pub gamma: Param,
    pub beta: Param,
    pub running: RunningStats,
    pub momentum: f32,
    pub eps: f32,
}

impl BatchNorm {
    pub fn new(channels: usize) -> Self {
        BatchNorm {
            gamma: Param::new(Tensor::ones(IxDyn(&[channels]))),
            beta: Param::new(Tensor::zeros(IxDyn(&[channels]))),
            running: RunningStats::new(channels),
            momentum: 0.1,
            eps: 1e-5,
        }
    }

    fn mode(&self, mode: Mode) -> BatchNormMode {
        match mode {
            Mode::Train => BatchNormMode::Train {
                momentum: self.momentum,
            },
            Mode::Eval => BatchNormMode::Eval,
        }
    }

    pub fn forward(&mut self, tape: &Tape, x: &Var, mode: Mode) -> Var {
        let (gamma, beta) = (tape.param(&self.gamma), tape.param(&self.beta));
        let mode = self.mode(mode);
        ops::batch_norm(x, &gamma, &beta, &mut self.running, mode, self.eps)
    }

    /// The normalization followed by `act`, fused into one op (`ops::batch_norm_act`).
    pub fn forward_with(&mut self, tape: &Tape, x: &Var, mode: Mode, act: &Activation) -> Var {
        let (gamma, beta) = (tape.param(&self.gamma), tape.param(&self.beta));
        let mode = self.mode(mode);
        ops::batch_norm_act(x, &gamma, &beta, &mut self.running, mode, self.eps, act)
    }
}

impl Module for BatchNorm {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f(&join(prefix, "weight"), Slot::Param(&mut self.gamma));
        f(&join(prefix, "bias"), Slot::Param(&mut self.beta));
        f(
            &join(prefix, "running_mean"),
            Slot::Buffer(&mut self.running.mean),
        );
        f(
            &join(prefix, "running_var"),
            Slot::Buffer(&mut self.running.var),
        );
    }
}
