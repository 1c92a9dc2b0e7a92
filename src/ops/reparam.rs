//! The reparameterization trick: `z = mu + exp(logvar / 2) * eps`, `eps ~ N(0, I)` drawn
//! from the caller's seeded RNG. Built from differentiable primitives, so gradients reach
//! mu and logvar while eps stays a constant.

use super::{add, exp, mul, scale};
use crate::autograd::Var;
use crate::Tensor;
use rand::Rng;
use rand_distr::StandardNormal;

pub fn reparameterize(mu: &Var, logvar: &Var, rng: &mut impl Rng) -> Var {
    assert_eq!(mu.shape(), logvar.shape(), "reparameterize: mu and logvar shapes differ");
    let eps = Tensor::from_shape_simple_fn(mu.value().raw_dim(), || rng.sample(StandardNormal));
    let std = exp(&scale(logvar, 0.5));
    add(mu, &mul(&std, &Var::constant(eps)))
}
