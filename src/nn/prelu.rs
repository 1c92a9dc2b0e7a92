use super::{join, Module, Slot};
use crate::{ops, Param, Tape, Tensor, Var};
use ndarray::IxDyn;

/// PReLU with `slopes` learnable slopes (1 = shared, or one per channel), initialized to
/// 0.25 as in PyTorch.
pub struct PRelu {
    pub slope: Param,
}

impl PRelu {
    pub fn new(slopes: usize) -> Self {
        PRelu {
            slope: Param::new(Tensor::from_elem(IxDyn(&[slopes.max(1)]), 0.25)),
        }
    }

    pub fn forward(&self, tape: &Tape, x: &Var) -> Var {
        ops::prelu(x, &tape.param(&self.slope))
    }
}

impl Module for PRelu {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f(&join(prefix, "weight"), Slot::Param(&mut self.slope));
    }
}
