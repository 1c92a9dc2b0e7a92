//! Batch normalization over the channel axis 1 of `[N, C]` or `[N, C, H, W]` inputs.
//! Training mode normalizes with the batch's mean and biased variance and updates the
//! running statistics with momentum (PyTorch's rule: `running = (1-m)*running + m*stat`,
//! using the unbiased variance); eval mode normalizes with the running statistics.

use super::elementwise::{row_major, standard};
use super::norm_core::{channel_moments, grad_sums, input_grad_batch_stats, input_grad_fixed_stats, normalize};
use crate::autograd::Var;
use crate::Tensor;
use ndarray::IxDyn;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatchNormMode {
    Train { momentum: f32 },
    Eval,
}

/// Running mean and variance of a BatchNorm layer (buffers, not learned).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    pub mean: Tensor,
    pub var: Tensor,
}

impl RunningStats {
    pub fn new(channels: usize) -> Self {
        RunningStats { mean: Tensor::zeros(IxDyn(&[channels])), var: Tensor::ones(IxDyn(&[channels])) }
    }
}

/// `(n, c, p)` of a `[N, C, ...]` tensor.
pub(crate) fn ncp(shape: &[usize]) -> (usize, usize, usize) {
    assert!(shape.len() >= 2, "normalization needs an input of rank >= 2, got {shape:?}");
    (shape[0], shape[1], shape[2..].iter().product())
}

pub fn batch_norm(x: &Var, gamma: &Var, beta: &Var, stats: &mut RunningStats, mode: BatchNormMode, eps: f32) -> Var {
    let (n, c, p) = ncp(x.shape());
    assert!(gamma.shape() == [c] && beta.shape() == [c], "batch_norm: gamma/beta must have shape [{c}]");
    assert!(stats.mean.shape() == [c] && stats.var.shape() == [c], "batch_norm: running statistics must have shape [{c}]");
    let x_val = standard(x.shared());
    let xs = x_val.as_slice().unwrap();
    let (mean, var): (Vec<f32>, Vec<f32>) = match mode {
        BatchNormMode::Train { momentum } => {
            let m = n * p;
            assert!(m > 1, "batch_norm in training mode needs more than one value per channel (input {:?})", x.shape());
            let (mean, var): (Vec<f32>, Vec<f32>) = channel_moments(xs, n, c, p).into_iter().unzip();
            let unbiased = m as f32 / (m - 1) as f32;
            for ch in 0..c {
                stats.mean[ch] = (1.0 - momentum) * stats.mean[ch] + momentum * mean[ch];
                stats.var[ch] = (1.0 - momentum) * stats.var[ch] + momentum * var[ch] * unbiased;
            }
            (mean, var)
        }
        BatchNormMode::Eval => (stats.mean.iter().copied().collect(), stats.var.iter().copied().collect()),
    };
    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let gamma_v = row_major(gamma.value()).into_owned();
    let (y, xhat) = normalize(xs, c, p, &mean, &inv_std, &gamma_v, &row_major(beta.value()));
    let shape = x.value().raw_dim();
    let y = Tensor::from_shape_vec(shape.clone(), y).unwrap();
    let batch_stats = matches!(mode, BatchNormMode::Train { .. });
    Var::record(&[x, gamma, beta], y, move |dy, wants| {
        let dy = row_major(dy);
        let (sum_dy, sum_dy_xhat) = grad_sums(&dy, &xhat, n, c, p);
        let dx = wants[0].then(|| {
            let dx = if batch_stats {
                input_grad_batch_stats(&dy, &xhat, n, c, p, &gamma_v, &inv_std, &sum_dy, &sum_dy_xhat)
            } else {
                input_grad_fixed_stats(&dy, c, p, &gamma_v, &inv_std)
            };
            Tensor::from_shape_vec(shape, dx).unwrap()
        });
        let to_tensor = |v: Vec<f32>| Tensor::from_shape_vec(IxDyn(&[c]), v).unwrap();
        vec![dx, wants[1].then(|| to_tensor(sum_dy_xhat)), wants[2].then(|| to_tensor(sum_dy))]
    })
}
