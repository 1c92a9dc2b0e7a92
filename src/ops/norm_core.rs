//! Shared math of batch and instance normalization on `[n, c, p]` data, normalizing
//! each channel over its `n*p` values: `xhat = (x - mean) / sqrt(var + eps)`,
//! `y = gamma * xhat + beta`.
//!
//! With batch statistics the input gradient is (M = n*p values per channel)
//! `dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat))`.

use crate::kernels::lanes;
use crate::Tensor;
use rayon::prelude::*;

/// Per-channel mean and biased variance, two-pass, planes added in f64.
pub(crate) fn channel_moments(x: &[f32], n: usize, c: usize, p: usize) -> Vec<(f32, f32)> {
    (0..c)
        .into_par_iter()
        .map(|ch| moments((0..n).map(move |i| &x[(i * c + ch) * p..(i * c + ch + 1) * p])))
        .collect()
}

/// The mean and biased variance of one plane (instance norm's statistics).
pub(crate) fn plane_moments(x: &[f32]) -> (f32, f32) {
    moments(std::iter::once(x))
}

/// The mean and biased variance of all values of `planes`, two-pass, planes added in f64.
fn moments<'a>(planes: impl Iterator<Item = &'a [f32]> + Clone) -> (f32, f32) {
    let m = planes.clone().map(<[f32]>::len).sum::<usize>() as f64;
    let mean = planes.clone().map(lanes::sum).sum::<f64>() / m;
    let var = planes
        .map(|s| lanes::sum_sq_dev(s, mean as f32))
        .sum::<f64>()
        / m;
    (mean as f32, var as f32)
}

/// `1 / sqrt(var + eps)` per channel.
pub(crate) fn inv_std(var: &[f32], eps: f32) -> Vec<f32> {
    var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect()
}

/// Per-plane mean and `1 / sqrt(var + eps)` of `planes` planes of `p` values (instance
/// norm's statistics: batch norm's on `[1, planes, p]`).
pub(crate) fn plane_statistics(
    x: &[f32],
    planes: usize,
    p: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let (mean, var): (Vec<f32>, Vec<f32>) = channel_moments(x, 1, planes, p).into_iter().unzip();
    (mean, inv_std(&var, eps))
}

/// `values` (one per channel) repeated to fill `planes` planes of `[N, C]` order.
pub(crate) fn tile(values: &[f32], planes: usize) -> Vec<f32> {
    values.iter().copied().cycle().take(planes).collect()
}

/// Per-plane (or per-group) sums folded onto `len` channels in order: `out[i % len] += v[i]`.
pub(crate) fn fold_channels(v: &[f32], len: usize) -> Tensor {
    let mut out = vec![0.0f32; len];
    v.iter().enumerate().for_each(|(i, s)| out[i % len] += s);
    Tensor::from_shape_vec(ndarray::IxDyn(&[len]), out).unwrap()
}

/// Returns `(y, xhat)`; `scale[ch] = 1/sqrt(var+eps)` for the statistics in use.
pub(crate) fn normalize(
    x: &[f32],
    c: usize,
    p: usize,
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    beta: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let mut y = vec![0.0f32; x.len()];
    let mut xhat = vec![0.0f32; x.len()];
    y.par_chunks_mut(p)
        .zip(xhat.par_chunks_mut(p))
        .zip(x.par_chunks(p))
        .enumerate()
        .for_each(|(plane, ((y, xh), x))| {
            let ch = plane % c;
            let (m, s, g, b) = (mean[ch], inv_std[ch], gamma[ch], beta[ch]);
            for ((y, xh), &x) in y.iter_mut().zip(xh.iter_mut()).zip(x) {
                *xh = (x - m) * s;
                *y = g * *xh + b;
            }
        });
    (y, xhat)
}

/// Per-channel `(sum dy, sum dy*xhat)`: the gradients of beta and gamma.
pub(crate) fn grad_sums(
    dy: &[f32],
    xhat: &[f32],
    n: usize,
    c: usize,
    p: usize,
) -> (Vec<f32>, Vec<f32>) {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut s, mut sx) = (0.0f64, 0.0f64);
            for i in 0..n {
                let r = (i * c + ch) * p..(i * c + ch + 1) * p;
                s += lanes::sum(&dy[r.clone()]);
                sx += lanes::dot(&dy[r.clone()], &xhat[r]);
            }
            (s as f32, sx as f32)
        })
        .unzip()
}

/// Input gradient when the statistics came from the batch itself (see module docs);
/// `count` values per channel made them (`n * p` in one process; a data-parallel group's
/// total under sync batch norm, with `sum_dy` and `sum_dy_xhat` the group's sums).
#[allow(clippy::too_many_arguments)]
pub(crate) fn input_grad_batch_stats(
    dy: &[f32],
    xhat: &[f32],
    count: usize,
    c: usize,
    p: usize,
    gamma: &[f32],
    inv_std: &[f32],
    sum_dy: &[f32],
    sum_dy_xhat: &[f32],
) -> Vec<f32> {
    let m = count as f32;
    let mut dx = vec![0.0f32; dy.len()];
    dx.par_chunks_mut(p).enumerate().for_each(|(plane, dx)| {
        let ch = plane % c;
        let k = gamma[ch] * inv_std[ch];
        let (mean_dy, mean_dy_xhat) = (sum_dy[ch] / m, sum_dy_xhat[ch] / m);
        let r = plane * p..(plane + 1) * p;
        for ((d, &g), &xh) in dx.iter_mut().zip(&dy[r.clone()]).zip(&xhat[r]) {
            *d = k * (g - mean_dy - xh * mean_dy_xhat);
        }
    });
    dx
}

/// Input gradient when the statistics are constants (eval mode): `dx = gamma/sqrt(var+eps) * dy`.
pub(crate) fn input_grad_fixed_stats(
    dy: &[f32],
    c: usize,
    p: usize,
    gamma: &[f32],
    inv_std: &[f32],
) -> Vec<f32> {
    let mut dx = dy.to_vec();
    dx.par_chunks_mut(p).enumerate().for_each(|(plane, dx)| {
        let k = gamma[plane % c] * inv_std[plane % c];
        dx.iter_mut().for_each(|d| *d *= k);
    });
    dx
}
