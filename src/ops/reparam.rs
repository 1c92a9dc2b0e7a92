//! The reparameterization trick: `z = mu + exp(logvar / 2) * eps`, `eps ~ N(0, I)` drawn
//! from the caller's seeded RNG. Built from differentiable primitives, so gradients reach
//! mu and logvar while eps stays a constant.

use super::{add, exp, mul, scale};
use crate::autograd::Var;
use crate::Tensor;
use rand::Rng;
use rand_distr::StandardNormal;

pub fn reparameterize(mu: &Var, logvar: &Var, rng: &mut impl Rng) -> Var {
    reparameterize_with(mu, logvar, standard_normal(mu.shape(), rng))
}

/// `count` rows of `width` standard-normal values from `rng`, row after row: the noise
/// [`reparameterize`] draws for a `[count, width]` mu.
pub fn standard_normal(shape: &[usize], rng: &mut impl Rng) -> Tensor {
    Tensor::from_shape_simple_fn(shape, || rng.sample(StandardNormal))
}

/// [`reparameterize`] with the noise `eps` given (e.g. this rank's rows of the noise drawn
/// for a whole data-parallel batch).
pub fn reparameterize_with(mu: &Var, logvar: &Var, eps: Tensor) -> Var {
    assert_eq!(
        mu.shape(),
        logvar.shape(),
        "reparameterize: mu and logvar shapes differ"
    );
    assert_eq!(
        mu.shape(),
        eps.shape(),
        "reparameterize: noise shape differs"
    );
    let std = exp(&scale(logvar, 0.5));
    add(mu, &mul(&std, &Var::constant(eps)))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::tensor;
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use ndarray::IxDyn;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    proptest! {
        #[test]
        fn gradients_reach_mu_and_logvar((mu, lv) in (tensor(vec![3, 4]), tensor(vec![3, 4])), seed: u64) {
            // A fresh RNG with the same seed on every evaluation: the same eps each time.
            check_gradients(&[mu, lv], seed, Tolerance::default(), |v| {
                reparameterize(&v[0], &v[1], &mut ChaCha8Rng::seed_from_u64(seed))
            }).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn samples_have_the_requested_mean_and_variance() {
        let mu = Var::constant(Tensor::from_elem(IxDyn(&[20000, 2]), 1.5));
        let lv = Var::constant(Tensor::from_elem(IxDyn(&[20000, 2]), (0.25f32).ln())); // std 0.5
        let z = reparameterize(&mu, &lv, &mut ChaCha8Rng::seed_from_u64(7));
        let n = z.value().len() as f64;
        let mean = z.value().iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = z
            .value()
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!((mean - 1.5).abs() < 0.02, "mean {mean}");
        assert!((var - 0.25).abs() < 0.01, "variance {var}");
        // Same seed, same z.
        let again = reparameterize(&mu, &lv, &mut ChaCha8Rng::seed_from_u64(7));
        assert_eq!(z.value(), again.value());
    }
}
