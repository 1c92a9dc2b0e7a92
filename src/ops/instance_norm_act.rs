//! Instance normalization followed by a leaky ReLU or PReLU, plane by plane. Each
//! (image, channel) plane is its own statistics group, so everything a plane needs is in
//! the plane: forward, its statistics and its output are computed while it is in cache
//! (one read of `x`, one write of `y`, never zeroed first); backward, its activation
//! gradient, its two sums and its input gradient likewise (one read each of `x` and `dy`,
//! one write of `dx`). Through batch norm's path (statistics of all planes first, then
//! each pass over the whole tensor) the same work took four passes over memory forward
//! and seven backward. The math is `norm_act`'s, in the same order of operations.

use super::batch_norm::ncp;
use super::elementwise::{row_major, standard};
use super::norm_act::{
    forward_plane, pre_activation_plane, recorded_inputs, slopes, Activation, Channel,
};
use super::norm_core::{fold_channels, plane_moments};
use crate::autograd::Var;
use crate::kernels::scratch::with_scratch;
use crate::kernels::zeroed::written_in_chunks;
use crate::Tensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// `activation(instance_norm(x))`: each (image, channel) plane normalized by its own
/// statistics, as `ops::instance_norm` followed by the activation.
pub fn instance_norm_act(x: &Var, gamma: &Var, beta: &Var, eps: f32, act: &Activation) -> Var {
    let (_, c, p) = ncp(x.shape());
    assert!(
        gamma.shape() == [c] && beta.shape() == [c],
        "instance_norm: gamma/beta must have shape [{c}]"
    );
    let x_val = standard(x.shared());
    let (gammas, betas) = (row_major(gamma.value()), row_major(beta.value()));
    let slope = slopes(act, c);
    let channel = |ch: usize, (mean, inv_std): (f32, f32)| Channel {
        mean,
        inv_std,
        gamma: gammas[ch],
        beta: betas[ch],
        slope: slope[ch],
    };
    // SAFETY: `forward_plane` writes every value of its plane.
    let (y, planes) = unsafe {
        written_in_chunks(x_val.len(), p, |plane, y| {
            let x = &x_val.as_slice().unwrap()[plane * p..][..y.len()];
            let k = channel(plane % c, statistics(x, eps));
            forward_plane(x, k, y);
            k
        })
    };
    let shape = x.value().raw_dim();
    let y = Tensor::from_shape_vec(shape.clone(), y).unwrap();
    let (inputs, slope_len) = recorded_inputs([x, gamma, beta], act);
    Var::record(&inputs, y, move |dy, wants| {
        let dy = row_major(dy);
        let (dx, sums) = backward(x_val.as_slice().unwrap(), &dy, &planes, wants[0]);
        let column = |i: usize| sums.iter().map(|s| s[i] as f32).collect::<Vec<f32>>();
        let mut grads = vec![
            dx.map(|dx| Tensor::from_shape_vec(shape, dx).unwrap()),
            wants[1].then(|| fold_channels(&column(1), c)),
            wants[2].then(|| fold_channels(&column(0), c)),
        ];
        if slope_len > 0 {
            grads.push(wants[3].then(|| fold_channels(&column(2), slope_len)));
        }
        grads
    })
}

/// A plane's mean and `1 / sqrt(var + eps)`, as `norm_core::plane_statistics` gives them.
fn statistics(x: &[f32], eps: f32) -> (f32, f32) {
    let (mean, var) = plane_moments(x);
    (mean, 1.0 / (var + eps).sqrt())
}

/// The input gradient (when `want_dx`) and, per plane, the sums `(Σ dpre, Σ dpre·xhat,
/// Σ_{pre<=0} dy·pre)` (beta's, gamma's and the slope's gradients before folding).
fn backward(
    xs: &[f32],
    dy: &[f32],
    planes: &[Channel],
    want_dx: bool,
) -> (Option<Vec<f32>>, Vec<[f64; 3]>) {
    let p = xs.len() / planes.len().max(1);
    let sums_of = |plane: usize, dx: Option<&mut [MaybeUninit<f32>]>| {
        let range = plane * p..(plane + 1) * p;
        // Scratch for the plane's `dpre`, written whole before read.
        with_scratch(p, |dpre| {
            backward_plane(&xs[range.clone()], &dy[range], planes[plane], dpre, dx)
        })
    };
    if !want_dx {
        let sums = (0..planes.len())
            .into_par_iter()
            .map(|plane| sums_of(plane, None))
            .collect();
        return (None, sums);
    }
    // SAFETY: `backward_plane` writes every value of `dx` it is given.
    let (dx, sums) =
        unsafe { written_in_chunks(xs.len(), p, |plane, dx| sums_of(plane, Some(dx))) };
    (Some(dx), sums)
}

/// One plane's backward: `dpre = dy * (pre > 0 ? 1 : slope)`, its sums, and with `dx`
/// batch norm's input gradient over the plane's own statistics,
/// `dx = gamma * inv_std * (dpre - mean(dpre) - xhat * mean(dpre * xhat))`.
fn backward_plane(
    x: &[f32],
    dy: &[f32],
    k: Channel,
    dpre: &mut [f32],
    dx: Option<&mut [MaybeUninit<f32>]>,
) -> [f64; 3] {
    let sums = pre_activation_plane(x, dy, k, dpre);
    if let Some(dx) = dx {
        let m = x.len() as f32;
        let (mean_dy, mean_dy_xh) = (sums[0] as f32 / m, sums[1] as f32 / m);
        let scale = k.gamma * k.inv_std;
        for ((dx, &d), &x) in dx.iter_mut().zip(dpre.iter()).zip(x) {
            let (xh, _) = k.pre(x);
            dx.write(scale * (d - mean_dy - xh * mean_dy_xh));
        }
    }
    sums
}
