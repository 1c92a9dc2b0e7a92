//! Basic arithmetic: add, mul (same shapes), scale by a constant, sum and mean to a scalar.

use super::elementwise::{map, sum_f64, zip_map};
use crate::autograd::Var;
use crate::Tensor;

pub fn add(a: &Var, b: &Var) -> Var {
    assert_eq!(a.shape(), b.shape(), "add: shapes differ");
    let y = a.value() + b.value();
    Var::record(&[a, b], y, |g, wants| {
        vec![wants[0].then(|| g.clone()), wants[1].then(|| g.clone())]
    })
}

pub fn mul(a: &Var, b: &Var) -> Var {
    let (av, bv) = (a.shared(), b.shared());
    let y = zip_map(a.value(), b.value(), |x, y| x * y);
    Var::record(&[a, b], y, move |g, wants| {
        vec![
            wants[0].then(|| zip_map(g, &bv, |g, b| g * b)),
            wants[1].then(|| zip_map(g, &av, |g, a| g * a)),
        ]
    })
}

/// `c * x` for a constant `c`.
pub fn scale(x: &Var, c: f32) -> Var {
    Var::record(&[x], map(x.value(), |v| c * v), move |g, _| {
        vec![Some(map(g, |g| c * g))]
    })
}

/// Sum of all elements, as a one-element tensor of shape `[1]`.
pub fn sum(x: &Var) -> Var {
    reduce_all(x, 1.0)
}

/// Mean of all elements, as a one-element tensor of shape `[1]`.
pub fn mean(x: &Var) -> Var {
    reduce_all(x, 1.0 / x.value().len().max(1) as f32)
}

fn reduce_all(x: &Var, factor: f32) -> Var {
    let dim = x.value().raw_dim();
    let y = Tensor::from_elem(
        ndarray::IxDyn(&[1]),
        (sum_f64(x.value()) * factor as f64) as f32,
    );
    Var::record(&[x], y, move |g, _| {
        vec![Some(Tensor::from_elem(dim, g[[0]] * factor))]
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{config, tensor};
    use super::*;
    use crate::autograd::Tape;
    use crate::ops::gradcheck::{check_gradients, Tolerance};
    use proptest::prelude::*;

    fn pair() -> impl Strategy<Value = (Tensor, Tensor)> {
        proptest::collection::vec(1usize..5, 1..4).prop_flat_map(|s| (tensor(s.clone()), tensor(s)))
    }

    proptest! {
        #![proptest_config(config(32))]

        #[test]
        fn arithmetic_gradients((a, b) in pair(), c in -2.0f32..2.0, seed: u64) {
            let tol = Tolerance::default();
            check_gradients(&[a.clone(), b.clone()], seed, tol, |v| add(&v[0], &v[1])).map_err(TestCaseError::fail)?;
            check_gradients(&[a.clone(), b], seed, tol, |v| mul(&v[0], &v[1])).map_err(TestCaseError::fail)?;
            check_gradients(std::slice::from_ref(&a), seed, tol, |v| scale(&v[0], c)).map_err(TestCaseError::fail)?;
            check_gradients(std::slice::from_ref(&a), seed, tol, |v| sum(&v[0])).map_err(TestCaseError::fail)?;
            check_gradients(&[a], seed, tol, |v| mean(&v[0])).map_err(TestCaseError::fail)?;
        }

        /// A value used twice collects both contributions: d(x*x + x)/dx = 2x + 1.
        #[test]
        fn reused_value_accumulates((a, _) in pair()) {
            let tape = Tape::new();
            let x = tape.leaf(a.clone());
            let loss = sum(&add(&mul(&x, &x), &x));
            let g = tape.backward(&loss);
            for (g, a) in g.get(&x).unwrap().iter().zip(a.iter()) {
                prop_assert!((g - (2.0 * a + 1.0)).abs() < 1e-6);
            }
        }
    }
}
