//! Parameter-free activations. Each backward uses the saved output or input:
//! relu' = [x > 0], leaky' = 1 or alpha, sigmoid' = s(1-s), tanh' = 1 - t^2, exp' = exp.

use super::elementwise::{map, zip_map};
use crate::autograd::Var;
use std::sync::Arc;

pub fn relu(x: &Var) -> Var {
    leaky_relu(x, 0.0)
}

/// `max(x, 0) + alpha * min(x, 0)`.
pub fn leaky_relu(x: &Var, alpha: f32) -> Var {
    let xv = x.shared();
    let y = map(x.value(), |v| if v > 0.0 { v } else { alpha * v });
    Var::record(&[x], y, move |g, _| vec![Some(zip_map(g, &xv, |g, v| if v > 0.0 { g } else { alpha * g }))])
}

/// Logistic sigmoid, computed without overflow for large |x|.
pub fn sigmoid(x: &Var) -> Var {
    let y = Arc::new(map(x.value(), stable_sigmoid));
    let saved = Arc::clone(&y);
    Var::record(&[x], y, move |g, _| vec![Some(zip_map(g, &saved, |g, s| g * s * (1.0 - s)))])
}

pub(crate) fn stable_sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

pub fn tanh(x: &Var) -> Var {
    let y = Arc::new(map(x.value(), f32::tanh));
    let saved = Arc::clone(&y);
    Var::record(&[x], y, move |g, _| vec![Some(zip_map(g, &saved, |g, t| g * (1.0 - t * t)))])
}

pub fn exp(x: &Var) -> Var {
    let y = Arc::new(map(x.value(), f32::exp));
    let saved = Arc::clone(&y);
    Var::record(&[x], y, move |g, _| vec![Some(zip_map(g, &saved, |g, e| g * e))])
}
