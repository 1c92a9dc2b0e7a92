//! Instance normalization with a per-channel affine transform: each (image, channel)
//! plane is normalized by its own mean and biased variance. This is the batch-norm math
//! of `norm_core` applied to the input viewed as `[1, N*C, H*W]`, with gamma and beta
//! repeated for every image (and their gradients summed back over the images).

use super::batch_norm::ncp;
use super::elementwise::{row_major, standard};
use super::norm_core::{channel_moments, grad_sums, input_grad_batch_stats, normalize};
use crate::autograd::Var;
use crate::Tensor;
use ndarray::IxDyn;

pub fn instance_norm(x: &Var, gamma: &Var, beta: &Var, eps: f32) -> Var {
    let (n, c, p) = ncp(x.shape());
    assert!(gamma.shape() == [c] && beta.shape() == [c], "instance_norm: gamma/beta must have shape [{c}]");
    let planes = n * c;
    let x_val = standard(x.shared());
    let (mean, var): (Vec<f32>, Vec<f32>) = channel_moments(x_val.as_slice().unwrap(), 1, planes, p).into_iter().unzip();
    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let tile = |t: &Tensor| -> Vec<f32> { row_major(t).iter().copied().cycle().take(planes).collect() };
    let gamma_tiled = tile(gamma.value());
    let (y, xhat) = normalize(x_val.as_slice().unwrap(), planes, p, &mean, &inv_std, &gamma_tiled, &tile(beta.value()));
    let shape = x.value().raw_dim();
    let y = Tensor::from_shape_vec(shape.clone(), y).unwrap();
    Var::record(&[x, gamma, beta], y, move |dy, wants| {
        let dy = row_major(dy);
        let (sum_dy, sum_dy_xhat) = grad_sums(&dy, &xhat, 1, planes, p);
        let dx = wants[0].then(|| {
            let dx = input_grad_batch_stats(&dy, &xhat, 1, planes, p, &gamma_tiled, &inv_std, &sum_dy, &sum_dy_xhat);
            Tensor::from_shape_vec(shape, dx).unwrap()
        });
        let fold = |v: &[f32]| -> Tensor {
            let mut per_channel = vec![0.0f32; c];
            v.iter().enumerate().for_each(|(i, s)| per_channel[i % c] += s);
            Tensor::from_shape_vec(IxDyn(&[c]), per_channel).unwrap()
        };
        vec![dx, wants[1].then(|| fold(&sum_dy_xhat)), wants[2].then(|| fold(&sum_dy))]
    })
}
