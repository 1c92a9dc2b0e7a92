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
    Var::record(&[x], map(x.value(), |v| c * v), move |g, _| vec![Some(map(g, |g| c * g))])
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
    let y = Tensor::from_elem(ndarray::IxDyn(&[1]), (sum_f64(x.value()) * factor as f64) as f32);
    Var::record(&[x], y, move |g, _| vec![Some(Tensor::from_elem(dim, g[[0]] * factor))])
}
