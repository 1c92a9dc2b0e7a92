use super::{init::fan_in_uniform, visit_weight_and_bias, Module, Slot};
use crate::ops::{self, ConvTranspose2dSpec};
use crate::{Param, Tape, Var};
use rand::Rng;

/// Transposed convolution, weight `[in, out, k, k]`. PyTorch computes its fan_in from
/// the weight's second dimension: out * k * k.
pub struct ConvTranspose2d {
    pub weight: Param,
    pub bias: Option<Param>,
    pub spec: ConvTranspose2dSpec,
}

impl ConvTranspose2d {
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        spec: ConvTranspose2dSpec,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Self {
        let fan_in = out_ch * kernel * kernel;
        let weight = Param::new(fan_in_uniform(
            &[in_ch, out_ch, kernel, kernel],
            fan_in,
            rng,
        ));
        let bias = bias.then(|| Param::new(fan_in_uniform(&[out_ch], fan_in, rng)));
        ConvTranspose2d { weight, bias, spec }
    }

    pub fn forward(&self, tape: &Tape, x: &Var) -> Var {
        let b = self.bias.as_ref().map(|b| tape.param(b));
        ops::conv_transpose2d(x, &tape.param(&self.weight), b.as_ref(), self.spec)
    }
}

impl Module for ConvTranspose2d {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        visit_weight_and_bias(prefix, &mut self.weight, &mut self.bias, f);
    }
}
