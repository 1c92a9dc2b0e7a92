//! Parameter-free activations. Each backward uses the saved output or input:
//! relu' = [x > 0], leaky' = 1 or alpha, sigmoid' = s(1-s), tanh' = 1 - t^2, exp' = exp.

use super::elementwise::{map, map_slices, zip_map};
use crate::autograd::Var;
use crate::kernels::squash;
use std::sync::Arc;

pub fn relu(x: &Var) -> Var {
    leaky_relu(x, 0.0)
}

/// `max(x, 0) + alpha * min(x, 0)`.
pub fn leaky_relu(x: &Var, alpha: f32) -> Var {
    let xv = x.shared();
    let y = map(x.value(), |v| if v > 0.0 { v } else { alpha * v });
    Var::record(&[x], y, move |g, _| {
        vec![Some(zip_map(
            g,
            &xv,
            |g, v| if v > 0.0 { g } else { alpha * g },
        ))]
    })
}

/// Logistic sigmoid, computed without overflow for large |x| (in vector registers:
/// [`squash`]).
pub fn sigmoid(x: &Var) -> Var {
    let y = Arc::new(map_slices(x.value(), squash::sigmoid, stable_sigmoid));
    let saved = Arc::clone(&y);
    Var::record(&[x], y, move |g, _| {
        vec![Some(zip_map(g, &saved, |g, s| g * s * (1.0 - s)))]
    })
}

pub(crate) fn stable_sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// Hyperbolic tangent (in vector registers: [`squash`]).
pub fn tanh(x: &Var) -> Var {
    let y = Arc::new(map_slices(x.value(), squash::tanh, f32::tanh));
    let saved = Arc::clone(&y);
    Var::record(&[x], y, move |g, _| {
        vec![Some(zip_map(g, &saved, |g, t| g * (1.0 - t * t)))]
    })
}

pub fn exp(x: &Var) -> Var {
    let y = Arc::new(map(x.value(), f32::exp));
    let saved = Arc::clone(&y);
    Var::record(&[x], y, move |g, _| {
        vec![Some(zip_map(g, &saved, |g, e| g * e))]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{config, tensor, tensor_off_zero};
    use super::*;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    fn shape() -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::vec(1usize..5, 1..4)
    }

    proptest! {
        #![proptest_config(config(32))]

        #[test]
        fn relu_and_leaky_relu_gradients(x in shape().prop_flat_map(tensor_off_zero), alpha in -0.5f32..0.5, seed: u64) {
            check_gradients(std::slice::from_ref(&x), seed, Tolerance::default(), |v| relu(&v[0])).map_err(TestCaseError::fail)?;
            check_gradients(&[x], seed, Tolerance::default(), |v| leaky_relu(&v[0], alpha)).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn smooth_activation_gradients(x in shape().prop_flat_map(tensor), seed: u64) {
            let tol = Tolerance::default();
            check_gradients(std::slice::from_ref(&x), seed, tol, |v| sigmoid(&v[0])).map_err(TestCaseError::fail)?;
            check_gradients(std::slice::from_ref(&x), seed, tol, |v| tanh(&v[0])).map_err(TestCaseError::fail)?;
            check_gradients(&[x], seed, tol, |v| exp(&v[0])).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn forward_values_follow_definitions(x in shape().prop_flat_map(tensor), alpha in -0.5f32..0.5) {
            let v = Var::constant(x.clone());
            let (l, s, t, e) = (leaky_relu(&v, alpha), sigmoid(&v), tanh(&v), exp(&v));
            for (i, &x) in x.iter().enumerate() {
                let at = |t: &Var| t.value().as_slice().unwrap()[i];
                prop_assert_eq!(at(&l), if x > 0.0 { x } else { alpha * x });
                prop_assert!((at(&s) - 1.0 / (1.0 + (-x).exp())).abs() < 1e-6);
                prop_assert!((at(&t) - x.tanh()).abs() < 1e-6);
                prop_assert!((at(&e) - x.exp()).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn sigmoid_is_finite_and_saturates_at_extremes() {
        assert_eq!(stable_sigmoid(-1000.0), 0.0);
        assert_eq!(stable_sigmoid(1000.0), 1.0);
        assert!((stable_sigmoid(0.0) - 0.5).abs() < 1e-7);
    }
}
