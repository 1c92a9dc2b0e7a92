use super::{init::fan_in_uniform, visit_weight_and_bias, Module, Slot};
use crate::ops::{self, Conv2dSpec};
use crate::{Param, Tape, Var};
use rand::Rng;

/// 2-D convolution, weight `[out, in, k, k]`; fan_in = in * k * k.
pub struct Conv2d {
    pub weight: Param,
    pub bias: Option<Param>,
    pub spec: Conv2dSpec,
}

impl Conv2d {
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        spec: Conv2dSpec,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Self {
        let fan_in = in_ch * kernel * kernel;
        let weight = Param::new(fan_in_uniform(
            &[out_ch, in_ch, kernel, kernel],
            fan_in,
            rng,
        ));
        let bias = bias.then(|| Param::new(fan_in_uniform(&[out_ch], fan_in, rng)));
        Conv2d { weight, bias, spec }
    }

    pub fn forward(&self, tape: &Tape, x: &Var) -> Var {
        let b = self.bias.as_ref().map(|b| tape.param(b));
        ops::conv2d(x, &tape.param(&self.weight), b.as_ref(), self.spec)
    }
}

impl Module for Conv2d {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        visit_weight_and_bias(prefix, &mut self.weight, &mut self.bias, f);
    }
}
