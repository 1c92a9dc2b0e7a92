use super::{init::fan_in_uniform, visit_weight_and_bias, Module, Slot};
use crate::{ops, Param, Tape, Var};
use rand::Rng;

/// `y = x W^T + b`, weight `[out, in]`.
pub struct Linear {
    pub weight: Param,
    pub bias: Option<Param>,
}

impl Linear {
    pub fn new(fan_in: usize, fan_out: usize, bias: bool, rng: &mut impl Rng) -> Self {
        let weight = Param::new(fan_in_uniform(&[fan_out, fan_in], fan_in, rng));
        let bias = bias.then(|| Param::new(fan_in_uniform(&[fan_out], fan_in, rng)));
        Linear { weight, bias }
    }

    pub fn forward(&self, tape: &Tape, x: &Var) -> Var {
        let b = self.bias.as_ref().map(|b| tape.param(b));
        ops::linear(x, &tape.param(&self.weight), b.as_ref())
    }
}

impl Module for Linear {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        visit_weight_and_bias(prefix, &mut self.weight, &mut self.bias, f);
    }
}
